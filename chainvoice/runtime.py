"""How a node process uses the CPU and memory: its event loop comes first, its heap stays flat.

Helper threads run at low CPU priority, the garbage collector rarely scans the old generation, and
large allocations are returned to the system when freed.

A node's own work is one thread: the asyncio loop that runs consensus, executes blocks and answers
clients. LevelDB adds a compaction thread that wakes in bursts, merging tens of MB at a time; on a
busy host it competes with every node's loop and shows up as seconds-long latency tails. RocksDB
offers the same remedy (``Env::LowerThreadPoolCPUPriority``); LevelDB does not, so the node lowers
its helper threads itself (Linux: ``/proc/self/task``; elsewhere this does nothing). Compaction still
runs whenever the loop leaves the CPU idle, and LevelDB slows writers down if it falls behind.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import threading

# nice value for helper threads (0 is normal, 19 the lowest priority).
HELPER_NICE = 19


class HelperThreads:
    """Finds this process's threads other than the main one (and those in ``keep``: threads the
    main one waits on) and lowers their priority once each."""

    def __init__(self, nice: int = HELPER_NICE, keep: tuple[int, ...] = ()) -> None:
        self.nice = nice
        self.lowered: set[int] = set()
        self._main = threading.main_thread().native_id
        self._keep = frozenset(keep)

    def lower(self) -> int:
        """Lower every helper thread not yet lowered; return how many were lowered now."""
        try:
            tids = [int(t) for t in os.listdir("/proc/self/task")]
        except (OSError, ValueError):
            return 0  # not Linux: nothing to do
        count = 0
        for tid in tids:
            if tid == self._main or tid in self._keep or tid in self.lowered:
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


# glibc's mallopt parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD = -3).
_M_MMAP_THRESHOLD = -3
# Allocations at least this large get their own mapping, unmapped as soon as they are freed.
MMAP_THRESHOLD_BYTES = 128 * 1024


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD_BYTES (its default value); return whether it
    was set (False off glibc, where this does nothing).

    By default glibc raises the threshold each time a mapped block is freed, up to 32 MB, so after
    the first few blocks a node's large, short-lived buffers (a block's LevelDB write batch, the
    encoded block, message buffers: ~0.1-3 MB each) come from the main heap instead, between
    long-lived small objects that keep the freed space from going back. A node at 1,000 tx/s then
    kept adding own memory after its first minute (RssAnon +18.7-21.3 % from 1 to 10 min). A fixed
    threshold (the same as ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment) keeps them mapped
    and returned: +5.2-8.5 % from 1 to 4 min, where the dynamic threshold had grown +14.5-18.7 %.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
