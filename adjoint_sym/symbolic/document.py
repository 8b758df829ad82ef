"""The derivation of a problem's gradient, written once for every output format.

:func:`sections` lays out what a reader needs, in order: the dynamics (with the
pre-activations of a neural right-hand side named once, ``z = W_1 h + b_1``), the loss as
``L = sum_i ell_i(h(t_i), theta, t_i)``, the augmented state ``[h, theta, t]``, the
augmented adjoint ODEs, their terminal values and the jumps at observation times, and the
gradient with the loss's explicit terms::

    a(t1) = d ell/dh,  a_theta(t1) = 0,  a_t(t1) = -d ell/dh . f          (final loss)
    a(t_i-) = a(t_i+) + d ell_i/dh,  a_t(t_i-) = a_t(t_i+) - d ell_i/dh . f   (observations)
    dL/dh0 = a(t0),  dL/dtheta = a_theta(t0) + d ell/dtheta,  dL/dt0 = a_t(t0)
    dL/dt1 = d ell/dh . f + d ell/dt

(Chen et al. 2018, eqs. 4-5, Algorithm 1 and appendix B).  A running cost
``L = ... + int_{t0}^{t1} g dt`` prints its integrand, its partial derivatives (which the
adjoint's rates subtract: the Hamiltonian is ``a . f + g``) and its terms in the time
derivatives::

    a_t(t1) = -(d ell/dh . f + g)(t1),   dL/dt0 = a_t(t0) = -a(t0) . f(h0, t0) - g(h0, t0)
    dL/dt1 = d ell/dh . f + d ell/dt + g(h(t1), theta, t1)

A :class:`Style` says how one format writes the pieces; :mod:`.render` has the LaTeX
style, :mod:`.text` the plain one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .cost_lines import RunningCostLines, with_running_cost
from .loss_terms import LossTerms
from .notation import Name, Notation

#: Up to this many entries a column of partial derivatives is printed entry by entry.
MAX_ENTRIES = RunningCostLines.MAX_ENTRIES
#: Up to this many observation times are listed.
MAX_TIMES = 8


@dataclass(frozen=True)
class Section:
    """One part of a derivation: a plain-text title and its formatted lines."""

    title: str
    lines: tuple[str, ...]


class Style(ABC):
    """How one output format writes the pieces of a derivation."""

    def __init__(self, note: Notation, names: dict, abbreviations: dict) -> None:
        self.note = note
        self.names = names  # symbol -> how it prints
        self.abbreviations = abbreviations  # sub-expression -> its name (a MatrixSymbol)

    @abstractmethod
    def expr(self, e: sp.Basic) -> str:
        """An expression."""

    @abstractmethod
    def name(self, n: Name) -> str: ...

    @abstractmethod
    def ddt(self, x: str) -> str:
        """``dx/dt`` in the system's time."""

    @abstractmethod
    def total(self, num: str, den: str) -> str: ...

    @abstractmethod
    def partial(self, num: str, den: str) -> str: ...

    @abstractmethod
    def evaluated(self, x: str, t: str) -> str:
        """``x`` evaluated at ``(h(t), theta, t)``."""

    @abstractmethod
    def column(self, items: Sequence[str]) -> str: ...

    @abstractmethod
    def vector(self, items: Sequence[str]) -> str: ...

    @abstractmethod
    def set_of(self, items: Sequence[str]) -> str: ...

    @abstractmethod
    def eq(self, lhs: str, rhs: str) -> str:
        """One aligned equation."""

    @abstractmethod
    def words(self, text: str) -> str:
        """Prose inside maths."""

    @abstractmethod
    def side(self, t: str, sign: str) -> str:
        """``t^+`` / ``t^-``: just after / just before ``t``."""

    @abstractmethod
    def sum_i(self, body: str) -> str: ...

    @abstractmethod
    def norm2(self, body: str) -> str: ...

    @abstractmethod
    def sub(self, base: str, index: str) -> str: ...

    dot: str = " . "
    sep: str = ",  "
    empty: str = "()"
    member: str = " in "
    ellipsis: str = "..."
    #: Whether an explicit matrix prints one entry per line (text) or as a matrix (LaTeX).
    expand_matrices: bool = False

    def entry(self, name: str, i: int, j: int) -> str:
        return f"{name}[{i},{j}]"

    def at(self, f: str, *args: str) -> str:
        return f"{f}({', '.join(args)})"

    def sym(self, e: sp.Basic) -> str:
        return self.expr(e)

    def integral(self, body: str, lo: str, hi: str, var: str) -> str:
        """``int_lo^hi body d var``."""
        return f"int_{lo}^{hi} {body} d{var}"


