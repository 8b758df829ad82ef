"""One gate between SymPy and the kernels: what may enter a system or a loss, and in what form.

SymPy can build things the generated numpy code cannot evaluate or the adjoint cannot
differentiate: infinities (``x/0`` is ``zoo*x``), ``nan`` (``0/0``), the imaginary unit
(``sqrt(-1)``), constants beyond float64 (``1e308*1e308``, ``exp(1e308)``, a
5,000-digit integer), distributions (``DiracDelta``, the derivative of ``sign``),
undefined functions, unevaluated integrals and derivatives, comparisons and ``Piecewise``.
:func:`canonical` walks an expression once, at construction, and

* **refuses** each of those with a message naming the piece and what to write instead;
* **rewrites** the non-smooth functions into forms whose derivatives stay evaluable:
  ``sign`` and ``Heaviside`` have derivative 0 (true everywhere but at the jump, where
  neither has one), ``Abs(u)' = sign(u) u'``, and ``Max``/``Min`` pass the derivative to
  the argument that is largest/smallest (half to each at a tie).  These are the
  conventions of every automatic-differentiation framework; a gradient at a kink is a
  one-sided choice, which :mod:`adjoint_sym.verify` will see as a disagreement between
  methods if a trajectory sits on one;
* **counts** the nodes, refusing more than the budget (``max_expression_size``).

Everything is real here: ``re(u)`` is ``u``, ``im(u)`` is ``0``, ``conjugate(u)`` is ``u``.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from .._limits import current_limits, how_to_raise
from ..errors import UnsupportedExpressionError
from .names import shown

# -- the non-smooth functions, with derivatives that stay evaluable ----------------------
# Each keeps SymPy's name, so it prints (text, LaTeX) exactly as SymPy's does.


class sign(sp.sign):
    """``sign(u)`` with derivative 0: exact wherever ``u != 0``; at 0 it has none."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    def _eval_derivative(self, x: sp.Basic) -> sp.Expr:
        return sp.S.Zero


class Abs(sp.Abs):
    """``|u|`` with ``d|u| = sign(u) du`` for real ``u``."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sign(self.args[0])

    def _eval_derivative(self, x: sp.Basic) -> sp.Expr:
        return self.args[0].diff(x) * sign(self.args[0])


def _step(u: sp.Expr) -> sp.Expr:
    """Heaviside's step ``H(u)`` (``H(0) = 1/2``) as ``(1 + sign(u))/2``: derivative 0."""
    return (1 + sign(u)) / 2


def _simplified_like(cls, plain_cls, args, assumptions):
    """``cls(*args)`` with SymPy's own ``plain_cls`` doing the simplification.

    SymPy's ``Max``/``Min`` simplify by comparing ``cls == Min`` (not ``issubclass``), so a
    subclass of ``Max`` would be simplified as if it were ``Min``: ``Max(0.0, -0.1)`` gave
    ``-0.1``.  The plain class simplifies; the subclass only carries the result's arguments.
    """
    plain = plain_cls(*args, **assumptions)
    if not isinstance(plain, plain_cls):  # collapsed to one argument, or to a number
        return plain
    obj = sp.Expr.__new__(cls, *plain.args)
    obj._argset = frozenset(plain.args)
    return obj


class Max(sp.Max):
    """``Max(a, b, ...)``: the derivative goes to the largest argument."""

    def __new__(cls, *args, **assumptions):
        return _simplified_like(cls, sp.Max, args, assumptions)

    def fdiff(self, argindex: int) -> sp.Expr:
        others = [a for i, a in enumerate(self.args) if i != argindex - 1]
        return _step(self.args[argindex - 1] - Max(*others))


class Min(sp.Min):
    """``Min(a, b, ...)``: the derivative goes to the smallest argument."""

    def __new__(cls, *args, **assumptions):
        return _simplified_like(cls, sp.Min, args, assumptions)

    def fdiff(self, argindex: int) -> sp.Expr:
        others = [a for i, a in enumerate(self.args) if i != argindex - 1]
        return _step(Min(*others) - self.args[argindex - 1])


