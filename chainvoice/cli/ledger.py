"""`chainvoice member …` and `chainvoice invoice …`: sign ledger transactions, submit them, wait
for commit and print the receipt. A rejected transaction exits non-zero with its code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click

from .. import codec, crypto
from ..client import NodeClient, new_invoice_number
from ..ledger import amounts, calendar
from .output import Failed, emit, json_option

DEFAULT_NODE = os.environ.get("CHAINVOICE_NODE", "http://127.0.0.1:7700")


def _key(path: Path) -> crypto.SigningKey:
    return crypto.SigningKey.load(path)


def _public_key(text: str) -> bytes:
    """A 64-hex public key, or the path of a key file whose public key to use."""
    t = text.strip()
    if len(t) == 64:
        try:
            return bytes.fromhex(t)
        except ValueError:
            pass
    if Path(t).is_file():
        return crypto.SigningKey.load(t).public_key
    raise click.BadParameter(f"{text!r} is neither a 64-hex public key nor a key file")


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--key, --node, --timeout, --no-wait and --json for every transaction command."""
    fn = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")(fn)
    fn = click.option("--no-wait", is_flag=True, help="Return once the node accepted it, without waiting for commit.")(fn)
    fn = click.option("--timeout", type=click.FloatRange(0.1, 60), default=15, show_default=True, help="Seconds to wait for commit.")(fn)
    fn = click.option("--node", "node_url", default=DEFAULT_NODE, show_default=True, envvar="CHAINVOICE_NODE", help="Node API URL.")(fn)
    fn = click.option("--key", "key_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
                      help="Signer's key file.")(fn)
    return fn


def submit(ctx: click.Context, key_file: Path, node_url: str, kind: str, body: dict[str, Any], *,
           timeout: float, no_wait: bool, as_json: bool) -> dict[str, Any]:
    client = NodeClient(node_url)
    tx, answer = client.sign_and_submit(_key(key_file), kind, body, wait=not no_wait, timeout_s=timeout)
    data = {"kind": kind, "body": codec.to_json(tx.body), **answer}
    receipt = answer.get("receipt")
    if receipt is not None and receipt["status"] != "ok":
        raise Failed(f"✗ {kind} rejected at height {answer['height']}: {receipt['code']} — {receipt['message']}", data)

    def human() -> str:
        if answer["status"] == "pending":
            return f"… {kind} accepted by {node_url}, pending (tx {answer['tx_id']})"
        dup = " (already committed earlier)" if answer.get("duplicate") else ""
        ref = f" → invoice {receipt['reference']['number']}" if receipt.get("reference") else ""
        return f"✓ {kind} committed at height {answer['height']}{dup}{ref} (tx {answer['tx_id'][:16]}…)"

    emit(ctx, data, human, as_json)
    return data


# -- members ----------------------------------------------------------------------------------------

@click.group()
def member() -> None:
    """Register and update consortium members (tax authority only)."""


@member.command("register")
@common
@click.option("--member", "member_key", required=True, help="The new member's public key (hex) or key file.")
@click.option("--role", type=click.Choice(["tax", "merchant", "platform", "enterprise"]), required=True)
@click.option("--name", required=True)
@click.option("--tax-id", help="Taxpayer id (merchant, enterprise).")
@click.option("--taxpayer-type", type=click.Choice(["general", "small"]), help="Merchant taxpayer type.")
@click.option("--quota", type=click.IntRange(0), help="Merchant monthly quota in fen.")
@click.option("--serves", multiple=True, help="Enterprise key (hex or key file) a platform serves; repeatable.")
@click.pass_context
def member_register(ctx: click.Context, key_file: Path, node_url: str, timeout: float, no_wait: bool, as_json: bool,
                    member_key: str, role: str, name: str, tax_id: str | None, taxpayer_type: str | None,
                    quota: int | None, serves: tuple[str, ...]) -> None:
    """Register a member (signed by a tax authority key)."""
    body: dict[str, Any] = {"key": _public_key(member_key), "role": role, "name": name}
    if tax_id:
        body["tax_id"] = tax_id
    if taxpayer_type:
        body["taxpayer_type"] = taxpayer_type
    if quota is not None:
        body["monthly_quota"] = quota
    if serves:
        body["serves"] = [_public_key(s) for s in serves]
    submit(ctx, key_file, node_url, "register_member", body, timeout=timeout, no_wait=no_wait, as_json=as_json)


