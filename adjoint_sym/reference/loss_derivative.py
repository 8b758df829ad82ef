"""The loss's partial derivatives for the forward reference, by a derivation of its own.

The adjoint reads ``dL/dh(t_i)``, the explicit ``dL/dtheta`` and ``dL/dt_i`` from one
compiled loss-gradient kernel (:meth:`Problem.evaluate_loss`).  A reference that reused it
would agree with the adjoint on any error in it, so the forward reference differentiates
the loss *value* itself:

* by the complex step of the value-only kernel (:meth:`Problem.loss_term`), one entry at a
  time, ``d term_i / d u = Im term_i(u + i 1e-30) / 1e-30``: exact to rounding, no
  cancellation, for any analytic loss (squared errors included);
* for a loss with non-analytic functions (``abs``, ``max`` ...), whose numpy versions do
  not extend to complex arguments, by SymPy's derivative of the loss expression compiled
  here, entry by entry, apart from the adjoint's kernel;
* for a :class:`CallableLoss`, by the user's own gradient (the only one there is).

These are the partial derivatives of the point part; a running cost is differentiated
where it is integrated (:func:`expression_partials`, entry by entry).

Only the parameters and the time a term contains are stepped, so the cost is
``N (n + p_used + 1)`` evaluations of a small kernel.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from ..numeric.compile import Argument, Kernel, compile_kernel, scalar_argument
from ..numeric.loss import CallableLoss
from ..numeric.problem import LossValue, Problem, callable_loss_gradient
from ..symbolic.system import ODESystem
from .complex_step import NON_ANALYTIC

#: The imaginary step of the loss's complex step.
STEP = 1e-30


def loss_partials(problem: Problem, states: np.ndarray) -> LossValue:
    """``L`` and its partial derivatives at the observed ``states`` (shape (N, n)).

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 2.0, FinalLoss("k*x**2 + t*x"))
    >>> out = loss_partials(prob, np.array([[3.0]]))
    >>> float(out.value), out.d_states.tolist(), out.d_theta.tolist(), out.d_times.tolist()
    (10.5, [[5.0]], [9.0], [3.0])
    """
    states = np.asarray(states, dtype=float)
    theta, times = problem.theta, problem.times
    N, n = states.shape
    point = problem.point_loss
    if isinstance(point, CallableLoss):
        d_states, d_theta = callable_loss_gradient(point, states, theta, problem.system)
        return LossValue(float(problem.loss_value(states)), d_states, d_theta, np.zeros(N))
    exprs = point.expressions(problem.system, N)
    value = 0.0
    d_states = np.zeros((N, n))
    d_theta = np.zeros(problem.system.n_params)
    d_times = np.zeros(N)
    for i, expr in enumerate(exprs):
        value += float(np.real(problem.loss_term(i, times[i], states[i], theta)))
        if _is_analytic(expr):
            d_states[i], used, d_used, d_times[i] = _complex_step(problem, i, expr, states[i])
            d_theta[used] += d_used
        else:
            out = expression_partials(problem.system, expr)(times[i], states[i], theta)
            p = problem.system.n_params
            d_states[i], d_times[i] = out[:n], out[n + p]
            d_theta += out[n : n + p]
    return LossValue(value, d_states, d_theta, d_times)


def _is_analytic(expr: sp.Basic) -> bool:
    return not expr.atoms(*NON_ANALYTIC)


def used_parameters(system: ODESystem, expr: sp.Basic) -> np.ndarray:
    """Flat indices of the parameters ``expr`` contains (a matrix parameter: all its entries)."""
    out, k = [], 0
    for p in system.params:
        size = int(p.shape[0] * p.shape[1]) if isinstance(p, sp.MatrixSymbol) else 1
        if expr.has(p):
            out.extend(range(k, k + size))
        k += size
    return np.array(out, dtype=int)


def _complex_step(problem: Problem, i: int, expr: sp.Basic, h: np.ndarray):
    t, theta = problem.times[i], problem.theta

    def im(value) -> float:
        return float(np.imag(value)) / STEP

    d_h = np.empty(len(h))
    for k in range(len(h)):
        hc = h.astype(complex)
        hc[k] += 1j * STEP
        d_h[k] = im(problem.loss_term(i, t, hc, theta))
    used = used_parameters(problem.system, expr)
    d_used = np.empty(len(used))
    for m, j in enumerate(used):
        tc = theta.astype(complex)
        tc[j] += 1j * STEP
        d_used[m] = im(problem.loss_term(i, t, h, tc))
    d_t = im(problem.loss_term(i, t + 1j * STEP, h, theta)) if expr.has(problem.system.t) else 0.0
    return d_h, used, d_used, d_t


@lru_cache(maxsize=64)
def expression_partials(system: ODESystem, expr: sp.Basic) -> Kernel:
    """``(t, h, theta) -> [dexpr/dh_k ..., dexpr/dtheta_j ..., dexpr/dt]`` by SymPy, entry by entry.

    The references' own derivative of a scalar expression (a loss term, a running cost):
    ``diff`` by each scalar entry, never the adjoint's matrix-level reverse mode.

    Examples
    --------
    >>> from adjoint_sym import ODESystem
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> x, k, t = (sys.symbol_table()[name] for name in ("x", "k", "t"))
    >>> expression_partials(sys, k * x**2 + t)(0.0, np.array([3.0]), np.array([0.5]))
    array([3., 9., 1.])
    """
    wrt = [*system.flat_state, *system.flat_params, system.t]
    args = [scalar_argument(system.t), Argument("h", tuple(system.state)), Argument("theta", tuple(system.params))]
    return compile_kernel("loss_partials", args, [sp.ImmutableMatrix([expr.diff(v) for v in wrt])])


__all__ = ["expression_partials", "loss_partials", "used_parameters"]
