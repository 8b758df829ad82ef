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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp

from ..errors import InvalidModelError
from .matrix_calculus import scale

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

    Examples
    --------
    >>> from adjoint_sym import ODESystem
    >>> lv = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t",
    ...                             ["a*x - b*x*y", "d*x*y - c*y"])
    >>> adj = lv.adjoint()
    >>> adj.rhs_a[0]
    -a_{x}*(a - b*y) - a_{y}*d*y
    """

    system: ODESystem
    form: str
    a: sp.Basic
    a_theta: tuple | sp.ImmutableMatrix
    a_t: sp.Symbol
    rhs_a: sp.Basic
    rhs_theta: tuple | sp.ImmutableMatrix
    rhs_t: sp.Basic

    @classmethod
    def of(cls, system: ODESystem, *, form: str = "vjp") -> Adjoint:
        if form not in FORMS:
            raise InvalidModelError(f"form must be one of {FORMS}, got {form!r}")
        a, a_theta, a_t = adjoint_symbols(system)
        if form == "vjp":
            d_h, d_theta, d_t = system.vjp(a)
            rhs_a = _negate(d_h)
            rhs_theta = tuple(_negate(d) for d in d_theta)
            rhs_t = _negate(d_t)
            rhs_theta = _as_column_if_scalar(rhs_theta, system)
        else:
            col = sp.ImmutableMatrix(a.as_explicit()) if isinstance(a, sp.MatrixSymbol) else a
            rhs_a = sp.ImmutableMatrix(-system.jacobian_h.T * col)
            flat = list(-system.jacobian_theta.T * col)
            rhs_theta = _as_column_if_scalar(tuple(_unflatten(flat, system.params)), system)
            rhs_t = -(system.derivative_t.T * col)[0, 0]
        return cls(system, form, a, a_theta, a_t, rhs_a, rhs_theta, rhs_t)

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

    def latex(self, *, bold_vectors: bool = False, environment: str = "align") -> str:
        """Paper-ready LaTeX: augmented dynamics and adjoint ODEs in one environment.

        ``environment="align"`` pastes into a paper; ``"aligned"`` nests inside ``$$``.
        """
        from .render import adjoint_latex

        return adjoint_latex(self, bold_vectors=bold_vectors, environment=environment)

    def to_latex(self, *, bold_vectors: bool = False) -> str:
        """Paste-ready ``align`` block: augmented dynamics, adjoint ODEs, terminal values."""
        return self.latex(bold_vectors=bold_vectors, environment="align")

    def markdown(self) -> str:
        """The equations as Markdown with ``$$`` display maths."""
        from .render import adjoint_markdown

        return adjoint_markdown(self)

    def _repr_latex_(self) -> str:
        return "$$" + self.latex(environment="aligned") + "$$"

    def __repr__(self) -> str:
        name = self.system.name or "system"
        return f"Adjoint({name}, form={self.form!r}, n={self.system.n}, n_params={self.system.n_params})"


def adjoint_symbols(system: ODESystem) -> tuple[sp.Basic, tuple | sp.ImmutableMatrix, sp.Symbol]:
    """The adjoint symbols ``a``, ``a_theta`` (one per parameter) and ``a_t``.

    Named ``a_{x}`` after the state ``x``, ``a_{W}`` after a parameter ``W``,
    ``a_{t}`` after the time; a matrix state ``h`` gets the column ``a``.
    """
    taken = {str(s) for s in system.symbol_table()}
    if system.is_matrix_level:
        name = "a" if "a" not in taken else f"a_{{{sp.latex(system.state[0])}}}"
        a = sp.MatrixSymbol(name, system.n, 1)
    else:
        a = sp.ImmutableMatrix([sp.Symbol(f"a_{{{sp.latex(s)}}}", real=True) for s in system.state])
    a_theta = tuple(
        sp.MatrixSymbol(f"a_{{{sp.latex(p)}}}", *p.shape)
        if isinstance(p, sp.MatrixSymbol)
        else sp.Symbol(f"a_{{{sp.latex(p)}}}", real=True)
        for p in system.params
    )
    a_t = sp.Symbol(f"a_{{{sp.latex(system.t)}}}", real=True)
    return a, _as_column_if_scalar(a_theta, system), a_t


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
