"""An opt-in compiled fast path: the interpolating adjoint with no Python in the loop.

The default route (:func:`adjoint_sym.adjoint.gradient.adjoint_gradient`) drives
``scipy.integrate.solve_ivp``, which spends about 30 us of Python per step whatever the
kernels cost; a few hundred steps forward and back put a floor of several milliseconds
under every gradient.  Here the same algorithm runs compiled end to end:

* **Kernels**, both from ``f`` and its symbolic VJP :meth:`ODESystem.vjp` (the code
  under test), in one of two forms chosen by the system's shape (or ``kernels=``):

  - scalar systems (Lotka-Volterra, Robertson): expanded into scalars by SymEngine and
    compiled by its LLVM backend (:mod:`adjoint_sym.adjoint.fast_symengine`), tens of
    milliseconds for a new system;
  - matrix-level systems (neural networks of any width): lowered to tapes of matrix
    operations that call BLAS on views of theta's blocks, run by one interpreter
    compiled once (:mod:`adjoint_sym.adjoint.fast_matrix`): milliseconds for a new
    system whatever its width, no scalar expansion.

* **Integrator**: the Dormand-Prince 5(4) pair with its free quartic dense output, with
  the coefficients, step-size control and initial-step rule of SciPy's ``RK45``, written
  once in numba's nopython mode and cached on disk (:mod:`adjoint_sym.adjoint.fast_engine`).
  The kernels reach it as C function pointers, so a new system never recompiles it.
* **Adjoint**: the interpolating adjoint, run by the library's one backward sweep
  (:func:`adjoint_sym.adjoint.backward.sweep`, which applies the observation jumps
  ``a += dL/dh(t_i)`` and ``a_t -= dL/dh(t_i) . f``, Chen et al. 2018, appendix B) with a
  compiled engine: each segment between observation times is one call into numba.
* **Stiffness** is detected, not endured: Hairer's test on the last two stages of each
  step tells when stability rather than accuracy limits the step, and when the rest of
  the span would then take more than :data:`STIFF_STEPS` steps the solve stops with a
  :class:`~adjoint_sym.errors.SolverFailedError` naming the default backend's stiff
  solvers (``LSODA``, ``BDF``, ``Radau``).

Semantics.  For scalar systems every component of ``[a, a_theta, a_t]`` is under error
control, so the results agree with ``adjoint_gradient(problem, method="interpolating",
solver="RK45")`` to round-off.  For matrix-level systems only ``a`` is; ``a_theta`` and
``a_t`` are integrated on its steps with the same weights (the seminorm of Kidger et al.
2021, see :mod:`adjoint_sym.adjoint.fast_matrix`), which is what keeps wide networks
cheap.  Against the default DOP853 route both differ by the solvers' global error, a
small multiple of ``rtol``.

Why this design (measured in ``benchmarks/bench_fast.py``): CasADi's CVODES adjoint
takes 5 to 10 ms per gradient on the small problems; SymEngine's kernels inside
``solve_ivp`` keep SciPy's per-step Python; numba-compiled kernels per system cost a
numba compilation each (0.4 s and up).  No maintained package offers an adaptive
explicit integrator with dense output callable from numba on a function pointer, so the
scheme is SciPy's ``RK45`` transcribed, its tableau read from SciPy itself.

Costs paid once: the first use after installing compiles the integrator (about 10 s of
CPU) and, with the first network, the tape interpreter (about 5 s), then cached on disk
next to these modules or in ``NUMBA_CACHE_DIR``; a fresh interpreter pays about 0.5 s to
import numba and as much for numba to load those caches (``benchmarks/bench_fast.py``).

Needs the optional dependencies numba and (for scalar systems) symengine:
``pip install "adjoint_sym[fast]"``.  Real float64 problems only (no complex step
through this path); explicit integration only (stiff systems are refused, see above).

References
----------
Chen, Rubanova, Bettencourt, Duvenaud (2018), Neural Ordinary Differential Equations.
Dormand and Prince (1980), A family of embedded Runge-Kutta formulae.
Hairer and Wanner (1996), Solving Ordinary Differential Equations II, section IV.2.
Kidger, Chen, Lyons (2021), "Hey, that's not an ODE": Faster ODE Adjoints via Seminorms.
"""

from __future__ import annotations

import time

import numpy as np

from .._limits import current_limits, how_to_raise
from ..errors import InvalidModelError, SolverFailedError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..symbolic.system import ODESystem
from .backward import AdjointState, Observations, Segments, gradient_fields, sweep
from .fast_engine import NON_FINITE, OK, STEP_LIMIT, STIFF, TOO_SMALL, forward, numba, pointer, segment

try:
    import symengine as se
except ImportError:  # pragma: no cover
    se = None

INSTALL_HINT = 'pip install "adjoint_sym[fast]"'

#: Accepted steps per integration before the solve is declared failed, unless
#: :func:`adjoint_sym.limits` says otherwise (``max_steps``, the same default): a
#: non-stiff problem at rtol >= 1e-12 needs far fewer; a stiff one would take millions.
MAX_STEPS = 200_000

