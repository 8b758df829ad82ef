r"""LaTeX pieces: SymPy's LaTeX parser, then the same whitelist as text, never ``eval``.

``sympy.parsing.latex.parse_latex`` (ANTLR, needs ``antlr4-python3-runtime`` 4.11: the
``[latex]`` extra) builds a SymPy tree from the LaTeX.  That tree is *not* trusted: it is
written back out as plain text, node by node, from a fixed set of node types (numbers,
names, ``+ - * / **``, the whitelisted functions), and the text goes through
:func:`adjoint_sym.symbolic.parse.parse_expression` with the claim's declared names, exactly
as a piece given as text.  Anything else (derivatives, integrals, limits, sums, unknown
names) is refused with a message naming the piece.

Two readings of the ANTLR grammar are repaired because they are never what a derivation
means: a declared name directly followed by parentheses, ``a_{x} \left(a - b y\right)``,
is a product, not a function call; and ``d y`` (read as the differential ``dy``) is the
product ``d*y`` when ``d`` and ``y`` are both declared.  Names are normalised:
``a_{x}`` is ``a_x``, ``\lambda_{x}`` is ``lambda_x``, ``W_{01}`` is the
entry ``W[0, 1]`` of a declared matrix ``W``, ``e`` (undeclared) is Euler's number.  An
equation ``lhs = rhs`` is read as its right-hand side (the left one is not parsed).
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.core.function import AppliedUndef

from ...errors import InvalidModelError, UnsupportedExpressionError
from ...symbolic.parse import FUNCTIONS, MAX_TEXT_LENGTH, parse_expression

#: SymPy function classes the whitelist knows, by the name the text parser calls them.
_FUNCTION_NAMES = {
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.asin: "asin",
    sp.acos: "acos",
    sp.atan: "atan",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.tanh: "tanh",
    sp.exp: "exp",
    sp.log: "log",
    sp.erf: "erf",
    sp.Abs: "abs",
    sp.sign: "sign",
    sp.Max: "max",
    sp.Min: "min",
}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SLOT = "adjsymnumber"
_ENTRY = re.compile(r"^(?P<base>[A-Za-z][A-Za-z0-9]*)_(?P<i>\d+),?(?P<j>\d+)?$")


def _parser():
    try:
        from sympy.parsing.latex import parse_latex
        from sympy.parsing.latex.errors import LaTeXParsingError
    except ImportError as exc:  # pragma: no cover - the parser ships with SymPy
        raise InvalidModelError(f"SymPy's LaTeX parser is not available: {exc}") from None
    return parse_latex, LaTeXParsingError


def parse_latex_expression(text: object, symbols: dict, *, where: str) -> sp.Expr:
    """Read one LaTeX expression over the declared ``symbols``; see the module documentation.

    Examples
    --------
    >>> import sympy as sp
    >>> a_x, k = sp.symbols("a_x k")
    >>> parse_latex_expression(r"-k \\, a_{x}", {"a_x": a_x, "k": k}, where="claim")
    -a_x*k
    """
    if not isinstance(text, str):
        raise InvalidModelError(f"{where}: expected a LaTeX string, got {type(text).__name__} {text!r}")
    if len(text) > MAX_TEXT_LENGTH:
        raise UnsupportedExpressionError(
            f"{where}: LaTeX is {len(text)} characters long; the limit is {MAX_TEXT_LENGTH}"
        )
    if not text.strip():
        raise UnsupportedExpressionError(f"{where}: the LaTeX is empty")
    parse_latex, parsing_error = _parser()
    cleaned, numbers = _hide_numbers(_right_hand_side(text.strip().strip("$").strip()))
    try:
        tree = parse_latex(cleaned)
    except ImportError as exc:
        raise InvalidModelError(
            f"{where}: LaTeX pieces need antlr4-python3-runtime 4.11 (pip install 'adjoint_sym[latex]'); {exc}"
        ) from None
    except (parsing_error, RecursionError) as exc:
        detail = " ".join(str(exc).split())
        for slot, literal in numbers.items():  # show the user's numbers, not the placeholders
            detail = detail.replace("{\\" + slot + "}", literal)
        detail = detail[:200]
        raise UnsupportedExpressionError(f"{where}: cannot parse the LaTeX {text!r}: {detail}") from None
    plain = _Writer(symbols, where, text, numbers).write(tree)
    return parse_expression(plain, symbols, where=where)


def _right_hand_side(text: str) -> str:
    """The part after the last ``=`` outside braces: a displayed equation's right-hand side."""
    depth, cut = 0, -1
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "=" and depth == 0:
            cut = i
    return text[cut + 1 :].strip() if cut >= 0 else text