@member.command("update")
@common
@click.option("--member", "member_key", required=True, help="The member's public key (hex) or key file.")
@click.option("--status", type=click.Choice(["active", "frozen", "deregistered"]))
@click.option("--name")
@click.option("--taxpayer-type", type=click.Choice(["general", "small"]))
@click.option("--quota", type=click.IntRange(0), help="New monthly quota in fen.")
@click.option("--serves", multiple=True, help="Replace the enterprises a platform serves; repeatable.")
@click.pass_context
def member_update(ctx: click.Context, key_file: Path, node_url: str, timeout: float, no_wait: bool, as_json: bool,
                  member_key: str, status: str | None, name: str | None, taxpayer_type: str | None,
                  quota: int | None, serves: tuple[str, ...]) -> None:
    """Change a member's status, quota, name, taxpayer type or served enterprises."""
    body: dict[str, Any] = {"key": _public_key(member_key)}
    for k, v in (("status", status), ("name", name), ("taxpayer_type", taxpayer_type), ("monthly_quota", quota)):
        if v is not None:
            body[k] = v
    if serves:
        body["serves"] = [_public_key(s) for s in serves]
    if len(body) == 1:
        raise click.UsageError("nothing to change: give --status, --name, --taxpayer-type, --quota or --serves")
    submit(ctx, key_file, node_url, "update_member", body, timeout=timeout, no_wait=no_wait, as_json=as_json)


# -- invoices -------------------------------------------------------------------------------------

@click.group()
def invoice() -> None:
    """Issue, move, claim, declare, reverse and inspect invoices."""


def _parse_line(text: str) -> dict[str, Any]:
    try:
        name, qty, price, rate = text.rsplit(":", 3)
        return amounts.build_line(name, int(qty), int(price), int(rate))
    except ValueError:
        raise click.BadParameter(f"{text!r}: a line is NAME:QUANTITY:UNIT_PRICE_FEN:RATE_BP, e.g. 'Chair:2:45000:1300'") from None


@invoice.command("issue")
@common
@click.option("--seller-tax-id", required=True)
@click.option("--seller-name", required=True)
@click.option("--buyer-name", required=True)
@click.option("--buyer-tax-id")
@click.option("--holder", required=True, help="Buyer's wallet: public key (hex) or key file.")
@click.option("--line", "lines", multiple=True, required=True, help="NAME:QUANTITY:UNIT_PRICE_FEN:RATE_BP; repeatable.")
@click.option("--number", help="20-digit number (default: a fresh one).")
@click.option("--payment-ref", help="Payment id: issuing twice for one payment is refused.")
@click.option("--remark")
@click.pass_context
def invoice_issue(ctx: click.Context, key_file: Path, node_url: str, timeout: float, no_wait: bool, as_json: bool,
                  seller_tax_id: str, seller_name: str, buyer_name: str, buyer_tax_id: str | None, holder: str,
                  lines: tuple[str, ...], number: str | None, payment_ref: str | None, remark: str | None) -> None:
    """Issue an invoice (merchant key); amounts and tax are computed from the lines."""
    parsed = [_parse_line(t) for t in lines]
    amount, tax, total = amounts.totals(parsed)
    body: dict[str, Any] = {"number": number or new_invoice_number(), "seller_tax_id": seller_tax_id,
                            "seller_name": seller_name, "buyer_name": buyer_name, "holder": _public_key(holder),
                            "lines": parsed, "amount": amount, "tax": tax, "total": total}
    for k, v in (("buyer_tax_id", buyer_tax_id), ("payment_ref", payment_ref), ("remark", remark)):
        if v:
            body[k] = v
    submit(ctx, key_file, node_url, "issue", body, timeout=timeout, no_wait=no_wait, as_json=as_json)


def _simple(name: str, kind: str, help_: str, *options: Callable[[Any], Any]) -> None:
    @common
    @click.option("--number", required=True, help="The invoice's 20-digit number.")
    @click.pass_context
    def command(ctx: click.Context, key_file: Path, node_url: str, timeout: float, no_wait: bool, as_json: bool,
                number: str, **extra: Any) -> None:
        body: dict[str, Any] = {"number": number}
        for k, v in extra.items():
            if v is None:
                continue
            body[k] = _public_key(v) if k == "to" else v
        submit(ctx, key_file, node_url, kind, body, timeout=timeout, no_wait=no_wait, as_json=as_json)

    command.__doc__ = help_
    for opt in options:
        command = opt(command)
    invoice.command(name)(command)


_simple("transfer", "transfer", "Give an invoice you hold to another wallet (holder key).",
        click.option("--to", required=True, help="New holder: public key (hex) or key file."))
_simple("lock", "lock", "Lock an invoice for a claim (platform key).", click.option("--claim", "claim_id", required=True))
_simple("unlock", "unlock", "Release a lock (the locking platform's key).")
_simple("reimburse", "reimburse", "Reimburse an invoice, locked by you or held by an enterprise you serve (platform key).",
        click.option("--claim", "claim_id", required=True))
_simple("declare", "declare", "Declare a reimbursed invoice for a tax period (enterprise or its platform).",
        click.option("--period", required=True, help="YYYY-MM"))
