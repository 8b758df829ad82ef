"""The opt-in compiled fast path (:mod:`adjoint_sym.adjoint.fast`) against the default route, in one run.

``python benchmarks/bench_fast.py [--quick]`` prints (issue 8, target 3: <= 3 ms per
gradient on Lotka-Volterra and the spiral, first gradient of a new system <= 0.5 s):

1. **Steady state**: time per gradient of ``fast_gradient`` and of the default
   ``gradient(problem)`` (interpolating adjoint through ``solve_ivp``, DOP853), measured
   round-robin, their ratio, and each one's error against a tight reference
   (``gradient(..., rtol=1e-12)``): the fast path is not bought with accuracy.
2. **First gradient of a new system** in a process where the fast path has run before:
   kernel caches cleared, then ``Problem(...)`` and ``fast_gradient(...)`` (derive the
   VJP, then expand to scalars and compile with LLVM, or lower to tapes for a network;
   solve forward and back).  The spiral runs through both kernel forms: the tapes
   (``kernels="auto"``) and SymEngine's expansion (``kernels="scalar"``).
3. **A fresh interpreter**: ``import adjoint_sym.adjoint.fast`` and the first gradients, where
   numba must still load its compiled integrator from its disk cache; and, unless
   ``--quick``, the one-time compilation of that integrator with an empty cache (what
   the first use after installing pays).
4. **The candidates measured before choosing** (rows skip an engine that is not
   installed): CasADi's CVODES adjoint (BDF and Adams), and SymEngine's LLVM kernels
   inside ``solve_ivp`` (a forward solve alone: the per-step Python floor).

Times are process CPU time by default (``BENCH_CLOCK=wall`` for wall time; see
:data:`common.clock`); nothing here asserts.
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from adjoint_sym import gradient
from adjoint_sym.adjoint.fast import available, fast_gradient, fast_system

RTOL, ATOL = common.RTOL, common.ATOL
TARGET_STEADY_MS = 3.0
TARGET_FIRST_S = 0.5
PROBLEMS = {"lotka-volterra": common.lv_problem, "spiral": common.spiral_problem}
#: (problem, kernels) rows: the spiral through both kernel forms (tapes by default, SymEngine's expansion).
ROUTES = [("lotka-volterra", "auto"), ("spiral", "auto"), ("spiral", "scalar")]


def flat(g) -> np.ndarray:
    return np.array(list(g.quantities().values()))


def steady_table(repeats: int, budget: float) -> str:
    rows = []
    for name, kernels in ROUTES:
        prob = PROBLEMS[name]()
        last = {}
        t = common.measure_paired(
            {
                "fast": lambda prob=prob, last=last, kernels=kernels: last.__setitem__(
                    "fast", fast_gradient(prob, rtol=RTOL, atol=ATOL, kernels=kernels)
                ),
                "default": lambda prob=prob, last=last: last.__setitem__(
                    "default", gradient(prob, rtol=RTOL, atol=ATOL)
                ),
            },
            repeats=repeats,
            budget=budget,
        )
        ref = flat(gradient(prob, rtol=1e-12, atol=1e-14))
        fast, default = last["fast"], last["default"]
        rows.append(
            [
                name,
                fast.stats["kernels"],
                t["fast"].ms,
                t["default"].ms,
                t["default"].median / t["fast"].median,
                t["fast"].ms / TARGET_STEADY_MS,
                fast.stats["steps_forward"] + fast.stats["steps_backward"],
                common.rel_err(flat(fast), ref),
                common.rel_err(flat(default), ref),
            ]
        )
    return common.table(
        [
            "problem",
            "fast kernels",
            "fast ms",
            "default ms",
            "default / fast",
            f"fast / {TARGET_STEADY_MS:g} ms target",
            "fast steps (fwd + bwd)",
            "fast error",
            "default error",
        ],
        rows,
        "1. Steady state: time per gradient (errors relative to the gradient's size, vs rtol=1e-12)",
    )


def forget() -> None:
    common.forget_compiled()
    fast_system.cache_clear()


def first_table(repeats: int) -> str:
    fast_gradient(common.lv_problem(), rtol=RTOL, atol=ATOL)  # numba loaded and warm: what is timed is per system
    rows = []
    for name, kernels in ROUTES:
        build, grad, derive, llvm = [], [], [], []
        for _ in range(repeats):
            forget()
            t_build, prob = common.once(PROBLEMS[name])
            t_grad, _ = common.once(lambda prob=prob, k=kernels: fast_gradient(prob, rtol=RTOL, atol=ATOL, kernels=k))
            fs = fast_system(prob.system, kernels)
            build.append(t_build)
            grad.append(t_grad)
            derive.append(fs.derive_time)
            llvm.append(fs.compile_time)
        b, g = float(np.median(build)), float(np.median(grad))
        rows.append(
            [name, fs.kind, 1e3 * b, 1e3 * float(np.median(derive)), 1e3 * float(np.median(llvm)), 1e3 * g, b + g]
        )
    return common.table(
        ["problem", "kernels", "Problem() ms", "VJP ms", "LLVM / tapes ms", "first fast_gradient() ms", "total s"],
        rows,
        f"2. First gradient of a new system, fast path already loaded (target <= {TARGET_FIRST_S} s); "
        "derive/LLVM are wall time",
    )


COLD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    import common
    start = common.clock()
    import adjoint_sym.adjoint.fast
    t_import = common.clock() - start
    out = []
    for make in (common.lv_problem, common.spiral_problem, lambda: common.mlp_problem(128)):
        start = common.clock()
        prob = make()
        built = common.clock()
        adjoint_sym.adjoint.fast.fast_gradient(prob, rtol=common.RTOL, atol=common.ATOL)
        out.append(common.clock() - start)
    out.append(common.clock() - built)  # the MLP's gradient alone, without building its Problem
    print(t_import, *out)
    """
)


