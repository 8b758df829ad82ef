"""Running costs as a user meets them: building and summing losses, spec files, the command
line, the printed derivation, Hessian-vector products, and every refusal's message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import adjoint_sym as asym
from adjoint_sym import CallableLoss, FinalLoss, IntegralLoss, ObservationLoss, ODESystem, Problem, SumLoss
from adjoint_sym.cli.spec import spec_from_dict
from adjoint_sym.errors import InvalidModelError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "decay_running_cost.toml"
DECAY = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])


def decay_problem(loss, t1: float = 2.0) -> Problem:
    return Problem(DECAY, [1.5], {"k": 0.7}, 0.0, t1, loss)


def decay_closed_form(x0=1.5, k=0.7, T=2.0) -> dict:
    """L = x(T)^2 + int_0^T x^2 dt for x' = -k x (by hand: x(t)^2 = x0^2 e^{-2 k t})."""
    E = np.exp(-2 * k * T)
    return {
        "loss": x0**2 * E + x0**2 * (1 - E) / (2 * k),
        "dh0": 2 * x0 * E + x0 * (1 - E) / k,
        "dk": -2 * T * x0**2 * E + x0**2 * (2 * k * T * E - (1 - E)) / (2 * k**2),
        "dt1": -2 * k * x0**2 * E + x0**2 * E,
    }


# -- building losses ----------------------------------------------------------------------
def test_sums_flatten_and_read_their_parts():
    loss = FinalLoss("x**2") + IntegralLoss("x**2") + IntegralLoss("k*x")
    assert isinstance(loss, SumLoss) and len(loss.terms) == 3
    assert loss.point() == FinalLoss("x**2")
    x, k = DECAY.symbol_table()["x"], DECAY.symbol_table()["k"]
    assert sp.simplify(loss.running_cost(DECAY) - (x**2 + k * x)) == 0
    assert IntegralLoss("x").point().expressions(DECAY, 1) == [0]
    assert FinalLoss("x").running_cost(DECAY) is None
    assert SumLoss(IntegralLoss("x")).integrals == (IntegralLoss("x"),)


def test_problem_reads_the_point_part_and_the_running_cost():
    problem = decay_problem(ObservationLoss([1.0, 2.0], expr="x") + IntegralLoss("t*x"))
    assert not problem.is_final_loss and list(problem.times) == [1.0, 2.0]
    assert isinstance(problem.point_loss, ObservationLoss)
    assert float(problem.running_value(2.0, np.array([3.0]))) == 6.0
    assert decay_problem(FinalLoss("x")).running_value(0.0, np.array([3.0])) == 0.0
    assert decay_problem(IntegralLoss("x")).is_final_loss


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FinalLoss("x") + FinalLoss("x**2"), r"at most one point loss, got 2 .*one expression"),
        (lambda: SumLoss(FinalLoss("x")), r"at least two terms; use the loss itself"),
        (lambda: SumLoss(FinalLoss("x"), 3), r"a SumLoss adds losses, got 3"),
        (
            lambda: CallableLoss(lambda s, th: 0.0, lambda s, th: (s, th)) + IntegralLoss("x"),
            r"a CallableLoss cannot be summed .*FinalLoss or ObservationLoss",
        ),
    ],
    ids=["two-points", "alone", "not-a-loss", "callable"],
)
def test_bad_sums_are_refused_by_name(make, message):
    with pytest.raises(InvalidModelError, match=message):
        make()


def test_adding_a_non_loss_is_a_type_error():
    with pytest.raises(TypeError):
        FinalLoss("x") + 3


@pytest.mark.parametrize(
    ("expr", "message"),
    [("x + z", r"IntegralLoss.expr.*unknown symbol 'z'"), ("x +", r"IntegralLoss.expr")],
    ids=["unknown-name", "syntax"],
)
def test_bad_integrands_fail_when_the_problem_is_built(expr, message):
    with pytest.raises(InvalidModelError, match=message):
        decay_problem(IntegralLoss(expr))


