"""A small synchronous client of the node API (for the CLI, the demo and scripts)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import crypto
from .ledger import calendar
from .ledger.transaction import Transaction, sign


class ClientError(Exception):
    """The node answered with an error, or could not be reached."""

    def __init__(self, status: int, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail or {}


class NodeClient:
    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._chain_id: str | None = None

    # -- transport ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None = None,
                 content_type: str | None = None, timeout_s: float | None = None) -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            data = exc.read()
            try:
                err = json.loads(data)["error"]
                raise ClientError(exc.code, err.get("code", "ERROR"), err.get("message", ""), err) from None
            except (ValueError, KeyError, TypeError):
                raise ClientError(exc.code, "HTTP_ERROR", f"HTTP {exc.code} from {self.url}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ClientError(0, "UNREACHABLE", f"cannot reach node at {self.url}: {reason}") from None
        try:
            return json.loads(data)
        except ValueError:
            raise ClientError(0, "BAD_RESPONSE", f"node at {self.url} did not answer JSON") from None

    def get(self, path: str, **query: Any) -> Any:
        q = {k: v for k, v in query.items() if v is not None}
        return self._request("GET", path + ("?" + urllib.parse.urlencode(q) if q else ""))

    # -- API ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.get("/v1/status")

    def consortium(self) -> dict[str, Any]:
        return self.get("/v1/consortium")

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = self.consortium()["chain_id"]
        return self._chain_id

    def invoice(self, number: str) -> dict[str, Any]:
        return self.get(f"/v1/invoices/{number}")

    def proof(self, number: str, height: int | None = None) -> dict[str, Any]:
        return self.get(f"/v1/invoices/{number}/proof", height=height)

    def ubl(self, number: str, document: str = "invoice") -> str:
        req = urllib.request.Request(f"{self.url}/v1/invoices/{number}/ubl?document={document}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as exc:
            try:
                err = json.loads(exc.read())["error"]
            except (ValueError, KeyError, TypeError):
                raise ClientError(exc.code, "HTTP_ERROR", f"HTTP {exc.code}") from None
            raise ClientError(exc.code, err.get("code", "ERROR"), err.get("message", "")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(0, "UNREACHABLE", f"cannot reach node at {self.url}: {getattr(exc, 'reason', exc)}") from None

    def check(self, number: str, date: str, total: int) -> dict[str, Any]:
        return self.get("/v1/check", number=number, date=date, total=total)

    def wallet(self, holder: bytes) -> dict[str, Any]:
        return self.get(f"/v1/wallets/{holder.hex()}/invoices")

    def transaction(self, tx_id: bytes) -> dict[str, Any]:
        return self.get(f"/v1/transactions/{tx_id.hex()}")

    def block(self, height: int | str = "latest") -> dict[str, Any]:
        return self.get(f"/v1/blocks/{height}")

    def submit_raw(self, raw: bytes, *, wait: bool = True, timeout_s: float = 15.0) -> dict[str, Any]:
        path = "/v1/transactions" + (f"?wait=commit&timeout={timeout_s:g}" if wait else "")
        return self._request("POST", path, raw, "application/msgpack", timeout_s=timeout_s + 5)

    def submit(self, tx: Transaction, *, wait: bool = True, timeout_s: float = 15.0) -> dict[str, Any]:
        return self.submit_raw(tx.raw, wait=wait, timeout_s=timeout_s)

    def sign_and_submit(self, key: crypto.SigningKey, kind: str, body: dict[str, Any], *,
                        wait: bool = True, timeout_s: float = 15.0) -> tuple[Transaction, dict[str, Any]]:
        tx = sign(key, self.chain_id, kind, body, new_nonce())
        return tx, self.submit(tx, wait=wait, timeout_s=timeout_s)

    def wait_until_up(self, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.status()
            except ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def new_nonce() -> bytes:
    return os.urandom(16)


def new_invoice_number(now_ms: int | None = None, region: str = "44", channel: str = "1") -> str:
    """A fresh 20-digit number: year (Beijing time), region, channel, then 15 digits from the
    clock and randomness (unique in practice; the chain rejects a duplicate anyway)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    year = calendar.beijing_date(now_ms)[0] % 100
    seq = (now_ms % 10**11) * 10**4 + int.from_bytes(os.urandom(2), "big") % 10**4
    return f"{year:02d}{region}{channel}{seq:015d}"
