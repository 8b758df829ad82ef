"""Symbolic vector-Jacobian products at the matrix level (reverse mode on a SymPy tree).

``vjp(expr, c, wrt)`` returns, for each variable ``v`` in ``wrt``, the matrix
expression ``c^T d(expr)/dv`` shaped like ``v``.  Matrix nodes are differentiated by
the rules of reverse-mode calculus, never by expanding entries, so the cost is linear
in the size of the *expression tree*, not in the number of weights:

==========================  ===============================================
node                        cotangent sent to the children
==========================  ===============================================
``A1 A2 ... Ak`` (MatMul)   ``(A1..Ai-1)^T c (Ai+1..Ak)^T`` to ``Ai``
``A + B``                   ``c`` to each
``A o B`` (Hadamard)        ``c o B`` to ``A``
``A^{o p}``                 ``c o p A^{o(p-1)}``
``sigma.(Z)``               ``c o sigma'.(Z)``
``A^T``                     ``c^T``
``s(t, theta) A``           ``s c`` to ``A``, ``ds/dv sum(c o A)`` to scalars
explicit matrix ``M``       ``sum_ij c_ij dM_ij/dv`` (entry-wise, small by design)
==========================  ===============================================

So for ``f = sigma(W h + b)`` the products come out as ``W^T (sigma'(z) o a)`` and
``(sigma'(z) o a) h^T``, as one would write them by hand.

The forward mode on the same trees (``d(A B) = dA B + A dB``, ``d sigma.(Z) =
sigma'.(Z) o dZ``, ...) is :func:`adjoint_sym.symbolic.jvp.jvp`: a separate derivation
from :func:`vjp`, so the numeric layer's matrix-level Jacobian ``f_h V`` (and with it the
references' Newton iterations) never runs on the adjoint's products.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import UnsupportedExpressionError

Variable = sp.Symbol | sp.MatrixSymbol | MatrixElement


def vjp(
    expr: sp.MatrixBase | sp.MatrixExpr,
    cotangent: sp.MatrixBase | sp.MatrixExpr,
    wrt: Sequence[Variable],
) -> dict[Variable, sp.Basic]:
    """Vector-Jacobian products ``cotangent^T d expr / d v`` for every ``v`` in ``wrt``.

    Parameters
    ----------
    expr : matrix expression or explicit matrix, shape (r, k)
    cotangent : matrix expression or explicit matrix, shape (r, k)
    wrt : sequence of Symbol, MatrixSymbol or MatrixElement
        The variables.  A scalar variable receives a scalar (or a 1x1 matrix
        expression); a matrix symbol receives a matrix of its own shape.

    Returns
    -------
    dict
        Variable to its product; variables ``expr`` does not depend on get zero.

    Examples
    --------
    >>> import sympy as sp
    >>> W, h = sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("h", 2, 1)
    >>> a = sp.MatrixSymbol("a", 3, 1)
    >>> vjp(W * h, a, [W, h])[h]
    W.T*a
    """
    acc: dict[Variable, list[sp.Basic]] = {v: [] for v in wrt}
    _Backprop(acc).send(expr, cotangent)
    return {v: _total(v, parts) for v, parts in acc.items()}


def _total(variable: Variable, parts: list[sp.Basic]) -> sp.Basic:
    if isinstance(variable, sp.MatrixSymbol):
        if not parts:
            return sp.ZeroMatrix(*variable.shape)
        return _simplify_sum(parts)
    scalars = [_as_scalar(p) for p in parts]
    if not scalars:
        return sp.Integer(0)
    if all(not isinstance(s, sp.MatrixExpr) for s in scalars):
        return sp.Add(*scalars)
    return sp.MatAdd(*[s if isinstance(s, sp.MatrixExpr) else sp.ImmutableMatrix([[s]]) for s in scalars])


def _simplify_sum(parts: list[sp.Basic]) -> sp.Basic:
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, sp.MatrixBase) for p in parts):
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return sp.ImmutableMatrix(total)
    return sp.MatAdd(*parts)


def _as_scalar(value: sp.Basic) -> sp.Basic:
    """A 1x1 explicit matrix becomes its entry; other values pass unchanged."""
    if isinstance(value, sp.MatrixBase) and value.shape == (1, 1):
        return value[0, 0]
    return value


def _explicit(m: sp.Basic) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix(m.as_explicit() if isinstance(m, sp.MatrixExpr) else m)


def sum_of_entries(m: sp.Basic) -> sp.Basic:
    """The sum of all entries of ``m`` as a scalar (explicit) or 1x1 matrix expression."""
    if isinstance(m, sp.MatrixBase):
        return sp.Add(*m)
    rows, cols = m.shape
    if cols == 1:
        return sp.OneMatrix(1, rows) * m
    return sp.OneMatrix(1, rows) * m * sp.OneMatrix(cols, 1)


def _inner(a: sp.Basic, b: sp.Basic) -> sp.Basic:
    """``sum(a o b)``: ``a^T b`` for columns, which prints and computes as a dot product."""
    if isinstance(a, sp.MatrixBase) and isinstance(b, sp.MatrixBase):
        return sp.Add(*a.multiply_elementwise(b))
    if a.shape[1] == 1:
        return sp.MatMul(transposed(a), b)
    return sum_of_entries(HadamardProduct(a, b))


def elementwise(function: sp.Lambda, expr: sp.MatrixExpr) -> ElementwiseApplyFunction:
    """``function`` applied entry by entry to ``expr``, for any shape.

    SymPy's constructor tries ``function(expr)`` on 1x1 matrices, which fails for
    bodies such as ``1/(1 + exp(-d))``; build the node directly instead.
    """
    if not isinstance(function, sp.Lambda):
        d = sp.Dummy("d")
        function = sp.Lambda(d, function(d))
    return sp.MatrixExpr.__new__(ElementwiseApplyFunction, function, expr)


def scale(s: sp.Expr, m: sp.Basic) -> sp.Basic:
    """``s * m`` without ``doit``: SymPy's ``*`` would push transposes into operands."""
    if s == 1:
        return m
    if isinstance(m, sp.MatrixBase) or not isinstance(m, sp.MatrixExpr):
        return s * m
    return sp.MatMul(s, m)


