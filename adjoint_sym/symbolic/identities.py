"""Symbolic identities of the adjoint method, each returned as a :class:`Proof`.

A proof is a residual that must vanish, simplified by SymPy; ``holds`` says whether it
did.  Matrix-level systems are expanded entry by entry here, so keep them small.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .augmented import Adjoint, AugmentedSystem, adjoint_symbols
from .system import ODESystem


@dataclass(frozen=True)
class Proof:
    """A claimed identity, the residual that must vanish, and whether it does."""

    statement: str
    residual: sp.Basic
    holds: bool

    def __bool__(self) -> bool:
        return self.holds

    def __repr__(self) -> str:
        verdict = "holds" if self.holds else f"fails, residual {self.residual}"
        return f"Proof({self.statement!r}: {verdict})"

    def _repr_latex_(self) -> str:
        text = self.statement
        for ch in "&%$#_{}":  # the statement is prose: escape TeX's specials in text mode
            text = text.replace(ch, "\\" + ch)
        text = text.replace("^", r"\^{}")
        tail = r"\; \checkmark" if self.holds else rf"\; {sp.latex(self.residual)} \neq 0 \; \times"
        return rf"$\text{{{text}}} {tail}$"


def _explicit(value: sp.Basic) -> sp.ImmutableMatrix:
    if isinstance(value, sp.MatrixBase):
        return sp.ImmutableMatrix(value)
    if isinstance(value, sp.MatrixExpr):
        return sp.ImmutableMatrix(value.as_explicit())
    return sp.ImmutableMatrix([[value]])


def _flat_column(blocks) -> sp.ImmutableMatrix:
    entries: list[sp.Basic] = []
    for b in blocks:
        entries.extend(_explicit(b))
    return sp.ImmutableMatrix(entries)


def _is_zero(value: sp.Basic) -> bool:
    if isinstance(value, sp.MatrixBase):
        return all(e == 0 for e in value)
    return value == 0


def _prove(statement: str, residual: sp.Basic) -> Proof:
    expanded = residual.applyfunc(sp.expand) if isinstance(residual, sp.MatrixBase) else sp.expand(residual)
    if _is_zero(expanded):  # the cheap route settles most identities
        return Proof(statement, expanded, True)
    simplified = sp.simplify(residual)
    if isinstance(simplified, sp.MatrixBase):
        holds = all(e == 0 for e in simplified)
    else:
        holds = simplified == 0
    return Proof(statement, simplified, bool(holds))


def adjoint_forms_agree(system: ODESystem) -> Proof:
    """The VJP form of the adjoint equals the full-Jacobian form, block by block."""
    vjp, jac = Adjoint.of(system, form="vjp"), Adjoint.of(system, form="jacobian")
    lhs = _flat_column([vjp.rhs_a, *vjp.rhs_theta, vjp.rhs_t])
    rhs = _flat_column([jac.rhs_a, *jac.rhs_theta, jac.rhs_t])
    return _prove("a^T df/dx by one VJP equals -J^T a by Jacobians", lhs - rhs)


def _column(a: sp.Basic) -> sp.ImmutableMatrix:
    return _explicit(a)


def tangent_adjoint_pairing(system: ODESystem) -> Proof:
    """Along ``dv/dt = f_h v`` and ``da/dt = -f_h^T a``, ``d(a . v)/dt = 0``."""
    adj = Adjoint.of(system)
    a = _column(adj.a)
    v = sp.ImmutableMatrix([sp.Symbol(f"v_{{{i}}}", real=True) for i in range(system.n)])
    da = _explicit(adj.rhs_a)
    dv = system.jacobian_h * v
    return _prove("d(a . v)/dt = 0 for tangent v and adjoint a", (da.T * v + a.T * dv)[0, 0])


def hamiltonian_rate(system: ODESystem) -> Proof:
    """``d(a . f)/dt = a^T f_t`` along the flow; so ``a . f`` is conserved if f is autonomous."""
    adj = Adjoint.of(system)
    a = _column(adj.a)
    f = system.explicit_rhs
    da = _explicit(adj.rhs_a)
    rate = da.T * f + a.T * (system.jacobian_h * f + system.derivative_t)
    return _prove("d(a . f)/dt = a^T df/dt", rate[0, 0] - (a.T * system.derivative_t)[0, 0])


def hamiltonian_conserved(system: ODESystem) -> Proof:
    """``d(a . f)/dt = 0``: true exactly when ``a^T f_t`` vanishes (autonomous f)."""
    adj = Adjoint.of(system)
    a = _column(adj.a)
    f = system.explicit_rhs
    rate = _explicit(adj.rhs_a).T * f + a.T * (system.jacobian_h * f + system.derivative_t)
    return _prove("the Hamiltonian a . f is conserved", rate[0, 0])


def augmented_adjoint_is_three_blocks(system: ODESystem) -> Proof:
    """The plain adjoint ``-a_aug^T df_aug/dz`` of the augmented system is the three-block formula."""
    aug = AugmentedSystem.of(system).as_system()
    plain = Adjoint.of(aug, form="jacobian")
    blocks = Adjoint.of(system, form="jacobian")
    entries = [*system.flat_state, *system.flat_params]
    z = aug.state[:-1]
    tau = aug.state[-1]
    a_aug, _, _ = adjoint_symbols(aug)
    a, a_theta, a_t = adjoint_symbols(system)
    to_aug = dict(zip(entries, z)) | {system.t: tau}
    targets = [*_explicit(a), *_flat_column(list(a_theta)), a_t]
    to_aug |= dict(zip(targets, list(a_aug)))
    expected = _flat_column([blocks.rhs_a, *blocks.rhs_theta, blocks.rhs_t]).xreplace(to_aug)
    return _prove(
        "adjoint of [h, theta, t] with f_aug = [f, 0, 1] is [-a f_h, -a f_theta, -a f_t]",
        sp.ImmutableMatrix(plain.rhs_a) - expected,
    )
