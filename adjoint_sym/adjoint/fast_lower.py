"""SymPy matrix expressions -> a tape of matrix operations (:mod:`adjoint_sym.adjoint.fast_tape`).

:class:`Lowering` walks the (CSE-reduced) SymPy trees of a kernel's outputs and emits
one tape instruction per matrix product, elementwise function or arithmetic operation,
allocating a register in ``mem`` for each intermediate value.  A value is a
:class:`View`: an offset into ``mem`` and a shape, possibly read transposed, so that
``W.T * x`` is one gemv on ``W`` in place and theta's blocks are never copied.

Supported: matrix symbols, products (chains ordered by cost), sums, transposes,
Hadamard products and powers, elementwise functions (``Lambda`` bodies lowered entry by
entry: ``tanh``, ``exp``, ``erf``, ... with constants broadcast), explicit matrices,
matrix elements, zero/one/identity matrices, and scalar arithmetic in ``t`` and scalar
parameters.  Anything else is an :class:`~adjoint_sym.errors.UnsupportedExpressionError`
that names the node and points to the default backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import UnsupportedExpressionError
from . import fast_tape as tp

_BINARY_FUNCTIONS = {sp.Max: tp.MAX, sp.Min: tp.MIN, sp.atan2: tp.ATAN2}


@dataclass(frozen=True)
class View:
    """``rows x cols`` values at ``mem[offset:]``, row-major, or of the transpose if ``transposed``."""

    offset: int
    rows: int
    cols: int
    transposed: bool = False

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def T(self) -> View:
        vector = self.rows == 1 or self.cols == 1  # a vector's transpose has the same memory order
        return View(self.offset, self.cols, self.rows, not self.transposed and not vector)


def shape_of(e: sp.Basic) -> tuple[int, int]:
    if isinstance(e, sp.MatrixBase | sp.MatrixExpr):
        return int(e.shape[0]), int(e.shape[1])
    return 1, 1


class Lowering:
    """Emits a tape over ``mem = [fixed inputs | constants | registers]``.

    Parameters
    ----------
    bindings : dict
        SymPy symbol (scalar or matrix) -> :class:`View` of the engine's inputs.
    start : int
        The first free offset in ``mem`` after the inputs.
    """

    def __init__(self, bindings: dict, start: int) -> None:
        self.bindings = dict(bindings)
        self.top = start
        self.constants: dict[float, int] = {}
        self.constant_blocks: list[tuple[int, np.ndarray]] = []
        self.code: list[list[int]] = []
        self.memo: dict = {}

    # -- memory --------------------------------------------------------------------------
    def register(self, rows: int, cols: int) -> View:
        view = View(self.top, rows, cols)
        self.top += rows * cols
        return view

    def constant(self, value: float) -> View:
        if value not in self.constants:
            self.constants[value] = self.register(1, 1).offset
            self.constant_blocks.append((self.constants[value], np.array([value])))
        return View(self.constants[value], 1, 1)

    def constant_matrix(self, values: np.ndarray) -> View:
        view = self.register(*values.shape)
        self.constant_blocks.append((view.offset, np.ascontiguousarray(values, dtype=float).ravel()))
        return view

    def emit(self, op: int, dst: int, a: int = 0, b: int = 0, x: int = 0, y: int = 0, z: int = 0, w: int = 0):
        self.code.append([op, dst, a, b, x, y, z, w])

    def row_major(self, v: View) -> View:
        """``v`` in its own memory order (a transposed matrix is copied once)."""
        if not v.transposed:
            return v
        out = self.register(v.rows, v.cols)
        self.emit(tp.TRANSPOSE, out.offset, v.offset, x=v.rows, y=v.cols)
        return out

    # -- outputs ---------------------------------------------------------------------------
    def write(self, expr: sp.Basic, out_offset: int) -> int:
        """Emit the writing of ``expr`` (flattened row-major) at ``out[out_offset:]``; returns its size."""
        rows, cols = shape_of(expr)
        if is_zero(expr):
            self.emit(tp.ZERO, out_offset, x=rows * cols)
            return rows * cols
        v = self.row_major(self.value(expr))
        self.emit(tp.OUT, out_offset, v.offset, x=v.size)
        return v.size

    def tape(self, out_size: int) -> np.ndarray:
        header = [len(self.code), self.top, out_size, 0]
        return np.array(header + [k for row in self.code for k in row], dtype=np.int64)

    def fill_constants(self, mem: np.ndarray) -> None:
        for offset, values in self.constant_blocks:
            mem[offset : offset + values.size] = values

    # -- values ----------------------------------------------------------------------------
    def value(self, e: sp.Basic) -> View:
        if e in self.bindings:
            return self.bindings[e]
        if e not in self.memo:  # (not try/except: an error inside would chain a KeyError to it)
            self.memo[e] = self._matrix(e) if isinstance(e, sp.MatrixBase | sp.MatrixExpr) else self.scalar(e)
        return self.memo[e]

    def _matrix(self, e: sp.Basic) -> View:  # one branch per node type
        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_matrices()
            out = self._chain([self.value(m) for m in mats])
            return out if coeff == 1 else self._elementwise(tp.MUL, self.value(coeff), out)
        if isinstance(e, sp.MatAdd | HadamardProduct):
            op = tp.ADD if isinstance(e, sp.MatAdd) else tp.MUL
            out = self.value(e.args[0])
            for arg in e.args[1:]:
                out = self._elementwise(op, out, self.value(arg))
            return out
        if isinstance(e, sp.Transpose):
            return self.value(e.arg).T()
        if isinstance(e, HadamardPower):
            return self._power(self.row_major(self.value(e.args[0])), e.args[1])
        if isinstance(e, ElementwiseApplyFunction):
            inner = self.row_major(self.value(e.expr))
            u = sp.Dummy("u")
            saved, self.memo = self.memo, {}  # the body's subexpressions are entrywise in u: not shareable
            self.bindings[u] = inner
            try:
                result = self.scalar(e.function(u))
            finally:
                self.memo = saved
                del self.bindings[u]
            if result.size != inner.size:  # a constant body: broadcast it
                result = self._broadcast(result, inner.rows, inner.cols)
            return View(result.offset, inner.rows, inner.cols)
        if isinstance(e, sp.MatrixBase):
            return self._explicit(e)
        if isinstance(e, sp.ZeroMatrix):
            return self.constant_matrix(np.zeros(shape_of(e)))
        if isinstance(e, sp.OneMatrix):
            return self.constant_matrix(np.ones(shape_of(e)))
        if isinstance(e, sp.Identity):
            return self.constant_matrix(np.eye(shape_of(e)[0]))
        if isinstance(e, sp.MatrixSymbol):
            raise UnsupportedExpressionError(f"symbol {e} is not an argument of the fast kernels")
        raise UnsupportedExpressionError(
            f"the fast backend cannot compile the matrix expression {type(e).__name__} (in {e}); "
            "use the default backend"
        )

    def _chain(self, views: list[View]) -> View:
        """A product of matrices in the cheapest order (the textbook matrix-chain recursion)."""
        dims = [views[0].rows] + [v.cols for v in views]
        count = len(views)
        cost = {(i, i): 0 for i in range(count)}
        split: dict = {}
        for length in range(2, count + 1):
            for i in range(count - length + 1):
                j = i + length - 1
                cost[i, j], split[i, j] = min(
                    (cost[i, k] + cost[k + 1, j] + dims[i] * dims[k + 1] * dims[j + 1], k) for k in range(i, j)
                )

        def build(i: int, j: int) -> View:
            if i == j:
                return views[i]
            a, b = build(i, split[i, j]), build(split[i, j] + 1, j)
            out = self.register(a.rows, b.cols)
            self.emit(
                tp.MATMUL, out.offset, a.offset, b.offset, a.rows, a.cols, b.cols, a.transposed + 2 * b.transposed
            )
            return out

        return build(0, count - 1)

    def _elementwise(self, op: int, a: View, b: View) -> View:
        """``a op b`` entry by entry; a 1x1 operand broadcasts."""
        if a.size == 1 and b.size != 1:
            shape = (b.rows, b.cols)
        elif b.size == 1 or (a.rows, a.cols) == (b.rows, b.cols):
            shape = (a.rows, a.cols)
        else:  # pragma: no cover - SymPy checks the shapes of matrix sums and products
            raise UnsupportedExpressionError(f"shapes {a.rows}x{a.cols} and {b.rows}x{b.cols} do not match")
        if a.size > 1 and b.size > 1 and a.transposed and b.transposed:
            out = self.register(shape[1], shape[0])  # both transposed: work in their memory order
            self.emit(tp.BINARY, out.offset, a.offset, b.offset, out.size, op, 1, 1)
            return out.T()
        a, b = (v if v.size == 1 else self.row_major(v) for v in (a, b))
        out = self.register(*shape)
        self.emit(tp.BINARY, out.offset, a.offset, b.offset, out.size, op, int(a.size > 1), int(b.size > 1))
        return out

    def _broadcast(self, v: View, rows: int, cols: int) -> View:
        out = self.register(rows, cols)
        self.emit(tp.COPY, out.offset, v.offset, x=out.size, z=0)
        return out

    def _power(self, base: View, exponent: sp.Basic) -> View:
        if exponent.is_Integer:
            out = self.register(base.rows, base.cols)
            self.emit(tp.POWI, out.offset, base.offset, x=base.size, y=int(exponent))
            return out
        if exponent == sp.Rational(1, 2):
            return self._unary("sqrt", base)
        return self._elementwise(tp.POW, base, self.value(exponent))

    def _unary(self, name: str, v: View) -> View:
        v = self.row_major(v)
        out = self.register(v.rows, v.cols)
        self.emit(tp.UNARY, out.offset, v.offset, x=v.size, y=tp.UNARY_CODES[name])
        return out

    def _explicit(self, e: sp.MatrixBase) -> View:
        out = self.register(e.rows, e.cols)
        for k, entry in enumerate(e):
            v = self.value(entry)
            self.emit(tp.COPY, out.offset + k, v.offset, x=1, z=0)
        return out

    # -- scalars (in t and scalar parameters, or entrywise in a Lambda body) -----------------
    def scalar(self, e: sp.Basic) -> View:
        if e in self.bindings:
            return self.bindings[e]
        if e in self.memo:
            return self.memo[e]
        out = self.memo[e] = self._scalar(e)
        return out

    def _scalar(self, e: sp.Basic) -> View:
        if isinstance(e, sp.MatrixBase | sp.MatrixExpr):
            v = self.value(e)
            if v.size != 1:
                raise UnsupportedExpressionError(f"a {v.rows}x{v.cols} matrix where a scalar was expected: {e}")
            return v
        if e.is_number:  # a constant (2, pi, sqrt(2)): folded to one float
            value = complex(e)
            if value.imag != 0:
                raise UnsupportedExpressionError(
                    f"the fast backend is real-valued; {e} is not: use the default backend"
                )
            return self.constant(value.real)
        if isinstance(e, MatrixElement):
            parent, i, j = e.args
            v = self.value(parent)
            i, j = int(i), int(j)
            offset = v.offset + (j * v.rows + i if v.transposed else i * v.cols + j)
            return View(offset, 1, 1)
        if isinstance(e, sp.Add | sp.Mul):
            op = tp.ADD if isinstance(e, sp.Add) else tp.MUL
            args = sorted(e.args, key=lambda a: not a.is_Number)  # the constant first: one broadcast
            out = self.scalar(args[0])
            for arg in args[1:]:
                out = self._elementwise(op, out, self.scalar(arg))
            return out
        if isinstance(e, sp.Pow):
            return self._power(self.scalar(e.base), e.exp)
        if type(e) in _BINARY_FUNCTIONS:
            out = self.scalar(e.args[0])
            for arg in e.args[1:]:
                out = self._elementwise(_BINARY_FUNCTIONS[type(e)], out, self.scalar(arg))
            return out
        name = type(e).__name__
        if isinstance(e, sp.Function) and name in tp.UNARY_CODES and len(e.args) == 1:
            return self._unary(name, self.scalar(e.args[0]))
        if isinstance(e, sp.Symbol):
            raise UnsupportedExpressionError(f"symbol {e} is not an argument of the fast kernels")
        raise UnsupportedExpressionError(
            f"the fast backend cannot compile {name} (in {e}); it compiles "
            f"{', '.join(sorted([*tp.UNARY_CODES, 'Max', 'Min', 'atan2']))}: use the default backend"
        )


def is_zero(e: sp.Basic) -> bool:
    if isinstance(e, sp.ZeroMatrix):
        return True
    if isinstance(e, sp.MatrixBase):
        return all(x == 0 for x in e)
    return not isinstance(e, sp.MatrixExpr) and e == 0


__all__ = ["Lowering", "View", "is_zero", "shape_of"]
