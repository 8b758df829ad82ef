"""Reference gradients, independent of the adjoint code path.

Nothing here imports :mod:`adjoint_sym.adjoint` or :mod:`adjoint_sym.gradients`: a check
that shares code with what it checks proves nothing.

Each reference is a function ``(problem, *, solver, rtol, atol, **options) -> Gradient``
registered in :data:`REFERENCES` under its method name.
"""

from __future__ import annotations

from collections.abc import Callable

REFERENCES: dict[str, Callable] = {}

__all__ = ["REFERENCES"]