def abbreviations(adj) -> dict:
    """Names (``z``, or ``z_1, z_2, ...``) for the arguments of elementwise functions.

    A neural right-hand side repeats its pre-activation ``W_1 h + b_1`` inside every
    adjoint block; a paper names it once.  Only compound arguments are named.
    """
    found: list[sp.Basic] = []
    exprs = [adj.system.rhs, *(rhs for _, rhs in adj.blocks())]
    for e in exprs:
        if not isinstance(e, sp.Basic):
            continue
        for node in sp.preorder_traversal(e):
            if isinstance(node, ElementwiseApplyFunction):
                arg = node.expr
                if not isinstance(arg, sp.MatrixSymbol | ElementwiseApplyFunction) and arg not in found:
                    found.append(arg)
    letter = adj.notation.pre
    if len(found) == 1:
        return {found[0]: sp.MatrixSymbol(letter.plain, *found[0].shape)}
    return {arg: sp.MatrixSymbol(f"{letter.plain}_{i + 1}", *arg.shape) for i, arg in enumerate(found)}


def abbreviation_latex(adj, names: dict) -> dict:
    letter = adj.notation.pre
    out = {}
    for z in names.values():
        index = z.name[len(letter.plain) + 1 :]
        out[z] = f"{letter.latex}_{{{index}}}" if index else letter.latex
    return out


def composed(node: ElementwiseApplyFunction, u: sp.Symbol) -> tuple[sp.Expr, sp.Basic]:
    """``(body in u, argument)`` of an elementwise function, a function of a function merged.

    The adjoint applies ``tanh'`` to the node ``tanh(z)`` itself (``1 - y^2`` at
    ``y = tanh(z)``, so the kernels share it); a reader wants ``1 - tanh^2(z)``.
    """
    body, inner = node.function(u), node.expr
    while isinstance(inner, ElementwiseApplyFunction):
        body = body.xreplace({u: inner.function(u)})
        inner = inner.expr
    return body, inner


def shorten(e: sp.Basic, abbreviations: dict) -> sp.Basic:
    """``e`` with each named sub-expression replaced by its name (outermost first)."""
    if not abbreviations or not isinstance(e, sp.Basic):
        return e
    return e.xreplace(abbreviations)


def sections(adj, terms: LossTerms, style: Style) -> list[Section]:
    """The derivation of ``adj``'s system under the loss ``terms``, in ``style``."""
    w = _Writer(adj, terms, style)
    return [w.dynamics(), w.loss(), w.augmented(), w.adjoint(), w.terminal(), w.gradient()]


