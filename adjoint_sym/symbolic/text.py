"""Plain text for expressions and whole derivations: no LaTeX, one line per equation.

Names print as declared (``a_beta``, never ``a_{\\beta}``); ``*`` is the product (matrix
or scalar), ``.*`` the Hadamard product, ``.^`` the elementwise power, ``^T`` the
transpose, and an elementwise function prints as the function applied to its argument
(``tanh(z)``, entry by entry; ``1 - tanh(z)**2`` for the derivative the adjoint applies).

Examples
--------
>>> from adjoint_sym.builders import two_layer
>>> adj = two_layer(2, 3).adjoint()
>>> print(expression_text(adj.system.rhs))
W2*tanh(W1*h + b1) + b2
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .document import Style, abbreviations, composed, sections, with_running_cost
from .loss_terms import loss_terms
from .notation import Name


class _TextPrinter(StrPrinter):
    def __init__(self, names: dict | None = None) -> None:
        super().__init__({"order": None})
        self._names = dict(names or {})

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self._names.get(expr, expr.name)

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return self._names.get(expr, expr.name)

    def _print_Dummy(self, expr: sp.Dummy) -> str:
        return self._names.get(expr, expr.name)

    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> str:
        u = sp.Dummy("u")
        body, inner = composed(expr, u)
        printed = _TextPrinter({**self._names, u: self._print(inner)}).doprint(body)
        if isinstance(body, sp.Function) and body.args == (u,):
            return printed
        return "(" + printed + ")"

    def _print_HadamardProduct(self, expr: HadamardProduct) -> str:
        return " .* ".join(self.parenthesize(arg, PRECEDENCE["Mul"] + 1) for arg in expr.args)

    def _print_HadamardPower(self, expr: HadamardPower) -> str:
        base, exponent = expr.args
        return self.parenthesize(base, PRECEDENCE["Pow"]) + ".^" + self.parenthesize(exponent, PRECEDENCE["Pow"])

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        return self.parenthesize(expr.arg, PRECEDENCE["Pow"]) + "^T"

    def _print_ZeroMatrix(self, expr: sp.ZeroMatrix) -> str:
        return "0"

    def _print_OneMatrix(self, expr: sp.OneMatrix) -> str:
        return "1^T" if expr.shape[0] == 1 else "1"

    def _print_MatrixElement(self, expr) -> str:
        parent, i, j = expr.args
        name = self._print(parent)
        return f"{name}[{i}]" if parent.shape[1] == 1 else f"{name}[{i},{j}]"

    def _print_ImmutableDenseMatrix(self, expr: sp.MatrixBase) -> str:
        rows = ["[" + ", ".join(self._print(v) for v in expr.row(i)) + "]" for i in range(expr.rows)]
        return rows[0] if expr.rows == 1 else "[" + ", ".join(rows) + "]"

    _print_ImmutableMatrix = _print_MutableDenseMatrix = _print_ImmutableDenseMatrix


def _grouped(name: str) -> str:
    word = name.split("[", 1)[0]  # a_W[0,1]: an entry of a_W
    base = word.split("_", 1)[0]
    return f"({name})" if len(base) > 1 or not word.replace("_", "").isalnum() else name


def expression_text(expr: sp.Basic, names: dict | None = None) -> str:
    """One expression as plain text (``names``: symbol to the text it prints as)."""
    return _TextPrinter(names).doprint(expr)


class TextStyle(Style):
    """How plain text writes a derivation (:mod:`adjoint_sym.symbolic.document`)."""

    expand_matrices = True

    def expr(self, e: sp.Basic) -> str:
        return expression_text(e, self.names)

    def name(self, n: Name) -> str:
        return n.plain

    def ddt(self, x: str) -> str:
        t = self.note.time.plain
        return f"d/d{t} {x}" if x.startswith("[") else self.total(x, t)

    def total(self, num: str, den: str) -> str:
        # d(omega)/dt, d(ell_i)/dh: a name of several letters would run into the d
        return f"d{_grouped(num)}/d{den}"

    def partial(self, num: str, den: str) -> str:
        return self.total(num, den)

    def set_of(self, items: Sequence[str]) -> str:
        return "{" + ", ".join(items) + "}"

    def evaluated(self, x: str, t: str) -> str:
        return f"{x}({t})"

    def column(self, items: Sequence[str]) -> str:
        return "[" + ", ".join(items) + "]"

    def vector(self, items: Sequence[str]) -> str:
        return "(" + ", ".join(items) + ")"

    def eq(self, lhs: str, rhs: str) -> str:
        return f"{lhs} = {rhs}"

    def words(self, text: str) -> str:
        return text

    def side(self, t: str, sign: str) -> str:
        return f"{t}{sign}"

    def sum_i(self, body: str) -> str:
        return "sum_i " + body

    def norm2(self, body: str) -> str:
        return f"||{body}||^2"

    def sub(self, base: str, index: str) -> str:
        return f"{base}_{index}"


def derivation_text(adj, loss: object = None, *, title: str | None = None, indent: str = "  ") -> str:
    """The whole derivation as plain text: a title, then each section's lines indented."""
    adj, terms = with_running_cost(adj, loss_terms(adj.system, loss))
    named = abbreviations(adj)
    style = TextStyle(adj.notation, {z: z.name for z in named.values()}, named)
    heading = title if title is not None else (adj.system.name or "system")
    out = [heading, "=" * max(6, len(heading))]
    for part in sections(adj, terms, style):
        out += ["", part.title + ":", *(indent + line for line in part.lines)]
    return "\n".join(out) + "\n"


__all__ = ["TextStyle", "derivation_text", "expression_text"]
