"""`chainvoice audit`: risk signals and monthly reports for the tax authority; flag from them."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import click

from .. import crypto
from ..client import ClientError, NodeClient
from .ledger import DEFAULT_NODE
from .output import Failed, emit, json_option

node_option = click.option("--node", "node_url", default=DEFAULT_NODE, show_default=True, envvar="CHAINVOICE_NODE")


@click.group()
def audit() -> None:
    """Tax supervision: risk signals, monthly reports, flagging."""


def _risk_lines(doc: dict[str, Any]) -> list[str]:
    s = doc["signals"]
    out = [f"risk signals as of height {doc['height']} ({doc['day']}; window {', '.join(doc['window_months'])}):"]
    out.append(f"  merchants at >= 95 % of quota: {len(s['quota'])}")
    out += [f"    {q['seller_tax_id']} {q['name']}: {q['share_bp'] / 100:.1f} % ({q['used'] / 100:,.2f} of {q['quota'] / 100:,.2f} yuan)" for q in s["quota"]]
    out.append(f"  volume spikes: {len(s['spikes'])}")
    out += [f"    {x['seller_tax_id']} {x['name']}: {x['invoices']} invoices on {x['day']} vs mean {x['previous_daily_mean']}/day" for x in s["spikes"]]
    out.append(f"  circular invoicing: {len(s['cycles'])}")
    out += [f"    {' → '.join(c['companies'] + c['companies'][:1])}  ({len(c['invoices'])} invoices)" for c in s["cycles"]]
    out.append(f"  double-claim attempts: {len(s['double_claims'])} signer(s)")
    out += [f"    {d['signer'][:16]}…: {d['attempts']} attempt(s) on {', '.join(d['invoices'])}" for d in s["double_claims"]]
    return out


@audit.command("risk")
@node_option
@click.option("--window-months", type=click.IntRange(1, 24), default=3, show_default=True)
@json_option
@click.pass_context
def risk(ctx: click.Context, node_url: str, window_months: int, as_json: bool) -> None:
    """Merchants near quota, volume spikes, circular invoicing, double-claim attempts."""
    doc = NodeClient(node_url).get("/v1/audit/risk", window_months=window_months)
    emit(ctx, doc, lambda: "\n".join(_risk_lines(doc)), as_json)


@audit.command("report")
@node_option
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV file (default: stdout).")
@json_option
@click.pass_context
def report(ctx: click.Context, node_url: str, month: str, out: Path | None, as_json: bool) -> None:
    """Per-merchant monthly CSV: count, amount, tax, total, reversed (fen)."""
    doc = NodeClient(node_url).get("/v1/audit/report", month=month)
    fields = ["seller_tax_id", "name", "month", "count", "amount", "tax", "total", "reversed"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(doc["merchants"])
    if out is not None:
        out.write_text(buf.getvalue())
        emit(ctx, {"month": month, "file": str(out), "merchants": len(doc["merchants"])},
             f"wrote {out} ({len(doc['merchants'])} merchants)", as_json)
    else:
        emit(ctx, doc, buf.getvalue().rstrip("\n"), as_json)


@audit.command("flag")
@node_option
@click.option("--key", "key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="The tax authority's key.")
@click.option("--signal", type=click.Choice(["cycles", "double_claims"]), multiple=True, default=("cycles",),
              show_default=True, help="Which signals' invoices to flag.")
@click.option("--reason", default="flagged from the risk report", show_default=True)
@json_option
@click.pass_context
def flag(ctx: click.Context, node_url: str, key_file: Path, signal: tuple[str, ...], reason: str, as_json: bool) -> None:
    """Flag every invoice named by the chosen risk signals (already flagged ones are skipped)."""
    client = NodeClient(node_url)
    key = crypto.SigningKey.load(key_file)
    doc = client.get("/v1/audit/risk")
    numbers = sorted({n for s in signal for item in doc["signals"][s] for n in item["invoices"] if n})
    done, skipped = [], []
    for number in numbers:
        try:
            state = client.invoice(number)["state"]
        except ClientError:
            state = None
        if state is None or state["flagged"]:
            skipped.append(number)
            continue
        _, answer = client.sign_and_submit(key, "flag", {"number": number, "reason": reason})
        if answer["receipt"]["status"] != "ok":
            raise Failed(f"flagging {number} was rejected: {answer['receipt']['code']} {answer['receipt']['message']}")
        done.append(number)
    emit(ctx, {"flagged": done, "skipped": skipped},
         f"flagged {len(done)} invoice(s){': ' + ', '.join(done) if done else ''}; skipped {len(skipped)}", as_json)