_simple("red-request", "request_red", "Ask to reverse (red letter) part or all of an invoice (seller key).",
        click.option("--amount", type=click.IntRange(1), required=True, help="Fen of the remaining total."),
        click.option("--reason", required=True))
_simple("red-confirm", "confirm_red", "Accept a pending red-letter request (holder key).")
_simple("red-reject", "reject_red", "Refuse a pending red-letter request (holder key).", click.option("--reason"))
_simple("flag", "flag", "Stop an invoice from moving (tax key).", click.option("--reason", required=True))
_simple("clear", "clear", "Lift a flag (tax key).", click.option("--reason"))


def _fmt_state(s: dict[str, Any]) -> list[str]:
    yuan = lambda fen: f"{fen / 100:,.2f}"  # noqa: E731
    lines = [
        f"invoice {s['number']}  {s['status']}{'  FLAGGED: ' + s['flag_reason'] if s['flagged'] else ''}",
        f"  seller   {s['seller_name']} ({s['seller_tax_id']})",
        f"  buyer    {s['buyer_name']}{' (' + s['buyer_tax_id'] + ')' if s['buyer_tax_id'] else ''}",
        f"  issued   {calendar.date_of(s['issued_at_ms'])} at height {s['issued_height']}",
        f"  holder   {s['holder']}",
        f"  amount {yuan(s['amount'])} + tax {yuan(s['tax'])} = total {yuan(s['total'])} yuan; remaining {yuan(s['remaining'])}",
    ]
    for line in s["lines"]:
        lines.append(f"    {line['name']:<24} {line['quantity']:>4} × {yuan(line['unit_price']):>10}  "
                     f"{line['rate_bp'] / 100:g}%  {yuan(line['amount']):>10} + {yuan(line['tax'])}")
    if s.get("claim"):
        lines.append(f"  claim    {s['claim']['claim_id']} by platform {s['claim']['platform'][:16]}…")
    if s.get("declared_period"):
        lines.append(f"  declared for {s['declared_period']}")
    if s.get("red_request"):
        lines.append(f"  red-letter request pending: {yuan(s['red_request']['amount'])} yuan ({s['red_request']['reason']})")
    return lines


def _history_lines(history: list[dict[str, Any]]) -> list[str]:
    out = [f"  {'height':>6}  {'transaction':<13} outcome"]
    for e in history:
        outcome = "ok" if e["status"] == "ok" else f"rejected {e['code']}"
        out.append(f"  {e['height']:>6}  {e['kind']:<13} {outcome}  (tx {e['tx_id'][:12]}…)")
    return out


@invoice.command("show")
@click.option("--number", required=True)
@click.option("--node", "node_url", default=DEFAULT_NODE, show_default=True, envvar="CHAINVOICE_NODE")
@json_option
@click.pass_context
def invoice_show(ctx: click.Context, number: str, node_url: str, as_json: bool) -> None:
    """An invoice's current state and its history."""
    doc = NodeClient(node_url).invoice(number)
    emit(ctx, doc, lambda: "\n".join(
        (_fmt_state(doc["state"]) if doc["state"] else [f"invoice {number} does not exist"])
        + [f"history (as of height {doc['height']}):"] + _history_lines(doc["history"])), as_json)


@invoice.command("history")
@click.option("--number", required=True)
@click.option("--node", "node_url", default=DEFAULT_NODE, show_default=True, envvar="CHAINVOICE_NODE")
@json_option
@click.pass_context
def invoice_history(ctx: click.Context, number: str, node_url: str, as_json: bool) -> None:
    """Every transaction that named the invoice, accepted or rejected."""
    doc = NodeClient(node_url).invoice(number)
    emit(ctx, {"number": number, "history": doc["history"]},
         lambda: "\n".join([f"invoice {number}:"] + _history_lines(doc["history"])), as_json)


@invoice.command("export")
@click.option("--number", required=True)
@click.option("--ubl", "as_ubl", is_flag=True, required=True, help="UBL 2.1 XML (EN 16931 core fields).")
@click.option("--credit-note", is_flag=True, help="Export the red-letter reversal as a credit note (381).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout.")
@click.option("--node", "node_url", default=DEFAULT_NODE, show_default=True, envvar="CHAINVOICE_NODE")
@json_option
@click.pass_context
def invoice_export(ctx: click.Context, number: str, as_ubl: bool, credit_note: bool, out: Path | None,
                   node_url: str, as_json: bool) -> None:
    """Export an invoice (or its red-letter credit note) as UBL 2.1 XML."""
    xml = NodeClient(node_url).ubl(number, "credit-note" if credit_note else "invoice")
    if out is not None:
        out.write_text(xml)
        emit(ctx, {"number": number, "file": str(out), "bytes": len(xml)}, f"wrote {out}", as_json)
    elif as_json:
        emit(ctx, {"number": number, "xml": xml}, "", as_json)
    else:
        click.echo(xml, nl=False)
