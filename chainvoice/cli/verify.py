"""`chainvoice verify`: check a proof bundle offline, trusting only the consortium's keys."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from .. import codec
from ..chain.consortium import Consortium, ConsortiumError
from ..chain.genesis import Genesis, GenesisError
from ..chain.proof import verify_bundle
from .output import Failed, emit, json_option


def load_consortium(path: Path) -> tuple[Consortium, bytes | None]:
    """A genesis file (preferred: also gives the genesis hash) or a saved GET /v1/consortium."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Failed(f"cannot read consortium file {path}: {exc}") from None
    if isinstance(doc, dict) and "consortium" in doc and "members" in doc:
        try:
            g = Genesis.from_json(doc)
        except GenesisError as exc:
            raise Failed(f"{path}: {exc}") from None
        return g.consortium, g.block().hash
    try:
        c = Consortium.from_map({"chain_id": doc["chain_id"], "f": doc["f"],
                                 "nodes": [{**n, "public_key": codec.from_hex(n["public_key"], 32)} for n in doc["nodes"]]})
    except (KeyError, TypeError, ValueError, codec.EncodingError, ConsortiumError) as exc:
        raise Failed(f"{path} is neither a genesis file nor a consortium description ({exc})") from None
    gh = doc.get("genesis_hash")
    return c, bytes.fromhex(gh) if isinstance(gh, str) and len(gh) == 64 else None


def load_bundle(source: str) -> Any:
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise Failed(f"the node answered HTTP {exc.code} for {source}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Failed(f"cannot fetch {source}: {exc}") from None
    try:
        return json.loads(Path(source).read_text())
    except (OSError, ValueError) as exc:
        raise Failed(f"cannot read proof bundle {source}: {exc}") from None


@click.command()
@click.argument("source")
@click.option("--consortium", "consortium_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="The genesis file, or a saved GET /v1/consortium: the only thing trusted.")
@click.option("--number", help="Require the bundle to be about this invoice.")
@json_option
@click.pass_context
def verify(ctx: click.Context, source: str, consortium_file: Path, number: str | None, as_json: bool) -> None:
    """Verify a proof bundle (a FILE, or the URL of /v1/invoices/N/proof on any node) offline."""
    consortium, genesis_hash = load_consortium(consortium_file)
    verdict = verify_bundle(load_bundle(source), consortium, genesis_hash=genesis_hash, number=number)
    data = verdict.to_json() | {"verified": verdict.ok, "chain_id": consortium.chain_id}
    if not verdict.ok:
        raise Failed(f"✗ NOT VERIFIED: {verdict.reason}", data)
    emit(ctx, data, lambda: (
        f"✓ VERIFIED: {verdict.reason}\n"
        f"  checked: header hash, ≥ {consortium.quorum} of {consortium.n} consortium commit signatures, "
        f"state proof to the header's state root\n"
        f"  trusted: only the consortium keys in {consortium_file}"), as_json)
