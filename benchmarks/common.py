"""Shared problems, timers and table printing for the benchmarks (issue 8).

Every benchmark script imports this module (``python benchmarks/<name>.py`` puts
``benchmarks/`` on ``sys.path``).  The problems are those of the issue's table, at the
issue's tolerances ``rtol=1e-7, atol=1e-9``:

==================  ==============================================================
name                problem
==================  ==============================================================
``lotka-volterra``  ``x' = a x - b x y, y' = d x y - c y``, ``(a, b, c, d) = (1.5, 1,
                    3, 1)``, ``h0 = (1, 1)``, ``t in [0, 10]``, ``L = x(10)^2 + y(10)^2``
``spiral``          ``dh/dt = W2 tanh(W1 h^3 + b1) + b2``, 2-50-2 (252 parameters,
                    weights ~ N(0, 0.1^2), seed 0), ``h0 = (2, 0)``, ``t in [0, 25]``,
                    sum of squared errors to the true spiral ``dh/dt = h^3 A`` (Chen et
                    al. 2018's example) at 10 equally spaced times
``mlp-<n>``         ``dh/dt = tanh(W h + b)``, ``W ~ N(0, 1/n)``, ``b ~ N(0, 0.1^2)``,
                    ``h0 ~ N(0, 1)`` (seed n), ``t in [0, 1]``, ``L = |h(1)|^2``
``robertson``       stiff kinetics, ``k = (0.04, 3e7, 1e4)``, ``h0 = (1, 0, 0)``,
                    ``t in [0, 100]``, ``L = y1(100) + 1e4 y2(100)``
==================  ==============================================================

Only the public API of ``adjoint_sym`` is used, plus the ``cache_clear`` of the kernel
caches ``adjoint_sym.numeric.kernels.compiled`` and ``adjoint_sym.adjoint.kernels.adjoint_kernels``
(``functools.lru_cache``) and SymPy's cache, all cleared by :func:`forget_compiled` so that
a "first gradient" really derives and compiles.
"""

from __future__ import annotations

import os

# One BLAS thread, set before numpy loads (import this module first).  OpenBLAS's worker
# threads spin while they wait: on a shared 2-core machine a 128x128 gemv-per-step
# gradient took 216 ms of CPU with them and 8 ms without.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

RTOL = 1e-7
ATOL = 1e-9

LV_PARAMS = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
LV_H0 = np.array([1.0, 1.0])
LV_T1 = 10.0

SPIRAL_HIDDEN = 50
SPIRAL_H0 = np.array([2.0, 0.0])
SPIRAL_T1 = 25.0
SPIRAL_TIMES = np.linspace(SPIRAL_T1 / 10, SPIRAL_T1, 10)
SPIRAL_TRUE_A = np.array([[-0.1, 2.0], [-2.0, -0.1]])

ROBERTSON_PARAMS = {"k1": 0.04, "k2": 3e7, "k3": 1e4}
ROBERTSON_H0 = np.array([1.0, 0.0, 0.0])
ROBERTSON_T1 = 100.0
ROBERTSON_LOSS = "y1 + 1e4*y2"
ROBERTSON_LOSS_GRAD = np.array([1.0, 1e4, 0.0])

MLP_SIZES = (2, 8, 32, 128)


# -- problem data (numbers only: the baseline and adjoint_sym share them) --------------
def spiral_targets() -> np.ndarray:
    """The true spiral ``dh/dt = h^3 A`` at the observation times, shape (10, 2)."""
    sol = solve_ivp(
        lambda t, h: (h**3) @ SPIRAL_TRUE_A,
        (0.0, SPIRAL_T1),
        SPIRAL_H0,
        method="DOP853",
        rtol=1e-12,
        atol=1e-12,
        t_eval=SPIRAL_TIMES,
    )
    return sol.y.T.copy()


def spiral_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """``W1`` (50, 2), ``b1`` (50, 1), ``W2`` (2, 50), ``b2`` (2, 1), entries ~ N(0, 0.1^2)."""
    rng = np.random.default_rng(seed)
    m = SPIRAL_HIDDEN
    return {
        "W1": 0.1 * rng.standard_normal((m, 2)),
        "b1": 0.1 * rng.standard_normal((m, 1)),
        "W2": 0.1 * rng.standard_normal((2, m)),
        "b2": 0.1 * rng.standard_normal((2, 1)),
    }


