"""Benchmark of the state tree (chainvoice.smt): batched update cost, proof size, verification
time and memory, at several tree sizes. Prints figures; it is not a test.

    .venv/bin/python scripts/bench_smt.py                      # 10^4, 10^5, 10^6 keys
    .venv/bin/python scripts/bench_smt.py --sizes 10000,100000

``run(sizes)`` returns the same figures as a list of dicts (used by scripts/bench_core.py).

Method, per size N: N random 32-byte keys are inserted from an empty tree in 1,000-write batches
into a MemoryNodeStore (every batch's nodes are kept: no pruning, as in the node). Then
``UPDATE_ROUNDS`` further 1,000-write batches, half updates of existing keys and half inserts, are
timed; the figure is the median batch time divided by 1,000 ("best": the fastest batch, a hint of
how much a busy shared machine inflates the median). Proofs are taken for
``PROOF_SAMPLES`` present keys and as many absent ones; a proof's size is 32 bytes per sibling
plus 64 for the other leaf of an absence proof. Memory is the growth of the process's resident
set while the tree is built (keys and values are generated beforehand so they are not counted);
it includes every node of every intermediate root, as nothing is pruned. "nodes/key stored" counts
those; "live /key" counts only the nodes reachable from the final root.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import resource
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainvoice import smt  # noqa: E402

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
# A block's writes arrive as one batch; 1,000 is a full block of invoice transactions.
BATCH = 1_000
# Timed post-build batches; the median resists a stray GC pause or a neighbour's burst of CPU.
UPDATE_ROUNDS = 11
PROOF_SAMPLES = 2_000
SEED = 20240601

# Budgets set for the state tree at 10^6 keys (the module brief); printed beside the figures.
TARGET_US_PER_WRITE = 40.0
TARGET_PROOF_BYTES = 1200
TARGET_VERIFY_US = 500.0


def _rss_bytes() -> int:
    """Current resident set size; falls back to the peak where /proc is unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _proof_bytes(proof: smt.Proof) -> int:
    return 32 * len(proof.siblings) + (64 if proof.other_leaf is not None else 0)


def _live_nodes(store: smt.MemoryNodeStore, root: bytes) -> int:
    """Nodes reachable from ``root`` (the rest of the store is history kept for old roots),
    counting the odd-depth internal nodes stored inside their parents' entries."""
    count = 0
    stack = [(root, None, 0)] if root != smt.EMPTY else []
    nodes = store.nodes
    while stack:
        h, inline, depth = stack.pop()
        node = inline or nodes[h]
        count += 1
        if node[0] == 1:
            r = depth % smt.LEVELS_PER_ENTRY
            inside = (None, None) if r == smt.LEVELS_PER_ENTRY - 1 else smt.inline_children(node, r)
            for child, child_inline in zip((node[1:33], node[33:65]), inside):
                if child != smt.EMPTY:
                    stack.append((child, child_inline, depth + 1))
    return count


