"""Hypothesis strategies for gradient problems: systems, values, spans, losses.

The only module of adjoint_sym that imports :mod:`hypothesis` (an optional extra:
``pip install adjoint_sym[hypothesis]``).  Every strategy is bounded so that a drawn
problem is well posed and cheap: a few states, low degree, coefficients of order one,
spans of at most ``1.5`` time units, and :func:`problems` rejects (``assume``) the rare
draw whose trajectory leaves a ball of radius ``max_state`` under a cheap, loose solve.

Strategies compose: sizes and families are strategies themselves
(``systems(dim=st.integers(1, 4))``, ``problems(systems=polynomial_systems(degree=1))``)
and shrink towards small readable counterexamples: fewer states, lower degree, fewer
terms, coefficients ``1``, ``0.5`` and parameter values ``0``, ``0.5``, forward spans
from ``t0 = 0``, a final loss ``x``.  A shrunk problem prints as its equations; see
:func:`adjoint_sym.testing.describe`.

=============================  ========================================================
strategy                       draws
=============================  ========================================================
:func:`polynomial_systems`     ``dx/dt = sum of c * monomial * (1 | t | cos(t))``, each
                               coefficient a literal or a parameter
:func:`linear_systems`         ``dh/dt = A h + forcing`` with the spectrum of ``A`` in a
                               chosen band of real parts (dissipative by default)
:func:`neural_systems`         ``sigma(W h + b)`` and ``W2 sigma(W1 h + b1) + b2`` with
                               smooth activations (:mod:`adjoint_sym.builders`)
:func:`systems`                any of the three
:func:`parameter_values`       a value per parameter (matrices in their shapes)
:func:`initial_states`         ``h0``
:func:`time_spans`             ``(t0, t1)``, backward (``t1 < t0``) too
:func:`final_losses`           :class:`FinalLoss` expressions
:func:`observation_losses`     :class:`ObservationLoss` times and targets
:func:`integral_losses`        :class:`IntegralLoss` running costs ``int g dt``
:func:`running_cost_losses`    a point loss plus a running cost, or a running cost alone
:func:`problems`               a validated :class:`Problem` combining them
=============================  ========================================================

Examples
--------
>>> from hypothesis import given, settings
>>> @settings(max_examples=3, deadline=None)
... @given(problems(systems=polynomial_systems(dim=1, degree=1)))
... def test_loss_is_finite(prob):
...     assert prob.system.n == 1
>>> test_loss_is_finite()
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..errors import SolverFailedError
from ..numeric.loss import FinalLoss, IntegralLoss, Loss, ObservationLoss
from ..numeric.problem import Problem
from ..numeric.solve import integrate
from ..symbolic import builders
from ..symbolic.system import ODESystem

__all__ = [
    "ACTIVATIONS",
    "final_losses",
    "initial_states",
    "integral_losses",
    "linear_systems",
    "losses",
    "neural_systems",
    "observation_losses",
    "parameter_values",
    "polynomial_systems",
    "problems",
    "register_profiles",
    "run_property",
    "running_cost_losses",
    "systems",
    "time_spans",
]

#: Smooth activations drawn by :func:`neural_systems` (first = what shrinking picks).
#: ``gelu`` is left out by default: its ``erf`` is slow in complex arithmetic.
ACTIVATIONS = ("tanh", "sigmoid", "sin", "softplus", "swish")

_STATE_NAMES = ("x", "y", "z", "w")
# Parameter names: single letters that are no state, time or function name.
_PARAM_NAMES = tuple("abcdefgkmnpqrsuv")
# Readable values: shrinking goes to the first entry, then the next ones.
_COEFFICIENTS = (Fraction(1), Fraction(-1), Fraction(1, 2), Fraction(-1, 2), Fraction(2), Fraction(-2))
_TIME_FACTORS = ("", "t", "cos(t)")

# Default size and flag strategies (module-level singletons: ruff B008).
_ONE_TO_THREE = st.integers(1, 3)
_BOOLEANS = st.booleans()

#: The ball a drawn trajectory must stay in (checked by a loose solve).
MAX_STATE = 10.0


def _strategy(value) -> SearchStrategy:
    return value if isinstance(value, SearchStrategy) else st.just(value)


def _quarters(bound: float) -> SearchStrategy[float]:
    """Multiples of 1/4 in [-bound, bound], shrinking towards 0 (exact binary fractions)."""
    k = int(4 * bound)
    return st.integers(-k, k).map(lambda i: i / 4)


def _state_names(n: int) -> list[str]:
    return list(_STATE_NAMES[:n]) if n <= len(_STATE_NAMES) else [f"x{i}" for i in range(n)]


def _coefficient_text(c: Fraction) -> str:
    return str(c.numerator) if c.denominator == 1 else f"({c.numerator}/{c.denominator})"


# Shrinking re-draws the same systems many times: build (and so compile) each once.
@lru_cache(maxsize=512)
def _system(names: tuple, params: tuple, rhs: tuple, name: str) -> ODESystem:
    return ODESystem.from_strings(list(names), list(params), "t", list(rhs), name=name)


@lru_cache(maxsize=128)
def _neural_ode(n: int, activation: str, time: str) -> ODESystem:
    return builders.neural_ode(n, activation=activation, time=time)


@lru_cache(maxsize=128)
def _two_layer(n: int, hidden: int, activation: str, time: str) -> ODESystem:
    return builders.two_layer(n, hidden, activation=activation, time=time)


def _similar(D: list, N: list) -> list:
    """``P D P^{-1}`` for ``P = I + N``, ``N`` strictly upper triangular, in exact fractions."""
    n = len(D)
    P = [[Fraction(int(i == j)) + N[i][j] for j in range(n)] for i in range(n)]
    Q = [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]  # P^{-1}, by back substitution
    for i in range(n - 1, -1, -1):
        for j in range(n):
            Q[i][j] -= sum((P[i][k] * Q[k][j] for k in range(i + 1, n)), Fraction(0))

    def mul(X, Y):
        return [[sum((X[i][k] * Y[k][j] for k in range(n)), Fraction(0)) for j in range(n)] for i in range(n)]

    return mul(mul(P, D), Q)


# -- systems ------------------------------------------------------------------------------
@st.composite
def _terms(draw, max_index: int, max_degree: int, max_terms: int, timed: bool, min_degree: int = 0) -> list[tuple]:
    """One equation's terms, raw: (state indices, is_parameter, coefficient, time factor)."""
    terms = []
    for _ in range(draw(st.integers(1, max_terms))):
        factors = draw(
            st.lists(st.integers(0, max_index - 1), min_size=min_degree, max_size=max(max_degree, min_degree))
        )
        is_parameter = draw(st.booleans())
        coefficient = None if is_parameter else draw(st.sampled_from(_COEFFICIENTS))
        time_factor = draw(st.sampled_from(_TIME_FACTORS)) if timed else ""
        terms.append((factors, is_parameter, coefficient, time_factor))
    return terms


