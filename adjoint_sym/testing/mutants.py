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

Two more break a running cost ``int g dt`` (:data:`RUNNING_COST_MUTATIONS`; on a point
loss they are the correct adjoint, so they are tested on losses that have one):

==========================  =============================================================
``dropped_cost_h``          ``da/dt = -a^T f_h``: the running cost's ``-dg/dh`` left out
``missing_cost_end``        ``g(h(t1), t1)`` left out of the loss's motion at ``t1``, so
                            ``dL/dt1`` misses it (and ``a_t``, hence ``dL/dt0``, too)
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

import dataclasses
from collections.abc import Callable

import numpy as np

from ..adjoint.backward import gradient_fields, sweep
from ..adjoint.gradient import observe
from ..adjoint.methods import InterpolatingAdjoint
from ..adjoint.running_cost import HamiltonianVJP, running_cost_kernels
from ..adjoint.vjp import SymbolicVJP, VectorJacobianProduct
from ..errors import InvalidModelError
from ..numeric.problem import Problem
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

#: Mutations of a running cost's terms (the correct adjoint on point losses).
RUNNING_COST_MUTATIONS = ("dropped_cost_h", "missing_cost_end")

#: Mutations of how ``a^T df/dx`` is formed; the others break the jumps.
_PRODUCT_MUTATIONS = ("flipped_sign", "missing_transpose", "dropped_a_theta", "dropped_a_t", "theta_forward")
_ALL = MUTATIONS + RUNNING_COST_MUTATIONS


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


class DroppedCostGradient(HamiltonianVJP):
    """The Hamiltonian's products with the running cost's ``dg/dh`` left out (``da/dt = -a^T f_h``)."""

    def cost_gradient(self, t, h, theta):
        out = np.array(super().cost_gradient(t, h, theta))
        out[: self.n] = 0.0
        return out

    def cost_gradient_batched(self, ts, hs, theta):
        out = np.array(super().cost_gradient_batched(ts, hs, theta))
        out[: self.n] = 0.0
        return out


def _dropped_cost_h(problem: Problem):
    def form(system: ODESystem) -> VectorJacobianProduct:
        if problem.running_cost is None:
            return SymbolicVJP(system)
        return DroppedCostGradient(SymbolicVJP(system), running_cost_kernels(system, problem.running_cost))

    return form


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
    if mutation is not None and mutation not in _ALL:
        raise InvalidModelError(f"unknown mutation {mutation!r}; choose one of {_ALL}")
    fwd, observations = observe(problem, "DOP853", rtol, atol, dense=True)
    if mutation == "missing_cost_end" and problem.running_cost is not None:
        motion = observations.motion.copy()
        motion[-1] -= problem.running_value(observations.times[-1], observations.states[-1])
        observations = dataclasses.replace(observations, motion=motion)
    if mutation in _PRODUCT_MUTATIONS:
        method = InterpolatingAdjoint(vjp=lambda system: MutatedVJP(system, mutation))
    elif mutation == "dropped_cost_h":
        method = InterpolatingAdjoint(vjp=_dropped_cost_h(problem))
    else:
        method = InterpolatingAdjoint()
    engine = method.segments(problem, fwd, "DOP853", rtol, atol)
    final = sweep(problem, observations, engine, jumps=_mutated_jumps(observations.loss.d_states, mutation))
    return gradient_fields(problem, observations, final)


def mutant(mutation: str) -> Callable[[Problem], dict]:
    """The hand-written adjoint broken by ``mutation`` (a gradient function)."""
    if mutation not in _ALL:
        raise InvalidModelError(f"unknown mutation {mutation!r}; choose one of {_ALL}")

    def gradient_function(problem: Problem) -> dict:
        return handwritten_adjoint(problem, mutation=mutation)

    gradient_function.__name__ = f"mutant_{mutation}"
    return gradient_function


__all__ = ["MUTATIONS", "RUNNING_COST_MUTATIONS", "DroppedCostGradient", "MutatedVJP", "handwritten_adjoint", "mutant"]