def heaviside(u: sp.Expr, h0: sp.Expr = sp.S.Half) -> sp.Expr:
    """Heaviside's step with ``H(0) = h0``, in terms of :class:`sign` (derivative 0)."""
    if h0 == sp.S.Half:
        return _step(u)
    return _step(u) + (h0 - sp.S.Half) * (1 - sign(u) ** 2)  # sign(u)**2 is 1 except at u = 0


#: SymPy's classes and what each becomes (exact types: our subclasses stay as they are).
_REWRITE = {
    sp.sign: sign,
    sp.Abs: Abs,
    sp.Max: Max,
    sp.Min: Min,
    sp.Heaviside: heaviside,
    sp.re: lambda u: u,
    sp.im: lambda u: sp.S.Zero,
    sp.conjugate: lambda u: u,
}

#: Smooth functions the printer and the differentiation both handle (their derivatives are
#: in this list too: besselj' is besselj, gamma' is gamma * polygamma).
SMOOTH = (
    sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc, sp.asin, sp.acos, sp.atan, sp.acot, sp.atan2,
    sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.asinh, sp.acosh, sp.atanh, sp.exp, sp.log, sp.erf, sp.erfc,
    sp.besselj, sp.bessely, sp.besseli, sp.besselk, sp.gamma, sp.loggamma, sp.polygamma,
)  # fmt: skip
_FUNCTIONS = frozenset(SMOOTH) | {sign, Abs, Max, Min}
_ARITHMETIC = (sp.Add, sp.Mul, sp.Pow)
_MATRIX = (
    sp.MatAdd, sp.MatMul, HadamardProduct, HadamardPower, sp.Transpose, sp.Identity, sp.ZeroMatrix,
    sp.OneMatrix, sp.ImmutableDenseMatrix, sp.MutableDenseMatrix,
)  # fmt: skip
_FUNCTION_NAMES = ", ".join(sorted({f.__name__ for f in _FUNCTIONS} | {"Heaviside"}))

_CONDITIONS = (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction, sp.logic.boolalg.BooleanAtom)

#: Pieces refused by kind, with what to write instead.
_REFUSED = (
    (sp.DiracDelta, "is a distribution (the derivative of a step), which has no value to compute; "
     "sign and Heaviside are differentiated as 0 away from their jump, so write the step itself"),
    (sp.Piecewise, "is not supported: write the branches with Max, Min, sign or Heaviside "
     "(Max(x, 0) for 'x if x > 0 else 0')"),
    (sp.Integral, "cannot be evaluated by the kernels: compute it in closed form (.doit()), "
     "or add a state q with dq/dt = the integrand"),
    (sp.Derivative, "is an unevaluated derivative: evaluate it (.doit()) or write the derivative out"),
    (sp.Subs, "is an unevaluated substitution: evaluate it (.doit())"),
    (sp.Sum, "is an unevaluated sum: write it out or evaluate it (.doit())"),
    (sp.Product, "is an unevaluated product: write it out or evaluate it (.doit())"),
    (AppliedUndef, "is an undefined function with no formula to evaluate or differentiate: "
     "replace it by an expression in the states, parameters and time"),
    (_CONDITIONS, "is a condition, not a number: write a switch with sign or Heaviside"),
)  # fmt: skip

_SPECIAL_NUMBERS = {
    sp.S.NaN: "an undefined value (nan, from 0/0, 0*oo or oo - oo)",
    sp.S.ComplexInfinity: "complex infinity (zoo, from a division by zero or log(0))",
    sp.S.Infinity: "an infinite value (oo)",
    sp.S.NegativeInfinity: "an infinite value (-oo)",
    sp.S.ImaginaryUnit: "the imaginary unit I (from sqrt(-1) or the log of a negative number); "
    "states, parameters and right-hand sides are real",
}

#: Magnitude of the largest finite float64.
_FLOAT_MAX = float.fromhex("0x1.fffffffffffffp+1023")