def cold(env: dict | None = None) -> tuple[float, ...]:
    here = str(Path(__file__).resolve().parent)
    res = subprocess.run(
        [sys.executable, "-c", COLD.format(here=here)], capture_output=True, text=True, check=True, env=env
    )
    return tuple(float(x) for x in res.stdout.split())


def cold_table(compile_engine: bool) -> str:
    cold()  # make sure the integrator is in numba's disk cache
    t_import, t_lv, t_spiral, t_mlp, t_mlp_gradient = cold()
    rows = [
        ["import adjoint_sym.adjoint.fast (numba, symengine)", t_import],
        ["first Lotka-Volterra gradient (Problem + fast_gradient; numba loads the integrator)", t_lv],
        ["then first spiral gradient (Problem + fast_gradient; numba loads the tape interpreter)", t_spiral],
        ["then first tanh MLP n=128 gradient (Problem + fast_gradient)", t_mlp],
        ["... of which fast_gradient (VJP, tapes, solves)", t_mlp_gradient],
    ]
    if compile_engine:
        with tempfile.TemporaryDirectory() as empty:
            _, t_lv_compile, t_spiral_compile, _, _ = cold({**os.environ, "NUMBA_CACHE_DIR": empty})
        rows.append(["first Lotka-Volterra gradient with an empty numba cache (compiles the integrator)", t_lv_compile])
        rows.append(["then first spiral gradient, empty cache (compiles the tape interpreter)", t_spiral_compile])
    return common.table(["in a fresh interpreter", "s"], rows, "3. Cold start")


