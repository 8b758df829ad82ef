"""The dense Hessian of the loss by second-order forward sensitivities (small problems).

With ``w = (h, theta)`` (``n + p`` entries), ``x = (h0, theta)`` (``m = n + p``),
``S = dh/dx`` (``n x m``), ``Z = dw/dx = [S; 0 | I_p]`` and ``T = d^2 h/dx^2``
(``n x m x m``), differentiating ``dh/dt = f(h, t, theta)`` twice gives

    dS/dt = f_w Z,                               S(t0) = [I | 0],
    dT_k/dt = sum_a f_h[k, a] T_a + Z^T f_k,ww Z,    T(t0) = 0,

and the loss ``L = sum_i Phi_i(h(t_i), theta)`` has the Hessian

    d^2 L/dx^2 = sum_i [Z_i^T Phi_i,ww Z_i + sum_k dPhi_i/dh_k T_k(t_i)].

A running cost ``int g dt`` is the quadrature state ``q`` with its gradient ``q_x`` and
Hessian ``Q`` in ``x``:

    dq/dt = g,   dq_x/dt = g_w Z,   dQ/dt = Z^T g_ww Z + sum_k g_h[k] T_k,   all 0 at t0,

added to the loss, gradient and Hessian at ``t_N = t1``.

Every second derivative (``f_ww``, ``Phi_ww``, ``g_ww``) is compiled here entry by entry, so
nothing is shared with the second-order adjoint's Jacobian-vector products.  The joint
state has ``n (1 + m + m^2)`` entries: :data:`MAX_SENSITIVITIES` bounds it.
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from ..errors import InvalidModelError
from ..numeric.compile import Argument, Kernel, compile_kernel, scalar_argument
from ..numeric.loss import CallableLoss, ObservationLoss
from ..numeric.problem import Problem
from ..numeric.solve import check_solver, integrate
from ..symbolic.second_order import check_twice_differentiable
from ..symbolic.system import ODESystem
from .loss_derivative import expression_partials

#: ``n m^2`` above which the dense Hessian is refused (the joint solve would be slow).
MAX_SENSITIVITIES = 20_000


@dataclass(frozen=True)
class DenseHessian:
    """The loss, its gradient and its Hessian in ``x = (h0, theta)``.

    Attributes
    ----------
    loss : float
    gradient : ndarray, shape (m,)
    hessian : ndarray, shape (m, m)
    stats : dict
    """

    loss: float
    gradient: np.ndarray
    hessian: np.ndarray
    stats: dict = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        asym = float(np.max(np.abs(self.hessian - self.hessian.T), initial=0.0))
        return f"DenseHessian(m={len(self.gradient)}, loss={self.loss:.10g}, max|H - H^T|={asym:.3g})"


def _flat_variables(system: ODESystem) -> tuple[list[sp.Dummy], dict, dict]:
    """Plain stand-ins for ``w = (h, theta)`` entries: differentiating by them is fast."""
    entries = [*system.flat_state, *system.flat_params]
    plain = [sp.Dummy(f"w{i}", real=True) for i in range(len(entries))]
    return plain, dict(zip(entries, plain)), dict(zip(plain, entries))


def _hessian_entries(expr: sp.Expr, plain, to_plain, back) -> sp.ImmutableMatrix:
    flat = expr.xreplace(to_plain)
    grad = [flat.diff(d) for d in plain]
    return sp.ImmutableMatrix([[g.diff(d).xreplace(back) for d in plain] for g in grad])


def _arguments(system: ODESystem) -> list[Argument]:
    return [scalar_argument(system.t), Argument("h", tuple(system.state)), Argument("theta", tuple(system.params))]


@lru_cache(maxsize=32)
def rhs_hessian_kernel(system: ODESystem) -> Kernel:
    """``(t, h, theta) -> f_ww``, shape ``(n, n + p, n + p)``, entry by entry."""
    plain, to_plain, back = _flat_variables(system)
    blocks = [_hessian_entries(e, plain, to_plain, back) for e in system.explicit_rhs]
    check_twice_differentiable([e for b in blocks for e in b], "the rhs")
    w = len(plain)
    return compile_kernel("rhs_hessian", _arguments(system), blocks, output_shape=(system.n, w, w))


@lru_cache(maxsize=256)
def loss_hessian_kernel(system: ODESystem, expr: sp.Expr) -> Kernel:
    """``(t, h, theta) -> Phi_ww``, shape ``(n + p, n + p)``, entry by entry."""
    plain, to_plain, back = _flat_variables(system)
    w = len(plain)
    hessian = _hessian_entries(expr, plain, to_plain, back)
    check_twice_differentiable(list(hessian), "the loss")
    return compile_kernel("loss_hessian", _arguments(system), [hessian], output_shape=(w, w))


def _loss_hessians(problem: Problem, states: np.ndarray) -> np.ndarray:
    """``Phi_i,ww`` at each observation, shape ``(N, n + p, n + p)``."""
    n, w = problem.system.n, problem.system.n + problem.system.n_params
    loss = problem.point_loss
    out = np.zeros((len(problem.times), w, w))
    if isinstance(loss, ObservationLoss) and loss.targets is not None:
        out[:, :n, :n] = 2.0 * np.eye(n)  # sum ||h - y||^2
        return out
    for i, expr in enumerate(loss.expressions(problem.system, len(problem.times))):
        out[i] = loss_hessian_kernel(problem.system, expr)(problem.times[i], states[i], problem.theta)
    return out


def forward_hessian(
    problem: Problem, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10
) -> DenseHessian:
    """The Hessian of ``L`` in ``(h0, theta)`` by second-order forward sensitivities.

    Parameters
    ----------
    problem : Problem
        With an expression loss and ``n (n + p)^2 <= MAX_SENSITIVITIES``.
    solver, rtol, atol
        Of the joint solve of ``[h, S, T]``.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> H = forward_hessian(prob, rtol=1e-11, atol=1e-13).hessian
    >>> e = np.exp(-1.0)  # L = x0^2 e^{-2 k T}, T = 1
    >>> bool(np.allclose(H, [[2 * e, -4 * e], [-4 * e, 4 * e]], rtol=1e-9))
    True
    """
    check_solver(solver)
    if isinstance(problem.loss, CallableLoss):
        raise InvalidModelError("the dense Hessian needs an expression loss (FinalLoss or ObservationLoss)")
    system = problem.system
    n, p = system.n, system.n_params
    m = n + p
    if n * m * m > MAX_SENSITIVITIES:
        raise InvalidModelError(
            f"the dense Hessian of n = {n} states and m = {m} inputs needs n m^2 = {n * m * m} second-order "
            f"sensitivities (more than {MAX_SENSITIVITIES}); use method='complex-step' or 'finite-difference'"
        )
    started = _time.perf_counter()
    k = problem.kernels
    f, jh, jt, fww = k.f.fn, k.jac_h.fn, k.jac_theta.fn, rhs_hessian_kernel(system).fn
    theta = problem.theta
    E = np.hstack([np.zeros((p, n)), np.eye(p)])

    size = n * (1 + m + m * m)
    cost = problem.running_cost
    if cost is not None:  # [q, q_x, Q] after [h, S, T] (see the module docstring)
        g, g_w, g_ww = (
            problem.running_value,
            expression_partials(system, cost).fn,
            loss_hessian_kernel(system, cost).fn,
        )

    def rhs(t, y):
        h, S, T = y[:n], y[n : n + n * m].reshape(n, m), y[n + n * m : size].reshape(n, m, m)
        Jh, Jt = jh(t, h, theta), jt(t, h, theta)
        Z = np.vstack([S, E])
        dS = Jh @ S + Jt @ E
        dT = np.einsum("ka,ajl->kjl", Jh, T) + np.einsum("kab,aj,bl->kjl", fww(t, h, theta), Z, Z)
        out = [f(t, h, theta), dS.reshape(-1), dT.reshape(-1)]
        if cost is not None:
            w = g_w(t, h, theta)[:m]  # [g_h, g_theta] (its last entry, g_t, is not needed)
            dQ = Z.T @ g_ww(t, h, theta) @ Z + np.einsum("k,kjl->jl", w[:n], T)
            out += [[g(t, h, theta)], w @ Z, dQ.reshape(-1)]
        return np.concatenate(out)

    y = np.concatenate([problem.h0, np.eye(n, m).reshape(-1), np.zeros(n * m * m)])
    if cost is not None:
        y = np.concatenate([y, np.zeros(1 + m + m * m)])
    times = problem.times
    states, sens, second = np.empty((len(times), n)), np.empty((len(times), n, m)), np.empty((len(times), n, m, m))
    nfev, start = 0, problem.t0
    for i, end in enumerate(times):
        res = integrate(rhs, (start, end), y, solver=solver, rtol=rtol, atol=atol, dense=False, what="Hessian solve")
        nfev += res.nfev
        y = res.y[:, -1]
        states[i], sens[i], second[i] = y[:n], y[n : n + n * m].reshape(n, m), y[n + n * m : size].reshape(n, m, m)
        start = end
    loss = problem.evaluate_loss(states)
    Z = np.concatenate([sens, np.broadcast_to(E, (len(times), p, m))], axis=1)
    hessian = np.einsum("iaj,iab,ibl->jl", Z, _loss_hessians(problem, states), Z)
    hessian += np.einsum("ik,ikjl->jl", loss.d_states, second)
    gradient = np.einsum("in,inm->m", loss.d_states, sens)
    gradient[n:] += loss.d_theta
    value = float(loss.value)
    if cost is not None:  # the integral, its gradient and Hessian at t_N = t1
        value += float(y[size])
        gradient += y[size + 1 : size + 1 + m]
        hessian += y[size + 1 + m :].reshape(m, m)
    stats = {"nfev_forward": nfev, "solver": solver, "wall_time": _time.perf_counter() - started}
    return DenseHessian(value, gradient, hessian, stats)


__all__ = [
    "MAX_SENSITIVITIES",
    "DenseHessian",
    "forward_hessian",
    "loss_hessian_kernel",
    "rhs_hessian_kernel",
]
