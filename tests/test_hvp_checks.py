"""The checks of Hessian-vector products can fail: Taylor test, checker, property test, mutants.

* The order-3 Taylor test fits ``3.0 +- 0.2`` for the adjoint's ``H v`` on several problems,
  and about 2 (refuted) for a planted wrong one.
* :func:`check_hvp` agrees on correct routes and names the entries of a wrong one with
  a cause; :func:`check_hvp_function` passes the library's HVP and catches every planted
  wrong second-order adjoint of :mod:`adjoint_sym.testing.hvp_mutants`.
* Every error-message branch of the HVP code is asserted.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from adjoint_sym import (
    CallableLoss,
    FinalLoss,
    GradientMismatchError,
    HessianVectorProduct,
    InvalidModelError,
    ObservationLoss,
    ODESystem,
    Problem,
    check_hvp,
    check_hvp_function,
    hvp,
    taylor_test_hvp,
)
from adjoint_sym.builders import lotka_volterra, two_layer
from adjoint_sym.numeric.second_order import direction_vector
from adjoint_sym.reference.hessian_forward import MAX_SENSITIVITIES, forward_hessian
from adjoint_sym.strategies import problems
from adjoint_sym.symbolic.second_order import SecondOrderAdjoint
from adjoint_sym.testing.hessian import as_hvp, check_hvp_problem, compare_hvp, reference_hvp
from adjoint_sym.testing.hvp_mutants import HVP_MUTATIONS, handwritten_hvp, hvp_mutant
from adjoint_sym.verify.hessian import assert_hvps_agree, compare_hvps, random_direction


def lv_problem(t1: float = 3.0) -> Problem:
    return Problem(lotka_volterra(), [1.0, 0.5], {"a": 1.0, "b": 0.5, "c": 1.0, "d": 0.25}, 0.0, t1, FinalLoss("x*y"))


def network_problem() -> Problem:
    system = two_layer(2, 3, activation="tanh")
    rng = np.random.default_rng(1)
    params = {name: 0.7 * rng.standard_normal(shape) for name, shape in system.param_shapes.items()}
    loss = ObservationLoss([0.5, 1.0], targets=[[1.0, 0.0], [0.0, 1.0]])
    return Problem(system, [0.5, -0.3], params, 0.0, 1.0, loss)


def decay_problem() -> Problem:
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    return Problem(system, [1.5], {"k": 0.7}, 0.0, 1.5, FinalLoss("k*x**2"))


PROBLEMS = {"lotka-volterra": lv_problem, "network": network_problem, "decay": decay_problem}


# -- the order-3 Taylor test -----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_taylor_fits_order_three_for_the_adjoint(name):
    prob = PROBLEMS[name]()
    result = taylor_test_hvp(prob, hvp(prob, random_direction(prob, 1), rtol=1e-10, atol=1e-12))
    assert result.ok and abs(result.fitted_order - 3.0) <= 0.2, result


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_taylor_refutes_a_wrong_hvp(name):
    prob = PROBLEMS[name]()
    right = hvp(prob, random_direction(prob, 1), rtol=1e-10, atol=1e-12)
    for factor in (1.1, 1.01):
        wrong = HessianVectorProduct.from_vector(prob, factor * right.flat, right.direction, "planted", right.loss)
        result = taylor_test_hvp(prob, wrong)
        assert not result.ok, (factor, result)
        if factor == 1.1:  # a 1% error is pre-asymptotic over these steps (eps^3 and error terms compete)
            assert abs(result.fitted_order - 2.0) <= 0.2, result


def test_taylor_refutes_a_mutant():
    prob = lv_problem()
    result = taylor_test_hvp(prob, hvp_mutant("dropped_second_derivative")(prob, random_direction(prob, 1)))
    assert not result.ok and result.fitted_order < 2.3, result
    assert "HessianTaylorResult(ok=False" in repr(result)


def test_taylor_on_a_quadratic_loss_along_v_has_nothing_to_refute():
    """Linear dynamics, quadratic loss, direction over h0 only: L is exactly quadratic along v."""
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    prob = Problem(system, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    result = taylor_test_hvp(prob, hvp(prob, [1.0, 0.0], rtol=1e-10, atol=1e-12))
    assert result.ok and np.isnan(result.fitted_order)


def test_taylor_with_a_given_gradient_and_a_wrong_direction_length():
    prob = decay_problem()
    right = hvp(prob, [0.2, 1.0], rtol=1e-10, atol=1e-12)
    assert taylor_test_hvp(prob, right, gradient=right.gradient).ok
    short = HessianVectorProduct(right.dh0, right.dparams, np.array([1.0]), "hand", 0.0)
    with pytest.raises(InvalidModelError, match="direction must have 2 entries"):
        taylor_test_hvp(prob, short)


# -- check_hvp -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_check_hvp_agrees_on_correct_routes(name):
    report = check_hvp(PROBLEMS[name](), rtol=1e-8)
    assert report.ok, report.markdown()
    assert report.reference == "complex-step" and "adjoint" in report.methods
    assert max(report.max_deviation(m) for m in report.methods) < 0.1  # the measured margin of the model
    assert abs(report.taylor_order - 3.0) <= 0.2
    assert "verdict: **OK**" in report.markdown() and report.as_dict()["ok"] is True


@pytest.mark.parametrize("mutation", HVP_MUTATIONS)
def test_compare_hvps_names_every_wrong_entry(mutation):
    prob = lv_problem()
    v = random_direction(prob)
    results = {"complex-step": hvp(prob, v, "complex-step"), mutation: hvp_mutant(mutation)(prob, v)}
    report = compare_hvps(prob, results, "complex-step")
    assert not report.ok
    assert {f.method for f in report.failures} == {mutation}
    assert all("not explained by tolerances" in f.cause for f in report.failures)
    assert "FAILED" in report.markdown() and f"{mutation}=" in repr(report)


def test_causes_name_a_flipped_sign_and_a_missing_term():
    prob = decay_problem()
    ref = hvp(prob, [0.3, 1.0], "complex-step")
    flipped = HessianVectorProduct.from_vector(prob, -ref.flat, ref.direction, "flipped", ref.loss)
    zero = HessianVectorProduct.from_vector(prob, np.zeros(2), ref.direction, "zero", ref.loss)
    close = HessianVectorProduct.from_vector(prob, ref.flat * (1 + 1e-13), ref.direction, "close", ref.loss)
    report = compare_hvps(prob, {"complex-step": ref, "flipped": flipped, "zero": zero, "close": close}, "complex-step")
    causes = {(f.method, f.quantity): f.cause for f in report.failures}
    assert "the sign is flipped" in causes[("flipped", "Hv[k]")]
    assert "a term is missing" in causes[("zero", "Hv[k]")]
    assert not [f for f in report.failures if f.method == "close"]
    tiny = HessianVectorProduct.from_vector(prob, ref.flat * (1 + 1e-8), ref.direction, "tiny", ref.loss)
    near = compare_hvps(prob, {"complex-step": ref, "tiny": tiny}, "complex-step", rtol=1e-12)
    assert near.failures and all(f.cause.startswith("tolerance") for f in near.failures)


def test_assert_hvps_agree_raises_with_the_table(monkeypatch):
    prob = decay_problem()
    assert assert_hvps_agree(prob, [0.3, 1.0]).ok
    broken = hvp_mutant("flipped_tangent_adjoint")
    monkeypatch.setattr("adjoint_sym.verify.hessian.adjoint_hvp", lambda problem, v, **kw: broken(problem, v))
    with pytest.raises(GradientMismatchError, match="Hessian-vector products disagree") as caught:
        assert_hvps_agree(prob, [0.3, 1.0])
    assert "| Hv[k] |" in str(caught.value) and "order-3 Taylor test of adjoint" in str(caught.value)


def test_check_hvp_without_a_reference_is_refused():
    with pytest.raises(InvalidModelError, match="check_hvp needs a reference"):
        check_hvp(decay_problem(), methods=["adjoint"])


def test_check_hvp_falls_back_when_complex_step_cannot_run():
    """An implicit solver rules complex step out: the dense forward Hessian judges."""
    report = check_hvp(decay_problem(), solver="Radau")
    assert report.reference == "forward-hessian" and "complex-step" not in report.methods, report
    assert report.ok, report.markdown()


def test_kinks_have_their_almost_everywhere_second_derivatives():
    """``x |x|`` is once differentiable; the expression gate gives ``|x|' = sign(x)`` and
    ``sign' = 0``, so its second derivative is ``2 sign(x)``, exact away from the kink.
    The trajectory from 0.5 stays positive (x' = -x^2 + x), so the adjoint HVP must equal
    central differences of the gradient (which need first derivatives only) there."""
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x*Abs(x) + x"])
    prob = Problem(system, [0.5], {"k": 1.0}, 0.0, 1.0, FinalLoss("x*Abs(x)"))
    by_adjoint = hvp(prob, [1.0, 0.5], "adjoint")
    by_differences = hvp(prob, [1.0, 0.5], "finite-difference")
    scale = np.max(np.abs(by_differences.flat))
    # finite differences of the gradient claim ~1e-7 at the default tolerances: a wrong
    # second-derivative term (dropping the kink's 2 sign(x)) moves the result by O(1).
    assert np.max(np.abs(by_adjoint.flat - by_differences.flat)) <= 1e-5 * scale


# -- check_hvp_function and the mutants ------------------------------------------------------
def test_check_hvp_function_passes_the_library_adjoint():
    check_hvp_function(handwritten_hvp, max_examples=15)


@pytest.mark.parametrize("mutation", HVP_MUTATIONS)
def test_check_hvp_function_catches_each_mutant(mutation):
    with pytest.raises(GradientMismatchError) as caught:
        check_hvp_function(hvp_mutant(mutation), max_examples=25)
    message = str(caught.value)
    assert "your HVP function" in message and "| quantity | yours |" in message and "along v =" in message
    assert isinstance(caught.value.problem, Problem) and not caught.value.comparison.ok


def test_check_hvp_function_accepts_flat_and_mapping_results():
    def flat(problem, v):
        return hvp(problem, v, rtol=1e-10, atol=1e-12).flat.tolist()

    def mapping(problem, v):
        hv = hvp(problem, v, rtol=1e-10, atol=1e-12)
        return {"dh0": hv.dh0, "dparams": hv.dparams}

    strategy = problems()
    check_hvp_function(flat, strategy=strategy, max_examples=5, seed=1)
    check_hvp_function(mapping, strategy=strategy, max_examples=5, seed=2)


def test_check_hvp_problem_and_its_reference():
    prob = decay_problem()
    v = np.array([0.3, 1.0])
    ref = reference_hvp(prob, v)
    assert ref.method == "complex-step"
    assert reference_hvp(prob, v, ["forward-hessian"]).method == "forward-hessian"
    assert check_hvp_problem(handwritten_hvp, prob, v).ok
    off = compare_hvp(as_hvp(1.001 * ref.flat, prob, v), ref, prob)
    assert [r.quantity for r in off.failures] == ["Hv[h0[x]]", "Hv[k]"]


# -- error branches ---------------------------------------------------------------------------
def test_direction_errors_name_the_culprit():
    prob = lv_problem()
    cases = [
        ([1.0, 2.0], re.escape("must have 6 entries, [h0 (2), theta (4)] in the order h0[x], h0[y], a, b, c, d")),
        ("abc", "must be a flat vector of 6 numbers"),
        ([1.0, "x", 0, 0, 0, 0], "must be numeric"),
        ([1.0, np.nan, 0, 0, 0, 0], "entry 1 is not finite"),
        ({"h0": [1, 2]}, "unknown key 'h0'; use 'dh0' and 'dparams'"),
        ({"dparams": {"e": 1.0}}, "unknown parameter 'e'"),
        ({"dh0": [1.0]}, r"dh0 must have shape \(2,\)"),
        ({"dh0": ["u", "v"]}, "dh0 must be numeric"),
        ({"dparams": [1.0]}, "dparams must map parameter names"),
        ({"dparams": {"a": [1.0, 2.0]}}, r"dparams\['a'\] must have shape \(\)"),
        ({"dparams": {"a": "z"}}, r"dparams\['a'\] must be numeric"),
    ]
    for v, message in cases:
        with pytest.raises(InvalidModelError, match=message):
            direction_vector(prob, v)
    matrix = network_problem()
    with pytest.raises(InvalidModelError, match=r"W1 \(3x2, row-major\)"):
        direction_vector(matrix, [1.0])


def test_callable_losses_are_refused_by_every_route():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    loss = CallableLoss(lambda s, th: float(s[0, 0]), lambda s, th: (np.ones_like(s), np.zeros(1)))
    prob = Problem(system, [1.0], {"k": 0.5}, 0.0, 1.0, loss)
    with pytest.raises(InvalidModelError, match="a CallableLoss does not give"):
        hvp(prob, [1.0, 0.0])
    for method in ("complex-step", "finite-difference", "forward-hessian"):
        with pytest.raises(InvalidModelError, match="expression loss"):
            hvp(prob, [1.0, 0.0], method)


def test_unknown_methods_problems_and_mutations():
    with pytest.raises(InvalidModelError, match="unknown HVP method 'newton'; choose one of adjoint, complex-step"):
        hvp(decay_problem(), [1.0, 0.0], "newton")
    with pytest.raises(InvalidModelError, match="hvp\\(\\) takes a Problem, got list"):
        hvp([1.0], [1.0, 0.0])
    for make in (hvp_mutant, lambda m: handwritten_hvp(decay_problem(), [1.0, 0.0], mutation=m)):
        with pytest.raises(InvalidModelError, match="unknown HVP mutation 'typo'"):
            make("typo")
    with pytest.raises(InvalidModelError, match="unknown solver 'Euler'"):
        hvp(decay_problem(), [1.0, 0.0], solver="Euler")


def test_complex_step_refuses_non_analytic_problems():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*Abs(x)"])
    prob = Problem(system, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    with pytest.raises(InvalidModelError, match=r"complex-step needs real-analytic functions.*Abs"):
        hvp(prob, [1.0, 0.0], "complex-step")


def test_the_dense_hessian_refuses_large_problems():
    system = two_layer(3, 16)
    prob = Problem(system, [0.1, 0.2, 0.3], np.zeros(system.n_params), 0.0, 1.0, FinalLoss("h[0, 0]"))
    m = 3 + system.n_params
    assert 3 * m * m > MAX_SENSITIVITIES
    with pytest.raises(InvalidModelError, match=f"n = 3 states and m = {m} inputs.*use method='complex-step'"):
        forward_hessian(prob)
    with pytest.raises(InvalidModelError, match="the dense Hessian needs an expression loss"):
        loss = CallableLoss(lambda s, th: 0.0, lambda s, th: (np.zeros_like(s), np.zeros(1)))
        forward_hessian(Problem(ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"]), [1.0], [0.5], 0.0, 1.0, loss))


def test_as_hvp_errors():
    prob = decay_problem()
    v = np.array([1.0, 0.0])
    with pytest.raises(InvalidModelError, match="lacks key 'dparams'"):
        as_hvp({"dh0": [1.0]}, prob, v)
    with pytest.raises(InvalidModelError, match="the HVP function's result: H v must have 2 entries"):
        as_hvp([1.0, 2.0, 3.0], prob, v)


def test_running_cost_errors():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    with pytest.raises(InvalidModelError, match="running_cost: 'x' is not a SymPy expression"):
        SecondOrderAdjoint.of(system, running_cost="x")
    with pytest.raises(InvalidModelError, match="running_cost must be a scalar expression"):
        SecondOrderAdjoint.of(system, running_cost=sp.ImmutableMatrix([[1]]))
    with pytest.raises(InvalidModelError, match="running_cost: unknown symbol 'q'"):
        SecondOrderAdjoint.of(system, running_cost=sp.Symbol("q"))
