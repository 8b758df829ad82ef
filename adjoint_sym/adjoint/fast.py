"""An opt-in compiled fast path: the interpolating adjoint with no Python in the loop.

The default route (:func:`adjoint_sym.adjoint.gradient.adjoint_gradient`) drives
``scipy.integrate.solve_ivp``, which spends about 30 us of Python per step whatever the
kernels cost; a few hundred steps forward and back put a floor of several milliseconds
under every gradient.  Here the same algorithm runs compiled end to end:

* **Kernels**: ``f`` and the adjoint's vector-Jacobian product
  ``[a^T f_h, a^T f_theta, a^T f_t]``, both taken from :meth:`ODESystem.vjp` (the
  symbolic VJP under test), are expanded to scalars in SymEngine and compiled by its
  LLVM backend (tens of milliseconds for a new system, no numba compilation per system).
* **Integrator**: the Dormand-Prince 5(4) pair with its free quartic dense output, with
  the coefficients, step-size control and initial-step rule of SciPy's ``RK45``, written
  once in numba's nopython mode and cached on disk (``cache=True``).  The kernels reach
  it as first-class function pointers, so a new system never recompiles it.
* **Adjoint**: the interpolating adjoint, run by the library's one backward sweep
  (:func:`adjoint_sym.adjoint.backward.sweep`, which applies the observation jumps
  ``a += dL/dh(t_i)`` and ``a_t -= dL/dh(t_i) . f``, Chen et al. 2018, appendix B) with a
  compiled engine: each segment between observation times is one call into numba.

The results have the semantics of ``adjoint_gradient(problem, method="interpolating",
solver="RK45")`` and agree with it to round-off in the step-size decisions; against the
default DOP853 route they differ by the solvers' global error, a small multiple of
``rtol``.

Why this design (measured on the issue's Lotka-Volterra and spiral problems, see
``benchmarks/bench_fast.py``): CasADi's CVODES adjoint, the well-kept engine, takes 5 to
10 ms per gradient (its checkpointed adjoint and call overhead), above the 3 ms target;
SymEngine's LLVM kernels inside ``solve_ivp`` keep SciPy's per-step Python (the forward
solve alone takes 3 to 7 ms); numba-compiled kernels cost a numba compilation per system
(0.4 s for the first in a process).  No maintained package offers an adaptive explicit
integrator with dense output callable from numba on a function pointer (numbalsoda and
numbakit-ode are unmaintained since 2022), so the scheme is SciPy's ``RK45`` transcribed,
its tableau read from SciPy itself.  ``tanh`` is compiled as ``1 - 2/(exp(2x) + 1)``
(absolute error below 4e-16, 40% cheaper than libm's ``tanh``, which dominates neural
kernels).

Costs paid once: the first use after installing compiles the integrator (about 7 s of
CPU, then cached on disk next to this module or in ``NUMBA_CACHE_DIR``); a fresh
interpreter pays about 0.3 s to import numba and 0.3 s for numba to load that cache.

Scope: small and medium systems.  Matrix-level systems are expanded into scalars, so
LLVM's compile time grows with the parameter count: 0.1 s of CPU for the 2-50-2 spiral
(252 parameters), 1 s for a 32-wide tanh layer (1,056), 6 s at width 64 (4,160); wide
networks whose gradient is needed only a few times belong to the default route, whose
kernels stay matrix-level.

Needs the optional dependencies numba and symengine: ``pip install "adjoint_sym[fast]"``.
Real float64 problems only (no complex step through this path); explicit integration,
so stiff systems (Robertson) belong to the default route with ``solver="LSODA"``.

References
----------
Chen, Rubanova, Bettencourt, Duvenaud (2018), Neural Ordinary Differential Equations.
Dormand and Prince (1980), A family of embedded Runge-Kutta formulae.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import InvalidModelError, SolverFailedError, UnsupportedExpressionError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..symbolic.system import ODESystem
from .backward import AdjointState, Observations, Segments, gradient_fields, sweep
from .fast_engine import NON_FINITE, OK, STEP_LIMIT, TOO_SMALL, callback, forward, numba, segment

try:
    import symengine as se
except ImportError:  # pragma: no cover
    se = None

INSTALL_HINT = 'pip install "adjoint_sym[fast]"'

#: Accepted steps per integration before the solve is declared failed: a non-stiff
#: problem at rtol >= 1e-12 needs far fewer; a stiff one would take millions.
MAX_STEPS = 200_000

FAST_METHODS = ("adjoint", "interpolating")


def available() -> bool:
    """Whether numba and symengine (built with LLVM) are installed, so :func:`fast_gradient` can run.

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    return numba is not None and se is not None and bool(getattr(se, "have_llvm", False))


