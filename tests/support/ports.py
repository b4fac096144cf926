"""Free loopback ports for tests that start real node processes."""

from __future__ import annotations

import socket

from chainvoice import localnet


def free_base_port(n: int) -> int:
    """A base port whose API (base..base+n-1) and peer (base+100...) ports are all free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + localnet.PEER_PORT_OFFSET + n >= 65000:
            continue
        ports = [base + i for i in range(n)] + [base + localnet.PEER_PORT_OFFSET + i for i in range(n)]
        ok = True
        for p in ports:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range on loopback")
