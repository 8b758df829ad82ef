"""LaTeX and Markdown for systems, augmented systems, adjoints and whole derivations.

Symbols print as the user named them (``beta`` as ``\\beta``, ``W1`` as ``W_{1}``); the
derivation's own names (adjoint ``a``, parameter vector ``\\theta``, loss ``L``, ...) are
chosen against them (:mod:`adjoint_sym.symbolic.notation`).  Elementwise functions of
vectors print as the function applied to the vector, entry by entry; the derivative the
adjoint applies to ``tanh(z)`` prints as ``1 - \\tanh^{2}(z)``; Hadamard products print as
``\\circ``; a pre-activation of a neural right-hand side is named once (``z = W_1 h + b_1``).
``environment="align"`` gives a block that pastes into a paper (needs amsmath);
``"aligned"`` nests inside ``$$ ... $$`` for notebooks and Markdown.

Examples
--------
>>> from adjoint_sym import ODESystem
>>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
>>> lines = adjoint_latex(decay.adjoint(), loss="x**2 + k").splitlines()
>>> line = next(line for line in lines if line.startswith(r"\\frac{d L}{d k}"))
>>> print(line.split(r" \\quad ")[0])
\\frac{d L}{d k} &= a_{k}(t_{0}) + \\left. \\frac{\\partial \\ell}{\\partial k} \\right|_{t_{1}},
>>> print(line.split(r" \\quad ")[1])
\\frac{\\partial \\ell}{\\partial k} = 1 \\\\
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.printing.latex import LatexPrinter

from .document import Section, Style, abbreviation_latex, abbreviations, composed, sections, with_running_cost
from .loss_terms import loss_terms
from .names import markdown_text
from .notation import Name, Notation

ENVIRONMENTS = ("align", "align*", "aligned")


class _Printer(LatexPrinter):
    """SymPy's LaTeX printer with the derivation's names and elementwise functions composed."""

    def __init__(self, settings: dict | None = None, names: dict | None = None) -> None:
        super().__init__(settings)
        self._given = dict(settings or {})
        self._names = dict(names or {})

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr in self._names:
            name = self._names[expr]
            return r"\mathbf{" + name + "}" if style == "bold" else name
        return super()._print_Symbol(expr, style=style)

    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> str:
        u = sp.Dummy("u")
        body, inner = composed(expr, u)
        # Print sigma(Z) as sigma applied to the printed Z: the argument's LaTeX stands
        # in for the dummy, so derivatives read as 1 - tanh^2(W h + b).
        printed = _Printer(self._given, {**self._names, u: self._print(inner)}).doprint(body)
        if isinstance(body, sp.Function) and body.args == (u,):
            return printed
        return r"\left(" + printed + r"\right)"

    def _print_OneMatrix(self, expr: sp.OneMatrix) -> str:
        rows, _ = expr.shape
        return r"\mathbf{1}^{T}" if rows == 1 else r"\mathbf{1}"


def latex(expr: sp.Basic, *, bold_vectors: bool = False, names: dict | None = None) -> str:
    """LaTeX of one expression with the package's conventions (``names``: symbol to LaTeX)."""
    settings = {"mat_symbol_style": "bold" if bold_vectors else "plain", "mul_symbol": None}
    return _Printer(settings, names).doprint(expr)


