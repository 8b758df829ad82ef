"""Deliberately wrong adjoints (mutants): the library's own backward sweep with a planted bug.

The property suite is only as good as its power to fail.  :func:`handwritten_adjoint`
runs the library's interpolating adjoint (``solve_ivp`` forward with dense output, then
the one backward sweep of :mod:`adjoint_sym.adjoint.backward`, Chen et al. 2018, eq. 4, 5
and appendix B) as a plain gradient function; with ``mutation=`` it plants one bug the
way a person writes it, either in how ``a^T df/dx`` is formed (a
:class:`~adjoint_sym.adjoint.vjp.VectorJacobianProduct` that is wrong) or in the jumps
at the observation times:

==========================  =============================================================
mutation                    the bug
==========================  =============================================================
``flipped_sign``            ``da/dt = +a^T df/dh``
``missing_transpose``       ``da/dt = -(df/dh) a``: ``J`` where ``J^T`` belongs
``dropped_a_theta``         ``da_theta/dt = 0``: only the loss's explicit ``dL/dtheta``
``dropped_a_t``             ``da_t/dt = 0``: ``dL/dt0`` misses ``-int a^T df/dt``
``wrong_terminal``          ``a(t1) = -dL/dh(t1)`` (the sign the source note suggests)
``missing_jump``            only the last observation's ``dL/dh(t_N)`` enters ``a``
``theta_forward``           ``a_theta`` integrated forward from ``t0`` (``da_theta/dt =
                            -a^T df/dtheta`` from 0 at ``t0`` to ``t_N``): the wrong sign
``off_by_one``              observation ``i``'s jump applied at ``t_{i+1}``
==========================  =============================================================

Examples
--------
>>> from adjoint_sym import FinalLoss, ODESystem, Problem
>>> sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
>>> prob = Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x"))
>>> round(handwritten_adjoint(prob)["dparams"]["a"], 8)  # dL/da = -t1 x0 exp(-a t1)
-0.36787944
>>> round(mutant("flipped_sign")(prob)["dparams"]["a"], 8)  # -sinh(1)
-1.17520119
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..adjoint.backward import Observations, gradient_fields, sweep
from ..adjoint.methods import InterpolatingAdjoint
from ..adjoint.vjp import SymbolicVJP, VectorJacobianProduct
from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.solve import forward
from ..symbolic.system import ODESystem

MUTATIONS = (
    "flipped_sign",
    "missing_transpose",
    "dropped_a_theta",
    "dropped_a_t",
    "wrong_terminal",
    "missing_jump",
    "theta_forward",
    "off_by_one",
)

#: Mutations of how ``a^T df/dx`` is formed; the others break the jumps.
_PRODUCT_MUTATIONS = ("flipped_sign", "missing_transpose", "dropped_a_theta", "dropped_a_t", "theta_forward")


class MutatedVJP(VectorJacobianProduct):
    """The symbolic VJP with one planted mistake in its blocks ``[a^T f_h, a^T f_theta, a^T f_t]``.

    Only :meth:`products` is defined, so every rate the engines derive from it (the
    interpolating, backsolve and quadrature forms) carries the mistake.
    """

    def __init__(self, system: ODESystem, mutation: str) -> None:
        super().__init__(system)
        self.correct = SymbolicVJP(system)
        self.mutation = mutation

    def products(self, t, h, a, theta):
        n, p = self.n, self.n_params
        out = np.array(self.correct.products(t, h, a, theta))
        if self.mutation == "flipped_sign":
            out[:n] = -out[:n]
        elif self.mutation == "missing_transpose":
            out[:n] = self.correct.kernels.jac_h_from_vjp(t, h, theta) @ a  # f_h a instead of a^T f_h
        elif self.mutation == "dropped_a_theta":
            out[n : n + p] = 0.0
        elif self.mutation == "theta_forward":  # forward from t0 accumulates the integral's negative
            out[n : n + p] = -out[n : n + p]
        elif self.mutation == "dropped_a_t":
            out[n + p] = 0.0
        return out


def _mutated_jumps(d_states: np.ndarray, mutation: str | None) -> np.ndarray:
    jumps = np.array(d_states, dtype=float, copy=True)
    if mutation == "missing_jump":
        jumps[:-1] = 0.0
    elif mutation == "off_by_one":  # observation i's jump lands at t_{i+1} (the last stays)
        shifted = np.zeros_like(jumps)
        shifted[1:] = jumps[:-1]
        shifted[-1] += jumps[-1]
        jumps = shifted
    elif mutation == "wrong_terminal":
        jumps[-1] = -jumps[-1]
    return jumps


def handwritten_adjoint(
    problem: Problem, *, mutation: str | None = None, rtol: float = 1e-10, atol: float = 1e-12
) -> dict:
    """``loss``, ``dh0``, ``dparams``, ``dt0``, ``dt1``, ``dtimes`` by the interpolating adjoint.

    Parameters
    ----------
    problem : Problem
    mutation : str, optional
        One of :data:`MUTATIONS` to break the adjoint on purpose; ``None`` is correct.
    rtol, atol : float
        Tolerances of the forward and backward solves (DOP853).

    Returns
    -------
    dict
        The mapping :func:`adjoint_sym.testing.check_gradient_function` expects.
    """
    if mutation is not None and mutation not in MUTATIONS:
        raise InvalidModelError(f"unknown mutation {mutation!r}; choose one of {MUTATIONS}")
    fwd = forward(problem, solver="DOP853", rtol=rtol, atol=atol)
    observations = Observations.of(problem, fwd.at(problem.times))
    if mutation in _PRODUCT_MUTATIONS:
        method = InterpolatingAdjoint(vjp=lambda system: MutatedVJP(system, mutation))
    else:
        method = InterpolatingAdjoint()
    engine = method.segments(problem, fwd, "DOP853", rtol, atol)
    final = sweep(problem, observations, engine, jumps=_mutated_jumps(observations.loss.d_states, mutation))
    return gradient_fields(problem, observations, final)


def mutant(mutation: str) -> Callable[[Problem], dict]:
    """The hand-written adjoint broken by ``mutation`` (a gradient function)."""
    if mutation not in MUTATIONS:
        raise InvalidModelError(f"unknown mutation {mutation!r}; choose one of {MUTATIONS}")

    def gradient_function(problem: Problem) -> dict:
        return handwritten_adjoint(problem, mutation=mutation)

    gradient_function.__name__ = f"mutant_{mutation}"
    return gradient_function


__all__ = ["MUTATIONS", "MutatedVJP", "handwritten_adjoint", "mutant"]
