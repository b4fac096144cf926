"""One node's block path as the state grows, in one process: execute, update the state tree and
commit blocks to a real LevelDB store, and print CPU per transaction per window of blocks.

No network, no consensus rounds, signatures made up front and not re-checked: what is left is
what grows with the state (tree depth, cache misses, LevelDB's compaction). The main thread's
CPU and the whole process's are printed apart: the difference is LevelDB's background
compaction, whose output (MB, from LevelDB's own LOG) is printed at the end.

    python scripts/bench_store.py --blocks 100 [--block-txs 2000] [--write-buffer-mb 64] [--dir D]

Each block holds half new issues and half transfers of the previous block's invoices.

The process runs with a node's runtime settings (``chainvoice.runtime``: the fixed mmap threshold,
and the garbage collector's thresholds, applied after signing so the signed transactions are
frozen out of its sight). With CPython's defaults, full collections over the ~800,000 signed
transactions a node never holds at once were charged to whatever allocated next (cProfile put
25.7 µs of own time on each ``Invoice.from_map``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chainvoice.chain.block import CommitCertificate, Vote, sign_commit  # noqa: E402
from chainvoice.chain.chain import Chain  # noqa: E402
from chainvoice.ledger import amounts  # noqa: E402
from chainvoice.ledger.transaction import Transaction, sign  # noqa: E402
from chainvoice.runtime import tune_allocator, tune_gc  # noqa: E402
from chainvoice.sim.cast import T0, actor_key, make_genesis, node_key, tax_id  # noqa: E402
from chainvoice.store.chainstore import ChainStore  # noqa: E402
from chainvoice.store.leveldb import LevelDBKeyValue, open_node_store  # noqa: E402

from node_figures import leveldb_log, log_stamp, thread_cpu  # noqa: E402  (sibling script)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=100)
    ap.add_argument("--block-txs", type=int, default=2000)
    ap.add_argument("--write-buffer-mb", type=int, default=LevelDBKeyValue.WRITE_BUFFER_BYTES >> 20)
    ap.add_argument("--window", type=int, default=10, help="blocks per printed line")
    ap.add_argument("--dir", default=None, help="store directory (default: a new temporary one)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="profile the main thread over the last N blocks (cProfile) and print where it went")
    args = ap.parse_args()

    tune_allocator()  # as a node does, before its store opens
    started = log_stamp()  # a reused --dir keeps older runs' lines in LevelDB's LOG
    genesis = make_genesis(4)
    path = Path(args.dir or tempfile.mkdtemp(prefix="cv-bench-store-"))
    store = ChainStore(*open_node_store(path, 0, 1, write_buffer_bytes=args.write_buffer_mb << 20))
    chain = Chain(genesis, store, store.open(genesis))
    shop, alice, acme = actor_key("shop"), actor_key("alice"), actor_key("acme")
    nonce = [0]

    def signed(key, kind: str, body: dict) -> Transaction:
        nonce[0] += 1
        return sign(key, genesis.chain_id, kind, body, nonce[0].to_bytes(16, "big"))

    def number(i: int) -> str:
        return f"2644100{i:013d}"

    def issue(i: int) -> Transaction:
        lines = [amounts.build_line("Taxi ride", 1, 3_850 + i % 5000, 1300)]
        a, t, total = amounts.totals(lines)
        return signed(shop, "issue", {"number": number(i), "seller_tax_id": tax_id("shop"), "seller_name": "Shop",
                                      "buyer_name": "Acme", "holder": alice.public_key, "lines": lines,
                                      "amount": a, "tax": t, "total": total})

    half = args.block_txs // 2
    print(f"signing {args.blocks * args.block_txs:,} transactions ...", flush=True)
    blocks = []
    for b in range(args.blocks):
        txs = [issue(b * half + j) for j in range(half)]
        if b:
            txs += [signed(alice, "transfer", {"number": number((b - 1) * half + j), "to": acme.public_key})
                    for j in range(half)]
        blocks.append(txs)
    tune_gc()  # as a node does at start; freezes the signed transactions too

    print(f"store {path}, memtable {args.write_buffer_mb} MB", flush=True)
    main_total = proc_total = 0.0
    window: list[tuple[float, float, float, int]] = []
    profiler = cProfile.Profile() if args.profile else None
    for b, txs in enumerate(blocks):
        if profiler is not None and b == len(blocks) - args.profile:
            profiler.enable()
        p0, t0 = time.process_time(), time.thread_time()
        candidate, skipped = chain.build(txs, T0 + b * 1000, "node0")
        assert not skipped, skipped[:2]
        t1 = time.thread_time()
        block = candidate.block
        votes = tuple(Vote(n, sign_commit(node_key(n), genesis.chain_id, block.height, 0, block.hash))
                      for n in ("node0", "node1", "node2"))
        store.save_commit(chain.commit(candidate, CommitCertificate(block.height, 0, block.hash, votes)))
        t2, p2 = time.thread_time(), time.process_time()
        window.append((t1 - t0, t2 - t1, p2 - p0, len(txs)))
        main_total += t2 - t0
        proc_total += p2 - p0
        if (b + 1) % args.window == 0 or b + 1 == len(blocks):
            n = sum(w[3] for w in window)
            print(f"blocks {b + 1:5d}  invoices {(b + 1) * half:9,}  execute+tree {sum(w[0] for w in window) / n * 1e6:6.1f}"
                  f"  commit {sum(w[1] for w in window) / n * 1e6:6.1f}  process {sum(w[2] for w in window) / n * 1e6:6.1f}"
                  " µs/tx", flush=True)
            window = []
    if profiler is not None:
        profiler.disable()
        print(f"main thread over the last {args.profile} blocks (cProfile, by own time):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(18)
    threads = thread_cpu("self", {threading.main_thread().native_id: "main (with signing)",
                                  store.kv.writer_thread_id: "index writer",
                                  store.blocks.writer_thread_id: "blocks writer"},
                         other="LevelDB background and others")
    store.close()
    compacted, size = {}, {}
    for db in sorted(d for d in path.iterdir() if (d / "LOG").exists()):
        compacted[db.name] = leveldb_log(db, since=started)["compacted_bytes"] / 1e6
        size[db.name] = sum(f.stat().st_size for f in db.iterdir() if f.is_file()) / 1e6
    each = ", ".join(f"{name} {compacted[name]:,.0f} MB of {size[name]:,.0f} MB" for name in compacted)
    print(f"CPU: main thread {main_total:.1f} s, process {proc_total:.1f} s (compaction and the writer threads"
          f" ~{proc_total - main_total:.1f} s); compaction output {sum(compacted.values()):,.0f} MB;"
          f" store {sum(size.values()):,.0f} MB ({each})")
    print("CPU by thread over the whole run (/proc): " + ", ".join(f"{name} {cpu:.1f} s" for name, cpu in threads.items()))


if __name__ == "__main__":
    main()
