"""What a node process spent, read from outside it: CPU by thread (/proc) and what LevelDB
flushed and compacted (its own LOG files). Shared by bench.py (the nodes of a network, over the
measured window) and bench_store.py (its own process, over the whole run).

With 1,000,000 invoices preloaded, these two told apart where the preloaded minute's CPU went:
the nodes' main threads lost ~8 CPU s to their other threads, and the index's compaction output
per transaction was ~8 times the empty state's (docs/performance.md)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

_COMPACTED = re.compile(r"Compacted .*=> (\d+) bytes")
_FLUSHED = re.compile(r"Level-0 table #\d+: (\d+) bytes")
_STAMP = len("2026/12/07-11:16:42.910310")  # how LevelDB stamps each LOG line (local time)


def log_stamp(when: datetime | None = None) -> str:
    """A moment as LevelDB stamps its LOG lines, so a window can be cut out of them."""
    return (when or datetime.now()).strftime("%Y/%m/%d-%H:%M:%S.%f")


def thread_cpu(pid: int | str, roles: dict[int, str] | None = None, other: str = "other threads") -> dict[str, float]:
    """CPU seconds (user + system) of a process's threads: ``main`` for its main thread, the name
    in ``roles`` for the thread ids it names, ``other`` summed for the rest. {} if it is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    main_tid = os.getpid() if pid == "self" else int(pid)
    names = {main_tid: "main", **(roles or {})}
    out: dict[str, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        name = names.get(int(task.name), other)
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def leveldb_log(db_dir: Path, since: str = "", until: str = "~") -> dict[str, int]:
    """What one LevelDB database wrote, from its LOG and LOG.old lines stamped in [since, until]
    (``log_stamp`` strings; the defaults take every line): bytes flushed from the memtable to
    level 0, bytes of compaction output, and the number of compactions (moves of a table to the
    next level without a rewrite are not compactions)."""
    flushed = compacted = compactions = 0
    for name in ("LOG.old", "LOG"):
        try:
            text = (db_dir / name).read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if not since <= line[:_STAMP] <= until:
                continue
            if m := _COMPACTED.search(line):
                compacted += int(m.group(1))
                compactions += 1
            elif m := _FLUSHED.search(line):
                flushed += int(m.group(1))
    return {"flushed_bytes": flushed, "compacted_bytes": compacted, "compactions": compactions}
