"""Block cutting under a steady stream and on an idle network (chainvoice.sim, no faults).

A primary that cut a block the moment the last one committed would, under a steady stream, make
many small blocks whose fixed cost (vote rounds, signatures, synced writes) dominates; after its
previous proposal it waits ``min_block_interval_ms`` scaled by that block's size (full from
``block_interval_full_txs``). A client sending one transaction after another, and a lone
transaction on an idle network, still wait only ``batch_delay_ms``.
"""

import dataclasses

from chainvoice.sim.cast import T0, node_key
from chainvoice.sim.network import Network
from chainvoice.sim.prng import Prng
from chainvoice.sim.run import SIM_CONFIG, genesis_for
from chainvoice.sim.simulation import Simulation
from chainvoice.sim.workload import Workload

CONFIG = dataclasses.replace(SIM_CONFIG, batch_delay_ms=20, min_block_interval_ms=100, block_interval_full_txs=8,
                             max_batch=2_000)


def _network(seed: int) -> tuple[Simulation, Workload]:
    genesis = genesis_for(4)
    sim = Simulation(genesis, CONFIG, Network(Prng(seed), jitter_ms=2), start_ms=T0)
    for node_id in genesis.consortium.node_ids:
        sim.add_node(node_id, node_key(node_id))
    sim.start()
    return sim, Workload(sim, Prng(seed + 1))


def _blocks(sim: Simulation) -> list[tuple[int, int]]:
    """(timestamp, transactions) of every committed block."""
    store = sim.node("node0").store
    headers = [store.block(h).header for h in range(1, store.tip.height + 1)]
    return [(h.timestamp_ms, h.tx_count) for h in headers]


def _block_times(sim: Simulation) -> list[int]:
    return [t for t, _ in _blocks(sim)]


def test_a_steady_stream_is_cut_into_blocks_no_closer_than_the_interval():
    sim, workload = _network(7)
    workload.trickle(5, T0, T0 + 3_000)  # ~200 issues a second: ~20 per interval, above "full"
    sim.run_until(T0 + 4_000)
    blocks = _blocks(sim)
    assert len(blocks) >= 20, blocks
    full, interval = CONFIG.block_interval_full_txs, CONFIG.min_block_interval_ms
    for (t0, n0), (t1, _) in zip(blocks, blocks[1:]):
        assert t1 - t0 >= interval * min(n0, full) // full, blocks
    busy_gaps = [t1 - t0 for (t0, n0), (t1, _) in zip(blocks, blocks[1:]) if n0 >= full]
    assert len(busy_gaps) >= 15 and min(busy_gaps) >= interval, blocks
    # ... and not much further apart: the stream keeps the primary busy
    assert sorted(busy_gaps)[len(busy_gaps) // 2] < 2 * interval, blocks


def test_one_transaction_after_another_is_not_held_back_by_the_interval():
    """A client that waits for each commit before sending the next: blocks of one transaction,
    each proposed the batch delay after it arrives, not the interval after the last block."""
    sim, workload = _network(13)
    sim.run_until(T0 + 500)
    for _ in range(5):
        before = sim.node("node0").store.tip.height
        submitted = sim.now
        workload.probe(["node1"])
        assert sim.run_until(submitted + 1_000, stop=lambda: sim.node("node0").store.tip.height > before)
        t, n = _blocks(sim)[-1]
        assert n == 1 and t - submitted < CONFIG.batch_delay_ms + 20


def test_a_lone_transaction_on_an_idle_network_waits_only_the_batch_delay():
    sim, workload = _network(11)
    workload.trickle(5, T0, T0 + 300)
    sim.run_until(T0 + 2_000)  # idle for well over the interval
    before = sim.node("node0").store.tip.height
    submitted = sim.now
    workload.probe(["node0"])
    sim.run_until(submitted + 1_000)
    times = _block_times(sim)
    assert len(times) == before + 1
    assert CONFIG.batch_delay_ms <= times[-1] - submitted < CONFIG.min_block_interval_ms