def test_a_matrix_integrand_is_refused():
    from adjoint_sym.builders import linear_system

    system = linear_system(2)
    # A SymPy matrix is refused where every loss expression is read, a text naming the
    # matrix state by the parser.
    with pytest.raises(InvalidModelError, match=r"IntegralLoss.expr: the loss is a matrix; it must be a scalar"):
        Problem(system, [1.0, 0.0], {"A": np.eye(2)}, 0.0, 1.0, IntegralLoss(system.state[0]))
    with pytest.raises(InvalidModelError, match=r"IntegralLoss.expr: 'h' is a 2x1 matrix .* address its entries"):
        Problem(system, [1.0, 0.0], {"A": np.eye(2)}, 0.0, 1.0, IntegralLoss(system.state[0].name))


def test_a_running_cost_needs_its_integral_in_the_observations():
    from adjoint_sym.adjoint.backward import Observations

    problem = decay_problem(IntegralLoss("x"))
    with pytest.raises(InvalidModelError, match=r"running cost: pass integral="):
        Observations.of(problem, np.array([[1.0]]))


def test_symbolic_running_costs_refuse_unknown_symbols_and_matrices():
    from adjoint_sym.symbolic.running_cost import check_integrand

    with pytest.raises(InvalidModelError, match=r"running_cost: unknown symbol 'z'"):
        check_integrand(DECAY, sp.Symbol("z"))
    with pytest.raises(InvalidModelError, match=r"running_cost must be a scalar expression"):
        check_integrand(DECAY, sp.eye(2))
    with pytest.raises(InvalidModelError, match=r"running_cost: .* is not a SymPy expression"):
        check_integrand(DECAY, object())


# -- routes that refuse -------------------------------------------------------------------
def test_the_fast_backend_refuses_a_running_cost():
    with pytest.raises(InvalidModelError, match=r"backend='fast' has no running cost .*backend='default'"):
        asym.gradient(decay_problem(IntegralLoss("x")), backend="fast")


def test_the_adapters_refuse_a_running_cost():
    from adjoint_sym.adapters import loss_expressions

    with pytest.raises(InvalidModelError, match=r"adapters translate point losses only"):
        loss_expressions(decay_problem(FinalLoss("x") + IntegralLoss("x")))


def test_verify_derivation_refuses_a_running_cost():
    with pytest.raises(InvalidModelError, match=r"verify_derivation decides claims about point losses"):
        asym.verify_derivation(decay_problem(IntegralLoss("x")), adjoint=["k*a_x - 1"])


def test_hvp_refuses_products_derived_for_another_running_cost():
    from adjoint_sym.adjoint.second_order import SecondOrderProducts, adjoint_hvp

    with pytest.raises(InvalidModelError, match=r"derived for the running cost None, but the loss's is x\*\*2"):
        adjoint_hvp(decay_problem(IntegralLoss("x**2")), [1.0, 0.0], products=SecondOrderProducts(DECAY))


# -- Hessian-vector products --------------------------------------------------------------
def test_hvp_of_a_running_cost_matches_the_closed_form_hessian():
    # L = int_0^T x0^2 e^{-2 k t} dt = x0^2 (1 - e^{-2kT}) / (2k): its Hessian in (x0, k) by SymPy
    X0, K = sp.symbols("X0 K", positive=True)
    L = X0**2 * (1 - sp.exp(-2 * K * 2)) / (2 * K)
    at = {X0: 1.5, K: 0.7}
    H = np.array([[float(L.diff(a, b).subs(at)) for b in (X0, K)] for a in (X0, K)])
    problem = decay_problem(IntegralLoss("x**2"))
    v = np.array([0.3, -1.0])
    for method in ("adjoint", "complex-step", "finite-difference", "forward-hessian"):
        hv = asym.hvp(problem, v, method, rtol=1e-10, atol=1e-12)
        # tolerance: 100 tolerance units of the tightest solve (the finite differences claim ~1e-9)
        np.testing.assert_allclose(hv.flat, H @ v, rtol=100 * max(1e-10, hv.stats.get("accuracy", 0)))
        assert hv.loss == pytest.approx(float(L.subs(at)), rel=1e-8)


