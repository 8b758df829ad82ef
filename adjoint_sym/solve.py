"""``solve_ivp`` with the system's kernels: dense output kept, failures made clear.

Stiff methods (BDF, Radau, LSODA) receive the symbolic Jacobian: entry-wise for scalar
systems, from one batched matrix-level VJP for matrix-level ones.  A right-hand side
that turns non-finite, or a solver that stops, raises :class:`SolverFailedError` with
the time, the state and a suggested remedy.
"""

from __future__ import annotations

import cmath
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import OdeSolution, solve_ivp

from .errors import InvalidModelError, SolverFailedError

EXPLICIT = ("RK23", "RK45", "DOP853")
IMPLICIT = ("BDF", "Radau", "LSODA")
SOLVERS = EXPLICIT + IMPLICIT


@dataclass(frozen=True)
class SolveResult:
    """A trajectory: the solver's steps and its dense interpolant."""

    t: np.ndarray
    y: np.ndarray  # (dim, steps)
    sol: OdeSolution | None
    nfev: int
    njev: int
    n_steps: int

    def at(self, times: np.ndarray) -> np.ndarray:
        """States at ``times``, shape (len(times), dim); endpoints exact."""
        if self.sol is None:  # zero-length span
            return np.repeat(self.y[:, :1].T, len(times), axis=0)
        out = np.asarray(self.sol(times)).T.copy()
        for i, t in enumerate(times):
            if t == self.t[-1]:
                out[i] = self.y[:, -1]
            elif t == self.t[0]:
                out[i] = self.y[:, 0]
        return out


class _NonFinite(Exception):
    def __init__(self, t: float, y: np.ndarray) -> None:
        self.t, self.y = t, y


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise InvalidModelError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    return solver


def guarded(fun: Callable) -> Callable:
    """Wrap a right-hand side so a non-finite value stops the solve with its time and state."""

    def rhs(t, y):
        out = fun(t, y)
        # One dot product and a scalar test: NaN and inf propagate into it, and it
        # costs a fraction of np.isfinite(out).all() on the per-step hot path.
        if not cmath.isfinite(out.dot(out)) and not np.isfinite(out).all():
            raise _NonFinite(t, y.copy())
        return out

    return rhs


def integrate(
    fun: Callable,
    t_span: tuple[float, float],
    y0: np.ndarray,
    *,
    solver: str,
    rtol: float,
    atol: float,
    jac: Callable | None = None,
    what: str = "forward solve",
    blowup_remedy: str = "the solution may blow up in finite time: shorten the time span or check parameters",
    dense: bool = True,
    max_step: float = np.inf,
) -> SolveResult:
    """Integrate ``dy/dt = fun(t, y)`` over ``t_span``; raise a clear error on failure."""
    check_solver(solver)
    t0, t1 = t_span
    y0 = np.asarray(y0)
    if t0 == t1:
        return SolveResult(np.array([t0]), y0[:, None].copy(), None, 0, 0, 0)
    options = {"rtol": rtol, "atol": atol, "dense_output": dense, "max_step": max_step}
    if solver in IMPLICIT and jac is not None:
        options["jac"] = jac
    try:
        # Overflow is reported below as a clear error; numpy's warnings would only repeat it.
        with np.errstate(over="ignore", invalid="ignore"):
            res = solve_ivp(guarded(fun), (t0, t1), y0, method=solver, **options)
    except _NonFinite as bad:
        raise SolverFailedError(
            f"{what}: the right-hand side became non-finite at t = {bad.t:.6g} (state {_short(bad.y)}); "
            f"{blowup_remedy}",
            t=bad.t,
            state=bad.y,
        ) from None
    if res.status != 0:
        t_end = float(res.t[-1]) if res.t.size else t0
        state = res.y[:, -1] if res.y.size else None
        remedy = (
            "the problem may be stiff (try solver='LSODA', 'BDF' or 'Radau') or its solution may blow up "
            "(shorten the time span)"
            if solver in EXPLICIT
            else "loosen rtol/atol or shorten the time span"
        )
        where = f" (state {_short(state)})" if state is not None else ""
        raise SolverFailedError(
            f"{what} ({solver}) stopped at t = {t_end:.6g} of [{t0:.6g}, {t1:.6g}]{where}: {res.message}; {remedy}",
            t=t_end,
            state=state,
            solver_message=res.message,
        )
    return SolveResult(res.t, res.y, res.sol, int(res.nfev), int(res.njev), len(res.t) - 1)


def _short(y: np.ndarray) -> str:
    return np.array2string(np.asarray(y)[:6], precision=4) + (" ..." if np.size(y) > 6 else "")


def forward(problem, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10) -> SolveResult:
    """Solve the problem's IVP from ``t0`` to ``t1`` with dense output."""
    k = problem.kernels
    theta = problem.theta
    f = k.f.fn

    def fun(t, y):
        return f(t, y, theta)

    jac = None
    if solver in IMPLICIT:
        if problem.system.is_matrix_level:

            def jac(t, y):
                return k.jac_h_from_vjp(t, y, theta)
        else:
            jh = k.jac_h.fn

            def jac(t, y):
                return jh(t, y, theta)

    return integrate(fun, (problem.t0, problem.t1), problem.h0, solver=solver, rtol=rtol, atol=atol, jac=jac)