@st.composite
def polynomial_systems(
    draw,
    dim: int | SearchStrategy[int] | None = None,
    degree: int | SearchStrategy[int] = _ONE_TO_THREE,
    max_terms: int = 3,
    time_dependent: bool | SearchStrategy[bool] = _BOOLEANS,
    min_degree: int = 0,
) -> ODESystem:
    """Polynomial vector fields ``dx_i/dt = sum_k c_k m_k(x) g_k(t)``.

    Each equation has 1 to ``max_terms`` terms; a term is a monomial of total degree at
    most ``degree`` (possibly the constant 1), its coefficient is a literal from
    ``1, -1, 1/2, -1/2, 2, -2`` or a fresh scalar parameter, and with time dependence a
    factor ``t`` or ``cos(t)``.  Built with :meth:`ODESystem.from_strings`.  With
    ``min_degree=1`` every monomial has a state factor, so ``h = 0`` is an equilibrium
    (:mod:`adjoint_sym.testing.regimes` starts there).

    ``dim`` is an int, a strategy, or ``None`` for 1 to 3 states drawn as a list of
    equations: the shrinker then deletes a whole equation (state indices wrap around),
    which finds counterexamples with fewer states than lowering a drawn dimension does.

    Examples
    --------
    >>> from hypothesis import find
    >>> find(polynomial_systems(dim=2), lambda s: True)  # the simplest: what shrinking aims at
    ODESystem('polynomial', dx/dt = a, dy/dt = b; params [a, b])
    """
    if dim is None:
        low, high = 1, 3
    else:
        low = high = draw(_strategy(dim))
    max_degree = draw(_strategy(degree))
    timed = draw(_strategy(time_dependent))
    equations = draw(st.lists(_terms(high, max_degree, max_terms, timed, min_degree), min_size=low, max_size=high))
    n = len(equations)
    names = _state_names(n)
    params: list[str] = []
    rhs = []
    for terms in equations:
        texts = []
        for factors, is_parameter, coefficient, time_factor in terms:
            if is_parameter and len(params) < len(_PARAM_NAMES):
                params.append(_PARAM_NAMES[len(params)])
                text = params[-1]
            else:
                text = _coefficient_text(coefficient if coefficient is not None else _COEFFICIENTS[0])
            states = [names[i % n] for i in sorted(factors)]
            texts.append("*".join([text, *states, *([time_factor] if time_factor else [])]))
        rhs.append(" + ".join(texts))
    return _system(tuple(names), tuple(params), tuple(rhs), "polynomial")


