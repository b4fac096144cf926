"""A transaction's signature is checked once per node, never twice, even when a block carrying it
overtakes its gossip (the block is checked first, the late gossip then costs a lookup)."""

from collections import Counter

from chainvoice import crypto
from chainvoice.sim.cast import T0, node_key
from chainvoice.sim.network import Network
from chainvoice.sim.prng import Prng
from chainvoice.sim.run import SIM_CONFIG, genesis_for
from chainvoice.sim.simulation import Simulation
from chainvoice.sim.workload import Workload


def test_each_replica_checks_each_transaction_signature_once(monkeypatch):
    checks: Counter[bytes] = Counter()
    by_node_check: list[bytes] = []
    real_tx, real = crypto.verify_transaction, crypto.verify

    def counting(public_key: bytes, message: bytes, signature: bytes) -> bool:
        if message.startswith(crypto.TX_DOMAIN):
            checks[message] += 1
        return real_tx(public_key, message, signature)

    def node_check(public_key: bytes, message: bytes, signature: bytes) -> bool:
        if message.startswith(crypto.TX_DOMAIN):
            by_node_check.append(message)
        return real(public_key, message, signature)

    monkeypatch.setattr(crypto, "verify_transaction", counting)
    monkeypatch.setattr(crypto, "verify", node_check)
    genesis = genesis_for(4)
    # Jitter well above the batch delay: some pre-prepares reach a replica before the gossip of
    # the transactions they carry.
    sim = Simulation(genesis, SIM_CONFIG, Network(Prng(11), jitter_ms=60), start_ms=T0)
    for node_id in genesis.consortium.node_ids:
        sim.add_node(node_id, node_key(node_id))
    sim.start()
    workload = Workload(sim, Prng(12))
    workload.trickle(4, T0, T0 + 2_000)
    sim.run_until(T0 + 6_000)
    store = sim.node("node0").store
    committed = sum(store.block(h).header.tx_count for h in range(1, store.tip.height + 1))
    assert committed >= 300 and workload.submitted == committed
    # The simulation hands a client's transaction to its replica already decoded (the node shell
    # checks it there), so each of the other three checks it exactly once.
    assert sorted(set(checks.values())) == [3] and len(checks) == committed
    # ... by the transaction check; the check of what nodes sign never sees a transaction.
    assert by_node_check == []
