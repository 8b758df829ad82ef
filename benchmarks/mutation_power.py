"""Mutation power of the property suite: detection rate and time to the first failure.

Each deliberately wrong adjoint of :mod:`adjoint_sym.testing.mutants` is handed to
:func:`adjoint_sym.testing.check_gradient_function` with the CI budget (25 examples, no
shrinking: the time until hypothesis first sees the disagreement), once under the
derandomized CI profile and once per random seed.  Reference gradients are recomputed
for every run (cache cleared); compiled kernels stay cached across runs, as they do in
one test session.

Usage::

    python benchmarks/mutation_power.py [--seeds 5] [--examples 25]
"""

from __future__ import annotations

import argparse
import statistics
import time

from hypothesis import settings

from adjoint_sym.errors import GradientMismatchError
from adjoint_sym.testing import check_gradient_function, clear_reference_cache
from adjoint_sym.testing.mutants import MUTATIONS, handwritten_adjoint, mutant


def run(fn, *, examples: int, seed: int | None) -> tuple[bool, float, int]:
    """(caught, seconds to the first failure or to the end, examples run)."""
    calls = 0

    def counted(problem):
        nonlocal calls
        calls += 1
        return fn(problem)

    clear_reference_cache()
    started = time.perf_counter()
    try:
        check_gradient_function(counted, max_examples=examples, shrink=False, seed=seed)
    except GradientMismatchError:
        return True, time.perf_counter() - started, calls
    return False, time.perf_counter() - started, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="random seeds per mutant besides the CI profile")
    parser.add_argument("--examples", type=int, default=25, help="max_examples per run (the CI profile's 25)")
    args = parser.parse_args()
    settings.register_profile("mutation-ci", max_examples=args.examples, deadline=None, derandomize=True)
    settings.load_profile("mutation-ci")

    ok, seconds, calls = run(handwritten_adjoint, examples=args.examples, seed=None)
    print(f"correct hand-written adjoint: {'FLAGGED (bug in the suite)' if ok else 'passes'} "
          f"({calls} examples, {seconds:.2f} s: the cost of one CI-profile property)\n")  # fmt: skip

    print("| mutation | CI profile | caught (random seeds) | median time to first failure | median examples |")
    print("|---|---|---|---|---|")
    all_times, caught_total, runs_total = [], 0, 0
    for name in MUTATIONS:
        fn = mutant(name)
        ci_caught, ci_time, ci_calls = run(fn, examples=args.examples, seed=None)
        results = [run(fn, examples=args.examples, seed=s) for s in range(args.seeds)]
        results.append((ci_caught, ci_time, ci_calls))
        times = [t for c, t, _ in results if c]
        calls = [n for c, _, n in results if c]
        caught = sum(c for c, _, _ in results)
        caught_total += caught
        runs_total += len(results)
        all_times += times
        median_t = f"{statistics.median(times):.2f} s" if times else "-"
        median_n = f"{statistics.median(calls):g}" if calls else "-"
        ci = f"caught ({ci_time:.2f} s, {ci_calls} ex.)" if ci_caught else "MISSED"
        print(f"| {name} | {ci} | {caught - ci_caught}/{args.seeds} | {median_t} | {median_n} |")
    print(f"\ndetection rate: {caught_total}/{runs_total} = {caught_total / runs_total:.0%}")
    if all_times:
        print(f"median time to first failure over all caught runs: {statistics.median(all_times):.2f} s")


if __name__ == "__main__":
    main()
