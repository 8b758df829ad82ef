"""False alarms of the default checker on drawn correct problems (issue 12).

Every problem is drawn from :mod:`adjoint_sym.strategies` (the default families and the
hard regimes: long spans, equilibrium and zero starts with growing modes, exact-zero
gradients, mildly stiff linear systems), seeded, and judged by the default
``check(prob)``.  The library's adjoint is correct on all of them, so every "fail"
verdict is a false alarm; "inconclusive" verdicts (references disagreeing among
themselves) and crashes (``check`` raising) are counted apart.  Prints Markdown tables:
verdicts per regime, false alarms by cause, the time per verdict, and the first
counterexamples in full (``--show``).

    python benchmarks/false_alarms.py --n 300            # ~60 problems per regime
    python benchmarks/false_alarms.py --n 50 --regimes stiff equilibrium --show 3

The drawing is :func:`adjoint_sym.strategies.drawn_problems`: the same ``--seed`` gives
the same problems on every machine, so a campaign splits into seeds.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
import traceback
import warnings

from adjoint_sym import check
from adjoint_sym.strategies import REGIMES, drawn_problems
from adjoint_sym.testing import describe


def draw(n: int, regimes, seed: int) -> list[tuple[str, object]]:
    """``n`` problems split evenly over ``regimes`` (``(regime, problem)`` pairs), seeded."""
    per = max(1, n // len(regimes))
    out = []
    for i, name in enumerate(regimes):
        out += [(name, p) for p in drawn_problems(per, REGIMES[name](), seed=seed + i)]
    return out


def verdict_of(report) -> str:
    verdict = getattr(report, "verdict", None)  # older reports have only .ok
    return verdict if verdict is not None else ("ok" if report.ok else "fail")


def cause_of(report) -> str:
    """The failures' causes, or for an inconclusive verdict its reasons and the regime named."""
    causes = {f.cause.split(":")[0] for f in report.failures}
    for item in getattr(report, "inconclusive", ()):
        regime = next((w for w in ("stiff", "kappa", "smooth surrogate", "tighten rtol") if w in item.remedy), "")
        causes.add(f"{item.reason} ({regime})" if regime else item.reason)
    return ", ".join(sorted(causes)) or "(none)"


def judge(problems, **options) -> list[dict]:
    rows = []
    for regime, prob in problems:
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = check(prob, **options)
            row = {"verdict": verdict_of(report), "cause": cause_of(report), "report": report}
        except Exception as exc:  # a crash is what is counted here, whatever it is
            row = {"verdict": "crash", "cause": f"{type(exc).__name__}: {exc}"[:120], "report": None}
            row["traceback"] = traceback.format_exc()
        row.update(regime=regime, problem=prob, seconds=time.perf_counter() - started)
        rows.append(row)
    return rows


def print_tables(rows, show: int) -> None:
    verdicts = ("ok", "fail", "inconclusive", "crash")
    print("| regime | problems | ok | false alarms (fail) | inconclusive | crashes | median s | max s |")
    print("|---|---|---|---|---|---|---|---|")
    by_regime = collections.defaultdict(list)
    for r in rows:
        by_regime[r["regime"]].append(r)
    for regime, group in [*by_regime.items(), ("all", rows)]:
        counts = collections.Counter(r["verdict"] for r in group)
        secs = [r["seconds"] for r in group]
        cells = " | ".join(str(counts.get(v, 0)) for v in verdicts)
        print(f"| {regime} | {len(group)} | {cells} | {statistics.median(secs):.2f} | {max(secs):.2f} |")
    total = sum(r["seconds"] for r in rows)
    print(f"\ntime per verdict: {total / len(rows):.3f} s on average ({total:.0f} s for {len(rows)} problems)\n")
    for kind in ("fail", "inconclusive", "crash"):
        bad = [r for r in rows if r["verdict"] == kind]
        if not bad:
            continue
        print(f"| {kind}: cause | count |\n|---|---|")
        for cause, count in collections.Counter(r["cause"] for r in bad).most_common():
            print(f"| {cause} | {count} |")
        print()
        for r in bad[:show]:
            print(f"--- {kind} ({r['regime']}, {r['seconds']:.2f} s)\n{describe(r['problem'])}\n")
            print(r["report"].text() if r["report"] is not None else r.get("traceback", r["cause"]))
            print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="problems in all (split over the regimes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--show", type=int, default=2, help="counterexamples printed in full per kind")
    args = parser.parse_args()
    problems = draw(args.n, args.regimes, args.seed)
    print(f"# False alarms of check() over {len(problems)} drawn correct problems (seed {args.seed})\n")
    print_tables(judge(problems), args.show)


if __name__ == "__main__":
    main()
