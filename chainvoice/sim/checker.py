"""What must hold after every run, read from the honest replicas' stores:

S1  no two honest replicas commit different blocks at the same height;
S2  no invoice is reimbursed successfully twice (nor declared twice) on any replica;
S3  every transaction reported committed to a client stays committed: each honest replica that
    reached its height has it there, with the same receipt;
S4  no transaction is in a replica's chain twice (a replay is never applied again);
L   after the faults heal, with at least 2f+1 honest replicas connected, commits resume: a fresh
    transaction submitted to every honest replica is committed on all of them within a bound.
"""

from __future__ import annotations

from ..consensus.config import ReplicaConfig
from ..ledger.records import Receipt
from ..ledger.transaction import decode as decode_tx
from .simulation import SimNode, Simulation


def liveness_bound_ms(config: ReplicaConfig, f: int) -> int:
    """How long after healing commits must resume. Replicas may sit at the capped timeout; each
    view change costs at most one capped timeout, up to f of them can land on Byzantine primaries,
    and a replica that climbed views alone costs one more to be met; plus catch-up retries."""
    return (f + 4) * config.view_timeout_max_ms + 4 * config.catchup_retry_ms + 2_000


def honest_nodes(sim: Simulation) -> list[SimNode]:
    return [n for n in sim.nodes if n.honest]


def safety_violations(sim: Simulation) -> list[str]:
    honest = honest_nodes(sim)
    out: list[str] = []
    # S1
    seen: dict[int, tuple[str, bytes]] = {}
    forked = False
    for node in honest:
        store = node.store
        assert store is not None
        for h in range(1, store.tip.height + 1):
            raw = store.block_bytes(h)
            assert raw is not None
            first = seen.setdefault(h, (node.name, raw))
            if first[1] != raw:
                out.append(f"S1: {first[0]} and {node.name} committed different blocks at height {h}")
                forked = True
                break
    # S2 and S4: with S1 intact every honest chain is a prefix of the longest one
    chains = honest if forked else [max(honest, key=lambda n: n.height)] if honest else []
    for node in chains:
        store = node.store
        assert store is not None
        reimbursed: dict[str, int] = {}
        declared: dict[str, int] = {}
        first_at: dict[bytes, int] = {}
        for h in range(1, store.tip.height + 1):
            block = store.block(h)
            assert block is not None
            for raw, receipt in zip(block.txs, store.receipts(h)):
                earlier = first_at.get(receipt.tx_id)  # S4
                if earlier is not None:
                    out.append(f"S4: tx {receipt.tx_id.hex()[:16]} is in block {earlier} and again in block {h} on {node.name}")
                else:
                    first_at[receipt.tx_id] = h
                if not receipt.ok:
                    continue
                tx = decode_tx(raw, check_signature=False)
                if tx.kind == "reimburse":
                    reimbursed[tx.number] = reimbursed.get(tx.number, 0) + 1  # type: ignore[index]
                elif tx.kind == "declare":
                    declared[tx.number] = declared.get(tx.number, 0) + 1  # type: ignore[index]
        for number, count in reimbursed.items():
            if count > 1:
                out.append(f"S2: invoice {number} reimbursed {count} times on {node.name}")
        for number, count in declared.items():
            if count > 1:
                out.append(f"S2: invoice {number} declared {count} times on {node.name}")
    # S3
    receipts: dict[tuple[str, int], list[Receipt]] = {}
    for tx_id, (h, status, code, reporter) in sim.reported.items():
        for node in honest:
            store = node.store
            assert store is not None
            if store.tip.height < h:
                continue
            loc = store.tx_location(tx_id)
            if loc is None or loc[0] != h:
                out.append(f"S3: tx {tx_id.hex()[:16]} reported committed at {h} (by {reporter}) is at {loc} on {node.name}")
                break
            rs = receipts.get((node.name, h))
            if rs is None:
                rs = receipts[(node.name, h)] = store.receipts(h)
            r = rs[loc[1]]
            if (r.status, r.code) != (status, code):
                out.append(f"S3: tx {tx_id.hex()[:16]} receipt {status}/{code} became {r.status}/{r.code} on {node.name}")
                break
    return out


def all_committed(sim: Simulation, tx_ids: list[bytes]) -> bool:
    for node in sim.nodes:
        if node.honest:
            store = node.store
            if not node.up or store is None:
                return False
            for tx_id in tx_ids:
                if not store.has_tx(tx_id):
                    return False
    return True
