"""How a node process uses the CPU: its event loop comes first.

Helper threads run at low CPU priority, and the garbage collector rarely scans the old generation.

A node's own work is one thread: the asyncio loop that runs consensus, executes blocks and answers
clients. LevelDB adds a compaction thread that wakes in bursts, merging tens of MB at a time; on a
busy host it competes with every node's loop and shows up as seconds-long latency tails. RocksDB
offers the same remedy (``Env::LowerThreadPoolCPUPriority``); LevelDB does not, so the node lowers
its helper threads itself (Linux: ``/proc/self/task``; elsewhere this does nothing). Compaction still
runs whenever the loop leaves the CPU idle, and LevelDB slows writers down if it falls behind.
"""

from __future__ import annotations

import gc
import os
import threading

# nice value for helper threads (0 is normal, 19 the lowest priority).
HELPER_NICE = 19


class HelperThreads:
    """Finds this process's threads other than the main one and lowers their priority once each."""

    def __init__(self, nice: int = HELPER_NICE) -> None:
        self.nice = nice
        self.lowered: set[int] = set()
        self._main = threading.main_thread().native_id

    def lower(self) -> int:
        """Lower every helper thread not yet lowered; return how many were lowered now."""
        try:
            tids = [int(t) for t in os.listdir("/proc/self/task")]
        except (OSError, ValueError):
            return 0  # not Linux: nothing to do
        count = 0
        for tid in tids:
            if tid == self._main or tid in self.lowered:
                continue
            try:
                os.setpriority(os.PRIO_PROCESS, tid, self.nice)  # on Linux, a thread id is accepted
            except (OSError, AttributeError):
                continue  # the thread ended, or no permission: leave it
            self.lowered.add(tid)
            count += 1
        return count


# Container allocations between young-generation collections (CPython's default is 700), young
# collections per middle one, middle ones per full one. A node keeps hundreds of thousands of
# long-lived objects (mempool, verified-transaction cache, read caches' keys); with the defaults
# full collections ran several times a minute and took 40-155 ms each (gc.callbacks on nodes at
# 1,000 tx/s), mostly finding nothing: the event loop stalled for them on every node. Almost all
# of our objects are freed by reference counting; full collections still run for the cycles
# (futures, exceptions), just far less often.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Apply GC_THRESHOLDS, after moving everything allocated at start-up (modules, genesis,
    configuration) out of the collector's sight for good."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