@st.composite
def linear_systems(
    draw,
    dim: int | SearchStrategy[int] = _ONE_TO_THREE,
    real_parts: tuple[float, float] = (-2.0, 0.5),
    time_dependent: bool | SearchStrategy[bool] = _BOOLEANS,
) -> ODESystem:
    """``dh/dt = A h + forcing`` with the eigenvalues of ``A`` chosen, then hidden.

    ``A = P D P^{-1}``: ``D`` is block diagonal with real eigenvalues and rotation
    blocks ``[[r, w], [-w, r]]`` (eigenvalues ``r +- i w``), every real part ``r`` in
    ``real_parts`` (half-integers), ``P = I + N`` with ``N`` strictly upper triangular,
    so ``A`` is exact in rationals and generally non-normal (its Jacobian is not
    symmetric).  The forcing of state ``i`` is a parameter, times ``t`` or ``cos(t)``
    with time dependence.

    Examples
    --------
    >>> from hypothesis import find
    >>> find(linear_systems(dim=2), lambda s: not s.is_autonomous)
    ODESystem('linear', dx/dt = a, dy/dt = b*t; params [a, b])
    """
    n = draw(_strategy(dim))
    timed = draw(_strategy(time_dependent))
    lo, hi = (int(np.ceil(2 * real_parts[0])), int(np.floor(2 * real_parts[1])))
    half = st.integers(lo, hi).map(lambda k: Fraction(k, 2))
    D = [[Fraction(0)] * n for _ in range(n)]
    i = 0
    while i < n:
        r = draw(half)
        if i + 1 < n and draw(st.booleans()):
            w = Fraction(draw(st.integers(1, 4)), 2)
            D[i][i] = D[i + 1][i + 1] = r
            D[i][i + 1], D[i + 1][i] = w, -w
            i += 2
        else:
            D[i][i] = r
            i += 1
    N = [[Fraction(0)] * n for _ in range(n)]
    for r, c in itertools.combinations(range(n), 2):
        N[r][c] = Fraction(draw(st.integers(-2, 2)), 2)
    A = _similar(D, N)
    names = _state_names(n)
    params = list(_PARAM_NAMES[:n])
    rhs = []
    for k in range(n):
        time_factor = draw(st.sampled_from(_TIME_FACTORS)) if timed else ""
        linear = " + ".join(f"{_coefficient_text(A[k][j])}*{names[j]}" for j in range(n) if A[k][j] != 0)
        forcing = "*".join([params[k], time_factor] if time_factor else [params[k]])
        rhs.append(f"{linear} + {forcing}" if linear else forcing)
    return _system(tuple(names), tuple(params), tuple(rhs), "linear")


