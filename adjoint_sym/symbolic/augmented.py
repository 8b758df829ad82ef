"""The augmented state and the augmented adjoint ODEs of Chen et al. (2018).

For ``dh/dt = f(h, t, theta)`` the augmented state is ``[h, theta, t]`` with
``f_aug = [f, 0, 1]``; its adjoint ``[a, a_theta, a_t]`` obeys, integrated backward from
``t1`` to ``t0``,

.. math::

    \\dot a = -a^T \\partial f/\\partial h, \\quad
    \\dot a_\\theta = -a^T \\partial f/\\partial \\theta, \\quad
    \\dot a_t = -a^T \\partial f/\\partial t,

with ``a(t1) = dL/dh(t1)``, ``a_theta(t1) = 0``, ``a_t(t1) = -dL/dt1`` (Chen et al. 2018,
eqs. 4-5, Algorithm 1 and appendix B; Pontryagin et al. 1962).

The products ``a^T df/d.`` are formed either from full Jacobians (``form="jacobian"``,
entry by entry) or as one vector-Jacobian product of the scalar ``a . f``
(``form="vjp"``, matrix level for neural right-hand sides).  The two must agree;
:func:`adjoint_sym.identities.adjoint_forms_agree` proves it per system.

With a running cost ``g`` (a loss ``Phi + int g dt``), ``a . f`` becomes the Hamiltonian
``a . f + g`` and each right-hand side gains ``-dg/d.``
(:mod:`adjoint_sym.symbolic.running_cost`): differentiated with the VJP in the ``"vjp"``
form, entry by entry in the ``"jacobian"`` form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import sympy as sp

from ..errors import InvalidModelError
from .matrix_calculus import scale
from .notation import Notation
from .running_cost import check_integrand, hamiltonian_products

if TYPE_CHECKING:  # system.py builds on this module (ODESystem.adjoint()), not the reverse
    from .system import ODESystem

FORMS = ("vjp", "jacobian")


@dataclass(frozen=True)
class AugmentedSystem:
    """The augmented dynamics ``d/dt [h, theta, t] = [f, 0, 1]``.

    Attributes
    ----------
    system : ODESystem
    state : tuple
        The blocks ``h`` (entries or the matrix symbol), each parameter, and ``t``.
    rhs : tuple
        The matching blocks ``f``, zeros shaped like each parameter, and ``1``.
    """

    system: ODESystem
    state: tuple
    rhs: tuple

    @classmethod
    def of(cls, system: ODESystem) -> AugmentedSystem:
        zeros = tuple(
            sp.ZeroMatrix(*p.shape) if isinstance(p, sp.MatrixSymbol) else sp.Integer(0) for p in system.params
        )
        if system.is_matrix_level:
            state = (system.state[0], *system.params, system.t)
            rhs = (system.rhs, *zeros, sp.Integer(1))
        else:
            state = (*system.state, *system.params, system.t)
            rhs = (*system.rhs, *zeros, sp.Integer(1))
        return cls(system, state, rhs)

    def as_system(self, time_name: str = "s") -> ODESystem:
        """The augmented dynamics as a parameter-free scalar ODE in a new time ``s``.

        The original time becomes a state ``tau`` with ``dtau/ds = 1``; matrices are
        expanded entry by entry.  Used to prove that the adjoint of this system is the
        three-block augmented adjoint.
        """
        sysm = self.system
        s = sp.Symbol(time_name, real=True)
        tau = sp.Symbol(f"tau_{{{sp.latex(sysm.t)}}}", real=True)
        entries = [*sysm.flat_state, *sysm.flat_params]
        plain = [sp.Symbol(f"z_{{{i}}}", real=True) for i in range(len(entries))]
        rename = dict(zip(entries, plain)) | {sysm.t: tau}
        f = [e.xreplace(rename) for e in sysm.explicit_rhs]
        rhs = f + [sp.Integer(0)] * sysm.n_params + [sp.Integer(1)]
        return type(self.system)(state=[*plain, tau], params=[], t=s, rhs=rhs)  # an ODESystem

    def _repr_latex_(self) -> str:
        from .render import augmented_latex

        return "$$" + augmented_latex(self) + "$$"

    def latex(self, *, bold_vectors: bool = False, environment: str = "aligned") -> str:
        from .render import augmented_latex

        return augmented_latex(self, bold_vectors=bold_vectors, environment=environment)

    def to_latex(self, *, bold_vectors: bool = False) -> str:
        """Paste-ready ``align`` block of ``d/dt [h, theta, t] = [f, 0, 1]``."""
        return self.latex(bold_vectors=bold_vectors, environment="align")


@dataclass(frozen=True)
class Adjoint:
    """The augmented adjoint of a system: symbols and right-hand sides of three blocks.

    Attributes
    ----------
    system : ODESystem
    form : {"vjp", "jacobian"}
        How ``a^T df/d.`` was formed.
    a : column matrix of symbols, or a column MatrixSymbol
        The adjoint state ``a(t) = dL/dh(t)``.
    a_theta : column matrix or tuple
        One adjoint symbol per parameter, shaped like it (``a_theta = dL/dtheta``):
        a column of symbols when every parameter is scalar, else a tuple of blocks.
    a_t : sympy.Symbol
        The time adjoint (``a_t = dL/dt``).
    rhs_a : column, shape (n, 1)
        ``-(a^T df/dh)^T``.
    rhs_theta : column matrix or tuple
        ``-(a^T df/dtheta_k)^T`` per parameter, shaped like the parameter (a column
        when every parameter is scalar, else a tuple of blocks).
    rhs_t : scalar expression (or a 1x1 matrix expression)
        ``-a^T df/dt``.
    running_cost : sympy expression or None
        The integrand ``g`` of a running cost, whose ``-dg/d.`` the right-hand sides include.

    Examples
    --------
    >>> from adjoint_sym import ODESystem
    >>> lv = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t",
    ...                             ["a*x - b*x*y", "d*x*y - c*y"])
    >>> adj = lv.adjoint()   # a parameter is named a, so the adjoint is lambda
    >>> adj.rhs_a[0]
    -d*lambda_y*y - lambda_x*(a - b*y)
    """

    system: ODESystem
    form: str
    a: sp.Basic
    a_theta: tuple | sp.ImmutableMatrix
    a_t: sp.Symbol
    rhs_a: sp.Basic
    rhs_theta: tuple | sp.ImmutableMatrix
    rhs_t: sp.Basic
    running_cost: sp.Expr | None = None

    @classmethod
    def of(cls, system: ODESystem, *, form: str = "vjp", running_cost: sp.Expr | None = None) -> Adjoint:
        """The adjoint of ``system`` (with the running cost ``g``'s terms when one is given).

        Examples
        --------
        >>> from adjoint_sym import ODESystem
        >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
        >>> x = decay.symbol_table()["x"]
        >>> Adjoint.of(decay, running_cost=x**2).rhs_a[0]
        a_x*k - 2*x
        """
        if form not in FORMS:
            raise InvalidModelError(f"form must be one of {FORMS}, got {form!r}")
        g = None if running_cost is None else check_integrand(system, running_cost)
        a, a_theta, a_t = adjoint_symbols(system)
        if form == "vjp":
            d_h, d_theta, d_t = hamiltonian_products(system, a, g)
            rhs_a = _negate(d_h)
            rhs_theta = tuple(_negate(d) for d in d_theta)
            rhs_t = _negate(d_t)
            rhs_theta = _as_column_if_scalar(rhs_theta, system)
        else:
            col = sp.ImmutableMatrix(a.as_explicit()) if isinstance(a, sp.MatrixSymbol) else a
            g_h, g_theta, g_t = _entry_gradient(system, g)
            rhs_a = sp.ImmutableMatrix(-system.jacobian_h.T * col - g_h)
            flat = list(-system.jacobian_theta.T * col - g_theta)
            rhs_theta = _as_column_if_scalar(tuple(_unflatten(flat, system.params)), system)
            rhs_t = -(system.derivative_t.T * col)[0, 0] - g_t
        return cls(system, form, a, a_theta, a_t, rhs_a, rhs_theta, rhs_t, g)

    @property
    def augmented(self) -> AugmentedSystem:
        return AugmentedSystem.of(self.system)

    def blocks(self) -> list[tuple[sp.Basic, sp.Basic]]:
        """``(symbol, rhs)`` pairs: ``a``, each ``a_theta`` block, ``a_t``."""
        return [(self.a, self.rhs_a), *zip(self.a_theta, self.rhs_theta), (self.a_t, self.rhs_t)]

    def cse(self) -> tuple[list[tuple[sp.Symbol, sp.Basic]], list[sp.Basic]]:
        """Common-subexpression elimination over all right-hand sides, matrix level included."""
        from .cse import cse

        return cse([rhs for _, rhs in self.blocks()])

    @cached_property
    def notation(self) -> Notation:
        """The names the printouts use (adjoint letter, ``theta``, ``L``, ...), chosen against the user's."""
        return Notation.of(self.system)

    @cached_property
    def latex_names(self) -> dict:
        """Symbol to LaTeX for the adjoint's symbols and user names that would print alike."""
        return adjoint_latex_names(self.system, self.a, self.a_theta, self.a_t)

    def latex(self, *, loss: object = None, bold_vectors: bool = False, environment: str = "align") -> str:
        """Paper-ready LaTeX of the derivation: dynamics, loss, augmented state, adjoint ODEs,
        terminal values (and jumps at observation times), the gradient with the loss's explicit terms.

        ``loss`` (text, a SymPy expression, or a :class:`~adjoint_sym.FinalLoss` /
        :class:`~adjoint_sym.ObservationLoss`) fills in its partial derivatives; without
        it the terms print generically (``dL/dtheta = a_theta(t0) + d ell/dtheta``).
        ``environment="align"`` pastes into a paper; ``"aligned"`` nests inside ``$$``.
        """
        from .render import adjoint_latex

        return adjoint_latex(self, loss=loss, bold_vectors=bold_vectors, environment=environment)

    def to_latex(self, *, loss: object = None, bold_vectors: bool = False) -> str:
        """Paste-ready ``align`` block of the whole derivation (see :meth:`latex`)."""
        return self.latex(loss=loss, bold_vectors=bold_vectors, environment="align")

    def markdown(self, *, loss: object = None) -> str:
        """The derivation as Markdown: a heading and ``$$`` display maths per section."""
        from .render import adjoint_markdown

        return adjoint_markdown(self, loss=loss)

    def text(self, *, loss: object = None) -> str:
        """The derivation as plain text (no LaTeX), one equation per line."""
        from .text import derivation_text

        return derivation_text(self, loss)

    def _repr_latex_(self) -> str:
        return "$$" + self.latex(environment="aligned") + "$$"

    def __repr__(self) -> str:
        name = self.system.name or "system"
        cost = "" if self.running_cost is None else f", running_cost={self.running_cost}"
        return f"Adjoint({name}, form={self.form!r}, n={self.system.n}, n_params={self.system.n_params}{cost})"


def adjoint_symbols(system: ODESystem) -> tuple[sp.Basic, tuple | sp.ImmutableMatrix, sp.Symbol]:
    """The adjoint symbols ``a``, ``a_theta`` (one per parameter) and ``a_t``.

    Named after what they are the adjoint of (``a_x`` for the state ``x``, ``a_W`` for a
    parameter ``W``, ``a_t`` for the time; a matrix state gets the column ``a``), with
    the letter chosen against the user's names (:class:`~adjoint_sym.symbolic.notation.Notation`:
    ``lambda`` when ``a`` or a name like ``a_x`` is taken).  Names are plain text; the
    LaTeX of each is in :attr:`Adjoint.latex_names`.
    """
    note = Notation.of(system)
    if system.is_matrix_level:
        a = sp.MatrixSymbol(note.adjoint.plain, system.n, 1)
    else:
        a = sp.ImmutableMatrix([sp.Symbol(note.adjoint_of(s).plain, real=True) for s in system.state])
    a_theta = tuple(
        sp.MatrixSymbol(note.adjoint_of(p).plain, *p.shape)
        if isinstance(p, sp.MatrixSymbol)
        else sp.Symbol(note.adjoint_of(p).plain, real=True)
        for p in system.params
    )
    a_t = sp.Symbol(note.adjoint_time.plain, real=True)
    return a, _as_column_if_scalar(a_theta, system), a_t


def adjoint_latex_names(system: ODESystem, a: sp.Basic, a_theta, a_t: sp.Symbol) -> dict:
    """LaTeX for the adjoint's symbols (``a_{S_{1}}``, not SymPy's ``a_{S 1}``) and clashing user names."""
    note = Notation.of(system)
    names = dict(note.latex_names)
    if system.is_matrix_level:
        names[a] = note.adjoint.latex
    else:
        names.update({sym: note.adjoint_of(s).latex for sym, s in zip(a, system.state)})
    names.update({sym: note.adjoint_of(p).latex for sym, p in zip(a_theta, system.params)})
    names[a_t] = note.adjoint_time.latex
    return names


def _entry_gradient(system: ODESystem, g: sp.Expr | None) -> tuple:
    """``(g_h, g_theta, g_t)`` entry by entry (columns over the flat state and parameters)."""
    if g is None:
        return sp.zeros(system.n, 1), sp.zeros(system.n_params, 1), sp.Integer(0)
    g_h = sp.ImmutableMatrix([g.diff(x) for x in system.flat_state])
    g_theta = sp.ImmutableMatrix([g.diff(q) for q in system.flat_params]) if system.n_params else sp.zeros(0, 1)
    return g_h, g_theta, g.diff(system.t)


def _as_column_if_scalar(blocks: tuple, system: ODESystem) -> tuple | sp.ImmutableMatrix:
    """All-scalar parameters give a column matrix (iterates like the tuple)."""
    if system.params and not any(isinstance(p, sp.MatrixSymbol) for p in system.params):
        return sp.ImmutableMatrix(list(blocks))
    return tuple(blocks)


def _negate(value: sp.Basic) -> sp.Basic:
    if isinstance(value, sp.MatrixBase):
        return sp.ImmutableMatrix(-value)
    if isinstance(value, sp.ZeroMatrix):
        return value
    return scale(sp.S.NegativeOne, value)


def _unflatten(flat: list[sp.Basic], params: tuple) -> list[sp.Basic]:
    out, k = [], 0
    for p in params:
        if isinstance(p, sp.MatrixSymbol):
            rows, cols = p.shape
            out.append(sp.ImmutableMatrix(rows, cols, flat[k : k + rows * cols]))
            k += rows * cols
        else:
            out.append(flat[k])
            k += 1
    return out
