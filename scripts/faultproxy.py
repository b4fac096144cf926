"""A TCP proxy per directed peer link that can be cut and healed (for partitions, incl. one-way).

Node A sends to node B only over A's outbound link, so cutting the proxy A→B stops A's messages
reaching B while B→A still flows: a one-way partition. TLS passes through untouched; the proxy
never sees plaintext and cannot forge anything, it can only withhold.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(eq=False)
class LinkProxy:
    src: str
    dst: str
    listen_port: int
    target_port: int
    cut: bool = False
    _server: asyncio.AbstractServer | None = None
    _conns: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.sever()

    def sever(self) -> None:
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()

    def set_cut(self, cut: bool) -> None:
        self.cut = cut
        if cut:
            self.sever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._conns.update((writer, up_w))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while not self.cut:
                    data = await r.read(65536)
                    if not data:
                        break
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass
            finally:
                w.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        except asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            self._conns.discard(writer)
            self._conns.discard(up_w)
