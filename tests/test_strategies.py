"""The strategies draw bounded, well-posed, composable problems and shrink to readable ones."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import find, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from adjoint_sym import FinalLoss, ObservationLoss, Problem  # noqa: E402
from adjoint_sym.numeric.solve import integrate  # noqa: E402
from adjoint_sym.testing import describe  # noqa: E402
from adjoint_sym.testing.strategies import (  # noqa: E402
    MAX_STATE,
    PROFILES,
    linear_systems,
    losses,
    neural_systems,
    observation_losses,
    polynomial_systems,
    problems,
    register_profiles,
    run_property,
    systems,
    time_spans,
)


@given(problems())
def test_problems_are_bounded_and_short(prob):
    assert isinstance(prob, Problem)
    assert 1 <= prob.system.n <= 3
    assert 0 < abs(prob.t1 - prob.t0) <= 1.5
    assert np.all(np.abs(prob.h0) <= 1)
    # an independent tight solve stays in the ball the strategy promises (with slack for
    # the loose check's own error: it ran at rtol 1e-4)
    f, theta = prob.kernels.f.fn, prob.theta
    res = integrate(lambda t, y: f(t, y, theta), (prob.t0, prob.t1), prob.h0, solver="DOP853", rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(res.y) <= MAX_STATE * 1.01)


@given(polynomial_systems(dim=st.integers(1, 3), degree=2))
def test_polynomial_degree_is_bounded(system):
    for expr in system.rhs:
        assert sp.Poly(expr, *system.state).total_degree() <= 2


@given(linear_systems(dim=st.integers(1, 4), real_parts=(-1.0, 0.5), time_dependent=False))
def test_linear_spectrum_is_in_the_band(system):
    A = np.array(system.jacobian_h.tolist(), dtype=float)
    real = np.linalg.eigvals(A).real
    assert np.all(real >= -1.0 - 1e-9) and np.all(real <= 0.5 + 1e-9)


def test_linear_systems_reach_non_normal_matrices():
    # the missing-transpose bug needs a non-symmetric Jacobian: the family must draw some
    system = find(linear_systems(dim=2), lambda s: s.jacobian_h != s.jacobian_h.T)
    assert system.jacobian_h != system.jacobian_h.T


@given(neural_systems(dim=2, hidden=st.integers(1, 2)))
def test_neural_systems_are_matrix_level(system):
    assert system.is_matrix_level and system.n == 2


def test_systems_compose_with_a_dimension_strategy():
    assert find(polynomial_systems(dim=st.integers(1, 4)), lambda s: s.n == 4).n == 4


@given(systems(dim=st.integers(1, 2)))
def test_systems_respect_the_dimension_strategy(system):
    assert 1 <= system.n <= 2


def test_time_dependent_systems_are_drawn():
    assert not find(polynomial_systems(), lambda s: not s.is_autonomous).is_autonomous
    assert not find(neural_systems(), lambda s: not s.is_autonomous).is_autonomous


@given(time_spans(max_length=0.5))
def test_time_spans_respect_the_length(span):
    t0, t1 = span
    assert 0 < abs(t1 - t0) <= 0.5


def test_backward_spans_are_drawn():
    t0, t1 = find(time_spans(), lambda s: s[1] < s[0])
    assert t1 < t0


@given(st.data())
def test_observation_times_run_from_t0_to_t1(data):
    system = data.draw(polynomial_systems(dim=2))
    t0, t1 = data.draw(time_spans())
    loss = data.draw(observation_losses(system, t0, t1))
    times = np.array(loss.times)
    assert times[-1] == t1 and times[0] != t0
    assert np.all(np.diff(times) * np.sign(t1 - t0) > 0)
    assert loss.targets.shape == (len(times), 2)


def test_both_loss_kinds_are_drawn():
    system = find(polynomial_systems(dim=2), lambda s: True)
    assert isinstance(find(losses(system, 0.0, 1.0), lambda loss: True), FinalLoss | ObservationLoss)
    assert isinstance(find(losses(system, 0.0, 1.0), lambda loss: "t" in str(getattr(loss, "expr", ""))), FinalLoss)
    observed = find(losses(system, 0.0, 1.0), lambda loss: len(loss.observation_times(1.0)) > 1)
    assert observed.times == (0.25, 1.0)


def test_shrinking_yields_a_small_readable_problem():
    prob = find(problems(systems=polynomial_systems()), lambda p: p.system.n == 2 and not p.system.is_autonomous)
    text = describe(prob)
    assert np.all(prob.h0 == 0) and (prob.t0, prob.t1) == (0.0, 0.25)
    assert sum(sp.count_ops(e) for e in prob.system.rhs) <= 3  # e.g. dx/dt = a, dy/dt = b*t
    assert "dx/dt = " in text and "dy/dt = " in text and "x = 0, y = 0" in text


def test_describe_shows_matrix_parameters_and_observations():
    from adjoint_sym.builders import neural_ode

    prob = Problem(
        neural_ode(2), [0.5, -0.5], {"W": np.eye(2), "b": [[0.0], [1.0]]}, 0.0, 1.0,
        ObservationLoss([0.5, 1.0], targets=[[0.0, 0.0], [1.0, 1.0]]),
    )  # fmt: skip
    text = describe(prob)
    assert "dh/dt = tanh.(W*h + b)" in text
    assert "W = [[1., 0.],  [0., 1.]]" in text
    assert "h[0] = 0.5, h[1] = -0.5" in text
    assert "t_i = [0.5, 1.0]" in text and "y_i = [[0.0, 0.0], [1.0, 1.0]]" in text


def test_run_property_rejects_what_check_cannot_judge():
    calls = []

    def never(prob):
        calls.append(prob)
        return False

    prob = Problem(find(polynomial_systems(dim=1), lambda s: True), [0.0], [0.0], 0.0, 1.0, FinalLoss("x"))
    with pytest.raises(Unsatisfiable):
        run_property(never, st.just(prob), max_examples=3)
    assert calls


def test_run_property_reports_the_failure():
    def fails_on_two_states(prob):
        assert prob.system.n < 2, "two states"

    with pytest.raises(AssertionError, match="two states"):
        run_property(fails_on_two_states, problems(systems=polynomial_systems()), max_examples=25, shrink=False)


def test_profiles_are_registered():
    assert register_profiles() == ("adjoint-sym-ci", "adjoint-sym-thorough")
    ci = settings.get_profile("adjoint-sym-ci")
    assert ci.max_examples == PROFILES["adjoint-sym-ci"]["max_examples"] == 25
    assert ci.derandomize and ci.deadline is None
    assert settings.get_profile("adjoint-sym-thorough").max_examples == 300


# -- the hard regimes ---------------------------------------------------------------------------
from adjoint_sym.strategies import (  # noqa: E402
    REGIMES,
    drawn_problems,
    equilibrium_problems,
    hard_problems,
    long_span_problems,
    stiff_linear_systems,
    stiff_problems,
    zero_gradient_problems,
)
from adjoint_sym.testing.regimes import FAST_MODES, LONG_SPAN  # noqa: E402


def eigenvalues(system) -> np.ndarray:
    return np.linalg.eigvals(np.array(system.jacobian_h.tolist(), dtype=float))


@given(equilibrium_problems())
def test_equilibrium_problems_stand_still(prob):
    # b = -A h0 exactly in rationals; in floats f(h0) is at rounding level
    f = prob.kernels.f(prob.t0, prob.h0, prob.theta)
    assert np.max(np.abs(f)) <= 1e-12
    assert 0 < abs(prob.t1 - prob.t0) <= LONG_SPAN


def test_equilibria_with_growing_modes_over_long_spans_are_drawn():
    prob = find(
        equilibrium_problems(dim=1),
        lambda p: eigenvalues(p.system).real.max() > 0 and abs(p.t1 - p.t0) > 5 and p.h0[0] == 0,
    )  # the issue's x' = x, x(0) = 0 over a long span
    assert eigenvalues(prob.system).real.max() > 0


@given(zero_gradient_problems())
def test_zero_gradient_problems_sit_on_the_zero_trajectory(prob):
    assert np.all(prob.h0 == 0)
    for t in (prob.t0, prob.t1):  # every term has a state factor: f(t, 0) = 0 exactly
        assert np.all(prob.kernels.f(t, prob.h0, prob.theta) == 0)


@given(stiff_linear_systems())
def test_stiff_systems_have_one_fast_mode(system):
    lam = np.sort(eigenvalues(system).real)
    assert np.any(np.isclose(lam[0], FAST_MODES, rtol=1e-9))
    assert np.all(np.abs(lam[1:]) <= 2)


@given(stiff_problems())
def test_stiff_problems_are_mildly_stiff(prob):
    from adjoint_sym.verify.tolerance import stiffness_index

    assert 25 <= stiffness_index(prob) <= 2000 * 1.001


def test_long_spans_are_drawn():
    prob = find(long_span_problems(), lambda p: abs(p.t1 - p.t0) > 5)
    assert abs(prob.t1 - prob.t0) <= LONG_SPAN


def test_drawn_problems_are_reproducible():
    first = [describe(p) for p in drawn_problems(6, hard_problems(), seed=7)]
    again = [describe(p) for p in drawn_problems(6, hard_problems(), seed=7)]
    other = [describe(p) for p in drawn_problems(6, hard_problems(), seed=8)]
    assert len(first) == 6 and first == again and first != other
    assert set(REGIMES) == {"default", "long-span", "equilibrium", "zero-gradient", "stiff"}


@settings(max_examples=6)
@given(hard_problems())
def test_check_raises_no_false_alarm_on_the_hard_regimes(prob):
    # the library's adjoint is correct: a "fail" here is a false alarm (benchmarks/false_alarms.py
    # counts them over hundreds of draws); an inconclusive verdict must name a remedy
    from adjoint_sym import check

    report = check(prob)
    assert report.verdict != "fail", report.text()
    assert all(i.remedy for i in report.inconclusive)
