"""The OpenAPI 3.1 description of the node API, with every transaction kind's body schema."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..ledger import codes, schema

HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
HEX = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
# What the server accepts in a path or query (either case); answers are always lowercase.
HEX32_IN = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
MAX_HEIGHT = 10**18 - 1  # heights in paths and queries are at most 18 digits
ERROR_BODY = {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": ERROR_BODY}}


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

NUMBER = {"type": "string", "pattern": schema.NUMBER_PATTERN}
HEADER = {"type": "object", "required": ["chain_id", "height", "prev_hash", "timestamp_ms", "proposer", "tx_count",
                                         "tx_root", "receipts_root", "state_root"], "properties": {
    "chain_id": {"type": "string"}, "height": {"type": "integer", "minimum": 0}, "prev_hash": HEX32,
    "timestamp_ms": {"type": "integer"}, "proposer": {"type": "string"}, "tx_count": {"type": "integer", "minimum": 0},
    "tx_root": HEX32, "receipts_root": HEX32, "state_root": HEX32,
}}
CERTIFICATE = {"type": ["object", "null"], "description": "null for genesis",
               "required": ["height", "view", "block_hash", "votes"], "properties": {
    "height": {"type": "integer"}, "view": {"type": "integer"}, "block_hash": HEX32,
    "votes": {"type": "array", "items": {"type": "object", "required": ["node", "signature"], "properties": {
        "node": {"type": "string"}, "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"}}}},
}}
INVOICE_STATE = {"type": "object", "description": "the invoice's state record (SPEC §5), bytes as hex",
                 "required": ["number", "seller_tax_id", "amount", "tax", "total", "remaining", "issued_at_ms",
                              "holder", "status", "flagged", "last_tx"], "properties": {
    "number": NUMBER, "seller_tax_id": {"type": "string"}, "amount": {"type": "integer"}, "tax": {"type": "integer"},
    "total": {"type": "integer"}, "remaining": {"type": "integer"}, "issued_at_ms": {"type": "integer"},
    "holder": HEX32, "status": {"type": "string", "enum": ["ISSUED", "LOCKED", "REIMBURSED", "DECLARED", "REVERSED"]},
    "flagged": {"type": "boolean"}, "last_tx": HEX32,
}}
INVOICE = {"type": "object", "required": ["number", "height", "state", "history"], "properties": {
    "number": NUMBER, "height": {"type": "integer"},
    "state": {"oneOf": [INVOICE_STATE, {"type": "null"}], "description": "null when only rejected transactions name it"},
    "history": {"type": "array", "items": {"type": "object",
                                           "required": ["height", "index", "tx_id", "kind", "signer", "status", "code"],
                                           "properties": {
        "height": {"type": "integer"}, "index": {"type": "integer"}, "tx_id": HEX32,
        "kind": {"type": "string", "enum": list(schema.KINDS)}, "signer": HEX32,
        "status": {"type": "string", "enum": ["ok", "rejected"]}, "code": {"type": "string"}}}},
}}
PROOF = {"type": "object", "required": ["number", "value", "state", "siblings", "header", "header_bytes", "certificate"],
         "properties": {
    "number": NUMBER, "value": {"oneOf": [HEX, {"type": "null"}]},
    "state": {"oneOf": [INVOICE_STATE, {"type": "null"}]},
    "siblings": {"type": "array", "items": HEX32}, "header": HEADER, "header_bytes": HEX, "certificate": CERTIFICATE,
    "other_leaf": {"type": ["object", "null"], "description": "absence proofs only"},
}}
INCLUSION = {"type": "object", "required": ["index", "tree_size", "path"], "properties": {
    "index": {"type": "integer"}, "tree_size": {"type": "integer"}, "path": {"type": "array", "items": HEX32}}}
TRANSACTION = {"type": "object", "required": ["tx_id", "height", "index", "kind", "signer", "body", "tx", "receipt",
                                              "receipt_leaf", "proofs", "header", "header_bytes", "block_hash",
                                              "certificate"], "properties": {
    "tx_id": HEX32, "height": {"type": "integer"}, "index": {"type": "integer"},
    "kind": {"type": "string", "enum": list(schema.KINDS)}, "signer": HEX32, "body": {"type": "object"}, "tx": HEX,
    "receipt": {"$ref": "#/components/schemas/Receipt"}, "receipt_leaf": HEX,
    "proofs": {"type": "object", "required": ["tx", "receipt"], "properties": {"tx": INCLUSION, "receipt": INCLUSION}},
    "header": HEADER, "header_bytes": HEX, "block_hash": HEX32, "certificate": CERTIFICATE,
}}
BLOCK = {"type": "object", "required": ["height", "hash", "header", "header_bytes", "certificate", "transactions"],
         "properties": {
    "height": {"type": "integer"}, "hash": HEX32, "header": HEADER, "header_bytes": HEX, "certificate": CERTIFICATE,
    "transactions": {"type": "array", "items": {"type": "object", "required": ["tx_id", "kind", "signer", "status", "code"],
                                                "properties": {
        "tx_id": HEX32, "kind": {"type": "string"}, "signer": HEX32, "number": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": ["ok", "rejected"]}, "code": {"type": "string"}}}},
}}
WALLET = {"type": "object", "required": ["holder", "height", "invoices"], "properties": {
    "holder": HEX32, "height": {"type": "integer"},
    "invoices": {"type": "array", "items": {"type": "object", "required": ["number", "status", "total", "remaining"],
                                            "properties": {"number": NUMBER, "status": {"type": "string"},
                                                           "total": {"type": "integer"}, "remaining": {"type": "integer"},
                                                           "flagged": {"type": "boolean"}}}},
}}
STATUS = {"type": "object", "required": ["node_id", "chain_id", "height", "block_hash"], "properties": {
    "node_id": {"type": "string"}, "chain_id": {"type": "string"}, "height": {"type": "integer"}, "block_hash": HEX32,
    "timestamp_ms": {"type": "integer"}, "view": {"type": "integer"}, "primary": {"type": "string"},
    "peers_connected": {"type": "array", "items": {"type": "string"}},
}}
CONSORTIUM_PROOF = {"type": "object", "required": ["header_bytes", "value", "siblings"], "properties": {
    "header_bytes": {"type": "string", "pattern": "^([0-9a-f]{2})+$"},
    "value": {"type": "string", "pattern": "^([0-9a-f]{2})+$"},
    "siblings": {"type": "array", "items": HEX32}}}
CONSORTIUM = {"type": "object", "required": ["chain_id", "f", "nodes", "genesis_hash", "quorum"], "properties": {
    "chain_id": {"type": "string"}, "f": {"type": "integer"}, "quorum": {"type": "integer"}, "genesis_hash": HEX32,
    "nodes": {"type": "array", "items": {"type": "object", "required": ["id", "public_key", "role"], "properties": {
        "id": {"type": "string"}, "public_key": HEX32, "role": {"type": "string"}}}},
}}
CHECK = {"type": "object", "required": ["result", "number", "height", "message"], "properties": {
    "result": {"type": "string", "enum": ["consistent", "inconsistent", "unknown"]}, "number": NUMBER,
    "height": {"type": "integer"}, "message": {"type": "string"},
    "mismatches": {"type": "array", "items": {"type": "string", "enum": ["date", "total"]}},
    "status": {"type": "string"}, "flagged": {"type": "boolean"}, "remaining": {"type": "integer"},
}}
BATCH = {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {
    "type": "object", "required": ["status"], "properties": {
        "status": {"type": "string", "enum": ["pending", "committed", "refused", "dropped"]},
        "tx_id": HEX32, "error": {"$ref": "#/components/schemas/ErrorBody"}}}}}}

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
                "responses": {"200": _ok("one result per transaction", BATCH), "400": _err("not a msgpack array of bytes"),
                              "413": _err("too many transactions"), "415": _err("not application/msgpack")},
            }},
            "/v1/transactions/{tx_id}": {"get": {
                "summary": "A committed transaction with its receipt, inclusion proofs, header and certificate",
                "parameters": [{"name": "tx_id", "in": "path", "required": True, "schema": HEX32_IN}],
                "responses": {"200": _ok("the transaction", TRANSACTION), "400": _err("bad id"), "404": _err("unknown")},
            }},
            "/v1/invoices/{number}": {"get": {
                "summary": "An invoice's state and full history (accepted and rejected transactions)",
                "parameters": [NUMBER_PARAM],
                "responses": {"200": _ok("state and history", INVOICE), "400": _err("bad number"), "404": _err("unknown")},
            }},
            "/v1/invoices/{number}/proof": {"get": {
                "summary": "Proof bundle: invoice state provable with the consortium keys only",
                "parameters": [NUMBER_PARAM, {"name": "height", "in": "query", "required": False,
                                              "schema": {"type": "integer", "minimum": 0, "maximum": MAX_HEIGHT}}],
                "responses": {"200": _ok("proof bundle", PROOF), "400": _err("bad number or height"),
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
                "responses": {"200": _ok("consistent, inconsistent or unknown", CHECK),
                    "400": _err("bad query")},
            }},
            "/v1/wallets/{holder}/invoices": {"get": {
                "summary": "Invoices a key currently holds",
                "parameters": [{"name": "holder", "in": "path", "required": True, "schema": HEX32_IN}],
                "responses": {"200": _ok("the wallet", WALLET), "400": _err("bad key")},
            }},
            "/v1/events": {"get": {
                "summary": "Server-sent events for committed transactions touching a holder or seller",
                "parameters": [{"name": "holder", "in": "query", "required": False, "schema": HEX32_IN},
                               {"name": "seller", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "text/event-stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                              "400": _err("bad filter")},
            }},
            "/v1/blocks/{height}": {"get": {
                "summary": "A block (or 'latest') with header, certificate and transaction summaries",
                "parameters": [{"name": "height", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": "^(latest|[0-9]{1,18})$"}}],
                "responses": {"200": _ok("the block", BLOCK), "400": _err("bad height"), "404": _err("no such block")},
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
                                   "responses": {"200": _ok("status", STATUS)}}},
            "/v1/consortium": {"get": {"summary": "Chain id, nodes (ids, roles, keys, addresses), f, genesis hash",
                                       "responses": {"200": _ok("the consortium", CONSORTIUM)}}},
            "/v1/consortium/proof": {"get": {
                "summary": "The consortium leaf of the genesis state with its state-tree path: "
                           "check it against a pinned genesis hash (SHA-256 of header_bytes)",
                "responses": {"200": _ok("consortium proof", CONSORTIUM_PROOF)}}},
            "/v1/evidence": {"get": {"summary": "Equivocation evidence this node has recorded",
                                     "responses": {"200": _ok("evidence", {"type": "object", "required": ["evidence"], "properties": {
                                         "evidence": {"type": "array", "items": {"type": "object"}}}})}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok("OpenAPI")}}},
            "/": {"get": {"summary": "Invoice verification page", "responses": {"200": {
                "description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": {"Error": ERROR, "ErrorBody": ERROR_BODY, "Receipt": RECEIPT, "Transaction": envelope, **kinds}},
    }
