"""The peer port of a real running node (mutual TLS, SPEC §6): a client without a certificate,
with a certificate from another CA, with an expired certificate from the consortium CA, or with a
valid consortium certificate for a node id outside the consortium is refused; the same client
with a current certificate for a consortium node id gets through (so the refusals are about the
certificate, not the client).

tests/unit/test_tls.py checks the same contexts against a small echo server and
tests/unit/test_peer.py a rogue CA against ``PeerTransport``; this is the node process itself.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from chainvoice.net import tls

pytestmark = pytest.mark.timeout(120)

REFUSED = (aiohttp.ClientError, ssl.SSLError, ConnectionError, asyncio.TimeoutError)


def _peer_url(network, i: int = 0) -> str:
    port = int(json.loads(network.entries[i].config.read_text())["peer"]["port"])
    return f"wss://127.0.0.1:{port}/peer"


async def _attempt(url: str, context: ssl.SSLContext) -> str:
    """'open' when the websocket to /peer opened (and a message could be sent), else why not."""
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.ws_connect(url, ssl=context) as ws:
                await ws.send_bytes(b"\x93\xc4\x00\xc4\x00\xc4\x00")  # a (malformed) message
                # TLS 1.3: a refused client certificate shows up on the first read
                msg = await ws.receive(timeout=1.5)
                if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    return f"closed: {msg.type.name}"
                return "open"
    except aiohttp.WSServerHandshakeError as exc:
        return f"http {exc.status}"
    except asyncio.TimeoutError:
        return "open"  # no answer is what an accepted peer link looks like: peers never reply on it
    except REFUSED as exc:
        return f"refused: {type(exc).__name__}: {exc}"


@pytest.fixture(scope="module")
def pki(network, tmp_path_factory):
    """Client credentials: from the network's own CA (current, expired, unknown node id) and from
    another CA that claims the same name."""
    directory: Path = network.directory
    out = tmp_path_factory.mktemp("peer-pki")
    ca = tls.CertificateAuthority.load(directory / "ca")
    from cryptography.x509.oid import NameOID

    rogue = tls.create_ca(ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    past = datetime.now(timezone.utc) - timedelta(days=30)
    member = network.entries[1].id  # a consortium node id the target knows
    return {
        "ca": directory / "ca" / "ca.crt",
        "current": ca.issue_node_certificate(member).save(out / "current"),
        "expired": ca.issue_node_certificate(member, valid_days=1, now=past).save(out / "expired"),
        "stranger": ca.issue_node_certificate("node-outside").save(out / "stranger"),
        "rogue": rogue.issue_node_certificate(member).save(out / "rogue"),
    }


def _context(pki, name: str | None) -> ssl.SSLContext:
    if name is None:  # trusts the node, has nothing to present
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(cafile=pki["ca"])
        return ctx
    paths = pki[name]
    return tls.client_ssl_context(pki["ca"], paths.cert, paths.key)


def test_peer_port_of_a_running_node_refuses_bad_certificates(network, pki):
    url = _peer_url(network)
    before = network.client(0).status()

    async def scenario():
        return {name: await _attempt(url, _context(pki, name))
                for name in (None, "rogue", "expired", "stranger", "current")}

    results = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert results["current"] == "open", results
    for name in (None, "rogue", "expired"):
        assert results[name].startswith("refused"), (name, results[name])
    # a consortium-CA certificate for a node id outside the consortium: TLS passes, /peer says no
    assert results["stranger"] == "http 403", results
    # and the node is undisturbed: same chain, still connected to every peer
    after = network.client(0).status()
    assert after["height"] == before["height"] and after["block_hash"] == before["block_hash"]
    assert len(after["peers_connected"]) == len(network.entries) - 1
