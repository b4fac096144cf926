"""scripts/node_figures.py: what the benchmarks report about a node's threads and LevelDB's work.
The preloaded run's diagnosis (docs/performance.md) rests on these figures, so they are checked
against a real LevelDB and a real busy thread."""

import os
import threading
import time
from datetime import datetime, timedelta

import plyvel

from tests.support.scripts import load_script

nf = load_script("node_figures")


def test_a_real_leveldb_log_shows_its_flushes_and_compactions(tmp_path):
    before = nf.log_stamp()
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True, write_buffer_size=64 * 1024,
                     compression=None)
    value = os.urandom(200)
    for i in range(40_000):  # ~9 MB through a 64 KB memtable: many level-0 tables, then compactions
        db.put(os.urandom(16), value)
    db.compact_range()
    db.close()
    figures = nf.leveldb_log(tmp_path / "db")
    assert figures["flushed_bytes"] > 5_000_000
    assert figures["compactions"] > 0 and figures["compacted_bytes"] > 1_000_000
    # the same lines, cut to a window: all of them are after ``before``, none before it
    assert nf.leveldb_log(tmp_path / "db", since=before) == figures
    assert nf.leveldb_log(tmp_path / "db", until=before) == {"flushed_bytes": 0, "compacted_bytes": 0, "compactions": 0}


def test_only_lines_inside_the_window_count_and_moves_are_not_compactions(tmp_path):
    t = datetime(2026, 12, 7, 11, 16, 0)
    stamp = lambda s: nf.log_stamp(t + timedelta(seconds=s))  # noqa: E731
    (tmp_path / "LOG.old").write_text(
        f"{stamp(-100)} 1 Compacted 1@1 + 11@2 files => 5000 bytes\n"
        f"{stamp(1)} 1 Level-0 table #7: 300 bytes OK\n")
    (tmp_path / "LOG").write_text(
        f"{stamp(2)} 1 Level-0 table #9: started\n"
        f"{stamp(3)} 1 Level-0 table #9: 700 bytes OK\n"
        f"{stamp(4)} 1 Moved #12 to level-3 2168742 bytes OK: files[ 0 7 51 21 0 0 0 ]\n"
        f"{stamp(5)} 1 Compacted 1@1 + 10@2 files => 2000 bytes\n"
        f"{stamp(50)} 1 Compacted 1@0 + 2@1 files => 9000 bytes\n")
    assert nf.leveldb_log(tmp_path, stamp(0), stamp(10)) == {"flushed_bytes": 1000, "compacted_bytes": 2000, "compactions": 1}
    assert nf.leveldb_log(tmp_path) == {"flushed_bytes": 1000, "compacted_bytes": 16000, "compactions": 3}
    assert nf.leveldb_log(tmp_path / "missing") == {"flushed_bytes": 0, "compacted_bytes": 0, "compactions": 0}


def test_thread_cpu_tells_the_main_thread_from_a_busy_one():
    started, done, release = threading.Event(), threading.Event(), threading.Event()
    ids = {}

    def burn():
        ids["tid"] = threading.get_native_id()
        started.set()
        while time.thread_time() < 0.3:  # CPU time of this thread alone, however slow the machine
            pass
        done.set()
        release.wait()  # alive while it is measured

    before = nf.thread_cpu("self")
    worker = threading.Thread(target=burn)
    worker.start()
    started.wait()
    done.wait()
    during = nf.thread_cpu("self", {ids["tid"]: "burner"})
    release.set()
    worker.join()
    assert during["burner"] >= 0.29  # clock ticks of 10 ms
    assert "main" in during and during["main"] >= before["main"]
    assert nf.thread_cpu(2**22 + 1) == {}  # above the kernel's pid limit: no such process
