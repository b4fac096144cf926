"""`chainvoice node run CONFIG`: run one consensus node in the foreground."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import click

from ..config import NodeConfig


class _JsonFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": round(record.created, 3), "level": record.levelname.lower(), "node": self.node_id,
               "logger": record.name, "msg": record.getMessage()}
        for key in ("view", "height"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


@click.group()
def node() -> None:
    """Run a consensus node."""


@node.command("run")
@click.argument("config", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info", show_default=True)
def run(config: Path, log_level: str) -> None:
    """Run the node described by CONFIG (its node.json) until SIGTERM or Ctrl-C."""
    from ..node import Node

    cfg = NodeConfig.load(config)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter(cfg.node_id))
    logging.basicConfig(level=getattr(logging, log_level.upper()), handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    started = time.time()
    node_ = Node(cfg)
    logging.getLogger("chainvoice.node").info("opened in %.2f s", time.time() - started)
    asyncio.run(node_.run_forever())
