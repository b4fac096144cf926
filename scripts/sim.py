#!/usr/bin/env python3
"""Run seeded fault schedules through the deterministic PBFT simulator and check every one.

Each seed is one fault schedule (Byzantine behaviours, partitions, crashes, loss, starvation of
one message type, clock skew) followed by healing and a liveness probe; the checker reads the
honest replicas' stores for S1 (no fork), S2 (no double reimbursement/declaration), S3 (reported
commits stay committed), S4 (no transaction in a chain twice) and L (commits resume after healing).

    python scripts/sim.py --seeds 2000 --n 4              # seeds 0..1999
    python scripts/sim.py --seeds 500 --start 10000 --n 7 --jobs 2
    python scripts/sim.py --seed 1234 --n 4 --verbose     # replay one seed with a full trace
    python scripts/sim.py --seeds 200 --n 4 --mode negative   # f+1 Byzantine: must find a violation

Exit status: in random mode 1 if any run fails; in negative mode 0 only if at least one seed
produced a violation (the checker can fail).

Cost per committed transaction. The replica's entry points (``Replica.start``, ``on_message``,
``on_timer``, ``submit``) are wrapped with a CPU-time timer (``time.thread_time``, so other
processes on a busy machine do not inflate it), and so are the two signature primitives
(``crypto.verify`` for consensus messages and commit certificates, ``crypto.verify_transaction``
for transactions, and ``crypto.SigningKey.sign``). Replica time minus the signature
time spent inside those calls, divided by the transactions committed, is the figure printed as
"excluding signatures". It is summed over every replica of the consortium (each executes each
block), and excludes the simulator itself (network, event queue, stores' writes of committed
blocks, the workload's client signing, the checker). ``--no-meter`` turns the wrappers off to
measure their overhead (each timed call costs two ~0.6 us clock reads).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chainvoice import crypto  # noqa: E402
from chainvoice.consensus.replica import Replica  # noqa: E402
from chainvoice.sim.run import RunResult, run  # noqa: E402

# -- metering ------------------------------------------------------------------------------------


class Meter:
    """CPU seconds inside the replica and inside signature primitives (see module doc)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.replica_s = 0.0  # inside Replica entry points (outermost calls only)
        self.replica_calls = 0
        self.verify_s = 0.0  # crypto.verify and crypto.verify_transaction, anywhere
        self.verify_calls = 0
        self.sign_s = 0.0  # SigningKey.sign, anywhere
        self.sign_calls = 0
        self.replica_verify_s = 0.0  # ... of which inside the replica
        self.replica_verify_calls = 0
        self.replica_sign_s = 0.0
        self.replica_sign_calls = 0
        self.depth = 0

    def snapshot(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if k != "depth"}


METER = Meter()
_installed = False


def install_meter() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    clock = time.thread_time  # CPU time of this thread: immune to other load on the machine
    m = METER

    def wrap_entry(fn: Any) -> Any:
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            if m.depth:
                return fn(self, *args, **kwargs)
            m.depth = 1
            t = clock()
            try:
                return fn(self, *args, **kwargs)
            finally:
                m.replica_s += clock() - t
                m.replica_calls += 1
                m.depth = 0
        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    for name in ("start", "on_message", "on_timer", "submit"):
        setattr(Replica, name, wrap_entry(getattr(Replica, name)))

    def metered(fn: Callable[..., Any], kind: str) -> Callable[..., Any]:
        """``fn`` counting its calls and clock time into m.<kind>_s / m.<kind>_calls, and into
        m.replica_<kind>_* when called from inside the replica."""
        def wrapper(*args: Any) -> Any:
            t = clock()
            try:
                return fn(*args)
            finally:
                d = clock() - t
                setattr(m, f"{kind}_s", getattr(m, f"{kind}_s") + d)
                setattr(m, f"{kind}_calls", getattr(m, f"{kind}_calls") + 1)
                if m.depth:
                    setattr(m, f"replica_{kind}_s", getattr(m, f"replica_{kind}_s") + d)
                    setattr(m, f"replica_{kind}_calls", getattr(m, f"replica_{kind}_calls") + 1)
        return wrapper

    crypto.verify = metered(crypto.verify, "verify")  # every caller looks it up at call time
    crypto.verify_transaction = metered(crypto.verify_transaction, "verify")
    crypto.SigningKey.sign = metered(crypto.SigningKey.sign, "sign")  # type: ignore[method-assign]


