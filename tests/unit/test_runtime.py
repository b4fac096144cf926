"""Helper threads (LevelDB's compaction) are lowered to the lowest CPU priority; the event loop's
thread is not. Run in a child process so the test runner's own threads are left alone."""

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities via /proc are Linux-only")
def test_helper_threads_get_the_lowest_priority_and_the_main_thread_keeps_its_own():
    code = textwrap.dedent("""
        import os, threading
        from chainvoice.runtime import HelperThreads
        started, done = threading.Event(), threading.Event()
        tid = []
        def helper():
            tid.append(threading.get_native_id()); started.set(); done.wait()
        t = threading.Thread(target=helper); t.start(); started.wait()
        helpers = HelperThreads()
        main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        first, again = helpers.lower(), helpers.lower()
        print(first, again, os.getpriority(os.PRIO_PROCESS, tid[0]),
              os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before)
        done.set(); t.join()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    first, again, helper_nice, main_kept = out.stdout.split()
    assert int(first) >= 1 and again == "0"  # each thread once
    assert helper_nice == "19" and main_kept == "True"


_HEAP_CODE = textwrap.dedent("""
    import ctypes, sys
    from chainvoice.runtime import tune_allocator
    class Info(ctypes.Structure):  # glibc's struct mallinfo2: ten size_t counters
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = Info
    tuned = tune_allocator() if sys.argv[1] == "tuned" else None
    first = bytearray(3 << 20); del first  # by default this raises glibc's threshold to ~3 MB
    mapped = mallinfo2().hblks
    second = bytearray(2 << 20)  # a block's write batch, say
    print(tuned, mallinfo2().hblks - mapped)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator tuning")
def test_once_tuned_large_buffers_keep_getting_their_own_mapping():
    """A large buffer freed must not teach glibc to serve the next ones from the heap (where they
    end up between long-lived objects and their memory never goes back)."""
    def run(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", _HEAP_CODE, mode], capture_output=True, text=True,
                             timeout=60, check=True)
        tuned, new_mappings = out.stdout.split()
        return tuned, int(new_mappings)

    tuned, new_mappings = run("tuned")
    if tuned != "True":
        pytest.skip("not glibc")
    assert new_mappings == 1
    # Control: with glibc's default (dynamic) threshold the same buffer comes from the heap.
    assert run("default") == ("None", 0)