def mlp_data(n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``h0`` (n,) and ``{"W": (n, n), "b": (n, 1)}`` of the tanh MLP of width ``n``."""
    rng = np.random.default_rng(n)
    h0 = rng.standard_normal(n)
    return h0, {"W": rng.standard_normal((n, n)) / np.sqrt(n), "b": 0.1 * rng.standard_normal((n, 1))}


# -- adjoint_sym problems ------------------------------------------------------------------
def lv_problem():
    from adjoint_sym import FinalLoss, Problem
    from adjoint_sym.builders import lotka_volterra

    return Problem(lotka_volterra(), LV_H0, LV_PARAMS, 0.0, LV_T1, FinalLoss("x**2 + y**2"))


def spiral_problem():
    from adjoint_sym import ObservationLoss, Problem
    from adjoint_sym.builders import two_layer

    system = two_layer(2, SPIRAL_HIDDEN, input_power=3)
    loss = ObservationLoss(SPIRAL_TIMES, targets=spiral_targets())
    return Problem(system, SPIRAL_H0, spiral_weights(), 0.0, SPIRAL_T1, loss)


def mlp_problem(n: int):
    import sympy as sp

    from adjoint_sym import FinalLoss, Problem
    from adjoint_sym.builders import neural_ode

    h0, params = mlp_data(n)
    system = neural_ode(n)
    h = system.state[0]
    # A SymPy expression: the text "h[0]**2 + ... + h[127]**2" exceeds the parser's depth limit.
    loss = FinalLoss(sp.Add(*[h[i, 0] ** 2 for i in range(n)]))
    return Problem(system, h0, params, 0.0, 1.0, loss)


def robertson_problem():
    from adjoint_sym import FinalLoss, Problem
    from adjoint_sym.builders import robertson

    return Problem(robertson(), ROBERTSON_H0, ROBERTSON_PARAMS, 0.0, ROBERTSON_T1, FinalLoss(ROBERTSON_LOSS))


def forget_compiled() -> None:
    """Clear adjoint_sym's compiled-kernel cache and SymPy's cache: the next system is new."""
    from sympy.core.cache import clear_cache

    from adjoint_sym.adjoint.kernels import adjoint_kernels
    from adjoint_sym.numeric.kernels import compiled

    compiled.cache_clear()
    adjoint_kernels.cache_clear()
    clear_cache()


# -- timing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Median and spread of repeated wall-clock times, in seconds."""

    median: float
    low: float
    repeats: int

    @property
    def ms(self) -> float:
        return 1e3 * self.median


#: The clock of every measurement: the CPU time of this process, not wall time.  The
#: benchmarks run on a shared 2-core machine where other jobs come and go; wall time
#: then measures the neighbours, CPU time (numpy's BLAS is single-threaded at these
#: sizes) measures the work.  Set ``BENCH_CLOCK=wall`` to time the wall instead.
clock = time.perf_counter if os.environ.get("BENCH_CLOCK") == "wall" else time.process_time


def measure(fn: Callable[[], object], *, repeats: int = 7, budget: float = 3.0, warmup: int = 1) -> Timing:
    """Median time of ``fn()`` by :data:`clock` over ``repeats`` calls (at least 3; fewer
    than ``repeats`` if ``budget`` seconds of wall time run out)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() < deadline):
        start = clock()
        fn()
        times.append(clock() - start)
    return Timing(statistics.median(times), min(times), len(times))


def once(fn: Callable[[], object]) -> tuple[float, object]:
    """Time of one call by :data:`clock`, and its result."""
    start = clock()
    out = fn()
    return clock() - start, out


# -- comparison ----------------------------------------------------------------------------
def rel_err(value: np.ndarray, reference: np.ndarray) -> float:
    """``max_j |value_j - ref_j| / max(|ref|_inf, tiny)``: error relative to the gradient's size."""
    value, reference = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    scale = max(float(np.max(np.abs(reference))), np.finfo(float).tiny)
    return float(np.max(np.abs(value - reference))) / scale


def componentwise_err(value: np.ndarray, reference: np.ndarray, floor: float = 0.0) -> float:
    """``max_j |value_j - ref_j| / max(|ref_j|, floor)``: the worst component's relative error."""
    value, reference = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    scale = np.maximum(np.abs(reference), max(floor, np.finfo(float).tiny))
    return float(np.max(np.abs(value - reference) / scale))


# -- tables --------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """A Markdown table (numbers formatted by :func:`fmt`)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines) + "\n"


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if v == 0:
            return "0"
        if abs(v) >= 1e4 or abs(v) < 1e-2:
            return f"{v:.2e}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return str(value)


def machine() -> str:
    """One line naming the interpreter, numpy/scipy/sympy versions and the core count."""
    import platform

    import scipy
    import sympy

    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"sympy {sympy.__version__}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}), float64, "
        f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}, rtol={RTOL:g}, atol={ATOL:g}; "
        f"times are {'wall' if clock is time.perf_counter else 'process CPU'} "
        "time, median of repeats"
    )


def measure_paired(fns: dict[str, Callable[[], object]], *, repeats: int = 7, budget: float = 4.0) -> dict[str, Timing]:
    """Median times of several functions measured round-robin (one call of each per round).

    Interleaving makes a ratio of two medians robust to load that comes and goes on a
    shared machine: both sides see the same neighbours.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + budget
    rounds = 0
    while rounds < repeats and (rounds < 3 or time.perf_counter() < deadline):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
        rounds += 1
    return {name: Timing(statistics.median(ts), min(ts), len(ts)) for name, ts in times.items()}
