"""The checker passes correct adjoints and catches deliberately broken ones, usefully."""

import dataclasses
import json

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from adjoint_sym import FinalLoss, GradientMismatchError, ObservationLoss, ODESystem, Problem
from adjoint_sym.adjoint.kernels import adjoint_kernels
from adjoint_sym.builders import lotka_volterra, neural_ode
from adjoint_sym.numeric.result import Gradient
from adjoint_sym.numeric.solve import forward
from adjoint_sym.reference import REFERENCES
from adjoint_sym.verify import (
    AGREEMENT,
    assert_gradients_agree,
    check,
    compare,
    convergence_study,
    input_scales,
    relative_error,
    scaled_deviations,
)
from adjoint_sym.verify.routes import ROUTES
from adjoint_sym.verify.tolerance import cause as _cause


def nonautonomous_problem(final: bool = False) -> Problem:
    # f depends on t, so the a_t integrand -a^T f_t matters; three observations, so do the jumps
    system = ODESystem.from_strings(["x", "y"], ["k", "c"], "t", ["-k*x + y*sin(2*t)", "c*x*cos(t) - y"])
    loss = FinalLoss("x**2 + y**2") if final else ObservationLoss([0.4, 0.9, 1.5], expr="x**2 + y**2")
    return Problem(system, [0.9, -0.4], {"k": 0.8, "c": 1.3}, 0.0, 1.5, loss)


def tiny_adjoint(prob: Problem, *, flip_rhs=False, drop_at=False, skip_jumps=False) -> Gradient:
    """A small interpolating adjoint written here, with switches that break it."""
    k, theta = adjoint_kernels(prob.system), prob.theta
    n, p = prob.system.n, prob.system.n_params
    fwd = forward(prob, rtol=1e-10, atol=1e-12)
    states = fwd.at(prob.times)
    loss = prob.evaluate_loss(states)
    sign = 1.0 if flip_rhs else -1.0  # da/dt = -a^T f_h: the flipped sign is the classic slip

    def rhs(t, y):
        out = sign * k.vjp(t, fwd.sol(t), y[:n], theta)
        if drop_at:
            out[-1] = 0.0
        return out

    f = k.f.fn
    y = np.zeros(n + p + 1)
    starts = [prob.t0, *prob.times[:-1]]
    for i in range(len(prob.times) - 1, -1, -1):
        if not (skip_jumps and i < len(prob.times) - 1):
            y[:n] += loss.d_states[i]
            y[-1] -= loss.d_states[i] @ f(prob.times[i], states[i], theta)
        y = solve_ivp(rhs, (prob.times[i], starts[i]), y, rtol=1e-10, atol=1e-12, method="DOP853").y[:, -1]
    dtimes = np.array([loss.d_states[i] @ f(t, states[i], theta) for i, t in enumerate(prob.times)])
    final = prob.is_final_loss
    return Gradient(
        loss=float(loss.value),
        dh0=y[:n],
        dparams=dict(zip(prob.system.param_names, (y[n : n + p] + loss.d_theta).tolist())),
        dt0=float(y[-1]),
        dt1=float(dtimes[-1]) if final else None,
        dtimes=None if final else dtimes,
        method="tiny",
    )


# -- passing on correct adjoints --------------------------------------------------------


def test_check_passes_every_method_on_a_correct_problem():
    prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.0, FinalLoss("x*y"))
    methods = ["adjoint", "interpolating", "backsolve", "quadrature", "forward", "backprop", "finite-difference"]
    report = check(prob, [*methods, "complex-step"])
    assert report.ok, report.text()
    assert report.reference == "complex-step"
    assert set(report.methods) == {*methods, "complex-step"}
    assert report.quantities == ("dL/dh0[x]", "dL/dh0[y]", "dL/da", "dL/db", "dL/dc", "dL/dd", "dL/dt0", "dL/dt1")
    worst = max(max(d.values()) for d in report.deviations.values())
    assert worst <= 1.0


