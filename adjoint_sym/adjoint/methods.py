"""The continuous adjoints, one final class each: how ``h(t)`` is recovered on the way back.

=============================  ===========================================================
method                         backward pass
=============================  ===========================================================
:class:`BacksolveAdjoint`      Algorithm 1 of Chen et al.: one backward solve of ``[h, a,
                               a_theta, a_t]`` per observation segment, re-integrating ``h``
                               from the forward state at the segment's end.
                               Constant memory, but unreliable when the backward flow is
                               unstable (stiff, dissipative or chaotic systems): the
                               re-integrated ``h`` drifts (``stats["backsolve_drift"]``).
:class:`InterpolatingAdjoint`  ``[a, a_theta, a_t]`` backward, ``h(t)`` read from the
                               forward solve's dense output: no re-integration, stable.
:class:`QuadratureAdjoint`     ``a`` alone backward (an n-dimensional ODE, stiff-friendly
                               with the Jacobian ``-f_h^T``), then ``a_theta`` and ``a_t``
                               as Gauss-Legendre integrals of ``-a^T f_theta`` and
                               ``-a^T f_t`` over the step mesh.
=============================  ===========================================================

Each is a frozen dataclass whose options are fields (``adjoint_rtol``, ``adjoint_atol``:
the backward solve's tolerances, the forward ones when ``None``; ``vjp``: how
``a^T df/dx`` is formed, :mod:`adjoint_sym.adjoint.vjp`), and builds the
:class:`~adjoint_sym.adjoint.backward.Segments` engine that the one backward sweep runs.
Under a running cost the engines integrate the Hamiltonian's products ``a^T f_x + g_x``
(:func:`~adjoint_sym.adjoint.running_cost.hamiltonian` wraps the chosen form), and the
forward solve carries ``q' = g`` after ``h``: the engines read its first ``n`` rows.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..numeric.dense import DenseState
from ..numeric.problem import Problem
from ..numeric.solve import IMPLICIT, SolveResult, integrate
from ..symbolic.system import ODESystem
from .backward import AdjointState, Segments
from .kernels import adjoint_kernels
from .running_cost import hamiltonian
from .vjp import SymbolicVJP, VectorJacobianProduct

#: Gauss-Legendre nodes per mesh interval for the quadrature variant: order 2*5 = 10
#: exceeds the order of every dense interpolant scipy ships, so the quadrature error
#: stays below the interpolation error.
QUADRATURE_NODES = 5

#: Backsolve drift, in units of the forward tolerance ``atol + rtol*|h|``, above which a
#: warning is issued: a drift within a few hundred tolerance units is what the
#: accumulated global error of two solves at that tolerance can explain.
DRIFT_WARNING = 1e3


@dataclass(frozen=True)
class AdjointMethod(ABC):
    """A continuous adjoint: options as fields, one abstract method building its engine."""

    adjoint_rtol: float | None = None
    adjoint_atol: float | None = None
    vjp: Callable[[ODESystem], VectorJacobianProduct] = SymbolicVJP

    name: ClassVar[str]
    #: Whether the forward solve keeps its dense output (backsolve keeps only the observed states).
    dense_forward: ClassVar[bool] = True

    def tolerances(self, rtol: float, atol: float) -> tuple[float, float]:
        """The backward solve's ``(rtol, atol)``: this method's own, else the forward ones."""
        return (
            rtol if self.adjoint_rtol is None else self.adjoint_rtol,
            atol if self.adjoint_atol is None else self.adjoint_atol,
        )

    @abstractmethod
    def segments(self, problem: Problem, fwd: SolveResult, solver: str, rtol: float, atol: float) -> Segments:
        """The engine that crosses the observation segments (tolerances already resolved)."""

    def products(self, problem: Problem) -> VectorJacobianProduct:
        """The form of ``a^T df/dx`` for ``problem``, with its running cost's gradient added."""
        return hamiltonian(self.vjp(problem.system), problem)