# -- the candidates -------------------------------------------------------------------------
def casadi_rows(repeats: int, budget: float) -> list[list]:
    try:
        import casadi as ca
    except ImportError:
        return [["CasADi CVODES adjoint", "not installed", None, None]]
    rows = []
    for name, make in PROBLEMS.items():
        prob = make()
        n = int(prob.system.n)
        if name == "lotka-volterra":
            x, p = ca.SX.sym("x", n), ca.SX.sym("p", 4)
            ode = ca.vertcat(p[0] * x[0] - p[1] * x[0] * x[1], p[3] * x[0] * x[1] - p[2] * x[1])
        else:
            m = common.SPIRAL_HIDDEN
            x = ca.SX.sym("h", n)
            W1, b1, W2, b2 = ca.SX.sym("W1", m, 2), ca.SX.sym("b1", m), ca.SX.sym("W2", 2, m), ca.SX.sym("b2", 2)
            p = ca.vertcat(ca.reshape(W1.T, -1, 1), b1, ca.reshape(W2.T, -1, 1), b2)  # theta's row-major order
            ode = ca.mtimes(W2, ca.tanh(ca.mtimes(W1, x**3) + b1)) + b2
        for label, opts in (
            ("BDF", {}),
            ("Adams", {"linear_multistep_method": "adams", "nonlinear_solver_iteration": "functional"}),
        ):

            def build(x=x, p=p, ode=ode, opts=opts, prob=prob, n=n):
                grid = [float(t) for t in prob.times]
                integ = ca.integrator("I", "cvodes", {"x": x, "p": p, "ode": ode}, float(prob.t0), grid,
                                      {"abstol": ATOL, "reltol": RTOL, **opts})  # fmt: skip
                X0, P = ca.MX.sym("x0", n), ca.MX.sym("P", p.shape[0])
                xf = integ(x0=X0, p=P)["xf"]
                if prob.is_final_loss:
                    loss = ca.sumsqr(xf[:, -1])
                else:
                    loss = ca.sumsqr(xf - ca.DM(prob.loss.targets.T))
                fn = ca.Function("G", [X0, P], [loss, ca.gradient(loss, ca.vertcat(X0, P))])
                fn(prob.h0, prob.theta)
                return fn

            t_first, fn = common.once(build)
            t = common.measure(lambda fn=fn, prob=prob: fn(prob.h0, prob.theta), repeats=repeats, budget=budget)
            rows.append([f"CasADi CVODES adjoint ({label})", name, t.ms, t_first])
    return rows


def llvm_scipy_rows(repeats: int, budget: float) -> list[list]:
    if not available():
        return [["SymEngine LLVM kernels in solve_ivp", "not installed", None, None]]
    from scipy.integrate import solve_ivp

    rows = []
    for name, make in PROBLEMS.items():
        prob = make()
        fs = fast_system(prob.system, "scalar")
        n = fs.n
        buf = np.zeros(1 + 2 * n + fs.n_params)
        buf[1 + 2 * n :] = prob.theta
        out = np.empty(n)
        llvm_f = fs.f

        def rhs(t, y, buf=buf, out=out, llvm_f=llvm_f, n=n):
            buf[0] = t
            buf[1 : 1 + n] = y
            llvm_f(buf, out=out)
            return out.copy()

        def solve(rhs=rhs, prob=prob):
            return solve_ivp(rhs, (prob.t0, prob.t1), prob.h0, method="RK45", rtol=RTOL, atol=ATOL, dense_output=True)

        t = common.measure(solve, repeats=repeats, budget=budget)
        rows.append(["SymEngine LLVM kernels in solve_ivp (RK45), forward solve alone", name, t.ms, None])
    return rows


def candidates_table(repeats: int, budget: float) -> str:
    rows = casadi_rows(repeats, budget) + llvm_scipy_rows(repeats, budget)
    return common.table(
        ["engine", "problem", "ms per gradient", "first gradient s"],
        rows,
        "4. The candidates measured before choosing",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats; skip the integrator's compilation")
    args = parser.parse_args(argv)
    if not available():
        print('the fast path needs numba and symengine: pip install "adjoint_sym[fast]"')
        return
    repeats, budget, fresh = (5, 1.0, 1) if args.quick else (15, 4.0, 3)
    print(f"# The compiled fast path vs the default route\n\n{common.machine()}\n")
    for section in (
        lambda: steady_table(repeats, budget),
        lambda: first_table(fresh),
        lambda: cold_table(not args.quick),
        lambda: candidates_table(repeats, budget),
    ):
        print(section(), flush=True)


if __name__ == "__main__":
    main()
