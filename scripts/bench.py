#!/usr/bin/env python3
"""Throughput benchmark on a real local network (what `make bench` runs).

Creates and starts a fresh network of real node processes (mutual TLS, synced LevelDB), then a
load generator submits signed life-cycle transactions — about 40 % issue, 20 % transfer, 20 %
reimburse, 15 % declare and 5 % double-reimbursement attempts (which must be rejected) — for a
chosen duration, open loop at an offered rate or closed loop at a fixed concurrency. Transactions
are signed before the clock starts, so the generator spends its time sending, not signing.

Before measuring it waits until the nodes are idle (after --preload, LevelDB may still compact
what the preload wrote; the wait is printed). Reports (table, and JSON with --json-out): committed
tx/s (accepted and rejected separately), blocks/s, mean batch size, submit→commit latency
p50/p95/p99, per-node CPU seconds and peak RSS, this machine's rate of transaction signature
checks measured in the same run, the bound it implies (cores × checks/s ÷ replicas) and the
achieved fraction of that bound. Also, to compare runs across days and installs: the
interpreter's speed at the nodes' Python work (issue decodes/s, one core) and which Python ran,
and what the machine read from disk during the measured window (page cache evictions). And, to
see where a state's cost goes: each node's CPU in the window split between its main thread and
the others (LevelDB's writers, flushes and compactions), and what each node's two LevelDB
databases flushed and compacted in the window, from their own LOG files.

    python scripts/bench.py --duration 60                 # closed loop, as fast as it goes
    python scripts/bench.py --rate 1000 --duration 60     # open loop at 1000 tx/s offered
    python scripts/bench.py --nodes 7 --duration 30
    python scripts/bench.py --preload 100000 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgpack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chainvoice import crypto, localnet  # noqa: E402
from chainvoice.client import NodeClient  # noqa: E402
from chainvoice.store.leveldb import BLOCKS_DIR, INDEX_DIR, SAFETY_DIR  # noqa: E402
from chainvoice.ledger import amounts, calendar  # noqa: E402
from chainvoice.ledger.transaction import decode, sign  # noqa: E402

from bench_core import rate  # noqa: E402  (sibling script: this directory is on sys.path)
from node_figures import leveldb_log, log_stamp, thread_cpu  # noqa: E402

TICK_S = 0.02  # open loop: one batch per node round-robin every tick


@dataclass
class Invoice:
    """The pre-signed life of one invoice: issue, then (for half) transfer, reimburse, declare
    or a second platform's reimbursement attempt."""

    issue: bytes
    follow: list[bytes] = field(default_factory=list)


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    rejected_codes: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    timeouts: int = 0
    sent: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, peak RSS bytes) of a process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(stat[11]) + int(stat[12])) / ticks
        hwm = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
        return cpu, hwm
    except OSError:
        return 0.0, 0


def current_rss(pid: int, field: str = "VmRSS") -> int:
    """Resident set size now (bytes), from /proc; 0 if the process is gone. ``RssAnon`` is the
    process's own memory; VmRSS also counts pages of LevelDB's table files that it maps."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def verify_rate() -> float:
    key = crypto.SigningKey.generate()
    msg = os.urandom(400)
    sig = key.sign(msg)
    # the check each node makes per transaction
    return rate(lambda: crypto.verify_transaction(key.public_key, msg, sig), 4000)


def page_cache_counters() -> dict[str, int]:
    """Machine-wide counters from /proc/vmstat (empty where there is none): KB read from disk, and
    file pages read again after the kernel dropped them from the page cache. The nodes read
    LevelDB's tables through the page cache; if something evicts it (memory pressure, or a
    proactive reclaimer such as DAMON's pageout scheme), state-tree reads go to the disk."""
    wanted = {"pgpgin": "disk_read_kb", "workingset_refault_file": "file_refaults", "pgmajfault": "major_faults"}
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name in wanted:
                out[wanted[name]] = int(value)
    except OSError:
        pass
    return out


