"""adjoint_sym's gradients against the hand-written numpy baseline, measured in one run.

``python benchmarks/bench_gradients.py [--quick]`` prints five tables (issue 8):

1. **First gradient of a new system**: caches cleared (:func:`common.forget_compiled`),
   then ``Problem(...)`` (validates, parses and compiles the loss) and ``gradient(...)``
   (derives and compiles the system's kernels, solves forward and backward); median of
   fresh builds.
2. **Steady state**: time per gradient with ``method="adjoint"`` (interpolating for
   DOP853) and ``"backsolve"``, right-hand-side evaluations, and the ratios to the
   hand-written adjoints of :mod:`baseline_numpy` through the same ``solve_ivp`` calls,
   all measured round-robin in this run.
3. **Robertson** (stiff) with ``solver="LSODA"``: the default adjoint's time and its
   error against two independent references (finite differences and forward
   sensitivities, both at ``rtol=1e-12``).
4. **Symbolic scaling**: derive + compile of the matrix-level tanh MLP against the
   entry-wise route (``ODESystem.adjoint(form="jacobian")``, every scalar derivative),
   and entry-wise scalar systems (Lorenz-96).
5. **A fresh interpreter**: ``import adjoint_sym`` and the first gradient in a new
   process, where nothing (SymPy's printers, lambdify) is warm yet.

Times are process CPU time by default (see :data:`common.clock`); nothing here asserts.
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import subprocess
import sys
import textwrap
import warnings

import baseline_numpy as base
import numpy as np
import sympy as sp

from adjoint_sym import gradient
from adjoint_sym.builders import neural_ode
from adjoint_sym.numeric.kernels import compiled

RTOL, ATOL = common.RTOL, common.ATOL

#: name -> (builder of the adjoint_sym problem, the hand-written problem)
PROBLEMS = {
    "lotka-volterra": (common.lv_problem, base.lotka_volterra),
    "spiral": (common.spiral_problem, base.spiral),
    **{f"mlp-{n}": ((lambda n=n: common.mlp_problem(n)), (lambda n=n: base.mlp(n))) for n in common.MLP_SIZES},
}


def first_gradient(make, repeats: int) -> tuple[float, float, object]:
    """Median times of ``Problem`` construction and of the first ``gradient`` call, caches cleared."""
    build, grad = [], []
    g = None
    for _ in range(repeats):
        common.forget_compiled()
        t_build, prob = common.once(make)
        t_grad, g = common.once(lambda prob=prob: gradient(prob, rtol=RTOL, atol=ATOL))
        build.append(t_build)
        grad.append(t_grad)
    return float(np.median(build)), float(np.median(grad)), g


def first_gradient_table(repeats: int) -> str:
    rows = []
    for name, (make, _) in PROBLEMS.items():
        t_build, t_grad, _ = first_gradient(make, repeats)
        rows.append([name, 1e3 * t_build, 1e3 * t_grad, 1e3 * (t_build + t_grad), (t_build + t_grad) / 0.25])
    return common.table(
        ["problem", "Problem() ms", "first gradient() ms", "total ms", "total / 0.25 s target"],
        rows,
        "1. First gradient of a new system (derive + compile + forward + adjoint)",
    )


def steady_table(repeats: int, budget: float) -> str:
    rows, counts = [], []
    for name, (make, hand) in PROBLEMS.items():
        prob, p = make(), hand()
        last = {}

        def ours(method, prob=prob, last=last):
            with warnings.catch_warnings():  # backsolve's drift warning: the drift is not what is timed here
                warnings.simplefilter("ignore", RuntimeWarning)
                last[method] = gradient(prob, method, rtol=RTOL, atol=ATOL)

        t = common.measure_paired(
            {
                "adjoint": lambda: ours("adjoint"),
                "backsolve": lambda: ours("backsolve"),
                "hand interpolating": lambda p=p, last=last: last.__setitem__("hi", base.interpolating(p)),
                "hand backsolve": lambda p=p, last=last: last.__setitem__("hb", base.backsolve(p)),
            },
            repeats=repeats,
            budget=budget,
        )
        ms = {k: v.ms for k, v in t.items()}
        rows.append(
            [
                name,
                ms["adjoint"],
                ms["backsolve"],
                ms["hand interpolating"],
                ms["hand backsolve"],
                ms["adjoint"] / ms["hand interpolating"],
                ms["backsolve"] / ms["hand backsolve"],
                ms["adjoint"] / ms["hand backsolve"],
            ]
        )
        nfev = {m: last[m].stats["nfev_forward"] + last[m].stats["nfev_backward"] for m in ("adjoint", "backsolve")}
        agree = common.rel_err(base.flat_gradient(last["adjoint"]), last["hi"].flat)
        counts.append(
            [
                name,
                last["adjoint"].stats["nfev_forward"],
                last["adjoint"].stats["nfev_backward"],
                nfev["backsolve"],
                last["hi"].nfev,
                last["hb"].nfev,
                ms["adjoint"] * 1e3 / nfev["adjoint"],
                ms["hand interpolating"] * 1e3 / last["hi"].nfev,
                agree,
            ]
        )
    out = common.table(
        [
            "problem",
            "adjoint ms",
            "backsolve ms",
            "hand interp. ms",
            "hand backsolve ms",
            "adjoint / hand interp.",
            "backsolve / hand backsolve",
            "adjoint / hand backsolve",
        ],
        rows,
        "2. Steady-state time per gradient (DOP853, same solve_ivp calls; ratio <= 1 is target 2)",
    )
    out += "\n" + common.table(
        [
            "problem",
            "adjoint fwd evals",
            "adjoint bwd evals",
            "backsolve evals",
            "hand interp. evals",
            "hand backsolve evals",
            "adjoint us / eval",
            "hand interp. us / eval",
            "rel. diff adjoint vs hand",
        ],
        counts,
        "2b. Right-hand-side evaluations (forward + backward) and cost per evaluation",
    )
    return out


#: Relative step of the Robertson finite differences: the truncation error ~ step^2 and
#: the solver noise ~ rtol/step = 1e-12/1e-4 balance near 1e-8, far below the 1e-5 target.
FD_STEP = 1e-4


def robertson_fd_dtheta() -> np.ndarray:
    """``dL/dk`` by central differences of tight (``rtol=1e-12``) Radau solves of the
    hand-written Robertson system: no adjoint_sym code involved."""
    from scipy.integrate import solve_ivp

    k0 = np.array([common.ROBERTSON_PARAMS[k] for k in ("k1", "k2", "k3")])

    def loss(k):
        def f(t, y):
            return np.array(
                [
                    -k[0] * y[0] + k[2] * y[1] * y[2],
                    k[0] * y[0] - k[1] * y[1] ** 2 - k[2] * y[1] * y[2],
                    k[1] * y[1] ** 2,
                ]
            )

        def jac(t, y):
            return np.array(
                [
                    [-k[0], k[2] * y[2], k[2] * y[1]],
                    [k[0], -2 * k[1] * y[1] - k[2] * y[2], -k[2] * y[1]],
                    [0.0, 2 * k[1] * y[1], 0.0],
                ]
            )

        res = solve_ivp(
            f, (0.0, common.ROBERTSON_T1), common.ROBERTSON_H0, method="Radau", jac=jac, rtol=1e-12, atol=1e-16
        )
        return res.y[:, -1] @ common.ROBERTSON_LOSS_GRAD

    out = np.empty(3)
    for j in range(3):
        e = np.zeros(3)
        e[j] = FD_STEP * k0[j]
        out[j] = (loss(k0 + e) - loss(k0 - e)) / (2 * e[j])
    return out


def _flat_and_nfev(g) -> tuple[np.ndarray, int]:
    if isinstance(g, base.BaselineGradient):
        return g.flat, g.nfev
    return base.flat_gradient(g), g.stats["nfev_forward"] + g.stats["nfev_backward"]


def robertson_table(repeats: int, budget: float) -> str:
    prob = common.robertson_problem()
    # The reference over [dh0, dk, dt0]: dk by central differences of hand-written tight
    # Radau solves (no adjoint_sym code); dh0 and dt0 by forward sensitivities at
    # rtol=1e-12.  The registered finite-difference reference cannot serve (its step on h0
    # drives the zero concentrations negative and the solve blows up), and dL/dk2 ~ 4e-9
    # comes from sensitivities ~1e-10, near the forward solve's atol: their agreement with
    # the differences is printed below as a check of both.
    forward_ref = base.flat_gradient(gradient(prob, "forward", solver="LSODA", rtol=1e-12, atol=1e-14))
    fd = robertson_fd_dtheta()
    ref = forward_ref.copy()
    ref[3:6] = fd
    hand = base.robertson()
    common.forget_compiled()
    t_build, fresh = common.once(common.robertson_problem)
    t_first, _ = common.once(lambda: gradient(fresh, solver="LSODA", rtol=RTOL, atol=ATOL))
    routes = {
        "adjoint (default: quadrature)": lambda: gradient(prob, solver="LSODA", rtol=RTOL, atol=ATOL),
        "interpolating": lambda: gradient(prob, "interpolating", solver="LSODA", rtol=RTOL, atol=ATOL),
        "hand interpolating LSODA": lambda: base.interpolating(hand, "LSODA"),
    }
    timings = common.measure_paired(routes, repeats=repeats, budget=budget)
    results = {name: (timings[name].median, fn()) for name, fn in routes.items()}
    for name, fn in {
        "backsolve": lambda: gradient(prob, "backsolve", solver="LSODA", rtol=RTOL, atol=ATOL),
        "hand backsolve LSODA": lambda: base.backsolve(hand, "LSODA"),
    }.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                results[name] = common.once(fn)
        except Exception as exc:  # a failure is a result here: print it
            results[name] = (None, f"fails: {type(exc).__name__}")
    rows = []
    for name, (t, g) in results.items():
        if isinstance(g, str):
            rows.append([name, None, None, None, g, None, None])
            continue
        flat, nfev = _flat_and_nfev(g)
        errs = [common.rel_err(flat, ref), common.componentwise_err(flat[3:6], fd), abs(flat[-1] / ref[-1] - 1)]
        rows.append([name, 1e3 * t, 1e3 * t / 30.0, nfev, *errs])
    out = common.table(
        [
            "route (LSODA)",
            "ms / gradient",
            "/ 30 ms target",
            "RHS evals",
            "rel. err (norm)",
            "worst dL/dk rel. err",
            "dL/dt0 rel. err",
        ],
        rows,
        "3. Robertson, stiff, T=100 (target 4: correct to 1e-5 in <= 30 ms)",
    )
    out += (
        f"\nFirst gradient of a new Robertson system: Problem() {1e3 * t_build:.0f} ms + gradient() "
        f"{1e3 * t_first:.0f} ms.\nReference: dL/dk by central differences of hand-written Radau solves "
        f"(rtol=1e-12, step {FD_STEP:g} k); dL/dh0, dL/dt0 by forward sensitivities (LSODA, rtol=1e-12), whose "
        f"own dL/dk differs from the differences by "
        f"{common.componentwise_err(forward_ref[3:6], fd):.1e} (worst component).\n"
        f"rel. err (norm) = max|g - ref| / max|ref| over [dL/dh0, dL/dk, dL/dt0]. dL/dt0 = -a(t0).f(h0) cancels "
        f"(f(h0) = (-k1, k1, 0)), so its relative error is that of a1 - a2, amplified.\n"
        f"dL/d(k1, k2, k3) = {np.array2string(fd, precision=6)}\n"
    )
    return out


def entrywise_tanh(n: int):
    """``dh_i/dt = tanh(sum_j W_ij h_j + b_i)`` written out in ``n + n^2 + n`` scalar symbols."""
    from adjoint_sym import ODESystem

    h = sp.symbols(f"h0:{n}", real=True)
    W = [[sp.Symbol(f"W_{i}_{j}", real=True) for j in range(n)] for i in range(n)]
    b = sp.symbols(f"b0:{n}", real=True)
    t = sp.Symbol("t", real=True)
    rhs = [sp.tanh(sum(W[i][j] * h[j] for j in range(n)) + b[i]) for i in range(n)]
    return ODESystem(list(h), [w for row in W for w in row] + list(b), t, rhs)


def lorenz96(n: int):
    """Lorenz-96 with ``n`` scalar states and the forcing ``F``: an element-wise system."""
    from adjoint_sym import ODESystem

    names = [f"x{i}" for i in range(n)]
    rhs = [f"(x{(i + 1) % n} - x{(i - 2) % n})*x{(i - 1) % n} - x{i} + F" for i in range(n)]
    return ODESystem.from_strings(names, ["F"], "t", rhs, name=f"Lorenz-96, n={n}")


def derive_compile(system) -> tuple[float, float]:
    """Seconds to derive the VJP (``system.vjp``) and to build the ``f`` and ``vjp`` kernels."""
    common.forget_compiled()
    cot = (
        sp.MatrixSymbol("a", system.n, 1)
        if system.is_matrix_level
        else sp.ImmutableMatrix([sp.Symbol(f"a{i}") for i in range(system.n)])
    )
    t_derive, _ = common.once(lambda: system.vjp(cot))
    common.forget_compiled()
    t_all, _ = common.once(lambda: (compiled(system).f, compiled(system).vjp))
    return t_derive, t_all


def symbolic_table(quick: bool) -> str:
    rows = []
    for n in (8, 32, 128):
        t_derive, t_all = derive_compile(neural_ode(n))
        rows.append([f"tanh MLP n={n}", "matrix-level VJP", n * n + n, 1e3 * t_derive, 1e3 * t_all])
    for n in (4,) if quick else (4, 8):
        common.forget_compiled()
        t_adj, _ = common.once(lambda n=n: neural_ode(n).adjoint(form="jacobian"))
        rows.append([f"tanh MLP n={n}", 'adjoint(form="jacobian"), entry-wise', n * n + n, 1e3 * t_adj, None])
        common.forget_compiled()
        system = entrywise_tanh(n)
        t_jac, _ = common.once(lambda system=system: (system.jacobian_h, system.jacobian_theta))
        t_derive, t_all = derive_compile(entrywise_tanh(n))
        rows.append([f"tanh MLP n={n}", "scalar symbols: Matrix.jacobian", n * n + n, 1e3 * t_jac, None])
        rows.append([f"tanh MLP n={n}", "scalar symbols: VJP of a.f", n * n + n, 1e3 * t_derive, 1e3 * t_all])
    for n in (8, 32):
        t_derive, t_all = derive_compile(lorenz96(n))
        rows.append([f"Lorenz-96 n={n}", "element-wise VJP", 1, 1e3 * t_derive, 1e3 * t_all])
    return common.table(
        ["system", "route", "parameters", "derive ms", "derive + compile f, vjp ms"],
        rows,
        "4. Symbolic scaling (target 5: n=128 derives and compiles in <= 2 s; element-wise n <= 32 in < 1 s)",
    )


COLD = textwrap.dedent(
    """
    import time, sys
    sys.path.insert(0, {here!r})
    import common
    start = common.clock()
    import adjoint_sym
    t_import = common.clock() - start
    from adjoint_sym import gradient
    out = []
    for make in (common.lv_problem, common.spiral_problem):
        start = common.clock()
        g = gradient(make(), rtol=common.RTOL, atol=common.ATOL)
        out.append(common.clock() - start)
    print(t_import, *out)
    """
)


def cold_table() -> str:
    here = str(__import__("pathlib").Path(__file__).resolve().parent)
    res = subprocess.run([sys.executable, "-c", COLD.format(here=here)], capture_output=True, text=True, check=True)
    t_import, t_lv, t_spiral = (float(x) for x in res.stdout.split())
    rows = [
        ["import adjoint_sym", 1e3 * t_import],
        ["first Lotka-Volterra gradient (Problem + gradient)", 1e3 * t_lv],
        ["then first spiral gradient (Problem + gradient)", 1e3 * t_spiral],
    ]
    return common.table(["in a fresh interpreter", "ms"], rows, "5. Cold start")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip the slowest symbolic row")
    args = parser.parse_args(argv)
    repeats, budget, fresh = (3, 1.0, 1) if args.quick else (9, 4.0, 3)
    print(f"# adjoint_sym gradients vs the hand-written numpy baseline\n\n{common.machine()}\n")
    for section in (
        lambda: first_gradient_table(fresh),
        lambda: steady_table(repeats, budget),
        lambda: robertson_table(repeats, budget),
        lambda: symbolic_table(args.quick),
        cold_table,
    ):
        print(section(), flush=True)


if __name__ == "__main__":
    main()
