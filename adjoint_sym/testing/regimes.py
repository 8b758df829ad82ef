"""Hypothesis strategies for the hard regimes of a gradient check, and seeded draws of them.

The default :func:`~adjoint_sym.testing.strategies.problems` keep spans short and states
moving, which is what a user's property test wants first.  A *checker* must also be right
where step-size control is blind or strained; each strategy here visits one such regime:

================================  ==========================================================
strategy                          regime
================================  ==========================================================
:func:`long_span_problems`        the default families over spans up to 10 time units
:func:`equilibrium_problems`      ``dh/dt = A h + b`` started at its equilibrium (``b =
                                  -A h0``), ``A`` with growing modes too: the state stands
                                  still, so the error estimate sees nothing, while the
                                  gradient grows like ``exp(lambda T)``; ``h0 = 0`` is the
                                  zero trajectory
:func:`zero_gradient_problems`    polynomial systems without constant terms started at
                                  ``h = 0``: the trajectory is identically zero and so is
                                  every parameter and time derivative (exact zeros)
:func:`stiff_problems`            linear systems with one fast mode ``-100 .. -1000``
                                  beside slow ones (``|lambda| T`` ~ 50 to 2000): mildly
                                  stiff, where explicit solvers are stability-limited
:func:`hard_problems`             any of the four
================================  ==========================================================

:func:`drawn_problems` draws a reproducible list of problems from any strategy (the
false-alarm benchmark and campaigns use it); like every module that draws, it needs
:mod:`hypothesis` (the ``[hypothesis]`` extra).

Examples
--------
>>> probs = drawn_problems(3, equilibrium_problems(dim=1), seed=0)
>>> [bool(abs(p.kernels.f(p.t0, p.h0, p.theta)[0]) < 1e-12) for p in probs]  # each stands still
[True, True, True]
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..numeric.problem import Problem
from ..symbolic.system import ODESystem
from .strategies import (
    _PARAM_NAMES,
    _similar,
    _state_names,
    _strategy,
    _system,
    final_losses,
    initial_states,
    linear_systems,
    losses,
    parameter_values,
    polynomial_systems,
    problems,
    time_spans,
)

#: Longest span of the long-span regimes (time units).
LONG_SPAN = 10.0
#: Fast eigenvalues of :func:`stiff_problems` (shrinking goes to the first).
FAST_MODES = (-100, -200, -500, -1000)
#: Slow eigenvalues beside them.
SLOW_MODES = (Fraction(-1), Fraction(-1, 2), Fraction(-2), Fraction(1, 2))

_ONE_TO_THREE = st.integers(1, 3)
_TWO_OR_THREE = st.integers(2, 3)


def _losses_over(system: ODESystem, t0: float, t1: float) -> SearchStrategy:
    return losses(system, t0, t1)


def long_span_problems(max_length: float = LONG_SPAN) -> SearchStrategy[Problem]:
    """:func:`~adjoint_sym.testing.strategies.problems` over spans up to ``max_length``.

    Trajectories that leave the ball of radius ``MAX_STATE`` are still rejected, so what
    remains are the dissipative, oscillating and saturating draws, run for long.
    """
    return problems(spans=time_spans(max_length=max_length))


@st.composite
def equilibrium_problems(
    draw,
    dim: int | SearchStrategy[int] = _ONE_TO_THREE,
    real_parts: tuple[float, float] = (-2.0, 1.0),
    max_length: float = LONG_SPAN,
) -> Problem:
    """``dh/dt = A h + b`` started at an equilibrium: ``b = -A h0``, so ``h(t) = h0``.

    ``A`` comes from :func:`~adjoint_sym.testing.strategies.linear_systems` (autonomous
    forcing, one parameter per state) with real parts in ``real_parts``, growing modes
    included: ``dL/dh0 = exp(A^T T) dL/dh`` grows like ``exp(lambda T)`` while the state
    never moves (``x' = x, x(0) = 0``; ``x' = x - y, y' = y - x`` from ``(1, 1)``).
    ``h0`` shrinks to zero, the zero trajectory.

    Examples
    --------
    >>> from hypothesis import find
    >>> prob = find(equilibrium_problems(dim=2), lambda p: True)
    >>> bool(np.all(prob.kernels.f(prob.t0, prob.h0, prob.theta) == 0))
    True
    """
    system = draw(linear_systems(dim=dim, real_parts=real_parts, time_dependent=False))
    n = int(system.n)
    h0 = draw(initial_states(n))
    A = system.jacobian_h  # exact rationals: the forcing that holds h0 still is exact too
    forcing = -(A * sp.Matrix([sp.Rational(v) for v in h0]))
    params = {name: float(forcing[k]) for k, name in enumerate(system.param_names)}
    t0, t1 = draw(time_spans(max_length=max_length))
    loss = draw(_losses_over(system, t0, t1))
    return Problem(system, h0, params, t0, t1, loss)


@st.composite
def zero_gradient_problems(
    draw,
    dim: int | SearchStrategy[int] | None = None,
    max_length: float = LONG_SPAN,
) -> Problem:
    """Polynomial systems with a state factor in every term, started at ``h = 0``.

    ``h(t) = 0`` for all ``t`` whatever the parameters, so ``dL/dtheta``, ``dL/dt0``
    and ``dL/dt1`` are exactly zero, and with a purely quadratic loss so is every entry
    (the loss itself is 0): quantities whose true value is 0, which a checker must not
    compare without an absolute floor.

    Examples
    --------
    >>> from hypothesis import find
    >>> prob = find(zero_gradient_problems(), lambda p: True)
    >>> prob.h0.tolist(), prob.system.rhs[0]
    ([0.0], x)
    """
    system = draw(polynomial_systems(dim=dim, min_degree=1))
    params = draw(parameter_values(system))
    t0, t1 = draw(time_spans(max_length=max_length))
    loss = draw(final_losses(system, time_dependent=False))
    return Problem(system, np.zeros(int(system.n)), params, t0, t1, loss)


@st.composite
def stiff_linear_systems(
    draw,
    dim: int | SearchStrategy[int] = _TWO_OR_THREE,
    fast: tuple[int, ...] = FAST_MODES,
    time_dependent: bool | SearchStrategy[bool] = False,
) -> ODESystem:
    """``dh/dt = A h + forcing`` with one fast eigenvalue (from ``fast``) and slow ones.

    ``A = P D P^{-1}`` as in :func:`~adjoint_sym.testing.strategies.linear_systems`
    (non-normal, exact rationals); the forcing of each state is a parameter (times
    ``cos(t)`` with time dependence).

    Examples
    --------
    >>> from hypothesis import find
    >>> system = find(stiff_linear_systems(), lambda s: True)
    >>> sorted(np.linalg.eigvals(np.array(system.jacobian_h.tolist(), dtype=float)).round(6).tolist())
    [-100.0, -1.0]
    """
    n = draw(_strategy(dim))
    timed = draw(_strategy(time_dependent))
    D = [[Fraction(0)] * n for _ in range(n)]
    D[0][0] = Fraction(draw(st.sampled_from(fast)))
    for i in range(1, n):
        D[i][i] = draw(st.sampled_from(SLOW_MODES))
    N = [[Fraction(0)] * n for _ in range(n)]
    for r in range(n):
        for c in range(r + 1, n):
            N[r][c] = Fraction(draw(st.integers(-2, 2)), 2)
    A = _similar(D, N)
    names = _state_names(n)
    params = list(_PARAM_NAMES[:n])
    rhs = []
    for k in range(n):
        terms = [f"{_text(A[k][j])}*{names[j]}" for j in range(n) if A[k][j] != 0]
        forcing = f"{params[k]}*cos(t)" if timed and draw(st.booleans()) else params[k]
        rhs.append(" + ".join([*terms, forcing]))
    return _system(tuple(names), tuple(params), tuple(rhs), "stiff linear")


def _text(c: Fraction) -> str:
    return str(c.numerator) if c.denominator == 1 else f"({c.numerator}/{c.denominator})"


def stiff_problems(max_length: float = 2.0) -> SearchStrategy[Problem]:
    """Problems on :func:`stiff_linear_systems` over spans up to ``max_length`` (``|lambda| T``
    from 25 to 2000: mildly stiff, the range where explicit solvers still finish but are
    stability-limited)."""
    return problems(
        systems=stiff_linear_systems(time_dependent=st.booleans()),
        spans=time_spans(max_length=max_length),
    )


def hard_problems() -> SearchStrategy[Problem]:
    """Any of the regimes above (long spans first: it shrinks to the most ordinary draw).

    Examples
    --------
    >>> len(drawn_problems(3, hard_problems(), seed=1))
    3
    """
    return st.one_of(long_span_problems(), equilibrium_problems(), zero_gradient_problems(), stiff_problems())


#: The regimes by name (the false-alarm benchmark draws from each).
REGIMES = {
    "default": problems,
    "long-span": long_span_problems,
    "equilibrium": equilibrium_problems,
    "zero-gradient": zero_gradient_problems,
    "stiff": stiff_problems,
}


def drawn_problems(n: int, strategy: SearchStrategy[Problem] | None = None, *, seed: int = 0) -> list[Problem]:
    """``n`` problems drawn from ``strategy`` (default :func:`hard_problems`), reproducibly.

    Hypothesis generates them (no database, no shrinking) under ``seed``: the same seed
    and strategy give the same list on every run and machine, so a campaign can be split
    into seeds and any problem found again.  Duplicates are kept (hypothesis draws the
    simplest problems more than once); pass a larger ``n`` for more distinct ones.

    Examples
    --------
    >>> [p.system.n for p in drawn_problems(2, problems(systems=polynomial_systems(dim=1)), seed=3)]
    [1, 1]
    """
    strategy = hard_problems() if strategy is None else strategy
    out: list[Problem] = []
    for attempt in range(8):  # hypothesis may stop early when it believes the space exhausted
        missing = n - len(out)
        if missing <= 0:
            break
        before = len(out)
        _collector(strategy, missing, out)(seed + 1_000_003 * attempt)
        if len(out) == before:
            break
    return out[:n]


def _collector(strategy: SearchStrategy[Problem], n: int, out: list):
    def run(seed: int) -> None:
        @hypothesis_seed(seed)
        @settings(
            max_examples=n,
            database=None,
            deadline=None,
            derandomize=False,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(problem=strategy)
        def collect(problem):
            out.append(problem)

        collect()

    return run


__all__ = [
    "FAST_MODES",
    "LONG_SPAN",
    "REGIMES",
    "drawn_problems",
    "equilibrium_problems",
    "hard_problems",
    "long_span_problems",
    "stiff_linear_systems",
    "stiff_problems",
    "zero_gradient_problems",
]
