"""The local network's process bookkeeping: a node that exited is seen as gone at once, and a
node is not started on a port another process holds."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from chainvoice import localnet
from tests.support.ports import free_base_port


def _wait_exited_unreaped(pid: int) -> None:
    """Wait until the process is a zombie (exited, nobody has waited for it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stat = open(f"/proc/{pid}/stat").read()
        if stat[stat.rfind(")") + 2:].startswith("Z"):
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not exit")


def test_a_running_process_is_alive_and_an_exited_child_is_not_even_before_anyone_waits_for_it():
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        _wait_exited_unreaped(exited.pid)
        assert localnet.pid_alive(running.pid)
        assert not localnet.pid_alive(exited.pid)
    finally:
        running.kill()
        running.wait()
        exited.wait()


def test_someone_elses_exited_child_is_not_alive():
    # Our child starts a grandchild and never waits for it: the grandchild stays a zombie we
    # cannot reap (a node started by a CLI that is still running reads like this).
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time\n"
         "p = subprocess.Popen([sys.executable, '-c', 'pass'])\n"
         "print(p.pid, flush=True)\n"
         "time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(parent.stdout.readline())
        _wait_exited_unreaped(grandchild)
        assert not localnet.pid_alive(grandchild)
        assert localnet.pid_alive(parent.pid)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_a_node_is_not_started_on_a_port_another_process_listens_on(tmp_path):
    base = free_base_port(4)
    localnet.init_network(tmp_path / "net", 4, base)
    entry = localnet.load_network(tmp_path / "net")[0]
    try:
        with socket.socket() as other:  # another network's node, say, on this node's API port
            other.bind(("127.0.0.1", base))
            other.listen()
            with pytest.raises(localnet.NetworkError, match=f"API port 127.0.0.1:{base} is in use"):
                localnet.start_node(entry)
        assert localnet.read_pid(entry) is None  # nothing was started
    finally:
        localnet.stop_node(entry, kill=True)  # had it started one


# The calling thread alone ends (not the process): exit(2), not exit_group(2).
_SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(__import__("platform").machine())


@pytest.mark.skipif(_SYS_EXIT is None or not sys.platform.startswith("linux"), reason="Linux x86_64/aarch64 only")
def test_a_process_whose_main_thread_ended_is_alive_while_another_thread_runs():
    # What a node killed during a synced write looks like: its main thread a zombie, a thread
    # still in the kernel, its sockets still open. It must not read as gone before it is.
    child = subprocess.Popen([sys.executable, "-c", (
        "import ctypes, socket, threading, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "threading.Thread(target=time.sleep, args=(1.5,)).start()\n"
        f"ctypes.CDLL(None).syscall({_SYS_EXIT}, 0)\n"
    )], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        _wait_exited_unreaped(child.pid)  # the main thread
        assert localnet.pid_alive(child.pid)
        assert localnet._port_taken("127.0.0.1", port)
        deadline = time.monotonic() + 10
        while localnet.pid_alive(child.pid):
            assert time.monotonic() < deadline, "the process never ended"
            time.sleep(0.02)
        assert not localnet._port_taken("127.0.0.1", port)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
