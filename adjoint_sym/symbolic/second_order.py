"""The second-order adjoint: Hessian-vector products by forward-over-adjoint.

For ``dh/dt = f(h, t, theta)``, ``h(t0) = h0`` and ``L = Phi(h(t1), theta)``, the first-order
adjoint ``[a, a_theta]`` gives ``dL/d(h0, theta) = [a(t0), a_theta(t0) + Phi_theta]``
(:mod:`adjoint_sym.symbolic.augmented`).  Differentiating that whole computation along a
direction ``v = (v_h0, v_theta)`` gives ``H v``, the Hessian of ``L`` times ``v``:

* the **tangent system** (forward, the tangent-linear equation along ``v``)

  .. math:: \\dot s = f_h s + f_\\theta v_\\theta, \\quad s(t_0) = v_{h_0};

* the **second-order adjoint** (backward, the tangent of ``[a, a_theta]``): with the
  Hamiltonian ``H = a . f + g`` (``g`` a running cost, zero for point losses) the first-order
  rates are ``-dH/dh`` and ``-dH/dtheta``, and their tangents along ``(s, lambda, v_theta)``

  .. math::

      \\dot\\lambda = -f_h^T \\lambda - (a^T f)_{hh} s - (a^T f)_{h\\theta} v_\\theta, \\quad
      \\dot\\mu = -f_\\theta^T \\lambda - (a^T f)_{\\theta h} s - (a^T f)_{\\theta\\theta} v_\\theta;

* **terminal values** ``lambda(t1) = Phi_hh s(t1) + Phi_h theta v_theta``, ``mu(t1) = 0``
  (jumps of the same form at every observation time), and the result
  ``(H v)_h0 = lambda(t0)``, ``(H v)_theta = mu(t0) + Phi_theta h s(t1) + Phi_theta theta v_theta``.

The rates of ``lambda`` and ``mu`` are derived as one Jacobian-vector product
(:mod:`adjoint_sym.symbolic.jvp`) of the first-order vector-Jacobian product
(:meth:`ODESystem.vjp`): forward mode over reverse mode, at the matrix level for neural
right-hand sides.  A running cost ``g(h, t, theta)`` enters only through ``H``, so its
second derivatives join ``lambda`` and ``mu`` with no other change (Wang, Moin &
Iaccarino, SIAM J. Sci. Comput. 31 (2009); Ozyurt & Barton, SIAM J. Sci. Comput. 26 (2005)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp

from ..errors import InvalidModelError
from .augmented import Adjoint, adjoint_symbols
from .jvp import jvp
from .matrix_calculus import scale
from .notation import Notation
from .running_cost import hamiltonian_products

if TYPE_CHECKING:
    from .system import ODESystem


@dataclass(frozen=True)
class SecondOrderAdjoint:
    """The tangent system and the second-order adjoint of a system, with their symbols.

    Attributes
    ----------
    system : ODESystem
    running_cost : sympy expression or None
        ``g(h, t, theta)`` of a loss ``Phi + int g dt``; ``None`` for point losses.
    a, a_theta : the first-order adjoint symbols (as :class:`Adjoint`)
    s : column of symbols ``s_{x}``, or a column ``MatrixSymbol`` ``s_{h}``
        The tangent state ``dh/dx . v``.
    v_theta : column or tuple
        The direction over the parameters, one block per parameter shaped like it.
    lam, mu : the tangent adjoints ``lambda = Da . v`` (like ``a``) and ``mu = Da_theta . v``
        (like ``a_theta``).
    rhs_s : ``f_h s + f_theta v_theta``
    rhs_a, rhs_theta : ``-dH/dh``, ``-dH/dtheta`` (the first-order adjoint, ``g`` included)
    rhs_lam, rhs_mu : their tangents along ``(s, lambda, v_theta)``

    Examples
    --------
    >>> from adjoint_sym import ODESystem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> so = SecondOrderAdjoint.of(decay)
    >>> so.rhs_s[0], so.rhs_lam[0], so.rhs_mu[0]
    (-k*s_x - v_k*x, a_x*v_k + k*lambda_x, a_x*s_x + lambda_x*x)
    """

    system: ODESystem
    running_cost: sp.Expr | None
    a: sp.Basic
    a_theta: tuple | sp.ImmutableMatrix
    s: sp.Basic
    v_theta: tuple | sp.ImmutableMatrix
    lam: sp.Basic
    mu: tuple | sp.ImmutableMatrix
    rhs_s: sp.Basic
    rhs_a: sp.Basic
    rhs_theta: tuple | sp.ImmutableMatrix
    rhs_lam: sp.Basic
    rhs_mu: tuple | sp.ImmutableMatrix

    @classmethod
    def of(cls, system: ODESystem, *, running_cost: sp.Expr | None = None) -> SecondOrderAdjoint:
        """Derive the tangent system and the second-order adjoint of ``system``.

        ``running_cost`` is a scalar SymPy expression in the system's symbols (``None``:
        a point loss).
        """
        a, a_theta, _ = adjoint_symbols(system)
        s, v_theta, lam, mu = tangent_symbols(system)
        d_h, d_theta = hamiltonian_gradient(system, a, running_cost)
        h = system.state[0] if system.is_matrix_level else None
        moves = {**_pairs(system.h if h is None else h, s), **_pairs(system.params, v_theta)}
        rhs_s = jvp(system.rhs, moves)
        moves.update(_pairs(a, lam))
        rhs_lam = _negate(jvp(d_h, moves))
        rhs_mu = _blocks([_negate(jvp(d, moves)) for d in d_theta], system)
        rhs_a = _negate(d_h)
        rhs_theta = _blocks([_negate(d) for d in d_theta], system)
        rhs_s = sp.ImmutableMatrix(rhs_s) if isinstance(rhs_s, sp.MatrixBase) else rhs_s
        return cls(system, running_cost, a, a_theta, s, v_theta, lam, mu, rhs_s, rhs_a, rhs_theta, rhs_lam, rhs_mu)

    @property
    def first_order(self) -> Adjoint:
        """The first-order augmented adjoint (without a running cost)."""
        return Adjoint.of(self.system)

    def tangent_blocks(self) -> list[tuple[sp.Basic, sp.Basic]]:
        """``(symbol, rhs)`` of the forward tangent system."""
        return [(self.s, self.rhs_s)]

    def adjoint_blocks(self) -> list[tuple[sp.Basic, sp.Basic]]:
        """``(symbol, rhs)`` of the backward system: ``a``, ``a_theta``, ``lambda``, ``mu``."""
        return [
            (self.a, self.rhs_a),
            *zip(self.a_theta, self.rhs_theta),
            (self.lam, self.rhs_lam),
            *zip(self.mu, self.rhs_mu),
        ]

    def latex(self, *, bold_vectors: bool = False, environment: str = "align") -> str:
        """Tangent system, adjoint and second-order adjoint ODEs, terminal values, result."""
        from .second_order_render import second_order_latex

        return second_order_latex(self, bold_vectors=bold_vectors, environment=environment)

    def markdown(self) -> str:
        """The equations as Markdown sections with ``$$`` display maths."""
        from .second_order_render import second_order_markdown

        return second_order_markdown(self)

    def text(self) -> str:
        """The equations as plain text, one per line (what ``derive --order 2`` prints)."""
        from .second_order_render import second_order_text

        return second_order_text(self)

    def _repr_latex_(self) -> str:
        return "$$" + self.latex(environment="aligned") + "$$"

    def __repr__(self) -> str:
        name = self.system.name or "system"
        cost = "" if self.running_cost is None else f", running_cost={self.running_cost}"
        return f"SecondOrderAdjoint({name}, n={self.system.n}, n_params={self.system.n_params}{cost})"


def tangent_symbols(system: ODESystem) -> tuple:
    """``s`` (after the state), ``v_theta``, ``lambda`` (after ``a``) and ``mu`` (after ``a_theta``).

    Named ``s_x``, ``v_k``, ``lambda_x``, ``mu_k`` (a matrix state ``h`` gets the columns
    ``s_h`` and ``lambda_h``), each letter chosen against the user's names and the
    first-order adjoint's (:meth:`Notation.second_order_letters`), so no two print alike.
    """
    note = Notation.of(system)
    tangent, direction, lam_letter, mu_letter = (n.plain for n in note.second_order_letters(system))
    if system.is_matrix_level:
        h = system.state[0].name
        s = sp.MatrixSymbol(f"{tangent}_{h}", system.n, 1)
        lam = sp.MatrixSymbol(f"{lam_letter}_{h}", system.n, 1)
    else:
        s = sp.ImmutableMatrix([sp.Symbol(f"{tangent}_{x.name}", real=True) for x in system.state])
        lam = sp.ImmutableMatrix([sp.Symbol(f"{lam_letter}_{x.name}", real=True) for x in system.state])

    def like(prefix: str, p: sp.Basic) -> sp.Basic:
        name = f"{prefix}_{p.name}"
        return sp.MatrixSymbol(name, *p.shape) if isinstance(p, sp.MatrixSymbol) else sp.Symbol(name, real=True)

    v_theta = _blocks([like(direction, p) for p in system.params], system)
    mu = _blocks([like(mu_letter, p) for p in system.params], system)
    return s, v_theta, lam, mu


def hamiltonian_gradient(system: ODESystem, a: sp.Basic, running_cost: sp.Expr | None = None) -> tuple:
    """``dH/dh`` (shaped like the state) and ``[dH/dtheta_k]`` for ``H = a . f + g``."""
    d_h, d_theta, _ = hamiltonian_products(system, a, running_cost)
    return d_h, d_theta


def check_twice_differentiable(exprs, where: str) -> None:
    """Refuse second derivatives that contain ``DiracDelta``: the Hessian does not exist.

    ``Abs``, ``sign``, ``Max``, ``Min`` and ``Heaviside`` have derivatives that jump, so
    their second derivatives are Dirac deltas at the kinks; a trajectory that crosses one
    picks up a finite contribution no pointwise formula can give.
    """
    for expr in exprs:
        if isinstance(expr, sp.Basic) and expr.has(sp.DiracDelta):
            raise InvalidModelError(
                f"the second derivatives of {where} contain DiracDelta (from abs, sign, max, min or Heaviside): "
                "the Hessian jumps where the trajectory crosses a kink; use a smooth surrogate "
                "(softplus for max(x, 0), sqrt(x**2 + c) for abs(x))"
            )


def _pairs(variables, tangents) -> dict:
    """Variable to tangent, entry by entry for explicit columns of symbols."""
    if isinstance(variables, sp.MatrixBase):
        return dict(zip(variables, tangents))
    if isinstance(variables, sp.MatrixSymbol):
        return {variables: tangents}
    return dict(zip(variables, tangents))


def _negate(value: sp.Basic) -> sp.Basic:
    if isinstance(value, sp.MatrixBase):
        return sp.ImmutableMatrix(-value)
    if isinstance(value, sp.ZeroMatrix):
        return value
    return scale(sp.S.NegativeOne, value)


def _blocks(blocks: list, system: ODESystem) -> tuple | sp.ImmutableMatrix:
    """All-scalar parameters give a column (as :class:`Adjoint` does), else a tuple of blocks."""
    if system.params and not any(isinstance(p, sp.MatrixSymbol) for p in system.params):
        return sp.ImmutableMatrix(blocks)
    return tuple(blocks)


__all__ = ["SecondOrderAdjoint", "check_twice_differentiable", "hamiltonian_gradient", "tangent_symbols"]
