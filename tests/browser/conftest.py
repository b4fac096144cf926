"""Browser tests of the public verification page (chainvoice/net/static/).

A real chain is built in memory with the repo's own code (genesis, blocks of signed transactions,
2f+1 commit certificates); a small aiohttp app on 127.0.0.1 serves the real static files plus
stand-ins for the node API whose answers come from that chain (bundles from
chainvoice.chain.proof.build_bundle). The server can be told to tamper with a bundle or to lie in
its /v1/check answer, so the tests can show the page catches it.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright's sync API. Missing either is a
test FAILURE telling you to run scripts/install_browser.sh, never a silent skip.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pytest

from chainvoice import codec, smt
from chainvoice.chain.block import CommitCertificate, Vote, sign_commit
from chainvoice.chain.genesis import CONSORTIUM_KEY, Genesis
from chainvoice.chain.proof import build_bundle
from chainvoice.ledger import amounts, calendar
from chainvoice.ledger.records import invoice_key
from chainvoice.ledger.transaction import sign

from tests.support.consortium import TAX_IDS, make_genesis, node_key, open_chain
from tests.support.world import CHAIN_ID, T0, key_of

CHROMIUM = os.environ.get("CHAINVOICE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = "run scripts/install_browser.sh (installs Debian's chromium and the playwright package)"
STATIC = Path(str(resources.files("chainvoice.net").joinpath("static")))

# Every wait in the browser is bounded by this (ms); a verdict normally takes well under 1 s.
WAIT_MS = 15_000

# Invoice numbers in the test chain (20 digits: year 26, region 44, channel 0, sequence).
ISSUED = "26440000000000000101"      # issued to alice, still ISSUED
TAXI = "26440000000000000102"        # small-taxpayer taxi receipt, ISSUED
REIMBURSED = "26440000000000000103"  # alice -> acme -> reimbursed by plat1; a second claim rejected
FLAGGED = "26440000000000000104"     # flagged by the tax authority
HTML_NAME = "26440000000000000105"   # seller name full of HTML, to prove the page escapes it
FAKE = "26449999999999999999"        # never issued
ISSUE_DATE = calendar.date_of(T0)    # every block is on this (Beijing) day
EVIL_SELLER = '<img src=x id="pwned" onerror="document.title=\'pwned\'"><b>Shop</b> & Co'

_n = 0


def _tx(signer: str, kind: str, body: dict[str, Any]):
    global _n
    _n += 1
    return sign(key_of(signer), CHAIN_ID, kind, body, (10_000 + _n).to_bytes(16, "big"))


def _issue(number: str, *, seller: str = "shop", holder: str = "alice", seller_name: str = "Shenzhen Shop Ltd",
           price: int = 45_000, qty: int = 2):
    rate = 1300 if seller == "shop" else 300
    lines = [amounts.build_line("Office chair" if seller == "shop" else "Taxi ride", qty, price, rate)]
    a, t, total = amounts.totals(lines)
    return _tx(seller, "issue", {"number": number, "seller_tax_id": TAX_IDS[seller], "seller_name": seller_name,
                                 "buyer_name": holder.title(), "holder": key_of(holder).public_key, "lines": lines,
                                 "amount": a, "tax": t, "total": total})


def certify(genesis: Genesis, block, view: int = 0, signers: tuple[str, ...] | None = None) -> CommitCertificate:
    c = genesis.consortium
    signers = signers or c.node_ids[: c.quorum]
    votes = tuple(Vote(s, sign_commit(node_key(s), genesis.chain_id, block.height, view, block.hash)) for s in signers)
    return CommitCertificate(block.height, view, block.hash, votes)


@dataclass
class BrowserChain:
    genesis: Genesis
    store: Any
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def consortium_json(self) -> dict[str, Any]:
        c = self.genesis.consortium
        return {**codec.to_json(c.to_map()), "genesis_hash": self.genesis.block().hash.hex(), "quorum": c.quorum}

    def bundle(self, number: str, height: int | None = None) -> dict[str, Any]:
        s = self.store
        h = s.tip.height if height is None else height
        raw = build_bundle(number, s.block(h).header, s.certificate(h), s.node, s.value)
        return json.loads(json.dumps(raw))

    def consortium_proof(self) -> dict[str, Any]:
        """The proposed GET /v1/consortium/proof: the consortium leaf of the genesis state."""
        s = self.store
        header = s.block(0).header
        tree = smt.SparseMerkleTree(type("RO", (), {"get": staticmethod(s.node), "put_many": None})())
        proof = tree.prove(header.state_root, CONSORTIUM_KEY)
        value = s.value(CONSORTIUM_KEY, *tree.find(header.state_root, CONSORTIUM_KEY))
        return {"header_bytes": header.encoded.hex(), "value": value.hex(), "siblings": [x.hex() for x in proof.siblings]}

    def state(self, number: str) -> dict[str, Any] | None:
        raw = self.store.state_value(invoice_key(number))
        return None if raw is None else codec.decode(raw, canonical=False)


def build_chain(n: int = 4) -> BrowserChain:
    """Genesis + 5 certified blocks: issues, a transfer, a reimbursement (and a rejected second
    claim), a flag. Certificates alternate views and signer sets."""
    g = make_genesis(n=n)
    chain, store = open_chain(g)
    ids = g.consortium.node_ids
    q = g.consortium.quorum
    blocks = [
        [_issue(ISSUED), _issue(TAXI, seller="taxi", price=2_350, qty=1), _issue(REIMBURSED),
         _issue(FLAGGED), _issue(HTML_NAME, seller_name=EVIL_SELLER)]
        + [_issue(f"264400000000000002{i:02d}") for i in range(12)],
        [_tx("alice", "transfer", {"number": REIMBURSED, "to": key_of("acme").public_key})],
        [_tx("plat1", "reimburse", {"number": REIMBURSED, "claim_id": "EXP-2026-0042"})],
        [_tx("plat2", "reimburse", {"number": REIMBURSED, "claim_id": "CLM-77"}),
         _tx("tax", "flag", {"number": FLAGGED, "reason": "reported as a false invoice"})],
        [_issue(f"264400000000000003{i:02d}") for i in range(4)],
    ]
    for i, txs in enumerate(blocks):
        cand, skipped = chain.build(txs, T0 + 1000 * i, ids[i % len(ids)])
        assert not skipped
        signers = tuple(ids[(i + j) % len(ids)] for j in range(q))  # a different quorum each block
        store.save_commit(chain.commit(cand, certify(g, cand.block, view=i % 2, signers=signers)))
    out = BrowserChain(g, store)
    for number in (ISSUED, TAXI, REIMBURSED, FLAGGED, HTML_NAME):
        out.totals[number] = out.state(number)["total"]
    return out


# -- the fake node ----------------------------------------------------------------------------------

class FakeNode:
    """Serves the real static page and chain-backed stand-ins for the node API on 127.0.0.1:0."""

    def __init__(self, chain: BrowserChain, app_factory: Callable[[], Any] | None = None) -> None:
        self.chain = chain
        self.app_factory = app_factory  # serve this aiohttp app instead (e.g. the real API)
        self.tamper: dict[str, Callable[[dict[str, Any]], None]] = {}   # number -> edit the bundle in place
        self.check_lies: dict[str, dict[str, Any]] = {}                 # number -> fields to override in /v1/check
        self.consortium_doc: dict[str, Any] | None = None               # override /v1/consortium
        self.requests: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.runner = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="fake-node", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.tamper.clear()
        self.check_lies.clear()
        self.consortium_doc = None

    # -- handlers (shapes as in chainvoice/net/api.py) --------------------------------------------

    def _app(self):
        from aiohttp import web

        def err(status: int, code: str, message: str):
            return web.json_response({"error": {"code": code, "message": message}}, status=status)

        async def index(request):
            return web.Response(text=(STATIC / "index.html").read_text(), content_type="text/html")

        async def check(request):
            q = request.query
            number, date, total = q.get("number", ""), q.get("date", ""), q.get("total", "")
            if len(number) != 20 or not number.isdigit():
                return err(400, "BAD_NUMBER", "number must be the invoice's 20 digits")
            if not calendar.is_date(date):
                return err(400, "BAD_DATE", "date must be the issue date as YYYY-MM-DD")
            if not total.isdigit() or len(total) > 18:
                return err(400, "BAD_TOTAL", "total must be the invoice total in fen (an integer)")
            state = self.chain.state(number)
            height = self.chain.store.tip.height
            if state is None:
                body = {"result": "unknown", "number": number, "height": height, "message": "no such invoice on the chain"}
            else:
                mismatches = []
                issued = calendar.date_of(state["issued_at_ms"])
                if issued != date:
                    mismatches.append("date")
                if state["total"] != int(total):
                    mismatches.append("total")
                body = {
                    "result": "inconsistent" if mismatches else "consistent", "number": number, "height": height,
                    "mismatches": mismatches, "status": state["status"], "flagged": state["flagged"],
                    "remaining": state["remaining"], "seller_name": state["seller_name"],
                    "seller_tax_id": state["seller_tax_id"], "issued_on": issued if not mismatches else None,
                    "message": "matches the chain" if not mismatches else f"differs from the chain in {', '.join(mismatches)}",
                }
            body.update(self.check_lies.get(number, {}))
            return web.json_response(body)

        async def invoice(request):
            number = request.match_info["number"]
            state = self.chain.state(number)
            history = self.chain.store.history(number)
            if state is None and not history:
                return err(404, "UNKNOWN_INVOICE", f"no invoice {number} and no transaction naming it")
            return web.json_response({
                "number": number, "height": self.chain.store.tip.height,
                "state": None if state is None else codec.to_json(state),
                "history": [{"height": e.height, "index": e.index, "tx_id": e.tx_id.hex(), "kind": e.kind,
                             "signer": e.signer.hex(), "status": e.status, "code": e.code} for e in history],
            })

        async def proof(request):
            number = request.match_info["number"]
            bundle = self.chain.bundle(number)
            if number in self.tamper:
                self.tamper[number](bundle)
            return web.json_response(bundle)

        async def consortium(request):
            return web.json_response(self.consortium_doc or self.chain.consortium_json)

        async def consortium_proof(request):
            return web.json_response(self.chain.consortium_proof())

        @web.middleware
        async def log(request, handler):
            self.requests.append(request.path_qs)
            resp = await handler(request)
            resp.headers["Cache-Control"] = "no-store"
            return resp

        app = web.Application(middlewares=[log])
        r = app.router
        r.add_get("/", index)
        r.add_get("/v1/check", check)
        r.add_get("/v1/invoices/{number}", invoice)
        r.add_get("/v1/invoices/{number}/proof", proof)
        r.add_get("/v1/consortium", consortium)
        r.add_get("/v1/consortium/proof", consortium_proof)
        r.add_static("/static/", str(STATIC), show_index=False)
        return app

    # -- lifecycle ----------------------------------------------------------------------------------

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self.loop)
        try:
            app = self.app_factory() if self.app_factory else self._app()
            self.runner = web.AppRunner(app, access_log=None)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = self.runner.addresses[0][1]
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def start(self) -> "FakeNode":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake node did not start within 10 s")
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        assert not self._thread.is_alive(), "fake node thread did not stop"


# -- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chain() -> BrowserChain:
    return build_chain()


@pytest.fixture(scope="session")
def chain7() -> BrowserChain:
    """A 7-node consortium (f = 2): certificates need 5 votes."""
    return build_chain(n=7)


@pytest.fixture(scope="session")
def node(chain):
    server = FakeNode(chain).start()
    yield server
    server.stop()


class StubNode:
    """Just what chainvoice.net.api's read handlers use of a Node: its store and consortium."""

    def __init__(self, chain: BrowserChain) -> None:
        self.store = chain.store
        self.genesis = chain.genesis
        self.consortium = chain.genesis.consortium
        self.chain_id = self.consortium.chain_id
        self.genesis_hash = chain.genesis.block().hash


