"""Central finite differences of the loss, Richardson-extrapolated, with their own error bound.

The loss is the function ``L(x)`` of every input of :mod:`adjoint_sym.reference.inputs`,
read from the value-only loss kernel (the references differentiate the loss themselves),
a running cost's integral included (integrated with the trajectory).
Each entry is differentiated with a step ``delta_j = rel * s_j`` scaled to its input
(:func:`~adjoint_sym.reference.inputs.step_scale`: a parameter's own size however small,
1 for an exact zero; the size a state reaches; a time's size capped by the span), with

    D(delta) = (L(x + delta e_j) - L(x - delta e_j)) / (2 delta),
    E(delta) = (4 D(delta/2) - D(delta)) / 3 = g_j       (Richardson, the default),

which cancels the ``delta^2`` term of the truncation error.  ``rel = eps^(1/5)`` balances
the remaining ``O(delta^4)`` truncation against the ``O(noise / delta)`` error of the solves
(``eps^(1/3)`` and ``D(delta)`` alone without Richardson).  Solves run at
``rtol = min(rtol, 1e-12)``; at such tolerances only a high-order method is economical,
so an explicit ``solver`` is replaced by DOP853 (order 8; RK23 would need thousands of
times more steps); implicit solvers are kept for stiff problems.

The claimed accuracy
--------------------
Each entry's error is estimated from the data, not assumed.  With ``E(delta)`` the
extrapolated quotient, one more pair of solves gives ``E(delta/2)``, and

    err_j = 2 |E(delta) - E(delta/2)|  +  3 rtol_s * max|L(x +- delta e_j)| / delta_j.

The first term bounds the truncation error of ``E(delta)``: it shrinks 16-fold when the
step halves, so ``E(delta) - E(delta/2)`` is 15/16 of it to leading order, and the factor 2
leaves room for the next order.  The second is the solver noise: the part of the solves'
global error that two nearby inputs share is smooth in ``x`` and differentiates away (its
flow-amplified remainder is the ``kappa`` of the tolerance model); what differs between
them is where the step sequence changes, about one local error, at most ``rtol_s |L|``,
weighed ``(4 * 2 + 1) / 3 = 3`` by the two quotients.  (``|D(delta) - D(delta/2)| / 3``, the error of the unextrapolated
quotient, would overstate it by orders of magnitude: 1.7e-5 for an actual 3e-10 on an
oscillator over 10 time units.)  ``stats["error_estimate"]`` holds ``err_j`` per input
and ``stats["accuracy"]`` the largest of them relative to the largest gradient entry,
both scaled by :func:`~adjoint_sym.reference.inputs.input_scale` as the checker's
tolerance model scales them, which multiplies the claim by its ``100 kappa`` (the solves'
error is amplified by the flow as any route's is: ``kappa`` is not in the estimate).

Where it does not apply
-----------------------
A loss that is not smooth within ``delta`` of ``x`` (a kink of ``abs`` or ``max`` in the
rhs or the loss): the Richardson difference then grows and the claim says so.  An input
whose influence on ``L`` sits below the solver noise (``|delta_j g_j| << rtol_s |L|``) has
a large claimed error; the complex step or forward sensitivities resolve it.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable

import numpy as np

from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import IMPLICIT, check_solver
from .inputs import (
    gradient_from_vector,
    input_scale,
    input_vector,
    loss_at,
    split_inputs,
    step_scale,
    trajectory,
)

#: Forward solves of the perturbation references run at least this tight.
TIGHT_RTOL = 1e-12
TIGHT_ATOL = 1e-14
#: The noise of one loss value between nearby inputs, in units of the solves' rtol (one local
#: error where the step sequence changes; see the module docstring).
NOISE_UNITS = 1

_EPS = np.finfo(float).eps


def central_differences(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    steps: np.ndarray,
    *,
    richardson: bool,
    noise: float = 0.0,
    with_error: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``dfun/dx`` by central differences with one step per entry (Richardson optional).

    With ``with_error``, also each entry's error estimate (see the module docstring):
    the difference to the same formula at half the step (one more pair of evaluations),
    plus ``noise`` (the relative error of one value of ``fun``) amplified through the
    quotients.

    Examples
    --------
    >>> fun = lambda x: float(np.exp(x[0]))
    >>> g, err = central_differences(fun, np.array([0.0]), np.array([3e-2]), richardson=True, with_error=True)
    >>> bool(abs(g[0] - 1) < 1e-8), bool(abs(g[0] - 1) <= err[0] <= 3 * abs(g[0] - 1))  # measured, not assumed
    (True, True)
    """
    g = np.empty(len(x))
    err = np.empty(len(x))
    for j in range(len(x)):
        values: list[float] = []
        quotients: dict[float, float] = {}  # D(delta/2) serves both E(delta) and E(delta/2)

        def quotient(delta, j=j, values=values, quotients=quotients):
            if delta not in quotients:
                e = np.zeros(len(x))
                e[j] = delta
                up, down = fun(x + e), fun(x - e)
                values.extend([up, down])
                quotients[delta] = (up - down) / (2 * delta)
            return quotients[delta]

        def estimate(delta):  # D(delta), or its Richardson extrapolation with D(delta/2)
            d = quotient(delta)
            return (4 * quotient(delta / 2) - d) / 3 if richardson else d

        g[j] = estimate(steps[j])
        if with_error:
            # The truncation error shrinks 16x (4x without Richardson) when the step halves,
            # so it is 16/15 (4/3) of |E(delta) - E(delta/2)| to leading order; twice that
            # difference leaves room for the next order.  The noise of one value, through
            # (4 D(delta/2) - D(delta)) / 3, weighs (4 * 2 + 1) / 3 = 3 per unit / delta.
            amplification = 3 if richardson else 1
            truncation = 2 * abs(g[j] - estimate(steps[j] / 2))
            err[j] = truncation + amplification * noise * max(map(abs, values)) / steps[j]
    return (g, err) if with_error else g