def python_rate(raw: bytes, chain_id: str) -> float:
    """Decodes per second of one signed ``issue`` on one core, signature not checked: the speed of
    the interpreter and machine at the nodes' pure-Python work (msgpack, schema, records). The
    verification rate above is C code and does not show it: on 2026-12-06 the same code needed
    ~30 % more CPU per transaction than the day before at the same Ed25519 rate, and this figure
    also tells interpreters apart (pyenv's CPython 3.11.7 ~80,000, Debian's 3.11.2 ~99,000)."""
    return rate(lambda: decode(raw, chain_id=chain_id, check_signature=False), 20000)


class Workload:
    def __init__(self, directory: Path, chain_id: str) -> None:
        ids = {i["name"]: i for i in json.loads((directory / "identities.json").read_text())}
        self.ids = ids
        self.keys = {n: crypto.SigningKey.load(directory / i["key_file"]) for n, i in ids.items()}
        self.chain_id = chain_id
        self._n = 0
        self._nonce = int.from_bytes(os.urandom(6), "big") << 64
        self.year = calendar.beijing_date(int(time.time() * 1000))[0] % 100
        self.period = calendar.month_of(int(time.time() * 1000))
        self.kinds: dict[bytes, str] = {}

    def _sign(self, who: str, kind: str, body: dict) -> bytes:
        self._nonce += 1
        tx = sign(self.keys[who], self.chain_id, kind, body, self._nonce.to_bytes(16, "big"))
        self.kinds[tx.raw] = "double" if kind == "reimburse" and who == "claimit" else kind
        return tx.raw

    def invoice(self) -> Invoice:
        self._n += 1
        number = f"{self.year:02d}449{os.getpid() % 1000:03d}{self._n:012d}"
        lines = [amounts.build_line("Taxi ride", 1, 3_850 + self._n % 5000, 1300)]
        a, t, total = amounts.totals(lines)
        enterprise_bound = self._n % 2 == 0  # half the invoices go on to be claimed
        body = {"number": number, "seller_tax_id": self.ids["shop"]["tax_id"], "seller_name": "Shop",
                "buyer_name": "Alice", "holder": self.keys["alice"].public_key, "lines": lines,
                "amount": a, "tax": t, "total": total}
        inv = Invoice(self._sign("shop", "issue", body))
        if enterprise_bound:
            inv.follow.append(self._sign("alice", "transfer", {"number": number, "to": self.keys["acme"].public_key}))
            inv.follow.append(self._sign("expensepro", "reimburse", {"number": number, "claim_id": f"c{self._n}"}))
            if self._n % 8 == 0:  # a quarter of the claimed ones: a second platform tries again
                inv.follow.append(self._sign("claimit", "reimburse", {"number": number, "claim_id": f"d{self._n}"}))
            else:
                inv.follow.append(self._sign("acme", "declare", {"number": number, "period": self.period}))
        return inv


def register_cast(directory: Path, client: NodeClient) -> None:
    ids = {i["name"]: i for i in json.loads((directory / "identities.json").read_text())}
    keys = {n: crypto.SigningKey.load(directory / i["key_file"]) for n, i in ids.items()}
    for name in ("shop", "acme", "globex", "expensepro", "claimit"):
        i = ids[name]
        body = {"key": keys[name].public_key, "role": i["role"], "name": i["display"]}
        if "tax_id" in i:
            body["tax_id"] = i["tax_id"]
        if i["role"] == "merchant":
            body.update(taxpayer_type="general", monthly_quota=10**15)
        if "serves" in i:
            body["serves"] = [keys[s].public_key for s in i["serves"]]
        _, r = client.sign_and_submit(keys["tax"], "register_member", body)
        assert r["receipt"]["status"] == "ok", r