@st.composite
def neural_systems(
    draw,
    dim: int | SearchStrategy[int] = _ONE_TO_THREE,
    hidden: int | SearchStrategy[int] = _ONE_TO_THREE,
    activations: Sequence[str] = ACTIVATIONS,
    time_modes: Sequence[str] = ("none", "input", "linear"),
) -> ODESystem:
    """Small neural right-hand sides from :mod:`adjoint_sym.builders` (matrix level).

    One layer ``sigma(W h + b)`` (time modes ``none``, ``input``, ``linear``) or two
    layers ``W2 sigma(W1 h + b1) + b2`` (``none``, ``input``), ``sigma`` a smooth
    activation.

    Examples
    --------
    >>> from hypothesis import find
    >>> find(neural_systems(dim=2), lambda s: True).name
    'tanh layer, n=2'
    """
    n = draw(_strategy(dim))
    activation = draw(st.sampled_from(tuple(activations)))
    time = draw(st.sampled_from(tuple(time_modes)))
    if draw(st.booleans()) and time != "linear":
        return _two_layer(n, draw(_strategy(hidden)), activation, time)
    return _neural_ode(n, activation, time)


def systems(dim: int | SearchStrategy[int] | None = None) -> SearchStrategy[ODESystem]:
    """Any of :func:`polynomial_systems`, :func:`linear_systems`, :func:`neural_systems`.

    Shrinks towards polynomial systems (the most readable).

    Examples
    --------
    >>> from hypothesis import find
    >>> find(systems(dim=st.integers(1, 4)), lambda s: s.n == 4 and s.is_matrix_level).n
    4
    """
    sized = _ONE_TO_THREE if dim is None else dim
    return st.one_of(polynomial_systems(dim=dim), linear_systems(dim=sized), neural_systems(dim=sized))


# -- values ---------------------------------------------------------------------------------
@st.composite
def parameter_values(draw, system: ODESystem, bound: float = 1.0) -> dict:
    """A value per parameter: multiples of 1/4 in ``[-bound, bound]``, matrices in shape.

    Examples
    --------
    >>> from adjoint_sym.builders import lotka_volterra
    >>> from hypothesis import find
    >>> find(parameter_values(lotka_volterra()), lambda v: v["b"] < 0)
    {'a': 0.0, 'b': -0.25, 'c': 0.0, 'd': 0.0}
    """
    values: dict = {}
    for name, shape in system.param_shapes.items():
        if shape:
            shape = tuple(int(k) for k in shape)  # MatrixSymbol shapes are SymPy integers
            size = int(np.prod(shape))
            entries = draw(st.lists(_quarters(bound), min_size=size, max_size=size))
            values[name] = np.array(entries, dtype=float).reshape(shape)
        else:
            values[name] = draw(_quarters(bound))
    return values


def initial_states(dim: int, bound: float = 1.0) -> SearchStrategy[list[float]]:
    """``h0``: ``dim`` multiples of 1/4 in ``[-bound, bound]``.

    Examples
    --------
    >>> from hypothesis import find
    >>> find(initial_states(3), lambda h: sum(h) > 1)
    [0.0, 0.25, 1.0]
    """
    return st.lists(_quarters(bound), min_size=dim, max_size=dim)


@st.composite
def time_spans(draw, max_length: float = 1.5, backward: bool | SearchStrategy[bool] = _BOOLEANS) -> tuple:
    """``(t0, t1)`` with ``0 < |t1 - t0| <= max_length`` (quarters), ``t1 < t0`` too.

    Examples
    --------
    >>> from hypothesis import find
    >>> find(time_spans(), lambda span: span[1] < span[0])
    (0.0, -0.25)
    """
    t0 = draw(st.sampled_from((0.0, 0.5, -0.5, 1.0)))
    length = draw(st.integers(1, max(1, int(4 * max_length)))) / 4
    back = draw(_strategy(backward))
    return t0, (t0 - length if back else t0 + length)


