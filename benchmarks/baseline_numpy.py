"""The baseline: hand-written numpy right-hand sides and VJPs through ``solve_ivp``.

What a careful person writes by hand for each problem of :mod:`common` (no SymPy, no
code generation): ``f(t, h)`` and the vector-Jacobian product
``vjp(t, h, a) = [a^T f_h, a^T f_theta, a^T f_t]`` as numpy expressions closed over the
parameter values, run through the same ``scipy.integrate.solve_ivp`` calls as
adjoint_sym:

* :func:`backsolve` -- Chen et al. (2018), Algorithm 1: forward solve without dense
  output, then one backward solve per observation interval of ``[h, a, a_theta, a_t]``
  re-integrating ``h`` (restarted at each observation from the forward state, as
  torchdiffeq does);
* :func:`interpolating` -- forward solve with dense output, then a backward solve of
  ``[a, a_theta, a_t]`` reading ``h(t)`` from ``OdeSolution.__call__``; for the stiff
  solvers (LSODA, BDF, Radau) the hand-written Jacobians are passed to both solves.

Observation losses jump ``a`` by ``dL/dh(t_i)`` and ``a_t`` by ``-dL/dh(t_i) . f`` at each
``t_i`` (Chen et al., appendix B), like adjoint_sym.  Run ``python
benchmarks/baseline_numpy.py`` for the baseline's own table: time per gradient, RHS
evaluations, and its agreement with adjoint_sym's gradient (the baseline is only a fair
yardstick if it computes the same numbers).
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

STIFF = ("LSODA", "BDF", "Radau")


@dataclass(frozen=True)
class HandWritten:
    """One problem written by hand: the numbers, ``f``, its VJP and the loss's gradient."""

    name: str
    h0: np.ndarray
    n_params: int
    t1: float
    times: np.ndarray  # observation times, the last is t1
    f: Callable[[float, np.ndarray], np.ndarray]
    vjp: Callable[[float, np.ndarray, np.ndarray], np.ndarray]  # -> (n + p + 1,)
    loss: Callable[[np.ndarray], float]  # states (N, n) -> L
    loss_grad: Callable[[np.ndarray], np.ndarray]  # states (N, n) -> dL/dh_i (N, n)
    jac_h: Callable | None = None  # f_h (n, n), for the stiff solvers
    jac_theta: Callable | None = None  # f_theta (n, p)
    t0: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.h0)


@dataclass(frozen=True)
class BaselineGradient:
    loss: float
    dh0: np.ndarray
    dtheta: np.ndarray
    dt0: float
    nfev_forward: int
    nfev_backward: int

    @property
    def flat(self) -> np.ndarray:
        """``[dh0, dtheta, dt0]``: what both sides compute."""
        return np.concatenate([self.dh0, self.dtheta, [self.dt0]])

    @property
    def nfev(self) -> int:
        return self.nfev_forward + self.nfev_backward


# -- the problems, by hand -----------------------------------------------------------------
def lotka_volterra() -> HandWritten:
    a, b, c, d = (common.LV_PARAMS[k] for k in "abcd")

    def f(t, h):
        x, y = h
        return np.array([a * x - b * x * y, d * x * y - c * y])

    def vjp(t, h, lam):
        x, y = h
        l0, l1 = lam
        return np.array(
            [
                l0 * (a - b * y) + l1 * d * y,
                -l0 * b * x + l1 * (d * x - c),
                l0 * x,
                -l0 * x * y,
                -l1 * y,
                l1 * x * y,
                0.0,
            ]
        )

    def jac_h(t, h):
        x, y = h
        return np.array([[a - b * y, -b * x], [d * y, d * x - c]])

    def jac_theta(t, h):
        x, y = h
        return np.array([[x, -x * y, 0.0, 0.0], [0.0, 0.0, -y, x * y]])

    return HandWritten(
        "Lotka-Volterra",
        common.LV_H0.copy(),
        4,
        common.LV_T1,
        np.array([common.LV_T1]),
        f,
        vjp,
        loss=lambda s: float(s[-1] @ s[-1]),
        loss_grad=lambda s: 2 * s,
        jac_h=jac_h,
        jac_theta=jac_theta,
    )