class Load:
    def __init__(self, urls: list[str], workload: Workload, invoices: deque[Invoice]) -> None:
        self.urls = urls
        self.workload = workload
        self.invoices = invoices
        self.ready: deque[bytes] = deque()  # follow-ups whose prerequisite has committed
        self.waiting: dict[bytes, list[bytes]] = {}  # tx raw -> follow-ups unlocked by its commit
        self.stats = Stats()
        self.inflight = 0
        self._rr = 0
        self.measuring = True

    def compose(self, size: int) -> list[bytes]:
        batch: list[bytes] = []
        issues = max(1, int(size * 0.4))
        while len(batch) < size - issues and self.ready:
            batch.append(self.ready.popleft())
        while len(batch) < size and self.invoices:
            inv = self.invoices.popleft()
            if inv.follow:
                self.waiting[inv.issue] = inv.follow
            batch.append(inv.issue)
        return batch

    async def send(self, session: aiohttp.ClientSession, batch: list[bytes]) -> None:
        url = self.urls[self._rr % len(self.urls)]
        self._rr += 1
        self.inflight += 1
        sent_at = time.perf_counter()
        measuring = self.measuring
        try:
            async with session.post(f"{url}/v1/transactions/batch?wait=commit", data=msgpack.packb(batch, use_bin_type=True),
                                    headers={"Content-Type": "application/msgpack"}) as resp:
                doc = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            self.stats.timeouts += len(batch)
            return
        finally:
            self.inflight -= 1
        took = time.perf_counter() - sent_at
        s = self.stats
        for raw, r in zip(batch, doc.get("results", [])):
            if r["status"] == "committed":
                follow = self.waiting.pop(raw, None)
                ok = r["receipt"]["status"] == "ok"
                if follow and ok:
                    self.ready.append(follow[0])
                    if len(follow) > 1:
                        self.waiting[follow[0]] = follow[1:]
                if measuring:
                    s.latencies.append(took)
                    kind = self.workload.kinds.get(raw, "?")
                    s.by_kind[kind] = s.by_kind.get(kind, 0) + 1
                    if ok:
                        s.accepted += 1
                    else:
                        s.rejected += 1
                        code = r["receipt"]["code"]
                        s.rejected_codes[code] = s.rejected_codes.get(code, 0) + 1
            elif r["status"] == "refused":
                s.refused += 1
            else:
                s.timeouts += 1


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def run_load(load: Load, duration: float, rate: float, concurrency: int, batch: int,
                   pids: dict[str, int], rss: list[tuple[float, dict[str, int]]],
                   anon: list[tuple[float, dict[str, int]]]) -> float:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=256)) as session:
        start = time.perf_counter()
        last_print, last_count = start, 0
        tasks: set[asyncio.Task[None]] = set()
        next_tick = start
        while (now := time.perf_counter()) - start < duration:
            if rate > 0:  # open loop: offered rate regardless of completions
                size = max(1, round(rate * TICK_S))
                b = load.compose(size)
                if b:
                    t = asyncio.create_task(load.send(session, b))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                next_tick += TICK_S
                await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
            else:  # closed loop: keep `concurrency` batches in flight
                while load.inflight < concurrency:
                    b = load.compose(batch)
                    if not b:
                        break
                    t = asyncio.create_task(load.send(session, b))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                    await asyncio.sleep(0)
                await asyncio.sleep(0.005)
            if now - last_print >= 5:
                rss.append((now - start, {k: current_rss(p) for k, p in pids.items()}))
                anon.append((now - start, {k: current_rss(p, "RssAnon") for k, p in pids.items()}))
                done = load.stats.accepted + load.stats.rejected
                lat = load.stats.latencies[-2000:]
                print(f"  t={now - start:5.1f}s  committed {done:>8,}  ({(done - last_count) / (now - last_print):7.0f} tx/s)"
                      f"  p50 {percentile(lat, 50) * 1000:6.0f} ms  in flight {load.inflight}", flush=True)
                last_print, last_count = now, done
        elapsed = time.perf_counter() - start
        load.measuring = False
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        return elapsed


