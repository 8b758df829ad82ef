"""check_gradient_function: what it accepts, what it catches, what it reports; the pytest plugin."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import sympy

pytest.importorskip("hypothesis")

from hypothesis import given

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem, gradient, verify
from adjoint_sym.adapters import backend_function, check_times, loss_functions, rhs_function
from adjoint_sym.errors import GradientMismatchError, InvalidModelError
from adjoint_sym.strategies import problems
from adjoint_sym.testing import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    as_gradient,
    assert_gradients_agree,
    check_gradient_function,
    check_problem,
    clear_reference_cache,
    compare_gradients,
    reference_gradient,
)
from adjoint_sym.testing.mutants import handwritten_adjoint

pytest_plugins = ["pytester"]


@pytest.fixture
def decay():
    sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    return Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x"))


def exact(decay):
    e = math.exp(-1.0)
    return {"loss": e, "dh0": [e], "dparams": {"a": -e}, "dt0": e, "dt1": -e}


# -- what a gradient function may return ------------------------------------------------------
def test_mapping_and_gradient_are_accepted(decay):
    g = as_gradient(exact(decay), decay)
    assert g.dh0.shape == (1,) and g.dparams == {"a": -math.exp(-1)}
    assert as_gradient(g, decay) is g


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: 3.0, r"must return a Gradient or a mapping with keys \['loss', 'dh0', 'dparams', 'dt0', 'dt1'\]"),
        (lambda d: {k: v for k, v in d.items() if k != "dt0"}, r"lacks key 'dt0'"),
        (lambda d: {**d, "dh0": [1.0, 2.0]}, r"dh0 must have shape \(1,\), got shape \(2,\)"),
        (lambda d: {**d, "dh0": ["x"]}, r"dh0 must be numeric"),
        (lambda d: {**d, "dparams": [1.0]}, r"dparams must map parameter names to values, got list"),
        (lambda d: {**d, "dparams": {"a": 1.0, "k": 2.0}}, r"dparams has unknown parameter 'k'"),
        (lambda d: {**d, "dparams": {}}, r"dparams lacks parameter 'a'"),
        (lambda d: {**d, "dtimes": [1.0, 2.0]}, r"dtimes must have shape \(1,\)"),
    ],
)
def test_malformed_results_are_named(decay, change, message):
    with pytest.raises(InvalidModelError, match=message):
        as_gradient(change(exact(decay)), decay)


def test_matrix_parameters_may_come_flat():
    from adjoint_sym.builders import linear_system

    prob = Problem(linear_system(2), [1.0, 0.0], {"A": -np.eye(2)}, 0.0, 1.0, FinalLoss("h[0, 0]"))
    ref = reference_gradient(prob, "forward")
    mine = {"loss": ref.loss, "dh0": ref.dh0, "dparams": {"A": ref.dparams["A"].reshape(-1)}, "dt0": ref.dt0,
            "dt1": ref.dt1}  # fmt: skip
    assert check_problem(lambda p: mine, prob).ok


# -- the comparison ----------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["loss", "dh0", "dparams", "dt0", "dt1"])
def test_a_relative_error_of_1e_3_in_any_one_quantity_is_caught(key):
    def off(prob):
        g = handwritten_adjoint(prob)
        if key == "dparams":
            g["dparams"] = {k: np.asarray(v) * 1.001 for k, v in g["dparams"].items()}
        elif g[key] is not None:
            g[key] = np.asarray(g[key]) * 1.001
        return g

    with pytest.raises(GradientMismatchError) as caught:
        check_gradient_function(off, shrink=False)
    quantity = {"loss": "L", "dh0": "dL/dh0[", "dparams": "dL/d", "dt0": "dL/dt0", "dt1": "dL/dt1"}[key]
    assert any(r.quantity.startswith(quantity) for r in caught.value.comparison.failures)


@pytest.mark.parametrize("key", ["dh0", "dparams"])
def test_a_relative_error_of_1e_6_is_caught_at_rtol_1e_8(key):
    # the code under test solves at rtol 1e-12 (global error <= 100 x 1e-12 = 1e-10), the
    # reference is good to 1e-10 (complex step at 1e-13, forward at 1e-10): 1e-8 leaves two
    # decades for both, and a planted 1e-6 is a hundred times that
    def tight(prob):
        return handwritten_adjoint(prob, rtol=1e-12, atol=1e-14)

    def off(prob):
        g = tight(prob)
        if key == "dparams":
            g["dparams"] = {k: np.asarray(v) * (1 + 1e-6) for k, v in g["dparams"].items()}
        else:
            g["dh0"] = np.asarray(g["dh0"]) * (1 + 1e-6)
        return g

    check_gradient_function(tight, rtol=1e-8, atol=1e-10)
    with pytest.raises(GradientMismatchError) as caught:
        check_gradient_function(off, rtol=1e-8, atol=1e-10, shrink=False)
    prefix = "dL/dh0[" if key == "dh0" else "dL/d"
    assert any(r.quantity.startswith(prefix) for r in caught.value.comparison.failures)
    assert caught.value.comparison.verdict == "fail"


def break_references(monkeypatch, factors):
    """Scale the named references' dL/dh0, as a bug in them would (memoized copies forgotten)."""
    import adjoint_sym.testing.gradient_function as module

    real = module.gradient

    def broken(problem, method, **kw):
        g = real(problem, method, **kw)
        return dataclasses.replace(g, dh0=g.dh0 * factors[method]) if method in factors else g

    clear_reference_cache()
    monkeypatch.setattr(module, "gradient", broken)
    yield
    clear_reference_cache()


