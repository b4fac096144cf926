#!/usr/bin/env python3
"""Fuzz the node HTTP API with schemathesis, many more cases than ``make test`` runs.

Starts a real 4-node network on 127.0.0.1 (stopped at the end), puts some history on it, then
for every operation of the node's own /openapi.json (except the endless /v1/events stream)
sends ``--examples`` generated requests per generation mode (valid and invalid data), plus a
quarter as many again with path parameters that exist (seeded invoices, transactions, wallets,
blocks). Every answer must pass: no 5xx, status code / content type / body as the document
declares, 405 with Allow for undeclared methods. Prints a summary; exits 1 on any failure.

    .venv/bin/python scripts/fuzz_api.py --examples 500
    .venv/bin/python scripts/fuzz_api.py --url http://127.0.0.1:7700 --examples 200   # a running node
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import hypothesis  # noqa: E402
import hypothesis.errors  # noqa: E402
import requests  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.security import apifuzz  # noqa: E402

MODES = {"positive": GenerationMode.POSITIVE, "negative": GenerationMode.NEGATIVE}


def _known_path_parameters(op, seeded: apifuzz.Seeded | None):
    """A strategy of path parameters naming things that exist, or None."""
    if seeded is None:
        return None
    names = {p.name for p in op.path_parameters}
    if names == {"number"}:
        return st.sampled_from(seeded.numbers).map(lambda n: {"number": n})
    if names == {"tx_id"}:
        return st.sampled_from(seeded.tx_ids).map(lambda t: {"tx_id": t})
    if names == {"holder"}:
        return st.sampled_from(seeded.holders).map(lambda h: {"holder": h})
    if names == {"height"}:
        return st.sampled_from(["latest"] + [str(h) for h in range(seeded.height + 1)]).map(lambda h: {"height": h})
    return None


def run(url: str, examples: int, modes: list[str], seeded: apifuzz.Seeded | None, seed: int | None,
        show: int) -> int:
    schema = apifuzz.load_schema(max_examples=examples, modes=tuple(modes), url=url)
    checks = apifuzz.checks()
    statuses: dict[str, Counter] = defaultdict(Counter)
    failures: dict[str, list[str]] = defaultdict(list)
    cases = 0
    started = time.monotonic()
    session = requests.Session()

    def one(label: str, case) -> None:
        nonlocal cases
        cases += 1
        try:
            response = case.call(base_url=url, session=session, timeout=30)
        except requests.RequestException as exc:
            failures[label].append(f"transport error: {exc!r}")
            return
        statuses[label][response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:  # a schemathesis FailureGroup: keep going, report at the end
            if len(failures[label]) < 50:
                failures[label].append(f"{case.method} {case.formatted_path} query={case.query!r} "
                                       f"-> {response.status_code}: {str(exc).strip().splitlines()[0:6]}")

    settings = hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                                   suppress_health_check=list(hypothesis.HealthCheck),
                                   phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        plans = [(m, None) for m in modes]
        known = _known_path_parameters(op, seeded)
        if known is not None:
            plans.append(("positive", known))
        has_input = bool(len(op.path_parameters) or len(op.query) or len(op.headers) or len(op.body))
        for mode, params in plans:
            if mode == "negative" and not has_input:
                continue  # nothing to make invalid
            n = examples if params is None else max(1, examples // 4)
            strategy = op.as_strategy(generation_mode=MODES[mode])
            if params is not None:
                strategy = st.tuples(strategy, params).map(lambda cp: _with_path(cp[0], cp[1]))

            test = _runner(strategy, hypothesis.settings(settings, max_examples=n), lambda case, lb=label: one(lb, case))
            if seed is not None:
                test = hypothesis.seed(seed)(test)
            try:
                test()
            except hypothesis.errors.Unsatisfiable:
                pass  # no invalid variant exists (an operation without parameters or body)
        print(f"  {label:42s} {sum(statuses[label].values()):6d} cases  "
              f"{dict(sorted(statuses[label].items()))}  failures: {len(failures[label])}", flush=True)
    # Methods the document does not declare: 405 with an Allow header and a JSON error.
    paths = {}
    for result in schema.get_all_operations():
        op = result.ok()
        paths.setdefault(op.path, set()).add(op.method.upper())
    for path, declared in paths.items():
        concrete = path.format(number="1" * 20, tx_id="a" * 64, holder="a" * 64, height="0")
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - declared):
            label = f"{method} {path} (undeclared)"
            cases += 1
            r = session.request(method, url + concrete, timeout=30)
            statuses[label][r.status_code] += 1
            ok = (r.status_code == 405 and set(declared) <= set(r.headers.get("Allow", "").replace(" ", "").split(","))
                  and r.headers.get("Content-Type", "").startswith("application/json") and "error" in r.json())
            if not ok:
                failures[label].append(f"{r.status_code} Allow={r.headers.get('Allow')!r} {r.text[:200]!r}")
    print(f"  undeclared methods on {len(paths)} paths: "
          f"{sum(sum(c.values()) for k, c in statuses.items() if k.endswith('(undeclared)'))} cases, "
          f"failures: {sum(len(v) for k, v in failures.items() if k.endswith('(undeclared)'))}")
    session.close()
    elapsed = time.monotonic() - started
    total = Counter()
    for c in statuses.values():
        total.update(c)
    n5xx = sum(v for k, v in total.items() if k >= 500)
    nfail = sum(len(v) for v in failures.values())
    print(f"\n{cases} cases over {sum(not k.endswith('(undeclared)') for k in statuses)} operations in {elapsed:.1f} s ({cases / max(elapsed, 1e-9):.0f}/s); "
          f"statuses {dict(sorted(total.items()))}; 5xx: {n5xx}; failed checks: {nfail}")
    for label, items in failures.items():
        for item in items[:show]:
            print(f"FAIL {label}: {item}")
    return 1 if nfail or n5xx else 0


def _runner(strategy, settings, body):
    @settings
    @hypothesis.given(strategy)
    def test(case):
        body(case)

    return test


def _with_path(case, params):
    case.path_parameters = params
    return case


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=300, help="generated cases per operation and mode (default 300)")
    ap.add_argument("--modes", default="positive,negative", help="generation modes (default positive,negative)")
    ap.add_argument("--url", help="fuzz this running node instead of starting a network (no seeding)")
    ap.add_argument("--seed", type=int, help="hypothesis seed, to replay a run")
    ap.add_argument("--show", type=int, default=5, help="failures shown per operation")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        ap.error(f"--modes takes {', '.join(MODES)}")
    if args.url:
        return run(args.url.rstrip("/"), args.examples, modes, None, args.seed, args.show)
    from tests.e2e.conftest import start_network

    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp:
        t0 = time.monotonic()
        net = start_network(Path(tmp) / "net")
        try:
            seeded = apifuzz.seed(net.directory, net.entries[0].api_url)
            print(f"4-node network up and seeded (height {seeded.height}) in {time.monotonic() - t0:.1f} s; "
                  f"fuzzing {seeded.url} with {args.examples} cases per operation and mode ({', '.join(modes)})")
            return run(seeded.url, args.examples, modes, seeded, args.seed, args.show)
        finally:
            net.stop_all()


if __name__ == "__main__":
    sys.exit(main())