# -- one run -------------------------------------------------------------------------------------


def one(task: tuple[int, int, str, bool, bool]) -> dict[str, Any]:
    seed, n, mode, verbose, meter = task
    if meter:
        install_meter()
        METER.reset()
    t, c = time.perf_counter(), time.process_time()
    try:
        r = run(seed, n, mode=mode, verbose=verbose)
        rec: dict[str, Any] = {
            "seed": seed, "ok": r.ok, "violations": r.violations, "height": r.height, "max_view": r.max_view,
            "txs": r.txs_committed, "recovery_ms": r.recovery_ms, "evidence": r.evidence, "sim_ms": r.sim_ms,
            "events": r.events, "replay": r.replay_command(),
        }
    except Exception as exc:  # a crash of the simulator or a replica is a failure of this seed
        rec = {"seed": seed, "ok": False, "violations": [f"EXC: {exc!r}"], "height": 0, "max_view": 0, "txs": 0,
               "recovery_ms": None, "evidence": 0, "sim_ms": 0, "events": 0,
               "replay": RunResult(seed, n, mode, None).replay_command(),  # type: ignore[arg-type]
               "traceback": traceback.format_exc()}
    rec["wall_s"] = time.perf_counter() - t
    rec["cpu_s"] = time.process_time() - c
    if meter:
        rec["meter"] = METER.snapshot()
    return rec


# -- summary -------------------------------------------------------------------------------------


def _fmt_us(seconds: float, count: int) -> str:
    return "n/a" if count == 0 else f"{seconds / count * 1e6:,.1f} us"


def summarise(recs: list[dict[str, Any]], args: argparse.Namespace, wall: float) -> dict[str, Any]:
    failures = [r for r in recs if not r["ok"]]
    blocks = sum(r["height"] for r in recs)
    txs = sum(r["txs"] for r in recs)
    recov = [r["recovery_ms"] for r in recs if r["recovery_ms"] is not None]
    s: dict[str, Any] = {
        "n": args.n, "mode": args.mode, "jobs": args.jobs,
        "seeds": [recs[0]["seed"], recs[-1]["seed"]] if recs else [],
        "runs": len(recs), "failures": len(failures), "failing_seeds": [r["seed"] for r in failures],
        "blocks": blocks, "txs_committed": txs, "view_changes": sum(r["max_view"] for r in recs),
        "evidence": sum(r["evidence"] for r in recs), "events": sum(r["events"] for r in recs),
        "sim_s": sum(r["sim_ms"] for r in recs) / 1000, "wall_s": wall,
        "run_cpu_s": sum(r["cpu_s"] for r in recs),
        "blocks_per_wall_s": blocks / wall if wall > 0 else 0.0,
        "blocks_per_cpu_s": blocks / sum(r["cpu_s"] for r in recs) if recs and sum(r["cpu_s"] for r in recs) else 0.0,
        "sim_s_per_wall_s": sum(r["sim_ms"] for r in recs) / 1000 / wall if wall > 0 else 0.0,
        "recovery_ms": {"runs": len(recov), "max": max(recov, default=None),
                        "mean": statistics.fmean(recov) if recov else None,
                        "median": statistics.median(recov) if recov else None},
    }
    if recs and "meter" in recs[0]:
        tot: dict[str, float] = {}
        for r in recs:
            for k, v in r["meter"].items():
                tot[k] = tot.get(k, 0.0) + v
        sig_in = tot["replica_verify_s"] + tot["replica_sign_s"]
        ex = tot["replica_s"] - sig_in
        s["meter"] = tot
        s["replica_s"] = tot["replica_s"]
        s["replica_sig_s"] = sig_in
        s["replica_excl_sig_s"] = ex
        s["replica_us_per_tx_excl_sig"] = ex / txs * 1e6 if txs else None
        s["replica_us_per_tx_excl_sig_per_replica"] = ex / txs / args.n * 1e6 if txs else None
        s["replica_us_per_tx_incl_sig"] = tot["replica_s"] / txs * 1e6 if txs else None
        s["replica_ms_per_block_excl_sig"] = ex / blocks * 1e3 if blocks else None
    return s


