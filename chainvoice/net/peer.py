"""Links between consensus nodes: websockets over mutual TLS with the consortium CA.

Each node dials every other node and sends only on its own outbound links; it receives on its
peer endpoint. A link is therefore one-way, which is also how a partition can be one-way. The
TLS handshake proves the peer holds a certificate issued by the consortium CA for a node id; the
replica still checks every message's Ed25519 signature (a certificate is not a vote).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import aiohttp
from aiohttp import web

from . import tls

log = logging.getLogger("chainvoice.peer")

# A block of MAX_BLOCK_TXS transactions is a few MB; NEW-VIEW can carry one. 64 MB bounds what a
# peer can make us buffer.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Messages waiting for a link that is down. Beyond this the oldest are dropped: PBFT recovers lost
# messages through view change and catch-up, but memory is not unlimited.
MAX_QUEUED = 20_000
# Reconnect backoff: fast first retry (a restarting peer is back within a second), capped so a
# dead peer costs little.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 3.0
CONNECT_TIMEOUT_S = 5.0
HEARTBEAT_S = 5.0


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


class PeerTransport:
    def __init__(
        self,
        node_id: str,
        listen: tuple[str, int],
        peers: dict[str, str],
        tls_files: TLSFiles,
        on_message: Callable[[str, bytes], None],
        known_nodes: set[str],
    ) -> None:
        self.node_id = node_id
        self.listen = listen
        self.peers = {p: a for p, a in peers.items() if p != node_id}
        self.tls_files = tls_files
        self.on_message = on_message
        self.known_nodes = known_nodes
        self._queues: dict[str, deque[bytes]] = {p: deque() for p in self.peers}
        self._wake: dict[str, asyncio.Event] = {}
        self.outbound_up: dict[str, bool] = {p: False for p in self.peers}
        self.inbound: dict[str, int] = {}
        self.dropped = 0
        self.refused = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False
        self._inbound_ws: set[web.WebSocketResponse] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        server_ctx = tls.server_ssl_context(self.tls_files.ca, self.tls_files.cert, self.tls_files.key)
        client_ctx = tls.client_ssl_context(self.tls_files.ca, self.tls_files.cert, self.tls_files.key)
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
        app.router.add_get("/peer", self._accept)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen[0], self.listen[1], ssl_context=server_ctx,
                           reuse_address=True)
        await site.start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S))
        for peer, addr in self.peers.items():
            self._wake[peer] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._link(peer, addr, client_ctx), name=f"link-{peer}"))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if self._session is not None:
            await self._session.close()
        for ws in list(self._inbound_ws):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- sending ------------------------------------------------------------------------------

    def send(self, to: str | None, raw: bytes) -> None:
        """Queue ``raw`` for one peer, or for every peer when ``to`` is None. Never blocks."""
        targets = self.peers if to is None else ((to,) if to in self.peers else ())
        for peer in targets:
            q = self._queues[peer]
            if len(q) >= MAX_QUEUED:
                q.popleft()
                self.dropped += 1
            q.append(raw)
            ev = self._wake.get(peer)
            if ev is not None:
                ev.set()

    async def _link(self, peer: str, addr: str, ctx: ssl.SSLContext) -> None:
        backoff = BACKOFF_FIRST_S
        url = f"wss://{addr}/peer"
        assert self._session is not None
        while not self._stopping:
            try:
                async with self._session.ws_connect(url, ssl=ctx, heartbeat=HEARTBEAT_S,
                                                    max_msg_size=MAX_MESSAGE_BYTES, compress=0) as ws:
                    tls.require_peer_node_id(ws.get_extra_info("ssl_object"), peer)
                    self.outbound_up[peer] = True
                    backoff = BACKOFF_FIRST_S
                    log.info("link to %s up", peer)
                    await self._pump(peer, ws)
            except asyncio.CancelledError:
                raise
            except tls.PeerIdentityError as exc:
                log.warning("peer at %s is not %s: %s", addr, peer, exc)
            except (aiohttp.ClientError, OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as exc:
                log.debug("link to %s down: %r", peer, exc)
            if self.outbound_up.get(peer):
                log.info("link to %s lost", peer)
            self.outbound_up[peer] = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _pump(self, peer: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Send queued messages until the link closes (noticed by a reader on the same socket)."""
        q, wake = self._queues[peer], self._wake[peer]
        closed = asyncio.create_task(self._drain_incoming(ws))
        try:
            while not closed.done():
                while q:
                    raw = q[0]
                    await ws.send_bytes(raw)
                    q.popleft()
                wake.clear()
                waiter = asyncio.create_task(wake.wait())
                await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        finally:
            closed.cancel()

    @staticmethod
    async def _drain_incoming(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in ws:  # peers never send on our outbound link; this ends when it closes
            pass

    # -- receiving ----------------------------------------------------------------------------

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        peer = tls.peer_node_id(request.transport.get_extra_info("ssl_object") if request.transport else None)
        if peer is None or peer not in self.known_nodes or peer == self.node_id:
            self.refused += 1
            log.warning("refused a peer connection from %s (certificate node id %r)", request.remote, peer)
            raise web.HTTPForbidden(text="not a consortium node")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=HEARTBEAT_S, compress=False)
        await ws.prepare(request)
        self.inbound[peer] = self.inbound.get(peer, 0) + 1
        self._inbound_ws.add(ws)
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    try:
                        self.on_message(peer, msg.data)
                    except Exception:  # a bug handling one message must not kill the link
                        log.exception("handling a message from %s failed", peer)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    break
        finally:
            self.inbound[peer] -= 1
            self._inbound_ws.discard(ws)
        return ws

    def connected_peers(self) -> list[str]:
        return sorted(p for p, up in self.outbound_up.items() if up)