@pytest.fixture
def split_references(monkeypatch):
    yield from break_references(monkeypatch, {"complex-step": 1.1, "finite-difference": 0.9})


@pytest.fixture
def one_broken_reference(monkeypatch):
    yield from break_references(monkeypatch, {"complex-step": 1.1})


def test_references_that_disagree_are_inconclusive_not_a_mismatch(decay, split_references):
    comparison = check_problem(lambda p: exact(decay), decay)  # does not raise
    assert comparison.verdict == "inconclusive" and not comparison.ok and not comparison.failures
    row = next(r for r in comparison.rows if r.quantity == "dL/dh0[x]")
    assert row.status == "inconclusive" and "| dL/dh0[x] |" in comparison.table() and "| ? |" in comparison.table()
    assert set(comparison.references) == {"complex-step", "forward", "finite-difference"}
    assert "the references disagree among themselves" in comparison.report.text()


def test_a_broken_reference_alone_does_not_fail_your_function(decay, one_broken_reference):
    comparison = check_problem(lambda p: exact(decay), decay)
    assert comparison.ok and comparison.reference != "complex-step"
    assert comparison.report.statuses["complex-step"]["dL/dh0[x]"] == "outvoted"


def test_a_mismatch_names_the_references_that_agree(decay):
    wrong = {**exact(decay), "dh0": [-math.exp(-1.0)]}
    with pytest.raises(GradientMismatchError, match="the references complex-step and forward agree with each other"):
        check_problem(lambda p: wrong, decay)


def test_deviation_is_in_tolerance_units(decay):
    ref = reference_gradient(decay, "complex-step")
    d = exact(decay)
    d["dt1"] = ref.dt1 + 3 * (DEFAULT_ATOL + DEFAULT_RTOL * abs(ref.dt1))
    rows = {r.quantity: r for r in compare_gradients(as_gradient(d, decay), ref, decay).rows}
    assert rows["dL/dt1"].deviation == pytest.approx(3.0, rel=1e-6)
    assert not rows["dL/dt1"].ok and rows["dL/dh0[x]"].ok


def test_ignored_groups_are_not_compared(decay):
    wrong_dt0 = {**exact(decay), "dt0": 0.0}
    with pytest.raises(GradientMismatchError, match="on dL/dt0"):
        check_problem(lambda p: wrong_dt0, decay)
    assert check_problem(lambda p: wrong_dt0, decay, ignore=("dt0",)).ok