def _require() -> None:
    missing = [name for name, mod in (("numba", numba), ("symengine", se)) if mod is None]
    if missing:
        raise InvalidModelError(
            f"the fast backend needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed: {INSTALL_HINT}, or use the default backend"
        )
    if not getattr(se, "have_llvm", False):
        raise InvalidModelError(
            f"the fast backend needs symengine built with LLVM, and symengine {se.__version__} is not: "
            f"reinstall it from PyPI's wheels ({INSTALL_HINT}), or use the default backend"
        )


# -- kernels: SymPy (matrix level) -> SymEngine (scalars) -> LLVM ---------------------------
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
        try:
            return self.memo[e]
        except KeyError:
            out = self.memo[e] = self._convert(e)
            return out

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

    def __init__(self, system: ODESystem) -> None:
        _require()
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

    def __repr__(self) -> str:
        return f"FastSystem({self.system!r})"


@lru_cache(maxsize=64)
def fast_system(system: ODESystem) -> FastSystem:
    """The cached :class:`FastSystem` of ``system`` (systems are hashable)."""
    return FastSystem(system)


# -- the public entry point ------------------------------------------------------------------
def fast_gradient(
    problem: Problem,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    method: str = "adjoint",
) -> Gradient:
    """The loss and its gradient by the compiled interpolating adjoint.

    Same semantics as :func:`adjoint_sym.adjoint.gradient.adjoint_gradient` (``dh0``,
    ``dparams``, ``dt0`` with ``h0`` held fixed, ``dt1`` for final losses and ``dtimes``
    for observation losses), computed with SciPy's RK45 scheme compiled end to end.

    Parameters
    ----------
    problem : Problem
        Real-valued; any loss (expression losses and :class:`CallableLoss` are evaluated
        in Python once, at the observed states).
    rtol, atol : float
        Tolerances of the forward and the adjoint solve.
    method : {"adjoint", "interpolating"}
        Both mean the interpolating adjoint (the default route's choice for explicit
        solvers).

    Returns
    -------
    Gradient
        ``method`` is ``"interpolating"``; ``stats`` has the step and evaluation counts,
        ``wall_time`` and ``backend="fast"``.

    Raises
    ------
    InvalidModelError
        numba or symengine is missing (``pip install "adjoint_sym[fast]"``), an
        unknown ``method``, or a loss with a running cost (not compiled here).
    UnsupportedExpressionError
        The system uses a function the LLVM backend does not compile.
    SolverFailedError
        The solve blew up, its step size underflowed, or it took more than
        :data:`MAX_STEPS` steps (a stiff system: use the default backend with LSODA).

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                0.0, 10.0, FinalLoss("x**2 + y**2"))
    >>> g = fast_gradient(prob, rtol=1e-8, atol=1e-10)  # doctest: +SKIP
    >>> sorted(g.dparams)  # doctest: +SKIP
    ['a', 'b', 'c', 'd']
    """
    if not isinstance(problem, Problem):
        raise InvalidModelError(f"fast_gradient() takes a Problem, got {type(problem).__name__}")
    if method not in FAST_METHODS:
        raise InvalidModelError(
            f"the fast backend computes the interpolating adjoint; method {method!r} is not available there "
            f"(choose one of {FAST_METHODS}, or use the default backend)"
        )
    if problem.running_cost is not None:
        raise InvalidModelError(
            "backend='fast' has no running cost (IntegralLoss) in its compiled sweep; use backend='default', "
            "whose adjoints all integrate it"
        )
    _require()
    started = time.perf_counter()
    fs = fast_system(problem.system)
    n = fs.n
    h0 = np.ascontiguousarray(problem.h0, dtype=np.float64)
    theta = np.asarray(problem.theta)
    if np.iscomplexobj(theta) or np.iscomplexobj(h0):
        raise InvalidModelError("the fast backend is real-valued; use the default backend for complex input")
    times = np.ascontiguousarray(problem.times, dtype=np.float64)
    t0 = float(problem.t0)
    buf = np.zeros(1 + 2 * n + fs.n_params)
    buf[1 + 2 * n :] = theta
    states, rates, ts, ys, qs, nfev_fwd, steps_fwd, status, t_reached = forward(
        *fs.f_ptr, buf, n, t0, times, h0, float(rtol), float(atol), MAX_STEPS
    )
    _check(status, t_reached, t0, float(times[-1]), "forward solve", ys[-1])
    observations = Observations.of(problem, states, rates)
    engine = _FastSegments(fs, buf, ts, ys, qs, float(rtol), float(atol))
    final = sweep(problem, observations, engine)
    stats = {
        "nfev_forward": int(nfev_fwd),
        "steps_forward": int(steps_fwd),
        **engine.stats,
        "wall_time": time.perf_counter() - started,
        "solver": "RK45",
        "backend": "fast",
    }
    return Gradient(method="interpolating", stats=stats, **gradient_fields(problem, observations, final))