def _letters(k: int) -> str:
    out = ""
    while True:
        k, r = divmod(k, 26)
        out = chr(ord("a") + r) + out
        if k == 0:
            return out
        k -= 1


def _hide_numbers(text: str) -> tuple[str, dict[str, str]]:
    """Number literals become placeholder commands ``{\\adjsymnumber<letters>}``.

    SymPy's LaTeX parser turns a number token into a number through ``sympify``, which
    evaluates text; with the numbers hidden, no part of the user's text reaches it.  The
    writer puts each literal back, as text, for the whitelist parser.
    """
    numbers: dict[str, str] = {}

    def hide(match: re.Match) -> str:
        slot = _SLOT + _letters(len(numbers))
        numbers[slot] = match.group(0)
        return "{\\" + slot + "}"

    return _NUMBER.sub(hide, text), numbers


class _Writer:
    """The parsed tree back to whitelisted text, refusing every node it does not know."""

    def __init__(self, symbols: dict, where: str, text: str, numbers: dict[str, str]) -> None:
        self.symbols, self.where, self.text, self.numbers = symbols, where, text, numbers

    def fail(self, what: str) -> UnsupportedExpressionError:
        return UnsupportedExpressionError(f"{self.where}: {what} in the LaTeX {self.text!r}")

    def write(self, node: sp.Basic) -> str:
        if node in (sp.S.One, sp.S.NegativeOne, sp.S.Half):  # the parser's own -1 and 1/2 (for \sqrt)
            return f"({node})"
        if isinstance(node, sp.Rational) and node.q == 1 and abs(node.p) <= 2:
            return f"({int(node.p)})"
        if node is sp.E:
            return "exp(1)"
        if node is sp.pi:
            return "pi"
        if isinstance(node, sp.Symbol):
            return self.name(node.name)
        if isinstance(node, sp.Add):
            return "(" + " + ".join(self.write(a) for a in node.args) + ")"
        if isinstance(node, sp.Mul):
            return "(" + "*".join(self.write(a) for a in node.args) + ")"
        if isinstance(node, sp.Pow):
            return f"({self.write(node.base)})**({self.write(node.exp)})"
        if isinstance(node, AppliedUndef):
            return self.juxtaposed(node)
        if isinstance(node, sp.log) and len(node.args) == 2 and node.args[1] is sp.E:
            return f"log({self.write(node.args[0])})"
        if isinstance(node, sp.Function) and type(node) in _FUNCTION_NAMES:
            name = _FUNCTION_NAMES[type(node)]
            assert name in FUNCTIONS  # the same whitelist as text
            return f"{name}(" + ", ".join(self.write(a) for a in node.args) + ")"
        kind = type(node).__name__
        raise self.fail(f"{kind} is not allowed in a claimed piece (write the right-hand side as an expression)")

    def name(self, raw: str) -> str:
        name = raw.replace("\\", "").replace("{", "").replace("}", "").replace(" ", "")
        if name in self.numbers:
            return f"({self.numbers[name]})"
        for slot in sorted(self.numbers, key=len, reverse=True):  # digits in subscripts: x_{1}, W_{01}
            name = name.replace(slot, self.numbers[slot])
        if name in self.symbols:
            return name
        entry = _ENTRY.match(name)
        if entry and isinstance(self.symbols.get(entry["base"]), sp.MatrixSymbol):
            base, i, j = entry["base"], entry["i"], entry["j"]
            if j is None and len(i) == 2 and self.symbols[base].shape[1] > 1:  # W_{01}: row 0, column 1
                i, j = i[0], i[1]
            return f"{base}[{i}, {j or 0}]"
        if name == "e":
            return "exp(1)"
        if name.startswith("d") and name[1:] in self.symbols and "d" in self.symbols:
            return f"(d*{name[1:]})"  # ANTLR reads "d y" as the differential dy
        known = ", ".join(sorted(self.symbols))
        raise self.fail(f"unknown symbol {name!r} (declared: {known})")

    def juxtaposed(self, node: AppliedUndef) -> str:
        """``a_{x} (a - b y)``: ANTLR reads a name before parentheses as a call; it is a product."""
        name = self.name(node.func.__name__)
        if len(node.args) != 1:
            raise self.fail(f"call of {node.func.__name__!r} is not allowed")
        return f"({name}*{self.write(node.args[0])})"


__all__ = ["parse_latex_expression"]
