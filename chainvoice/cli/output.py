"""Printing results and errors, human-readable or as JSON (``--json``)."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


class Failed(Exception):
    """A command that ran but did not achieve what was asked (e.g. a rejected transaction)."""

    def __init__(self, message: str, data: dict[str, Any] | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.data = data or {}
        self.exit_code = exit_code


def wants_json(ctx: click.Context, as_json: bool = False) -> bool:
    root = ctx.find_root()
    return as_json or bool((root.obj or {}).get("json"))


def emit(ctx: click.Context, data: Any, human: Callable[[], str] | str, as_json: bool = False) -> None:
    if wants_json(ctx, as_json):
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(human() if callable(human) else human)


def emit_error(ctx: click.Context, exc: BaseException, *, internal: bool = False) -> None:
    code = getattr(exc, "code", None) or ("INTERNAL" if internal else exc.__class__.__name__)
    message = getattr(exc, "message", None) or str(exc)
    if internal:
        message = f"internal error ({exc.__class__.__name__}: {exc}); run with CHAINVOICE_DEBUG=1 for details"
    as_json = wants_json(ctx) or any(a == "--json" for a in sys.argv[1:])
    if as_json:
        body = {"error": {"code": str(code), "message": message}}
        if isinstance(exc, Failed):
            body.update(exc.data)
        click.echo(json.dumps(body, indent=2, sort_keys=True))
    else:
        click.echo(f"error: {message}" if not isinstance(exc, Failed) else message, err=True)
