"""The method under test: continuous adjoints (Chen et al. 2018).

The adjoint's kernels, the backward sweep over the observation segments, and the
variants that differ in how ``h(t)`` is recovered on the way back (interpolating,
quadrature, backsolve), plus the opt-in compiled fast backend.  Imports the numeric and
symbolic layers; nothing in :mod:`adjoint_sym.reference` may import this package.
"""

from .gradient import ADJOINT_METHODS, adjoint_gradient, resolve_method

__all__ = ["ADJOINT_METHODS", "adjoint_gradient", "resolve_method"]
