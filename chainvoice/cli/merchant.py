"""`chainvoice merchant serve`: the transaction-is-invoicing service of one merchant."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from aiohttp import web

from .. import crypto
from ..client import ClientError
from ..merchant import Merchant, build_app, fetch_chain_id
from .ledger import DEFAULT_NODE


@click.group()
def merchant() -> None:
    """Merchant-side services."""


@merchant.command("serve")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="The merchant's key (signs every invoice).")
@click.option("--seller-tax-id", required=True)
@click.option("--seller-name", required=True)
@click.option("--node", "node_url", default=DEFAULT_NODE, show_default=True, envvar="CHAINVOICE_NODE")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8800, show_default=True)
def serve(key_file: Path, seller_tax_id: str, seller_name: str, node_url: str, host: str, port: int) -> None:
    """Accept payment notifications (POST /payments) and issue their invoices."""
    try:
        chain_id = fetch_chain_id(node_url)
    except OSError as exc:
        raise ClientError(0, "UNREACHABLE", f"cannot reach node at {node_url}: {exc}") from None
    m = Merchant(crypto.SigningKey.load(key_file), seller_tax_id, seller_name, node_url.rstrip("/"), chain_id)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    click.echo(f"merchant {seller_name} ({seller_tax_id}) issuing on {chain_id} via {node_url}; "
               f"POST http://{host}:{port}/payments")
    web.run_app(build_app(m), host=host, port=port, print=None)