#: Once stability limits the step (see the module docstring), the solve stops if its
#: steps so far plus the rest of the span at that step would exceed this: an implicit
#: solver takes a few hundred steps where RK45 would take tens of thousands.
STIFF_STEPS = 20_000

FAST_METHODS = ("adjoint", "interpolating")
KERNELS = ("auto", "scalar", "matrix")
STIFF_REMEDY = "use the default backend with a stiff solver: gradient(problem, solver='LSODA') (or 'BDF', 'Radau')"


def available() -> bool:
    """Whether numba and symengine (built with LLVM) are installed, so :func:`fast_gradient` can run.

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    return numba is not None and se is not None and bool(getattr(se, "have_llvm", False))


def _require(kind: str = "scalar") -> None:
    needs = [("numba", numba)] + ([("symengine", se)] if kind == "scalar" else [])
    missing = [name for name, mod in needs if mod is None]
    if missing:
        raise InvalidModelError(
            f"the fast backend needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed: {INSTALL_HINT}, or use the default backend"
        )
    if len(needs) == 2 and not getattr(se, "have_llvm", False):
        raise InvalidModelError(
            f"the fast backend needs symengine built with LLVM, and symengine {se.__version__} is not: "
            f"reinstall it from PyPI's wheels ({INSTALL_HINT}), or use the default backend"
        )


class _MatrixKernels:
    """A matrix-level system's tapes as the engine's two kernels (the interpreter + each tape)."""

    kind = "matrix"

    def __init__(self, system: ODESystem) -> None:
        from .fast_matrix import matrix_fast_system  # imports the interpreter: only when a network asks
        from .fast_tape import ADDRESS

        self.tapes = matrix_fast_system(system)
        self.n, self.n_params, self.width, self.n_dense = (
            self.tapes.n,
            self.tapes.n_params,
            self.tapes.width,
            self.tapes.n_dense,
        )
        self.f_ptr = pointer(ADDRESS, self.tapes.f_tape.ctypes.data)
        self.vjp_ptr = pointer(ADDRESS, self.tapes.vjp_tape.ctypes.data)
        self.derive_time, self.compile_time = self.tapes.derive_time, self.tapes.compile_time

    def memory(self, theta: np.ndarray) -> np.ndarray:
        return self.tapes.memory(theta)


_SYSTEMS: dict = {}


def kernel_kind(system: ODESystem, kernels: str = "auto") -> str:
    """``"scalar"`` (SymEngine) or ``"matrix"`` (tapes) for ``system``; ``"auto"`` picks by its shape."""
    if kernels not in KERNELS:
        raise InvalidModelError(f"unknown kernels {kernels!r}; choose one of {KERNELS}")
    if kernels == "auto":
        return "matrix" if system.is_matrix_level else "scalar"
    if kernels == "matrix" and not system.is_matrix_level:
        raise InvalidModelError(
            "kernels='matrix' needs a matrix-level system (its state one MatrixSymbol, as the builders' "
            "networks); this system has scalar states: use kernels='scalar' or 'auto'"
        )
    return kernels


def fast_system(system: ODESystem, kernels: str = "auto"):
    """The cached compiled kernels of ``system`` (see :func:`kernel_kind`)."""
    kind = kernel_kind(system, kernels)
    try:
        return _SYSTEMS[system, kind]
    except KeyError:
        pass
    _require(kind)
    if kind == "matrix":
        out = _MatrixKernels(system)
    else:
        from .fast_symengine import FastSystem

        out = FastSystem(system)
    if len(_SYSTEMS) >= 64:
        _SYSTEMS.pop(next(iter(_SYSTEMS)))
    _SYSTEMS[system, kind] = out
    return out


fast_system.cache_clear = _SYSTEMS.clear  # the same handle as an lru_cache, for the benchmarks


# -- the public entry point ------------------------------------------------------------------
def fast_gradient(
    problem: Problem,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    method: str = "adjoint",
    kernels: str = "auto",
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
    kernels : {"auto", "scalar", "matrix"}
        ``"auto"``: SymEngine's scalar kernels for scalar systems, tapes for matrix-level
        ones.  ``"scalar"`` expands a network into scalars too: faster per step for a few
        hundred parameters (the 2-50-2 spiral), at a compile time that grows with them
        (0.1 s for the spiral, 6 s at 4,160); every component under error control.

    Returns
    -------
    Gradient
        ``method`` is ``"interpolating"``; ``stats`` has the step and evaluation counts,
        ``wall_time``, ``backend="fast"`` and ``kernels`` (``"scalar"`` or ``"matrix"``).

    Raises
    ------
    InvalidModelError
        numba or symengine is missing (``pip install "adjoint_sym[fast]"``), an
        unknown ``method``, or a loss with a running cost (not compiled here).
    UnsupportedExpressionError
        The system uses a function the fast kernels do not compile.
    SolverFailedError
        The solve blew up, its step size underflowed, it took more than
        :data:`MAX_STEPS` steps, or it is stiff (the message names the stiff solvers
        of the default backend).

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
    _require(kernel_kind(problem.system, kernels))
    started = time.perf_counter()
    h0 = np.ascontiguousarray(problem.h0, dtype=np.float64)
    theta = np.asarray(problem.theta)
    if np.iscomplexobj(theta) or np.iscomplexobj(h0):
        raise InvalidModelError("the fast backend is real-valued; use the default backend for complex input")
    fs = fast_system(problem.system, kernels)
    times = np.ascontiguousarray(problem.times, dtype=np.float64)
    t0 = float(problem.t0)
    buf = fs.memory(theta)
    limits = _step_limits()
    states, rates, ts, ys, qs, nfev_fwd, steps_fwd, status, t_reached, rho = forward(
        *fs.f_ptr, buf, fs.n, t0, times, h0, float(rtol), float(atol), limits
    )
    _check(status, t_reached, t0, float(times[-1]), "forward solve", states[-1], rho)
    _check_time("the forward solve", t0)
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
        "kernels": fs.kind,
    }
    return Gradient(method="interpolating", stats=stats, **gradient_fields(problem, observations, final))


class _FastSegments(Segments):
    """The interpolating adjoint's segments, integrated by the compiled RK45 (one call each).

    Scalar kernels step ``[a, a_theta, a_t]``; matrix kernels step ``a`` and carry
    ``a_t``, ``a_theta`` as the quadrature payload (:mod:`adjoint_sym.adjoint.fast_matrix`).
    """

    def __init__(self, fs, buf, ts, ys, qs, rtol: float, atol: float) -> None:
        self.fs, self.buf, self.ts, self.ys, self.qs, self.rtol, self.atol = fs, buf, ts, ys, qs, rtol, atol
        self.limits = _step_limits()
        self.stats = {"nfev_backward": 0, "steps_backward": 0}

    def cross(self, start, end, state, h_start):
        fs = self.fs
        matrix = fs.kind == "matrix"
        _check_time("the adjoint solve", start)
        y0 = np.ascontiguousarray(np.real(state.a if matrix else state.vector()), dtype=np.float64)
        acc = np.zeros(fs.n_dense)
        y, nfev, steps, status, t_reached, rho, rows, weights = segment(
            *fs.vjp_ptr, self.buf, fs.n, self.ts, self.ys, self.qs, start, end, y0,
            fs.width, acc, self.rtol, self.atol, self.limits,
        )  # fmt: skip
        self.stats["nfev_backward"] += int(nfev)
        self.stats["steps_backward"] += int(steps)
        _check(status, t_reached, start, end, "adjoint solve", y, rho)
        if not matrix:
            return AdjointState.from_vector(y.copy(), fs.n, fs.n_params)
        a_theta = state.a_theta + fs.tapes.parameter_adjoint(acc, rows, weights)
        return AdjointState(y.copy(), a_theta, float(state.a_t + acc[0]))


def _step_limits() -> np.ndarray:
    """``[max_steps, stiff_steps]`` for the compiled loop; the stiff budget never exceeds the step budget."""
    max_steps = current_limits().max_steps
    return np.array([max_steps, min(STIFF_STEPS, max_steps)], dtype=np.int64)


def _check_time(what: str, t: float) -> None:
    """The compiled loop cannot look at a clock, so the time limit is checked between its
    calls (after the forward solve and before each backward segment); within a call the
    step budget bounds the run."""
    left = current_limits().seconds_left()
    if left is not None and left <= 0:
        limit = current_limits().time_limit
        raise SolverFailedError(
            f"the time limit ({limit:g} s) was reached at {what} (fast backend) at t = {t:.6g}; "
            f"{how_to_raise('time_limit')}",
            t=float(t),
            solver_message="time limit",
        )


def _check(status: int, t_reached: float, start: float, end: float, what: str, state: np.ndarray, rho: float) -> None:
    if status == OK:
        return
    span = f"{what} (fast backend, RK45) stopped at t = {t_reached:.6g} of [{start:.6g}, {end:.6g}]"
    if status == STIFF:
        more = abs(end - t_reached) * rho / 3.25  # steps left at the stability limit h = 3.25 / |lambda|
        reason = (
            f"the problem is stiff: stability, not accuracy, limits the step (h |lambda| > 3.25 with "
            f"|lambda| ~ {rho:.3g}), and the rest of the span would take about {more:.2g} more steps"
        )
        message = f"{span}: {reason}; {STIFF_REMEDY}"
    else:
        reason, remedy = {
            TOO_SMALL: ("the step size fell below round-off", "the problem may be stiff or singular there"),
            STEP_LIMIT: (
                f"it took more than {current_limits().max_steps} steps (max_steps; {how_to_raise('max_steps')})",
                "the problem is probably stiff",
            ),
            NON_FINITE: ("the solution became non-finite", "the solution may blow up: shorten the time span"),
        }[status]
        also = "use the default backend" if status == NON_FINITE else STIFF_REMEDY
        message = f"{span}: {reason}; {remedy}, or {also}"
    raise SolverFailedError(message, t=float(t_reached), state=np.array(state, copy=True), solver_message=reason)


__all__ = [
    "FAST_METHODS",
    "KERNELS",
    "MAX_STEPS",
    "STIFF_STEPS",
    "available",
    "fast_gradient",
    "fast_system",
    "kernel_kind",
]
