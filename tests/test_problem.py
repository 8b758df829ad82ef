"""Problem: validation of every input with its message, parameters by name and flat, the loss."""

from __future__ import annotations

import numpy as np
import pytest

from adjoint_sym import CallableLoss, FinalLoss, ObservationLoss, ODESystem, Problem, gradient
from adjoint_sym.builders import linear_system, lotka_volterra
from adjoint_sym.errors import InvalidModelError, UnsupportedExpressionError
from adjoint_sym.numeric.problem import flatten_params, unflatten_params

DECAY = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
LINEAR = linear_system(2)


def decay(h0=(1.0,), params=None, t0=0.0, t1=1.0, loss=None) -> Problem:
    return Problem(DECAY, h0, {"k": 1.0} if params is None else params, t0, t1, loss or FinalLoss("x**2"))


# -- bad input, each with its message -----------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"h0": [1.0, 2.0]}, r"h0 must have shape \(1,\), got shape \(2,\)"),
        ({"h0": [[1.0]]}, r"h0 must have shape \(1,\), got shape \(1, 1\)"),
        ({"h0": "abc"}, r"h0 must be a list of 1 numbers, got 'abc'"),
        ({"h0": [np.nan]}, r"h0\[0\] is not finite \(nan\)"),
        ({"h0": [np.inf]}, r"h0\[0\] is not finite \(inf\)"),
        ({"params": {"k": np.inf}}, r"params\['k'\] contains a non-finite value"),
        ({"params": {"k": np.nan}}, r"params\['k'\] contains a non-finite value"),
        ({"params": {"k": "fast"}}, r"params\['k'\] must be numeric, got 'fast'"),
        ({"params": {"k": 1.0, "q": 2.0}}, r"unknown parameter 'q'; the system's parameters are \['k'\]"),
        ({"params": {}}, r"missing value for parameter 'k'"),
        ({"params": [1.0, 2.0]}, r"params must have shape \(1,\), got shape \(2,\)"),
        ({"params": [np.nan]}, r"params\[0\] is not finite"),
        ({"params": "k"}, r"params must be a mapping of name to value or a flat array, got 'k'"),
        ({"t0": np.nan}, r"t0 must be finite, got nan"),
        ({"t1": np.inf}, r"t1 must be finite, got inf"),
        ({"t1": "one"}, r"t1 must be a number, got str 'one'"),
        # the API validates like the spec loader: text and booleans are not numbers
        ({"h0": ["1.0"]}, r"h0 must hold real numbers only, got \['1.0'\]"),
        ({"h0": [True]}, r"h0 must hold real numbers only"),
        ({"h0": [1 + 2j]}, r"h0 must hold real numbers only"),
        ({"h0": [10**400]}, r"h0: a number is beyond the float range"),
        ({"t0": "0"}, r"t0 must be a number, got str '0'"),
        ({"t1": True}, r"t1 must be a number, got bool True"),
        ({"t1": 10**400}, r"t1 is beyond the float range"),
        ({"params": {"k": "1"}}, r"params\['k'\] must be numeric, got '1'"),
        ({"params": {"kk": 1.0}}, r"unknown parameter 'kk'; did you mean 'k'\?"),
    ],
)
def test_invalid_numbers_are_named(kwargs, message):
    with pytest.raises(InvalidModelError, match=message):
        decay(**kwargs)


def test_invalid_system_and_loss_types():
    with pytest.raises(InvalidModelError, match="system must be an ODESystem, got str"):
        Problem("x' = -k x", [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x"))
    expected = "loss must be a FinalLoss, ObservationLoss, CallableLoss, IntegralLoss or SumLoss, got 'x'"
    with pytest.raises(InvalidModelError, match=expected):
        Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 1.0, "x")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.eye(3), r"params\['A'\] must have shape \(2, 2\), got \(3, 3\)"),
        ([1.0, 0.0, 0.0], r"params\['A'\] must have shape \(2, 2\), got \(3,\)"),
        ([[1.0, 0.0], [0.0, np.nan]], r"params\['A'\] contains a non-finite value"),
    ],
)
def test_matrix_parameter_shape_and_values(value, message):
    with pytest.raises(InvalidModelError, match=message):
        Problem(LINEAR, [1.0, 1.0], {"A": value}, 0.0, 1.0, FinalLoss("h[0]"))


