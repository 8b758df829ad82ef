"""Hessian-vector products by the second-order adjoint: forward-over-adjoint.

:func:`adjoint_hvp` runs the equations of :mod:`adjoint_sym.symbolic.second_order`:

1. **forward**: ``[h, s]`` with ``dh/dt = f`` and the tangent ``ds/dt = f_h s + f_theta
   v_theta`` from ``[h0, v_h0]``, one solve with dense output;
2. **backward**: the library's one sweep (:func:`adjoint_sym.adjoint.backward.sweep`) over the
   augmented adjoint ``[a, lambda | a_theta, mu | a_t]``: the sweep's ``a`` block carries
   ``[a, lambda]`` and its ``a_theta`` block ``[a_theta, mu]``.  At each observation time
   ``a`` jumps by ``dL/dh(t_i)`` and ``lambda`` by ``Phi_hh s(t_i) + Phi_h theta v_theta`` (the
   loss's second derivatives along ``v``); between them a :class:`Segments` engine
   integrates the first- and second-order rates with ``h(t)``, ``s(t)`` read from the
   forward dense output (as the interpolating adjoint does);
3. ``H v = [lambda(t0), mu(t0) + sum_i (Phi_theta h s(t_i) + Phi_theta theta v_theta)]``, and
   on the way the gradient ``[a(t0), a_theta(t0) + Phi_theta]``.

The times are held fixed (``a_t`` is carried but not integrated).  Every rate comes from
one symbolic derivation, compiled here (:class:`SecondOrderKernels`): the code under test,
which nothing in :mod:`adjoint_sym.reference` may use.  :class:`SecondOrderProducts` is
where the rates are read; a subclass plants a bug (:mod:`adjoint_sym.testing.hvp_mutants`).

A running cost ``int g dt`` enters through :meth:`SecondOrderKernels.of` (the
Hamiltonian ``a . f + g``: its second derivatives join the rates of ``lambda`` and ``mu``,
and nothing else changes, the times being fixed); the loss value's integral comes from
the forward solve of ``[h, q]`` (:func:`~adjoint_sym.adjoint.running_cost.forward_with_cost`).
"""

from __future__ import annotations

import time
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from ..errors import InvalidModelError
from ..numeric.compile import Argument, Kernel, compile_kernel, scalar_argument
from ..numeric.dense import DenseState
from ..numeric.loss import CallableLoss, ObservationLoss
from ..numeric.problem import Problem
from ..numeric.second_order import HessianVectorProduct, direction_vector
from ..numeric.solve import check_solver, integrate
from ..symbolic.jvp import jvp
from ..symbolic.second_order import SecondOrderAdjoint, check_twice_differentiable
from ..symbolic.system import ODESystem
from .backward import AdjointState, Observations, Segments, sweep
from .running_cost import forward_with_cost


def _entries(block: sp.Basic) -> list[sp.Basic]:
    """Scalar entries of explicit matrices; a matrix expression as itself (searched as a tree)."""
    return list(block) if isinstance(block, sp.MatrixBase) else [block]


def _slots(block: sp.Basic) -> tuple:
    """The kernel slots of a column of symbols, a matrix symbol, or a tuple of blocks."""
    if isinstance(block, sp.MatrixSymbol):
        return (block,)
    return tuple(block)