@pytest.fixture(scope="session")
def real_api_node(chain):
    """The node's real HTTP app (chainvoice.net.api.build_app) over the test chain."""
    from chainvoice.net.api import build_app

    server = FakeNode(chain, app_factory=lambda: build_app(StubNode(chain))).start()
    yield server
    server.stop()


@pytest.fixture(autouse=False)
def fresh_node(node):
    node.reset()
    yield node
    node.reset()


def _require_browser():
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        pytest.fail(f"the Python package 'playwright' is not installed: {INSTALL_HINT}", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}", pytrace=False)


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is started, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="package")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
    except Exception as exc:
        pw.stop()
        pytest.fail(f"could not launch {CHROMIUM} ({exc.__class__.__name__}: {str(exc)[:300]}); {INSTALL_HINT}",
                    pytrace=False)
    yield b
    b.close()
    pw.stop()


@pytest.fixture
def page(browser, fresh_node):
    """A fresh browser context (no localStorage carried over) on the fake node's page."""
    context = browser.new_context(viewport={"width": 1000, "height": 900}, device_scale_factor=1, locale="en-US",
                                  timezone_id="Asia/Shanghai")
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.js_errors = errors  # type: ignore[attr-defined]
    # Everything the page loads must come from the node itself.
    pg.route(re.compile(r"^(?!" + re.escape(fresh_node.url + "/") + r"|data:)"), lambda route: route.abort())
    pg.goto(fresh_node.url + "/")
    pg.wait_for_selector("body[data-ready='1']")
    yield pg
    context.close()


def check(pg, number: str, date: str, total: str, *, final: bool = True):
    """Fill the form, submit, and wait until the verdict card has a final state."""
    pg.fill("#number", number)
    pg.fill("#date", date)
    pg.fill("#total", total)
    pg.click("#check-btn")
    if final:
        pg.wait_for_selector("#verdict-card:not([data-state='pending'])")
    return pg


def verdict(pg) -> dict[str, str]:
    return {
        "state": pg.get_attribute("#verdict-card", "data-state"),
        "title": pg.inner_text("#verdict-title"),
        "reason": pg.inner_text("#verdict-reason") if pg.query_selector("#verdict-reason") else "",
        "check": pg.get_attribute("#check-card", "data-result") if pg.query_selector("#check-card") else "",
        "text": pg.inner_text("#verdict"),
    }


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def tampered(bundle: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    b = copy.deepcopy(bundle)
    edit(b)
    return b