def spiral() -> HandWritten:
    w = common.spiral_weights()
    W1, b1, W2, b2 = w["W1"], w["b1"].ravel(), w["W2"], w["b2"].ravel()
    targets = common.spiral_targets()

    def f(t, h):
        return W2 @ np.tanh(W1 @ h**3 + b1) + b2

    def vjp(t, h, lam):
        x = h**3
        s = np.tanh(W1 @ x + b1)
        g = (W2.T @ lam) * (1 - s * s)
        dh = (W1.T @ g) * (3 * h * h)
        return np.concatenate([dh, np.outer(g, x).ravel(), g, np.outer(lam, s).ravel(), lam, [0.0]])

    return HandWritten(
        "spiral 2-50-2",
        common.SPIRAL_H0.copy(),
        W1.size + b1.size + W2.size + b2.size,
        common.SPIRAL_T1,
        common.SPIRAL_TIMES.copy(),
        f,
        vjp,
        loss=lambda s: float(np.sum((s - targets) ** 2)),
        loss_grad=lambda s: 2 * (s - targets),
    )


def mlp(n: int) -> HandWritten:
    h0, w = common.mlp_data(n)
    W, b = w["W"], w["b"].ravel()

    def f(t, h):
        return np.tanh(W @ h + b)

    def vjp(t, h, lam):
        s = np.tanh(W @ h + b)
        g = lam * (1 - s * s)
        return np.concatenate([W.T @ g, np.outer(g, h).ravel(), g, [0.0]])

    return HandWritten(
        f"tanh MLP n={n}",
        h0,
        n * n + n,
        1.0,
        np.array([1.0]),
        f,
        vjp,
        loss=lambda s: float(s[-1] @ s[-1]),
        loss_grad=lambda s: 2 * s,
    )


def robertson() -> HandWritten:
    k1, k2, k3 = (common.ROBERTSON_PARAMS[k] for k in ("k1", "k2", "k3"))
    weights = common.ROBERTSON_LOSS_GRAD

    def f(t, y):
        y1, y2, y3 = y
        return np.array([-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2 * y2 - k3 * y2 * y3, k2 * y2 * y2])

    def jac_h(t, y):
        _, y2, y3 = y
        return np.array([[-k1, k3 * y3, k3 * y2], [k1, -2 * k2 * y2 - k3 * y3, -k3 * y2], [0.0, 2 * k2 * y2, 0.0]])

    def jac_theta(t, y):
        y1, y2, y3 = y
        return np.array([[-y1, 0.0, y2 * y3], [y1, -y2 * y2, -y2 * y3], [0.0, y2 * y2, 0.0]])

    def vjp(t, y, lam):
        return np.concatenate([lam @ jac_h(t, y), lam @ jac_theta(t, y), [0.0]])

    def loss_grad(s):
        out = np.zeros_like(s)
        out[-1] = weights
        return out

    return HandWritten(
        "Robertson",
        common.ROBERTSON_H0.copy(),
        3,
        common.ROBERTSON_T1,
        np.array([common.ROBERTSON_T1]),
        f,
        vjp,
        loss=lambda s: float(s[-1] @ weights),
        loss_grad=loss_grad,
        jac_h=jac_h,
        jac_theta=jac_theta,
    )


# -- the two adjoints ------------------------------------------------------------------------
def _solve(fun, span, y0, solver, rtol, atol, jac=None, **options):
    if jac is not None:
        options["jac"] = jac
    with np.errstate(all="ignore"):  # a blow-up shows as a failed status or a non-finite gradient
        res = solve_ivp(fun, span, y0, method=solver, rtol=rtol, atol=atol, **options)
    if res.status != 0:
        raise RuntimeError(f"{solver} failed on {span}: {res.message}")
    return res


def backsolve(p: HandWritten, solver: str = "DOP853", rtol: float = common.RTOL, atol: float = common.ATOL):
    """Chen et al. (2018) Algorithm 1: re-integrate ``h`` backward with the adjoint."""
    n, f, vjp = p.n, p.f, p.vjp
    jac = (lambda t, y: p.jac_h(t, y)) if solver in STIFF and p.jac_h is not None else None
    fwd = _solve(f, (p.t0, p.t1), p.h0, solver, rtol, atol, t_eval=p.times, jac=jac)
    states = fwd.y.T
    d_states = p.loss_grad(states)

    def rhs(t, y):
        h = y[:n]
        return np.concatenate([f(t, h), -vjp(t, h, y[n : 2 * n])])

    a = np.zeros(n)
    a_theta = np.zeros(p.n_params)
    a_t = 0.0
    nfev = 0
    starts = [p.t0, *p.times[:-1]]
    for i in range(len(p.times) - 1, -1, -1):
        a = a + d_states[i]
        a_t -= d_states[i] @ f(p.times[i], states[i])
        y0 = np.concatenate([states[i], a, a_theta, [a_t]])
        res = _solve(rhs, (p.times[i], starts[i]), y0, solver, rtol, atol)
        y = res.y[:, -1]
        a, a_theta, a_t = y[n : 2 * n], y[2 * n : 2 * n + p.n_params], y[-1]
        nfev += res.nfev
    return BaselineGradient(p.loss(states), a, a_theta, float(a_t), fwd.nfev, nfev)


