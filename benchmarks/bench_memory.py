"""Peak memory of the adjoints as the number of steps grows (issue 8, target 6).

``python benchmarks/bench_memory.py [--quick]`` integrates Lotka-Volterra (see
:mod:`common`) over ``t in [0, T]`` for growing ``T``, so the solver takes proportionally
more steps, and prints the peak memory that ``tracemalloc`` sees during one gradient
(kernels compiled beforehand, so only the solve's own allocations count):

=================================  ============================================================
route                              what it keeps
=================================  ============================================================
hand backsolve, solver stepping    Chen et al. Algorithm 1 driving scipy's ``DOP853`` object
                                   step by step: only the current state (constant memory)
hand backsolve, solve_ivp          the same through ``solve_ivp``, which records ``t`` and
                                   ``y`` of every step
adjoint_sym backsolve              ``gradient(prob, "backsolve")``
adjoint_sym adjoint                ``gradient(prob)``: interpolating, the forward dense output
                                   (one interpolant per step) is kept for the backward pass
adjoint_sym backprop (RK4)         ``gradient(prob, "backprop", scheme="rk4", steps=40 T)``:
                                   discrete backpropagation storing every stage
=================================  ============================================================

The "constant memory" claim of the source note (Chen et al. 2018, section 2) is about the
first row: peak memory flat in the number of steps.  Nothing here asserts.
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import gc
import tracemalloc
import warnings

import baseline_numpy as base
import numpy as np
from scipy.integrate import DOP853

from adjoint_sym import FinalLoss, Problem, gradient
from adjoint_sym.builders import lotka_volterra

RTOL, ATOL = common.RTOL, common.ATOL
RK4_STEPS_PER_UNIT = 40


def _run(solver) -> int:
    steps = 0
    while solver.status == "running":
        msg = solver.step()
        if solver.status == "failed":
            raise RuntimeError(f"DOP853 failed at t = {solver.t}: {msg}")
        steps += 1
    return steps


def stepping_backsolve(p: base.HandWritten) -> tuple[np.ndarray, int]:
    """Algorithm 1 of Chen et al. with scipy's stepper objects: no history kept (final loss)."""
    n, f, vjp = p.n, p.f, p.vjp
    fwd = DOP853(f, p.t0, p.h0, p.t1, rtol=RTOL, atol=ATOL)
    steps = _run(fwd)
    h1 = fwd.y.copy()
    a1 = p.loss_grad(h1[None, :])[-1]
    a_t = -a1 @ f(p.t1, h1)

    def rhs(t, y):
        h = y[:n]
        return np.concatenate([f(t, h), -vjp(t, h, y[n : 2 * n])])

    y0 = np.concatenate([h1, a1, np.zeros(p.n_params), [a_t]])
    back = DOP853(rhs, p.t1, y0, p.t0, rtol=RTOL, atol=ATOL)
    steps += _run(back)
    return back.y[n:].copy(), steps


def lv_hand(t1: float) -> base.HandWritten:
    from dataclasses import replace

    return replace(base.lotka_volterra(), t1=t1, times=np.array([t1]))


def lv(t1: float) -> Problem:
    return Problem(lotka_volterra(), common.LV_H0, common.LV_PARAMS, 0.0, t1, FinalLoss("x**2 + y**2"))


def peak_kib(fn) -> tuple[float, object]:
    """Peak traced memory above the level before the call, in KiB, and the call's result."""
    fn()  # warm: compile kernels, fill caches
    gc.collect()  # the warm-up's cyclic garbage must not be freed inside the measured call
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    out = fn()
    return (tracemalloc.get_traced_memory()[1] - before) / 1024, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three horizons instead of four")
    args = parser.parse_args(argv)
    horizons = (10.0, 40.0, 160.0) if args.quick else (10.0, 40.0, 160.0, 640.0)
    print(f"# Peak memory (tracemalloc) of one Lotka-Volterra gradient vs the number of steps\n\n{common.machine()}\n")
    tracemalloc.start()
    routes = {
        "hand backsolve, solver stepping": lambda T: stepping_backsolve(lv_hand(T)),
        "hand backsolve, solve_ivp": lambda T: base.backsolve(lv_hand(T)),
        "adjoint_sym backsolve": lambda T: gradient(lv(T), "backsolve", rtol=RTOL, atol=ATOL),
        "adjoint_sym adjoint (interpolating)": lambda T: gradient(lv(T), rtol=RTOL, atol=ATOL),
        "adjoint_sym backprop (RK4, all stages)": lambda T: gradient(
            lv(T), "backprop", scheme="rk4", steps=int(RK4_STEPS_PER_UNIT * T)
        ),
    }
    peaks: dict[str, list[float]] = {name: [] for name in routes}
    steps: list[int] = []
    for T in horizons:
        for name, route in routes.items():
            with warnings.catch_warnings():  # backsolve drift on long horizons: memory is the point here
                warnings.simplefilter("ignore", RuntimeWarning)
                kib, out = peak_kib(lambda route=route, T=T: route(T))
            peaks[name].append(kib)
            if name == "adjoint_sym adjoint (interpolating)":
                steps.append(out.stats["steps_forward"])
    tracemalloc.stop()
    headers = ["route", *(f"T={T:g} ({s} steps)" for T, s in zip(horizons, steps)), "last / first"]
    rows = [[name, *vals, vals[-1] / vals[0]] for name, vals in peaks.items()]
    print(common.table(headers, rows, "Peak memory above the start of the call, KiB (steps: forward DOP853 steps)"))
    print(
        f"RK4 backprop uses {RK4_STEPS_PER_UNIT} fixed steps per unit time. 'last / first' near 1 is constant "
        "memory; growing with T is memory proportional to the number of steps."
    )


if __name__ == "__main__":
    main()