def transposed(m: sp.Basic) -> sp.Basic:
    """Transpose without pushing it into the operand: keeps ``tanh.(z)^T`` sharing ``z``."""
    if isinstance(m, sp.MatrixBase):
        return m.T
    if isinstance(m, sp.Transpose):
        return m.arg
    return sp.Transpose(m)


def hadamard(a: sp.Basic, b: sp.Basic) -> sp.Basic:
    """``a o b``: entry by entry for explicit matrices, a ``HadamardProduct`` node otherwise."""
    if isinstance(a, sp.MatrixBase) and isinstance(b, sp.MatrixBase):
        return sp.ImmutableMatrix(a.multiply_elementwise(b))
    return HadamardProduct(a, b)


class _Backprop:
    def __init__(self, acc: dict[Variable, list[sp.Basic]]) -> None:
        self.acc = acc
        self.matrix_vars = {v for v in acc if isinstance(v, sp.MatrixSymbol)}
        self.scalar_vars = [v for v in acc if not isinstance(v, sp.MatrixSymbol)]

    def depends(self, node: sp.Basic) -> bool:
        return any(node.has(v) for v in self.acc)

    def send(self, node: sp.Basic, c: sp.Basic) -> None:
        if not self.depends(node):
            return
        if isinstance(node, sp.MatrixSymbol):
            self.acc[node].append(c)
        elif isinstance(node, sp.MatrixBase):
            self._explicit(node, c)
        elif isinstance(node, sp.MatAdd):
            for arg in node.args:
                self.send(arg, c)
        elif isinstance(node, sp.MatMul):
            self._matmul(node, c)
        elif isinstance(node, HadamardProduct):
            self._hadamard_product(node, c)
        elif isinstance(node, HadamardPower):
            self._hadamard_power(node, c)
        elif isinstance(node, ElementwiseApplyFunction):
            self._elementwise(node, c)
        elif isinstance(node, sp.Transpose):
            self.send(node.arg, transposed(c))
        else:
            raise UnsupportedExpressionError(
                f"cannot differentiate the matrix node {type(node).__name__} ({node}); "
                "use products, sums, transposes, Hadamard products/powers and elementwise functions"
            )

    def _explicit(self, node: sp.MatrixBase, c: sp.Basic) -> None:
        # One pass over each entry's own atoms: asking every variable of every entry
        # (``entry.has(v)``) costs n^2 for a system of n states, almost all misses when the
        # system is sparse (chemistry, discretized PDEs).
        c = _explicit(c)
        scalar_terms: dict[Variable, list[sp.Basic]] = {v: [] for v in self.scalar_vars}
        matrix_terms: dict[sp.MatrixSymbol, dict[tuple[int, int], list[sp.Basic]]] = {}
        for ci, ni in zip(c, node):
            for atom in ni.atoms(sp.Symbol, MatrixElement):
                if atom in scalar_terms:
                    scalar_terms[atom].append(ci * ni.diff(atom))
                elif isinstance(atom, MatrixElement) and atom.parent in self.matrix_vars:
                    slot = matrix_terms.setdefault(atom.parent, {}).setdefault((int(atom.i), int(atom.j)), [])
                    slot.append(ci * ni.diff(atom))
        for v, terms in scalar_terms.items():
            if terms:
                self.acc[v].append(sp.Add(*terms))
        for m, grads in matrix_terms.items():
            rows, cols = m.shape
            entries = [sp.Add(*grads.get((i, j), ())) for i in range(rows) for j in range(cols)]
            self.acc[m].append(sp.ImmutableMatrix(rows, cols, entries))

    def _matmul(self, node: sp.MatMul, c: sp.Basic) -> None:
        coeff, mats = node.as_coeff_matrices()
        product = sp.MatMul(*mats) if len(mats) > 1 else mats[0]
        for v in self.scalar_vars:
            if coeff.has(v):
                self.acc[v].append(scale(coeff.diff(v), _inner(c, product)))
        for i, mat in enumerate(mats):
            if not self.depends(mat):
                continue
            left, right = mats[:i], mats[i + 1 :]
            factors = [transposed(m) for m in reversed(left)] + [c] + [transposed(m) for m in reversed(right)]
            ci = sp.MatMul(*factors) if len(factors) > 1 else c
            self.send(mat, scale(coeff, ci))

    def _hadamard_product(self, node: HadamardProduct, c: sp.Basic) -> None:
        args = node.args
        for i, arg in enumerate(args):
            if self.depends(arg):
                others = args[:i] + args[i + 1 :]
                ci = c
                for other in others:
                    ci = hadamard(ci, other)
                self.send(arg, ci)

    def _hadamard_power(self, node: HadamardPower, c: sp.Basic) -> None:
        base, exponent = node.args
        if self.depends(exponent) or not exponent.is_number:
            raise UnsupportedExpressionError(f"elementwise power {node} has a non-constant exponent {exponent}")
        if exponent == 1:
            self.send(base, c)
            return
        lower = base if exponent == 2 else HadamardPower(base, exponent - 1)
        self.send(base, hadamard(c, scale(exponent, lower)))

    def _elementwise(self, node: ElementwiseApplyFunction, c: sp.Basic) -> None:
        d = sp.Dummy("d")
        body = node.function(d)
        if any(body.has(v) for v in self.acc):
            raise UnsupportedExpressionError(
                f"elementwise function {node.function} depends on a variable; "
                "write that dependence outside the function (e.g. as a Hadamard product)"
            )
        derivative = sp.diff(body, d)
        if derivative.is_number:
            self.send(node.expr, scale(derivative, c))
            return
        # Where sigma' is a function of sigma itself (tanh' = 1 - tanh^2), apply it to
        # this very node: the numeric kernel then shares sigma(z) with its other uses.
        y = sp.Dummy("y")
        in_primal = derivative.subs(body, y)
        if not in_primal.has(d):
            self.send(node.expr, hadamard(c, elementwise(sp.Lambda(y, in_primal), node)))
            return
        self.send(node.expr, hadamard(c, elementwise(sp.Lambda(d, derivative), node.expr)))