# -- losses --------------------------------------------------------------------------------
@st.composite
def final_losses(draw, system: ODESystem, time_dependent: bool | SearchStrategy[bool] = _BOOLEANS) -> FinalLoss:
    """``sum_i c_i x_i + d_i x_i^2`` (at least one term), optionally ``+ t*x_0`` (explicit
    time) and ``+ a*x_0`` with the first scalar parameter ``a`` (explicit ``dL/dtheta``).

    Examples
    --------
    >>> from adjoint_sym.builders import lotka_volterra
    >>> from hypothesis import find
    >>> find(final_losses(lotka_volterra()), lambda loss: "t" in loss.expr)
    FinalLoss(expr='t*x')
    """
    states = system.flat_state
    expr = sp.Integer(0)
    for s in states:
        c = draw(st.sampled_from((Fraction(0), *_COEFFICIENTS)))
        d = draw(st.sampled_from((Fraction(0), *_COEFFICIENTS)))
        expr += sp.Rational(c.numerator, c.denominator) * s + sp.Rational(d.numerator, d.denominator) * s**2
    if draw(_strategy(time_dependent)):
        expr += system.t * states[0]
    scalars = [p for p in system.params if isinstance(p, sp.Symbol)]
    if scalars and draw(st.booleans()):  # an explicit dL/dtheta term
        expr += scalars[0] * states[0]
    return FinalLoss(str(expr if expr != 0 else states[0]))


@st.composite
def observation_losses(draw, system: ODESystem, t0: float, t1: float, max_times: int = 3) -> ObservationLoss:
    """Squared errors to targets at 1 to ``max_times`` times strictly after ``t0``.

    The times are fractions ``k/4`` of the way from ``t0`` to ``t1``; the last is ``t1``.

    Examples
    --------
    >>> from adjoint_sym.builders import lotka_volterra
    >>> from hypothesis import find
    >>> find(observation_losses(lotka_volterra(), 0.0, 1.0), lambda loss: len(loss.times) > 1).times
    (0.25, 1.0)
    """
    fractions = draw(st.lists(st.integers(1, 3), max_size=max_times - 1, unique=True))
    times = [t0 + (t1 - t0) * k / 4 for k in sorted(fractions)] + [t1]
    targets = [draw(initial_states(int(system.n))) for _ in times]
    return ObservationLoss(times, targets=targets)


def losses(system: ODESystem, t0: float, t1: float) -> SearchStrategy[Loss]:
    """A final or an observation loss for ``system`` over ``[t0, t1]`` (final shrinks first).

    Point losses only, so that a gradient function written for them is judged on them;
    :func:`running_cost_losses` adds running costs.
    """
    return st.one_of(final_losses(system), observation_losses(system, t0, t1))


@st.composite
def integral_losses(draw, system: ODESystem) -> IntegralLoss:
    """A running cost ``int g dt`` with ``g`` drawn as :func:`final_losses` draws its expression.

    Examples
    --------
    >>> from adjoint_sym.builders import lotka_volterra
    >>> from hypothesis import find
    >>> find(integral_losses(lotka_volterra()), lambda loss: "t" in loss.expr)
    IntegralLoss(expr='t*x')
    """
    return IntegralLoss(draw(final_losses(system)).expr)


def running_cost_losses(system: ODESystem, t0: float, t1: float) -> SearchStrategy[Loss]:
    """A final or observation loss plus a running cost, or a running cost alone.

    Examples
    --------
    >>> from adjoint_sym.builders import lotka_volterra
    >>> from hypothesis import find
    >>> loss = find(running_cost_losses(lotka_volterra(), 0.0, 1.0), lambda loss: hasattr(loss, "terms"))
    >>> len(loss.terms), type(loss.terms[-1]).__name__
    (2, 'IntegralLoss')
    """
    point = losses(system, t0, t1)
    return st.one_of(st.builds(lambda a, b: a + b, point, integral_losses(system)), integral_losses(system))


# problems() names its arguments after these strategies
_any_system, _any_loss = systems, losses


# -- problems ------------------------------------------------------------------------------
def _stays_bounded(problem: Problem, max_state: float) -> bool:
    """A loose, cheap forward solve: does the trajectory stay within ``max_state``?"""
    f = problem.kernels.f.fn
    theta = problem.theta
    try:
        res = integrate(
            lambda t, y: f(t, y, theta),
            (problem.t0, problem.t1),
            problem.h0,
            solver="RK45",
            rtol=1e-4,
            atol=1e-6,
            dense=False,
            what="well-posedness check",
        )
    except SolverFailedError:
        return False
    return bool(np.all(np.abs(res.y) <= max_state))


