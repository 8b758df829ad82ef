"""Stand-ins that record what a Python function does to them, as SymPy expressions.

:class:`Scalar` (a scalar symbol), :class:`Array` (a NumPy array of scalars: a state
vector, a matrix parameter's entries) and :class:`Matrix` (a matrix symbol with NumPy's
meaning of ``@``, ``*``, ``**``, ``.T``) answer arithmetic and NumPy's functions, through
NumPy's own protocols (``__array_ufunc__``), with SymPy expressions; what has no SymPy
meaning (a truth value, a conversion to a number, a NumPy function outside :data:`UNARY`
and :data:`BINARY`, assignment) raises :class:`~adjoint_sym.errors.UnsupportedExpressionError`
saying why.  :data:`numpy` is the namespace to hand a function as ``np``.  Used by
:mod:`adjoint_sym.symbolic.trace`.

Examples
--------
>>> import numpy as np
>>> import sympy as sp
>>> x = Scalar(sp.Symbol("x"))
>>> np.tanh(2 * x + 1).e
tanh(2*x + 1)
>>> bool(x > 0)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
adjoint_sym.errors.UnsupportedExpressionError: cannot trace the right-hand side: f branches on the value ...
"""

from __future__ import annotations

import types
from collections.abc import Callable

import numpy as np
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from ..errors import UnsupportedExpressionError
from .matrix_calculus import elementwise, scale

_Z = sp.Symbol("z")  # the bound variable of elementwise functions, fixed so equal traces give equal systems

#: NumPy (and scipy.special) functions of one argument, by NumPy's name, as SymPy functions.
UNARY: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "arcsinh": sp.asinh, "arccosh": sp.acosh,
    "arctanh": sp.atanh, "exp": sp.exp, "expm1": lambda x: sp.exp(x) - 1, "exp2": lambda x: 2**x,
    "log": sp.log, "log1p": lambda x: sp.log(1 + x), "log2": lambda x: sp.log(x, 2),
    "log10": lambda x: sp.log(x, 10), "sqrt": sp.sqrt, "cbrt": sp.cbrt, "square": lambda x: x**2,
    "reciprocal": lambda x: 1 / x, "negative": lambda x: -x, "positive": lambda x: x, "absolute": sp.Abs,
    "abs": sp.Abs, "fabs": sp.Abs, "sign": sp.sign, "erf": sp.erf, "expit": lambda x: 1 / (1 + sp.exp(-x)),
    "sigmoid": lambda x: 1 / (1 + sp.exp(-x)), "softplus": lambda x: sp.log(1 + sp.exp(x)),
}  # fmt: skip

#: NumPy functions of two arguments.
BINARY: dict[str, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a - b, "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b, "true_divide": lambda a, b: a / b, "power": lambda a, b: a**b,
    "maximum": sp.Max, "minimum": sp.Min, "arctan2": sp.atan2, "hypot": lambda a, b: sp.sqrt(a**2 + b**2),
}  # fmt: skip


def refuse(why: str) -> UnsupportedExpressionError:
    return UnsupportedExpressionError(f"cannot trace the right-hand side: {why}")


def to_sympy(value: object) -> sp.Basic:
    """A stand-in's expression, or a plain number as SymPy."""
    if isinstance(value, Scalar | Matrix):
        return value.e
    if isinstance(value, sp.Basic) and value.is_number:  # the namespace's pi and e
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise refuse(f"f combined a symbol with {type(value).__name__} {value!r}; use numbers and the arguments")
    return sp.Integer(int(value)) if isinstance(value, int | np.integer) else sp.Float(float(value))


class _Traced:
    __array_priority__ = 1000  # numpy defers to the stand-ins' operators

    def __bool__(self) -> bool:
        raise refuse(
            f"f branches on the value of a symbol ({self}: an if, a comparison, or numpy's maximum/where on a "
            "plain array): a traced function must do the same operations for every value; write the two cases "
            "as one expression (np.maximum(x, 0), np.abs, a smooth switch)"
        )

    def _number(self, *_) -> float:
        raise refuse(
            f"f turns the symbol {self} into a number (float(), int(), the math module or a numpy function "
            "that needs numbers); use numpy's functions (np.sin, np.exp, ...) or the namespace passed as np"
        )

    __float__ = __int__ = __complex__ = __index__ = _number

    def __setitem__(self, key, value) -> None:
        raise refuse(f"f assigns into {self}[{key}]; build a new array instead of changing an argument")

    def __array_function__(self, func, types_, args, kwargs):
        raise refuse(f"numpy.{func.__name__} is not traced; the traced functions are {traced_names()}")


def traced_names() -> str:
    return ", ".join(sorted({*UNARY, *BINARY, "matmul"}))