def test_matrix_parameter_accepts_its_shape_or_row_major_flat():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    by_shape = Problem(LINEAR, [1.0, 1.0], {"A": A}, 0.0, 1.0, FinalLoss("h[0]"))
    flat = Problem(LINEAR, [1.0, 1.0], {"A": A.reshape(-1)}, 0.0, 1.0, FinalLoss("h[0]"))
    np.testing.assert_array_equal(by_shape.theta, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(flat.theta, by_shape.theta)
    np.testing.assert_array_equal(by_shape.params["A"], A)


@pytest.mark.parametrize(
    ("times", "t0", "t1", "message"),
    [
        ([0.5, 0.3, 1.0], 0.0, 1.0, r"observation times \[0.5, 0.3, 1.0\] must be strictly monotone from t0 = 0.0"),
        ([0.5, 0.5, 1.0], 0.0, 1.0, r"must be strictly monotone"),
        ([-0.5, 0.7, 1.0], 0.0, 1.0, r"must be strictly monotone from t0 = 0.0 towards t1 = 1.0"),
        ([0.5, 0.7, 0.9], 0.0, 1.0, r"the last observation time 0.9 must equal t1 = 1.0"),
        # backward in time: the times must decrease from t0 towards t1
        ([0.2, 0.5, 0.0], 1.0, 0.0, r"must be strictly monotone from t0 = 1.0 towards t1 = 0.0"),
    ],
)
def test_bad_observation_times(times, t0, t1, message):
    loss = ObservationLoss(times, [[1.0]] * len(times))
    with pytest.raises(InvalidModelError, match=message):
        decay(t0=t0, t1=t1, loss=loss)


def test_observation_times_backward_in_time_are_accepted():
    problem = decay(t0=1.0, t1=0.0, loss=ObservationLoss([0.8, 0.5, 0.0], [[1.0]] * 3))
    np.testing.assert_array_equal(problem.times, [0.8, 0.5, 0.0])
    assert not problem.is_final_loss


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: ObservationLoss([0.5, 1.0], [[1.0], [1.0], [1.0]]),
            r"one row per time \(2 rows\), got shape \(3, 1\)",
        ),
        (lambda: ObservationLoss([0.5, 1.0], [1.0, 2.0]), r"one row per time \(2 rows\), got shape \(2,\)"),
        (lambda: ObservationLoss([0.5, 1.0], [[1.0], [np.nan]]), r"loss.targets contains a non-finite value"),
        (lambda: ObservationLoss([0.5, 1.0]), r"needs exactly one of targets= or expr="),
        (lambda: ObservationLoss([0.5, 1.0], [[1.0], [1.0]], expr="x"), r"needs exactly one of targets= or expr="),
        (lambda: ObservationLoss([], expr="x"), r"loss.times must be a non-empty list of numbers"),
        (lambda: ObservationLoss([0.5, np.nan], expr="x"), r"loss.times contains a non-finite value"),
    ],
)
def test_bad_observation_loss(make, message):
    with pytest.raises(InvalidModelError, match=message):
        make()


def test_observation_targets_of_the_wrong_width():
    loss = ObservationLoss([0.5, 1.0], [[1.0, 2.0], [1.0, 3.0]])
    with pytest.raises(InvalidModelError, match=r"loss\.targets rows have 2 entries but the state has 1"):
        decay(loss=loss)


def test_observation_expressions_one_per_time():
    with pytest.raises(InvalidModelError, match=r"loss\.expr has 3 expressions for 2 observation times"):
        decay(loss=ObservationLoss([0.5, 1.0], expr=["x", "x", "x"]))
    with pytest.raises(UnsupportedExpressionError, match=r"loss.expr\[1\]: unknown symbol 'y'"):
        decay(loss=ObservationLoss([0.5, 1.0], expr=["x", "y"]))


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("z**2", r"loss.expr: unknown symbol 'z' \(declared: k, t, x\)"),
        ("__import__('os')", r"dunder name '__import__' is not allowed"),
    ],
)
def test_loss_expression_goes_through_the_whitelist(expr, message):
    with pytest.raises(UnsupportedExpressionError, match=message):
        decay(loss=FinalLoss(expr))


def test_loss_index_out_of_range_on_a_matrix_state():
    with pytest.raises(UnsupportedExpressionError, match=r"index \(2, 0\) out of range for h of shape \(2, 1\)"):
        Problem(LINEAR, [1.0, 1.0], {"A": np.eye(2)}, 0.0, 1.0, FinalLoss("h[2]"))


def test_callable_loss_errors_are_reported_as_the_users():
    broken = CallableLoss(lambda s, th: 1 / 0, lambda s, th: (s, th))
    with pytest.raises(InvalidModelError, match="the loss callable raised ZeroDivisionError: division by zero"):
        gradient(decay(loss=broken))
    bad_shape = CallableLoss(lambda s, th: 1.0, lambda s, th: (s[0], th))
    with pytest.raises(InvalidModelError, match=r"must return shapes \(1, 1\) and \(1,\), got \(1,\) and \(1,\)"):
        gradient(decay(loss=bad_shape))


# -- what a valid problem holds -------------------------------------------------------------
def test_parameters_by_name_and_flat():
    system = lotka_volterra()
    values = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 0.5}
    problem = Problem(system, [1.0, 1.0], values, 0.0, 1.0, FinalLoss("x"))
    assert problem.params == values
    np.testing.assert_array_equal(problem.theta, [1.5, 1.0, 3.0, 0.5])
    flat = Problem(system, [1.0, 1.0], [1.5, 1.0, 3.0, 0.5], 0.0, 1.0, FinalLoss("x"))
    np.testing.assert_array_equal(flat.theta, problem.theta)