class _SolvingSegments(Segments):
    """What the ``solve_ivp``-driven engines share: the solves, their counts, the Jacobians."""

    what: ClassVar[str]
    remedy: ClassVar[str] = "the adjoint grows without bound: shorten the time span or check parameters"

    def __init__(self, problem: Problem, fwd: SolveResult, vjp: VectorJacobianProduct, solver, rtol, atol) -> None:
        self.problem, self.fwd, self.vjp = problem, fwd, vjp
        self.solver, self.rtol, self.atol = solver, rtol, atol
        self.theta = problem.theta
        self.n, self.n_params = problem.system.n, problem.system.n_params
        self.h_of = DenseState(fwd.sol, size=self.n) if fwd.sol is not None else None
        self.stats = {"nfev_backward": 0, "steps_backward": 0}

    def _integrate(self, rhs, start, end, y0, jac, *, dense: bool = False) -> SolveResult:
        res = integrate(
            rhs,
            (start, end),
            y0,
            solver=self.solver,
            rtol=self.rtol,
            atol=self.atol,
            jac=jac,
            what=f"adjoint solve ({self.what})",
            blowup_remedy=self.remedy,
            dense=dense,
            t_eval=None if dense else np.array([end]),  # only the end is needed unless dense
        )
        self.stats["nfev_backward"] += res.nfev
        self.stats["steps_backward"] += res.n_steps
        return res

    def _state_jacobian(self) -> Callable[[float], np.ndarray]:
        """``t -> f_h(t, h(t))`` for the stiff solvers' Newton iteration."""
        k, theta, sol = adjoint_kernels(self.problem.system), self.theta, self.h_of
        if self.problem.system.is_matrix_level:
            return lambda t: k.jac_h_from_vjp(t, sol(t), theta)
        jh = k.numeric.jac_h.fn
        return lambda t: jh(t, sol(t), theta)


class _InterpolatingSegments(_SolvingSegments):
    what = "interpolating"

    def __init__(self, *args, keep_paths: bool = False) -> None:
        super().__init__(*args)
        self.keep_paths = keep_paths

    def cross(self, start, end, state, h_start):
        h_of, rate = self.h_of, self.vjp.adjoint_rate_at(self.theta)
        y0 = state.vector()
        if h_of is None:  # a zero-length problem: nothing to cross
            return AdjointState.from_vector(y0, self.n, self.n_params)

        def rhs(t, y):
            return rate(t, h_of(t), y)

        jac = self._jacobian() if self.solver in IMPLICIT else None
        res = self._integrate(rhs, start, end, y0, jac, dense=self.keep_paths)
        return AdjointState.from_vector(res.y[:, -1], self.n, self.n_params, res.sol if self.keep_paths else None)

    def _jacobian(self):
        numeric = adjoint_kernels(self.problem.system).numeric
        theta, sol, n, p = self.theta, self.h_of, self.n, self.n_params
        jac_h, jt, ft = self._state_jacobian(), numeric.jac_theta.fn, numeric.f_t.fn

        def jac(t, y):
            h = sol(t)
            out = np.zeros((n + p + 1, n + p + 1))
            out[:n, :n] = -jac_h(t).T
            out[n : n + p, :n] = -jt(t, h, theta).T
            out[-1, :n] = -ft(t, h, theta)
            return out

        return jac


class _QuadratureSegments(_SolvingSegments):
    what = "quadrature"

    def cross(self, start, end, state, h_start):
        theta, n, sol, vjp = self.theta, self.n, self.h_of, self.vjp
        if start == end or sol is None:
            return state

        products = vjp.state_products_at(theta)

        def rhs(t, y):
            return -products(t, sol(t), y)

        jac = None
        if self.solver in IMPLICIT:
            jac_h = self._state_jacobian()

            def jac(t, y):
                return -jac_h(t).T

        res = self._integrate(rhs, start, end, state.a, jac, dense=True)
        ts, weights = _gauss_legendre(_mesh(self.fwd.t, res.t, start, end))
        self.stats["nfev_backward"] += len(ts)
        products = vjp.batched_products(ts, self.fwd.sol(ts)[:n], res.sol(ts), theta)
        total = -(products[n:] @ weights)
        return AdjointState(res.y[:, -1], state.a_theta + total[:-1], state.a_t + total[-1])