class Scalar(_Traced):
    """A scalar stand-in: arithmetic and NumPy functions build the SymPy expression ``e``."""

    def __init__(self, e: sp.Expr) -> None:
        self.e = e

    def __repr__(self) -> str:
        return str(self.e)

    def _op(self, other, fn, reflected: bool = False):
        if isinstance(other, Matrix | np.ndarray):
            return NotImplemented
        a, b = self.e, to_sympy(other)
        return Scalar(fn(b, a) if reflected else fn(a, b))

    def __add__(self, o):
        return self._op(o, lambda a, b: a + b)

    def __radd__(self, o):
        return self._op(o, lambda a, b: a + b, True)

    def __sub__(self, o):
        return self._op(o, lambda a, b: a - b)

    def __rsub__(self, o):
        return self._op(o, lambda a, b: a - b, True)

    def __mul__(self, o):
        return self._op(o, lambda a, b: a * b)

    def __rmul__(self, o):
        return self._op(o, lambda a, b: a * b, True)

    def __truediv__(self, o):
        return self._op(o, lambda a, b: a / b)

    def __rtruediv__(self, o):
        return self._op(o, lambda a, b: a / b, True)

    def __pow__(self, o):
        return self._op(o, lambda a, b: a**b)

    def __rpow__(self, o):
        return self._op(o, lambda a, b: a**b, True)

    def __neg__(self):
        return Scalar(-self.e)

    def __pos__(self):
        return self

    def __abs__(self):
        return Scalar(sp.Abs(self.e))

    def __lt__(self, o):
        return Condition(f"{self} < {o}")

    def __le__(self, o):
        return Condition(f"{self} <= {o}")

    def __gt__(self, o):
        return Condition(f"{self} > {o}")

    def __ge__(self, o):
        return Condition(f"{self} >= {o}")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _ufunc(ufunc, method, inputs, kwargs)

    def __getattr__(self, name: str):
        # numpy's ufuncs on object arrays call each element's method of the ufunc's name
        if name.startswith("_") or name == "e" or name not in UNARY:
            raise AttributeError(name)
        return lambda: Scalar(UNARY[name](self.e))


class Array(np.ndarray):
    """An array of stand-ins (the state vector, a matrix parameter's entries): NumPy's functions
    on it apply entry by entry through the traced set (``np.maximum(h, 0)`` is ``Max``)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = tuple(x.view(np.ndarray) if isinstance(x, Array) else x for x in inputs)
        if "out" in kwargs:  # h += 1: numpy writes into h (which the tracer then refuses)
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, Array) else x for x in kwargs["out"])
        if method == "__call__" and not kwargs and ufunc.__name__ != "matmul":
            out = _each(ufunc, plain)
        else:  # matrix products, sums (reduce) and in-place updates: numpy's own object loops
            out = getattr(ufunc, method)(*plain, **kwargs)
        return out.view(Array) if isinstance(out, np.ndarray) and out.dtype == object else out


class Condition(_Traced):
    """A comparison of symbols: it has no truth value while tracing."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class Matrix(_Traced):
    """A matrix stand-in with NumPy's meaning: ``@`` matrix product, ``*`` ``**`` entry by entry."""

    def __init__(self, e: sp.MatrixExpr) -> None:
        self.e = e

    def __repr__(self) -> str:
        return str(self.e)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(d) for d in self.e.shape)

    @property
    def T(self) -> Matrix:
        return Matrix(sp.Transpose(self.e))

    def __getitem__(self, key):
        i, j = key if isinstance(key, tuple) else (key, 0)
        if not all(isinstance(k, int | np.integer) for k in (i, j)):
            raise refuse(f"f slices {self}[{key}]; index one entry at a time (h[0]) or keep the whole matrix")
        return Scalar(self.e[int(i), int(j)])

    def _same(self, other: Matrix, what: str) -> sp.MatrixExpr:
        if other.shape != self.shape:
            raise refuse(f"{what} of shapes {self.shape} and {other.shape}; numpy broadcasting is not traced")
        return other.e

    def _broadcast(self, value: object) -> sp.MatrixBase:
        return to_sympy(value) * sp.ImmutableMatrix.ones(*self.shape)

    def __matmul__(self, o):
        if not isinstance(o, Matrix):
            raise refuse(f"{self} @ {o!r}: both sides of @ must be matrices")
        return Matrix(sp.MatMul(self.e, o.e))

    def __rmatmul__(self, o):
        raise refuse(f"{o!r} @ {self}: both sides of @ must be matrices")

    def __add__(self, o):
        other = self._same(o, "a sum") if isinstance(o, Matrix) else self._broadcast(o)
        return Matrix(sp.MatAdd(self.e, other))

    __radd__ = __add__

    def __neg__(self):
        return Matrix(scale(sp.S.NegativeOne, self.e))

    def __pos__(self):
        return self

    def __sub__(self, o):
        return self + (-o if isinstance(o, Matrix) else -to_sympy(o))

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        if isinstance(o, Matrix):
            return Matrix(HadamardProduct(self.e, self._same(o, "an entry-wise product")))
        return Matrix(scale(to_sympy(o), self.e))

    __rmul__ = __mul__

    def __truediv__(self, o):
        if isinstance(o, Matrix):
            return self * o**-1
        return Matrix(scale(1 / to_sympy(o), self.e))

    def __rtruediv__(self, o):
        return Matrix(scale(to_sympy(o), HadamardPower(self.e, -1)))

    def __pow__(self, o):
        exponent = to_sympy(o)
        if not exponent.is_number:
            raise refuse(f"{self} ** {o}: an entry-wise power needs a constant exponent")
        return Matrix(self.e if exponent == 1 else HadamardPower(self.e, exponent))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _ufunc(ufunc, method, inputs, kwargs)


