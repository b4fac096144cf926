"""The genesis: chain id, consortium, initial members and block 0 — the verifier's root of trust.

Every member holds the same genesis file (JSON, bytes as lowercase hex). Block 0 has no
certificate; its header is recomputed from the file's contents on load, so a file whose header
does not match its consortium and members is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .. import codec, merkle, smt
from ..ledger import schema, taxid
from ..ledger.records import ACTIVE, Member
from ..ledger.state import LedgerState
from .block import ZERO_HASH, Block, Header
from .consortium import Consortium, ConsortiumError

GENESIS_PROPOSER = "genesis"
# Written into each genesis member's last_tx: no transaction created them.
GENESIS_TX = ZERO_HASH
# The consortium itself is state: the genesis state root, hence the genesis block hash, pins the
# node ids, keys, roles and addresses a verifier will trust.
CONSORTIUM_KEY = codec.sha256(b"consortium")


class GenesisError(ValueError):
    """A genesis file that is malformed or inconsistent."""


@dataclass(frozen=True)
class Genesis:
    consortium: Consortium
    members: tuple[Member, ...]
    timestamp_ms: int

    @property
    def chain_id(self) -> str:
        return self.consortium.chain_id

    def state(self) -> tuple[dict[bytes, bytes], bytes, dict[bytes, bytes]]:
        """(state writes, state root, new tree nodes) of the genesis state."""
        view = LedgerState(_Empty())
        for member in self.members:
            view.put_member(member)
            if member.tax_id:
                view.put_tax_id_holder(member.role, member.tax_id, member.key)
        writes = view.writes()
        writes[CONSORTIUM_KEY] = codec.encode(self.consortium.to_map())
        tree = smt.SparseMerkleTree(smt.MemoryNodeStore())
        root, nodes = tree.update(smt.EMPTY, {k: codec.sha256(v) for k, v in writes.items()})
        return writes, root, nodes

    def block(self) -> Block:
        _, root, _ = self.state()
        header = Header(
            chain_id=self.chain_id, height=0, prev_hash=ZERO_HASH, timestamp_ms=self.timestamp_ms,
            proposer=GENESIS_PROPOSER, tx_count=0, tx_root=merkle.EMPTY_ROOT,
            receipts_root=merkle.EMPTY_ROOT, state_root=root,
        )
        return Block(header, ())

    # -- the file ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "timestamp_ms": self.timestamp_ms,
            "consortium": codec.to_json(self.consortium.to_map()),
            "members": [codec.to_json(m.to_map()) for m in self.members],
            "header": codec.to_json(self.block().header.to_map()),
            "block_hash": self.block().hash.hex(),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, doc: Any) -> "Genesis":
        try:
            c = doc["consortium"]
            consortium = Consortium.from_map({
                "chain_id": c["chain_id"], "f": c["f"],
                "nodes": [{**n, "public_key": codec.from_hex(n["public_key"], 32)} for n in c["nodes"]],
            })
            members = tuple(_member_from_json(m) for m in doc["members"])
            genesis = cls(consortium, members, int(doc["timestamp_ms"]))
        except (KeyError, TypeError, ValueError, codec.EncodingError) as exc:
            if isinstance(exc, (GenesisError, ConsortiumError)):
                raise GenesisError(str(exc)) from None
            raise GenesisError(f"malformed genesis file: {exc!r}") from None
        if doc.get("chain_id") != consortium.chain_id:
            raise GenesisError("genesis chain_id differs from its consortium's")
        if "header" in doc and codec.to_json(genesis.block().header.to_map()) != doc["header"]:
            raise GenesisError("genesis header does not match the consortium and members it lists")
        return genesis

    @classmethod
    def loads(cls, text: str) -> "Genesis":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise GenesisError(f"genesis file is not JSON: {exc}") from None
        return cls.from_json(doc)


def genesis_member(key: bytes, role: str, name: str, **fields: Any) -> Member:
    """A member created by the genesis file (the same shape a register_member would create)."""
    body = {"key": key, "role": role, "name": name, **fields}
    schema.validate("register_member", body)
    if body.get("tax_id") is not None and role in ("merchant", "enterprise") and not taxid.is_valid(body["tax_id"]):
        raise GenesisError(f"genesis member {name}: invalid taxpayer id {body['tax_id']}")
    return Member(key=key, role=role, name=name, status=ACTIVE, last_tx=GENESIS_TX,
                  tax_id=fields.get("tax_id", ""), taxpayer_type=fields.get("taxpayer_type", ""),
                  monthly_quota=fields.get("monthly_quota", 0), serves=list(fields.get("serves", [])))


# Which optional member fields a role carries (the same rule register_member's schema applies).
_ROLE_FIELDS = {"merchant": ("tax_id", "taxpayer_type", "monthly_quota"), "enterprise": ("tax_id",),
                "platform": ("serves",), "tax": ()}


def _member_from_json(m: dict[str, Any]) -> Member:
    fields = {k: m[k] for k in _ROLE_FIELDS.get(m["role"], ()) if k in m}
    if "serves" in fields:
        fields["serves"] = [codec.from_hex(k, 32) for k in fields["serves"]]
    member = genesis_member(codec.from_hex(m["key"], 32), m["role"], m["name"], **fields)
    if m.get("status", ACTIVE) != ACTIVE:
        raise GenesisError(f"genesis member {m['name']} must start active")
    return member


class _Empty:
    def get(self, key: bytes) -> bytes | None:
        return None
