"""adjoint_sym next to the tools people would pick instead (issue 8's table).

``python benchmarks/bench_peers.py`` runs each peer that is importable on the problems
of :mod:`common` at ``rtol=1e-7, atol=1e-9`` and prints the first gradient (build +
compile + first call) and the steady-state time per gradient, with adjoint_sym and the
hand-written baseline measured in the same run.  Peers that are not installed are
skipped with a printed note; nothing is installed here (they belong to an optional
``[bench]`` extra):

==============  ====================================================================
peer            how the gradient is taken
==============  ====================================================================
casadi          CVODES (BDF) with its adjoint sensitivities: ``gradient`` of the loss
                through ``integrator(..., "cvodes", ...)``, output grid at the
                observation times
torchdiffeq     ``odeint_adjoint`` with ``dopri5`` (not implemented here unless
                installed: a note is printed)
jax, diffrax    ``odeint`` and ``diffeqsolve(..., RecursiveCheckpointAdjoint)`` under
                ``jit``: measured on the tanh MLP at n = 32-512, next to adjoint_sym's
                default and fast routes, by ``benchmarks/bench_wide.py``
==============  ====================================================================

adjoint_sym runs twice: the default route and ``gradient(problem, backend="fast")``
(not on Robertson, which the fast backend refuses as stiff).

Every peer's gradient is compared with adjoint_sym's (``[dL/dh0, dL/dtheta]``), so a
fast but wrong peer shows.  A last table repeats issue 8's reported figures next to
this run's adjoint_sym, hand-written baseline and CasADi times (ratios only between
figures measured here).  Nothing here asserts.
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import importlib.util
import warnings

import baseline_numpy as base
import numpy as np

from adjoint_sym import gradient
from adjoint_sym.adjoint.fast import available as fast_available

RTOL, ATOL = common.RTOL, common.ATOL


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# -- casadi --------------------------------------------------------------------------------
def casadi_problem(key: str):
    """``(x, p, rhs, x0, p0, times, loss(xs))`` in CasADi SX for the problem ``key``."""
    import casadi as ca

    if key == "lotka-volterra":
        x, p = ca.SX.sym("x", 2), ca.SX.sym("p", 4)
        rhs = ca.vertcat(p[0] * x[0] - p[1] * x[0] * x[1], p[3] * x[0] * x[1] - p[2] * x[1])
        p0 = np.array([common.LV_PARAMS[k] for k in "abcd"])
        return x, p, rhs, common.LV_H0, p0, np.array([common.LV_T1]), lambda xs: ca.sumsqr(xs[:, -1])
    if key == "spiral":
        m = common.SPIRAL_HIDDEN
        x, p = ca.SX.sym("x", 2), ca.SX.sym("p", 5 * m + 2)
        W1 = ca.reshape(p[0 : 2 * m], 2, m).T  # row-major flat -> (m, 2)
        b1 = p[2 * m : 3 * m]
        W2 = ca.reshape(p[3 * m : 5 * m], m, 2).T  # -> (2, m)
        b2 = p[5 * m : 5 * m + 2]
        rhs = ca.mtimes(W2, ca.tanh(ca.mtimes(W1, x**3) + b1)) + b2
        w = common.spiral_weights()
        p0 = np.concatenate([w["W1"].ravel(), w["b1"].ravel(), w["W2"].ravel(), w["b2"].ravel()])
        targets = common.spiral_targets().T  # (2, 10)
        return x, p, rhs, common.SPIRAL_H0, p0, common.SPIRAL_TIMES, lambda xs: ca.sumsqr(xs - targets)
    if key == "robertson":
        x, p = ca.SX.sym("x", 3), ca.SX.sym("p", 3)
        rhs = ca.vertcat(
            -p[0] * x[0] + p[2] * x[1] * x[2], p[0] * x[0] - p[1] * x[1] ** 2 - p[2] * x[1] * x[2], p[1] * x[1] ** 2
        )
        p0 = np.array([common.ROBERTSON_PARAMS[k] for k in ("k1", "k2", "k3")])
        weights = common.ROBERTSON_LOSS_GRAD
        return (
            x,
            p,
            rhs,
            common.ROBERTSON_H0,
            p0,
            np.array([common.ROBERTSON_T1]),
            lambda xs: ca.dot(xs[:, -1], weights),
        )
    n = int(key.split("-")[1])
    x, p = ca.SX.sym("x", n), ca.SX.sym("p", n * n + n)
    W = ca.reshape(p[0 : n * n], n, n).T
    rhs = ca.tanh(ca.mtimes(W, x) + p[n * n :])
    h0, w = common.mlp_data(n)
    p0 = np.concatenate([w["W"].ravel(), w["b"].ravel()])
    return x, p, rhs, h0, p0, np.array([1.0]), lambda xs: ca.sumsqr(xs[:, -1])


def casadi_gradient_function(key: str):
    """A CasADi function ``(x0, p) -> (L, dL/dx0, dL/dp)`` (reverse mode: CVODES adjoints)."""
    import casadi as ca

    x, p, rhs, x0, p0, times, loss = casadi_problem(key)
    opts = {"abstol": ATOL, "reltol": RTOL, "max_num_steps": 100000}
    F = ca.integrator("F", "cvodes", {"x": x, "p": p, "ode": rhs}, 0.0, list(times), opts)
    X0, P = ca.MX.sym("x0", x.shape[0]), ca.MX.sym("p", p.shape[0])
    xs = F(x0=X0, p=P)["xf"]
    L = loss(xs)
    G = ca.Function("G", [X0, P], [L, ca.gradient(L, X0), ca.gradient(L, P)])
    return G, x0, p0


#: Issue 8's table as reported there (another run, peers not installed here): ms per
#: gradient, or None where the issue gives no figure or the tool failed.
ISSUE_REPORTED = {
    "lotka-volterra": {"torchdiffeq": 935, "jax": 0.49, "diffrax": 0.68, "casadi": 8.4, "hand": 13.7},
    "spiral": {"torchdiffeq": 573, "jax": 1.65, "diffrax": 2.5, "casadi": 9.2, "hand": 29.9},
    "robertson": {"torchdiffeq": None, "jax": None, "diffrax": 56, "casadi": 5.3, "hand": 18},
    "mlp-128": {"torchdiffeq": 72, "jax": 8.3, "diffrax": 1.0, "casadi": 46, "hand": 7.9},
}


def hand_route(key: str):
    """The issue's "hand-written numpy + solve_ivp" column: DOP853 backsolve, LSODA
    interpolating for Robertson (where backsolve fails)."""
    p = base.problems()[key]
    if key == "robertson":
        return lambda: base.interpolating(p, "LSODA")
    return lambda: base.backsolve(p)


def measure_problem(key: str, repeats: int, budget: float, with_casadi: bool) -> dict:
    """Round-robin times of adjoint_sym, the hand baseline and (if installed) CasADi on ``key``."""
    prob = base.adjoint_sym_problem(key)
    solver = "LSODA" if key == "robertson" else "DOP853"
    routes = {
        "adjoint_sym": lambda: gradient(prob, solver=solver, rtol=RTOL, atol=ATOL),
        "hand": hand_route(key),
    }
    if key != "robertson" and fast_available():  # the fast backend refuses stiff problems (by design)
        routes["fast"] = lambda: gradient(prob, backend="fast", rtol=RTOL, atol=ATOL)
    out: dict = {}
    if with_casadi:

        def first():
            G, x0, p0 = casadi_gradient_function(key)
            return G, G(x0, p0), x0, p0

        out["casadi first"], (G, _, x0, p0) = common.once(first)
        routes["casadi"] = lambda: G(x0, p0)
        _, dx0, dp = G(x0, p0)
        theirs = np.concatenate([np.asarray(dx0).ravel(), np.asarray(dp).ravel()])
        ours = base.flat_gradient(gradient(prob, solver=solver, rtol=1e-10, atol=1e-12))[:-1]
        out["casadi rel. diff"] = common.rel_err(theirs, ours)
    out.update({name: t.ms for name, t in common.measure_paired(routes, repeats=repeats, budget=budget).items()})
    return out


def casadi_rows(measured: dict) -> list[list]:
    return [
        [
            key,
            "casadi CVODES adjoint",
            1e3 * m["casadi first"],
            m["casadi"],
            m["adjoint_sym"],
            m["adjoint_sym"] / m["casadi"],
            m["casadi rel. diff"],
        ]
        for key, m in measured.items()
    ]


def issue_rows(measured: dict) -> list[list]:
    rows = []
    for key, reported in ISSUE_REPORTED.items():
        m = measured[key]
        rows.append(
            [
                key,
                *(reported[k] for k in ("torchdiffeq", "jax", "diffrax", "casadi", "hand")),
                m.get("casadi"),
                m["hand"],
                m["adjoint_sym"],
                m.get("fast"),
                m["adjoint_sym"] / m["hand"],
                m["fast"] / m["hand"] if "fast" in m else None,
                m["adjoint_sym"] / m["casadi"] if "casadi" in m else None,
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeats, budget = (3, 1.0) if args.quick else (7, 3.0)
    print(f"# adjoint_sym and its peers\n\n{common.machine()}\n")
    keys = ["lotka-volterra", "spiral", "robertson", "mlp-32", "mlp-128"]
    with_casadi = available("casadi")
    if not with_casadi:
        print("casadi: not installed, skipped (pip install casadi)")
    for peer, module, hint in (
        ("torchdiffeq", "torchdiffeq", "pip install torch torchdiffeq"),
        ("jax odeint", "jax", "pip install jax"),
        ("diffrax", "diffrax", "pip install diffrax"),
    ):
        if not available(module):
            print(f"{peer}: not installed, skipped ({hint})")
        elif module == "torchdiffeq":
            print(f"{peer}: installed, but no runner is written for it yet: skipped")
        else:
            print(f"{peer}: measured on the tanh MLP at n = 32-512 by benchmarks/bench_wide.py")
    print()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        measured = {key: measure_problem(key, repeats, budget, with_casadi) for key in keys}
    if with_casadi:
        print(
            common.table(
                [
                    "problem",
                    "peer",
                    "peer first gradient ms",
                    "peer ms / gradient",
                    "adjoint_sym ms / gradient",
                    "adjoint_sym / peer",
                    "rel. diff of gradients",
                ],
                casadi_rows(measured),
                "Peers measured in this run (adjoint_sym: default adjoint; DOP853, LSODA for Robertson)",
            )
        )
        print(
            "rel. diff = max |peer - adjoint_sym@rtol 1e-10| / max |adjoint_sym| over [dL/dh0, dL/dtheta]; "
            "adjoint_sym / peer > 1 means the peer is faster.\n"
        )
    print(
        common.table(
            [
                "problem (ms / gradient)",
                "torchdiffeq (issue)",
                "JAX jit (issue)",
                "diffrax (issue)",
                "CasADi (issue)",
                "hand numpy (issue)",
                "CasADi (now)",
                "hand numpy (now)",
                "adjoint_sym (now)",
                'backend="fast" (now)',
                "adjoint_sym / hand (now)",
                "fast / hand (now)",
                "adjoint_sym / CasADi (now)",
            ],
            issue_rows(measured),
            "Issue 8's table with adjoint_sym's row added",
        )
    )
    print(
        "'(issue)' columns are the figures reported in issue 8 (another run; '-' = failed or not given), "
        "quoted for orientation only: ratios are formed from '(now)' columns, measured round-robin in this run. "
        "'hand numpy' is the DOP853 backsolve (LSODA interpolating for Robertson); the fast backend refuses the stiff "
        "Robertson problem (it names the stiff solvers instead)."
    )


if __name__ == "__main__":
    main()
