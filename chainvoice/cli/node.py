"""`chainvoice node run CONFIG`: run one consensus node in the foreground."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from ..config import NodeConfig


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, node id, the node's view and height at the moment
    of the record (once the node is open), logger and message."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.position: Callable[[], tuple[int, int]] | None = None  # (view, height)

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                               "node": self.node_id}
        if self.position is not None:
            doc["view"], doc["height"] = self.position()
        for key in ("view", "height"):
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        doc["logger"] = record.name
        doc["msg"] = record.getMessage()
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
    from ..runtime import tune_allocator

    tune_allocator()  # before the store opens: its buffers come from the allocator as tuned
    cfg = NodeConfig.load(config)
    handler = logging.StreamHandler(sys.stdout)
    formatter = _JsonFormatter(cfg.node_id)
    handler.setFormatter(formatter)
    logging.basicConfig(level=getattr(logging, log_level.upper()), handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    started = time.time()
    node_ = Node(cfg)
    formatter.position = lambda: (node_.replica.view, node_.store.tip.height)
    logging.getLogger("chainvoice.node").info("opened in %.2f s", time.time() - started)
    asyncio.run(node_.run_forever())
