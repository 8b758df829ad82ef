"""Adjoint gradients: the method under test.

Three ways to recover ``h(t)`` on the way back, one adjoint (Chen et al. 2018):

================  =====================================================================
method            backward pass
================  =====================================================================
``backsolve``     Algorithm 1 of Chen et al.: one backward solve of ``[h, a, a_theta,
                  a_t]``, re-integrating ``h`` from ``h(t1)``.  Constant memory, but
                  unreliable when the backward flow is unstable: stiff, dissipative
                  or chaotic systems (the re-integrated ``h`` drifts away from the
                  forward one; ``stats["backsolve_drift"]`` measures it).
``interpolating`` ``[a, a_theta, a_t]`` backward, ``h(t)`` read from the forward
                  solve's dense output: no re-integration, stable.
``quadrature``    ``a`` alone backward (an n-dimensional ODE, stiff-friendly with the
                  Jacobian ``-f_h^T``), then ``a_theta`` and ``a_t`` as Gauss-Legendre
                  integrals of ``-a^T f_theta`` and ``-a^T f_t`` over the step mesh.
``adjoint``       the robust default: ``interpolating`` for explicit solvers,
                  ``quadrature`` for implicit (stiff) ones.
================  =====================================================================

Observation losses add ``dL/dh(t_i)`` to ``a`` and ``-dL/dt_i`` to ``a_t`` at each
``t_i`` on the way back (Chen et al. appendix B).  ``a_t(t0)`` is ``dL/dt0`` with ``h0``
held fixed, equal to ``-a(t0) . f(h0, t0)``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..errors import InvalidModelError
from ..numeric.dense import DenseState
from ..numeric.problem import Problem, unflatten_params
from ..numeric.result import Gradient
from ..numeric.solve import EXPLICIT, IMPLICIT, SolveResult, check_solver, forward, integrate
from .kernels import adjoint_kernels

ADJOINT_METHODS = ("adjoint", "interpolating", "backsolve", "quadrature")

#: Gauss-Legendre nodes per mesh interval for the quadrature variant: order 2*5 = 10
#: exceeds the order of every dense interpolant scipy ships, so the quadrature error
#: stays below the interpolation error.
QUADRATURE_NODES = 5

#: Backsolve drift, in units of the forward tolerance ``atol + rtol*|h|``, above which a
#: warning is issued: a drift within a few hundred tolerance units is what the
#: accumulated global error of two solves at that tolerance can explain.
DRIFT_WARNING = 1e3


def resolve_method(method: str, solver: str) -> str:
    if method not in ADJOINT_METHODS:
        raise InvalidModelError(f"unknown adjoint method {method!r}; choose one of {ADJOINT_METHODS}")
    if method == "adjoint":
        return "quadrature" if solver in IMPLICIT else "interpolating"
    return method


def adjoint_gradient(
    problem: Problem,
    *,
    method: str = "adjoint",
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
) -> Gradient:
    """``dL/dh0``, ``dL/dtheta``, ``dL/dt0``, ``dL/dt1`` (and ``dL/dt_i``) by an adjoint.

    Parameters
    ----------
    problem : Problem
    method : {"adjoint", "interpolating", "backsolve", "quadrature"}
    solver : str
        A ``solve_ivp`` method, used forward and backward.
    rtol, atol : float
        Forward tolerances; the adjoint's default to them.

    Returns
    -------
    Gradient

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                0.0, 1.0, FinalLoss("x**2 + y**2"))
    >>> g = adjoint_gradient(prob)
    >>> g.method
    'interpolating'
    """
    check_solver(solver)
    resolved = resolve_method(method, solver)
    started = time.perf_counter()
    # Backsolve keeps only the observed states: its memory must not grow with the steps.
    fwd = forward(problem, solver=solver, rtol=rtol, atol=atol, dense=resolved != "backsolve")
    backward = _Backward(
        problem, fwd, resolved, solver, adjoint_rtol or rtol, adjoint_atol if adjoint_atol is not None else atol
    )
    grad = backward.run()
    stats = {
        "nfev_forward": fwd.nfev,
        "steps_forward": fwd.n_steps,
        **backward.stats,
        "wall_time": time.perf_counter() - started,
        "solver": solver,
    }
    return Gradient(method=resolved, stats=stats, **grad)


class _Backward:
    """The backward pass over the segments between observation times."""

    def __init__(self, problem: Problem, fwd: SolveResult, method: str, solver: str, rtol: float, atol: float):
        self.p = problem
        self.fwd = fwd
        self.method = method
        self.solver = solver
        self.rtol, self.atol = rtol, atol
        self.k = adjoint_kernels(problem.system)
        self.n, self.n_params = problem.system.n, problem.system.n_params
        self.stats = {"nfev_backward": 0, "steps_backward": 0}
        self.h_of = DenseState(fwd.sol) if fwd.sol is not None else None

    def run(self) -> dict:
        p, n, n_params = self.p, self.n, self.n_params
        times = p.times
        states = self.fwd.at(times)
        loss = p.evaluate_loss(states)
        f = self.k.f.fn
        dtimes = np.array(
            [loss.d_states[i] @ f(times[i], states[i], p.theta) + loss.d_times[i] for i in range(len(times))]
        )
        a = np.zeros(n)
        a_theta = np.zeros(n_params)
        a_t = 0.0
        h = states[-1].copy()
        drift = 0.0
        starts = [p.t0, *times[:-1]]
        for i in range(len(times) - 1, -1, -1):
            a = a + loss.d_states[i]
            # Only the state's motion enters a_t: an explicit dL/dt_i belongs to t_i, which
            # stays put when t0 moves (so a_t(t0) = -a(t0) . f(h0, t0) = dL/dt0).
            a_t = a_t - loss.d_states[i] @ f(times[i], states[i], p.theta)
            if self.method == "backsolve":
                drift = max(drift, self._drift(h, states[i]))
            a, a_theta, a_t, h = self._segment(times[i], starts[i], a, a_theta, a_t, h)
        if self.method == "backsolve":
            drift = max(drift, self._drift(h, p.h0))
            self.stats["backsolve_drift"] = drift
            if drift > DRIFT_WARNING:
                warnings.warn(
                    f"backsolve: the backward-reconstructed state drifted {drift:.3g} tolerance units from the "
                    "forward trajectory, so its gradient is unreliable; use method='interpolating'",
                    RuntimeWarning,
                    stacklevel=4,
                )
        d_theta = a_theta + loss.d_theta
        return {
            "loss": float(np.real(loss.value)),
            "dh0": a,
            "dparams": unflatten_params(p.system, d_theta),
            "dt0": float(a_t),
            "dt1": float(dtimes[-1]) if p.is_final_loss else None,
            "dtimes": None if p.is_final_loss else dtimes,
        }

    def _drift(self, h_back: np.ndarray, h_fwd: np.ndarray) -> float:
        scale = self.atol + self.rtol * np.abs(h_fwd)
        return float(np.max(np.abs(h_back - h_fwd) / scale))

    def _segment(self, start, end, a, a_theta, a_t, h):
        """Integrate the adjoint from ``start`` back to ``end``."""
        if self.method == "quadrature":
            return self._quadrature_segment(start, end, a, a_theta, a_t, h)
        theta, n, n_params = self.p.theta, self.n, self.n_params
        if self.method == "backsolve":
            backsolve_rhs = self.k.backsolve_rhs.fn

            def rhs(t, y):
                return backsolve_rhs(t, y, theta)

            y0 = np.concatenate([h, a, a_theta, [a_t]])
            res = self._integrate(rhs, start, end, y0, None)
            y = res.y[:, -1]
            h, y = y[:n], y[n:]
        else:
            sol, adjoint_rhs = self.h_of, self.k.adjoint_rhs.fn

            def rhs(t, y):
                return adjoint_rhs(t, sol(t), y, theta)

            jac = self._interpolating_jac() if self.solver in IMPLICIT else None
            res = self._integrate(rhs, start, end, np.concatenate([a, a_theta, [a_t]]), jac)
            y = res.y[:, -1]
        return y[:n], y[n : n + n_params], y[n + n_params], h

    def _integrate(self, rhs, start, end, y0, jac) -> SolveResult:
        res = integrate(
            rhs,
            (start, end),
            y0,
            solver=self.solver,
            rtol=self.rtol,
            atol=self.atol,
            jac=jac,
            what=f"adjoint solve ({self.method})",
            blowup_remedy=(
                "the backward re-integration of h is unstable for this system; use method='interpolating'"
                if self.method == "backsolve"
                else "the adjoint grows without bound: shorten the time span or check parameters"
            ),
            dense=self.method == "quadrature",
            # Only the quadrature needs the backward trajectory; the others keep its end.
            t_eval=None if self.method == "quadrature" else np.array([end]),
        )
        self.stats["nfev_backward"] += res.nfev
        self.stats["steps_backward"] += res.n_steps
        return res

    def _state_jacobian(self):
        theta, k, sol = self.p.theta, self.k, self.h_of
        if self.p.system.is_matrix_level:
            return lambda t: k.jac_h_from_vjp(t, sol(t), theta)
        jh = k.numeric.jac_h.fn
        return lambda t: jh(t, sol(t), theta)

    def _interpolating_jac(self):
        theta, k, sol, n, n_params = self.p.theta, self.k, self.h_of, self.n, self.n_params
        jac_h = self._state_jacobian()
        jt, ft = k.numeric.jac_theta.fn, k.numeric.f_t.fn
        size = n + n_params + 1

        def jac(t, y):
            h = sol(t)
            out = np.zeros((size, size))
            out[:n, :n] = -jac_h(t).T
            out[n : n + n_params, :n] = -jt(t, h, theta).T
            out[-1, :n] = -ft(t, h, theta)
            return out

        return jac

    def _quadrature_segment(self, start, end, a, a_theta, a_t, h):
        theta, n, sol = self.p.theta, self.n, self.h_of
        vjp_h, vjp = self.k.vjp_h.fn, self.k.vjp.fn

        def rhs(t, y):
            return -vjp_h(t, sol(t), y, theta)

        jac = None
        if self.solver in IMPLICIT:
            jac_h = self._state_jacobian()

            def jac(t, y):
                return -jac_h(t).T

        res = self._integrate(rhs, start, end, a, jac)
        if start == end:
            return a, a_theta, a_t, h
        ts, weights = _gauss_legendre(_mesh(self.fwd.t, res.t, start, end))
        self.stats["nfev_backward"] += len(ts)
        if self.p.system.is_matrix_level:  # a batch would sum outer products: one node at a time
            a_of = DenseState(res.sol)
            total = np.zeros(self.n_params + 1)
            for t, w in zip(ts, weights):
                total -= w * vjp(t, sol(t), a_of(t), theta)[n:]
        else:  # one batched kernel call over every node
            products = self.k.vjp_batched.fn(ts, self.fwd.sol(ts), res.sol(ts), theta)
            total = -(products[n:] @ weights)
        return res.y[:, -1], a_theta + total[:-1], a_t + total[-1], h


def _gauss_legendre(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and (signed) weights of Gauss-Legendre on every interval of ``mesh``."""
    x, w = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    lo, hi = mesh[:-1, None], mesh[1:, None]
    half = (hi - lo) / 2
    return (lo + half * (x + 1)).ravel(), (half * w).ravel()


def _mesh(forward_t: np.ndarray, backward_t: np.ndarray, start: float, end: float) -> np.ndarray:
    """Union of both step meshes within [end, start], ordered from start to end."""
    lo, hi = min(start, end), max(start, end)
    points = np.concatenate([forward_t, backward_t, [start, end]])
    points = np.unique(points[(points >= lo) & (points <= hi)])
    return points[::-1] if start > end else points


__all__ = ["ADJOINT_METHODS", "EXPLICIT", "IMPLICIT", "adjoint_gradient", "resolve_method"]