def test_flatten_unflatten_round_trip_with_matrices():
    from adjoint_sym.builders import two_layer

    system = two_layer(2, 3)
    rng = np.random.default_rng(1)
    values = {name: rng.normal(size=shape) for name, shape in system.param_shapes.items()}
    theta = flatten_params(system, values)
    assert theta.shape == (system.n_params,) == (3 * 2 + 3 + 2 * 3 + 2,)
    back = unflatten_params(system, theta)
    for name, value in values.items():
        np.testing.assert_array_equal(back[name], value)


def test_with_values_replaces_numbers_and_keeps_observation_times():
    problem = decay(loss=ObservationLoss([0.5, 1.0], [[1.0], [0.5]]))
    moved = problem.with_values(h0=np.array([2.0 + 1e-20j]), t0=0.1)
    assert moved.t0 == 0.1 and moved.h0[0] == 2.0 + 1e-20j
    np.testing.assert_array_equal(moved.times, [0.5, 1.0])
    assert problem.t0 == 0.0 and problem.h0[0] == 1.0  # the original is untouched
    final = decay().with_values(t1=2.0)
    np.testing.assert_array_equal(final.times, [2.0])  # a final loss reads at the new t1


def test_evaluate_loss_with_explicit_parameter_and_time():
    """L = t*x^2 + k*x at t = 1.5: the partials are by hand."""
    problem = decay(params={"k": 0.7}, t1=1.5, loss=FinalLoss("t*x**2 + k*x"))
    x = 0.8
    out = problem.evaluate_loss(np.array([[x]]))
    assert out.value == pytest.approx(1.5 * x**2 + 0.7 * x, rel=1e-15)
    np.testing.assert_allclose(out.d_states, [[2 * 1.5 * x + 0.7]], rtol=1e-15)
    np.testing.assert_allclose(out.d_theta, [x], rtol=1e-15)
    np.testing.assert_allclose(out.d_times, [x**2], rtol=1e-15)


def test_evaluate_sum_of_squared_errors():
    targets = [[1.0, 2.0], [0.5, -1.0]]
    problem = Problem(lotka_volterra(), [1.0, 1.0], [1.0] * 4, 0.0, 1.0, ObservationLoss([0.5, 1.0], targets))
    states = np.array([[1.5, 1.0], [0.0, 0.0]])
    out = problem.evaluate_loss(states)
    residual = states - np.asarray(targets)
    assert out.value == pytest.approx(np.sum(residual**2), rel=1e-15)
    np.testing.assert_allclose(out.d_states, 2 * residual, rtol=1e-15)
    np.testing.assert_array_equal(out.d_theta, np.zeros(4))
    np.testing.assert_array_equal(out.d_times, np.zeros(2))


# -- limits and a loss that cannot be evaluated (issue 14) -------------------------------------
def test_observation_count_is_a_limit():
    from adjoint_sym import limits

    times = np.linspace(0.1, 1.0, 50)
    with limits(max_observations=10):
        with pytest.raises(
            InvalidModelError, match=r"loss\.times: 50 observation times, more than the max_observations"
        ):
            ObservationLoss(times, targets=np.zeros((50, 1)))
        loss = CallableLoss(lambda s, th: 0.0, lambda s, th: (np.zeros_like(s), np.zeros(1)), times=tuple(times))
        with pytest.raises(InvalidModelError, match="max_observations limit of 10"):
            decay(loss=loss)


def test_distinct_loss_expressions_are_a_limit():
    from adjoint_sym import limits

    times = [0.25, 0.5, 0.75, 1.0]
    with limits(max_loss_expressions=2):
        decay(loss=ObservationLoss(times, expr=["x", "x", "x", "x"]))  # one distinct expression: fine
        with pytest.raises(InvalidModelError, match=r"loss\.expr: 4 different expressions, more than the max_loss"):
            decay(loss=ObservationLoss(times, expr=["x", "2*x", "3*x", "4*x"]))


def test_a_loss_not_finite_where_the_solve_ends_is_a_numerical_failure():
    from adjoint_sym.errors import SolverFailedError

    problem = decay(loss=FinalLoss("sqrt(x - 1)"))  # x(1) = exp(-1) < 1
    with pytest.raises(SolverFailedError) as info:
        gradient(problem)
    assert "the loss or its derivative is not finite at t = 1 (state [0.3679]): L = nan" in str(info.value)
    problem = decay(loss=FinalLoss("1/(t - 1)"))  # a Python float division by zero at t1 = 1
    with pytest.raises(SolverFailedError, match=r"not finite at t = 1 .*(ZeroDivisionError|L = inf)"):
        gradient(problem)


def test_loss_and_parameter_names_of_the_wrong_kind():
    import sympy as sp

    with pytest.raises(InvalidModelError, match=r"params: names must be strings, got \[1\]"):
        decay(params={1: 2.0})
    with pytest.raises(InvalidModelError, match=r"loss\.expr: the loss is a matrix; it must be a scalar expression"):
        decay(loss=FinalLoss(sp.MatrixSymbol("M", 2, 2)))
    with pytest.raises(InvalidModelError, match=r"loss\.expr\[0\]: \[.x.\] is neither text nor a SymPy expression"):
        decay(loss=ObservationLoss([0.5, 1.0], expr=[["x"], "x"]))
