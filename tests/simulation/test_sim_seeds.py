"""Seeded fault schedules through the deterministic PBFT simulator (chainvoice.sim).

Every seed is one schedule: up to f Byzantine replicas (equivocating, bad state roots, silent
primary, garbage, replays, twins), partitions (incl. one-way), crashes (incl. mid-step),
loss bursts, delay spikes, message-type starvation and clock skew, then healing and a liveness
probe. The checker (S1 no fork, S2 no double reimbursement, S3 reported commits stay, L commits
resume) must find nothing. ``scripts/sim.py`` runs many more; a failure here names its seeds and
prints the command that replays each one with a full trace.

The negative control runs f+1 colluding Byzantine replicas — beyond what PBFT tolerates — and
requires the checker to catch a violation: proof that these tests can fail.
"""

from __future__ import annotations

import pytest

from chainvoice.sim.run import RunResult, run

CHUNK = 25
N4_SEEDS = 300
N7_SEEDS = 200
NEGATIVE_SEEDS = 20  # in practice the first seed already forks


def _chunks(total: int) -> list[range]:
    return [range(i, min(i + CHUNK, total)) for i in range(0, total, CHUNK)]


def _report(bad: list[RunResult]) -> str:
    return "\n".join(f"seed {r.seed} n={r.n}: {'; '.join(r.violations)}\n  replay: {r.replay_command()}" for r in bad)


def _check_chunk(seeds: range, n: int) -> None:
    results = [run(s, n) for s in seeds]
    bad = [r for r in results if not r.ok]
    assert not bad, f"{len(bad)} of {len(results)} seeded runs failed:\n" + _report(bad)
    # the schedules do exercise the protocol: blocks are committed and views change
    assert sum(r.height for r in results) > 0
    assert any(r.max_view > 0 for r in results)
    assert all(r.recovery_ms is not None for r in results)


@pytest.mark.parametrize("seeds", _chunks(N4_SEEDS), ids=lambda r: f"seeds{r.start}-{r.stop - 1}")
def test_n4_seeds(seeds):
    _check_chunk(seeds, 4)


@pytest.mark.parametrize("seeds", _chunks(N7_SEEDS), ids=lambda r: f"seeds{r.start}-{r.stop - 1}")
def test_n7_seeds(seeds):
    _check_chunk(seeds, 7)


@pytest.mark.parametrize("n", [4, 7])
def test_negative_control_checker_catches_f_plus_1_byzantine(n):
    """With f+1 colluding equivocators a fork is possible; the checker must report it."""
    tried = []
    for seed in range(NEGATIVE_SEEDS):
        r = run(seed, n, mode="negative")
        tried.append(seed)
        if not r.ok:
            assert any(v.startswith("S1:") for v in r.violations), r.violations
            assert r.replay_command().endswith(f"--seed {seed} --n {n} --mode negative --verbose")
            return
    pytest.fail(f"no violation caught with f+1 Byzantine replicas in seeds {tried}: the checker cannot fail?")


FIELDS = ("seed", "n", "mode", "violations", "height", "max_view", "txs_committed", "recovery_ms", "evidence",
          "sim_ms", "events")


def _fields(r: RunResult) -> dict:
    d = {k: getattr(r, k) for k in FIELDS}
    d["plan"] = r.plan.describe()
    return d


@pytest.mark.parametrize("n,seed,mode", [(4, 7, "random"), (7, 3, "random"), (4, 1, "negative")])
def test_same_seed_same_run(n, seed, mode):
    """A seed is a schedule: running it again — even after other runs have warmed the
    process-wide caches (signatures, decoded messages, certificates) — gives the same run."""
    first = _fields(run(seed, n, mode=mode))
    run(seed + 1, n, mode=mode)
    again = _fields(run(seed, n, mode=mode))
    assert first == again
    assert first["events"] > 0


def test_different_seeds_different_schedules():
    plans = {tuple(run(s, 4).plan.describe()) for s in range(5)}
    assert len(plans) == 5
