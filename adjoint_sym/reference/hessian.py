"""Reference Hessian-vector products that share nothing with the second-order adjoint.

Each differentiates a first-order gradient computed by **forward sensitivities**
(:func:`sensitivity_gradient`: ``dS/dt = f_h S + [0 | f_theta]``, ``S(t0) = [I | 0]``
with the entry-wise Jacobians of :mod:`adjoint_sym.numeric.kernels`, then
``dL/dx = sum_i dL/dh(t_i) S(t_i) + [0, dL/dtheta]``), never the adjoint's VJP or its
second-order kernels:

=====================  ==============================================================
method                 ``H v``
=====================  ==============================================================
``complex-step``       ``Im g(x + i eps v) / eps``: one complex sensitivity solve,
                       exact to rounding for analytic problems (``eps = 1e-30``)
``finite-difference``  ``(g(x + d v) - g(x - d v)) / 2d``, Richardson-extrapolated
``forward-hessian``    the dense Hessian by second-order forward sensitivities, times
                       ``v`` (:mod:`adjoint_sym.reference.hessian_forward`; small problems)
=====================  ==============================================================

``x = (h0, theta)``; the times stay fixed.  A running cost ``int g dt`` joins the
sensitivity solve as ``q' = g``, ``s_q' = g_h S + [0 | g_theta]`` (SymPy's entry-wise
derivatives of ``g``), and the dense Hessian as its second-order sensitivities.  Solves
run at ``rtol = min(rtol, 1e-12)``
(DOP853 for explicit solvers: the high order makes tight tolerances affordable), so
the references are good to about ``1e-10`` relative on the problems of the test suite.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable

import numpy as np

from ..errors import InvalidModelError
from ..numeric.loss import CallableLoss
from ..numeric.problem import Problem
from ..numeric.second_order import HessianVectorProduct, direction_vector
from ..numeric.solve import IMPLICIT, check_solver, integrate
from .complex_step import check_analytic
from .finite_difference import TIGHT_ATOL, TIGHT_RTOL, input_scale, input_vector, trajectory
from .hessian_forward import forward_hessian
from .loss_derivative import expression_partials

#: The imaginary step of the complex-step route (as for first-order complex step).
STEP = 1e-30
_EPS = np.finfo(float).eps


def _refuse_callable(problem: Problem) -> None:
    if isinstance(problem.loss, CallableLoss):
        raise InvalidModelError(
            "reference Hessian-vector products need an expression loss (FinalLoss or ObservationLoss), "
            "not a CallableLoss"
        )


def sensitivity_gradient(
    problem: Problem, h0: np.ndarray, theta: np.ndarray, *, solver: str, rtol: float, atol: float
) -> tuple[complex | float, np.ndarray, int]:
    """``(L, dL/d(h0, theta), nfev)`` by forward sensitivities at ``(h0, theta)``, real or complex.

    The parameter columns are integrated scaled by ``max(|theta_j|, 1)`` (of the
    problem's own values), so that ``atol`` means the same for every column.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [2.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> L, g, _ = sensitivity_gradient(prob, prob.h0, prob.theta, solver="DOP853", rtol=1e-12, atol=1e-14)
    >>> bool(np.allclose(g, [np.exp(-0.5), -2.0 * np.exp(-0.5)], rtol=1e-10))
    True
    """
    k = problem.kernels
    n, p = problem.system.n, problem.system.n_params
    m = n + p
    size = n * (m + 1)
    f, jh, jt = k.f.fn, k.jac_h.fn, k.jac_theta.fn
    col = np.maximum(np.abs(np.real(problem.theta)), 1.0)
    cost = problem.running_cost
    if cost is not None:  # [q, s_q]: q' = g, s_q' = g_h S + g_theta (SymPy's entry-wise derivatives)
        g, partials = problem.running_value, expression_partials(problem.system, cost).fn

    def rhs(t, z):
        h = z[:n]
        S = z[n:size].reshape(n, m)
        dS = jh(t, h, theta) @ S
        dS[:, n:] += jt(t, h, theta) * col
        out = [f(t, h, theta), dS.reshape(-1)]
        if cost is not None:
            d = partials(t, h, theta)
            d_q = d[:n] @ S
            d_q[n:] += d[n : n + p] * col
            out += [[g(t, h, theta)], d_q]
        return np.concatenate(out)

    dtype = np.result_type(h0, theta, float)
    S0 = np.zeros((n, m), dtype=dtype)
    S0[:, :n] = np.eye(n)
    z = np.concatenate([np.asarray(h0, dtype=dtype), S0.reshape(-1)])
    if cost is not None:
        z = np.concatenate([z, np.zeros(1 + m, dtype=dtype)])
    times = problem.times
    states = np.empty((len(times), n), dtype=dtype)
    sens = np.empty((len(times), n, m), dtype=dtype)
    nfev, start = 0, problem.t0
    for i, end in enumerate(times):
        res = integrate(
            rhs, (start, end), z, solver=solver, rtol=rtol, atol=atol, dense=False, what="sensitivity solve"
        )
        nfev += res.nfev
        z = res.y[:, -1]
        states[i], sens[i] = z[:n], z[n:size].reshape(n, m)
        start = end
    sens[:, :, n:] /= col
    loss = problem.evaluate_loss(states, theta=theta)
    grad = np.einsum("in,inm->m", loss.d_states, sens)
    grad[n:] += loss.d_theta
    value = loss.value
    if cost is not None:  # the integral and its gradient, read at t_N = t1
        value = value + z[size]
        s_q = z[size + 1 :].copy()
        s_q[n:] /= col
        grad = grad + s_q
    return value, grad, nfev


def _tight(solver: str, rtol: float, atol: float) -> tuple[str, float, float]:
    return (solver if solver in IMPLICIT else "DOP853"), min(rtol, TIGHT_RTOL), min(atol, TIGHT_ATOL)


def complex_step_hvp(
    problem: Problem, v, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10, step: float = STEP
) -> HessianVectorProduct:
    """``H v = Im g(x + i eps v) / eps`` with ``g`` by forward sensitivities.

    Solves always run explicitly (DOP853: Newton iterations would not converge the
    imaginary part) at ``rtol = min(rtol, 1e-12)``.  Refuses non-analytic problems
    (:func:`~adjoint_sym.reference.complex_step.check_analytic`).

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> hv = complex_step_hvp(prob, [0.0, 1.0])
    >>> bool(abs(hv.dparams["k"] - np.exp(-0.5)) < 1e-11)  # T^2 e^{-k T}
    True
    """
    check_solver(solver)
    _refuse_callable(problem)
    check_analytic(problem)
    started = _time.perf_counter()
    _, srtol, satol = _tight("DOP853", rtol, atol)
    x = direction_vector(problem, v)
    n = problem.system.n
    shifted = np.concatenate([problem.h0, problem.theta]) + 1j * step * x
    loss, g, nfev = sensitivity_gradient(problem, shifted[:n], shifted[n:], solver="DOP853", rtol=srtol, atol=satol)
    stats = {"nfev_forward": nfev, "solver": "DOP853", "accuracy": srtol, "wall_time": _time.perf_counter() - started}
    return HessianVectorProduct.from_vector(
        problem, np.imag(g) / step, x, "complex-step", float(np.real(loss)), gradient=np.real(g), stats=stats
    )


def finite_difference_hvp(
    problem: Problem,
    v,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    richardson: bool = True,
    step: float | None = None,
) -> HessianVectorProduct:
    """``H v`` by central differences of the forward-sensitivity gradient along ``v``.

    The step ``d`` moves no input by more than ``rel * s_j`` (``s_j`` its typical size,
    :func:`~adjoint_sym.reference.finite_difference.input_scale`), ``rel = eps^(1/5)``
    with Richardson extrapolation ``(4 D(d/2) - D(d)) / 3`` (default), ``eps^(1/3)``
    without.  ``stats["accuracy"]`` is solver noise over the step plus truncation.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> hv = finite_difference_hvp(prob, [0.0, 1.0])
    >>> bool(abs(hv.dparams["k"] - np.exp(-0.5)) < 1e-7)
    True
    """
    check_solver(solver)
    _refuse_callable(problem)
    started = _time.perf_counter()
    solver, srtol, satol = _tight(solver, rtol, atol)
    x = direction_vector(problem, v)
    n, m = problem.system.n, problem.system.n_params + problem.system.n
    base = np.concatenate([problem.h0, problem.theta])
    rel = step if step is not None else (_EPS ** (1 / 5) if richardson else _EPS ** (1 / 3))
    states = trajectory(problem, input_vector(problem), solver=solver, rtol=srtol, atol=satol)
    scale = input_scale(problem, states)[:m]
    reach = float(np.max(np.abs(x) / scale)) if np.any(x) else 0.0
    nfev = [0]

    def g(point: np.ndarray) -> np.ndarray:
        _, out, count = sensitivity_gradient(problem, point[:n], point[n:], solver=solver, rtol=srtol, atol=satol)
        nfev[0] += count
        return out

    if reach == 0.0:  # the zero direction: H 0 = 0 exactly
        hv = np.zeros(m)
    else:
        delta = rel / reach

        def diff(d: float) -> np.ndarray:
            return (g(base + d * x) - g(base - d * x)) / (2 * d)

        d1 = diff(delta)
        hv = (4 * diff(delta / 2) - d1) / 3 if richardson else d1
    loss, gradient, count = sensitivity_gradient(
        problem, problem.h0, problem.theta, solver=solver, rtol=srtol, atol=satol
    )
    truncation = rel**4 if richardson else rel**2
    stats = {
        "nfev_forward": nfev[0] + count,
        "solver": solver,
        "accuracy": 10 * srtol / rel + truncation,
        "relative_step": rel,
        "wall_time": _time.perf_counter() - started,
    }
    return HessianVectorProduct.from_vector(
        problem, hv, x, "finite-difference", float(loss), gradient=gradient, stats=stats
    )


def forward_hessian_hvp(
    problem: Problem, v, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10
) -> HessianVectorProduct:
    """``H v`` from the dense Hessian of :func:`~adjoint_sym.reference.hessian_forward.forward_hessian`.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> hv = forward_hessian_hvp(prob, [1.0, 0.0], rtol=1e-10, atol=1e-12)
    >>> bool(abs(hv.dparams["k"] + np.exp(-0.5)) < 1e-9)  # d2/dk dx0 (x0 e^{-k T}) = -T e^{-k T}
    True
    """
    _refuse_callable(problem)
    started = _time.perf_counter()
    x = direction_vector(problem, v)
    dense = forward_hessian(problem, solver=solver, rtol=rtol, atol=atol)
    stats = {**dense.stats, "accuracy": rtol, "wall_time": _time.perf_counter() - started}
    return HessianVectorProduct.from_vector(
        problem, dense.hessian @ x, x, "forward-hessian", dense.loss, gradient=dense.gradient, stats=stats
    )


#: The reference HVP routes by name (see the module docstring).
HVP_REFERENCES: dict[str, Callable] = {
    "complex-step": complex_step_hvp,
    "finite-difference": finite_difference_hvp,
    "forward-hessian": forward_hessian_hvp,
}

__all__ = [
    "HVP_REFERENCES",
    "STEP",
    "complex_step_hvp",
    "finite_difference_hvp",
    "forward_hessian_hvp",
    "sensitivity_gradient",
]
