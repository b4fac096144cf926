"""The consortium: the chain id, the consensus nodes (id, key, role, addresses) and f."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

NODE_ROLES = ("tax", "merchant", "platform")


class ConsortiumError(ValueError):
    """A consortium description that cannot run PBFT safely or is malformed."""


@dataclass(frozen=True)
class ConsortiumNode:
    id: str
    public_key: bytes  # Ed25519, signs consensus messages and COMMIT votes
    role: str  # which member runs it: tax authority, merchant (invoicing provider) or platform
    peer_address: str = ""  # host:port of the mutual-TLS peer endpoint
    api_url: str = ""  # base URL of the public HTTP API

    def to_map(self) -> dict[str, Any]:
        return {"id": self.id, "public_key": self.public_key, "role": self.role,
                "peer_address": self.peer_address, "api_url": self.api_url}


@dataclass(frozen=True)
class Consortium:
    chain_id: str
    nodes: tuple[ConsortiumNode, ...]
    f: int

    def __post_init__(self) -> None:
        n = len(self.nodes)
        if self.f < 0 or n < 3 * self.f + 1:
            raise ConsortiumError(f"{n} nodes cannot tolerate f={self.f}: PBFT needs n >= 3f+1")
        ids = [node.id for node in self.nodes]
        if len(set(ids)) != n:
            raise ConsortiumError("node ids must be distinct")
        if len({node.public_key for node in self.nodes}) != n:
            raise ConsortiumError("node keys must be distinct")
        for node in self.nodes:
            if len(node.public_key) != 32:
                raise ConsortiumError(f"node {node.id}: public key must be 32 bytes")
            if node.role not in NODE_ROLES:
                raise ConsortiumError(f"node {node.id}: role must be one of {NODE_ROLES}")

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def quorum(self) -> int:
        """2f+1: any two quorums share at least one honest node (PBFT §4.2)."""
        return 2 * self.f + 1

    @property
    def weak_quorum(self) -> int:
        """f+1: at least one of them is honest."""
        return self.f + 1

    @cached_property
    def node_keys(self) -> dict[str, bytes]:
        return {node.id: node.public_key for node in self.nodes}

    @cached_property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(node.id for node in self.nodes)

    def node(self, node_id: str) -> ConsortiumNode:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def primary(self, view: int) -> str:
        """The primary of view v is node v mod n (PBFT §4.1)."""
        return self.nodes[view % self.n].id

    def to_map(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "f": self.f, "nodes": [n.to_map() for n in self.nodes]}

    @classmethod
    def from_map(cls, m: Any) -> "Consortium":
        try:
            nodes = tuple(
                ConsortiumNode(
                    id=str(x["id"]), public_key=bytes(x["public_key"]), role=str(x["role"]),
                    peer_address=str(x.get("peer_address", "")), api_url=str(x.get("api_url", "")),
                )
                for x in m["nodes"]
            )
            return cls(chain_id=str(m["chain_id"]), nodes=nodes, f=int(m["f"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConsortiumError):
                raise
            raise ConsortiumError(f"malformed consortium: {exc!r}") from None
