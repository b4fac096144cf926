"""A test consortium: n node keys, a genesis with the standard cast of members, chains on stores."""

from __future__ import annotations

import hashlib

from chainvoice import crypto
from chainvoice.chain.chain import Chain
from chainvoice.chain.consortium import Consortium, ConsortiumNode
from chainvoice.chain.genesis import Genesis, genesis_member
from chainvoice.store.chainstore import ChainStore
from chainvoice.store.kv import MemoryKeyValue

from tests.support.world import CHAIN_ID, T0, key_of, make_tax_id

TAX_IDS = {"shop": make_tax_id(1), "taxi": make_tax_id(2), "acme": make_tax_id(3), "globex": make_tax_id(4)}


def node_key(node_id: str) -> crypto.SigningKey:
    return crypto.SigningKey.from_seed(hashlib.sha256(b"node/" + node_id.encode()).digest())


def make_genesis(n: int = 4, chain_id: str = CHAIN_ID) -> Genesis:
    f = (n - 1) // 3
    roles = ["tax", "merchant", "platform"]
    nodes = tuple(ConsortiumNode(f"node{i}", node_key(f"node{i}").public_key, roles[i % 3]) for i in range(n))
    pub = lambda name: key_of(name).public_key  # noqa: E731
    members = (
        genesis_member(pub("tax"), "tax", "Shenzhen Tax Bureau"),
        genesis_member(pub("shop"), "merchant", "Shenzhen Shop Ltd", tax_id=TAX_IDS["shop"],
                       taxpayer_type="general", monthly_quota=10**12),
        genesis_member(pub("taxi"), "merchant", "Taxi Co", tax_id=TAX_IDS["taxi"], taxpayer_type="small",
                       monthly_quota=10**10),
        genesis_member(pub("acme"), "enterprise", "Acme Corp", tax_id=TAX_IDS["acme"]),
        genesis_member(pub("globex"), "enterprise", "Globex Corp", tax_id=TAX_IDS["globex"]),
        genesis_member(pub("plat1"), "platform", "ExpensePro", serves=[pub("acme")]),
        genesis_member(pub("plat2"), "platform", "ClaimIt", serves=[pub("acme")]),
        genesis_member(pub("plat3"), "platform", "GlobexPay", serves=[pub("globex")]),
    )
    return Genesis(Consortium(chain_id, nodes, f), members, T0 - 60_000)


def open_chain(genesis: Genesis, kv=None) -> tuple[Chain, ChainStore]:
    store = ChainStore(kv if kv is not None else MemoryKeyValue())
    tip = store.open(genesis)
    return Chain(genesis, store, tip), store