def finite_difference_gradient(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    richardson: bool = True,
    step: float | None = None,
) -> Gradient:
    """Every derivative by central differences of the loss (see the module docstring).

    Parameters
    ----------
    problem : Problem
    solver : str
        An implicit ``solve_ivp`` method is used as given; explicit ones run as DOP853.
    rtol, atol : float
        Requested tolerances; the solves run at ``min(rtol, 1e-12)``, ``min(atol, 1e-14)``.
    richardson : bool
        Extrapolate two central differences (error O(delta^4) instead of O(delta^2)).
    step : float, optional
        Relative step ``rel``, multiplied by each input's
        :func:`~adjoint_sym.reference.inputs.step_scale`; the default balances truncation
        and solver noise (``eps^(1/5)`` with Richardson, ``eps^(1/3)`` without).

    Returns
    -------
    Gradient
        ``stats["accuracy"]``: the estimated error relative to the largest scaled entry;
        ``stats["error_estimate"]``: the estimated absolute error of each entry, laid out
        like :func:`~adjoint_sym.reference.inputs.input_vector`.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> g = finite_difference_gradient(prob)
    >>> round(g.dparams["k"], 6)  # -2 T x0^2 exp(-2 k T)
    -0.735759
    >>> bool(g.stats["accuracy"] < 1e-7)
    True
    """
    check_solver(solver)
    started = _time.perf_counter()
    solver = solver if solver in IMPLICIT else "DOP853"  # tight tolerances: the high-order method
    srtol, satol = min(rtol, TIGHT_RTOL), min(atol, TIGHT_ATOL)
    counter = [0]
    x = input_vector(problem)
    rel = step if step is not None else (_EPS ** (1 / 5) if richardson else _EPS ** (1 / 3))

    def fun(xx: np.ndarray) -> float:
        return float(np.real(loss_at(problem, xx, solver=solver, rtol=srtol, atol=satol, counter=counter)))

    states = trajectory(problem, x, solver=solver, rtol=srtol, atol=satol, counter=counter)
    steps = rel * step_scale(problem, states)
    g, err = central_differences(fun, x, steps, richardson=richardson, noise=NOISE_UNITS * srtol, with_error=True)
    loss = fun(x)
    stats = {
        "nfev_forward": counter[0],
        "solver": solver,
        "rtol_solves": srtol,
        "accuracy": claimed_accuracy(g, err, input_scale(problem, states)),
        "error_estimate": err,
        "relative_step": rel,
        "wall_time": _time.perf_counter() - started,
    }
    return gradient_from_vector(problem, loss, g, "finite-difference", stats)


def claimed_accuracy(g: np.ndarray, err: np.ndarray, scale: np.ndarray) -> float:
    """``max_j s_j err_j / max_k s_k |g_k|``, at most 1: errors relative to the largest scaled entry.

    Examples
    --------
    >>> claimed_accuracy(np.array([2.0, 0.0]), np.array([1e-9, 1e-9]), np.array([1.0, 1.0]))
    5e-10
    """
    top = float(np.max(scale * np.abs(g), initial=0.0))
    worst = float(np.max(scale * err, initial=0.0))
    if worst == 0:
        return 0.0
    return min(1.0, worst / top) if top > 0 else 1.0


__all__ = [
    "claimed_accuracy",
    "finite_difference_gradient",
    "gradient_from_vector",
    "input_scale",
    "input_vector",
    "loss_at",
    "split_inputs",
    "step_scale",
    "trajectory",
]