def interpolating(p: HandWritten, solver: str = "DOP853", rtol: float = common.RTOL, atol: float = common.ATOL):
    """The adjoint ``[a, a_theta, a_t]`` backward, ``h(t)`` from the forward dense output."""
    n, n_params, f, vjp = p.n, p.n_params, p.f, p.vjp
    stiff = solver in STIFF and p.jac_h is not None
    fwd = _solve(f, (p.t0, p.t1), p.h0, solver, rtol, atol, dense_output=True, jac=p.jac_h if stiff else None)
    sol = fwd.sol
    states = np.asarray(sol(p.times)).T
    states[-1] = fwd.y[:, -1]
    d_states = p.loss_grad(states)

    def rhs(t, y):
        return -vjp(t, sol(t), y[:n])

    jac = None
    if stiff:
        size = n + n_params + 1

        def jac(t, y):
            h = sol(t)
            out = np.zeros((size, size))
            out[:n, :n] = -p.jac_h(t, h).T
            out[n : n + n_params, :n] = -p.jac_theta(t, h).T
            return out

    a = np.zeros(n + n_params + 1)
    nfev = 0
    starts = [p.t0, *p.times[:-1]]
    for i in range(len(p.times) - 1, -1, -1):
        a[:n] += d_states[i]
        a[-1] -= d_states[i] @ f(p.times[i], states[i])
        res = _solve(rhs, (p.times[i], starts[i]), a, solver, rtol, atol, jac=jac)
        a = res.y[:, -1].copy()
        nfev += res.nfev
    return BaselineGradient(p.loss(states), a[:n], a[n : n + n_params], float(a[-1]), fwd.nfev, nfev)


VARIANTS = {"backsolve": backsolve, "interpolating": interpolating}


def problems() -> dict[str, HandWritten]:
    out = {"lotka-volterra": lotka_volterra(), "spiral": spiral()}
    for n in common.MLP_SIZES:
        out[f"mlp-{n}"] = mlp(n)
    out["robertson"] = robertson()
    return out


def adjoint_sym_problem(key: str):
    """The adjoint_sym :class:`Problem` matching ``problems()[key]``."""
    if key == "lotka-volterra":
        return common.lv_problem()
    if key == "spiral":
        return common.spiral_problem()
    if key == "robertson":
        return common.robertson_problem()
    return common.mlp_problem(int(key.split("-")[1]))


def flat_gradient(g) -> np.ndarray:
    """``[dh0, dtheta, dt0]`` of an adjoint_sym :class:`Gradient`."""
    return np.concatenate([np.asarray(g.dh0, dtype=float), np.asarray(g.dtheta, dtype=float), [g.dt0]])


def main() -> None:
    from adjoint_sym import gradient

    print(f"# Hand-written numpy baseline through solve_ivp\n\n{common.machine()}\n")
    rows = []
    for key, p in problems().items():
        solver = "LSODA" if key == "robertson" else "DOP853"
        reference = flat_gradient(gradient(adjoint_sym_problem(key), solver=solver, rtol=1e-10, atol=1e-12))
        for variant, run in VARIANTS.items():
            try:
                g = run(p, solver)
            except RuntimeError as exc:
                rows.append([p.name, f"{solver} {variant}", None, None, f"fails: {exc}"[:60]])
                continue
            timing = common.measure(lambda run=run, p=p, solver=solver: run(p, solver), repeats=7, budget=2.0)
            rows.append(
                [
                    p.name,
                    f"{solver} {variant}",
                    timing.ms,
                    g.nfev,
                    common.rel_err(g.flat, reference),
                ]
            )
    print(common.table(["problem", "adjoint", "ms / gradient", "RHS evals", "rel. err vs adjoint_sym @1e-10"], rows))
    print(
        "rel. err = max |baseline - adjoint_sym| / max |adjoint_sym| over [dL/dh0, dL/dtheta, dL/dt0]; "
        "adjoint_sym run at rtol=1e-10, the baseline at rtol=1e-7: errors of order 1e-6 are the solver's."
    )


if __name__ == "__main__":
    sys.exit(main())