class SecondOrderKernels:
    """The compiled rates of one system's second-order adjoint; get one through :meth:`of`.

    ================  ===============================================================
    kernel            ``(arguments) -> output``
    ================  ===============================================================
    ``tangent``       ``(t, [h, s], theta, v_theta) -> [f, f_h s + f_theta v_theta]``
    ``backward``      ``(t, [h, s], [a, lambda], theta, v_theta) -> [-dH/dh, its tangent,
                      -dH/dtheta, its tangent, 0]``: the rate of ``[a, lambda, a_theta, mu, a_t]``
    ================  ===============================================================
    """

    def __init__(self, system: ODESystem, running_cost: sp.Expr | None = None) -> None:
        self.system = system
        self.equations = SecondOrderAdjoint.of(system, running_cost=running_cost)
        eq = self.equations
        check_twice_differentiable([*_entries(eq.rhs_lam), *(e for b in eq.rhs_mu for e in _entries(b))], "the rhs")
        self.n, self.n_params = system.n, system.n_params
        self._time = scalar_argument(system.t)
        self._z = Argument("z", (*tuple(system.state), *_slots(eq.s)))
        self._theta = Argument("theta", tuple(system.params))
        self._v = Argument("v", _slots(eq.v_theta))

    @classmethod
    def of(cls, system: ODESystem, running_cost: sp.Expr | None = None) -> SecondOrderKernels:
        """The cached kernels of ``system`` (and a running cost, when a loss has one)."""
        return _kernels(system, running_cost)

    @cached_property
    def tangent(self) -> Kernel:
        return compile_kernel(
            "tangent", [self._time, self._z, self._theta, self._v], [self.system.rhs, self.equations.rhs_s]
        )

    @cached_property
    def backward(self) -> Kernel:
        eq = self.equations
        y = Argument("y", (*_slots(eq.a), *_slots(eq.lam)))
        outputs = [eq.rhs_a, eq.rhs_lam, *eq.rhs_theta, *eq.rhs_mu, sp.Integer(0)]
        return compile_kernel("second_order_adjoint", [self._time, self._z, y, self._theta, self._v], outputs)

    def __repr__(self) -> str:
        return f"SecondOrderKernels({self.system!r})"


@lru_cache(maxsize=64)
def _kernels(system: ODESystem, running_cost: sp.Expr | None) -> SecondOrderKernels:
    return SecondOrderKernels(system, running_cost)


@lru_cache(maxsize=256)
def loss_curvature_kernel(system: ODESystem, expr: sp.Expr) -> Kernel:
    """``(t, h, theta, s, v_theta) -> [Phi_hh s + Phi_h theta v, Phi_theta h s + Phi_theta theta v]``.

    The tangent along ``(s, v_theta)`` of the loss expression's gradient, by
    :func:`~adjoint_sym.symbolic.jvp.jvp` of its entry-wise first derivatives.
    """
    eq = SecondOrderKernels.of(system).equations
    plain = [sp.Dummy(f"h{i}", real=True) for i in range(system.n)]
    flat = expr.xreplace(dict(zip(system.flat_state, plain)))
    back = dict(zip(plain, system.flat_state))
    grad_h = sp.ImmutableMatrix([flat.diff(d).xreplace(back) for d in plain])
    blocks = []
    for p in system.params:
        if isinstance(p, sp.MatrixSymbol):
            blocks.append(sp.ImmutableMatrix(*p.shape, lambda i, j, p=p: expr.diff(p[i, j])))
        else:
            blocks.append(expr.diff(p))
    s_entries = list(eq.s.as_explicit()) if isinstance(eq.s, sp.MatrixSymbol) else list(eq.s)
    moves = dict(zip(system.flat_state, s_entries)) | dict(zip(system.params, eq.v_theta))
    outputs = [jvp(grad_h, moves), *(jvp(b, moves) for b in blocks)]
    check_twice_differentiable([e for out in outputs for e in _entries(out)], "the loss")
    args = [
        scalar_argument(system.t),
        Argument("h", tuple(system.state)),
        Argument("theta", tuple(system.params)),
        Argument("s", _slots(eq.s)),
        Argument("v", _slots(eq.v_theta)),
    ]
    return compile_kernel("loss_curvature", args, outputs)