def block_figures(client: NodeClient, h0: int, h1: int) -> tuple[int, int]:
    blocks, txs = 0, 0
    for h in range(h0 + 1, h1 + 1):
        blocks += 1
        txs += client.block(h)["header"]["tx_count"]
    return blocks, txs


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--rate", type=float, default=0, help="offered tx/s (open loop); 0 = closed loop")
    ap.add_argument("--concurrency", type=int, default=8, help="closed loop: batches in flight")
    ap.add_argument("--batch", type=int, default=200, help="closed loop: transactions per request")
    ap.add_argument("--nodes", type=int, choices=[4, 7], default=4)
    ap.add_argument("--preload", type=int, default=0, help="invoices issued before measuring")
    ap.add_argument("--dir", type=Path, default=ROOT / "bench-net")
    ap.add_argument("--base-port", type=int, default=7900)
    ap.add_argument("--json-out", type=Path, default=ROOT / "bench-net" / "result.json")
    ap.add_argument("--keep", action="store_true", help="leave the network running afterwards")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the network too, like Ctrl-C

    directory = args.dir.resolve()
    if (directory / "network.json").exists():
        for e in localnet.load_network(directory):
            localnet.stop_node(e)
    print(f"chainvoice benchmark: {args.nodes} nodes on {os.cpu_count()} cores, "
          f"{'open loop at %g tx/s' % args.rate if args.rate else 'closed loop, %d x %d in flight' % (args.concurrency, args.batch)}, "
          f"{args.duration:g} s")
    net = localnet.init_network(directory, args.nodes, args.base_port, force=True)
    entries = localnet.load_network(directory)
    try:
        for e in entries:
            localnet.start_node(e)
        clients = [NodeClient(e.api_url, timeout_s=60) for e in entries]
        for c in clients:
            c.wait_until_up(60)
        register_cast(directory, clients[0])
        workload = Workload(directory, net["chain_id"])
        rate_guess = args.rate if args.rate else 4000
        n_invoices = int(rate_guess * args.duration * 0.5) + 2000
        print(f"  signing {n_invoices:,} invoice life cycles ...", flush=True)
        t = time.perf_counter()
        invoices = deque(workload.invoice() for _ in range(n_invoices))
        print(f"  signed in {time.perf_counter() - t:.1f} s", flush=True)
        if args.preload:
            preload(workload, clients, args.preload)
        settle_s = settle({e.id: localnet.read_pid(e) for e in entries})
        vrate = verify_rate()
        prate = python_rate(invoices[0].issue, net["chain_id"])
        h0 = clients[0].status()["height"]
        cpu0 = {e.id: proc_stats(localnet.read_pid(e))[0] for e in entries}
        vm0 = page_cache_counters()
        load = Load([e.api_url for e in entries], workload, invoices)
        gen0 = time.process_time()
        pids = {e.id: localnet.read_pid(e) for e in entries}
        rss_samples: list[tuple[float, dict[str, int]]] = []
        anon_samples: list[tuple[float, dict[str, int]]] = []
        threads0 = {k: thread_cpu(p) for k, p in pids.items()}
        window = [log_stamp()]
        elapsed = asyncio.run(run_load(load, args.duration, args.rate, args.concurrency, args.batch, pids,
                                       rss_samples, anon_samples))
        rss_samples.append((elapsed, {k: current_rss(p) for k, p in pids.items()}))
        anon_samples.append((elapsed, {k: current_rss(p, "RssAnon") for k, p in pids.items()}))
        gen_cpu = time.process_time() - gen0
        window.append(log_stamp())
        threads1 = {k: thread_cpu(p) for k, p in pids.items()}
        vm1 = page_cache_counters()
        time.sleep(0.5)
        h1 = clients[0].status()["height"]
        procs = {e.id: proc_stats(localnet.read_pid(e)) for e in entries}
        blocks, block_txs = block_figures(clients[0], h0, h1)
    finally:
        if not args.keep:
            for e in entries:
                localnet.stop_node(e)

    s = load.stats
    committed = s.accepted + s.rejected
    # Where the nodes' CPU went in the window: the main thread (event loop, execution, the state
    # tree) or the others (LevelDB's writers, its flushes and compactions), and what LevelDB says
    # it flushed and compacted meanwhile, per database.
    node_threads = {k: {name: round(cpu - threads0[k].get(name, 0.0), 1) for name, cpu in threads1[k].items()}
                    for k in threads1}
    leveldb = {e.id: {db: leveldb_log(e.directory / "data" / db, *window) for db in (INDEX_DIR, BLOCKS_DIR, SAFETY_DIR)}
               for e in entries}
    cores = os.cpu_count() or 1
    bound = cores * vrate / args.nodes
    result = {
        "nodes": args.nodes, "cores": cores, "duration_s": round(elapsed, 2),
        "mode": "open" if args.rate else "closed", "offered_tx_s": args.rate or None,
        "preload": args.preload, "settle_s": round(settle_s, 1),
        "committed_tx_s": round(committed / elapsed, 1), "accepted_tx_s": round(s.accepted / elapsed, 1),
        "rejected_tx_s": round(s.rejected / elapsed, 1), "rejected_codes": s.rejected_codes, "by_kind": s.by_kind,
        "refused": s.refused, "not_committed": s.timeouts,
        "blocks_s": round(blocks / elapsed, 2), "mean_batch": round(block_txs / blocks, 1) if blocks else 0,
        "latency_ms": {"p50": round(percentile(s.latencies, 50) * 1000, 1), "p95": round(percentile(s.latencies, 95) * 1000, 1),
                       "p99": round(percentile(s.latencies, 99) * 1000, 1)},
        "node_cpu_s": {k: round(v[0] - cpu0[k], 1) for k, v in procs.items()},
        "load_generator_cpu_s": round(gen_cpu, 1),
        "node_peak_rss_mb": {k: round(v[1] / 2**20, 1) for k, v in procs.items()},
        "rss_mb_over_time": [(round(t, 1), {k: round(v / 2**20, 1) for k, v in r.items()}) for t, r in rss_samples],
        "rss_anon_mb_over_time": [(round(t, 1), {k: round(v / 2**20, 1) for k, v in r.items()}) for t, r in anon_samples],
        "ed25519_verify_per_s": round(vrate), "verify_bound_tx_s": round(bound),
        "fraction_of_bound": round(committed / elapsed / bound, 3),
        "page_cache": {k: vm1[k] - vm0[k] for k in vm1 if k in vm0},
        "node_thread_cpu_s": node_threads,
        "leveldb_mb": {k: {db: {"flushed": round(d["flushed_bytes"] / 2**20, 1),
                                "compacted": round(d["compacted_bytes"] / 2**20, 1),
                                "compactions": d["compactions"]} for db, d in dbs.items()} for k, dbs in leveldb.items()},
        "python": {"executable": sys.executable, "version": sys.version.split()[0],
                   "issue_decodes_per_s": round(prate)},
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2))
    print()
    print(f"  committed            {result['committed_tx_s']:>10,.1f} tx/s  (accepted {result['accepted_tx_s']:,.1f}, rejected {result['rejected_tx_s']:,.1f})")
    print(f"  rejected codes       {s.rejected_codes}")
    print(f"  by kind              {s.by_kind}")
    print(f"  blocks               {result['blocks_s']:>10,.2f} /s  mean batch {result['mean_batch']}")
    print(f"  latency p50/p95/p99  {result['latency_ms']['p50']:,.0f} / {result['latency_ms']['p95']:,.0f} / {result['latency_ms']['p99']:,.0f} ms")
    print(f"  node CPU seconds     {result['node_cpu_s']}")
    print(f"  node CPU by thread   main { {k: v.get('main', 0.0) for k, v in node_threads.items()} },"
          f" others { {k: round(sum(c for n, c in v.items() if n != 'main'), 1) for k, v in node_threads.items()} }")
    for db in (INDEX_DIR, BLOCKS_DIR, SAFETY_DIR):
        total = {f: sum(dbs[db][f] for dbs in leveldb.values()) for f in ("flushed_bytes", "compacted_bytes", "compactions")}
        print(f"  LevelDB {db:<7}      all nodes: {total['flushed_bytes'] / 2**20:,.0f} MB flushed,"
              f" {total['compacted_bytes'] / 2**20:,.0f} MB of compaction output in {total['compactions']:,} compactions;"
              f" {total['compacted_bytes'] / max(committed, 1) / len(leveldb):,.0f} B compacted per transaction per node")
    print(f"  node peak RSS MB     {result['node_peak_rss_mb']}")
    print(f"  load generator CPU   {result['load_generator_cpu_s']} s")
    for label, samples in (("RSS", rss_samples), ("RssAnon", anon_samples)):
        after_minute = next((r for t, r in samples if t >= 60), None)
        if after_minute is None or elapsed < 120:
            continue
        end = samples[-1][1]
        growth = {k: round((end[k] - after_minute[k]) / after_minute[k] * 100, 1) for k in end if after_minute.get(k)}
        result[f"{label.lower()}_growth_after_first_minute_pct"] = growth
        args.json_out.write_text(json.dumps(result, indent=2))
        print(f"  {label} growth after 1st minute  {growth} %  (MB at ~60 s "
              f"{ {k: round(v / 2**20) for k, v in after_minute.items()} } -> end { {k: round(v / 2**20) for k, v in end.items()} })")
    print(f"  Ed25519 verify       {vrate:,.0f} /s on one core -> bound {cores} x {vrate:,.0f} / {args.nodes} = {bound:,.0f} tx/s;"
          f" achieved {result['fraction_of_bound'] * 100:.1f} %")
    if result["page_cache"]:
        pc = result["page_cache"]
        print(f"  page cache (machine) {pc.get('disk_read_kb', 0) / 1024:,.1f} MB read from disk, "
              f"{pc.get('file_refaults', 0):,} file pages read again after eviction, {pc.get('major_faults', 0):,} major faults")
    print(f"  Python work          {prate:,.0f} issue decodes/s on one core, signature not checked"
          f" (Python {result['python']['version']}, {sys.executable})")
    print(f"  not committed        {s.timeouts}; refused {s.refused}")
    print(f"  JSON: {args.json_out}")


