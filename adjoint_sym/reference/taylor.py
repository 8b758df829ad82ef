"""The Taylor-remainder test: does a gradient predict the loss to second order?

For inputs ``x = (h0, theta, t0, t_1 .. t_N)`` (``t_N = t1``), a direction ``v`` and a
gradient ``g``, the remainder

    r(eps) = |L(x + eps v) - L(x) - eps g . v|

is ``O(eps^2)`` when ``g`` is the gradient and only ``O(eps)`` when it is not (unless the
error is orthogonal to ``v``, which a random ``v`` makes unlikely).  Halving ``eps``
should divide ``r`` by 4: the fitted order (the slope of ``log r`` against ``log eps``) is
2 for a correct gradient, 1 for a wrong one.  It checks any gradient with no second
gradient method, as pyadjoint's ``taylor_test`` does for PDE-constrained problems
(Farrell, Ham, Funke & Rognes, SIAM J. Sci. Comput. 35 (2013)).

The loss is evaluated by tight forward solves (``rtol = min(rtol, 1e-12)``); remainders
below ``100 rtol |L|`` are solver noise and are left out of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..numeric.problem import Problem
from ..numeric.result import Gradient
from .finite_difference import TIGHT_ATOL, TIGHT_RTOL, input_scale, input_vector, loss_at, trajectory

#: A correct gradient fits order 2; a wrong one 1.  1.8 leaves room for the O(eps^3)
#: term at the largest steps without letting order 1 through.
MIN_ORDER = 1.8


@dataclass(frozen=True)
class TaylorResult:
    """Remainders of the Taylor test and the order they converge at.

    Attributes
    ----------
    epsilons, remainders : ndarray
        ``r(eps)`` for each ``eps``.
    orders : ndarray
        ``log(r_k / r_{k+1}) / log(eps_k / eps_{k+1})`` between successive steps.
    fitted_order : float
        Least-squares slope over the remainders above the noise floor (NaN if none).
    ok : bool
        ``fitted_order >= 1.8``, or every remainder at the noise floor.
    """

    epsilons: np.ndarray
    remainders: np.ndarray
    orders: np.ndarray
    fitted_order: float
    ok: bool
    noise_floor: float = 0.0

    def __repr__(self) -> str:
        return (
            f"TaylorResult(ok={self.ok}, fitted_order={self.fitted_order:.3f}, "
            f"orders={np.array2string(self.orders, precision=3)})"
        )


def gradient_vector(problem: Problem, gradient: Gradient) -> np.ndarray:
    """``g`` laid out like the input vector ``(h0, theta, t0, t_1 .. t_N)``."""
    times = [gradient.dt1] if problem.is_final_loss else list(gradient.dtimes)
    return np.concatenate([np.asarray(gradient.dh0, float), gradient.dtheta, [gradient.dt0], np.asarray(times, float)])


def taylor_test(
    problem: Problem,
    gradient: Gradient,
    *,
    direction: np.ndarray | None = None,
    epsilons: np.ndarray | None = None,
    solver: str = "DOP853",
    rtol: float = 1e-12,
    atol: float = 1e-14,
    seed: int = 0,
) -> TaylorResult:
    """Check ``gradient`` by the Taylor remainder (see the module docstring).

    Parameters
    ----------
    problem : Problem
    gradient : Gradient
        From any method, or built by hand.
    direction : ndarray, optional
        ``v``, laid out like the inputs; default random (seeded), each entry scaled by
        the input's typical size (:func:`~adjoint_sym.reference.finite_difference.input_scale`).
    epsilons : ndarray, optional
        Decreasing steps; default ``1e-2 / 2**k``, ``k = 0..5``.
    solver, rtol, atol
        Of the loss evaluations (tightened to at most 1e-12 / 1e-14).

    Returns
    -------
    TaylorResult

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss, gradient
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> res = taylor_test(prob, gradient(prob, "forward"))
    >>> res.ok, round(res.fitted_order)
    (True, 2)
    """
    x = input_vector(problem)
    g = gradient_vector(problem, gradient)
    srtol, satol = min(rtol, TIGHT_RTOL), min(atol, TIGHT_ATOL)
    if direction is None:
        states = trajectory(problem, x, solver=solver, rtol=srtol, atol=satol)
        direction = np.random.default_rng(seed).standard_normal(len(x)) * input_scale(problem, states)
    v = np.asarray(direction, dtype=float)
    if v.shape != x.shape:
        raise ValueError(f"direction must have {len(x)} entries (h0, theta, t0, times), got shape {v.shape}")
    eps = np.asarray(epsilons if epsilons is not None else 1e-2 / 2.0 ** np.arange(6), dtype=float)

    def L(xx):
        return float(np.real(loss_at(problem, xx, solver=solver, rtol=srtol, atol=satol)))

    base = L(x)
    slope = float(g @ v)
    rem = np.array([abs(L(x + e * v) - base - e * slope) for e in eps])
    # solver noise: a solve at rtol carries a global error of a few rtol |L|
    noise = 100 * srtol * max(abs(base), 1e-300) + 100 * satol
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log(rem[:-1] / rem[1:]) / np.log(eps[:-1] / eps[1:])
    above = rem > noise
    if above.sum() >= 2:
        fitted = float(np.polyfit(np.log(eps[above]), np.log(rem[above]), 1)[0])
        ok = fitted >= MIN_ORDER
    else:
        fitted = float("nan")
        ok = True  # the loss is linear along v to within solver noise: nothing to refute
    return TaylorResult(eps, rem, orders, fitted, bool(ok), noise)


__all__ = ["MIN_ORDER", "TaylorResult", "gradient_vector", "taylor_test"]
