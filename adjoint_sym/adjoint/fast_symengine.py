"""SymEngine's LLVM kernels for the fast backend: scalar systems, expanded and compiled.

``f`` and the adjoint's vector-Jacobian product ``[a^T f_h, a^T f_theta, a^T f_t]``,
both taken from :meth:`ODESystem.vjp` (the symbolic VJP under test), are expanded to
scalars in SymEngine and compiled by its LLVM backend: tens of milliseconds for a new
small system, no numba compilation per system, and the fastest kernels there are for a
handful of states (LLVM fuses the whole expression).  Matrix-level systems can be
expanded too (:class:`_ToSymEngine` carries matrix expressions out on explicit SymEngine
matrices), but the expansion's compile time grows with the parameter count (1 s for a
32-wide tanh layer, 6 s at width 64), so the fast backend sends them to the tapes of
:mod:`adjoint_sym.adjoint.fast_matrix` instead.

``tanh`` is compiled as ``1 - 2/(exp(2x) + 1)`` (absolute error below 4e-16, 40% cheaper
than libm's ``tanh``, which dominates neural kernels).
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import UnsupportedExpressionError
from ..symbolic.system import ODESystem
from .fast_engine import callback

try:
    import symengine as se
except ImportError:  # pragma: no cover
    se = None

_SE_FUNCTIONS = {
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "asin",
    "acos": "acos",
    "atan": "atan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "asinh": "asinh",
    "acosh": "acosh",
    "atanh": "atanh",
    "exp": "exp",
    "log": "log",
    "erf": "erf",
    "erfc": "erfc",
    "Abs": "Abs",
    "sign": "sign",
    "Max": "Max",
    "Min": "Min",
    "atan2": "atan2",
}


class _ToSymEngine:
    """Evaluates a SymPy tree into SymEngine scalars and dense matrices.

    Matrix expressions (products, sums, transposes, Hadamard products and powers,
    elementwise functions) are carried out on explicit SymEngine matrices of scalars, so
    a matrix-level VJP becomes one flat list of scalar expressions for LLVM.
    """

    def __init__(self, env: dict) -> None:
        self.env = env  # sympy Symbol -> se scalar; MatrixSymbol -> se.DenseMatrix
        self.memo: dict = {}

    def __call__(self, e: sp.Basic):
        if e not in self.memo:  # (not try/except: an error inside would chain a KeyError to it)
            self.memo[e] = self._convert(e)
        return self.memo[e]

    def _convert(self, e: sp.Basic):  # one branch per node type
        if e in self.env:
            return self.env[e]
        if isinstance(e, MatrixElement):
            parent, i, j = e.args
            return self(parent)[int(i), int(j)]
        if isinstance(e, sp.MatrixBase):
            return se.DenseMatrix(e.rows, e.cols, [self(x) for x in e])
        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_matrices()
            out = self(mats[0])
            for m in mats[1:]:
                out = out * self(m)
            return out if coeff == 1 else out.mul_scalar(self(coeff))
        if isinstance(e, sp.MatAdd):
            out = self(e.args[0])
            for m in e.args[1:]:
                out = out + self(m)
            return out
        if isinstance(e, sp.Transpose):
            return self(e.arg).T
        if isinstance(e, HadamardProduct):
            out = self(e.args[0])
            for m in e.args[1:]:
                out = out.multiply_elementwise(self(m))
            return out
        if isinstance(e, HadamardPower):
            base, exponent = self(e.args[0]), self(e.args[1])
            return base.applyfunc(lambda x: x**exponent)
        if isinstance(e, ElementwiseApplyFunction):
            u = sp.Dummy("u")
            body = e.function(u)
            inner = self(e.expr)
            return inner.applyfunc(lambda x: _ToSymEngine({**self.env, u: x})(body))
        if isinstance(e, sp.ZeroMatrix):
            return se.zeros(*(int(s) for s in e.shape))
        if isinstance(e, sp.OneMatrix):
            return se.ones(*(int(s) for s in e.shape))
        if isinstance(e, sp.Identity):
            return se.eye(int(e.shape[0]))
        if isinstance(e, sp.MatrixExpr):
            raise UnsupportedExpressionError(
                f"the fast backend cannot compile the matrix expression {type(e).__name__}; use the default backend"
            )
        return self._scalar(e)

    def _scalar(self, e: sp.Basic):
        if isinstance(e, sp.Integer):
            return se.Integer(int(e))
        if isinstance(e, sp.Rational):
            return se.Rational(int(e.p), int(e.q))
        if isinstance(e, sp.Float):
            return se.RealDouble(float(e))
        if e is sp.pi:
            return se.pi
        if e is sp.E:
            return se.E
        if isinstance(e, sp.Add):
            return se.Add(*[self(a) for a in e.args])
        if isinstance(e, sp.Mul):
            return se.Mul(*[self(a) for a in e.args])
        if isinstance(e, sp.Pow):
            return self(e.base) ** self(e.exp)
        name = type(e).__name__
        if isinstance(e, sp.tanh):
            # 1 - 2/(exp(2x) + 1): absolute error below 4e-16 (exp overflows to inf
            # harmlessly), and 40% cheaper than libm's tanh, which dominates neural kernels.
            return 1 - 2 / (se.exp(2 * self(e.args[0])) + 1)
        if isinstance(e, sp.Function | sp.Max | sp.Min) and name in _SE_FUNCTIONS:
            return getattr(se, _SE_FUNCTIONS[name])(*[self(a) for a in e.args])
        if isinstance(e, sp.Symbol):
            raise UnsupportedExpressionError(f"symbol {e} is not an argument of the fast kernels")
        raise UnsupportedExpressionError(
            f"the fast backend cannot compile {name} (in {e}); it compiles {', '.join(sorted(_SE_FUNCTIONS))}: "
            "use the default backend"
        )


def _flat(values) -> list:
    """Flatten SymEngine scalars and matrices (row-major) into one list."""
    out = []
    for v in values:
        if isinstance(v, se.DenseMatrix):
            out.extend(v[i, j] for i in range(v.rows) for j in range(v.cols))
        else:
            out.append(v)
    return out


class FastSystem:
    """The LLVM kernels of one system; get one through :func:`fast_system`.

    Both kernels read one input vector ``[t, h (n), a (n), theta (p)]``: ``f`` writes
    ``f(t, h, theta)`` (n values), ``vjp`` writes ``[a^T f_h, a^T f_theta, a^T f_t]``
    (n + p + 1 values).
    """

    kind = "scalar"
    n_dense = 0

    def __init__(self, system: ODESystem) -> None:
        started = time.perf_counter()
        self.system = system
        n, p = int(system.n), int(system.n_params)
        self.n, self.n_params = n, p
        t = se.Symbol("_t")
        hs = [se.Symbol(f"_h{i}") for i in range(n)]
        As = [se.Symbol(f"_a{i}") for i in range(n)]
        ps = [se.Symbol(f"_p{i}") for i in range(p)]
        env: dict = {system.t: t}
        cotangent = sp.MatrixSymbol("_cotangent", n, 1) if system.is_matrix_level else None
        if system.is_matrix_level:
            env[system.state[0]] = se.DenseMatrix(n, 1, hs)
            env[cotangent] = se.DenseMatrix(n, 1, As)
        else:
            env.update(zip(system.state, hs))
            cotangent = sp.ImmutableMatrix([sp.Dummy(f"c{i}") for i in range(n)])
            env.update(zip(cotangent, As))
        k = 0
        for param in system.params:
            if isinstance(param, sp.MatrixSymbol):
                rows, cols = (int(s) for s in param.shape)
                env[param] = se.DenseMatrix(rows, cols, ps[k : k + rows * cols])
                k += rows * cols
            else:
                env[param] = ps[k]
                k += 1
        convert = _ToSymEngine(env)
        d_h, d_theta, d_t = system.vjp(cotangent)
        f_exprs = _flat([convert(system.rhs)])
        vjp_exprs = _flat([convert(d_h), *[convert(b) for b in d_theta], convert(d_t)])
        if len(f_exprs) != n or len(vjp_exprs) != n + p + 1:  # pragma: no cover - a translation bug
            raise UnsupportedExpressionError(f"fast kernels: expected {n} and {n + p + 1} outputs")
        self.derive_time = time.perf_counter() - started
        inputs = [t, *hs, *As, *ps]
        started = time.perf_counter()
        try:
            self.f = se.Lambdify(inputs, f_exprs, backend="llvm", cse=True)
            self.vjp = se.Lambdify(inputs, vjp_exprs, backend="llvm", cse=True)
        except RuntimeError as exc:
            raise UnsupportedExpressionError(
                f"SymEngine's LLVM backend cannot compile this system ({exc}); use the default backend"
            ) from None
        self.compile_time = time.perf_counter() - started
        self.f_ptr = callback(self.f)
        self.vjp_ptr = callback(self.vjp)
        self.width = n + p + 1  # the backward state [a, a_theta, a_t], all under error control

    def memory(self, theta: np.ndarray) -> np.ndarray:
        """The kernels' input vector ``[t, h, a, theta]`` with theta in place."""
        buf = np.zeros(1 + 2 * self.n + self.n_params)
        buf[1 + 2 * self.n :] = theta
        return buf

    def __repr__(self) -> str:
        return f"FastSystem({self.system!r})"


__all__ = ["FastSystem"]
