"""The order-3 Taylor test: does a Hessian-vector product predict the loss to third order?

For ``x = (h0, theta)``, a direction ``v``, the gradient ``g`` and ``H v``, the remainder

    r(eps) = |L(x + eps v) - L(x) - eps g . v - eps^2 / 2  v . H v|

is ``O(eps^3)`` when ``H v`` is right and only ``O(eps^2)`` when it is not (unless the
error is orthogonal to ``v``).  Halving ``eps`` divides ``r`` by 8: the fitted order
(the slope of ``log r`` against ``log eps``) is 3 for a correct ``H v``, 2 for a wrong
one.  This is the second-order Taylor test of pyadjoint (Farrell, Ham, Funke & Rognes,
SIAM J. Sci. Comput. 35 (2013)), which needs no other Hessian to compare with.

``g`` comes by default from forward sensitivities (:func:`~adjoint_sym.reference.hessian.sensitivity_gradient`),
not from the route under test, so only ``H v`` is judged.  ``eps`` is a relative step:
the largest input moves by ``eps`` times its typical size.  The loss is evaluated by tight
solves (``rtol = min(rtol, 1e-12)``); remainders below ``100 rtol |L|`` are solver noise and
are left out of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.second_order import HessianVectorProduct
from .finite_difference import TIGHT_ATOL, TIGHT_RTOL, input_scale, input_vector, loss_at, trajectory
from .hessian import sensitivity_gradient

#: A correct ``H v`` fits order 3, a wrong one 2: 2.8 leaves room for the ``eps^4`` term
#: at the largest steps without letting order 2 through.
MIN_ORDER = 2.8

#: Default relative steps, as for the first-order test: small enough that the ``eps^4``
#: term is a few percent of ``r`` (Lotka-Volterra over 10 time units: local orders 2.94 ..
#: 2.996; from 0.05 they start at 2.77), large enough that ``r ~ eps^3`` stays above the
#: noise floor of tight solves down to the smallest step.
EPSILONS = 1e-2 / 2.0 ** np.arange(6)


@dataclass(frozen=True)
class HessianTaylorResult:
    """Remainders of the order-3 Taylor test and the order they converge at.

    Attributes
    ----------
    epsilons, remainders : ndarray
        ``r(eps)`` for each (relative) ``eps``.
    orders : ndarray
        Orders between successive steps.
    fitted_order : float
        Least-squares slope of ``log r`` over the smaller steps (all but the two largest, at
        least three) whose remainders are above the noise floor (NaN if fewer than two).
    ok : bool
        ``fitted_order >= 2.8``, or every remainder at the noise floor.
    noise_floor : float
    """

    epsilons: np.ndarray
    remainders: np.ndarray
    orders: np.ndarray
    fitted_order: float
    ok: bool
    noise_floor: float = 0.0

    def __repr__(self) -> str:
        return (
            f"HessianTaylorResult(ok={self.ok}, fitted_order={self.fitted_order:.3f}, "
            f"orders={np.array2string(self.orders, precision=3)})"
        )


def taylor_test_hvp(
    problem: Problem,
    hvp: HessianVectorProduct,
    *,
    gradient: np.ndarray | None = None,
    epsilons: np.ndarray | None = None,
    solver: str = "DOP853",
    rtol: float = 1e-12,
    atol: float = 1e-14,
) -> HessianTaylorResult:
    """Check ``hvp`` (along its own ``hvp.direction``) by the order-3 Taylor remainder.

    Parameters
    ----------
    problem : Problem
    hvp : HessianVectorProduct
        From any route, or built by hand (:meth:`HessianVectorProduct.from_vector`).
    gradient : ndarray, optional
        ``dL/d(h0, theta)``; default by forward sensitivities at the tight tolerance.
    epsilons : ndarray, optional
        Decreasing relative steps; default ``1e-2 / 2**k``, ``k = 0..5``.
    solver, rtol, atol
        Of the loss evaluations (tightened to at most 1e-12 / 1e-14).

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, Problem, hvp
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> res = taylor_test_hvp(prob, hvp(prob, [0.3, -0.7], rtol=1e-10, atol=1e-12))
    >>> res.ok, round(res.fitted_order)
    (True, 3)
    """
    srtol, satol = min(rtol, TIGHT_RTOL), min(atol, TIGHT_ATOL)
    m = problem.system.n + problem.system.n_params
    x = input_vector(problem)
    if np.shape(hvp.direction) != (m,):
        raise InvalidModelError(f"the HVP's direction must have {m} entries (h0, theta), got {np.size(hvp.direction)}")
    v = np.zeros(len(x))  # the times stay put
    v[:m] = np.asarray(hvp.direction, dtype=float)
    states = trajectory(problem, x, solver=solver, rtol=srtol, atol=satol)
    reach = float(np.max(np.abs(v[:m]) / input_scale(problem, states)[:m], initial=0.0))
    if gradient is None:
        _, gradient, _ = sensitivity_gradient(problem, problem.h0, problem.theta, solver=solver, rtol=srtol, atol=satol)
    g = np.asarray(gradient, dtype=float)
    eps = np.asarray(epsilons if epsilons is not None else EPSILONS, dtype=float) / (reach or 1.0)

    def L(xx):
        return float(np.real(loss_at(problem, xx, solver=solver, rtol=srtol, atol=satol)))

    base = L(x)
    slope, curvature = float(g @ v[:m]), float(v[:m] @ np.asarray(hvp.flat, dtype=float))
    rem = np.array([abs(L(x + e * v) - base - e * slope - e * e / 2 * curvature) for e in eps])
    noise = 100 * srtol * max(abs(base), 1e-300) + 100 * satol  # a solve at rtol: a few rtol |L| of error
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log(rem[:-1] / rem[1:]) / np.log(eps[:-1] / eps[1:])
    kept = np.flatnonzero(rem > noise)
    if len(kept) >= 2:
        # The slope over the smaller steps: at the largest ones the eps^4 term can still
        # bend it (a direction along which the third derivative is small fits 3.2 over all
        # six steps of the exponential decay and 3.06 over the last four).
        kept = kept[-max(min(3, len(kept)), len(kept) - 2) :]
        fitted = float(np.polyfit(np.log(eps[kept]), np.log(rem[kept]), 1)[0])
        ok = fitted >= MIN_ORDER
    else:
        fitted, ok = float("nan"), True  # L is quadratic along v to within noise: nothing to refute
    return HessianTaylorResult(eps, rem, orders, fitted, bool(ok), noise)


__all__ = ["EPSILONS", "MIN_ORDER", "HessianTaylorResult", "taylor_test_hvp"]
