"""Symbolic Jacobian-vector products at the matrix level (forward mode on a SymPy tree).

``jvp(expr, tangents)`` returns ``d/d eps expr(x + eps dx)`` at ``eps = 0`` for the
variables ``x`` in ``tangents`` (each mapped to its tangent ``dx``, of its own shape).
It is the forward-mode counterpart of :mod:`adjoint_sym.symbolic.matrix_calculus`:
matrix nodes are differentiated by rules, never by expanding entries, so the cost is
linear in the size of the expression tree:

==========================  ===============================================
node                        tangent
==========================  ===============================================
``A1 A2 ... Ak`` (MatMul)   ``sum_i A1..dAi..Ak`` (and ``ds A1..Ak`` for a scalar factor ``s``)
``A + B``                   ``dA + dB``
``A o B`` (Hadamard)        ``dA o B + A o dB``
``A^{o p}``                 ``p A^{o(p-1)} o dA``
``sigma.(Z)``               ``sigma'.(Z) o dZ``
``A^T``                     ``dA^T``
scalar expression           ``sum_v d(expr)/dv dv`` over scalar variables and matrix entries
explicit matrix ``M``       entry by entry, as scalars
==========================  ===============================================

Applied to a vector-Jacobian product it gives forward-over-reverse second derivatives:
for ``p(h, a) = a^T df/dh`` (linear in ``a``), ``jvp(p, {h: s, a: lam})`` is
``lam^T f_h + a^T f_hh s``, the right-hand side of the second-order adjoint
(:mod:`adjoint_sym.symbolic.second_order`).

Examples
--------
>>> import sympy as sp
>>> W, h = sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("h", 2, 1)
>>> V, s = sp.MatrixSymbol("V", 2, 2), sp.MatrixSymbol("s", 2, 1)
>>> jvp(W * h, {W: V, h: s})
V*h + W*s
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import UnsupportedExpressionError
from .matrix_calculus import elementwise, hadamard, scale, transposed

Variable = sp.Symbol | sp.MatrixSymbol


def jvp(expr: sp.Basic, tangents: Mapping[Variable, sp.Basic]) -> sp.Basic:
    """The directional derivative of ``expr`` along ``tangents``.

    Parameters
    ----------
    expr : scalar expression, explicit matrix or matrix expression
    tangents : mapping
        Each variable (a ``Symbol`` or a ``MatrixSymbol``) to its tangent: a scalar
        expression for a symbol, a matrix symbol (or expression) of the same shape for a
        matrix symbol.  Variables left out are held fixed.

    Returns
    -------
    sympy expression
        Shaped like ``expr``; ``0`` or a ``ZeroMatrix`` where ``expr`` does not depend
        on any variable.
    """
    result = _Forward(tangents).tangent(expr)
    if result is not None:
        return result
    if isinstance(expr, sp.MatrixBase):
        return sp.ImmutableMatrix.zeros(*expr.shape)
    if isinstance(expr, sp.MatrixExpr):
        return sp.ZeroMatrix(*expr.shape)
    return sp.Integer(0)


def _add(parts: list[sp.Basic]) -> sp.Basic | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, sp.MatrixBase) for p in parts):
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return sp.ImmutableMatrix(total)
    if any(isinstance(p, sp.MatrixBase | sp.MatrixExpr) for p in parts):
        return sp.MatAdd(*parts)
    return sp.Add(*parts)


class _Forward:
    def __init__(self, tangents: Mapping[Variable, sp.Basic]) -> None:
        self.tangents = dict(tangents)
        self.scalars = [v for v in self.tangents if not isinstance(v, sp.MatrixSymbol)]
        self.matrices = {v for v in self.tangents if isinstance(v, sp.MatrixSymbol)}

    def depends(self, node: sp.Basic) -> bool:
        return any(node.has(v) for v in self.tangents)

    def tangent(self, node: sp.Basic) -> sp.Basic | None:
        """The tangent of ``node``, or ``None`` where it is zero."""
        if not self.depends(node):
            return None
        if isinstance(node, sp.MatrixSymbol):
            return self.tangents[node]
        if isinstance(node, sp.MatrixBase):
            entries = [self.scalar(e) for e in node]
            return sp.ImmutableMatrix(node.rows, node.cols, [0 if e is None else e for e in entries])
        if not isinstance(node, sp.MatrixExpr) or isinstance(node, MatrixElement):
            return self.scalar(node)
        if isinstance(node, sp.MatAdd):
            return _add([d for d in (self.tangent(arg) for arg in node.args) if d is not None])
        if isinstance(node, sp.MatMul):
            return self._matmul(node)
        if isinstance(node, HadamardProduct):
            return self._hadamard_product(node)
        if isinstance(node, HadamardPower):
            return self._hadamard_power(node)
        if isinstance(node, ElementwiseApplyFunction):
            return self._elementwise(node)
        if isinstance(node, sp.Transpose):
            d = self.tangent(node.arg)
            return None if d is None else transposed(d)
        raise UnsupportedExpressionError(
            f"cannot differentiate the matrix node {type(node).__name__} ({node}) in forward mode; "
            "use products, sums, transposes, Hadamard products/powers and elementwise functions"
        )

    def scalar(self, expr: sp.Basic) -> sp.Basic | None:
        """``sum_v d(expr)/dv dv`` over scalar variables and the entries of matrix variables."""
        parts = [expr.diff(v) * self.tangents[v] for v in self.scalars if expr.has(v)]
        elements = sorted((e for e in expr.atoms(MatrixElement) if e.parent in self.matrices), key=str)
        if elements:
            # Differentiate by plain stand-ins: SymPy's derivative by a matrix element
            # rescans every element of the expression (quadratic in the width).
            plain = {e: sp.Dummy("e") for e in elements}
            flat = expr.xreplace(plain)
            back = {d: e for e, d in plain.items()}
            for e, d in plain.items():
                parts.append(flat.diff(d).xreplace(back) * self.tangents[e.parent][e.i, e.j])
        parts = [p for p in parts if p != 0]
        return sp.Add(*parts) if parts else None

    def _matmul(self, node: sp.MatMul) -> sp.Basic | None:
        coeff, mats = node.as_coeff_matrices()
        parts = []
        d_coeff = self.scalar(coeff) if self.depends(coeff) else None
        if d_coeff is not None:
            parts.append(scale(d_coeff, sp.MatMul(*mats) if len(mats) > 1 else mats[0]))
        for i, mat in enumerate(mats):
            d = self.tangent(mat)
            if d is None:
                continue
            factors = [*mats[:i], d, *mats[i + 1 :]]
            parts.append(scale(coeff, sp.MatMul(*factors) if len(factors) > 1 else d))
        return _add(parts)

    def _hadamard_product(self, node: HadamardProduct) -> sp.Basic | None:
        parts = []
        for i, arg in enumerate(node.args):
            d = self.tangent(arg)
            if d is None:
                continue
            term = d
            for other in node.args[:i] + node.args[i + 1 :]:
                term = hadamard(term, other)
            parts.append(term)
        return _add(parts)

    def _hadamard_power(self, node: HadamardPower) -> sp.Basic | None:
        base, exponent = node.args
        if self.depends(exponent) or not exponent.is_number:
            raise UnsupportedExpressionError(f"elementwise power {node} has a non-constant exponent {exponent}")
        d = self.tangent(base)
        if d is None:
            return None
        if exponent == 1:
            return d
        lower = base if exponent == 2 else HadamardPower(base, exponent - 1)
        return hadamard(scale(exponent, lower), d)

    def _elementwise(self, node: ElementwiseApplyFunction) -> sp.Basic | None:
        x = sp.Dummy("x")
        body = node.function(x)
        if self.depends(body):
            raise UnsupportedExpressionError(
                f"elementwise function {node.function} depends on a variable; "
                "write that dependence outside the function (e.g. as a Hadamard product)"
            )
        d = self.tangent(node.expr)
        if d is None:
            return None
        derivative = sp.diff(body, x)
        if derivative.is_number:
            return scale(derivative, d)
        # As in the reverse rules: sigma' written in sigma (tanh' = 1 - tanh^2) is applied
        # to this very node, so the kernel shares sigma(Z) with its other uses.
        y = sp.Dummy("y")
        in_primal = derivative.subs(body, y)
        if not in_primal.has(x):
            return hadamard(elementwise(sp.Lambda(y, in_primal), node), d)
        return hadamard(elementwise(sp.Lambda(x, derivative), node.expr), d)


__all__ = ["jvp"]
