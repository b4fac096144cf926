#!/usr/bin/env python3
"""Chaos harness (what `make chaos` runs): a real 4-node network under steady life-cycle load
while a seeded nemesis kills nodes (SIGKILL, the primary included), pauses them (SIGSTOP/SIGCONT)
and partitions links (both ways and one way) through a fault-injecting TCP proxy on every
directed peer link. At most one node is faulty at a time (f = 1). After the faults heal it checks:

  - every node has identical block hashes at every height (no fork);
  - no invoice is reimbursed or declared twice on any node, and no transaction is in a chain twice;
  - every transaction the API acknowledged as committed is on every node with the same receipt;
  - a new transaction commits within 10 s of healing;

and prints the faults injected of each kind, transactions acknowledged, lost (must be 0),
divergent heights (must be 0) and the longest stall. Exit status 1 if any check fails, 2 if the
harness itself could not go on (a node it started never answered): no verdict either way.

    python scripts/chaos.py                       # a few minutes, seed 1
    python scripts/chaos.py --duration 1200 --seed 7
    python scripts/chaos.py --crash-points before-write:0.02,between-writes:0.02,after-write:0.02
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from faultproxy import LinkProxy  # noqa: E402

from chainvoice import crypto, localnet  # noqa: E402
from chainvoice.client import ClientError, NodeClient, new_invoice_number  # noqa: E402
from chainvoice.ledger import amounts, calendar  # noqa: E402
from chainvoice.ledger.transaction import sign  # noqa: E402

PROXY_PORT_OFFSET = 200  # proxy for link i->j listens on base + 200 + 10*i + j
HEAL_DEADLINE_S = 10.0
RESTART_DEADLINE_S = 60.0


class HarnessError(Exception):
    """The harness could not do its part (not a verdict on the nodes)."""


@dataclass
class Ack:
    tx_id: str
    height: int
    status: str
    code: str
    kind: str
    node: str


@dataclass
class Report:
    faults: Counter = field(default_factory=Counter)
    acks: dict[str, Ack] = field(default_factory=dict)
    submit_errors: int = 0
    longest_stall_s: float = 0.0
    longest_stall_at: float = 0.0  # seconds after the load started when that stall began
    events: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def event(self, text: str) -> str:
        self.events.append(f"t={time.monotonic() - self.t0:6.1f}s {text}")
        return self.events[-1]


class Cluster:
    def __init__(self, directory: Path, base_port: int, crash_points: str) -> None:
        self.dir = directory
        self.entries = localnet.load_network(directory)
        self.ids = [e.id for e in self.entries]
        self.base = base_port
        self.proxies: dict[tuple[str, str], LinkProxy] = {}
        self.paused: set[str] = set()
        self.down: set[str] = set()
        self.env = {"CHAINVOICE_CRASH_POINTS": crash_points} if crash_points else {}
        self.clients = {e.id: NodeClient(e.api_url, timeout_s=5) for e in self.entries}
        self.restarting = {e.id: asyncio.Lock() for e in self.entries}

    def rewire_through_proxies(self) -> None:
        """Point every node's peer addresses at the proxy of that directed link."""
        for i, e in enumerate(self.entries):
            cfg = json.loads(e.config.read_text())
            for j, other in enumerate(self.entries):
                if i == j:
                    continue
                real = json.loads(other.config.read_text())["peer"]["port"]
                port = self.base + PROXY_PORT_OFFSET + 10 * i + j
                self.proxies[(e.id, other.id)] = LinkProxy(e.id, other.id, port, real)
                cfg["peers"][other.id] = f"127.0.0.1:{port}"
            e.config.write_text(json.dumps(cfg, indent=2) + "\n")

    async def start(self) -> None:
        for p in self.proxies.values():
            await p.start()
        for e in self.entries:
            localnet.start_node(e, extra_env=self.env)
        for e in self.entries:
            await asyncio.to_thread(NodeClient(e.api_url).wait_until_up, 60)

    def entry(self, node: str) -> localnet.NodeEntry:
        return self.entries[self.ids.index(node)]

    def kill(self, node: str) -> None:
        localnet.stop_node(self.entry(node), kill=True)
        self.down.add(node)

    async def restart(self, node: str) -> None:
        """Start the node and wait until it answers; if it dies while starting (a crash point
        can fire during recovery), start it again. One restart per node at a time."""
        async with self.restarting[node]:
            deadline = time.monotonic() + RESTART_DEADLINE_S
            while True:
                try:
                    localnet.start_node(self.entry(node), extra_env=self.env)  # no-op while it runs
                except localnet.NetworkError as exc:
                    raise HarnessError(f"cannot restart {node}: {exc}") from None
                self.down.discard(node)
                try:
                    await asyncio.to_thread(NodeClient(self.entry(node).api_url).wait_until_up, 2)
                    return
                except ClientError as exc:
                    if time.monotonic() > deadline:
                        raise HarnessError(f"{node} did not answer within {RESTART_DEADLINE_S:g} s "
                                           f"of being started: {exc}") from None

    def pause(self, node: str) -> None:
        pid = localnet.read_pid(self.entry(node))
        if pid and localnet.pid_alive(pid):
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                return  # it crashed itself just now (a crash point): the monitor restarts it
            self.paused.add(node)

    def resume(self, node: str) -> None:
        pid = localnet.read_pid(self.entry(node))
        if pid and localnet.pid_alive(pid):
            os.kill(pid, signal.SIGCONT)
        self.paused.discard(node)

    def cut(self, links: list[tuple[str, str]], cut: bool) -> None:
        for link in links:
            self.proxies[link].set_cut(cut)

    def restart_crashed(self) -> list[str]:
        """Nodes that crashed themselves (crash points) are restarted by the harness."""
        out = []
        for e in self.entries:
            if e.id in self.down:
                continue
            pid = localnet.read_pid(e)
            if pid is None or not localnet.pid_alive(pid):
                out.append(e.id)
        return out

    def primary(self) -> str | None:
        for node in self.ids:
            if node in self.down or node in self.paused:
                continue
            try:
                return self.clients[node].status()["primary"]
            except Exception:
                continue
        return None

    async def heights(self, session: aiohttp.ClientSession) -> dict[str, int]:
        out = {}
        for e in self.entries:
            if e.id in self.paused or e.id in self.down:
                continue
            try:
                async with session.get(f"{e.api_url}/v1/status", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    out[e.id] = (await r.json())["height"]
            except Exception:
                pass
        return out

    async def stop(self) -> None:
        for node in list(self.paused):
            self.resume(node)
        for e in self.entries:
            localnet.stop_node(e, kill=True)
        for p in self.proxies.values():
            await p.stop()


class Workload:
    """Life cycles with concurrent double claims submitted through different nodes."""

    def __init__(self, cluster: Cluster, report: Report, rate: float) -> None:
        self.c = cluster
        self.report = report
        self.rate = rate
        ids = {i["name"]: i for i in json.loads((cluster.dir / "identities.json").read_text())}
        self.ids = ids
        self.keys = {n: crypto.SigningKey.load(cluster.dir / i["key_file"]) for n, i in ids.items()}
        self.chain_id = json.loads((cluster.dir / "network.json").read_text())["chain_id"]
        self.period = calendar.month_of(int(time.time() * 1000))
        self.running = True
        self._rr = 0

    def tx(self, who: str, kind: str, body: dict) -> bytes:
        return sign(self.keys[who], self.chain_id, kind, body, os.urandom(16)).raw

    def live_nodes(self) -> list[str]:
        return [n for n in self.c.ids if n not in self.c.down and n not in self.c.paused] or self.c.ids

    async def submit(self, session: aiohttp.ClientSession, raw: bytes, kind: str, node: str | None = None) -> Ack | None:
        nodes = self.live_nodes()
        if node is None:
            self._rr += 1
            node = nodes[self._rr % len(nodes)]
        url = self.c.entry(node).api_url
        try:
            async with session.post(f"{url}/v1/transactions?wait=commit&timeout=20", data=raw,
                                    headers={"Content-Type": "application/msgpack"},
                                    timeout=aiohttp.ClientTimeout(total=25)) as r:
                doc = await r.json()
                if r.status != 200:
                    self.report.submit_errors += 1
                    return None
        except Exception:
            self.report.submit_errors += 1
            return None
        ack = Ack(doc["tx_id"], doc["height"], doc["receipt"]["status"], doc["receipt"]["code"], kind, node)
        self.report.acks[ack.tx_id] = ack
        return ack

    async def life(self, session: aiohttp.ClientSession) -> None:
        number = new_invoice_number()
        lines = [amounts.build_line("Office supplies", 1, random.randint(100, 50_000), 1300)]
        a, t, total = amounts.totals(lines)
        issue = {"number": number, "seller_tax_id": self.ids["shop"]["tax_id"], "seller_name": "Shop",
                 "buyer_name": "Alice", "holder": self.keys["alice"].public_key, "lines": lines, "amount": a,
                 "tax": t, "total": total, "payment_ref": f"pay-{number}"}
        ack = await self.submit(session, self.tx("shop", "issue", issue), "issue")
        if ack is None or ack.status != "ok":
            return
        ack = await self.submit(session, self.tx("alice", "transfer", {"number": number, "to": self.keys["acme"].public_key}), "transfer")
        if ack is None or ack.status != "ok":
            return
        nodes = self.live_nodes()
        a_node, b_node = random.sample(nodes, 2) if len(nodes) > 1 else (nodes[0], nodes[0])
        # the same invoice claimed at the same moment through two platforms and two nodes
        await asyncio.gather(
            self.submit(session, self.tx("expensepro", "reimburse", {"number": number, "claim_id": "E" + number[-8:]}), "reimburse", a_node),
            self.submit(session, self.tx("claimit", "reimburse", {"number": number, "claim_id": "C" + number[-8:]}), "reimburse", b_node),
        )
        await asyncio.gather(
            self.submit(session, self.tx("acme", "declare", {"number": number, "period": self.period}), "declare", a_node),
            self.submit(session, self.tx("acme", "declare", {"number": number, "period": self.period}), "declare", b_node),
        )

    async def run(self, session: aiohttp.ClientSession) -> None:
        tasks: set[asyncio.Task[None]] = set()
        interval = 6 / self.rate  # each life cycle is ~6 transactions
        while self.running:
            t = asyncio.create_task(self.life(session))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            await asyncio.sleep(interval)
        if tasks:
            await asyncio.wait(tasks, timeout=40)


async def monitor(cluster: Cluster, report: Report, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    best, last_progress = -1, time.monotonic()
    while not stop.is_set():
        hs = await cluster.heights(session)
        top = max(hs.values(), default=-1)
        now = time.monotonic()
        if top > best:
            best, last_progress = top, now
        if now - last_progress > report.longest_stall_s:
            report.longest_stall_s = now - last_progress
            report.longest_stall_at = last_progress - report.t0
        for node in cluster.restart_crashed():
            report.faults["self-crash (crash point)"] += 1
            print(f"  monitor: {report.event(f'{node} crashed itself (crash point); restarting')}", flush=True)
            cluster.down.add(node)
            await cluster.restart(node)
        await asyncio.sleep(0.2)


async def nemesis(cluster: Cluster, report: Report, rng: random.Random, duration: float, started: float,
                  monitor_task: asyncio.Task[None]) -> None:
    kinds = ["kill", "kill-primary", "pause", "isolate", "one-way"]
    while time.monotonic() - started < duration:
        await asyncio.sleep(rng.uniform(2, 4))
        if monitor_task.done():  # it only ends early by failing: no run without crash restarts
            monitor_task.result()
            raise HarnessError("the monitor stopped")
        kind = rng.choice(kinds)
        hold = rng.uniform(2, 6)
        victim = rng.choice(cluster.ids)
        if kind == "kill-primary":
            victim = cluster.primary() or victim
        report.faults[kind] += 1
        print(f"  nemesis: {report.event(f'{kind} {victim} for {hold:.1f}s')}", flush=True)
        if kind in ("kill", "kill-primary"):
            cluster.kill(victim)
            await asyncio.sleep(hold)
            await cluster.restart(victim)
        elif kind == "pause":
            cluster.pause(victim)
            await asyncio.sleep(hold)
            cluster.resume(victim)
        elif kind == "isolate":
            links = [(victim, o) for o in cluster.ids if o != victim] + [(o, victim) for o in cluster.ids if o != victim]
            cluster.cut(links, True)
            await asyncio.sleep(hold)
            cluster.cut(links, False)
        else:  # one-way: the victim's messages stop reaching everyone, it still hears them
            links = [(victim, o) for o in cluster.ids if o != victim]
            cluster.cut(links, True)
            await asyncio.sleep(hold)
            cluster.cut(links, False)


async def blocks_of(session: aiohttp.ClientSession, url: str, top: int) -> dict[int, dict]:
    out = {}
    for h in range(1, top + 1):
        async with session.get(f"{url}/v1/blocks/{h}") as r:
            out[h] = await r.json()
    return out


async def main_async(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    if (directory / "network.json").exists():
        for e in localnet.load_network(directory):
            localnet.stop_node(e, kill=True)
    localnet.init_network(directory, 4, args.base_port, force=True)
    cluster = Cluster(directory, args.base_port, args.crash_points)
    cluster.rewire_through_proxies()
    report = Report()
    rng = random.Random(args.seed)
    random.seed(args.seed)
    print(f"chaos: 4 nodes, seed {args.seed}, {args.duration:g} s of faults, load ~{args.rate:g} tx/s"
          + (f", crash points {args.crash_points}" if args.crash_points else ""), flush=True)
    await cluster.start()
    ok = True
    try:
        async with aiohttp.ClientSession() as session:
            work = Workload(cluster, report, args.rate)
            stop = asyncio.Event()
            mon = asyncio.create_task(monitor(cluster, report, session, stop))
            for name in ("shop", "acme", "expensepro", "claimit"):
                i = work.ids[name]
                body = {"key": work.keys[name].public_key, "role": i["role"], "name": i["display"]}
                if "tax_id" in i:
                    body["tax_id"] = i["tax_id"]
                if i["role"] == "merchant":
                    body.update(taxpayer_type="general", monthly_quota=10**15)
                if "serves" in i:
                    body["serves"] = [work.keys[s].public_key for s in i["serves"] if s == "acme"]
                raw = work.tx("tax", "register_member", body)
                for attempt in range(20):  # a node may crash itself (crash points): try again elsewhere
                    ack = await work.submit(session, raw, "register_member")
                    if ack is not None:
                        break
                    await asyncio.sleep(0.5)
                else:
                    raise SystemExit(f"could not register {name}")
            started = report.t0 = time.monotonic()
            load = asyncio.create_task(work.run(session))
            await nemesis(cluster, report, rng, args.duration, started, mon)
            # heal: everything up, every link open
            for node in list(cluster.paused):
                cluster.resume(node)
            cluster.cut(list(cluster.proxies), False)
            if cluster.env:
                # Healing ends the crash points too: every node restarts without them (these
                # restarts are not counted as injected kills).
                cluster.env = {}
                for node in cluster.ids:
                    if node not in cluster.down:
                        cluster.kill(node)
                report.event("healing: every node restarted without crash points")
            for node in list(cluster.down):
                await cluster.restart(node)
            healed = time.monotonic()
            probe_number = new_invoice_number()
            lines = [amounts.build_line("Probe", 1, 100, 1300)]
            a, t, total = amounts.totals(lines)
            probe = await work.submit(session, work.tx("shop", "issue", {
                "number": probe_number, "seller_tax_id": work.ids["shop"]["tax_id"], "seller_name": "Shop",
                "buyer_name": "Probe", "holder": work.keys["alice"].public_key, "lines": lines, "amount": a, "tax": t,
                "total": total}), "issue")
            heal_commit_s = time.monotonic() - healed
            work.running = False
            await load
            stop.set()
            await mon
            # converge
            deadline = time.monotonic() + 60
            while True:
                hs = await cluster.heights(session)
                if len(hs) == 4 and len(set(hs.values())) == 1:
                    break
                if time.monotonic() > deadline:
                    print(f"  nodes did not converge: {hs}")
                    ok = False
                    break
                await asyncio.sleep(0.5)
            top = min(hs.values())
            per_node = {e.id: await blocks_of(session, e.api_url, top) for e in cluster.entries}
    finally:
        await cluster.stop()

    # -- checks ------------------------------------------------------------------------------------
    ref = per_node[cluster.ids[0]]
    divergent = [h for h in range(1, top + 1) if len({per_node[n][h]["hash"] for n in per_node}) != 1]
    doubles = []
    replayed = []  # (node, tx_id): a transaction in the chain twice
    located: dict[str, dict[str, tuple[int, str, str]]] = defaultdict(dict)
    for node, blocks in per_node.items():
        ok_reimburse, ok_declare = Counter(), Counter()
        for h, b in blocks.items():
            for t in b["transactions"]:
                if t["tx_id"] in located[node]:
                    replayed.append((node, t["tx_id"]))
                located[node][t["tx_id"]] = (h, t["status"], t["code"])
                if t["status"] == "ok" and t["kind"] == "reimburse":
                    ok_reimburse[t["number"]] += 1
                if t["status"] == "ok" and t["kind"] == "declare":
                    ok_declare[t["number"]] += 1
        doubles += [(node, "reimburse", n) for n, c in ok_reimburse.items() if c > 1]
        doubles += [(node, "declare", n) for n, c in ok_declare.items() if c > 1]
    lost = []
    for ack in report.acks.values():
        for node in per_node:
            where = located[node].get(ack.tx_id)
            if where is None or where[0] != ack.height or where[1] != ack.status or where[2] != ack.code:
                lost.append((ack.tx_id, node, ack, where))
    rejected_doubles = sum(1 for a in report.acks.values() if a.code in ("DOUBLE_REIMBURSEMENT", "DOUBLE_DECLARATION"))
    kills = report.faults["kill"] + report.faults["kill-primary"] + report.faults["self-crash (crash point)"]

    print()
    print(f"  faults injected        {dict(report.faults)}  (node kills: {kills})")
    print(f"  blocks                 {top} on every node")
    print(f"  acknowledged           {len(report.acks)} transactions ({rejected_doubles} double claims rejected); "
          f"{report.submit_errors} submissions not acknowledged (node down or timed out)")
    print(f"  lost                   {len(lost)}")
    print(f"  divergent heights      {len(divergent)}")
    print(f"  double reimbursed/declared on any node: {len(doubles)}")
    print(f"  transactions in a chain twice: {len(replayed)}")
    print(f"  longest stall          {report.longest_stall_s:.1f} s (from t={report.longest_stall_at:.1f}s)")
    print(f"  commit after healing   {heal_commit_s:.2f} s ({'ok' if probe and heal_commit_s <= HEAL_DEADLINE_S else 'FAILED'})")
    checks_ok = ok and not lost and not divergent and not doubles and not replayed and probe is not None and heal_commit_s <= HEAL_DEADLINE_S
    for item in lost[:5]:
        print(f"    lost: {item}")
    print("  RESULT: " + ("PASS" if checks_ok else "FAIL"))
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "seed": args.seed, "duration_s": args.duration, "faults": dict(report.faults), "node_kills": kills,
            "blocks": top, "acknowledged": len(report.acks), "double_claims_rejected": rejected_doubles,
            "not_acknowledged": report.submit_errors, "lost": len(lost), "divergent_heights": len(divergent),
            "doubles": len(doubles), "replayed": len(replayed), "longest_stall_s": round(report.longest_stall_s, 2),
            "longest_stall_at_s": round(report.longest_stall_at, 1),
            "commit_after_heal_s": round(heal_commit_s, 2), "pass": checks_ok, "events": report.events,
        }, indent=2))
    return 0 if checks_ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=180)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=200, help="offered tx/s of life-cycle load")
    ap.add_argument("--dir", type=Path, default=ROOT / "chaos-net")
    ap.add_argument("--base-port", type=int, default=8100)
    ap.add_argument("--crash-points", default="", help="e.g. before-write:0.02,after-write:0.02")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    try:
        sys.exit(asyncio.run(main_async(args)))
    except HarnessError as exc:
        print(f"chaos: harness error, no verdict: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
