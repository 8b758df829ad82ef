"""Deliberately wrong second-order adjoints: the library's HVP sweep with one planted bug.

:func:`handwritten_hvp` runs :func:`adjoint_sym.adjoint.second_order.adjoint_hvp` as a plain
HVP function; with ``mutation=`` it plants a mistake the way a person makes it, through a
:class:`~adjoint_sym.adjoint.second_order.SecondOrderProducts` subclass:

============================  ==============================================================
mutation                      the bug
============================  ==============================================================
``flipped_tangent_adjoint``   ``d[lambda, mu]/dt = +(...)``: the tangent adjoint's sign flipped
``dropped_second_derivative`` ``dlambda/dt = -f_h^T lambda``, ``dmu/dt = -f_theta^T lambda``: the
                              ``(a^T f)_hh s``, ``(a^T f)_h theta v`` ... terms left out (a
                              Gauss-Newton-like product)
``missing_forward_tangent``   ``s = 0``: the state's tangent never integrated (only
                              ``v_theta`` enters)
``dropped_loss_curvature``    ``lambda`` jumps by ``0`` instead of ``Phi_hh s + Phi_h theta v``
============================  ==============================================================

Examples
--------
>>> from adjoint_sym import FinalLoss, ODESystem, Problem
>>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
>>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
>>> round(handwritten_hvp(prob, [0.0, 1.0]).dparams["k"], 8)  # T^2 e^{-k T}
0.60653066
>>> round(hvp_mutant("dropped_second_derivative")(prob, [0.0, 1.0]).dparams["k"], 8)
0.0
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..adjoint.second_order import SecondOrderProducts, adjoint_hvp
from ..adjoint.vjp import SymbolicVJP
from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.second_order import HessianVectorProduct
from ..symbolic.system import ODESystem

HVP_MUTATIONS = (
    "flipped_tangent_adjoint",
    "dropped_second_derivative",
    "missing_forward_tangent",
    "dropped_loss_curvature",
)


class MutatedProducts(SecondOrderProducts):
    """The symbolic second-order rates with one planted mistake (see the module docstring)."""

    def __init__(self, system: ODESystem, mutation: str, running_cost=None) -> None:
        super().__init__(system, running_cost)
        self.mutation = mutation
        self.first_order = SymbolicVJP(system)

    def initial_tangent(self, v_h0):
        if self.mutation == "missing_forward_tangent":
            return np.zeros_like(np.asarray(v_h0, dtype=float))
        return super().initial_tangent(v_h0)

    def tangent_rate(self, t, z, theta, v):
        out = np.array(super().tangent_rate(t, z, theta, v))
        if self.mutation == "missing_forward_tangent":
            out[self.n :] = 0.0
        return out

    def adjoint_rate(self, t, z, y, theta, v):
        n, p = self.n, self.n_params
        out = np.array(super().adjoint_rate(t, z, y, theta, v))
        tangent = np.r_[n : 2 * n, 2 * n + p : 2 * n + 2 * p]  # the lambda and mu blocks
        if self.mutation == "flipped_tangent_adjoint":
            out[tangent] = -out[tangent]
        elif self.mutation == "dropped_second_derivative":  # only lambda^T f_h, lambda^T f_theta remain
            products = self.first_order.products(t, z[:n], y[n : 2 * n], theta)
            out[n : 2 * n] = -products[:n]
            out[2 * n + p : 2 * n + 2 * p] = -products[n : n + p]
        return out

    def loss_curvature(self, problem, states, tangents, v):
        jumps, extra = super().loss_curvature(problem, states, tangents, v)
        if self.mutation == "dropped_loss_curvature":
            return np.zeros_like(jumps), np.zeros_like(extra)
        return jumps, extra


def handwritten_hvp(
    problem: Problem, v, *, mutation: str | None = None, rtol: float = 1e-10, atol: float = 1e-12
) -> HessianVectorProduct:
    """``H v`` by the second-order adjoint (DOP853 at ``rtol``), broken on purpose by ``mutation``."""
    if mutation is not None and mutation not in HVP_MUTATIONS:
        raise InvalidModelError(f"unknown HVP mutation {mutation!r}; choose one of {HVP_MUTATIONS}")
    products = None if mutation is None else MutatedProducts(problem.system, mutation, problem.running_cost)
    return adjoint_hvp(problem, v, solver="DOP853", rtol=rtol, atol=atol, products=products)


def hvp_mutant(mutation: str) -> Callable[[Problem, np.ndarray], HessianVectorProduct]:
    """The HVP function broken by ``mutation`` (for :func:`adjoint_sym.testing.hessian.check_hvp_function`)."""
    if mutation not in HVP_MUTATIONS:
        raise InvalidModelError(f"unknown HVP mutation {mutation!r}; choose one of {HVP_MUTATIONS}")

    def hvp_function(problem: Problem, v) -> HessianVectorProduct:
        return handwritten_hvp(problem, v, mutation=mutation)

    hvp_function.__name__ = f"hvp_mutant_{mutation}"
    return hvp_function


__all__ = ["HVP_MUTATIONS", "MutatedProducts", "handwritten_hvp", "hvp_mutant"]