class SecondOrderProducts:
    """Where the second-order sweep reads its rates and jumps (the symbolic ones).

    A subclass that overrides a method plants a mistake in every use of it; the
    mutants of :mod:`adjoint_sym.testing.hvp_mutants` do.
    """

    def __init__(self, system: ODESystem, running_cost: sp.Expr | None = None) -> None:
        self.system, self.running_cost = system, running_cost
        self.kernels = SecondOrderKernels.of(system, running_cost)
        self.n, self.n_params = system.n, system.n_params

    def initial_tangent(self, v_h0: np.ndarray) -> np.ndarray:
        """``s(t0) = v_h0``."""
        return np.asarray(v_h0, dtype=float)

    def tangent_rate(self, t: float, z: np.ndarray, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``d[h, s]/dt = [f, f_h s + f_theta v_theta]``."""
        return self.kernels.tangent.fn(t, z, theta, v)

    def adjoint_rate(self, t: float, z: np.ndarray, y: np.ndarray, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``d[a, lambda, a_theta, mu, a_t]/dt`` at ``z = [h, s](t)``."""
        return self.kernels.backward.fn(t, z, y, theta, v)

    def loss_curvature(
        self, problem: Problem, states: np.ndarray, tangents: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``Phi_hh s + Phi_h theta v`` per observation (the jumps of ``lambda``, (N, n)) and
        ``sum_i Phi_theta h s + Phi_theta theta v`` (added to ``mu(t0)``, (p,))."""
        loss = problem.point_loss
        n, p = self.n, self.n_params
        if isinstance(loss, ObservationLoss) and loss.targets is not None:
            return 2.0 * tangents, np.zeros(p)  # sum ||h - y||^2: Phi_hh = 2 I, no theta
        exprs = loss.expressions(problem.system, len(problem.times))
        jumps, extra = np.zeros_like(tangents), np.zeros(p)
        for i, (expr, t) in enumerate(zip(exprs, problem.times)):
            out = loss_curvature_kernel(problem.system, expr)(t, states[i], problem.theta, tangents[i], v)
            jumps[i] = out[:n]
            extra += out[n : n + p]
        return jumps, extra


class _SecondOrderSegments(Segments):
    """Crosses a segment backward: ``[a, lambda, a_theta, mu, a_t]`` with ``[h, s](t)`` interpolated."""

    def __init__(self, problem, fwd, products: SecondOrderProducts, v, solver, rtol, atol) -> None:
        self.products, self.v, self.theta = products, v, problem.theta
        self.n, self.p = problem.system.n, problem.system.n_params
        self.z_of = DenseState(fwd.sol) if fwd.sol is not None else None
        self.solver, self.rtol, self.atol = solver, rtol, atol
        self.stats = {"nfev_backward": 0, "steps_backward": 0}

    def cross(self, start, end, state, h_start):
        if self.z_of is None or start == end:
            return state
        rate, z_of, theta, v = self.products.adjoint_rate, self.z_of, self.theta, self.v

        def rhs(t, y):
            return rate(t, z_of(t), y, theta, v)

        res = integrate(
            rhs,
            (start, end),
            state.vector(),
            solver=self.solver,
            rtol=self.rtol,
            atol=self.atol,
            what="second-order adjoint solve",
            blowup_remedy="the adjoint grows without bound: shorten the time span or check parameters",
            dense=False,
            t_eval=np.array([end]),
        )
        self.stats["nfev_backward"] += res.nfev
        self.stats["steps_backward"] += res.n_steps
        return AdjointState.from_vector(res.y[:, -1], 2 * self.n, 2 * self.p)


def _check_loss(problem: Problem) -> None:
    if isinstance(problem.loss, CallableLoss):
        raise InvalidModelError(
            "Hessian-vector products need the loss's second derivatives, which a CallableLoss does not give; "
            "state the loss as an expression (FinalLoss or ObservationLoss)"
        )


def _integral(problem: Problem, solver: str, rtol: float, atol: float) -> float | None:
    """The running cost's integral, from the forward solve of ``[h, q]`` (None without one)."""
    if problem.running_cost is None:
        return None
    return float(forward_with_cost(problem, solver=solver, rtol=rtol, atol=atol, dense=False).y[-1, -1])


def adjoint_hvp(
    problem: Problem,
    v,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    products: SecondOrderProducts | None = None,
) -> HessianVectorProduct:
    """``H v`` of the loss in ``(h0, theta)`` by the second-order adjoint (module docstring).

    Parameters
    ----------
    problem : Problem
        With an expression loss (``FinalLoss`` or ``ObservationLoss``, plus running costs).
    v : array-like of shape (n + p,), or a mapping ``{"dh0": ..., "dparams": {...}}``
        The direction over ``(h0, theta)``; see :func:`~adjoint_sym.numeric.second_order.direction_vector`.
    solver : str
        A ``solve_ivp`` method, forward and backward (implicit ones difference their Jacobian).
    rtol, atol : float
        Tolerances of the forward ``[h, s]`` solve; the backward solve's default to them.
    adjoint_rtol, adjoint_atol : float, optional
        Tolerances of the backward solve.
    products : SecondOrderProducts, optional
        Where rates and jumps come from (default: the symbolic ones).

    Returns
    -------
    HessianVectorProduct
        With the gradient ``dL/d(h0, theta)`` computed on the way.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, Problem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> hv = adjoint_hvp(prob, [0.0, 1.0], rtol=1e-10, atol=1e-12)
    >>> round(hv.dparams["k"], 8), round(float(np.exp(-0.5)), 8)  # d2/dk2 e^{-k T} = T^2 e^{-k T}
    (0.60653066, 0.60653066)
    """
    check_solver(solver)
    _check_loss(problem)
    started = time.perf_counter()
    n, p = problem.system.n, problem.system.n_params
    x = direction_vector(problem, v)
    v_theta = x[n:]
    products = SecondOrderProducts(problem.system, problem.running_cost) if products is None else products
    if products.running_cost != problem.running_cost:
        raise InvalidModelError(
            f"the second-order products were derived for the running cost {products.running_cost}, but the loss's "
            f"is {problem.running_cost}; build them with SecondOrderProducts(system, problem.running_cost)"
        )
    theta = problem.theta
    z0 = np.concatenate([problem.h0, products.initial_tangent(x[:n])])
    fwd = integrate(
        lambda t, z: products.tangent_rate(t, z, theta, v_theta),
        (problem.t0, problem.t1),
        z0,
        solver=solver,
        rtol=rtol,
        atol=atol,
        what="tangent solve",
    )
    z = fwd.at(problem.times)
    observations = Observations.of(problem, z[:, :n], integral=_integral(problem, solver, rtol, atol))
    curvature, theta_curvature = products.loss_curvature(problem, z[:, :n], z[:, n:], v_theta)
    back_rtol = rtol if adjoint_rtol is None else adjoint_rtol
    back_atol = atol if adjoint_atol is None else adjoint_atol
    engine = _SecondOrderSegments(problem, fwd, products, v_theta, solver, back_rtol, back_atol)
    final = sweep(
        problem,
        observations,
        engine,
        jumps=np.hstack([observations.loss.d_states, curvature]),
        motion=np.zeros(len(problem.times)),
        initial=AdjointState(np.zeros(2 * n), np.zeros(2 * p), 0.0),
    )
    gradient = np.concatenate([final.a[:n], final.a_theta[:p] + observations.loss.d_theta])
    hv = np.concatenate([final.a[n:], final.a_theta[p:] + theta_curvature])
    stats = {
        "nfev_forward": fwd.nfev,
        "steps_forward": fwd.n_steps,
        **engine.stats,
        "solver": solver,
        "accuracy": max(rtol, back_rtol),
        "wall_time": time.perf_counter() - started,
    }
    loss = float(np.real(observations.loss.value)) + observations.integral
    return HessianVectorProduct.from_vector(problem, hv, x, "adjoint", loss, gradient=gradient, stats=stats)


__all__ = ["SecondOrderKernels", "SecondOrderProducts", "adjoint_hvp", "loss_curvature_kernel"]
