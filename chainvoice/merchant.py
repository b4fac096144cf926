"""Transaction-is-invoicing: the merchant-side service that turns a payment into an invoice.

The payment provider (or the merchant's till) POSTs a payment notification; the service builds
the invoice, signs it with the merchant's key, submits it to a node and answers with the invoice
number once it is committed. The buyer's wallet receives it at the same moment through the
node's event stream (``GET /v1/events?holder=``). The payment id is the invoice's
``payment_ref``: a retried notification gets the invoice already issued, never a second one.

    POST /payments  {"payment_id": "...", "buyer_wallet": "<64 hex>", "buyer_name": "...",
                     "buyer_tax_id": "...", "lines": [{"name", "quantity", "unit_price", "rate_bp"}]}
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from . import crypto
from .client import new_invoice_number
from .ledger import amounts
from .ledger.codes import DUPLICATE_PAYMENT_REF, MalformedTransaction
from .ledger.schema import MAX_NAME, MAX_REF
from .ledger.transaction import sign

log = logging.getLogger("chainvoice.merchant")

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_PAYMENT_LINES = 200
# How long a notification may wait for its invoice to commit before the service answers 504 (the
# provider retries; the retry is answered with the same invoice).
COMMIT_WAIT_S = 15.0


class PaymentError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Merchant:
    key: crypto.SigningKey
    seller_tax_id: str
    seller_name: str
    node_url: str
    chain_id: str


def invoice_body(m: Merchant, payment: Any, number: str) -> dict[str, Any]:
    """The issue body for a payment notification, or PaymentError (HTTP 400) explaining why not."""
    if not isinstance(payment, dict):
        raise PaymentError(400, "BAD_PAYMENT", "a payment notification is a JSON object")
    pid = payment.get("payment_id")
    if not isinstance(pid, str) or not 0 < len(pid) <= MAX_REF:
        raise PaymentError(400, "BAD_PAYMENT", f"payment_id must be a string of 1..{MAX_REF} characters")
    wallet = payment.get("buyer_wallet")
    if not isinstance(wallet, str) or not _HEX64.match(wallet):
        raise PaymentError(400, "BAD_PAYMENT", "buyer_wallet must be the buyer's 64-hex-character public key")
    lines_in = payment.get("lines")
    if not isinstance(lines_in, list) or not 0 < len(lines_in) <= MAX_PAYMENT_LINES:
        raise PaymentError(400, "BAD_PAYMENT", f"lines must be a list of 1..{MAX_PAYMENT_LINES} items")
    lines = []
    for i, line in enumerate(lines_in):
        if not isinstance(line, dict):
            raise PaymentError(400, "BAD_PAYMENT", f"lines[{i}] must be an object")
        name, q, p, r = line.get("name"), line.get("quantity", 1), line.get("unit_price"), line.get("rate_bp")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise PaymentError(400, "BAD_PAYMENT", f"lines[{i}].name must be a string of 1..{MAX_NAME} characters")
        for label, v in (("quantity", q), ("unit_price", p), ("rate_bp", r)):
            if type(v) is not int or v < 0 or v > amounts.MAX_TOTAL_FEN:
                raise PaymentError(400, "BAD_PAYMENT", f"lines[{i}].{label} must be a non-negative integer (fen / basis points)")
        lines.append(amounts.build_line(name, q, p, r))
    amount, tax, total = amounts.totals(lines)
    buyer_name = payment.get("buyer_name") or "Individual"
    if not isinstance(buyer_name, str) or len(buyer_name) > MAX_NAME:
        raise PaymentError(400, "BAD_PAYMENT", "buyer_name must be a string")
    body: dict[str, Any] = {"number": number, "seller_tax_id": m.seller_tax_id, "seller_name": m.seller_name,
                            "buyer_name": buyer_name, "holder": bytes.fromhex(wallet), "lines": lines,
                            "amount": amount, "tax": tax, "total": total, "payment_ref": pid}
    buyer_tax_id = payment.get("buyer_tax_id")
    if buyer_tax_id:
        if not isinstance(buyer_tax_id, str):
            raise PaymentError(400, "BAD_PAYMENT", "buyer_tax_id must be a string")
        body["buyer_tax_id"] = buyer_tax_id
    return body


async def handle_payment(request: web.Request) -> web.Response:
    m: Merchant = request.app[MERCHANT_KEY]
    session: aiohttp.ClientSession = request.app[SESSION_KEY]
    try:
        payment = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(400, "BAD_PAYMENT", "the body must be JSON")
    try:
        body = invoice_body(m, payment, new_invoice_number())
        tx = sign(m.key, m.chain_id, "issue", body, os.urandom(16))
    except PaymentError as e:
        return _error(e.status, e.code, e.message)
    except MalformedTransaction as e:
        return _error(400, e.code, e.message)
    url = f"{m.node_url}/v1/transactions?wait=commit&timeout={COMMIT_WAIT_S:g}"
    try:
        async with session.post(url, data=tx.raw, headers={"Content-Type": "application/msgpack"}) as resp:
            answer = await resp.json()
            status = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return _error(502, "NODE_UNREACHABLE", f"could not reach the node: {exc.__class__.__name__}")
    if status != 200:
        err = answer.get("error", {}) if isinstance(answer, dict) else {}
        return _error(502 if status >= 500 else status, err.get("code", "NODE_ERROR"), err.get("message", "node refused"))
    receipt = answer["receipt"]
    payment_id = body["payment_ref"]
    if receipt["status"] == "ok":
        return _ok(payment_id, body["number"], "issued", answer, body["total"])
    if receipt["code"] == DUPLICATE_PAYMENT_REF:
        number = receipt["reference"]["number"]
        return _ok(payment_id, number, "already_issued", answer, None)
    return _error(422, receipt["code"], receipt["message"], tx_id=answer["tx_id"], height=answer["height"])


def _ok(payment_id: str, number: str, state: str, answer: dict[str, Any], total: int | None) -> web.Response:
    doc = {"payment_id": payment_id, "number": number, "state": state, "tx_id": answer["tx_id"],
           "height": answer["height"]}
    if total is not None:
        doc["total"] = total
    return web.json_response(doc)


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


MERCHANT_KEY = web.AppKey("merchant", Merchant)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def build_app(merchant: Merchant) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[MERCHANT_KEY] = merchant

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[SESSION_KEY] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=COMMIT_WAIT_S + 10))
        yield
        await app[SESSION_KEY].close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/payments", handle_payment)
    return app


def fetch_chain_id(node_url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{node_url}/v1/consortium", timeout=10) as r:
        return json.loads(r.read())["chain_id"]