def test_check_passes_on_observation_loss_and_matrix_level_system():
    prob = Problem(
        neural_ode(2, time="input"),
        [0.5, -0.3],
        np.linspace(-1, 1, 8),
        0.0,
        1.0,
        ObservationLoss([0.0, 0.5, 1.0], targets=np.ones((3, 2))),
    )
    report = check(prob, ["adjoint", "backsolve", "forward", "complex-step"])
    assert report.ok, report.text()
    assert any(q.startswith("dL/dt_obs[") for q in report.quantities)


def test_tiny_adjoint_is_correct_before_it_is_broken():
    prob = nonautonomous_problem()
    report = compare(prob, tiny_adjoint(prob), candidate_rtol=1e-10)
    assert report.ok, report.text()


# -- failing, with a useful message, on broken ones -------------------------------------


def failing(report) -> dict:
    return {f.quantity: f for f in report.failures}


def test_flipped_adjoint_sign_is_caught():
    prob = nonautonomous_problem()
    report = compare(prob, tiny_adjoint(prob, flip_rhs=True), candidate_rtol=1e-10)
    assert not report.ok
    bad = failing(report)
    assert "dL/dh0[x]" in bad and "dL/dk" in bad
    assert "an error in candidate (tiny) (against complex-step and forward)" in bad["dL/dk"].cause
    assert report.verdict == "fail" and bad["dL/dk"].references == ("complex-step", "forward")
    text = report.text()
    assert "dL/dk: candidate (tiny) =" in text and "but complex-step =" in text and "FAIL" in text


def test_negated_gradient_is_reported_as_a_flipped_sign():
    prob = nonautonomous_problem(final=True)
    good = tiny_adjoint(prob)
    bad = dataclasses.replace(good, dh0=-good.dh0)
    report = compare(prob, bad, candidate_rtol=1e-10)
    assert set(failing(report)) == {"dL/dh0[x]", "dL/dh0[y]"}
    assert "the sign is flipped" in failing(report)["dL/dh0[x]"].cause


def test_dropped_a_t_term_is_caught_on_dt0_only():
    prob = nonautonomous_problem(final=True)
    report = compare(prob, tiny_adjoint(prob, drop_at=True), candidate_rtol=1e-10)
    assert set(failing(report)) == {"dL/dt0"}
    assert "check the a_t block" in failing(report)["dL/dt0"].cause


def test_missing_observation_jump_is_caught():
    prob = nonautonomous_problem()
    report = compare(prob, tiny_adjoint(prob, skip_jumps=True), candidate_rtol=1e-10)
    bad = failing(report)
    assert "dL/dh0[x]" in bad and "dL/dc" in bad
    assert "jumps dL/dh(t_i)" in bad["dL/dh0[x]"].cause


def test_zeroed_quantity_is_reported_as_a_missing_term():
    prob = nonautonomous_problem(final=True)
    good = tiny_adjoint(prob)
    report = compare(prob, dataclasses.replace(good, dparams={**good.dparams, "c": 0.0}), candidate_rtol=1e-10)
    assert "the value is zero: a term is missing" in failing(report)["dL/dc"].cause


def test_assert_gradients_agree_raises_with_the_table(monkeypatch):
    prob = nonautonomous_problem(final=True)

    def broken(problem, **kw):  # a registered method that gets dL/dk wrong by 1e-4
        g = REFERENCES["forward"](problem, **kw)
        return dataclasses.replace(g, dparams={**g.dparams, "k": g.dparams["k"] * (1 + 1e-4)}, method="broken")

    monkeypatch.setitem(ROUTES, "broken", broken)
    with pytest.raises(GradientMismatchError) as info:
        assert_gradients_agree(prob, ["adjoint", "broken"])
    message = str(info.value)
    assert "quantity" in message and "broken (rel. error)" in message  # the table's header
    assert "dL/dk: broken =" in message and "1 disagreement(s)" in message
    assert isinstance(info.value, AssertionError)
    assert assert_gradients_agree(prob, ["adjoint"]).ok