def test_failure_message_shows_equations_values_and_table(decay):
    wrong = {**exact(decay), "dh0": [-math.exp(-1.0)]}
    with pytest.raises(AssertionError) as caught:
        check_problem(lambda p: wrong, decay)
    text = str(caught.value)
    assert "disagrees with the reference 'complex-step' on dL/dh0[x]" in text
    assert "dx/dt = -a*x" in text and "params: a = 1" in text and "h0:     x = 1" in text
    assert "| quantity | yours | reference (complex-step) | deviation / tol |" in text
    assert "| dL/dh0[x] | -0.367879441171 | 0.367879441171 |" in text and "**FAIL**" in text
    assert "rtol = 1e-06, atol = 1e-08" in text


def test_named_references_must_all_agree(decay):
    comparison = check_problem(lambda p: exact(decay), decay, methods=["forward", "complex-step"])
    assert comparison.reference == "complex-step"


def test_the_librarys_own_adjoint_passes_the_suite():
    # this property found two library bugs, both fixed: dense.py crashed when a state stays
    # constant (the test below), and the loss's explicit dL/dt_i leaked into a_t
    check_gradient_function(lambda p: gradient(p, "adjoint", rtol=1e-10, atol=1e-12))


def test_the_librarys_adjoint_with_a_constant_state():
    # the dense.py counterexample, shrunk: y never moves
    sys = ODESystem.from_strings(["x", "y"], ["a"], "t", ["a", "0"])
    prob = Problem(sys, [0.0, 0.0], {"a": 0.25}, 0.0, 0.25, FinalLoss("x"))
    assert check_problem(lambda p: gradient(p, "adjoint", rtol=1e-10, atol=1e-12), prob).ok


def test_assert_gradients_agree_is_the_verifiers():
    assert assert_gradients_agree is verify.assert_gradients_agree


# -- the pytest plugin -------------------------------------------------------------------------
def plugin_args() -> list[str]:
    """``-p adjoint_sym.testing.pytest_plugin`` unless the ``pytest11`` entry point already loads it
    (registering one module under two names is an error in pytest)."""
    from importlib.metadata import entry_points

    if any(ep.name == "adjoint_sym" for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "adjoint_sym.testing.pytest_plugin"]


PLUGIN_TEST = """
from adjoint_sym.testing.mutants import handwritten_adjoint, mutant

def test_settings(adjoint_sym_settings):
    print("SETTINGS", adjoint_sym_settings)

def test_correct(gradient_checker):
    gradient_checker(handwritten_adjoint)

def test_wrong(gradient_checker):
    gradient_checker(mutant("flipped_sign"), shrink=False)
"""