def print_summary(s: dict[str, Any], recs: list[dict[str, Any]], out: Any = print) -> None:
    out("")
    out(f"== summary: n={s['n']} mode={s['mode']} seeds {s['seeds'][0]}..{s['seeds'][-1]} jobs={s['jobs']}"
        if s["seeds"] else "== summary: no runs")
    out(f"runs                      {s['runs']}")
    out(f"failures                  {s['failures']}")
    out(f"simulated blocks          {s['blocks']}  (highest honest height, summed over runs)")
    out(f"committed txs             {s['txs_committed']}")
    out(f"view changes              {s['view_changes']}  (highest honest view, summed over runs)")
    out(f"evidence records          {s['evidence']}")
    out(f"simulated time            {s['sim_s']:,.1f} s  ({s['events']:,} events)")
    out(f"wall time                 {s['wall_s']:,.1f} s  (CPU in runs {s['run_cpu_s']:,.1f} s)")
    out(f"simulated blocks / wall s {s['blocks_per_wall_s']:,.1f}  (simulated s / wall s {s['sim_s_per_wall_s']:,.2f}; "
        f"blocks / CPU s {s['blocks_per_cpu_s']:,.1f})")
    rc = s["recovery_ms"]
    if rc["runs"]:
        out(f"recovery after healing    max {rc['max']} ms, mean {rc['mean']:,.1f} ms, median {rc['median']:,.0f} ms"
            f"  ({rc['runs']} runs)")
    else:
        out("recovery after healing    n/a (no liveness probe in this mode)")
    if "meter" in s:
        m = s["meter"]
        txs = s["txs_committed"]
        out(f"replica CPU time          {s['replica_s']:,.2f} s in {int(m['replica_calls']):,} calls; of it signatures "
            f"{s['replica_sig_s']:,.2f} s ({int(m['replica_verify_calls']):,} Ed25519 verifies, "
            f"{int(m['replica_sign_calls']):,} signs)")
        out(f"replica cost per committed tx, excluding signatures: {_fmt_us(s['replica_excl_sig_s'], txs)} "
            f"(all {s['n']} replicas together; {_fmt_us(s['replica_excl_sig_s'] / s['n'], txs)} per replica); "
            f"including signatures {_fmt_us(s['replica_s'], txs)}")
        if s["blocks"]:
            out(f"replica cost per block, excluding signatures: {s['replica_excl_sig_s'] / s['blocks'] * 1e3:,.2f} ms "
                f"(all replicas together)")
        out("  (measured: CPU time (thread_time) inside Replica.start/on_message/on_timer/submit minus CPU time "
            "inside crypto.verify and SigningKey.sign called from them)")
    failing = [r for r in recs if not r["ok"]]
    shown = failing if s["mode"] != "negative" else failing[:5]  # there, failing is the expected outcome
    for r in shown:
        out(f"FAIL seed {r['seed']}: {'; '.join(r['violations'])}")
        out(f"  replay: {r['replay']}")
    if len(shown) < len(failing):
        out(f"... and {len(failing) - len(shown)} more failing seeds: {[r['seed'] for r in failing[len(shown):]]}")


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=100, help="number of seeds to run (start .. start+N-1)")
    p.add_argument("--start", type=int, default=0, help="first seed")
    p.add_argument("--seed", type=int, help="run exactly this one seed")
    p.add_argument("--n", type=int, choices=(4, 7), default=4, help="replicas (f = 1 or 2)")
    p.add_argument("--mode", choices=("random", "negative", "none"), default="random",
                   help="random: 0..f Byzantine + faults; negative: f+1 colluding Byzantine (must fail); "
                        "none: crash and network faults only")
    p.add_argument("--verbose", action="store_true", help="print each run's plan and event trace (forces --jobs 1)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--json-out", type=Path, help="write the summary and per-seed records as JSON")
    p.add_argument("--no-meter", dest="meter", action="store_false",
                   help="do not time the replica and signature calls (to measure the meter's overhead)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)

    seeds = [args.seed] if args.seed is not None else list(range(args.start, args.start + args.seeds))
    if not seeds:
        p.error("no seeds to run")
    if args.verbose:
        args.jobs = 1
    args.jobs = max(1, args.jobs)
    tasks = [(s, args.n, args.mode, args.verbose, args.meter) for s in seeds]
    print(f"sim: {len(seeds)} seed(s) from {seeds[0]}, n={args.n}, mode={args.mode}, jobs={args.jobs}", flush=True)

    recs: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    step = max(1, min(500, len(seeds) // 20))
    last_print = t0

    def progress(rec: dict[str, Any]) -> None:
        nonlocal last_print
        recs.append(rec)
        if not rec["ok"] and (args.mode != "negative" or sum(not r["ok"] for r in recs) <= 3):
            print(f"  FAIL seed {rec['seed']}: {'; '.join(rec['violations'])[:300]}", flush=True)
            print(f"    replay: {rec['replay']}", flush=True)
        if args.verbose or len(seeds) == 1:
            print(f"seed {rec['seed']}: {'ok' if rec['ok'] else 'FAIL'} height={rec['height']} view={rec['max_view']} "
                  f"txs={rec['txs']} recovery={rec['recovery_ms']}ms evidence={rec['evidence']} "
                  f"sim={rec['sim_ms']}ms events={rec['events']} wall={rec['wall_s']:.2f}s", flush=True)
        now = time.perf_counter()
        done = len(recs)
        if not args.quiet and len(seeds) > 1 and (done % step == 0 or done == len(seeds) or now - last_print > 30):
            last_print = now
            el = now - t0
            eta = el / done * (len(seeds) - done)
            fails = sum(not r["ok"] for r in recs)
            print(f"  {done}/{len(seeds)} runs, {fails} failing, {sum(r['height'] for r in recs)} blocks, "
                  f"{el:,.0f}s elapsed, ~{eta:,.0f}s left", flush=True)

    if args.jobs == 1:
        for t in tasks:
            progress(one(t))
    else:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(args.jobs) as pool:
            for rec in pool.imap_unordered(one, tasks, chunksize=4):
                progress(rec)
    wall = time.perf_counter() - t0
    recs.sort(key=lambda r: r["seed"])

    s = summarise(recs, args, wall)
    print_summary(s, recs)
    for r in recs:
        if "traceback" in r:
            print(f"\nseed {r['seed']} raised:\n{r['traceback']}")

    if args.mode == "negative":
        caught = [r for r in recs if not r["ok"]]
        if caught:
            first = caught[0]
            print(f"negative control: the checker caught violations in {len(caught)} of {len(recs)} runs "
                  f"with f+1 Byzantine replicas; e.g. seed {first['seed']}: {first['violations'][0]}")
            print(f"  replay: {first['replay']}")
            code = 0
        else:
            print(f"negative control FAILED: no violation caught in {len(recs)} runs with f+1 Byzantine replicas")
            code = 1
        s["negative_control_caught"] = len(caught)
    else:
        print("result: " + ("all runs passed" if not s["failures"] else f"{s['failures']} run(s) FAILED"))
        code = 1 if s["failures"] else 0

    if args.json_out:
        per_seed = [{k: v for k, v in r.items() if k not in ("meter", "replay", "traceback")} for r in recs]
        args.json_out.write_text(json.dumps({"summary": s, "failures": [
            {"seed": r["seed"], "violations": r["violations"], "replay": r["replay"]} for r in recs if not r["ok"]],
            "runs": per_seed}, indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
