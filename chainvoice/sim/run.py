"""One seeded run end to end: a fault plan, the consortium, the workload, healing, the checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..chain.chain import Chain
from ..chain.genesis import Genesis
from ..consensus.config import ReplicaConfig
from ..consensus.replica import Replica
from ..store.chainstore import ChainStore
from . import byzantine, checker, faults
from .cast import T0, make_genesis, node_key
from .network import Network
from .prng import Prng
from .simulation import SimNode, Simulation
from .workload import Workload

# Small timeouts so a run covers many view changes in a few simulated seconds; the ratios between
# them are those of the defaults (batch delay << view timeout << tx wait; cap = 8 x base).
SIM_CONFIG = ReplicaConfig(
    max_batch=64, batch_delay_ms=20, min_block_interval_ms=8, view_timeout_ms=300, view_timeout_max_ms=2_400,
    tx_wait_timeout_ms=1_500, max_clock_drift_ms=1_000, catchup_batch=8, catchup_retry_ms=300,
    mempool_limit=5_000, gossip_batch=64, status_interval_ms=200,
)

_genesis: dict[int, Genesis] = {}


def genesis_for(n: int) -> Genesis:
    if n not in _genesis:
        _genesis[n] = make_genesis(n)
    return _genesis[n]


@dataclass
class RunResult:
    seed: int
    n: int
    mode: str
    plan: faults.FaultPlan
    violations: list[str] = field(default_factory=list)
    height: int = 0  # highest honest height
    max_view: int = 0  # highest view an honest replica reached (each increment is a view change)
    txs_committed: int = 0
    recovery_ms: int | None = None  # heal -> probes committed everywhere
    evidence: int = 0
    sim_ms: int = 0
    events: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def replay_command(self) -> str:
        extra = "" if self.mode == "random" else f" --mode {self.mode}"
        return f".venv/bin/python scripts/sim.py --seed {self.seed} --n {self.n}{extra} --verbose"


def run(seed: int, n: int = 4, *, mode: str = "random", verbose: bool = False,
        out: Callable[[str], None] = print, config: ReplicaConfig = SIM_CONFIG) -> RunResult:
    genesis = genesis_for(n)
    consortium = genesis.consortium
    root = Prng(seed * 0x1000193 + n)
    plan = faults.random_plan(root.fork(), consortium.node_ids, consortium.f, mode=mode)
    network = Network(root.fork(), jitter_ms=plan.jitter_ms)
    sim = Simulation(genesis, config, network, start_ms=T0, trace=out if verbose else None)
    result = RunResult(seed, n, mode, plan)
    if verbose:
        for line in plan.describe():
            out(f"plan: {line}")
    behaviour_prng = root.fork()
    cabal = byzantine.Cabal(sim, sorted(x for x, b in plan.byzantine.items() if b == "cabal"))
    for node_id in consortium.node_ids:
        kind = plan.byzantine.get(node_id)
        key = node_key(node_id)
        skew = plan.skews[node_id]
        if kind is None:
            sim.add_node(node_id, key, skew_ms=skew)
        elif kind == "twin":
            sim.add_node(node_id, key, honest=False, skew_ms=skew)
            sim.add_node(node_id, key, honest=False, name=node_id + "#twin", skew_ms=-skew)
        else:
            sim.add_node(node_id, key, honest=False, skew_ms=skew,
                         factory=_byzantine_factory(kind, sim, config, behaviour_prng.fork(), cabal))
    sim.start()
    workload = Workload(sim, root.fork())
    fault_end = T0 + plan.fault_ms
    workload.start_cycles(plan.cycles, T0 + 10, fault_end - 300)
    workload.trickle(plan.trickle_ms, T0, fault_end - 100)
    faults.install(plan, sim, T0)
    sim.run_until(fault_end)

    # Heal: the network is perfect again, crashed honest nodes restart; Byzantine ones stay.
    network.heal()
    for node in sim.nodes:
        if node.honest and (not node.up or node.crash_after is not None):
            sim.restart(node.name)  # also cancels a mid-step crash that has not struck yet
    if mode == "negative":
        sim.run_until(fault_end + 2_000)
    else:
        honest = [node.name for node in sim.nodes if node.honest]
        probes = workload.probe(honest)
        commits = [0]
        sim.commit_listeners.append(lambda node, commit: commits.__setitem__(0, commits[0] + 1))
        seen = [-1]

        def done() -> bool:
            if commits[0] == seen[0]:
                return False
            seen[0] = commits[0]
            return checker.all_committed(sim, probes)

        bound = checker.liveness_bound_ms(config, consortium.f)
        if sim.run_until(fault_end + bound, stop=done):
            result.recovery_ms = sim.now - fault_end
        else:
            lagging = [f"{nd.name}@{nd.height}" + ("" if nd.replica is None else f"/v{nd.replica.view}")
                       for nd in sim.nodes if nd.honest]
            result.violations.append(f"L: probes not committed on every honest replica within {bound}ms "
                                     f"of healing ({', '.join(lagging)})")
    result.violations[:0] = checker.safety_violations(sim)
    honest_nodes = checker.honest_nodes(sim)
    result.height = max((nd.height for nd in honest_nodes), default=0)
    result.max_view = max((nd.replica.view for nd in honest_nodes if nd.replica is not None), default=0)
    result.txs_committed = len(sim.reported)
    result.evidence = len(sim.evidence)
    result.sim_ms = sim.now - T0
    result.events = sim.counters["events"]
    if verbose:
        for nd in sim.nodes:
            out(f"final: {nd.name} honest={nd.honest} up={nd.up} height={nd.height} "
                f"{'' if nd.replica is None else nd.replica.status()}")
    return result


def _byzantine_factory(kind: str, sim: Simulation, config: ReplicaConfig, prng: Prng,
                       cabal: byzantine.Cabal) -> Callable[[SimNode, Chain, ChainStore, bytes | None], Any]:
    def make(node: SimNode, chain: Chain, store: ChainStore, safety: bytes | None) -> Any:
        inner = Replica(node.node_id, node.key, chain, store, config, safety_state=safety)
        if kind == "equivocate":
            return byzantine.Equivocator(inner, node, sim, prng)
        if kind == "cabal":
            return byzantine.Equivocator(inner, node, sim, prng, cabal=cabal)
        if kind == "bad-root":
            return byzantine.BadRoot(inner, node, sim, prng)
        if kind == "silent-primary":
            return byzantine.SilentPrimary(inner, node, sim, prng)
        if kind == "garbage":
            return byzantine.Garbage(inner, node, sim, prng)
        if kind == "replay":
            return byzantine.Replayer(inner, node, sim, prng)
        raise ValueError(f"unknown behaviour {kind}")

    return make