def _ufunc(ufunc, method: str, inputs: tuple, kwargs: dict):
    name = ufunc.__name__
    if method != "__call__" or kwargs:
        raise refuse(f"numpy.{name}.{method} (or its keyword arguments) is not traced")
    if name == "matmul":
        if all(isinstance(x, Matrix) for x in inputs):
            return inputs[0] @ inputs[1]
        if any(isinstance(x, Scalar | Matrix) for x in inputs):
            a, b = inputs
            raise refuse(f"{a!r} @ {b!r}: @ needs two matrices or two arrays, and one side is a scalar")
        return NotImplemented
    matrices = [x for x in inputs if isinstance(x, Matrix)]
    if matrices:
        return _elementwise(name, inputs)
    if any(isinstance(x, np.ndarray) for x in inputs):
        return _each(ufunc, inputs)
    if name in UNARY and len(inputs) == 1:
        return Scalar(UNARY[name](to_sympy(inputs[0])))
    if name in BINARY and len(inputs) == 2:
        return Scalar(BINARY[name](to_sympy(inputs[0]), to_sympy(inputs[1])))
    raise refuse(f"numpy.{name} is not traced; the traced functions are {traced_names()}")


def _each(ufunc, inputs: tuple) -> np.ndarray:
    """A NumPy function over arrays of stand-ins, entry by entry (numpy broadcasting)."""
    arrays = np.broadcast_arrays(*[np.asarray(x, dtype=object) for x in inputs])
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = _ufunc(ufunc, "__call__", tuple(a[index] for a in arrays), {})
    return out


def _elementwise(name: str, inputs: tuple) -> Matrix:
    """A NumPy function of a matrix stand-in: an elementwise SymPy function of the matrix."""
    if name in UNARY and len(inputs) == 1:
        return Matrix(elementwise(sp.Lambda(_Z, UNARY[name](_Z)), inputs[0].e))
    if name in ("add", "subtract", "multiply", "divide", "true_divide", "power"):
        a, b = inputs
        return {"add": a + b, "subtract": a - b, "multiply": a * b, "power": a**b}.get(name, a / b)
    if name in BINARY and len(inputs) == 2:
        matrix, other = (inputs[0], inputs[1]) if isinstance(inputs[0], Matrix) else (inputs[1], inputs[0])
        if isinstance(other, Matrix):
            raise refuse(f"numpy.{name} of two matrices is not traced; one side must be a number")
        c = to_sympy(other)
        body = BINARY[name](_Z, c) if matrix is inputs[0] else BINARY[name](c, _Z)
        return Matrix(elementwise(sp.Lambda(_Z, body), matrix.e))
    raise refuse(f"numpy.{name} of a matrix is not traced; the traced functions are {traced_names()}")


#: The namespace to pass as ``np`` (or to call directly): NumPy's names over the stand-ins.
numpy = types.SimpleNamespace(
    **{name: getattr(np, name) for name in (*UNARY, *BINARY) if hasattr(np, name)},
    sigmoid=lambda x: _ufunc_named("sigmoid", x),
    expit=lambda x: _ufunc_named("expit", x),
    softplus=lambda x: _ufunc_named("softplus", x),
    erf=lambda x: _ufunc_named("erf", x),
    matmul=np.matmul,
    array=lambda values, dtype=None: array_of(values),
    asarray=lambda values, dtype=None: array_of(values),
    pi=sp.pi,
    e=sp.E,
)


def _ufunc_named(name: str, x):
    if isinstance(x, np.ndarray):
        return array_of([_ufunc_named(name, v) for v in x.flat]).reshape(x.shape)
    if isinstance(x, Matrix):
        return _elementwise(name, (x,))
    return Scalar(UNARY[name](to_sympy(x)))


def array_of(values) -> Array:
    return np.array(values, dtype=object).view(Array)


__all__ = ["BINARY", "UNARY", "Array", "Condition", "Matrix", "Scalar", "numpy"]