def canonical(
    expr: sp.Basic, where: str, *, budget: int | None = None, source: str | None = None
) -> tuple[sp.Basic, int]:
    """``expr`` validated and rewritten for the kernels, and its number of distinct nodes.

    Parameters
    ----------
    expr : sympy.Basic
        A scalar expression or a matrix expression.
    where : str
        How messages name the expression (``"rhs[0]"``).
    budget : int, optional
        Refuse more nodes than this (default: the ``max_expression_size`` limit).
    source : str, optional
        The text ``expr`` was parsed from, quoted in messages instead of the SymPy form.

    Raises
    ------
    UnsupportedExpressionError
        Naming the piece refused and what to write instead, or the size limit.

    Examples
    --------
    >>> x = sp.Symbol("x", real=True)
    >>> e, n = canonical(sp.Max(x, 0) + sp.sign(x), "rhs[0]")
    >>> e.diff(x)
    sign(x)/2 + 1/2
    >>> canonical(x / 0, "rhs[0]")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    adjoint_sym.errors.UnsupportedExpressionError: rhs[0]: complex infinity (zoo, from a division by zero ...
    """
    limit = current_limits().max_expression_size if budget is None else budget
    return _Walk(where, expr, limit, source).run()


class _Walk:
    """An iterative post-order walk (no recursion limit) that visits each distinct node once."""

    def __init__(self, where: str, root: sp.Basic, limit: int, source: str | None = None) -> None:
        self.where, self.root, self.limit = where, root, limit
        self.source = None if source is None else shown(source, limit=80)
        self.done: dict[sp.Basic, sp.Basic] = {}
        self.constant: dict[sp.Basic, bool] = {}

    def fail(self, piece: sp.Basic, what: str) -> UnsupportedExpressionError:
        return UnsupportedExpressionError(f"{self.where}: {_text(piece)} {what}{self._context(piece)}")

    def _context(self, piece: sp.Basic) -> str:
        if self.source is not None:
            return f" in {self.source}"
        return "" if piece is self.root else f" in {_text(self.root)}"

    def run(self) -> tuple[sp.Basic, int]:
        stack: list[tuple[sp.Basic, bool]] = [(self.root, False)]
        seen = 0
        while stack:
            node, children_done = stack.pop()
            if node in self.done:
                continue
            if not children_done:
                seen += 1
                if seen > self.limit:
                    total = current_limits().max_expression_size
                    raise UnsupportedExpressionError(
                        f"{self.where}: the right-hand side and loss come to more than {total} expression nodes "
                        f"(the max_expression_size limit); {how_to_raise('max_expression_size')}"
                    )
                self._admit(node)
                stack.append((node, True))
                stack.extend((c, False) for c in _children(node) if c not in self.done)
            else:
                self.done[node] = self._rebuild(node)
        result = self.done[self.root]
        if self.constant[self.root] and self.root.args:
            self._evaluate(result)
        return result, seen

    # -- before the children: refuse by kind --------------------------------------------
    def _admit(self, node: sp.Basic) -> None:
        special = _SPECIAL_NUMBERS.get(node)
        if special is not None:
            raise UnsupportedExpressionError(f"{self.where}: {special}" + self._context(node))
        for kind, why in _REFUSED:
            if isinstance(node, kind):
                raise self.fail(node, why)
        if isinstance(node, sp.Rational):
            big = max(abs(node.p).bit_length(), abs(node.q).bit_length())
            if big > 1023:
                raise UnsupportedExpressionError(
                    f"{self.where}: a constant of about {int(big * 0.30103)} digits is beyond the range of "
                    f"float64 (about 1.8e308)" + self._context(node)
                )
        elif isinstance(node, sp.Float):
            # (SymPy turns a NaN or infinite Float into nan or oo, refused above)
            if abs(float(node)) > _FLOAT_MAX:
                raise UnsupportedExpressionError(
                    f"{self.where}: a constant of about {_magnitude(node)} is beyond the range of float64 "
                    "(about 1.8e308)" + self._context(node)
                )
        elif isinstance(node, (sp.Function, sp.Max, sp.Min)):
            if type(node) not in _FUNCTIONS and type(node) not in _REWRITE:
                raise self.fail(
                    node,
                    f"uses the function {type(node).__name__}, which is not supported (supported: {_FUNCTION_NAMES})",
                )
        elif isinstance(node, ElementwiseApplyFunction):
            self._check_body(node)
        elif not isinstance(node, (*_ARITHMETIC, *_MATRIX, *_LEAVES)):
            raise self.fail(node, f"({type(node).__name__}) is not supported in an expression")

    def _check_body(self, node: ElementwiseApplyFunction) -> None:
        u = sp.Dummy("u", real=True)
        body = node.function(u)
        inner, _ = _Walk(self.where, body, self.limit).run()
        if inner != body:  # e.g. sign inside the applied function: rewritten below
            self.done[node.function] = sp.Lambda(u, inner)

    # -- after the children: rebuild, rewrite, check constants ---------------------------
    def _rebuild(self, node: sp.Basic) -> sp.Basic:
        kids = _children(node)
        # Matrices count as variable: their constant entries are evaluated one by one.
        variable = isinstance(node, (sp.Symbol, MatrixElement, sp.MatrixBase, sp.MatrixExpr))
        constant = not variable and all(self.constant[c] for c in kids)
        self.constant[node] = constant
        if not constant:  # a maximal constant subtree is evaluated once, here
            for c in kids:
                if self.constant[c] and c.args:
                    self._evaluate(self.done[c])
        if isinstance(node, ElementwiseApplyFunction):
            function = self.done.get(node.function, node.function)
            expr = self.done[node.expr]
            return node if (function, expr) == (node.function, node.expr) else ElementwiseApplyFunction(function, expr)
        new_args = [self.done[c] for c in kids]
        rewrite = _REWRITE.get(type(node))
        if rewrite is not None:
            out = rewrite(*new_args)
            # SymPy's evaluation may hand back its own classes (Abs(2*x) -> 2*Abs(x)): once more.
            if any(type(a) in _REWRITE for a in sp.preorder_traversal(out)):
                out, _ = _Walk(self.where, out, self.limit).run()
            return out
        if kids and any(new is not old for new, old in zip(new_args, kids)):
            return _rebuild_with(node, kids, new_args)
        return node

    def _evaluate(self, value: sp.Basic) -> None:
        try:
            number = complex(value.evalf(20))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError, ArithmeticError):
            raise self.fail(value, "cannot be evaluated to a real number") from None
        if number.imag != 0 and abs(number.imag) > 1e-15 * abs(number.real):
            raise self.fail(value, f"is not real ({number:.6g}); the right-hand side must be real")
        if not abs(number.real) <= _FLOAT_MAX:
            raise self.fail(value, "is beyond the range of float64 (about 1.8e308)")


