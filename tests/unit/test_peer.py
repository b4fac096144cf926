"""Peer links over mutual TLS: messages arrive with the authenticated sender; outsiders are refused."""

import asyncio
import socket

from chainvoice.net import tls
from chainvoice.net.peer import PeerTransport, TLSFiles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def creds(tmp, ca, node_id):
    d = tmp / node_id
    ca.save_certificate(d)
    paths = ca.issue_node_certificate(node_id).save(d)
    return TLSFiles(d / "ca.crt", paths.cert, paths.key)


async def wait_for(cond, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def test_three_nodes_exchange_and_an_outsider_is_refused(tmp_path):
    async def scenario():
        ca = tls.create_ca("consortium")
        ids = ["n0", "n1", "n2"]
        ports = {i: free_port() for i in ids}
        got = {i: [] for i in ids}
        nodes = {
            i: PeerTransport(i, ("127.0.0.1", ports[i]), {j: f"127.0.0.1:{ports[j]}" for j in ids},
                             creds(tmp_path, ca, i), lambda s, raw, i=i: got[i].append((s, raw)), set(ids))
            for i in ids
        }
        # an outsider with a certificate from another CA, claiming to be n1
        rogue_ca = tls.create_ca("consortium")
        rogue = PeerTransport("n1", ("127.0.0.1", free_port()), {"n0": f"127.0.0.1:{ports['n0']}"},
                              creds(tmp_path / "rogue", rogue_ca, "n1"), lambda s, r: None, set(ids))
        try:
            for t in nodes.values():
                await t.start()
            await rogue.start()
            await wait_for(lambda: all(len(t.connected_peers()) == 2 for t in nodes.values()))
            nodes["n0"].send(None, b"hello all")
            nodes["n2"].send("n1", b"just n1")
            rogue.send("n0", b"forged")
            await wait_for(lambda: len(got["n1"]) == 2 and len(got["n2"]) == 1)
            assert got["n2"] == [("n0", b"hello all")]
            assert sorted(got["n1"]) == [("n0", b"hello all"), ("n2", b"just n1")]
            await asyncio.sleep(0.5)
            assert all(raw != b"forged" for _, raw in got["n0"])
            assert rogue.connected_peers() == []
            # a restarted peer is reconnected to and receives again
            await nodes["n2"].stop()
            nodes["n2"] = PeerTransport("n2", ("127.0.0.1", ports["n2"]), {j: f"127.0.0.1:{ports[j]}" for j in ids},
                                        TLSFiles(tmp_path / "n2" / "ca.crt", tmp_path / "n2" / "n2.crt", tmp_path / "n2" / "n2.key"),
                                        lambda s, raw: got["n2"].append((s, raw)), set(ids))
            await nodes["n2"].start()
            await wait_for(lambda: "n2" in nodes["n0"].connected_peers())
            nodes["n0"].send("n2", b"welcome back")
            await wait_for(lambda: got["n2"][-1] == ("n0", b"welcome back"))
        finally:
            for t in list(nodes.values()) + [rogue]:
                await t.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))
