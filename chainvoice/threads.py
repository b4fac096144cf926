"""Background threads run at low CPU priority, so the event loop always comes first.

A node's own work is one thread: the asyncio loop that runs consensus, executes blocks and answers
clients. LevelDB adds a compaction thread that wakes in bursts, merging tens of MB at a time; on a
busy host it competes with every node's loop and shows up as seconds-long latency tails. RocksDB
offers the same remedy (``Env::LowerThreadPoolCPUPriority``); LevelDB does not, so the node lowers
its helper threads itself (Linux: ``/proc/self/task``; elsewhere this does nothing). Compaction still
runs whenever the loop leaves the CPU idle, and LevelDB slows writers down if it falls behind.
"""

from __future__ import annotations

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
