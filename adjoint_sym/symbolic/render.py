"""LaTeX and Markdown for systems, augmented systems and adjoints.

Symbols print as the user named them (``beta`` as ``\\beta``, ``W1`` as ``W_{1}``).
Elementwise functions of vectors print as the function applied to the vector
(``\\tanh\\left(W_{1} h + b_{1}\\right)``, acting entry by entry), Hadamard products as
``\\circ``.  ``environment="align"`` gives a block that pastes into a paper (needs
amsmath); ``"aligned"`` nests inside ``$$ ... $$`` for notebooks and Markdown.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.printing.latex import LatexPrinter

from .names import markdown_text

ENVIRONMENTS = ("align", "align*", "aligned")


class _Printer(LatexPrinter):
    def __init__(self, settings: dict | None = None) -> None:
        super().__init__(settings)
        self._given = dict(settings or {})

    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> str:
        u = sp.Dummy("u")
        body = expr.function(u)
        # Print sigma(Z) as sigma applied to the printed Z: the argument's LaTeX stands
        # in for the dummy, so derivatives read as 1 - tanh^2(W h + b).
        settings = dict(self._given)
        settings["symbol_names"] = {**settings.get("symbol_names", {}), u: self._print(expr.expr)}
        printed = _Printer(settings).doprint(body)
        if isinstance(body, sp.Function) and body.args == (u,):
            return printed
        return r"\left(" + printed + r"\right)"


def latex(expr: sp.Basic, *, bold_vectors: bool = False) -> str:
    """LaTeX of one expression with the package's conventions."""
    settings = {"mat_symbol_style": "bold" if bold_vectors else "plain", "mul_symbol": None}
    return _Printer(settings).doprint(expr)


def _d_dt(symbol: sp.Basic, t: sp.Symbol, bold: bool) -> str:
    return r"\frac{d " + latex(symbol, bold_vectors=bold) + r"}{d " + latex(t) + "}"


def _lines(pairs: list[tuple[sp.Basic, sp.Basic]], t: sp.Symbol, bold: bool) -> list[str]:
    """One line per pair; explicit columns of scalar symbols get one line per entry."""
    out = []
    for symbol, rhs in pairs:
        if isinstance(symbol, sp.MatrixBase):
            out.extend(_lines(list(zip(symbol, rhs)), t, bold))
        else:
            out.append(_d_dt(symbol, t, bold) + " &= " + latex(rhs, bold_vectors=bold))
    return out


def _wrap(lines: list[str], environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}, got {environment!r}")
    body = " \\\\\n".join(lines)
    return f"\\begin{{{environment}}}\n{body}\n\\end{{{environment}}}"


def _dynamics_pairs(system) -> list[tuple[sp.Basic, sp.Basic]]:
    if system.is_matrix_level:
        return [(system.state[0], system.rhs)]
    return list(zip(system.state, system.rhs))


def system_latex(system, *, bold_vectors: bool = False, environment: str = "aligned") -> str:
    """``dh/dt = f`` for each state (or the one matrix state)."""
    return _wrap(_lines(_dynamics_pairs(system), system.t, bold_vectors), environment)


def augmented_latex(aug, *, bold_vectors: bool = False, environment: str = "aligned") -> str:
    """``d/dt [h; theta; t] = [f; 0; 1]`` as a bracketed column identity."""
    state = r" \\ ".join(latex(s, bold_vectors=bold_vectors) for s in aug.state)
    rhs = r" \\ ".join(latex(r, bold_vectors=bold_vectors) for r in aug.rhs)
    t = latex(aug.system.t)
    line = (
        rf"\frac{{d}}{{d {t}}}\begin{{bmatrix}} {state} \end{{bmatrix}} &= "
        rf"\begin{{bmatrix}} {rhs} \end{{bmatrix}}"
    )
    return _wrap([line], environment)


def adjoint_lines(adj, *, bold_vectors: bool = False) -> list[str]:
    """The adjoint ODE lines and their terminal conditions (Chen et al. 2018)."""
    t = adj.system.t
    lines = _lines(adj.blocks(), t, bold_vectors)
    a = latex(adj.a, bold_vectors=bold_vectors) if adj.system.is_matrix_level else "a"
    tt = latex(t)
    h = latex(adj.system.state[0], bold_vectors=bold_vectors) if adj.system.is_matrix_level else "h"
    lines.append(
        rf"{a}({tt}_1) &= \frac{{\partial L}}{{\partial {h}({tt}_1)}}, \quad "
        rf"a_\theta({tt}_1) = 0, \quad a_{{{tt}}}({tt}_1) = -\frac{{\partial L}}{{\partial {tt}_1}}"
    )
    return lines


def adjoint_latex(adj, *, bold_vectors: bool = False, environment: str = "align") -> str:
    """Dynamics, adjoint ODEs and terminal conditions in one environment."""
    dynamics = _lines(_dynamics_pairs(adj.system), adj.system.t, bold_vectors)
    return _wrap(
        [*dynamics, _augmented_line(adj.system, bold_vectors), *adjoint_lines(adj, bold_vectors=bold_vectors)],
        environment,
    )


def _augmented_line(system, bold: bool) -> str:
    """``d theta/dt = 0, dt/dt = 1``: the rest of the augmented dynamics, theta spelled out."""
    t = latex(system.t)
    names = ", ".join(latex(p, bold_vectors=bold) for p in system.params)
    theta = rf"\theta = \left({names}\right)" if names else r"\theta = \emptyset"
    return rf"\frac{{d \theta}}{{d {t}}} &= 0, \quad \frac{{d {t}}}{{d {t}}} = 1, \quad {theta}"


def adjoint_markdown(adj) -> str:
    """Markdown: a heading and display maths for the dynamics, augmented system, adjoint."""
    system = adj.system
    title = markdown_text(system.name) or "system"  # user text: literal, never HTML
    parts = [
        f"### Dynamics of {title}",
        "$$\n" + system_latex(system) + "\n$$",
        "### Augmented state",
        "$$\n" + augmented_latex(adj.augmented) + "\n$$",
        f"### Augmented adjoint ({adj.form} form), integrated from $t_1$ back to $t_0$",
        "$$\n" + _wrap(adjoint_lines(adj), "aligned") + "\n$$",
    ]
    return "\n\n".join(parts) + "\n"
