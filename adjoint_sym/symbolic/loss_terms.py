"""What a loss contributes to the adjoint, symbolically: its partial derivatives.

A loss reads the state at observation times ``t_i`` (one time, ``t1``, for a final loss):
``L = sum_i ell_i(h(t_i), theta, t_i)``.  Its partial derivatives enter the adjoint in
three places (Chen et al. 2018, eqs. 4-5 and appendix B):

* ``a`` jumps by ``d ell_i/dh`` at each ``t_i`` (for a final loss: ``a(t1) = d ell/dh``),
  and ``a_t`` by ``-d ell_i/dh . f``;
* ``dL/dtheta = a_theta(t0) + sum_i d ell_i/dtheta`` (the loss's explicit parameters);
* ``dL/dt_i = d ell_i/dh . f + d ell_i/dt`` (its explicit time).

A running cost ``int g dt`` (``running``) adds ``g`` to the Hamiltonian ``a . f + g``
(:mod:`adjoint_sym.symbolic.running_cost`): ``-dg/dh``, ``-dg/dtheta``, ``-dg/dt`` in the
adjoint's rates, ``g(t1)`` in ``dL/dt1`` and ``-g(t0)`` in ``dL/dt0``.

:func:`loss_terms` takes the loss as text, a SymPy expression, or one of the numeric loss
objects (read by their fields, so this layer need not import them).

Examples
--------
>>> from adjoint_sym.builders import lotka_volterra
>>> terms = loss_terms(lotka_volterra(), "x**2 + c*y")
>>> terms.d_h[0].T, terms.d_theta[0]
(Matrix([[2*x, c]]), (0, 0, y, 0))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import sympy as sp

from ..errors import InvalidModelError
from .parse import parse_expression

if TYPE_CHECKING:
    from .system import ODESystem

#: How the summands ``ell_i`` are known.
FORMS = ("expression", "per time", "squared errors", "given")


@dataclass(frozen=True)
class LossTerms:
    """A loss's summands and their partial derivatives.

    Attributes
    ----------
    final : bool
        True for ``L = ell(h(t1), theta, t1)``, False for a sum over observation times.
    form : {"expression", "per time", "squared errors", "given"}
        One expression read at every time; one expression per time; ``||h - hhat_i||^2``
        against data; or a function whose formula is not known (only the generic terms print).
    exprs : tuple of sympy.Expr
        The summands: one for ``"expression"``, one per time for ``"per time"``, else empty.
    times : tuple of float or None
        The observation times, when known.
    d_h : tuple of column matrices
        ``d ell/dh`` per summand (entry by entry).
    d_theta : tuple of tuples
        ``d ell/dtheta_k`` per summand, per parameter (a scalar, or a matrix shaped like it).
    d_t : tuple of sympy.Expr
        ``d ell/dt`` per summand.
    running : sympy.Expr or None
        The integrand ``g`` of a running cost ``int_{t0}^{t1} g dt``; ``None`` without one.
    """

    final: bool
    form: str
    exprs: tuple = ()
    times: tuple | None = None
    d_h: tuple = ()
    d_theta: tuple = ()
    d_t: tuple = ()
    running: sp.Expr | None = None

    @property
    def point_free(self) -> bool:
        """Whether the loss is a running cost alone (its point part is zero)."""
        return self.running is not None and self.form == "expression" and all(e == 0 for e in self.exprs)

    @classmethod
    def of(cls, system: ODESystem, exprs: Sequence[sp.Expr], *, final: bool, form: str, times=None) -> LossTerms:
        if form not in FORMS:
            raise InvalidModelError(f"form must be one of {FORMS}, got {form!r}")
        exprs = tuple(sp.sympify(e) for e in exprs)
        d_h = tuple(_d_state(system, e) for e in exprs)
        d_theta = tuple(tuple(_d_param(e, p) for p in system.params) for e in exprs)
        d_t = tuple(e.diff(system.t) for e in exprs)
        times = None if times is None else tuple(float(t) for t in times)
        return cls(final, form, exprs, times, d_h, d_theta, d_t)

    @property
    def explicit_params(self) -> list[int]:
        """Indices of the parameters the summands depend on explicitly."""
        return [
            k for k in range(len(self.d_theta[0]) if self.d_theta else 0) if any(_nonzero(d[k]) for d in self.d_theta)
        ]

    @property
    def explicit_time(self) -> bool:
        """Whether a summand depends on the time explicitly."""
        return any(_nonzero(d) for d in self.d_t)


def loss_terms(system: ODESystem, loss: object = None, *, t1: float | None = None) -> LossTerms:
    """The :class:`LossTerms` of ``loss`` on ``system``.

    Parameters
    ----------
    system : ODESystem
    loss : str, sympy.Expr, LossTerms, a loss object, or None
        Text or an expression: a final loss ``ell(h(t1), theta, t1)``.  A
        :class:`~adjoint_sym.FinalLoss`, :class:`~adjoint_sym.ObservationLoss`,
        :class:`~adjoint_sym.CallableLoss`, :class:`~adjoint_sym.IntegralLoss` or
        :class:`~adjoint_sym.SumLoss` (a running cost is read by its ``running_cost``).  ``None``:
        a final loss whose formula is not given (the derivation prints the generic terms).
    t1 : float, optional
        The end time, recorded as a final loss's one time.
    """
    terms = _terms(system, loss)
    if t1 is not None and terms.final:
        terms = replace(terms, times=(float(t1),))
    return terms


def _terms(system: ODESystem, loss: object) -> LossTerms:
    if isinstance(loss, LossTerms):
        return loss
    running = getattr(loss, "running_cost", None)
    running = running(system) if callable(running) else None
    if running is not None:  # a loss object with a running cost: its point part, then the integrand
        return replace(_terms(system, loss.point()), running=running)
    if loss is None:
        return LossTerms(final=True, form="given")
    if isinstance(loss, str):
        return LossTerms.of(
            system, [parse_expression(loss, system.symbol_table(), where="loss")], final=True, form="expression"
        )
    if isinstance(loss, sp.Basic):
        return LossTerms.of(system, [loss], final=True, form="expression")
    times = getattr(loss, "times", None)
    if getattr(loss, "targets", None) is not None:
        return LossTerms(final=False, form="squared errors", times=tuple(float(t) for t in times))
    expressions = getattr(loss, "expressions", None)
    if expressions is None:  # a callable loss: its formula is Python code
        return LossTerms(final=times is None, form="given", times=None if times is None else tuple(times))
    if times is None:  # a final loss
        return LossTerms.of(system, expressions(system, 1), final=True, form="expression")
    exprs = expressions(system, len(times))
    if len(set(exprs)) == 1:
        return LossTerms.of(system, exprs[:1], final=False, form="expression", times=times)
    return LossTerms.of(system, exprs, final=False, form="per time", times=times)


def _d_state(system: ODESystem, expr: sp.Expr) -> sp.ImmutableMatrix:
    # Plain stand-ins for h[i, 0]: SymPy's derivative by a matrix element rescans every element.
    plain = [sp.Dummy(f"h{i}", real=True) for i in range(system.n)]
    flat = expr.xreplace(dict(zip(system.flat_state, plain)))
    back = dict(zip(plain, system.flat_state))
    return sp.ImmutableMatrix([flat.diff(s).xreplace(back) for s in plain])


def _d_param(expr: sp.Expr, p: sp.Basic) -> sp.Basic:
    if isinstance(p, sp.MatrixSymbol):
        if not expr.has(p):
            return sp.ZeroMatrix(*p.shape)
        rows, cols = p.shape
        return sp.ImmutableMatrix(rows, cols, lambda i, j: expr.diff(p[i, j]))
    return expr.diff(p)


def _nonzero(value: sp.Basic) -> bool:
    if isinstance(value, sp.ZeroMatrix):
        return False
    if isinstance(value, sp.MatrixBase):
        return any(v != 0 for v in value)
    return value != 0


__all__ = ["FORMS", "LossTerms", "loss_terms"]