class LatexStyle(Style):
    """How LaTeX writes a derivation (:mod:`adjoint_sym.symbolic.document`)."""

    dot = r" \cdot "
    sep = r", \quad "
    empty = r"\emptyset"
    member = r" \in "
    ellipsis = r"\ldots"

    def __init__(self, note, names: dict, abbreviations: dict, bold: bool) -> None:
        super().__init__(note, names, abbreviations)
        self.bold = bold

    def expr(self, e: sp.Basic) -> str:
        return latex(e, bold_vectors=self.bold, names=self.names)

    def name(self, n: Name) -> str:
        return n.latex

    def ddt(self, x: str) -> str:
        t = self.note.time.latex
        if x.startswith(r"\begin"):
            return rf"\frac{{d}}{{d {t}}} {x}"
        return rf"\frac{{d {x}}}{{d {t}}}"

    def total(self, num: str, den: str) -> str:
        return rf"\frac{{d {num}}}{{d {den}}}"

    def partial(self, num: str, den: str) -> str:
        return rf"\frac{{\partial {num}}}{{\partial {den}}}"

    def evaluated(self, x: str, t: str) -> str:
        return rf"\left. {x} \right|_{{{t}}}"

    def column(self, items: Sequence[str]) -> str:
        return r"\begin{bmatrix} " + r" \\ ".join(items) + r" \end{bmatrix}"

    def vector(self, items: Sequence[str]) -> str:
        return r"\left(" + ", ".join(items) + r"\right)"

    def set_of(self, items: Sequence[str]) -> str:
        return r"\{" + ", ".join(items) + r"\}"

    def eq(self, lhs: str, rhs: str) -> str:
        return f"{lhs} &= {rhs}"

    def words(self, text: str) -> str:
        return r"\text{" + text + "}"

    def side(self, t: str, sign: str) -> str:
        return f"{t}^{{{sign}}}"

    def sum_i(self, body: str) -> str:
        return r"\sum_{i} " + body

    def norm2(self, body: str) -> str:
        return r"\lVert " + body + r" \rVert^{2}"

    def sub(self, base: str, index: str) -> str:
        return f"{base}_{{{index}}}"

    def integral(self, body: str, lo: str, hi: str, var: str) -> str:
        return rf"\int_{{{lo}}}^{{{hi}}} {body} \, d{var}"


def _style(adj, bold: bool) -> LatexStyle:
    named = abbreviations(adj)
    names = {**adj.latex_names, **abbreviation_latex(adj, named)}
    return LatexStyle(adj.notation, names, named, bold)


def _wrap(lines: list[str], environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}, got {environment!r}")
    body = " \\\\\n".join(lines)
    return f"\\begin{{{environment}}}\n{body}\n\\end{{{environment}}}"


def _system_style(system, bold: bool) -> LatexStyle:
    note = Notation.of(system)
    return LatexStyle(note, dict(note.latex_names), {}, bold)


def system_latex(system, *, bold_vectors: bool = False, environment: str = "aligned") -> str:
    """``dh/dt = f`` for each state (or the one matrix state)."""
    s = _system_style(system, bold_vectors)
    if system.is_matrix_level:
        lines = [s.eq(s.ddt(s.sym(system.state[0])), s.expr(system.rhs))]
    else:
        lines = [s.eq(s.ddt(s.sym(x)), s.expr(f)) for x, f in zip(system.state, system.rhs)]
    return _wrap(lines, environment)


def augmented_latex(aug, *, bold_vectors: bool = False, environment: str = "aligned") -> str:
    """``d/dt [h; theta; t] = [f; 0; 1]`` as a bracketed column identity."""
    s = _system_style(aug.system, bold_vectors)
    line = s.eq(s.ddt(s.column([s.sym(x) for x in aug.state])), s.column([s.expr(r) for r in aug.rhs]))
    return _wrap([line], environment)


def derivation_sections(adj, loss: object = None, *, bold_vectors: bool = False) -> list[Section]:
    """The derivation's sections in LaTeX (see :func:`adjoint_sym.symbolic.document.sections`)."""
    adj, terms = with_running_cost(adj, loss_terms(adj.system, loss))
    return sections(adj, terms, _style(adj, bold_vectors))


def adjoint_latex(adj, *, loss: object = None, bold_vectors: bool = False, environment: str = "align") -> str:
    """The whole derivation in one environment: dynamics, loss, augmented state, adjoint ODEs,
    terminal values (and jumps), gradient with the loss's explicit terms."""
    parts = derivation_sections(adj, loss, bold_vectors=bold_vectors)
    return _wrap([line for part in parts for line in part.lines], environment)


def adjoint_markdown(adj, *, loss: object = None, level: int = 3) -> str:
    """Markdown: a heading and a display-maths block per section of the derivation."""
    hashes = "#" * level
    out = []
    for part in derivation_sections(adj, loss):
        # Titles carry user text (the system's name): literal Markdown, never HTML.
        out += [f"{hashes} {markdown_text(part.title)}", "$$\n" + _wrap(list(part.lines), "aligned") + "\n$$"]
    return "\n\n".join(out) + "\n"


__all__ = [
    "ENVIRONMENTS",
    "LatexStyle",
    "adjoint_latex",
    "adjoint_markdown",
    "augmented_latex",
    "derivation_sections",
    "latex",
    "system_latex",
]
