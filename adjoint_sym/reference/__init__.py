"""Reference gradients, independent of the adjoint code path.

Nothing here imports :mod:`adjoint_sym.adjoint`: a check
that shares code with what it checks proves nothing.

Each reference is a function ``(problem, *, solver, rtol, atol, **options) -> Gradient``
registered in :data:`REFERENCES` under its method name:

=====================  ==============================================================
method                 how
=====================  ==============================================================
``forward``            forward sensitivity equations with entry-wise Jacobians
``complex-step``       ``Im L(x + i eps) / eps`` through complex solves (analytic f)
``finite-difference``  central differences (Richardson-extrapolated), tight solves
=====================  ==============================================================

Each reports the accuracy it claims in ``stats["accuracy"]`` (a relative accuracy, the
``tau`` of the checker's tolerance model) and reads the loss from the value-only kernel,
differentiating it itself: none shares the loss-gradient kernel or the vector-Jacobian
products of the adjoint.  :func:`~adjoint_sym.reference.arbiter.arbiter_gradient`
(high-precision Taylor series, small problems only, not registered) certifies them
without double-precision step control; :func:`~adjoint_sym.reference.taylor.taylor_test`
checks any gradient on its own.
"""

from __future__ import annotations

from collections.abc import Callable

from .arbiter import arbiter_gradient
from .complex_step import complex_step_gradient
from .finite_difference import finite_difference_gradient
from .forward import forward_gradient
from .taylor import TaylorResult, taylor_test

REFERENCES: dict[str, Callable] = {
    "forward": forward_gradient,
    "complex-step": complex_step_gradient,
    "finite-difference": finite_difference_gradient,
}

__all__ = [
    "REFERENCES",
    "TaylorResult",
    "arbiter_gradient",
    "complex_step_gradient",
    "finite_difference_gradient",
    "forward_gradient",
    "taylor_test",
]