@st.composite
def problems(
    draw,
    systems: SearchStrategy[ODESystem] | None = None,
    losses: Callable[[ODESystem, float, float], SearchStrategy[Loss]] | None = None,
    spans: SearchStrategy[tuple] | None = None,
    values: Callable[[ODESystem], SearchStrategy[dict]] | None = None,
    max_state: float = MAX_STATE,
) -> Problem:
    """A validated :class:`Problem` whose trajectory stays within ``max_state``.

    Parameters
    ----------
    systems : strategy of ODESystem, optional
        Default :func:`systems` (polynomial, linear and neural).
    losses : callable ``(system, t0, t1) -> strategy of Loss``, optional
        Default: final or observation losses (:func:`losses`).
    spans : strategy of ``(t0, t1)``, optional
        Default :func:`time_spans`.
    values : callable ``system -> strategy of params``, optional
        Default :func:`parameter_values`.
    max_state : float
        Draws whose loose forward solve leaves ``|h_i| <= max_state`` or fails are
        rejected with ``hypothesis.assume``.

    Examples
    --------
    >>> from hypothesis import find
    >>> from adjoint_sym.testing import describe
    >>> print(describe(find(problems(systems=linear_systems(dim=2)), lambda p: p.t1 < p.t0)))
    system: dx/dt = a
            dy/dt = b
    params: a = 0, b = 0
    h0:     x = 0, y = 0
    span:   t0 = 0 -> t1 = -0.25
    loss:   FinalLoss(expr='x')
    """
    system = draw(systems if systems is not None else _any_system())
    params = draw((values or parameter_values)(system))
    h0 = draw(initial_states(int(system.n)))
    t0, t1 = draw(spans if spans is not None else time_spans())
    loss = draw((losses or _any_loss)(system, t0, t1))
    problem = Problem(system, h0, params, t0, t1, loss)
    assume(_stays_bounded(problem, max_state))
    return problem


# -- running properties --------------------------------------------------------------------
def run_property(
    check: Callable[[Problem], bool | None],
    strategy: SearchStrategy[Problem] | None = None,
    *,
    max_examples: int | None = None,
    shrink: bool = True,
    seed: int | None = None,
) -> None:
    """Run ``check`` on problems drawn from ``strategy`` under hypothesis.

    ``check`` raises to report a failure (hypothesis shrinks it and re-raises the
    minimal one) and may return ``False`` to reject a draw it cannot judge (e.g. the
    reference solve failed).  Settings come from the loaded hypothesis profile, with no
    deadline, the slow/filter health checks off and one reported bug; ``shrink=False``
    reports the first failure as found, ``seed`` fixes hypothesis' random choices.

    Examples
    --------
    >>> run_property(lambda prob: None, problems(systems=polynomial_systems(dim=1)), max_examples=2)
    """
    strategy = strategy if strategy is not None else problems()
    options: dict = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        "report_multiple_bugs": False,
    }
    if max_examples is not None:
        options["max_examples"] = max_examples
    if seed is not None:
        options["derandomize"] = False  # a derandomized profile would ignore the seed
    # no "explain" phase: its list of covered lines is noise next to the equations and table
    options["phases"] = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if shrink:
        options["phases"].append(Phase.shrink)

    @settings(**options)
    @given(problem=strategy)
    def gradient_property(problem):
        assume(check(problem) is not False)

    if seed is not None:
        gradient_property = hypothesis_seed(seed)(gradient_property)
    gradient_property()


#: Hypothesis profiles registered by :func:`register_profiles` (and the pytest plugin).
PROFILES = {
    # CI: few examples, reproducible runs, no deadline (compiling a system takes ~0.1 s).
    "adjoint-sym-ci": {"max_examples": 25, "derandomize": True},
    # Thorough: a nightly hunt.
    "adjoint-sym-thorough": {"max_examples": 300},
}


def register_profiles() -> tuple[str, ...]:
    """Register the ``adjoint-sym-ci`` and ``adjoint-sym-thorough`` hypothesis profiles.

    Examples
    --------
    >>> register_profiles()
    ('adjoint-sym-ci', 'adjoint-sym-thorough')
    """
    slow = [HealthCheck.too_slow, HealthCheck.filter_too_much]
    for name, options in PROFILES.items():
        settings.register_profile(name, deadline=None, suppress_health_check=slow, **options)
    return tuple(PROFILES)