class _FastSegments(Segments):
    """The interpolating adjoint's segments, integrated by the compiled RK45 (one call each)."""

    def __init__(self, fs: FastSystem, buf, ts, ys, qs, rtol: float, atol: float) -> None:
        self.fs, self.buf, self.ts, self.ys, self.qs, self.rtol, self.atol = fs, buf, ts, ys, qs, rtol, atol
        self.stats = {"nfev_backward": 0, "steps_backward": 0}

    def cross(self, start, end, state, h_start):
        y0 = np.ascontiguousarray(np.real(state.vector()), dtype=np.float64)
        y, nfev, steps, status, t_reached = segment(
            *self.fs.vjp_ptr,
            self.buf,
            self.fs.n,
            self.ts,
            self.ys,
            self.qs,
            start,
            end,
            y0,
            self.rtol,
            self.atol,
            MAX_STEPS,
        )
        self.stats["nfev_backward"] += int(nfev)
        self.stats["steps_backward"] += int(steps)
        _check(status, t_reached, start, end, "adjoint solve", y)
        return AdjointState.from_vector(y.copy(), self.fs.n, self.fs.n_params)


def _check(status: int, t_reached: float, start: float, end: float, what: str, state: np.ndarray) -> None:
    if status == OK:
        return
    reason, remedy = {
        TOO_SMALL: ("the step size fell below round-off", "the problem may be stiff or singular there"),
        STEP_LIMIT: (f"it took more than {MAX_STEPS} steps", "the problem is probably stiff"),
        NON_FINITE: ("the solution became non-finite", "the solution may blow up: shorten the time span"),
    }[status]
    raise SolverFailedError(
        f"{what} (fast backend, RK45) stopped at t = {t_reached:.6g} of [{start:.6g}, {end:.6g}]: {reason}; "
        f"{remedy}, or use the default backend with solver='LSODA'",
        t=float(t_reached),
        state=np.array(state, copy=True),
        solver_message=reason,
    )


__all__ = ["FAST_METHODS", "FastSystem", "available", "fast_gradient", "fast_system"]
