"""The OpenAPI 3.1 description of the node API, with every transaction kind's body schema."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..ledger import codes, schema

HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema_: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema_ or {"type": "object"}}}}


NUMBER_PARAM = {"name": "number", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": schema.NUMBER_PATTERN}}

RECEIPT = {"type": "object", "required": ["status", "code"], "properties": {
    "status": {"type": "string", "enum": ["ok", "rejected"]},
    "code": {"type": "string", "description": "empty when ok; one of the rejection codes otherwise",
             "enum": [""] + sorted(codes.REJECTION_CODES)},
    "message": {"type": "string"},
    "reference": {"type": ["object", "null"]},
}}

COMMITTED = {"type": "object", "required": ["tx_id", "status"], "properties": {
    "tx_id": HEX32, "status": {"type": "string", "enum": ["committed", "pending"]},
    "height": {"type": "integer"}, "index": {"type": "integer"}, "receipt": RECEIPT,
    "duplicate": {"type": "boolean"},
}}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    kinds = {
        f"Body_{kind}": schema.body_json_schema(fields) for kind, fields in schema.BODIES.items()
    }
    envelope = {
        "type": "object",
        "description": (
            "Sent as canonical MessagePack (Content-Type: application/msgpack): map keys sorted, "
            "bytes as bin. Signed message = b'chainvoice-tx-v1' + canonical(envelope without "
            "signature); tx_id = SHA-256 of the signed message."),
        "required": ["chain_id", "kind", "body", "signer", "nonce", "signature"],
        "properties": {
            "chain_id": {"type": "string"}, "kind": {"type": "string", "enum": list(schema.KINDS)},
            "body": {"oneOf": [{"$ref": f"#/components/schemas/Body_{k}"} for k in schema.KINDS]},
            "signer": {"type": "string", "description": "32-byte Ed25519 public key (bin)"},
            "nonce": {"type": "string", "description": "16 random bytes (bin)"},
            "signature": {"type": "string", "description": "64-byte Ed25519 signature (bin)"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "chainvoice node API", "version": "1",
                 "description": "Invoice life cycle on a PBFT consortium chain. JSON answers; bytes as lowercase hex; "
                                "errors are {error: {code, message}} with a 4xx status."},
        "paths": {
            "/v1/transactions": {"post": {
                "summary": "Submit one signed transaction",
                "parameters": [
                    {"name": "wait", "in": "query", "required": False, "schema": {"type": "string", "enum": ["commit"]}},
                    {"name": "timeout", "in": "query", "required": False,
                     "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 60}},
                ],
                "requestBody": {"required": True, "content": {"application/msgpack": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": _ok("committed (with wait=commit), or already committed (duplicate)", COMMITTED),
                              "202": _ok("accepted into the mempool", COMMITTED),
                              "400": _err("malformed: encoding, envelope, schema, chain or signature"),
                              "409": _err("dropped from the mempool"), "413": _err("too large"),
                              "415": _err("not application/msgpack"), "504": _err("not committed in time")},
            }},
            "/v1/transactions/batch": {"post": {
                "summary": "Submit up to 1000 signed transactions (a msgpack array of their bytes); one result each, in order",
                "parameters": [{"name": "wait", "in": "query", "required": False, "schema": {"type": "string", "enum": ["commit"]}}],
                "requestBody": {"required": True, "content": {"application/msgpack": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": _ok("one result per transaction"), "400": _err("not a msgpack array of bytes"),
                              "413": _err("too many transactions"), "415": _err("not application/msgpack")},
            }},
            "/v1/transactions/{tx_id}": {"get": {
                "summary": "A committed transaction with its receipt, inclusion proofs, header and certificate",
                "parameters": [{"name": "tx_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok("the transaction"), "400": _err("bad id"), "404": _err("unknown")},
            }},
            "/v1/invoices/{number}": {"get": {
                "summary": "An invoice's state and full history (accepted and rejected transactions)",
                "parameters": [NUMBER_PARAM],
                "responses": {"200": _ok("state and history"), "400": _err("bad number"), "404": _err("unknown")},
            }},
            "/v1/invoices/{number}/proof": {"get": {
                "summary": "Proof bundle: invoice state provable with the consortium keys only",
                "parameters": [NUMBER_PARAM, {"name": "height", "in": "query", "required": False,
                                              "schema": {"type": "integer", "minimum": 0}}],
                "responses": {"200": _ok("proof bundle"), "400": _err("bad number or height"),
                              "404": _err("no such block / state pruned")},
            }},
            "/v1/invoices/{number}/ubl": {"get": {
                "summary": "The invoice as UBL 2.1 XML (EN 16931 core); document=credit-note for its red-letter reversal (381)",
                "parameters": [NUMBER_PARAM, {"name": "document", "in": "query", "required": False,
                                              "schema": {"type": "string", "enum": ["invoice", "credit-note"]}}],
                "responses": {"200": {"description": "UBL XML", "content": {"application/xml": {"schema": {"type": "string"}}}},
                              "400": _err("bad number or document"), "404": _err("unknown invoice or no reversal")},
            }},
            "/v1/check": {"get": {
                "summary": "Public check of an invoice by number, issue date and total (fen)",
                "parameters": [
                    {"name": "number", "in": "query", "required": True, "schema": {"type": "string", "pattern": schema.NUMBER_PATTERN}},
                    {"name": "date", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
                    {"name": "total", "in": "query", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}},
                ],
                "responses": {"200": _ok("consistent, inconsistent or unknown", {"type": "object", "required": ["result"], "properties": {
                    "result": {"type": "string", "enum": ["consistent", "inconsistent", "unknown"]}}}),
                    "400": _err("bad query")},
            }},
            "/v1/wallets/{holder}/invoices": {"get": {
                "summary": "Invoices a key currently holds",
                "parameters": [{"name": "holder", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok("the wallet"), "400": _err("bad key")},
            }},
            "/v1/events": {"get": {
                "summary": "Server-sent events for committed transactions touching a holder or seller",
                "parameters": [{"name": "holder", "in": "query", "required": False, "schema": {"type": "string"}},
                               {"name": "seller", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "text/event-stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                              "400": _err("bad filter")},
            }},
            "/v1/blocks/{height}": {"get": {
                "summary": "A block (or 'latest') with header, certificate and transaction summaries",
                "parameters": [{"name": "height", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok("the block"), "400": _err("bad height"), "404": _err("no such block")},
            }},
            "/v1/audit/risk": {"get": {
                "summary": "Tax supervision risk signals: quota >= 95 %, volume spikes, circular invoicing, double claims",
                "parameters": [{"name": "window_months", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 24}}],
                "responses": {"200": _ok("signals"), "400": _err("bad window")}}},
            "/v1/audit/report": {"get": {
                "summary": "Per-merchant monthly figures: count, amount, tax, total, reversed (fen)",
                "parameters": [{"name": "month", "in": "query", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}}],
                "responses": {"200": _ok("report"), "400": _err("bad month")}}},
            "/v1/status": {"get": {"summary": "Node status: height, view, primary, peers",
                                   "responses": {"200": _ok("status")}}},
            "/v1/consortium": {"get": {"summary": "Chain id, nodes (ids, roles, keys, addresses), f, genesis hash",
                                       "responses": {"200": _ok("the consortium")}}},
            "/v1/evidence": {"get": {"summary": "Equivocation evidence this node has recorded",
                                     "responses": {"200": _ok("evidence")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok("OpenAPI")}}},
            "/": {"get": {"summary": "Invoice verification page", "responses": {"200": {
                "description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": {"Error": ERROR, "Receipt": RECEIPT, "Transaction": envelope, **kinds}},
    }