class _BacksolveSegments(_SolvingSegments):
    what = "backsolve"
    remedy = "the backward re-integration of h is unstable for this system; use method='interpolating'"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.h: np.ndarray | None = None
        self.stats["backsolve_drift"] = 0.0

    def cross(self, start, end, state, h_start):
        if self.h is not None:  # how far the re-integrated h drifted over the segment just crossed
            self._drift(h_start)
        # Restart from the forward state kept at each observation time (as torchdiffeq and
        # JAX do): the drift of one segment does not carry into the next.
        self.h = np.asarray(h_start).copy()
        n, f = self.n, self.problem.kernels.f.fn
        rhs = self.vjp.backsolve_rate_at(self.theta, f)  # for the symbolic VJP, the fused kernel itself
        res = self._integrate(rhs, start, end, np.concatenate([self.h, state.vector()]), None)
        y = res.y[:, -1]
        self.h = y[:n]
        return AdjointState.from_vector(y[n:], n, self.n_params)

    def _drift(self, h_fwd: np.ndarray) -> None:
        scale = self.atol + self.rtol * np.abs(h_fwd)
        drift = float(np.max(np.abs(self.h - h_fwd) / scale))
        self.stats["backsolve_drift"] = max(self.stats["backsolve_drift"], drift)

    def finish(self, h0):
        self._drift(h0)
        drift = self.stats["backsolve_drift"]
        if drift > DRIFT_WARNING:
            warnings.warn(
                f"backsolve: the backward-reconstructed state drifted {drift:.3g} tolerance units from the "
                "forward trajectory, so its gradient is unreliable; use method='interpolating'",
                RuntimeWarning,
                stacklevel=5,
            )


@dataclass(frozen=True)
class InterpolatingAdjoint(AdjointMethod):
    """``[a, a_theta, a_t]`` backward with ``h(t)`` from the forward dense output (stable).

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, Problem, gradient
    >>> system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(system, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x"))
    >>> round(gradient(prob, InterpolatingAdjoint(adjoint_rtol=1e-10)).dparams["k"], 8)  # -t1 exp(-k t1)
    -0.36787944
    """

    name: ClassVar[str] = "interpolating"
    keep_paths: bool = False  # keep each segment's dense [a, a_theta, a_t](t) (for plots)

    def segments(self, problem, fwd, solver, rtol, atol):
        return _InterpolatingSegments(
            problem, fwd, self.products(problem), solver, rtol, atol, keep_paths=self.keep_paths
        )


@dataclass(frozen=True)
class QuadratureAdjoint(AdjointMethod):
    """``a`` alone backward, ``a_theta`` and ``a_t`` by Gauss-Legendre quadrature (stiff-friendly)."""

    name: ClassVar[str] = "quadrature"

    def segments(self, problem, fwd, solver, rtol, atol):
        return _QuadratureSegments(problem, fwd, self.products(problem), solver, rtol, atol)


@dataclass(frozen=True)
class BacksolveAdjoint(AdjointMethod):
    """Algorithm 1 of Chen et al. (2018): ``h`` re-integrated backward with the adjoint; constant memory."""

    name: ClassVar[str] = "backsolve"
    dense_forward: ClassVar[bool] = False  # its memory must not grow with the steps

    def segments(self, problem, fwd, solver, rtol, atol):
        return _BacksolveSegments(problem, fwd, self.products(problem), solver, rtol, atol)


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


__all__ = [
    "DRIFT_WARNING",
    "QUADRATURE_NODES",
    "AdjointMethod",
    "BacksolveAdjoint",
    "InterpolatingAdjoint",
    "QuadratureAdjoint",
]
