"""Random fault schedules: which nodes are Byzantine and how, network quality, and timed faults
(partitions incl. one-way, crashes incl. mid-step, loss bursts, delay spikes) during a fault
phase, after which everything heals. All drawn from one PRNG, so a seed is a schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..consensus import messages
from .prng import Prng
from .simulation import Simulation

# What a normal run may contain (at most f Byzantine nodes).
BYZANTINE = ("equivocate", "bad-root", "silent-primary", "garbage", "replay", "twin")


@dataclass
class FaultEvent:
    at_ms: int  # after the start
    kind: str  # partition | crash | loss | spike
    duration_ms: int
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"+{self.at_ms}ms {self.kind} for {self.duration_ms}ms {extra}"


@dataclass
class FaultPlan:
    byzantine: dict[str, str]  # node id -> behaviour
    fault_ms: int  # the fault phase: [0, fault_ms); everything heals at fault_ms
    drop: float
    duplicate: float
    jitter_ms: int
    skews: dict[str, int]
    cycles: int  # workload life cycles started during the fault phase
    trickle_ms: int  # mean gap between single background issues (0: none)
    events: list[FaultEvent]

    def describe(self) -> list[str]:
        lines = [f"byzantine={self.byzantine or 'none'} fault_phase={self.fault_ms}ms drop={self.drop} "
                 f"dup={self.duplicate} jitter={self.jitter_ms}ms cycles={self.cycles} trickle={self.trickle_ms}ms"]
        return lines + [e.describe() for e in self.events]


def random_plan(prng: Prng, node_ids: tuple[str, ...], f: int, *, mode: str = "random") -> FaultPlan:
    """``mode``: "random" (0..f Byzantine), "none" (crash and network faults only), or
    "negative" (f+1 colluding equivocators: beyond what PBFT tolerates)."""
    n = len(node_ids)
    byzantine: dict[str, str] = {}
    if mode == "negative":
        byzantine = {node_ids[i]: "cabal" for i in range(f + 1)}
    elif mode == "random":
        k = 0 if prng.chance(0.2) else prng.randint(1, f)
        for node in prng.sample(node_ids, k):
            byzantine[node] = prng.choice(BYZANTINE)
    honest = [x for x in node_ids if x not in byzantine]
    fault_ms = prng.randint(1200, 3500)
    plan = FaultPlan(
        byzantine=byzantine, fault_ms=fault_ms,
        drop=prng.choice([0.0, 0.0, 0.02, 0.05, 0.1, 0.2]),
        duplicate=prng.choice([0.0, 0.05, 0.2]),
        jitter_ms=prng.randint(2, 40),
        skews={x: prng.randint(-40, 40) for x in node_ids},
        cycles=prng.randint(2, 3) if n <= 4 else 2,
        trickle_ms=prng.choice([0, 150, 300]),
        events=[],
    )
    if mode == "negative":
        plan.drop = plan.duplicate = 0.0
        return plan
    for _ in range(prng.randint(0, 4)):
        at = prng.randint(0, fault_ms - 100)
        duration = prng.randint(100, 1500)
        kind = prng.choice(["partition", "partition", "crash", "crash", "loss", "spike", "starve", "starve", "starve"])
        if kind == "partition":
            size = prng.randint(1, max(1, n // 2))
            side = prng.sample(node_ids, size)
            plan.events.append(FaultEvent(at, kind, duration, {"side": sorted(side), "one_way": prng.chance(0.3)}))
        elif kind == "crash" and honest:
            cut = prng.randint(0, 3) if prng.chance(0.5) else None
            plan.events.append(FaultEvent(at, kind, duration, {"node": prng.choice(honest), "mid_step": cut}))
        elif kind == "starve":
            # The adversary reads message types: one kind reaches only one replica (e.g. COMMITs,
            # so one replica commits while the others are merely prepared when the view changes).
            starved = prng.choice(["commit", "commit", "commit", "prepare", "pre-prepare", "view-change", "new-view"])
            plan.events.append(FaultEvent(at, kind, duration, {
                "kind": starved, "lucky": prng.choice(honest or list(node_ids)), "p": prng.choice([0.8, 1.0]),
                # ... and it may crash the moment it commits, before it can help the others
                "crash_on_commit": starved == "commit" and prng.chance(0.7), "down_ms": prng.randint(300, 2500)}))
        elif kind == "loss":
            plan.events.append(FaultEvent(at, kind, duration, {"drop": prng.choice([0.3, 0.5, 0.8])}))
        else:
            plan.events.append(FaultEvent(at, "spike", duration, {"ms": prng.randint(100, 600)}))
    plan.events.sort(key=lambda e: e.at_ms)
    return plan


def install(plan: FaultPlan, sim: Simulation, t0: int) -> None:
    """Schedule the plan's faults; each ends after its duration or at the end of the fault phase."""
    net = sim.network
    net.drop, net.duplicate = plan.drop, plan.duplicate
    end = t0 + plan.fault_ms
    for e in plan.events:
        start, stop = t0 + e.at_ms, min(t0 + e.at_ms + e.duration_ms, end)
        if e.kind == "partition":
            side = e.params["side"]
            others = [x for x in sim.node_ids if x not in side]
            cut: list[list[tuple[str, str]]] = []
            sim.schedule(start, lambda s=side, o=others, w=e.params["one_way"], c=cut: c.append(net.partition(s, o, one_way=w)))
            sim.schedule(stop, lambda c=cut: [net.restore(links) for links in c])
        elif e.kind == "crash":
            name = e.params["node"]
            sim.schedule(start, lambda nm=name, m=e.params["mid_step"]: sim.crash(nm, after_actions=m))
            if stop < end:  # otherwise it stays down until everything heals
                sim.schedule(stop, lambda nm=name: sim.restart(nm))
        elif e.kind == "starve":
            starve = _Starve(sim, e.params["kind"], e.params["lucky"], e.params["p"])
            sim.schedule(start, lambda st=starve: net.filters.append(st))
            sim.schedule(stop, lambda st=starve: net.filters.remove(st))
            lucky = [x for x in sim.by_id.get(e.params["lucky"], []) if x.honest]
            if e.params["crash_on_commit"] and lucky:
                node = lucky[0]
                sim.schedule(start, lambda nd=node: setattr(nd, "crash_on_commit", True))
                sim.schedule(stop, lambda nd=node: setattr(nd, "crash_on_commit", False))
                restart_at = stop + e.params["down_ms"]
                if restart_at < end:
                    sim.schedule(restart_at, lambda nd=node: sim.restart(nd.name))
        elif e.kind == "loss":
            sim.schedule(start, lambda p=e.params["drop"]: setattr(net, "drop", p))
            sim.schedule(stop, lambda: setattr(net, "drop", plan.drop))
        elif e.kind == "spike":
            sim.schedule(start, lambda ms=e.params["ms"]: setattr(net, "spike_ms", ms))
            sim.schedule(stop, lambda: setattr(net, "spike_ms", 0))


class _Starve:
    """A network filter dropping one kind of message to everyone but ``lucky``."""

    def __init__(self, sim: Simulation, kind: str, lucky: str, p: float) -> None:
        self.chain_id = sim.genesis.chain_id
        self.kind, self.lucky, self.p = kind, lucky, p
        self.prng = sim.network.prng

    def __call__(self, src: str, dst: str, raw: bytes) -> bool:
        if dst == self.lucky:
            return False
        try:
            kind = messages.decode(raw, self.chain_id).kind
        except messages.MessageError:
            return False
        return kind == self.kind and self.prng.chance(self.p)
