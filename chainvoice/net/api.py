"""The node's public HTTP API (SPEC §6): JSON answers, bytes as lowercase hex, errors as
``{"error": {"code", "message"}}`` with a 4xx status — never a stack trace."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from .. import audit, codec, merkle, ubl
from ..chain.proof import ProofUnavailable, build_bundle, build_consortium_proof
from ..ledger import calendar
from ..ledger.codes import TOO_LARGE, MalformedTransaction
from ..ledger.records import invoice_key
from ..ledger.schema import NUMBER_PATTERN
from ..ledger.transaction import MAX_TX_BYTES
from .openapi import openapi_document

if TYPE_CHECKING:
    from ..node import Committed, Node

log = logging.getLogger("chainvoice.api")

# Matched with ``fullmatch`` and ASCII classes only: ``str.isdigit`` and ``\d`` accept digits
# such as "²" or "٣" that ``int`` then refuses or reads differently, and ``$`` lets a trailing
# newline through.
_NUMBER = re.compile(NUMBER_PATTERN)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS18 = re.compile(r"[0-9]{1,18}")
_WINDOW = re.compile(r"[0-9]{1,2}")
NODE_KEY = web.AppKey("node", object)
# Longest a client may hold an SSE stream idle before a keep-alive comment is sent.
SSE_KEEPALIVE_S = 15.0


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return web.json_response(body, status=status)


@web.middleware
async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, **e.extra)
    except MalformedTransaction as e:
        status = 413 if e.code == TOO_LARGE else 400
        return error_response(status, e.code, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}.get(e.status, "BAD_REQUEST")
        response = error_response(e.status, code, e.reason or code)
        if "Allow" in e.headers:  # a 405 names the methods the resource has (RFC 9110 §15.5.6)
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return error_response(500, "INTERNAL", "internal error; the node logged the details")


def _node(request: web.Request) -> "Node":
    return request.app[NODE_KEY]  # type: ignore[return-value]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":")))


def _committed_json(c: "Committed") -> dict[str, Any]:
    r = c.receipt
    return {"tx_id": c.tx_id.hex(), "status": "committed", "height": c.height, "index": c.index,
            "receipt": {"status": r.status, "code": r.code, "message": r.message,
                        "reference": codec.to_json(r.reference) if r.reference else None}}


def _number(request: web.Request) -> str:
    number = request.match_info["number"]
    if not _NUMBER.fullmatch(number):
        raise ApiError(400, "BAD_NUMBER", "an invoice number is 20 digits")
    return number


def _height(text: str) -> int:
    if not _DIGITS18.fullmatch(text):
        raise ApiError(400, "BAD_HEIGHT", "height must be a non-negative integer")
    return int(text)


# -- transactions -------------------------------------------------------------------------------

async def post_transaction(request: web.Request) -> web.Response:
    node = _node(request)
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype not in ("application/msgpack", "application/x-msgpack", "application/octet-stream"):
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send one signed transaction as Content-Type: application/msgpack")
    if request.content_length is not None and request.content_length > MAX_TX_BYTES:
        raise ApiError(413, TOO_LARGE, f"a transaction is at most {MAX_TX_BYTES} bytes")
    raw = await request.read()
    wait = request.query.get("wait", "")
    if wait not in ("", "commit"):
        raise ApiError(400, "BAD_QUERY", "wait must be 'commit' or absent")
    timeout = request.query.get("timeout", "")
    try:
        timeout_s = float(timeout) if timeout else 15.0
    except ValueError:
        raise ApiError(400, "BAD_QUERY", "timeout must be a number of seconds") from None
    if not 0 < timeout_s <= 60:
        raise ApiError(400, "BAD_QUERY", "timeout must be in (0, 60] seconds")
    try:
        sub = node.submit(raw)
    except MalformedTransaction as e:
        node.metrics.rejected_input.labels(e.code).inc()
        raise
    if sub.committed is not None:
        return _json({**_committed_json(sub.committed), "duplicate": True})
    if not wait:
        return _json({"tx_id": sub.tx.tx_id.hex(), "status": "pending"}, status=202)
    result = await node.wait_commit(sub.tx.tx_id, timeout_s)
    if result is None:
        raise ApiError(504, "TIMEOUT", f"not committed within {timeout_s:g} s; it may still commit",
                       tx_id=sub.tx.tx_id.hex())
    if isinstance(result, str):
        raise ApiError(409, "DROPPED", f"transaction left the mempool without committing: {result}",
                       tx_id=sub.tx.tx_id.hex())
    return _json(_committed_json(result))


# A batch carries at most this many transactions (a few MB): enough to amortise one HTTP request
# over many transactions, small enough to bound what one request can make a node do.
MAX_BATCH_TXS = 1000


async def post_batch(request: web.Request) -> web.Response:
    """Many signed transactions in one request (a msgpack array of their bytes). Each is checked
    on its own; the answer lists, in order, pending / committed / the refusal of each."""
    node = _node(request)
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype not in ("application/msgpack", "application/x-msgpack", "application/octet-stream"):
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send a msgpack array of signed transactions")
    raw = await request.read()
    try:
        items = codec.decode(raw, canonical=False)
    except codec.EncodingError as exc:
        raise ApiError(400, "BAD_ENCODING", str(exc)) from None
    if type(items) is not list or not all(type(x) is bytes for x in items):
        raise ApiError(400, "BAD_ENVELOPE", "a batch is a msgpack array of transaction bytes")
    if len(items) > MAX_BATCH_TXS:
        raise ApiError(413, TOO_LARGE, f"a batch holds at most {MAX_BATCH_TXS} transactions")
    wait = request.query.get("wait", "")
    if wait not in ("", "commit"):
        raise ApiError(400, "BAD_QUERY", "wait must be 'commit' or absent")
    results = node.submit_many(items)
    out: list[dict[str, Any]] = []
    waits = []
    for r in results:
        if isinstance(r, MalformedTransaction):
            out.append({"status": "refused", "error": {"code": r.code, "message": r.message}})
        elif r.committed is not None:
            out.append({**_committed_json(r.committed), "duplicate": True})
        else:
            out.append({"tx_id": r.tx.tx_id.hex(), "status": "pending"})
            if wait:
                waits.append((len(out) - 1, r.tx.tx_id))
    if waits:
        done = await node.wait_commits([tx_id for _, tx_id in waits], 30.0, just_submitted=True)
        for (i, tx_id), result in zip(waits, done):
            if result is None:
                out[i] = {"tx_id": tx_id.hex(), "status": "pending", "error": {"code": "TIMEOUT", "message": "not committed in 30 s"}}
            elif isinstance(result, str):
                out[i] = {"tx_id": tx_id.hex(), "status": "dropped", "error": {"code": "DROPPED", "message": result}}
            else:
                out[i] = _committed_json(result)
    return _json({"results": out})


async def get_transaction(request: web.Request) -> web.Response:
    node = _node(request)
    text = request.match_info["tx_id"]
    if not _HEX64.fullmatch(text):
        raise ApiError(400, "BAD_TX_ID", "a transaction id is 64 hex characters")
    tx_id = bytes.fromhex(text)
    location = node.store.tx_location(tx_id)
    if location is None:
        raise ApiError(404, "UNKNOWN_TRANSACTION", "no committed transaction with this id")
    height, index = location
    block = node.store.block(height)
    assert block is not None
    receipts = node.store.receipts(height)
    raw = block.txs[index]
    tx = codec.decode(raw)
    leaves = [r.leaf() for r in receipts]
    cert = node.store.certificate(height)
    return _json({
        "tx_id": text.lower(), "height": height, "index": index, "kind": tx["kind"],
        "signer": tx["signer"].hex(), "body": codec.to_json(tx["body"]), "tx": raw.hex(),
        "receipt": receipts[index].to_map() | {"tx_id": text.lower(), "reference": codec.to_json(receipts[index].reference)},
        "receipt_leaf": leaves[index].hex(),
        "proofs": {
            "tx": {"index": index, "tree_size": len(block.txs),
                   "path": [p.hex() for p in merkle.inclusion_proof(list(block.txs), index)]},
            "receipt": {"index": index, "tree_size": len(leaves),
                        "path": [p.hex() for p in merkle.inclusion_proof(leaves, index)]},
        },
        "header": codec.to_json(block.header.to_map()), "header_bytes": block.header.encoded.hex(),
        "block_hash": block.hash.hex(),
        "certificate": None if cert is None else codec.to_json(cert.to_map()),
    })


# -- invoices -----------------------------------------------------------------------------------

def _invoice_state(node: "Node", number: str) -> dict[str, Any] | None:
    raw = node.store.state_value(invoice_key(number))
    return None if raw is None else codec.decode(raw, canonical=False)


async def get_invoice(request: web.Request) -> web.Response:
    node = _node(request)
    number = _number(request)
    state = _invoice_state(node, number)
    history = node.store.history(number)
    if state is None and not history:
        raise ApiError(404, "UNKNOWN_INVOICE", f"no invoice {number} and no transaction naming it")
    return _json({
        "number": number, "height": node.store.tip.height,
        "state": None if state is None else codec.to_json(state),
        "history": [{"height": e.height, "index": e.index, "tx_id": e.tx_id.hex(), "kind": e.kind,
                     "signer": e.signer.hex(), "status": e.status, "code": e.code} for e in history],
    })


async def get_proof(request: web.Request) -> web.Response:
    node = _node(request)
    number = _number(request)
    at = request.query.get("height")
    height = node.store.tip.height if at is None else _height(at)
    block = node.store.block(height)
    if block is None:
        raise ApiError(404, "UNKNOWN_BLOCK", f"no block at height {height}")
    try:
        bundle = build_bundle(number, block.header, node.store.certificate(height), node.store.node, node.store.value)
    except ProofUnavailable as e:
        raise ApiError(404, "PROOF_UNAVAILABLE", str(e)) from None
    return _json(bundle)


async def get_ubl(request: web.Request) -> web.Response:
    """The invoice as UBL 2.1 (EN 16931 core); ?document=credit-note for its red-letter reversal."""
    node = _node(request)
    number = _number(request)
    state = _invoice_state(node, number)
    if state is None:
        raise ApiError(404, "UNKNOWN_INVOICE", f"no invoice {number}")
    document = request.query.get("document", "invoice")
    doc = codec.to_json(state)
    if document == "invoice":
        xml = ubl.invoice_xml(doc)
    elif document == "credit-note":
        if doc.get("reversed_amount", 0) <= 0:
            raise ApiError(404, "NO_REVERSAL", f"invoice {number} has no red-letter reversal")
        xml = ubl.credit_note_xml(doc, _last_reversal_ms(node, number))
    else:
        raise ApiError(400, "BAD_QUERY", "document must be 'invoice' or 'credit-note'")
    return web.Response(text=xml, content_type="application/xml")


def _last_reversal_ms(node: "Node", number: str) -> int | None:
    """When the latest confirmed red letter was committed (the credit note's issue date)."""
    for e in reversed(node.store.history(number)):
        if e.status == "ok" and e.kind in ("confirm_red", "request_red"):
            block = node.store.block(e.height)
            return None if block is None else block.header.timestamp_ms
    return None


async def check(request: web.Request) -> web.Response:
    """The public check: does an invoice with this number, issue date and total exist?"""
    node = _node(request)
    q = request.query
    number, date, total = q.get("number", ""), q.get("date", ""), q.get("total", "")
    if not _NUMBER.fullmatch(number):
        raise ApiError(400, "BAD_NUMBER", "number must be the invoice's 20 digits")
    if not calendar.is_date(date):
        raise ApiError(400, "BAD_DATE", "date must be the issue date as YYYY-MM-DD")
    if not _DIGITS18.fullmatch(total):
        raise ApiError(400, "BAD_TOTAL", "total must be the invoice total in fen (an integer)")
    state = _invoice_state(node, number)
    height = node.store.tip.height
    if state is None:
        return _json({"result": "unknown", "number": number, "height": height,
                      "message": "no such invoice on the chain"})
    mismatches = []
    issued = calendar.date_of(state["issued_at_ms"])
    if issued != date:
        mismatches.append("date")
    if state["total"] != int(total):
        mismatches.append("total")
    return _json({
        "result": "inconsistent" if mismatches else "consistent", "number": number, "height": height,
        "mismatches": mismatches, "status": state["status"], "flagged": state["flagged"],
        "remaining": state["remaining"], "seller_name": state["seller_name"], "seller_tax_id": state["seller_tax_id"],
        "issued_on": issued if not mismatches else None,
        "message": "matches the chain" if not mismatches else f"differs from the chain in {', '.join(mismatches)}",
    })


async def wallet(request: web.Request) -> web.Response:
    node = _node(request)
    holder = request.match_info["holder"]
    if not _HEX64.fullmatch(holder):
        raise ApiError(400, "BAD_HOLDER", "a holder is a 64-hex-character public key")
    invoices = []
    for number in node.store.wallet(bytes.fromhex(holder)):
        s = _invoice_state(node, number)
        if s is not None:
            invoices.append({"number": number, "status": s["status"], "total": s["total"], "remaining": s["remaining"],
                             "seller_name": s["seller_name"], "seller_tax_id": s["seller_tax_id"],
                             "issued_at_ms": s["issued_at_ms"], "flagged": s["flagged"]})
    return _json({"holder": holder.lower(), "height": node.store.tip.height, "invoices": invoices})


async def events(request: web.Request) -> web.StreamResponse:
    node = _node(request)
    holders = {h.lower() for h in request.query.getall("holder", []) if h}
    sellers = {s for s in request.query.getall("seller", []) if s}
    for h in holders:
        if not _HEX64.fullmatch(h):
            raise ApiError(400, "BAD_HOLDER", "holder must be a 64-hex-character public key")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    sub = node.events.subscribe(holders, sellers)
    try:
        await response.write(b": subscribed\n\n")
        while True:
            try:
                event = await asyncio.wait_for(sub.queue.get(), SSE_KEEPALIVE_S)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            data = json.dumps(event, separators=(",", ":"))
            await response.write(f"event: invoice\nid: {event['height']}-{event['index']}\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        node.events.unsubscribe(sub)
    return response


# -- blocks, status, consortium ------------------------------------------------------------------

def _block_json(node: "Node", height: int) -> dict[str, Any]:
    block = node.store.block(height)
    if block is None:
        raise ApiError(404, "UNKNOWN_BLOCK", f"no block at height {height}")
    cert = node.store.certificate(height)
    receipts = node.store.receipts(height)
    txs = []
    for raw, r in zip(block.txs, receipts):
        t = codec.decode(raw)
        txs.append({"tx_id": r.tx_id.hex(), "kind": t["kind"], "signer": t["signer"].hex(),
                    "number": t["body"].get("number"), "status": r.status, "code": r.code})
    return {"height": height, "hash": block.hash.hex(), "header": codec.to_json(block.header.to_map()),
            "header_bytes": block.header.encoded.hex(),
            "certificate": None if cert is None else codec.to_json(cert.to_map()), "transactions": txs}


async def get_block(request: web.Request) -> web.Response:
    node = _node(request)
    text = request.match_info["height"]
    height = node.store.tip.height if text == "latest" else _height(text)
    return _json(_block_json(node, height))


async def audit_risk(request: web.Request) -> web.Response:
    node = _node(request)
    w = request.query.get("window_months", "3")
    if not _WINDOW.fullmatch(w) or not 1 <= int(w) <= 24:
        raise ApiError(400, "BAD_QUERY", "window_months must be 1..24")
    tip = node.store.tip
    return _json({"height": tip.height, **audit.risk(node.store.audit_view(), tip.timestamp_ms, int(w))})


async def audit_report(request: web.Request) -> web.Response:
    node = _node(request)
    month = request.query.get("month", "")
    if not calendar.is_period(month):
        raise ApiError(400, "BAD_QUERY", "month must be YYYY-MM")
    return _json({"month": month, "height": node.store.tip.height,
                  "merchants": audit.report_rows(node.store.audit_view(), month)})


async def status(request: web.Request) -> web.Response:
    return _json(_node(request).status())


async def consortium(request: web.Request) -> web.Response:
    node = _node(request)
    doc = codec.to_json(node.consortium.to_map())
    return _json({**doc, "genesis_hash": node.genesis_hash.hex(), "quorum": node.consortium.quorum})


async def consortium_proof(request: web.Request) -> web.Response:
    """The consortium leaf of the genesis state with its path: checkable against a pinned genesis
    hash, so a verifier need not take this node's word for the node keys."""
    node = _node(request)
    genesis = node.store.block(0)
    if genesis is None:  # pragma: no cover - a node always holds its genesis
        raise ApiError(404, "PROOF_UNAVAILABLE", "this node holds no genesis block")
    try:
        return _json(build_consortium_proof(genesis.header, node.store.node, node.store.value))
    except ProofUnavailable as e:
        raise ApiError(404, "PROOF_UNAVAILABLE", str(e)) from None


async def evidence(request: web.Request) -> web.Response:
    node = _node(request)
    return _json({"evidence": [codec.to_json(codec.decode(e, canonical=False)) for e in node.store.evidence()]})


async def metrics(request: web.Request) -> web.Response:
    node = _node(request)
    body = node.metrics.render(node.status())
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def openapi(request: web.Request) -> web.Response:
    return _json(openapi_document())


async def index(request: web.Request) -> web.Response:
    page = resources.files("chainvoice.net").joinpath("static/index.html").read_text()
    return web.Response(text=page, content_type="text/html")


async def _post_only(request: web.Request) -> web.Response:
    raise web.HTTPMethodNotAllowed(request.method, ["POST"])


def build_app(node: "Node") -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=MAX_BATCH_TXS * 4096 + 1024)
    app[NODE_KEY] = node
    r = app.router
    r.add_post("/v1/transactions", post_transaction)
    r.add_post("/v1/transactions/batch", post_batch)
    # Otherwise GET .../batch would reach the {tx_id} route and answer 400 "bad id".
    r.add_get("/v1/transactions/batch", _post_only)
    r.add_get("/v1/transactions/{tx_id}", get_transaction)
    r.add_get("/v1/invoices/{number}", get_invoice)
    r.add_get("/v1/invoices/{number}/proof", get_proof)
    r.add_get("/v1/invoices/{number}/ubl", get_ubl)
    r.add_get("/v1/check", check)
    r.add_get("/v1/wallets/{holder}/invoices", wallet)
    r.add_get("/v1/events", events)
    r.add_get("/v1/blocks/{height}", get_block)
    r.add_get("/v1/audit/risk", audit_risk)
    r.add_get("/v1/audit/report", audit_report)
    r.add_get("/v1/status", status)
    r.add_get("/v1/consortium", consortium)
    r.add_get("/v1/consortium/proof", consortium_proof)
    r.add_get("/v1/evidence", evidence)
    r.add_get("/metrics", metrics)
    r.add_get("/openapi.json", openapi)
    r.add_get("/", index)
    r.add_static("/static/", str(resources.files("chainvoice.net").joinpath("static")), show_index=False)
    return app