class _Writer(RunningCostLines):
    def __init__(self, adj, terms: LossTerms, style: Style) -> None:
        self.adj, self.terms, self.s = adj, terms, style
        self.n = adj.notation
        s, n = style, self.n
        self.t, self.t0, self.t1 = s.name(n.time), s.name(n.start), s.name(n.end)
        self.ti = s.sub(self.t, "i")
        self.h, self.f, self.L, self.ell = s.name(n.state), s.name(n.rhs), s.name(n.loss), s.name(n.ell)
        self.theta = s.name(n.params)
        self.a, self.a_theta, self.a_t = s.name(n.adjoint), s.name(n.adjoint_params), s.name(n.adjoint_time)
        self.g = s.name(n.cost)
        self.running = terms.running is not None

    # -- the model --------------------------------------------------------------------
    def dynamics(self) -> Section:
        s, system = self.s, self.adj.system
        named = s.abbreviations
        lines = [
            s.eq(s.sym(z), s.expr(shorten(arg, {k: v for k, v in named.items() if k != arg})))
            for arg, z in named.items()
        ]
        if system.is_matrix_level:
            lines.append(s.eq(s.ddt(s.sym(system.state[0])), s.expr(shorten(system.rhs, s.abbreviations))))
        else:
            lines += [s.eq(s.ddt(s.sym(x)), s.expr(f)) for x, f in zip(system.state, system.rhs)]
        return Section(f"Dynamics of {system.name or 'the system'}", tuple(lines))

    def loss(self) -> Section:
        s, terms = self.s, self.terms
        cost = [s.eq(self.g, s.expr(terms.running))] if self.running else []
        if terms.final:
            point = "" if terms.point_free else s.at(self.ell, s.at(self.h, self.t1), self.theta, self.t1)
            lines = [s.eq(self.L, point + self._plus_integral())]
            if terms.times:
                lines[0] += s.sep + f"{self.t1} = {terms.times[-1]:g}"
            if terms.form == "expression" and not terms.point_free:
                lines.append(s.eq(self.ell, s.expr(terms.exprs[0])))
            return Section("Loss", tuple(lines + cost))
        ell_i = s.sub(self.ell, "i")
        first = s.eq(self.L, s.sum_i(s.at(ell_i, s.at(self.h, self.ti), self.theta, self.ti)) + self._plus_integral())
        lines = [first + s.sep + self._times()]
        if terms.form == "squared errors":
            target = s.sub(s.name(self.n.target), "i")
            lines.append(s.eq(ell_i, s.norm2(f"{self.h} - {target}")) + s.sep + s.words("data ") + target)
        elif terms.form == "expression":
            lines.append(s.eq(ell_i, s.expr(terms.exprs[0])) + s.sep + s.words("at every ") + self.ti)
        elif terms.form == "per time" and len(terms.exprs) <= MAX_TIMES:
            lines += [s.eq(s.sub(self.ell, str(i + 1)), s.expr(e)) for i, e in enumerate(terms.exprs)]
        return Section("Loss", tuple(lines + cost))

    def _times(self) -> str:
        s, times = self.s, self.terms.times
        last = s.sub(self.t, "N") + " = " + self.t1
        if times is None:
            return last
        if len(times) <= MAX_TIMES:
            listed = s.set_of([f"{x:g}" for x in times])
        else:
            listed = s.set_of([f"{times[0]:g}", f"{times[1]:g}", s.ellipsis, f"{times[-1]:g}"])
        return self.ti + s.member + listed + s.sep + last

    def augmented(self) -> Section:
        s, system = self.s, self.adj.system
        line = s.eq(
            s.ddt(s.column([self.h, self.theta, self.t])),
            s.column([self.f, "0", "1"]),
        )
        if not system.is_matrix_level:
            line += s.sep + self.h + " = " + self._tuple([s.sym(x) for x in system.state])
        params = [s.sym(p) for p in system.params]
        line += s.sep + self.theta + " = " + (self._tuple(params) if params else s.empty)
        return Section("Augmented state", (line,))

    def _tuple(self, items: list[str]) -> str:
        return items[0] if len(items) == 1 else self.s.vector(items)

    # -- the adjoint ------------------------------------------------------------------
    def adjoint(self) -> Section:
        s = self.s
        lines = []
        for symbol, rhs in self.adj.blocks():
            if isinstance(symbol, sp.MatrixBase):
                lines += [s.eq(s.ddt(s.sym(x)), s.expr(shorten(r, s.abbreviations))) for x, r in zip(symbol, rhs)]
            elif s.expand_matrices and isinstance(rhs, sp.MatrixBase):
                for (i, j), r in zip(((i, j) for i in range(rhs.rows) for j in range(rhs.cols)), rhs):
                    lines.append(s.eq(s.ddt(s.entry(s.sym(symbol), i, j)), s.expr(r)))
            else:
                lines.append(s.eq(s.ddt(s.sym(symbol)), s.expr(shorten(rhs, s.abbreviations))))
        lines += self._cost_partials()
        ends = f"{self.n.end.plain} to {self.n.start.plain}"
        title = f"Augmented adjoint ({self.adj.form} form), integrated backward from {ends}"
        return Section(title, tuple(lines))

    def _d_ell_dh(self, index: str | None) -> str:
        ell = self.ell if index is None else self.s.sub(self.ell, index)
        return self.s.partial(ell, self.h)

    def _explicit_d_h(self, index: str | None) -> str:
        """``, d ell/dh = (2x, 2y)``: the column of ``d ell/dh`` when it is short enough to read."""
        terms, s = self.terms, self.s
        clause = s.sep + self._d_ell_dh(index) + " = "
        if terms.form == "squared errors":
            return clause + "2 " + s.vector([f"{self.h} - {s.sub(s.name(self.n.target), 'i')}"])
        if terms.form != "expression" or len(terms.d_h[0]) > MAX_ENTRIES:
            return ""
        entries = [s.expr(e) for e in terms.d_h[0]]
        return clause + (entries[0] if len(entries) == 1 else s.column(entries))

    def terminal(self) -> Section:
        s = self.s
        if self.terms.final:
            cost = " - " + self._g_at(self.t1) if self.running else ""
            if self.terms.point_free:  # no point part: only the integral's growth with t1 enters a_t
                line = s.eq(s.at(self.a, self.t1), "0") + s.sep + s.at(self.a_theta, self.t1) + " = 0"
                line += s.sep + s.at(self.a_t, self.t1) + " = -" + self._g_at(self.t1)
                return Section("Terminal values", (line,))
            line = s.eq(s.at(self.a, self.t1), s.evaluated(self._d_ell_dh(None), self.t1))
            line += s.sep + s.at(self.a_theta, self.t1) + " = 0"
            line += s.sep + s.at(self.a_t, self.t1) + " = -" + self._motion(None, self.t1) + cost
            return Section("Terminal values", (line + self._explicit_d_h(None),))
        plus, minus = s.side(self.ti, "+"), s.side(self.ti, "-")
        end_plus = s.side(self.t1, "+")
        start = s.eq(s.at(self.a, end_plus), "0") + s.sep + s.at(self.a_theta, self.t1) + " = 0"
        start += s.sep + s.at(self.a_t, end_plus) + " = 0"
        d = s.evaluated(self._d_ell_dh("i"), self.ti)
        jump = s.eq(s.at(self.a, minus), s.at(self.a, plus) + " + " + d) + self._explicit_d_h("i")
        jump_t = s.eq(s.at(self.a_t, minus), s.at(self.a_t, plus) + " - " + self._motion("i", self.ti))
        jump_t += (
            s.sep + s.words("at each observation time, from the last; ") + self.a_theta + s.words(" does not jump")
        )
        lines = [start, jump, jump_t, *self._last_jump()]
        return Section("Terminal values and jumps at the observation times", tuple(lines))

    def _motion(self, index: str | None, t: str) -> str:
        s = self.s
        return s.evaluated(self._d_ell_dh(index), t) + s.dot + s.at(self.f, s.at(self.h, t), t)

    # -- the gradient -----------------------------------------------------------------
    def gradient(self) -> Section:
        s, terms = self.s, self.terms
        final = terms.final
        index, where = (None, self.t1) if final else ("i", self.ti)
        ell = self.ell if final else s.sub(self.ell, "i")
        h0 = s.at(self.h, self.t0)
        first = s.eq(s.total(self.L, h0), s.at(self.a, self.t0)) + s.sep + s.total(self.L, self.t0) + " = "
        first += s.at(self.a_t, self.t0) + self._start_value()
        first += s.sep + s.words("with ") + h0 + s.words(" held fixed")
        lines = [first, self._theta_line(ell, where), *self._param_lines(ell, where)]
        moved = self.t1 if final else self.ti
        if self.terms.point_free:
            lines.append(s.eq(s.total(self.L, self.t1), self._g_at(self.t1)))
            return Section("Gradient", tuple(lines))
        d_t = s.evaluated(s.partial(ell, self.t), where)
        cost = " + " + self._g_at(self.t1) if self.running and final else ""
        rhs = self._motion(index, where) + " + " + d_t + cost
        line = s.eq(s.total(self.L, moved), rhs) + self._explicit_time(ell)
        if not final:
            line += s.sep + s.words("each observation time moved alone")
        lines.append(line)
        lines += self._last_time()
        return Section("Gradient", tuple(lines))

    def _sum(self, body: str) -> str:
        return body if self.terms.final else self.s.sum_i(body)

    def _theta_line(self, ell: str, where: str) -> str:
        """``dL/dtheta = a_theta(t0) + d ell/dtheta`` and, its terms known, ``d ell/dtheta = 0``."""
        s = self.s
        if self.terms.point_free:
            return s.eq(s.total(self.L, self.theta), s.at(self.a_theta, self.t0))
        line = s.eq(
            s.total(self.L, self.theta),
            s.at(self.a_theta, self.t0) + " + " + self._sum(s.evaluated(s.partial(ell, self.theta), where)),
        )
        if self.terms.form != "given" and not self.terms.explicit_params:
            line += s.sep + s.partial(ell, self.theta) + " = 0"
        return line

    def _param_lines(self, ell: str, where: str) -> list[str]:
        """One line per parameter the loss reads: ``dL/dc = a_c(t0) + d ell/dc``, ``d ell/dc = 2c``."""
        s, terms = self.s, self.terms
        if terms.form != "expression":
            return []
        lines = []
        for k in terms.explicit_params:
            p = s.sym(self.adj.system.params[k])
            symbol = s.sym(self.adj.a_theta[k])
            line = s.eq(
                s.total(self.L, p), s.at(symbol, self.t0) + " + " + self._sum(s.evaluated(s.partial(ell, p), where))
            )
            lines.append(line + s.sep + s.partial(ell, p) + " = " + s.expr(terms.d_theta[0][k]))
        return lines

    def _explicit_time(self, ell: str) -> str:
        s, terms = self.s, self.terms
        if terms.form == "given" or (terms.form == "per time" and terms.explicit_time):
            return ""
        value = s.expr(terms.d_t[0]) if terms.form == "expression" and terms.explicit_time else "0"
        return s.sep + s.partial(ell, self.t) + " = " + value


__all__ = [
    "MAX_ENTRIES",
    "Section",
    "Style",
    "abbreviations",
    "composed",
    "sections",
    "shorten",
    "with_running_cost",
]
