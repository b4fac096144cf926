"""Block cutting under a steady stream and on an idle network (chainvoice.sim, no faults).

A primary that cut a block the moment the last one committed would, under a steady stream, make
many small blocks whose fixed cost (vote rounds, signatures, synced writes) dominates; it waits
``min_block_interval_ms`` after its previous proposal instead. A lone transaction on an idle
network still goes out after ``batch_delay_ms``.
"""

import dataclasses

from chainvoice.sim.cast import T0, node_key
from chainvoice.sim.network import Network
from chainvoice.sim.prng import Prng
from chainvoice.sim.run import SIM_CONFIG, genesis_for
from chainvoice.sim.simulation import Simulation
from chainvoice.sim.workload import Workload

CONFIG = dataclasses.replace(SIM_CONFIG, batch_delay_ms=20, min_block_interval_ms=100)


def _network(seed: int) -> tuple[Simulation, Workload]:
    genesis = genesis_for(4)
    sim = Simulation(genesis, CONFIG, Network(Prng(seed), jitter_ms=2), start_ms=T0)
    for node_id in genesis.consortium.node_ids:
        sim.add_node(node_id, node_key(node_id))
    sim.start()
    return sim, Workload(sim, Prng(seed + 1))


def _block_times(sim: Simulation) -> list[int]:
    store = sim.node("node0").store
    return [store.block(h).header.timestamp_ms for h in range(1, store.tip.height + 1)]


def test_a_steady_stream_is_cut_into_blocks_no_closer_than_the_interval():
    sim, workload = _network(7)
    workload.trickle(5, T0, T0 + 3_000)  # ~200 issues a second, far below a full batch per block
    sim.run_until(T0 + 4_000)
    times = _block_times(sim)
    assert len(times) >= 20, times
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= CONFIG.min_block_interval_ms, gaps
    # ... and not much further apart: the stream keeps the primary busy
    assert sorted(gaps)[len(gaps) // 2] < 2 * CONFIG.min_block_interval_ms, gaps


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