def test_fixed_step_backprop_failure_blames_the_discretization():
    prob = nonautonomous_problem(final=True)
    report = check(prob, ["backprop"], options={"backprop": {"scheme": "euler", "steps": 4}})
    assert not report.ok
    assert all(f.cause.startswith("discretization") for f in report.failures)
    assert report.reference == "complex-step"  # computed in addition


# -- causes (every message branch) -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"non_analytic": [("the right-hand side", "Max")]}, "non-smooth f: the problem uses Max"),
        ({"kappa": 1e6, "ratio": 50.0}, "chaos: the flow amplifies perturbations by kappa = 1e+06"),
        ({"kappa": 1e6}, "not explained by tolerances"),  # a million times the allowance: no regime explains it
        (
            {"stiffness": 1e5, "ratio": 50.0},
            "stiffness: max |Re lambda| * span = 1e+05 along the trajectory with an explicit solver; use solver='BDF'",
        ),
        ({"stiffness": 1e5}, "not explained by tolerances"),
        ({"ratio": 5.0}, "tolerance: within a decade"),
        ({"ratio": 5.0, "method": "finite-difference"}, "finite differences are the least accurate route"),
        ({"ratio": 278.0}, "not explained by tolerances"),  # the 2% error at 278x is no tolerance effect
        ({"ratio": 1e6}, "not explained by tolerances"),
        ({"ratio": 5.0, "refined": (1e-10, 5.0)}, "still 5x the allowance at rtol 1e-10: the error does not shrink"),
        ({"drift": 1e9}, "backsolve instability: the backward re-integration of h drifted 1e+09 tolerance units"),
        ({"fixed_steps": True}, "discretization: backprop differentiates a fixed-step solve"),
    ],
)
def test_each_cause_branch(kwargs, expected):
    args = {
        "prob": nonautonomous_problem(final=True),
        "q": "dL/dk",
        "v": 1.1,
        "r": 1.0,
        "ratio": 1e6,
        "kappa": 1.0,
        "non_analytic": [],
        "stiffness": 0.0,
        "method": "adjoint",
        "ref": "complex-step",
        **kwargs,
    }
    assert expected in _cause(**args)


def test_stiff_problem_with_explicit_solver_is_diagnosed_as_stiff():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*(x - cos(t))"])
    prob = Problem(system, [0.0], {"k": 2e3}, 0.0, 1.0, FinalLoss("x**2"))
    good = REFERENCES["forward"](prob, solver="BDF", rtol=1e-10, atol=1e-12)
    # 1e-4 relative: 50x the allowance at rtol 1e-8, within the band a solver's error can reach
    off = dataclasses.replace(good, dt1=good.dt1 * (1 + 1e-4))
    report = compare(prob, off, ["forward"], solver="BDF", candidate_rtol=1e-8)
    # the failure happened with an implicit solver, so the explicit-stiffness cause must not be named
    assert report.verdict == "fail" and "stiffness" not in report.failures[0].cause
    report = compare(prob, off, ["forward"], solver="RK45", candidate_rtol=1e-8)
    assert report.failures[0].cause.startswith("stiffness"), report.text()
    # a term that is missing altogether is not blamed on stiffness: magnitude decides
    report = compare(prob, dataclasses.replace(good, dt1=0.0), ["forward"], solver="RK45")
    assert "the value is zero: a term is missing" in report.failures[0].cause


# -- notes, references, outputs ---------------------------------------------------------