def measure(n: int, seed: int = SEED) -> dict[str, Any]:
    rng = random.Random(seed ^ n)
    sha = hashlib.sha256
    keys = [rng.randbytes(32) for _ in range(n)]
    values = [sha(k).digest() for k in keys]
    extra = [rng.randbytes(32) for _ in range(UPDATE_ROUNDS * BATCH)]
    absent = [rng.randbytes(32) for _ in range(PROOF_SAMPLES)]
    gc.collect()

    rss0 = _rss_bytes()
    store = smt.MemoryNodeStore()
    tree = smt.SparseMerkleTree(store)
    root = smt.EMPTY
    t0 = time.perf_counter()
    for i in range(0, n, BATCH):
        root, _ = tree.update(root, dict(zip(keys[i:i + BATCH], values[i:i + BATCH])))
    build_s = time.perf_counter() - t0
    gc.collect()
    rss_growth = _rss_bytes() - rss0
    nodes_after_build = len(store)
    live_after_build = _live_nodes(store, root)

    # Further batches: half updates of existing keys, half inserts of new ones.
    batch_times = []
    for r in range(UPDATE_ROUNDS):
        writes: dict[bytes, bytes | None] = {}
        for k in rng.sample(keys, BATCH // 2):
            writes[k] = sha(k + bytes([r + 1])).digest()
        for k in extra[r * BATCH: r * BATCH + BATCH // 2]:
            writes[k] = sha(k).digest()
        t0 = time.perf_counter()
        root, _ = tree.update(root, writes)
        batch_times.append(time.perf_counter() - t0)
    us_per_write = statistics.median(batch_times) / BATCH * 1e6
    us_per_write_best = min(batch_times) / BATCH * 1e6

    sampled = rng.sample(keys, min(PROOF_SAMPLES, n))
    proofs = [(k, tree.get(root, k), tree.prove(root, k)) for k in sampled]
    absent_proofs = [(k, tree.prove(root, k)) for k in absent]
    sizes = [_proof_bytes(p) for _, _, p in proofs]
    absent_sizes = [_proof_bytes(p) for _, p in absent_proofs]

    verify_ns = []
    for k, vh, p in proofs:
        t0 = time.perf_counter_ns()
        ok = smt.verify_inclusion(root, k, vh, p)  # type: ignore[arg-type]
        verify_ns.append(time.perf_counter_ns() - t0)
        assert ok
    absent_ns = []
    for k, p in absent_proofs:
        t0 = time.perf_counter_ns()
        ok = smt.verify_absence(root, k, p)
        absent_ns.append(time.perf_counter_ns() - t0)
        assert ok

    return {
        "keys": n,
        "build_us_per_write": build_s / n * 1e6,
        "update_us_per_write": us_per_write,
        "update_us_per_write_best": us_per_write_best,
        "proof_bytes_mean": statistics.fmean(sizes),
        "proof_bytes_max": max(sizes),
        "absence_proof_bytes_mean": statistics.fmean(absent_sizes),
        "absence_proof_bytes_max": max(absent_sizes),
        "verify_us_median": statistics.median(verify_ns) / 1e3,
        "verify_absence_us_median": statistics.median(absent_ns) / 1e3,
        "rss_growth_mb": rss_growth / 2**20,
        "bytes_per_key": rss_growth / n,
        "nodes_per_key": nodes_after_build / n,
        "live_nodes_per_key": live_after_build / n,
    }


def run(sizes: list[int] | tuple[int, ...] = DEFAULT_SIZES) -> list[dict[str, Any]]:
    """Measure every size in turn; each size gets a fresh store (freed before the next)."""
    results = []
    for n in sizes:
        results.append(measure(n))
        gc.collect()
    return results


def format_results(results: list[dict[str, Any]]) -> str:
    lines = [
        f"state tree (chainvoice.smt), MemoryNodeStore, {BATCH}-write batches, "
        f"python {sys.version.split()[0]}",
        f"{'keys':>9} {'build':>8} {'update':>8} {'update':>8} {'proof B':>13} {'absence B':>13} "
        f"{'verify':>8} {'verify-abs':>10} {'RSS':>9} {'B/key':>7} {'nodes/key':>9} {'live':>6}",
        f"{'':>9} {'us/wr':>8} {'us/wr':>8} {'best':>8} {'mean / max':>13} {'mean / max':>13} "
        f"{'us med':>8} {'us med':>10} {'MB':>9} {'':>7} {'stored':>9} {'/key':>6}",
    ]
    for r in results:
        lines.append(
            f"{r['keys']:>9,} {r['build_us_per_write']:>8.1f} {r['update_us_per_write']:>8.1f} "
            f"{r['update_us_per_write_best']:>8.1f} "
            f"{r['proof_bytes_mean']:>7.0f} / {r['proof_bytes_max']:>4} "
            f"{r['absence_proof_bytes_mean']:>7.0f} / {r['absence_proof_bytes_max']:>4} "
            f"{r['verify_us_median']:>8.1f} {r['verify_absence_us_median']:>10.1f} "
            f"{r['rss_growth_mb']:>9.1f} {r['bytes_per_key']:>7.0f} {r['nodes_per_key']:>9.2f} "
            f"{r['live_nodes_per_key']:>6.2f}"
        )
    lines.append(
        f"targets at 10^6: update <= {TARGET_US_PER_WRITE:.0f} us/write, "
        f"proof <= {TARGET_PROOF_BYTES} B, verify <= {TARGET_VERIFY_US:.0f} us"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated key counts (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    print(format_results(run(sizes)), flush=True)


if __name__ == "__main__":
    main()
