"""A running cost ``g(h, theta, t)`` in the adjoint: the Hamiltonian ``a . f + g``.

For ``L = Phi(h(t1)) + int_{t0}^{t1} g(h, theta, t) dt`` the adjoint equations are those of
the point loss with ``a . f`` replaced by the Hamiltonian ``H = a . f + g`` (Pontryagin
et al. 1962; for neural ODEs, the kinetic-energy and Jacobian regularisers of Finlay
et al. 2020 are such costs):

.. math::

    \\dot a = -\\partial H/\\partial h = -a^T f_h - g_h, \\quad
    \\dot a_\\theta = -a^T f_\\theta - g_\\theta, \\quad
    \\dot a_t = -a^T f_t - g_t,

with the terminal values of the point loss except ``a_t(t1) = -(Phi_h . f + g)(t1)``, so
that ``dL/dt0 = a_t(t0) = -a(t0) . f(h0, t0) - g(h0, t0)`` and ``dL/dt1 = Phi_h . f +
Phi_t + g(h(t1), t1)``.  :func:`running_cost_gradient` differentiates ``g`` once, in reverse
mode at the matrix level (:mod:`adjoint_sym.symbolic.matrix_calculus`), into the blocks
:meth:`ODESystem.vjp` returns for ``a . f``, so the two add block by block.

Examples
--------
>>> from adjoint_sym import ODESystem
>>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
>>> g_h, g_theta, g_t = running_cost_gradient(decay, decay.symbol_table()["x"] ** 2)
>>> g_h, g_theta, g_t
(Matrix([[2*x]]), [0], 0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import InvalidModelError
from .matrix_calculus import vjp

if TYPE_CHECKING:
    from .system import ODESystem


def check_integrand(system: ODESystem, g: object, where: str = "running_cost") -> sp.Expr:
    """``g`` as a scalar SymPy expression in the system's symbols, or a clear error."""
    try:
        g = sp.sympify(g, strict=True)
    except sp.SympifyError:
        raise InvalidModelError(f"{where}: {g!r} is not a SymPy expression") from None
    if isinstance(g, sp.MatrixBase | sp.MatrixExpr) and not isinstance(g, MatrixElement):
        raise InvalidModelError(f"{where} must be a scalar expression, got a matrix")
    allowed = set(system.symbol_table().values())
    for sym in g.free_symbols:
        base = sym.args[0] if isinstance(sym, MatrixElement) else sym
        if base not in allowed:
            raise InvalidModelError(f"{where}: unknown symbol {str(base)!r}; use the system's state, params, time")
    return g


def running_cost_gradient(system: ODESystem, g: sp.Expr) -> tuple[sp.Basic, list[sp.Basic], sp.Basic]:
    """``(g_h, [g_theta_k], g_t)``: shaped as :meth:`ODESystem.vjp`'s ``(a^T f_h, [a^T f_theta_k], a^T f_t)``.

    ``g_h`` is a column like ``h`` (a matrix expression at matrix level), each
    ``g_theta_k`` has its parameter's shape.
    """
    g = check_integrand(system, g)
    wrt = [*system.state, *system.params, system.t]
    grads = vjp(sp.ImmutableMatrix([[g]]), sp.ImmutableMatrix([[1]]), wrt)
    if system.is_matrix_level:
        g_h = grads[system.state[0]]
    else:
        g_h = sp.ImmutableMatrix([grads[x] for x in system.state])
    return _shaped(g_h, system.state[0]), [_shaped(grads[p], p) for p in system.params], grads[system.t]


def _shaped(value: sp.Basic, like: sp.Basic) -> sp.Basic:
    """A zero derivative by a matrix symbol as the zero matrix of its shape (kernels lay blocks out by shape)."""
    if isinstance(like, sp.MatrixSymbol) and not isinstance(value, sp.MatrixBase | sp.MatrixExpr):
        if value != 0:  # pragma: no cover - reverse mode returns a block shaped like its variable
            raise AssertionError(f"a scalar derivative {value} by the matrix {like}")
        return sp.ZeroMatrix(*like.shape)
    return value


def plus(x: sp.Basic, y: sp.Basic) -> sp.Basic:
    """``x + y`` for scalars, explicit matrices and matrix expressions, zeros dropped."""
    if y == 0 or isinstance(y, sp.ZeroMatrix):
        return x
    if x == 0 or isinstance(x, sp.ZeroMatrix):
        return y
    if isinstance(x, sp.MatrixBase) and isinstance(y, sp.MatrixBase):
        return sp.ImmutableMatrix(x + y)
    if isinstance(x, sp.MatrixBase | sp.MatrixExpr):
        return sp.MatAdd(x, y)
    return x + y


def hamiltonian_products(system: ODESystem, a: sp.Basic, g: sp.Expr | None) -> tuple:
    """``(H_h, [H_theta_k], H_t)`` for ``H = a . f + g`` (``g = None``: ``a . f`` alone)."""
    d_h, d_theta, d_t = system.vjp(a)
    if g is None:
        return d_h, list(d_theta), d_t
    g_h, g_theta, g_t = running_cost_gradient(system, g)
    return plus(d_h, g_h), [plus(d, e) for d, e in zip(d_theta, g_theta)], plus(d_t, g_t)


__all__ = ["check_integrand", "hamiltonian_products", "plus", "running_cost_gradient"]
