"""LaTeX, Markdown and plain text of the second-order adjoint (:mod:`.second_order`).

Uses the package's expression printer (:func:`adjoint_sym.symbolic.render.latex`) so the
second-order equations read like the first-order ones printed beside them.
"""

from __future__ import annotations

import re

import sympy as sp

from .notation import Notation
from .render import ENVIRONMENTS, latex, system_latex


def _entries(symbol: sp.Basic, rhs: sp.Basic) -> list[tuple[sp.Basic, sp.Basic]]:
    """Explicit columns of symbols become one pair per entry."""
    if isinstance(symbol, sp.MatrixBase):
        return list(zip(symbol, rhs))
    return [(symbol, rhs)]


def _lines(blocks: list[tuple[sp.Basic, sp.Basic]], t: sp.Symbol, bold: bool) -> list[str]:
    out = []
    for symbol, rhs in blocks:
        for sym, expr in _entries(symbol, rhs):
            lhs = r"\frac{d " + latex(sym, bold_vectors=bold) + r"}{d " + latex(t) + "}"
            out.append(lhs + " &= " + latex(expr, bold_vectors=bold))
    return out


def _wrap(lines: list[str], environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {ENVIRONMENTS}, got {environment!r}")
    body = " \\\\\n".join(lines)
    return f"\\begin{{{environment}}}\n{body}\n\\end{{{environment}}}"


def _names(so, bold: bool) -> dict[str, str]:
    """The letters the equations use, as the notation chose them (LaTeX)."""
    note = Notation.of(so.system)
    tangent, direction, lam, mu = note.second_order_letters(so.system)
    matrix = so.system.is_matrix_level
    return {
        "h": latex(so.system.state[0], bold_vectors=bold) if matrix else note.state.latex,
        "s": latex(so.s, bold_vectors=bold) if matrix else tangent.latex,
        "a": latex(so.a, bold_vectors=bold) if matrix else note.adjoint.latex,
        "a_theta": note.adjoint_params.latex,
        "lam": latex(so.lam, bold_vectors=bold) if matrix else lam.latex,
        "mu": mu.latex,
        "v": direction.latex,
        "theta": note.params.latex,
        "t": latex(so.system.t),
    }


def boundary_lines(so, *, bold_vectors: bool = False) -> list[str]:
    """Initial and terminal values of the four blocks, and how ``H v`` is read off."""
    n = _names(so, bold_vectors)
    h, s, a, lam, mu, v, th, t = (n[k] for k in ("h", "s", "a", "lam", "mu", "v", "theta", "t"))
    d2 = r"\frac{\partial^2 L}{\partial " + h + rf"({t}_1)"
    lines = [
        rf"{s}({t}_0) &= {v}_{{{h}_0}}, \quad {a}({t}_1) = \frac{{\partial L}}{{\partial {h}({t}_1)}}, "
        rf"\quad {n['a_theta']}({t}_1) = 0",
        rf"{lam}({t}_1) &= {d2}^2}} {s}({t}_1) + {d2} \partial {th}}} {v}_{{{th}}}, \quad {mu}({t}_1) = 0",
        rf"(H {v})_{{{h}_0}} &= {lam}({t}_0), \quad (H {v})_{{{th}}} = {mu}({t}_0) + "
        rf"\frac{{\partial^2 L}}{{\partial {th} \partial {h}({t}_1)}} {s}({t}_1) + "
        rf"\frac{{\partial^2 L}}{{\partial {th}^2}} {v}_{{{th}}}",
    ]
    return lines


def second_order_latex(so, *, bold_vectors: bool = False, environment: str = "align") -> str:
    """Dynamics, tangent system, first- and second-order adjoint ODEs, boundary values."""
    t = so.system.t
    dynamics = _lines(_dynamics(so.system), t, bold_vectors)
    lines = [
        *dynamics,
        *_lines(so.tangent_blocks(), t, bold_vectors),
        *_lines(so.adjoint_blocks(), t, bold_vectors),
        *boundary_lines(so, bold_vectors=bold_vectors),
    ]
    return _wrap(lines, environment)


def _dynamics(system) -> list[tuple[sp.Basic, sp.Basic]]:
    if system.is_matrix_level:
        return [(system.state[0], system.rhs)]
    return list(zip(system.state, system.rhs))


def second_order_markdown(so) -> str:
    """Markdown sections: dynamics, tangent system, backward system, boundary values."""
    t = so.system.t
    n = len(_lines([(so.a, so.rhs_a), *zip(so.a_theta, so.rhs_theta)], t, False))
    backward = _lines(so.adjoint_blocks(), t, False)
    title = so.system.name or "system"
    cost = "" if so.running_cost is None else f" with the running cost $g = {latex(so.running_cost)}$"
    parts = [
        f"### Dynamics of {title}",
        "$$\n" + system_latex(so.system) + "\n$$",
        "### Tangent system along $v = (v_{h_0}, v_\\theta)$, integrated forward from $t_0$",
        "$$\n" + _wrap(_lines(so.tangent_blocks(), t, False), "aligned") + "\n$$",
        f"### First-order adjoint{cost}, integrated from $t_1$ back to $t_0$",
        "$$\n" + _wrap(backward[:n], "aligned") + "\n$$",
        "### Second-order adjoint (the tangent of the adjoint), integrated with it",
        "$$\n" + _wrap(backward[n:], "aligned") + "\n$$",
        "### Boundary values and the Hessian-vector product",
        "$$\n" + _wrap(boundary_lines(so), "aligned") + "\n$$",
    ]
    return "\n\n".join(parts) + "\n"


def _plain(expr: object) -> str:
    """One line of text: ``a_{x}`` as ``a_x``, ``\\lambda_{x}`` as ``lambda_x``."""
    text = sp.sstr(expr)
    text = text.replace("\\", "")
    return re.sub(r"_\{(\w+)\}", r"_\1", text)


def _text_entries(symbol: sp.Basic, rhs: sp.Basic) -> list[tuple[str, sp.Basic]]:
    if isinstance(symbol, sp.MatrixBase):
        return [(_plain(s), r) for s, r in zip(symbol, rhs)]
    if isinstance(rhs, sp.MatrixExpr | sp.MatrixBase) and not isinstance(symbol, sp.MatrixSymbol):
        m = rhs.as_explicit()
        return [(f"{_plain(symbol)}[{i},{j}]", m[i, j]) for i in range(m.rows) for j in range(m.cols)]
    return [(_plain(symbol), rhs)]


def second_order_text(so) -> str:
    """Plain text, one equation per line (``adjoint-sym derive --order 2``)."""
    system, t = so.system, so.system.t
    lines = [system.name or "system", "", "Dynamics:"]
    lines += [f"  d{_plain(s)}/d{t} = {_plain(f)}" for s, f in _dynamics(system)]
    lines += ["", f"Tangent system along the direction of (h0, theta), integrated forward from {t}0:"]
    for symbol, rhs in so.tangent_blocks():
        lines += [f"  d{name}/d{t} = {_plain(r)}" for name, r in _text_entries(symbol, rhs)]
    lines += ["", f"First- and second-order adjoint, integrated backward from {t}1 to {t}0:"]
    for symbol, rhs in so.adjoint_blocks():
        lines += [f"  d{name}/d{t} = {_plain(r)}" for name, r in _text_entries(symbol, rhs)]
    note = Notation.of(system)
    tangent, v, lam, mu = (n.plain for n in note.second_order_letters(system))
    a, a_th, h, th = note.adjoint.plain, note.adjoint_params.plain, note.state.plain, note.params.plain
    second = f"d2L/d{h}2 {tangent}({t}_i) + d2L/d{h} d{th} {v}_{th}"
    lines += [
        "",
        "Boundary values:",
        f"  {tangent}({t}0) = {v}_{h}0,  {a}({t}1) = dL/d{h}({t}1),  {a_th}({t}1) = 0",
        f"  {lam}({t}1) = d2L/d{h}2 {tangent}({t}1) + d2L/d{h} d{th} {v}_{th},  {mu}({t}1) = 0",
        f"  at each observation time {t}_i: {a} += dL/d{h}({t}_i), {lam} += {second}",
        "",
        f"Hessian-vector product ({t}0 and {t}1 held fixed):",
        f"  (H {v})_{h}0 = {lam}({t}0),  (H {v})_{th} = {mu}({t}0) + sum_i [d2L/d{th} d{h} {tangent}({t}_i) "
        f"+ d2L/d{th}2 {v}_{th}]",
    ]
    return "\n".join(lines) + "\n"


__all__ = ["boundary_lines", "second_order_latex", "second_order_markdown", "second_order_text"]
