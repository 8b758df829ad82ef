"""The method under test: continuous adjoints (Chen et al. 2018).

One backward sweep over the observation segments (:func:`sweep`), engines that differ
in how ``h(t)`` is recovered on the way back (:class:`InterpolatingAdjoint`,
:class:`QuadratureAdjoint`, :class:`BacksolveAdjoint`, and the compiled fast backend),
and the forms of ``a^T df/dx`` (:class:`SymbolicVJP`, :class:`JacobianVJP`; under a running
cost each is wrapped in :class:`HamiltonianVJP`, the products of ``a . f + g``).  Imports the
numeric and symbolic layers; nothing in :mod:`adjoint_sym.reference` may import this package.
"""

from .backward import AdjointState, Crossing, Observations, Segments, gradient_fields, sweep
from .gradient import ADJOINT_METHODS, adjoint_gradient, adjoint_method, resolve_method
from .methods import AdjointMethod, BacksolveAdjoint, InterpolatingAdjoint, QuadratureAdjoint
from .running_cost import HamiltonianVJP
from .vjp import JacobianVJP, SymbolicVJP, VectorJacobianProduct

__all__ = [
    "ADJOINT_METHODS",
    "AdjointMethod",
    "AdjointState",
    "BacksolveAdjoint",
    "Crossing",
    "HamiltonianVJP",
    "InterpolatingAdjoint",
    "JacobianVJP",
    "Observations",
    "QuadratureAdjoint",
    "Segments",
    "SymbolicVJP",
    "VectorJacobianProduct",
    "adjoint_gradient",
    "adjoint_method",
    "gradient_fields",
    "resolve_method",
    "sweep",
]
