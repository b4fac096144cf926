"""Real node processes on loopback: a network per test module, always stopped afterwards."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from chainvoice import crypto, localnet
from tests.support.ports import free_base_port
from chainvoice.client import NodeClient


@dataclass
class Network:
    directory: Path
    entries: list[localnet.NodeEntry]

    def client(self, i: int = 0) -> NodeClient:
        return NodeClient(self.entries[i].api_url, timeout_s=30)

    @property
    def identities(self) -> dict:
        return {i["name"]: i for i in json.loads((self.directory / "identities.json").read_text())}

    def key(self, name: str) -> crypto.SigningKey:
        return crypto.SigningKey.load(self.directory / self.identities[name]["key_file"])

    def start(self, i: int) -> None:
        localnet.start_node(self.entries[i])
        NodeClient(self.entries[i].api_url).wait_until_up(60)

    def kill(self, i: int) -> None:
        localnet.stop_node(self.entries[i], kill=True)

    def stop_all(self) -> None:
        for e in self.entries:
            localnet.stop_node(e, kill=True)

    def heights(self) -> list[int | None]:
        out = []
        for e in self.entries:
            try:
                out.append(NodeClient(e.api_url, timeout_s=2).status()["height"])
            except Exception:
                out.append(None)
        return out

    def wait_height(self, height: int, nodes: list[int] | None = None, timeout_s: float = 60) -> None:
        idx = nodes if nodes is not None else list(range(len(self.entries)))
        deadline = time.monotonic() + timeout_s
        while True:
            hs = self.heights()
            if all(hs[i] is not None and hs[i] >= height for i in idx):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"heights {hs} did not reach {height} within {timeout_s} s")
            time.sleep(0.1)


def start_network(directory: Path, n: int = 4) -> Network:
    base = free_base_port(n)
    localnet.init_network(directory, n, base)
    entries = localnet.load_network(directory)
    net = Network(directory, entries)
    try:
        for e in entries:
            localnet.start_node(e)
        for e in entries:
            NodeClient(e.api_url).wait_until_up(60)
    except BaseException:
        net.stop_all()
        raise
    return net


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    net = start_network(tmp_path_factory.mktemp("net"))
    try:
        yield net
    finally:
        net.stop_all()
