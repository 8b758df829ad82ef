"""``solve_ivp`` with the system's kernels: dense output kept, failures made clear.

Stiff methods (BDF, Radau, LSODA) receive the symbolic Jacobian: entry-wise for scalar
systems, from one batched matrix-level forward-mode JVP for matrix-level ones (never from
the adjoint's VJP, so a reference that solves through here shares nothing with it).  A right-hand side
that turns non-finite, or a solver that stops, raises :class:`SolverFailedError` with
the time, the state and a suggested remedy.
"""

from __future__ import annotations

import cmath
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.integrate
from scipy.integrate import OdeSolution, solve_ivp

from ..errors import InvalidModelError, SolverFailedError

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
        if self.sol is None:
            if len(self.t) == 1:  # zero-length span
                return np.repeat(self.y[:, :1].T, len(times), axis=0)
            index = {float(t): i for i, t in enumerate(self.t)}
            missing = [t for t in times if float(t) not in index]
            if missing:
                raise ValueError(f"no dense output and {missing[0]} is not a kept time")
            return self.y[:, [index[float(t)] for t in times]].T.copy()
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
    t_eval: np.ndarray | None = None,
    max_step: float = np.inf,
) -> SolveResult:
    """Integrate ``dy/dt = fun(t, y)`` over ``t_span``; raise a clear error on failure.

    With ``t_eval`` given (and ``dense=False``), only the states at ``t_eval`` are kept,
    so memory does not grow with the number of steps.
    """
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
            if t_eval is None:
                res = solve_ivp(guarded(fun), (t0, t1), y0, method=solver, **options)
            else:
                res = _sweep(guarded(fun), (t0, t1), y0, solver, np.asarray(t_eval, dtype=float), options)
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
    n_steps = len(res.t) - 1 if t_eval is None else res.n_steps
    return SolveResult(res.t, res.y, res.sol, int(res.nfev), int(res.njev), n_steps)


@dataclass
class _Sweep:
    t: np.ndarray
    y: np.ndarray
    status: int
    message: str
    nfev: int
    njev: int
    n_steps: int
    sol: None = None


def _sweep(fun, t_span, y0, solver: str, t_eval: np.ndarray, options: dict) -> _Sweep:
    """Step the solver keeping only the states at ``t_eval`` (and counting the steps).

    ``solve_ivp`` with ``t_eval`` also keeps only those states but does not report how
    many steps it took; this loop does the same stepping with the public solver classes.
    """
    t0, t1 = t_span
    direction = 1.0 if t1 >= t0 else -1.0
    kwargs = {k: v for k, v in options.items() if k != "dense_output"}
    stepper = getattr(scipy.integrate, solver)(fun, t0, y0, t1, **kwargs)
    kept_t: list[float] = []
    kept_y: list[np.ndarray] = []
    k, steps, message = 0, 0, ""
    while k < len(t_eval) and t_eval[k] == t0:
        kept_t.append(t0)
        kept_y.append(np.array(y0))
        k += 1
    while stepper.status == "running":
        message = stepper.step() or ""
        if stepper.status == "failed":
            break
        steps += 1
        interpolant = None
        while k < len(t_eval) and (t_eval[k] - stepper.t) * direction <= 0:
            if t_eval[k] == stepper.t:
                kept_y.append(stepper.y.copy())
            else:
                interpolant = interpolant or stepper.dense_output()
                kept_y.append(interpolant(t_eval[k]))
            kept_t.append(t_eval[k])
            k += 1
    failed = stepper.status == "failed"
    if failed:  # report where it stopped, as solve_ivp does
        kept_t.append(stepper.t)
        kept_y.append(stepper.y.copy())
    y = np.array(kept_y).T if kept_y else np.zeros((len(y0), 0))
    return _Sweep(np.array(kept_t), y, -1 if failed else 0, message, stepper.nfev, stepper.njev, steps)


def _short(y: np.ndarray) -> str:
    return np.array2string(np.asarray(y)[:6], precision=4) + (" ..." if np.size(y) > 6 else "")


def forward(
    problem, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10, dense: bool = True
) -> SolveResult:
    """Solve the problem's IVP from ``t0`` to ``t1``.

    ``dense=True`` keeps every step and the interpolant; ``dense=False`` keeps only the
    states at the observation times, in memory that does not grow with the steps.
    """
    k = problem.kernels
    theta = problem.theta
    f = k.f.fn

    def fun(t, y):
        return f(t, y, theta)

    jac = None
    if solver in IMPLICIT:

        def jac(t, y):
            return k.state_jacobian(t, y, theta)

    t_eval = None if dense else np.asarray(problem.times, dtype=float)
    return integrate(
        fun,
        (problem.t0, problem.t1),
        problem.h0,
        solver=solver,
        rtol=rtol,
        atol=atol,
        jac=jac,
        dense=dense,
        t_eval=t_eval,
    )
