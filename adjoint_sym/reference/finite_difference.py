"""Central finite differences of the loss, Richardson-extrapolated, with their own error bound.

The loss is the function ``L(x)`` of every input of :mod:`adjoint_sym.reference.inputs`,
read from the value-only loss kernel (the references differentiate the loss themselves).
Each entry is differentiated with a step ``delta_j = rel * s_j`` scaled to its input
(:func:`~adjoint_sym.reference.inputs.step_scale`: a parameter's own size however small,
1 for an exact zero; the size a state reaches; a time's size capped by the span), with

    D(delta) = (L(x + delta e_j) - L(x - delta e_j)) / (2 delta),
    g_j = (4 D(delta/2) - D(delta)) / 3                  (Richardson, the default),

which cancels the ``delta^2`` term of the truncation error.  ``rel = eps^(1/5)`` balances
the remaining ``O(delta^4)`` truncation against the ``O(noise / delta)`` error of the solves
(``eps^(1/3)`` and ``D(delta)`` alone without Richardson).  Solves run at
``rtol = min(rtol, 1e-12)``; at such tolerances only a high-order method is economical,
so an explicit ``solver`` is replaced by DOP853 (order 8; RK23 would need thousands of
times more steps); implicit solvers are kept for stiff problems.

The claimed accuracy
--------------------
Each entry's error is estimated from the data, not assumed:

    err_j = |D(delta/2) - D(delta)| / 3  +  3 * 10 rtol_s * max|L(x +- delta e_j)| / delta_j.

The first term is the truncation error of ``D(delta/2)`` read off the Richardson
difference (``D(delta) - D(delta/2) = 3/4 c delta^2 + ...``), an upper bound for the
extrapolated value's as long as the series converges; the second is the solver noise,
a global error of up to ``10 rtol_s |L|`` in each loss value, amplified by at most
``(4 * 2 + 1) / 3 = 3`` through the two quotients.  ``stats["error_estimate"]`` holds
``err_j`` per input and ``stats["accuracy"]`` the largest of them relative to the largest
gradient entry, both scaled by :func:`~adjoint_sym.reference.inputs.input_scale` as the
checker's tolerance model scales them.

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
#: A solve's global error in the loss, in units of its rtol (the tolerance model's typical 1 to 100).
NOISE_UNITS = 10

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
    the Richardson difference plus ``noise`` (the relative error of one value of ``fun``)
    amplified through the quotients.  Without Richardson only the noise part is
    measured (one step gives no truncation estimate).

    Examples
    --------
    >>> fun = lambda x: float(np.exp(x[0]))
    >>> g, err = central_differences(fun, np.array([0.0]), np.array([1e-3]), richardson=True, with_error=True)
    >>> bool(abs(g[0] - 1) < 1e-12), bool(abs(g[0] - 1) <= err[0])
    (True, True)
    """
    g = np.empty(len(x))
    err = np.empty(len(x))
    for j in range(len(x)):
        values = []

        def diff(delta, j=j, values=values):
            e = np.zeros(len(x))
            e[j] = delta
            up, down = fun(x + e), fun(x - e)
            values.extend([up, down])
            return (up - down) / (2 * delta)

        d1 = diff(steps[j])
        if richardson:
            d2 = diff(steps[j] / 2)
            g[j] = (4 * d2 - d1) / 3
            # |D(delta) - D(delta/2)| / 3 ~ c delta^2 / 4: the error of D(delta/2), which
            # bounds the extrapolated one; the noise of (4 D2 - D1) / 3 is (8 + 1) / 3 per value / delta.
            err[j] = abs(d1 - d2) / 3 + 3 * noise * max(map(abs, values)) / steps[j]
        else:
            g[j] = d1
            err[j] = noise * max(map(abs, values)) / steps[j]  # no second step: truncation unmeasured
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
        Extrapolate two central differences (error O(delta^4) instead of O(delta^2)), and
        measure the truncation error from their difference.
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
    if not richardson:
        err = err + np.abs(g) * rel**2  # a-priori truncation: L varies on the scale of step_scale
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