def test_hvp_of_a_running_cost_passes_the_taylor_test_and_the_checker():
    from adjoint_sym.builders import lotka_volterra

    params = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
    problem = Problem(lotka_volterra(), [1.0, 1.0], params, 0.0, 2.0, FinalLoss("x**2") + IntegralLoss("c*x*y"))
    v = np.array([0.3, -0.5, 1.0, 0.2, -0.7, 0.4])
    result = asym.taylor_test_hvp(problem, asym.hvp(problem, v))
    assert result.ok and abs(result.fitted_order - 3.0) < 0.2
    assert asym.check_hvp(problem, v).ok


# -- the printed derivation ---------------------------------------------------------------
def test_the_adjoint_carries_the_running_cost_in_both_forms():
    x, k = DECAY.symbol_table()["x"], DECAY.symbol_table()["k"]
    for form in ("vjp", "jacobian"):
        adj = DECAY.adjoint(form=form, running_cost=x**2 + k * x)
        a_x = adj.a[0]
        assert sp.expand(adj.rhs_a[0] - (k * a_x - 2 * x - k)) == 0  # -(a f_h + g_h)
        assert sp.expand(adj.rhs_theta[0] - (x * a_x - x)) == 0  # -(a f_k + g_k)
    assert "running_cost=x**2" in repr(DECAY.adjoint(running_cost=x**2))


def test_latex_shows_the_integral_its_partials_and_the_time_terms():
    latex = DECAY.adjoint().latex(loss=FinalLoss("x**2") + IntegralLoss("k*t*x"))
    for piece in (
        r"L &= \ell(h(t_{1}), \theta, t_{1}) + \int_{t_{0}}^{t_{1}} g(h(t), \theta, t) \, dt",
        r"g &= k t x",
        r"\frac{\partial g}{\partial h} &= k t",
        r"\frac{\partial g}{\partial t} &= k x",
        r"- g(h(t_{1}), \theta, t_{1})",  # in a_t(t1)
        r"+ g(h(t_{1}), \theta, t_{1})",  # in dL/dt1
        r"- g(h(t_{0}), \theta, t_{0})",  # in dL/dt0
    ):
        assert piece in latex, piece
    assert r"\frac{d a_{x}}{d t} &= a_{x} k - k t" in latex  # the adjoint re-derived with g


def test_text_of_a_running_cost_alone_and_an_adjoint_that_brings_its_own():
    text = DECAY.adjoint().text(loss=IntegralLoss("x**2"))
    assert "L = int_t0^t1 g(h(t), theta, t) dt" in text
    assert "a(t1) = 0,  a_theta(t1) = 0,  a_t(t1) = -g(h(t1), theta, t1)" in text
    assert "dL/dt1 = g(h(t1), theta, t1)" in text
    x = DECAY.symbol_table()["x"]
    own = DECAY.adjoint(running_cost=x**2).markdown()
    assert r"\int_{t_{0}}^{t_{1}}" in own and "g &= x^{2}" in own


def test_observation_jumps_name_the_integrals_end():
    text = DECAY.adjoint().text(loss=ObservationLoss([1.0, 2.0], expr="x") + IntegralLoss("x**2"))
    assert "a_t(t_N-) = a_t(t_N+) - dl_N/dh(t_N) . f(h(t_N), t_N) - g(h(t_N), theta, t_N)" in text
    assert "dL/dt_N = dl_N/dh(t_N) . f(h(t_N), t_N) + dl_N/dt(t_N) + g(h(t_N), theta, t_N)" in text


def test_a_user_named_g_moves_the_integrand_letter():
    system = ODESystem.from_strings(["x"], ["g"], "t", ["-g*x"])
    assert "r = x**2" in system.adjoint().text(loss=IntegralLoss("x**2"))