SETTLE_IDLE_CPU = 0.05  # CPU seconds per second, all nodes together: idle
SETTLE_MAX_S = 300.0


def settle(pids: dict[str, int]) -> float:
    """Wait until the nodes are idle (LevelDB done compacting what the preload wrote) so that the
    measurement starts from a steady state, not from the preload's backlog; at most
    SETTLE_MAX_S. Returns the seconds waited (printed: the backlog is a cost of the preload)."""
    start = time.perf_counter()
    last = sum(proc_stats(p)[0] for p in pids.values())
    quiet = 0
    while quiet < 3 and time.perf_counter() - start < SETTLE_MAX_S:
        time.sleep(1.0)
        now = sum(proc_stats(p)[0] for p in pids.values())
        quiet = quiet + 1 if now - last < SETTLE_IDLE_CPU else 0
        last = now
    waited = time.perf_counter() - start
    print(f"  nodes idle after {waited:.0f} s" + ("" if quiet >= 3 else " (gave up waiting)"), flush=True)
    return waited


def preload(workload: Workload, clients: list[NodeClient], n: int) -> None:
    """Issue ``n`` invoices through the API before measuring (state size for --preload)."""
    print(f"  preloading {n:,} invoices ...", flush=True)
    start = time.perf_counter()
    done = 0
    batch = 500

    async def go() -> None:
        nonlocal done
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            sem = asyncio.Semaphore(6)

            async def one(i: int, raws: list[bytes]) -> None:
                nonlocal done
                async with sem:
                    async with session.post(f"{clients[i % len(clients)].url}/v1/transactions/batch?wait=commit",
                                            data=msgpack.packb(raws, use_bin_type=True),
                                            headers={"Content-Type": "application/msgpack"}) as r:
                        await r.read()
                done += len(raws)

            tasks = []
            for i in range(0, n, batch):
                raws = [workload.invoice().issue for _ in range(min(batch, n - i))]
                tasks.append(asyncio.create_task(one(i // batch, raws)))
                if len(tasks) >= 12:
                    await asyncio.gather(*tasks)
                    tasks = []
                    print(f"    {done:,} / {n:,} ({done / (time.perf_counter() - start):,.0f} tx/s)", flush=True)
            await asyncio.gather(*tasks)

    asyncio.run(go())
    print(f"  preloaded {n:,} in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\n  interrupted: the network is stopped (unless --keep)", file=sys.stderr)
        sys.exit(130)
    except localnet.NetworkError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(2)