def test_non_analytic_problem_skips_complex_step_and_uses_forward():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x + 0.1*abs(x - 5)"])
    prob = Problem(system, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    report = check(prob, ["adjoint", "complex-step"])
    assert report.reference == "forward"
    assert any("complex-step skipped" in n and "Abs" in n for n in report.notes)
    assert report.ok, report.text()


def test_unstable_backsolve_is_blamed_on_its_drift():
    # strongly contracting x (k = 40 over 10 time units): backward, h grows like e^{400}; y
    # feeds on x, so dL/dk = -int a_x x dt meets the drifted x
    system = ODESystem.from_strings(["x", "y"], ["k"], "t", ["-k*x + y", "-y + x"])
    prob = Problem(system, [1.0, 1.0], {"k": 40.0}, 0.0, 10.0, FinalLoss("y"))
    report = check(prob, ["backsolve", "forward"], solver="RK45", rtol=1e-6, atol=1e-9)
    assert not report.ok
    assert all(f.cause.startswith("backsolve instability") for f in report.failures)
    assert any("use method='interpolating'" in n for n in report.notes)


def test_backsolve_drift_is_reported():
    prob = nonautonomous_problem()
    report = check(prob, ["backsolve", "forward"])
    assert any("backsolve: backward-reconstructed state drifted" in n for n in report.notes)


def test_report_renders_everywhere():
    prob = nonautonomous_problem(final=True)
    good = tiny_adjoint(prob)
    report = compare(prob, dataclasses.replace(good, dt0=-good.dt0), candidate_rtol=1e-10)
    rows = report.table()
    assert [r["quantity"] for r in rows] == list(report.quantities)
    assert rows[-2]["candidate (tiny) ok"] is False and rows[0]["candidate (tiny) ok"] is True
    assert report.markdown().count("\n|") >= len(rows) + 1 and "**FAIL**" in report.markdown()
    assert r"\begin{tabular}" in report.latex() and r"\textbf{FAIL}" in report.latex()
    assert "<table>" in report._repr_html_() and "color:#b00" in report._repr_html_()
    data = json.loads(json.dumps(report.as_dict()))
    assert data["ok"] is False and data["failures"][0]["quantity"] == "dL/dt0"
    assert data["agreement_constant"] == AGREEMENT
    assert "ok=False" in repr(report)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown method 'adjont'"):
        check(nonautonomous_problem(), ["adjont"])


# -- convergence --------------------------------------------------------------------------


def test_convergence_study_errors_shrink_and_backprop_meets_the_adjoint():
    prob = nonautonomous_problem(final=True)
    study = convergence_study(prob, ["adjoint", "forward"], rtols=[1e-4, 1e-7, 1e-10], steps=[4, 8, 16, 32])
    for method, errors in study.errors.items():
        assert errors[-1] < 1e-3 * errors[0], (method, errors)
    assert np.all(np.diff(study.backprop_vs_adjoint) < 0)
    assert 3.5 < study.backprop_order < 4.5  # RK4
    euler = convergence_study(prob, [], rtols=[1e-10], steps=[16, 32, 64], scheme="euler")
    assert 0.8 < euler.backprop_order < 1.2
    assert json.loads(json.dumps(study.as_dict()))["scheme"] == "rk4"
    assert "| rtol |" in study.markdown()


def test_convergence_study_plots():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    prob = nonautonomous_problem(final=True)
    study = convergence_study(prob, ["adjoint"], rtols=[1e-5, 1e-8], steps=[4, 8])
    figure = study.plot()
    ax = figure.axes
    assert len(ax) == 2 and ax[0].get_xscale() == "log" and ax[1].get_yscale() == "log"
    assert any("adjoint (order" in t.get_text() for t in ax[0].get_legend().get_texts())


def test_deviations_are_measured_in_scaled_inputs():
    # dL/dk2 for a rate of 3e7 is tiny, but s * dL/dk2 (the change of L per relative change of
    # k2) is what the tolerance model compares: an error of 1e-3 in it must count.
    ref = {"dL/dk1": 2.0, "dL/dk2": 1e-8, "dL/dt0": 0.0}
    scales = [1.0, 3e7, 1.0]
    devs = scaled_deviations({"dL/dk1": 2.0, "dL/dk2": 1.001e-8, "dL/dt0": 1e-9}, ref, scales)
    assert devs["dL/dk1"] == 0.0
    assert devs["dL/dk2"] == pytest.approx(3e7 * 1e-11 / (0.3 + 2.0))
    assert devs["dL/dt0"] == pytest.approx(1e-9 / 2.0)  # a zero entry is judged against the largest
    prob = nonautonomous_problem(final=True)
    g = tiny_adjoint(prob)
    assert relative_error(g, g) == 0.0
    worse = dataclasses.replace(g, dt0=g.dt0 + 1e-3 * abs(g.dt1))
    assert 0 < relative_error(worse, g, input_scales(prob)) <= 1e-3


def test_adjoint_dt0_with_a_time_dependent_loss():
    # regression: the adjoint once subtracted the explicit dL/dt1 from a_t, moving dL/dt0 by it
    prob = Problem(
        lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.0, FinalLoss("x**2 + y*t")
    )
    report = check(prob, ["adjoint", "forward", "complex-step"])
    assert report.ok, report.text()


def test_check_with_taylor_test_flags_a_gradient_of_the_wrong_order(monkeypatch):
    prob = nonautonomous_problem(final=True)

    def scaled(problem, **kw):  # every entry 2% off: agreement fails and so does the Taylor order
        g = REFERENCES["forward"](problem, **kw)
        return dataclasses.replace(g, dh0=1.02 * g.dh0, method="scaled")

    monkeypatch.setitem(ROUTES, "scaled", scaled)
    report = check(prob, ["adjoint", "scaled", "complex-step"], taylor=True)
    assert report.taylor["adjoint"].ok and not report.taylor["scaled"].ok
    taylor_failures = [f for f in report.failures if f.quantity == "Taylor remainder order"]
    assert [f.method for f in taylor_failures] == ["scaled"]
    assert "not eps^2" in taylor_failures[0].cause
    assert any("Taylor test of adjoint: remainder order 2.0" in n for n in report.notes)


def test_implicit_solver_skips_the_explicit_only_routes_and_says_why():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*(x - cos(t))"])
    prob = Problem(system, [0.0], {"k": 2e3}, 0.0, 1.0, FinalLoss("x**2"))
    report = check(prob, ["adjoint", "backprop", "complex-step", "forward"], solver="BDF")
    assert report.ok, report.text()
    assert report.methods == ("forward", "adjoint")
    assert any(n.startswith("backprop skipped") and "options=" in n for n in report.notes)
    assert any(
        n.startswith("complex-step skipped") and "forward sensitivities are the reference" in n for n in report.notes
    )


def test_a_broken_reference_is_outvoted_and_fails_no_method(monkeypatch):
    # A broken reference: both adjoints agree, the reference is off by 10% on dL/dh0.
    import adjoint_sym.verify.checker as verify_module
    import adjoint_sym.verify.session as session_module

    prob = nonautonomous_problem(final=True)
    real_gradient = session_module.gradient

    def broken(problem, method="adjoint", **kw):
        g = real_gradient(problem, method, **kw)
        if method == "forward":
            return dataclasses.replace(g, dh0=g.dh0 * 1.1)
        return g

    monkeypatch.setattr(session_module, "gradient", broken)
    report = verify_module.check(prob, ["interpolating", "backsolve", "forward"], reference="forward")
    # forward alone cannot fail the adjoints: complex step and finite differences are run, agree
    # with each other and with both adjoints, and outvote it
    assert report.verdict == "ok" and not report.failures, report.text()
    assert {"complex-step", "finite-difference"} <= set(report.methods)
    assert report.reference != "forward" and report.statuses["forward"]["dL/dh0[x]"] == "outvoted"
    assert any("the reference forward" in n and "is outvoted" in n for n in report.notes), report.notes
    assert "OUTVOTED" in report.text()
    # with only the references run, the same disagreement is the verdict: inconclusive, named
    alone = verify_module.check(prob, ["forward", "complex-step"])
    assert alone.verdict == "inconclusive" and not alone.ok
    assert {i.quantity for i in alone.inconclusive} == {"dL/dh0[x]", "dL/dh0[y]"}
    assert "the references disagree among themselves" in alone.text()


def test_a_sign_disagreement_is_never_blamed_on_tolerance():
    from adjoint_sym.verify.tolerance import cause as _cause

    prob = nonautonomous_problem(final=True)
    # a deviation of only 2x the allowance, but with opposite signs
    cause = _cause(prob, "dL/dk", -1.0, 2.0, 2.0, 1.0, [], 0.0, "adjoint", "forward")
    assert "signs disagree" in cause and not cause.startswith("tolerance")
