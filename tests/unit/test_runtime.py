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
