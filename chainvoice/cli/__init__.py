"""The ``chainvoice`` command line: set up and run networks, submit ledger transactions, verify proofs.

Every command takes ``--json`` for scripts. Errors print one clear line (or a JSON error object)
and exit non-zero; a stack trace is shown only with CHAINVOICE_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..chain.chain import InvalidBlock
from ..chain.genesis import GenesisError
from ..client import ClientError
from ..config import ConfigError
from ..crypto import KeyFileError
from ..ledger.codes import MalformedTransaction
from ..localnet import NetworkError
from ..net.tls import TLSFileError
from ..store.chainstore import StoreCorrupt
from ..store.leveldb import StoreOpenError
from .output import Failed, emit_error

KNOWN_ERRORS = (ClientError, ConfigError, KeyFileError, GenesisError, NetworkError, MalformedTransaction,
                InvalidBlock, TLSFileError, StoreCorrupt, StoreOpenError, Failed)


class ChainvoiceGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KNOWN_ERRORS as exc:
            emit_error(ctx, exc)
            ctx.exit(getattr(exc, "exit_code", 1))
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no stack traces for users
            if os.environ.get("CHAINVOICE_DEBUG"):
                raise
            emit_error(ctx, exc, internal=True)
            ctx.exit(3)


@click.group(cls=ChainvoiceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@click.pass_context
def main(ctx: click.Context, as_json: bool) -> None:
    """chainvoice: a PBFT consortium ledger for the whole life of an invoice."""
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json


def _register() -> None:
    from . import audit, ledger, merchant, net, node, verify  # noqa: F401 - commands attach themselves to main

    main.add_command(net.net)
    main.add_command(node.node)
    main.add_command(ledger.member)
    main.add_command(ledger.invoice)
    main.add_command(verify.verify)
    main.add_command(audit.audit)
    main.add_command(merchant.merchant)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
