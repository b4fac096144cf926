"""The simulated consortium's genesis and its cast: merchants, enterprises, platforms, persons.

Keys are derived from names, so every run (and a replay of its seed) has the same actors.
"""

from __future__ import annotations

import hashlib

from .. import crypto
from ..chain.consortium import Consortium, ConsortiumNode
from ..chain.genesis import Genesis, genesis_member
from ..ledger import taxid

CHAIN_ID = "cv-sim"
# 2026-03-10 10:00 Beijing time: simulated time starts here (invoice numbers begin with "26").
T0 = 1773108000000

NODE_ROLES = ("tax", "merchant", "platform")
MERCHANTS = {"shop": "general", "taxi": "small"}
ENTERPRISES = ("acme", "globex")
# Which enterprises each reimbursement platform serves: acme has two (the double-claim risk).
PLATFORMS = {"plat1": ("acme",), "plat2": ("acme",), "plat3": ("globex",)}
PERSONS = ("alice", "bob", "carol", "dave")


def node_id(i: int) -> str:
    return f"node{i}"


def node_key(node: str) -> crypto.SigningKey:
    return crypto.SigningKey.from_seed(hashlib.sha256(b"sim-node/" + node.encode()).digest())


def actor_key(name: str) -> crypto.SigningKey:
    return crypto.SigningKey.from_seed(hashlib.sha256(b"sim-actor/" + name.encode()).digest())


def tax_id(name: str) -> str:
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 10**11
    first17 = f"914403{seed:011d}"
    return first17 + taxid.check_character(first17)


def make_genesis(n: int) -> Genesis:
    f = (n - 1) // 3
    nodes = tuple(ConsortiumNode(node_id(i), node_key(node_id(i)).public_key, NODE_ROLES[i % 3]) for i in range(n))
    pub = lambda name: actor_key(name).public_key  # noqa: E731
    members = [genesis_member(pub("tax"), "tax", "Shenzhen Tax Bureau")]
    for name, kind in MERCHANTS.items():
        members.append(genesis_member(pub(name), "merchant", name.title() + " Ltd", tax_id=tax_id(name),
                                      taxpayer_type=kind, monthly_quota=10**13))
    for name in ENTERPRISES:
        members.append(genesis_member(pub(name), "enterprise", name.title() + " Corp", tax_id=tax_id(name)))
    for name, serves in PLATFORMS.items():
        members.append(genesis_member(pub(name), "platform", name.title(), serves=[pub(e) for e in serves]))
    return Genesis(Consortium(CHAIN_ID, nodes, f), tuple(members), T0 - 60_000)