_LEAVES = (sp.Symbol, sp.Dummy, sp.MatrixSymbol, MatrixElement, sp.Number, sp.NumberSymbol)


def _children(node: sp.Basic) -> tuple:
    if isinstance(node, (sp.MatrixSymbol, sp.Atom)):
        return ()
    if isinstance(node, MatrixElement):
        return (node.args[0],)
    if isinstance(node, ElementwiseApplyFunction):
        return (node.expr,)
    if isinstance(node, sp.MatrixBase):
        return tuple(node)
    if isinstance(node, (sp.Identity, sp.ZeroMatrix, sp.OneMatrix)):
        return ()
    return node.args


def _rebuild_with(node: sp.Basic, kids: tuple, new_args: list) -> sp.Basic:
    if isinstance(node, sp.MatrixBase):
        return sp.ImmutableMatrix(node.rows, node.cols, new_args)
    if isinstance(node, MatrixElement):
        return node.func(new_args[0], *node.args[1:])
    return node.func(*new_args)


def _magnitude(value: sp.Float) -> str:
    _, _, exponent, bits = value._mpf_
    try:
        return f"1e{float((exponent + bits) * 0.30103):.4g}".replace("e+", "e")
    except OverflowError:
        return "10**(10**308)"


def _text(piece: sp.Basic) -> str:
    try:
        return shown(sp.sstr(piece), limit=80)
    except ValueError:  # a huge integer inside: str() refuses past 4300 digits
        return f"a {type(piece).__name__} expression"


__all__ = ["SMOOTH", "Abs", "Max", "Min", "canonical", "heaviside", "sign"]