# -- spec files and the command line ------------------------------------------------------
BASE = {"state": ["x"], "rhs": ["-k*x"], "params": {"k": 0.7}, "h0": [1.5], "t1": 2.0}


def test_spec_sums_loss_tables():
    spec = spec_from_dict({**BASE, "loss": [{"kind": "final", "expr": "x**2"}, {"kind": "integral", "expr": "x**2"}]})
    assert spec.problem.loss == FinalLoss("x**2") + IntegralLoss("x**2")
    alone = spec_from_dict({**BASE, "loss": {"kind": "integral", "expr": "x"}})
    assert alone.problem.loss == IntegralLoss("x")
    single = spec_from_dict({**BASE, "loss": [{"kind": "final", "expr": "x"}]})
    assert single.problem.loss == FinalLoss("x")


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ([], r"loss: the list of loss terms is empty"),
        ([{"kind": "final", "expr": "x"}, {"kind": "final", "expr": "x"}], r"loss\[1\]: a second final"),
        ([{"kind": "integral"}], r"loss\[0\].expr: missing; an integral loss needs the integrand"),
        ([{"kind": "integral", "expr": 3}], r"loss\[0\].expr: expected a string"),
        ([{"kind": "final", "expr": "x"}, {"kind": "sum"}], r"loss\[1\].kind: 'sum'; choose one of .*'integral'"),
        (
            [{"kind": "integral", "expr": "x", "times": [1.0]}],
            r"loss\[0\].times: unknown field; known fields here are kind, expr",
        ),
        ({"kind": "integral", "expr": "q"}, r"unknown symbol 'q'"),
        ([{"kind": "observations", "times": []}, {"kind": "integral", "expr": "x"}], r"loss\[0\].times: the list"),
    ],
    ids=["empty", "two-points", "no-expr", "not-text", "bad-kind", "unknown-key", "unknown-name", "no-times"],
)
def test_bad_spec_losses_name_the_field(loss, message):
    with pytest.raises(InvalidModelError, match=message):
        spec_from_dict({**BASE, "loss": loss})


def test_a_parameter_used_only_by_the_running_cost_is_used():
    spec = spec_from_dict({**BASE, "rhs": ["-x"], "params": {"w": 2.0}, "loss": {"kind": "integral", "expr": "w*x**2"}})
    assert spec.problem.running_cost is not None


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adjoint_sym", *args], capture_output=True, text=True, timeout=300)


def test_cli_gradient_check_derive_and_report_on_the_example(tmp_path):
    exact = decay_closed_form()
    result = run_cli("gradient", str(EXAMPLE), "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    # the spec solves at rtol 1e-10: 100 tolerance units (see test_running_cost.py)
    for value, want in ((got["loss"], exact["loss"]), (got["dL_dh0"][0], exact["dh0"])):
        assert value == pytest.approx(want, rel=1e-8)
    assert got["dL_dparams"]["k"] == pytest.approx(exact["dk"], rel=1e-8)
    assert got["dL_dt1"] == pytest.approx(exact["dt1"], rel=1e-8)
    assert got["dL_dt0"] == pytest.approx(-exact["dt1"], rel=1e-8)  # autonomous, h0 held fixed
    check = run_cli("check", str(EXAMPLE))
    assert check.returncode == 0, check.stdout + check.stderr
    derive = run_cli("derive", str(EXAMPLE))
    assert derive.returncode == 0, derive.stderr
    assert "g = x**2" in derive.stdout and "da_x/dt = a_x*k - 2*x" in derive.stdout
    report = run_cli("report", str(EXAMPLE), "-o", str(tmp_path))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report.md").read_text()
    assert "L = x**2 at t1 = 2 + int_t0^t1 [x**2] dt" in text
    assert r"\int_{t_{0}}^{t_{1}} g(h(t), \theta, t)" in text
