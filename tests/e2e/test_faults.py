"""Crash faults on real processes: a backup killed mid-load catches up to identical hashes; the
primary killed triggers a view change and commits resume."""

from __future__ import annotations

import json
import threading
import time

import pytest

from chainvoice.client import ClientError, new_invoice_number
from chainvoice.ledger import amounts

from .conftest import start_network

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def fault_net(tmp_path_factory):
    net = start_network(tmp_path_factory.mktemp("faults"))
    try:
        ids = net.identities
        _, r = net.client(0).sign_and_submit(net.key("tax"), "register_member", {
            "key": net.key("shop").public_key, "role": "merchant", "name": "Shop", "tax_id": ids["shop"]["tax_id"],
            "taxpayer_type": "general", "monthly_quota": 10**12})
        assert r["receipt"]["status"] == "ok"
        yield net
    finally:
        net.stop_all()


def issue(net, node: int, *, wait: bool) -> dict:
    ids = net.identities
    lines = [amounts.build_line("Load", 1, 1000, 1300)]
    a, t, total = amounts.totals(lines)
    body = {"number": new_invoice_number(), "seller_tax_id": ids["shop"]["tax_id"], "seller_name": "Shop",
            "buyer_name": "Load", "holder": net.key("alice").public_key, "lines": lines, "amount": a, "tax": t, "total": total}
    return net.client(node).sign_and_submit(net.key("shop"), "issue", body, wait=wait, timeout_s=30)[1]


class Load:
    """Submits issues to the given nodes from a thread until stopped."""

    def __init__(self, net, nodes: list[int]) -> None:
        self.net, self.nodes, self.sent, self.errors = net, nodes, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                issue(self.net, self.nodes[i % len(self.nodes)], wait=False)
                self.sent += 1
            except ClientError:
                self.errors += 1
            i += 1
            time.sleep(0.01)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def block_hashes(net, node: int, upto: int) -> list[str]:
    c = net.client(node)
    return [c.block(h)["hash"] for h in range(upto + 1)]


def primary_index(net, alive: list[int]) -> int:
    s = net.client(alive[0]).status()
    return [e.id for e in net.entries].index(s["primary"])


def test_backup_killed_mid_load_catches_up_to_identical_hashes(fault_net):
    net = fault_net
    primary = primary_index(net, [0, 1, 2, 3])
    backup = next(i for i in range(4) if i != primary)
    others = [i for i in range(4) if i != backup]
    with Load(net, others) as load:
        time.sleep(1.5)
        net.kill(backup)
        killed_at = max(h for h in net.heights() if h is not None)
        time.sleep(2.0)
        restart = time.monotonic()
        net.start(backup)
        time.sleep(1.5)
    assert load.sent > 50
    top = max(h for h in net.heights() if h is not None)
    assert top > killed_at, "the three survivors kept committing"
    net.wait_height(top, timeout_s=60)
    caught_up = time.monotonic() - restart
    reference = block_hashes(net, others[0], top)
    for i in range(4):
        assert block_hashes(net, i, top) == reference, f"node {i} diverged"
    print(f"\nbackup restarted and caught up {top - killed_at}+ blocks in {caught_up:.1f} s")


def test_primary_killed_view_change_and_commits_resume(fault_net):
    net = fault_net
    alive = [0, 1, 2, 3]
    primary = primary_index(net, alive)
    view_before = net.client((primary + 1) % 4).status()["view"]
    net.kill(primary)
    survivors = [i for i in alive if i != primary]
    start = time.monotonic()
    answer = issue(net, survivors[0], wait=True)
    took = time.monotonic() - start
    assert answer["status"] == "committed" and answer["receipt"]["status"] == "ok"
    status = net.client(survivors[1]).status()
    assert status["view"] > view_before and status["primary"] != net.entries[primary].id
    # operators follow the view change in the structured logs: every line is JSON with the node,
    # its view and height, and the new view is announced
    log_path = net.directory / net.entries[survivors[1]].id / "node.log"
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    opened = [r for r in records if "view" in r]
    assert opened and all({"ts", "level", "node", "view", "height", "msg"} <= r.keys() for r in opened)
    assert any(r["msg"].startswith(f"view {status['view']} ") for r in records), "new view not logged"
    print(f"\nprimary {net.entries[primary].id} killed: view {view_before} -> {status['view']}, "
          f"a new transaction committed {took:.2f} s later")
    # the old primary comes back, catches up and agrees
    net.start(primary)
    top = max(h for h in net.heights() if h is not None)
    net.wait_height(top, timeout_s=60)
    assert block_hashes(net, primary, top) == block_hashes(net, survivors[0], top)
