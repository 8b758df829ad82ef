"""Turn user text into SymPy expressions through a whitelist, never through ``eval``.

SymPy's ``sympify`` and ``parse_expr`` call ``eval`` underneath, so they must never see
user text.  Instead the text is parsed by Python's :mod:`ast` (which only builds a tree,
it executes nothing), every node is checked against a whitelist, and the SymPy
expression is built node by node from declared symbols and whitelisted functions.

Bounded on purpose: text length, node count, nesting depth, integer size and constant
exponents, so that ``"x**10**10**10"`` is refused instead of exhausting memory.  The
result then passes :func:`adjoint_sym.symbolic.validate.canonical`, which refuses what the
kernels cannot evaluate (``x/0``, ``sqrt(-1)``, ``exp(1e308)``) and gives ``sign``, ``Abs``,
``Max``, ``Min`` and ``Heaviside`` derivatives that stay evaluable.  A refusal says what to
write instead (``x**2`` for ``x^2``, ``sin(x)`` for ``np.sin(x)``, the closest declared name).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

import sympy as sp

from ..errors import UnsupportedExpressionError
from . import validate
from .names import did_you_mean

MAX_TEXT_LENGTH = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 100
MAX_INTEGER_DIGITS = 30
_MAX_INTEGER_BITS = int(MAX_INTEGER_DIGITS * 3.3219280948873626) + 1  # log2(10) bits per digit
MAX_ABS_EXPONENT = 64


def _sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


def _softplus(x: sp.Expr) -> sp.Expr:
    return sp.log(1 + sp.exp(x))


#: Functions a user expression may call, by the name it calls them with.
FUNCTIONS: dict[str, Callable[..., sp.Expr]] = {
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "asin": sp.asin,
    "acos": sp.acos,
    "atan": sp.atan,
    "arctan": sp.atan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "erf": sp.erf,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "abs": validate.Abs,
    "Abs": validate.Abs,
    "sign": validate.sign,
    "heaviside": validate.heaviside,
    "Heaviside": validate.heaviside,
    "max": validate.Max,
    "Max": validate.Max,
    "min": validate.Min,
    "Min": validate.Min,
}

#: What a refused operator is usually meant to be, and how to write it.
_OPERATOR_HINTS = {
    ast.BitXor: "'^' is not a power here: write x**2",
    ast.MatMult: "'@' is not available: address matrix entries as W[i, j]",
    ast.FloorDiv: "'//' is not available: write a / b",
    ast.Mod: "'%' is not available",
    ast.BitAnd: "'&' is not available",
    ast.BitOr: "'|' is not available",
    ast.LShift: "'<<' is not available",
    ast.RShift: "'>>' is not available",
}

#: Named constants; a declared symbol of the same name wins.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi}

#: The arithmetic operators the whitelist admits (``**`` is handled on its own).
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def parse_counted(
    text: str,
    symbols: Mapping[str, sp.Basic],
    *,
    where: str = "expression",
    budget: int | None = None,
) -> tuple[sp.Expr, int]:
    """:func:`parse_expression` and the number of distinct nodes of the result."""
    if not isinstance(text, str):
        raise UnsupportedExpressionError(f"{where}: expected a string, got {type(text).__name__} {text!r}")
    if len(text) > MAX_TEXT_LENGTH:
        raise UnsupportedExpressionError(
            f"{where}: expression is {len(text)} characters long; the limit is {MAX_TEXT_LENGTH}"
        )
    if not text.strip():
        raise UnsupportedExpressionError(f"{where}: expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (RecursionError, MemoryError):
        raise UnsupportedExpressionError(f"{where}: cannot parse: expression nests too deeply") from None
    except (SyntaxError, ValueError) as exc:
        shown = text if len(text) <= 80 else text[:77] + "..."
        detail = getattr(exc, "msg", None) or str(exc)
        raise UnsupportedExpressionError(f"{where}: cannot parse {shown!r}: {detail}") from None
    builder = _Builder(symbols, where, text)
    builder.count(tree)
    expr = builder.build(tree.body, depth=0)
    return validate.canonical(expr, where, budget=budget, source=text)


def parse_expression(
    text: str,
    symbols: Mapping[str, sp.Basic],
    *,
    where: str = "expression",
    budget: int | None = None,
) -> sp.Expr:
    """Parse ``text`` into a SymPy expression over the declared ``symbols``.

    Parameters
    ----------
    text : str
        Arithmetic in Python syntax: ``+ - * / **``, numbers, declared names,
        whitelisted function calls (:data:`FUNCTIONS`) and integer subscripts of
        declared matrix symbols (``W[0, 1]``, ``h[2]``).
    symbols : mapping of str to sympy.Symbol or sympy.MatrixSymbol
        The names the text may use.
    where : str
        How to name this text in error messages, e.g. ``"rhs[1]"``.
    budget : int, optional
        The most expression nodes allowed (default: the ``max_expression_size`` limit).

    Returns
    -------
    sympy.Expr

    Raises
    ------
    UnsupportedExpressionError
        For syntax errors, unknown names, anything outside the whitelist, values the
        kernels cannot evaluate, or text beyond the size bounds; the message names the
        offending piece and what to write instead.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y = sp.symbols("x y")
    >>> parse_expression("x**2 + sin(y)", {"x": x, "y": y})
    x**2 + sin(y)
    """
    return parse_counted(text, symbols, where=where, budget=budget)[0]


class _Builder:
    def __init__(self, symbols: Mapping[str, sp.Basic], where: str, text: str) -> None:
        self.symbols = dict(symbols)
        self.where = where
        self.text = text

    def fail(self, what: str) -> UnsupportedExpressionError:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return UnsupportedExpressionError(f"{self.where}: {what} in {shown!r}")

    def count(self, tree: ast.AST) -> None:
        """Bound the size, and refuse dunder names wherever they stand, before building."""
        n = 0
        for node in ast.walk(tree):
            n += 1
            name = getattr(node, "id", None) or getattr(node, "attr", None)
            if isinstance(name, str) and name.startswith("__"):
                raise self.fail(f"dunder name {name!r} is not allowed")
        if n > MAX_NODES:
            raise self.fail(f"expression has {n} nodes; the limit is {MAX_NODES}")

    def build(self, node: ast.AST, depth: int) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise self.fail(f"expression nests deeper than {MAX_DEPTH} levels")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(f"{_describe(node)} is not allowed{_hint(node)}")
        return method(node, depth + 1)

    def _Constant(self, node: ast.Constant, depth: int) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"constant {value!r} is not a number")
        if isinstance(value, int):
            # bit_length, not str(): a 5,000-digit hex literal would exceed Python's str limit.
            if value.bit_length() > _MAX_INTEGER_BITS or len(str(abs(value))) > MAX_INTEGER_DIGITS:
                raise self.fail(f"integer literal with more than {MAX_INTEGER_DIGITS} digits")
            return sp.Integer(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(f"non-finite number {value!r}")
        return sp.Float(repr(value), 17)

    def _Name(self, node: ast.Name, depth: int) -> sp.Expr:
        name = node.id
        if name.startswith("__"):
            raise self.fail(f"dunder name {name!r} is not allowed")
        if name in self.symbols:
            value = self.symbols[name]
            if isinstance(value, sp.MatrixSymbol):
                rows, cols = value.shape
                raise self.fail(
                    f"{name!r} is a {rows}x{cols} matrix parameter; an expression is a number, so address its "
                    f"entries as {name}[i, j] (0 <= i < {rows}, 0 <= j < {cols})"
                )
            return value
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise self.fail(f"function {name!r} used without a call: write {name}(...)")
        known = ", ".join(sorted(self.symbols)) or "none"
        hint = did_you_mean(name, [*self.symbols, *CONSTANTS])
        raise self.fail(
            f"unknown symbol {name!r} (declared: {known}){hint}; if {name!r} is a parameter, declare it "
            "(in a spec: under [params])"
        )

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> sp.Expr:
        operand = self.build(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise self.fail(f"operator {type(node.op).__name__} is not allowed")

    def _BinOp(self, node: ast.BinOp, depth: int) -> sp.Expr:
        if isinstance(node.op, ast.Pow):
            return self._power(node, depth)
        if type(node.op) not in _BINARY:
            hint = _OPERATOR_HINTS.get(type(node.op), "")
            raise self.fail(f"operator {type(node.op).__name__} is not allowed" + (f": {hint}" if hint else ""))
        # A long sum a + b + c + ... is a left-leaning chain in the tree; walk it
        # iteratively so that its length is not mistaken for nesting depth.
        chain: list[tuple[type, ast.AST]] = []
        while isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            chain.append((type(node.op), node.right))
            node = node.left
        # Each run of + and - (of * and /) becomes one Add (one Mul): SymPy's pairwise a + b
        # re-sorts the growing sum every time, quadratic in its length (8 s for 400 terms).
        pending: list[sp.Expr] = [self.build(node, depth)]
        kind = None  # how the pending operands combine: ast.Add or ast.Mult
        for op, right in reversed(chain):
            operand = self.build(right, depth)
            if op is ast.Div:
                if operand.is_zero:
                    raise self.fail("division by zero")
                operand = self._apply(lambda b: b**-1, operand)
            elif op is ast.Sub:
                operand = self._apply(lambda b: -b, operand)
            combine = ast.Add if op in (ast.Add, ast.Sub) else ast.Mult
            if kind is not None and combine is not kind:
                pending = [self._combine(kind, pending)]
            kind = combine
            pending.append(operand)
        return pending[0] if kind is None else self._combine(kind, pending)

    def _combine(self, kind: type, operands: list[sp.Expr]) -> sp.Expr:
        return self._apply(sp.Add if kind is ast.Add else sp.Mul, *operands)

    def _apply(self, function: Callable, *args: sp.Expr) -> sp.Expr:
        """SymPy arithmetic, its own refusals (shapes, undefined operations) reported as ours."""
        try:
            return function(*args)
        except (TypeError, ValueError, NotImplementedError, ArithmeticError, sp.matrices.ShapeError) as exc:
            raise self.fail(f"cannot compute this: {exc or type(exc).__name__}") from None

    def _power(self, node: ast.BinOp, depth: int) -> sp.Expr:
        base = self.build(node.left, depth)
        exponent = self.build(node.right, depth)
        if exponent.is_number and abs(exponent) > MAX_ABS_EXPONENT:
            raise self.fail(f"exponent {exponent} exceeds the limit of {MAX_ABS_EXPONENT}")
        # Constant folding like 10**60 would create huge integers; keep it bounded.
        constant = base.is_number and exponent.is_number and abs(base) > 1 and abs(exponent) > 1
        if constant and float(abs(exponent)) * float(sp.log(abs(base), 10)) > 300:
            raise self.fail(f"constant power {base}**{exponent} is too large")
        if base.is_zero and exponent.is_number and exponent.is_negative:
            raise self.fail("zero raised to a negative power (a division by zero)")
        return self._apply(lambda a, b: a**b, base, exponent)

    def _Call(self, node: ast.Call, depth: int) -> sp.Expr:
        if isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            hint = f"write {attr}(...) without the module prefix" if attr in FUNCTIONS else "call a listed function"
            raise self.fail(f"call of {_describe(node.func)} is not allowed: {hint}")
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"call of {_describe(node.func)} is not allowed{_hint(node.func)}")
        name = node.func.id
        if name not in FUNCTIONS or name in self.symbols:
            hint = did_you_mean(name, FUNCTIONS)
            raise self.fail(f"function {name!r} is not allowed{hint} (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise self.fail(f"keyword arguments in call of {name!r} are not allowed")
        if not node.args or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"call of {name!r} needs plain positional arguments")
        args = [self.build(arg, depth) for arg in node.args]
        try:
            return FUNCTIONS[name](*args)
        except (TypeError, ValueError, NotImplementedError, ArithmeticError) as exc:
            raise self.fail(f"bad arguments to {name!r}: {exc or type(exc).__name__}") from None

    def _Subscript(self, node: ast.Subscript, depth: int) -> sp.Expr:
        if isinstance(node.value, ast.Name) and isinstance(self.symbols.get(node.value.id), sp.MatrixSymbol):
            target = self.symbols[node.value.id]
        else:
            target = self.build(node.value, depth)
        if not isinstance(target, sp.MatrixSymbol):
            raise self.fail(f"subscript of {target} which is not a matrix symbol")
        index = node.slice
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        values = []
        for item in items:
            if not (isinstance(item, ast.Constant) and type(item.value) is int):
                raise self.fail("subscripts must be integer literals")
            values.append(item.value)
        rows, cols = target.shape
        if len(values) == 1 and cols == 1:
            values.append(0)
        if len(values) != 2 or not (0 <= values[0] < rows and 0 <= values[1] < cols):
            raise self.fail(f"index {tuple(values)} out of range for {target} of shape {target.shape}")
        return target[values[0], values[1]]


#: What to write instead of a construct outside the whitelist.
_SYNTAX_HINTS = {
    ast.Lambda: "write the expression itself, in the declared names",
    ast.Compare: "write a switch with sign(...) or Heaviside(...), a choice with Max(...) or Min(...)",
    ast.IfExp: "write the choice with Max, Min, sign or Heaviside",
    ast.BoolOp: "write a switch with sign(...) or Heaviside(...)",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        owner = f"{node.value.id}." if isinstance(node.value, ast.Name) else "."
        return f"attribute access '{owner}{node.attr}'"
    if isinstance(node, ast.Lambda):
        return "a lambda"
    if isinstance(node, ast.Compare):
        return "a comparison"
    if isinstance(node, ast.IfExp):
        return "a conditional expression"
    return f"syntax {type(node).__name__}"


def _hint(node: ast.AST) -> str:
    hint = _SYNTAX_HINTS.get(type(node))
    return f": {hint}" if hint else ""
