"""Where the time of one steady-state gradient goes (issue 8: "the profile that says why").

``python benchmarks/profile_gradient.py [--top N]`` prints, for Lotka-Volterra and the
spiral (see :mod:`common`):

1. the cost of each piece of one right-hand-side call of the interpolating adjoint,
   timed in isolation with ``timeit`` (no profiler overhead): the generated kernels
   against the hand-written ones of :mod:`baseline_numpy`, ``h(t)`` from adjoint_sym's
   ``DenseState`` against scipy's ``OdeSolution.__call__``, and the per-gradient set-up
   (the forward solve's dense output converted to monomials, the loss);
2. a ``cProfile`` of ten steady-state gradients per method, sorted by own time
   (pyinstrument is used instead when it is installed and ``--pyinstrument`` given).

The profiler inflates small Python calls, so read section 2 for *where* and section 1
for *how much*.  Nothing here asserts.
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import cProfile
import io
import pstats
import timeit
import warnings

import baseline_numpy as base
import numpy as np
from scipy.integrate import solve_ivp

from adjoint_sym import gradient
from adjoint_sym.adjoint.kernels import adjoint_kernels

RTOL, ATOL = common.RTOL, common.ATOL


def per_call_us(fn, number: int = 2000) -> float:
    """Median over 5 runs of the time of one call, in microseconds (CPU clock)."""
    timer = timeit.Timer(fn, timer=common.clock)
    return 1e6 * float(np.median(timer.repeat(repeat=5, number=number))) / number


def pieces(name: str, prob, hand: base.HandWritten) -> list[list]:
    from adjoint_sym.numeric.dense import DenseState

    k, theta, n = adjoint_kernels(prob.system), prob.theta, prob.system.n
    f, vjp = k.f.fn, k.vjp.fn
    sol = solve_ivp(hand.f, (prob.t0, prob.t1), prob.h0, method="DOP853", rtol=RTOL, atol=ATOL, dense_output=True)
    t = 0.37 * prob.t1
    h = sol.sol(t)
    a = np.ones(int(n))
    dense = DenseState(sol.sol)
    y = np.zeros(int(n) + prob.system.n_params + 1)
    y[: int(n)] = a
    steps = len(sol.t) - 1
    rows = [
        [name, "f kernel (generated)", per_call_us(lambda: f(t, h, theta))],
        [name, "f hand-written", per_call_us(lambda: hand.f(t, h))],
        [name, "vjp kernel (generated)", per_call_us(lambda: vjp(t, h, a, theta))],
        [name, "vjp hand-written", per_call_us(lambda: hand.vjp(t, h, a))],
        [name, "h(t): DenseState.__call__", per_call_us(lambda: dense(t))],
        [name, "h(t): OdeSolution.__call__", per_call_us(lambda: sol.sol(t))],
        [
            name,
            "backward rhs -vjp(t, h(t), y[:n]) as adjoint_sym",
            per_call_us(lambda: -vjp(t, dense(t), y[:n], theta)),
        ],
        [name, "backward rhs as the hand baseline", per_call_us(lambda: -hand.vjp(t, sol.sol(t), y[:n]))],
        [
            name,
            f"per gradient: DenseState(sol) set-up ({steps} steps)",
            per_call_us(lambda: DenseState(sol.sol), number=20),
        ],
        [name, "per gradient: Problem.evaluate_loss", per_call_us(lambda: prob.evaluate_loss(sol.sol(prob.times).T))],
    ]
    return rows


def cprofile(prob, method: str, top: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gradient(prob, method, rtol=RTOL, atol=ATOL)
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(10):
            gradient(prob, method, rtol=RTOL, atol=ATOL)
        pr.disable()
    out = io.StringIO()
    pstats.Stats(pr, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    return text[text.find("   ncalls") :]


def pyinstrument_profile(prob, method: str) -> str:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    with profiler:
        for _ in range(10):
            gradient(prob, method, rtol=RTOL, atol=ATOL)
    return profiler.output_text(unicode=False, color=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="rows of each cProfile listing")
    parser.add_argument("--pyinstrument", action="store_true", help="use pyinstrument if installed")
    args = parser.parse_args(argv)
    print(f"# Where a steady-state gradient's time goes\n\n{common.machine()}\n")
    problems = {
        "Lotka-Volterra": (common.lv_problem(), base.lotka_volterra()),
        "spiral": (common.spiral_problem(), base.spiral()),
    }
    rows = []
    for name, (prob, hand) in problems.items():
        rows += pieces(name, prob, hand)
    print(common.table(["problem", "piece", "us per call"], rows, "1. Pieces, timed in isolation"))
    for name, (prob, _) in problems.items():
        for method in ("adjoint", "backsolve"):
            g = gradient(prob, method, rtol=RTOL, atol=ATOL)
            evals = g.stats["nfev_forward"] + g.stats["nfev_backward"]
            title = f"2. {name}, method={method!r}: 10 gradients, {evals} RHS evaluations each"
            if args.pyinstrument:
                try:
                    print(f"### {title} (pyinstrument)\n\n```\n{pyinstrument_profile(prob, method)}```\n")
                    continue
                except ImportError:
                    print("(pyinstrument is not installed: cProfile instead)")
            print(f"### {title} (cProfile, by own time)\n\n```\n{cprofile(prob, method, args.top)}```\n")


if __name__ == "__main__":
    main()