def test_plugin_options_fixtures_and_failure(pytester):
    pytester.makepyfile(PLUGIN_TEST)
    result = pytester.runpytest_inprocess(
        *plugin_args(), "--adjoint-sym-examples", "3", "--adjoint-sym-rtol", "1e-5", "-s", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*SETTINGS CheckSettings(max_examples=3, rtol=1e-05, atol=1e-08)*"])
    result.stdout.fnmatch_lines(["*GradientMismatchError*disagrees with the reference*"])


def test_plugin_registers_profiles_for_the_command_line(pytester):
    pytester.makepyfile(
        """
        from hypothesis import settings
        def test_profile():
            assert settings().max_examples == 25 and settings().derandomize
        """
    )
    result = pytester.runpytest_inprocess(
        *plugin_args(), "--hypothesis-profile", "adjoint-sym-ci", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_plugin_rejects_a_bad_option(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess(*plugin_args(), "--adjoint-sym-rtol", "-1")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--adjoint-sym-rtol*"])


# -- adapters ------------------------------------------------------------------------------------

NUMPY_FUNCTIONS = {
    **{name: getattr(np, name) for name in ("sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "log", "sqrt")},
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
}


@given(problems())
def test_adapter_translation_matches_the_kernels(prob):
    # the SymPy -> backend translation the torch and JAX adapters share, run with numpy
    system, theta = prob.system, prob.theta
    f = rhs_function(system, NUMPY_FUNCTIONS)
    t = 0.5 * (prob.t0 + prob.t1)
    np.testing.assert_allclose(f(t, *prob.h0, *theta), prob.kernels.f(t, prob.h0, theta), rtol=1e-13, atol=1e-13)
    states = np.array([prob.h0 + i for i in range(len(prob.times))])
    value = sum(fn(ti, *h, *theta)[0] for fn, ti, h in zip(loss_functions(prob, NUMPY_FUNCTIONS), prob.times, states))
    assert value == pytest.approx(prob.evaluate_loss(states).value, rel=1e-13, abs=1e-13)


def test_adapter_refuses_an_untranslatable_function():
    x = sympy.Symbol("x")
    with pytest.raises(InvalidModelError, match=r"the adapter cannot translate 'sin'; supported: exp"):
        backend_function([x], [sympy.sin(x)], {"exp": np.exp})


def test_adapters_name_the_missing_extra(decay):
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        from adjoint_sym.adapters.torch import torchdiffeq_gradient

        with pytest.raises(ImportError, match=r"pip install torch torchdiffeq"):
            torchdiffeq_gradient(decay)
    if importlib.util.find_spec("jax") is None:
        from adjoint_sym.adapters.jax import jax_gradient

        with pytest.raises(ImportError, match=r"pip install jax"):
            jax_gradient(decay)


def test_an_observation_at_t0_is_refused_by_name():
    sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    prob = Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, ObservationLoss([0.0, 1.0], targets=[[0.0], [0.0]]))
    with pytest.raises(InvalidModelError, match=r"an observation at t0 = 0.0 cannot be passed to odeint"):
        check_times(prob)


def zero_trajectory() -> Problem:
    """dx/dt = x from x(0) = 0: the state never moves, its tangent e^t does."""
    return Problem(ODESystem.from_strings(["x"], [], "t", ["x"]), [0.0], {}, 0.0, 0.25, FinalLoss("x"))


def test_torchdiffeq_adjoint_is_verified():
    pytest.importorskip("torch")
    pytest.importorskip("torchdiffeq")
    from adjoint_sym.adapters.torch import torchdiffeq_gradient

    # dopri5 at rtol 1e-10: its error stays well inside the default 1e-6 comparison
    check_gradient_function(torchdiffeq_gradient, max_examples=10)


def test_torchdiffeq_with_a_right_hand_side_free_of_the_state():
    pytest.importorskip("torch")
    pytest.importorskip("torchdiffeq")
    from adjoint_sym.adapters.torch import torchdiffeq_gradient

    # f = 1 has no autograd graph; torchdiffeq's adjoint calls autograd.grad(f, ...) and raised
    # "element 0 of tensors does not require grad" until the adapter kept constants in the graph
    prob = Problem(ODESystem.from_strings(["x"], [], "t", ["1"]), [0.0], {}, 0.0, 0.25, FinalLoss("x"))
    assert check_problem(torchdiffeq_gradient, prob).ok


def test_backpropagating_through_dopri5_is_caught_where_the_adjoint_is_not():
    pytest.importorskip("torch")
    pytest.importorskip("torchdiffeq")
    from adjoint_sym.adapters.torch import torchdiffeq_gradient

    # x = 0 all along: dopri5's error estimate is 0, the step grows tenfold per step and the
    # tangent e^t, which the controller never sees, is differentiated through those steps and
    # the dense-output interpolation at t1 (relative error ~4e-5); the adjoint solve controls
    # the error of a(t) itself. See docs/how-to/check-gradient-code.md.
    with pytest.raises(GradientMismatchError, match=r"on dL/dh0\[x\]"):
        check_problem(lambda p: torchdiffeq_gradient(p, adjoint=False), zero_trajectory())
    assert check_problem(torchdiffeq_gradient, zero_trajectory()).ok


def test_jax_odeint_adjoint_is_verified():
    pytest.importorskip("jax")
    from adjoint_sym.adapters.jax import jax_gradient

    check_gradient_function(jax_gradient, max_examples=10)


def test_jax_reuses_the_compiled_gradient_of_a_system():
    pytest.importorskip("jax")
    from adjoint_sym.adapters import jax as jax_adapter

    sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    before = jax_adapter._value_and_grad.cache_info()
    for a in (0.5, 1.0):  # same system and loss, other numbers: compiled once
        prob = Problem(sys, [1.0], {"a": a}, 0.0, 1.0, FinalLoss("x"))
        assert check_problem(jax_adapter.jax_gradient, prob).ok
    after = jax_adapter._value_and_grad.cache_info()
    assert after.misses - before.misses <= 1 and after.hits - before.hits >= 1
