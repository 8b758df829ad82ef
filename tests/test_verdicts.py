"""Verdicts you can trust: two agreeing references to fail a method, inconclusive otherwise,
noise-level agreement, crashes recorded, causes by magnitude, stiffness along the trajectory."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem, gradient
from adjoint_sym.errors import SolverFailedError
from adjoint_sym.reference import REFERENCES
from adjoint_sym.verify import check, compare
from adjoint_sym.verify.engine import standing
from adjoint_sym.verify.routes import ROUTES
from adjoint_sym.verify.tolerance import STIFFNESS, TOLERANCE_BAND, stiffness_index


def decay(loss: str = "x**2", h0: float = 1.0, k: float = 0.5, t1: float = 1.0) -> Problem:
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    return Problem(system, [h0], {"k": k}, 0.0, t1, FinalLoss(loss))


def observed() -> Problem:
    system = ODESystem.from_strings(["x", "y"], ["k", "c"], "t", ["-k*x + y*sin(2*t)", "c*x*cos(t) - y"])
    loss = ObservationLoss([0.4, 0.9, 1.5], expr="x**2 + y**2")
    return Problem(system, [0.9, -0.4], {"k": 0.8, "c": 1.3}, 0.0, 1.5, loss)


def exact(prob: Problem) -> object:
    """A gradient good to ~1e-11: forward sensitivities at tight tolerances."""
    return REFERENCES["forward"](prob, rtol=1e-12, atol=1e-14)


def scaled(g, factor: float):
    return dataclasses.replace(
        g, dh0=g.dh0 * factor, dparams={k: np.asarray(v) * factor for k, v in g.dparams.items()}, dt0=g.dt0 * factor
    )


# -- the rule ------------------------------------------------------------------------------
PAIRS = {("m", "a"), ("m", "b"), ("a", "b")}


def agree_with(pairs):
    return lambda x, y: (x, y) in pairs or (y, x) in pairs


@pytest.mark.parametrize(
    ("route", "others", "pairs", "status"),
    [
        ("m", ["a", "b"], PAIRS, "ok"),  # everyone agrees
        ("m", ["a", "b"], {("a", "b")}, "fail"),  # two agreeing references against m
        ("m", ["a"], set(), "inconclusive"),  # one reference cannot fail a method
        ("m", ["a", "b"], set(), "inconclusive"),  # against m, but not confirming each other
        ("m", ["a", "b", "c"], {("m", "a"), ("m", "b"), ("a", "b")}, "ok"),  # c is outvoted
        ("m", ["a", "b", "c"], {("m", "a"), ("b", "c")}, "inconclusive"),  # a sides with m, b and c do not
        ("m", ["a", "b"], {("m", "a"), ("a", "b")}, "ok"),  # b agrees with a, which agrees with m
        ("m", [], set(), "inconclusive"),  # nothing to judge by
    ],
)
def test_a_method_fails_only_against_two_agreeing_references(route, others, pairs, status):
    assert standing(route, others, agree_with(pairs)).status == status


def test_a_lone_reference_stands_and_an_outvoted_one_falls():
    assert standing("a", [], agree_with(set()), reference=True).status == "ok"
    assert standing("c", ["a", "b"], agree_with({("a", "b")}), reference=True).status == "fail"
    # a reference with one other on its side is a consensus of two against a third
    assert standing("a", ["b", "c"], agree_with({("a", "b")}), reference=True).status == "ok"


# -- fail needs two references -------------------------------------------------------------
def test_a_planted_error_is_failed_by_two_references_that_agree():
    prob = observed()
    report = compare(prob, scaled(exact(prob), 1.01), candidate_rtol=1e-10)
    assert report.verdict == "fail" and not report.ok
    assert "forward" in report.methods  # the second opinion was run
    assert all(len(f.references) >= 2 for f in report.failures)
    assert "agree with each other" in report.failures[0].explain()


def test_a_1e_6_error_is_caught_at_rtol_1e_8():
    # the candidate claims 1e-10; against references at rtol 1e-8 a relative error of 1e-6 is
    # 50x the allowance 100 (1e-10 + 1e-13) on the largest entry
    prob = decay(h0=1.3, k=0.7)
    report = compare(prob, scaled(exact(prob), 1 + 1e-6), rtol=1e-8, candidate_rtol=1e-10)
    assert report.verdict == "fail", report.text()
    assert "dL/dh0[x]" in {f.quantity for f in report.failures}
    assert compare(prob, exact(prob), rtol=1e-8, candidate_rtol=1e-10).ok


def break_references(monkeypatch, factors: dict[str, float]):
    """Scale the named references' dL/dh0 (as a bug in them would), everywhere check() looks."""
    import adjoint_sym.verify.session as checker

    real = checker.gradient

    def broken(problem, method="adjoint", **kw):
        g = real(problem, method, **kw)
        return dataclasses.replace(g, dh0=g.dh0 * factors[method]) if method in factors else g

    monkeypatch.setattr(checker, "gradient", broken)


def test_references_that_disagree_among_themselves_give_inconclusive(monkeypatch):
    prob = observed()
    break_references(monkeypatch, {"complex-step": 1.1, "finite-difference": 0.9})
    report = check(prob)
    assert report.verdict == "inconclusive" and not report.ok and not report.failures, report.text()
    undecided = {i.quantity: i for i in report.inconclusive}
    assert set(undecided) == {"dL/dh0[x]", "dL/dh0[y]"}
    entry = undecided["dL/dh0[x]"]
    assert entry.method == "adjoint" and entry.support == ("forward",)
    assert set(entry.against) == {"complex-step", "finite-difference"}
    text = report.text()
    assert "the references disagree among themselves, so no verdict on adjoint" in text
    assert "remedy: tighten rtol" in text and "finite differences are the least accurate reference" in text
    # an observation problem: nothing may send the user to the jumps of a correct adjoint
    assert "jumps" not in text
    assert json.loads(json.dumps(report.as_dict()))["verdict"] == "inconclusive"
    assert "verdict='inconclusive', ok=False" in repr(report)


def test_an_outvoted_reference_is_a_note_and_the_method_passes(monkeypatch):
    prob = observed()
    break_references(monkeypatch, {"complex-step": 1.1})
    report = check(prob)
    assert report.verdict == "ok", report.text()
    assert report.reference != "complex-step"  # the table is shown against a reference that stands
    assert report.statuses["complex-step"]["dL/dh0[x]"] == "outvoted"
    assert any("the reference complex-step" in n and "is outvoted" in n for n in report.notes)


def test_a_single_broken_reference_is_escalated_not_believed(monkeypatch):
    # only complex step is asked for; it is wrong, so forward and finite differences are run
    prob = decay()
    break_references(monkeypatch, {"complex-step": 1.1})
    report = check(prob, ["adjoint", "complex-step"])
    assert report.verdict == "ok", report.text()
    assert {"forward", "finite-difference"} <= set(report.methods)
    assert any("was run as a further reference" in n for n in report.notes)


# -- noise level ------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["x**2", "5 + x**2"])
def test_quantities_at_noise_level_agree(loss):
    # x' = -k x from x0 = 0: the trajectory is zero, every entry of the gradient is exactly 0
    # and, for x**2, so is the loss: only the absolute floor C kappa 2 atol s = 2e-8 remains
    prob = decay(loss, h0=0.0)
    g = exact(prob)
    assert np.all(g.dh0 == 0) and g.dparams["k"] == 0
    noise = dataclasses.replace(g, dh0=g.dh0 + 1e-17, dparams={"k": -3e-13})
    report = compare(prob, noise, candidate_rtol=1e-8)
    assert report.ok, report.text()
    assert math.isfinite(max(report.deviations[report.methods[1]].values()))  # no "inf x the allowance"
    # far above the noise level, a non-zero answer to a zero quantity still fails
    wrong = dataclasses.replace(g, dparams={"k": 1e-3})
    assert compare(prob, wrong, candidate_rtol=1e-8).verdict == "fail"


def test_the_noise_level_follows_the_loss():
    # L = 5 + x**2 on the zero trajectory: an entry 1e-7 moves L by 2e-8 of itself, inside the
    # relative noise 100 (1e-8 + 1e-13) |L| of a route good to 1e-8; 1e-3 does not
    prob = decay("5 + x**2", h0=0.0)
    g = exact(prob)
    assert compare(prob, dataclasses.replace(g, dparams={"k": 1e-7}), candidate_rtol=1e-8).ok
    assert compare(prob, dataclasses.replace(g, dparams={"k": 1e-3}), candidate_rtol=1e-8).verdict == "fail"


# -- a method that raises ---------------------------------------------------------------------
def test_a_raising_method_is_recorded_as_failed(monkeypatch):
    def raiser(problem, **kw):
        raise SolverFailedError("adjoint solve (RK45) stopped at t = 0.3: step size too small")

    monkeypatch.setitem(ROUTES, "raiser", raiser)
    report = check(decay(), ["adjoint", "raiser", "forward"])
    assert report.verdict == "fail" and "raiser" not in report.methods
    assert report.crashed["raiser"].startswith("raiser raised SolverFailedError: adjoint solve (RK45) stopped")
    assert report.failures[0].method == "raiser" and report.failures[0].quantity == "(no gradient)"
    assert "raiser: no gradient; raiser raised SolverFailedError" in report.text()
    assert json.loads(json.dumps(report.as_dict()))["crashed"]["raiser"] == report.crashed["raiser"]


def test_a_raising_reference_is_replaced(monkeypatch):
    import adjoint_sym.verify.session as checker

    real = checker.gradient

    def flaky(problem, method="adjoint", **kw):
        if method == "complex-step":
            raise FloatingPointError("overflow in the complex solve")
        return real(problem, method, **kw)

    monkeypatch.setattr(checker, "gradient", flaky)
    report = check(decay(), ["adjoint", "complex-step", "forward"])
    assert report.verdict == "ok", report.text()
    assert "complex-step" in report.crashed and not report.failures
    assert any("complex-step raised FloatingPointError" in n for n in report.notes)


# -- causes by magnitude ----------------------------------------------------------------------
def test_a_2_percent_error_at_278x_the_allowance_is_not_tolerance():
    prob = decay(h0=1.3, k=0.7)
    g = exact(prob)
    # allowance 100 * (tau + 1e-13) with tau = 3.6e-7: 3.6e-5; a 2% error on the largest entry
    # is a scaled deviation of 0.01, 278x that
    report = compare(prob, dataclasses.replace(g, dh0=g.dh0 * 1.02), candidate_rtol=3.6e-7)
    failure = next(f for f in report.failures if f.quantity == "dL/dh0[x]")
    assert 200 < failure.ratio < 300
    assert failure.cause.startswith("not explained by tolerances"), failure.cause
    # within a decade of the allowance (and the same sign) it is tolerance
    small = compare(prob, dataclasses.replace(g, dh0=g.dh0 * (1 + 3e-7)), candidate_rtol=1e-9)
    near = next(f for f in small.failures if f.quantity == "dL/dh0[x]")
    assert 1 < near.ratio <= TOLERANCE_BAND and near.cause.startswith("tolerance"), small.text()


def test_check_re_runs_a_method_and_tells_a_wrong_term_from_a_solver_error(monkeypatch):
    prob = observed()

    def planted(problem, rtol=1e-8, **kw):  # a fixed relative error of 1e-4: a wrong term
        g = gradient(problem, "adjoint", rtol=rtol, **kw)
        return dataclasses.replace(scaled(g, 1 + 1e-4), method="planted")

    def sloppy(problem, rtol=1e-8, atol=1e-10, **kw):  # solves 1000x looser than it says: shrinks with rtol
        g = gradient(problem, "adjoint", rtol=rtol * 1e3, atol=atol * 1e3, **kw)
        return dataclasses.replace(g, method="sloppy")

    monkeypatch.setitem(ROUTES, "planted", planted)
    monkeypatch.setitem(ROUTES, "sloppy", sloppy)
    report = check(prob, ["planted", "sloppy", "forward", "complex-step"])
    assert any("planted was re-run at rtol 1e-10" in n for n in report.notes)
    planted_failures = [f for f in report.failures if f.method == "planted"]
    assert planted_failures and all("the error does not shrink" in f.cause for f in planted_failures)
    assert not [f for f in report.failures if f.method == "sloppy"], report.text()
    assert report.verdict == "fail"


# -- stiffness along the trajectory -----------------------------------------------------------
def turning_stiff() -> Problem:
    """x' = -k y (x - cos t), y' = 1 from y = 0: x is pulled onto cos t at the rate k y, which
    is 0 at t0 and 2k at t1 (max |lambda| T = 800, mildly stiff)."""
    system = ODESystem.from_strings(["x", "y"], ["k"], "t", ["-k*y*(x - cos(t))", "1"])
    return Problem(system, [0.0, 0.0], {"k": 200.0}, 0.0, 2.0, FinalLoss("x"))


def test_stiffness_is_read_along_the_trajectory():
    prob = turning_stiff()
    at_t0 = np.linalg.eigvals(prob.kernels.jac_h(prob.t0, prob.h0, prob.theta)).real
    assert np.max(-at_t0) == 0  # the spectrum at t0 sees nothing
    assert stiffness_index(prob) == pytest.approx(800.0, rel=1e-3)
    assert STIFFNESS <= 500  # |lambda| T of 500-1000 is stiff for an explicit solver


def test_an_explicit_solvers_error_on_a_mildly_stiff_problem_is_blamed_on_stiffness():
    prob = turning_stiff()
    g = REFERENCES["forward"](prob, solver="Radau", rtol=1e-12, atol=1e-14)
    off = dataclasses.replace(g, dt1=g.dt1 * (1 + 1e-4))  # the largest entry, ~25x the allowance
    report = compare(prob, off, ["forward"], solver="RK45", candidate_rtol=1e-8)
    cause = report.failures[0].cause
    assert 10 < report.failures[0].ratio < 1e3
    assert cause.startswith("stiffness: max |Re lambda| * span = 800") and "solver='BDF'" in cause
    cause = compare(prob, off, ["forward"], solver="Radau", candidate_rtol=1e-8).failures[0].cause
    assert "stiffness" not in cause  # a stiff solver was used: stiffness explains nothing
    flipped = dataclasses.replace(g, dt1=-g.dt1)
    cause = compare(prob, flipped, ["forward"], solver="RK45", candidate_rtol=1e-8).failures[0].cause
    assert cause.startswith("not explained by tolerances")  # a flipped sign is no solver's error


def test_the_adjoint_on_a_mildly_stiff_system_is_not_failed():
    # |lambda| T = 1750 with DOP853: the interpolating adjoint misses dL/dt_i by a few allowances
    # at rtol 1e-8 and by less at 1e-10 (a solver's error, converging): never "fail", and what is
    # said about it names stiffness and the stiff solvers
    system = ODESystem.from_strings(["x", "y"], ["a", "b"], "t", ["a - 1000*x - 999*y", "b - y"])
    loss = ObservationLoss([0.4375, 0.875, 1.75], targets=[[-0.25, 0.25], [0.5, 0.25], [1.0, 0.0]])
    prob = Problem(system, [-1.0, -0.5], {"a": -0.25, "b": -1.0}, 0.0, 1.75, loss)
    report = check(prob)
    assert report.verdict != "fail", report.text()
    said = [i.remedy for i in report.inconclusive] + [n for n in report.notes if "agrees at rtol" in n]
    assert all("stiff" in text and "BDF" in text for text in said), said
    assert "jumps" not in report.text()
    alone = compare(prob, gradient(prob))  # the same adjoint, with no re-check: stiffness is named
    assert all(f.cause.startswith("stiffness") for f in alone.failures), alone.text()


def test_backprop_is_judged_never_a_judge(monkeypatch):
    # complex step is broken; backprop agrees with the adjoint, but the discrete gradient is no
    # reference of the continuous one: forward sensitivities and finite differences must be run
    prob = decay()
    break_references(monkeypatch, {"complex-step": 1.1})
    report = check(prob, ["adjoint", "backprop", "complex-step"])
    assert report.verdict == "ok", report.text()
    assert {"forward", "finite-difference"} <= set(report.methods)
    assert set(report.statuses["backprop"].values()) == {"ok"}  # judged as a method
    assert report.statuses["complex-step"]["dL/dh0[x]"] == "outvoted"
    coarse = check(prob, ["backprop"], options={"backprop": {"scheme": "euler", "steps": 4}})
    assert coarse.verdict == "fail" and all("backprop" not in f.references for f in coarse.failures)


# -- a growing state does not lift the noise floor -------------------------------------------
def test_a_growing_state_does_not_hide_a_missing_time_derivative():
    """``x' = a x`` grows 2,000-fold; ``L = int (x^2/2 + t x) dt`` has ``dL/dt1 = g(h(t1), t1)``
    ~ 1.5e6 (analytically: the integrand at the end).  Scaling ``h0`` by the size the
    state reaches put ``s |dL/dh0|`` at ~kappa |L| = 2.5e9, a noise floor under which a
    ``dL/dt1`` of 0 "agreed"; ``h0`` scaled by itself (0.85), the candidate fails there."""
    from adjoint_sym import IntegralLoss

    system = ODESystem.from_strings(["x"], ["a"], "t", ["a*x"])
    prob = Problem(system, [0.85], {"a": 1.28}, 1.0, 6.96, IntegralLoss("0.5*x**2 + t*x"))
    good = gradient(prob, rtol=1e-10, atol=1e-12)
    x1 = 0.85 * math.exp(1.28 * (6.96 - 1.0))
    assert good.dt1 == pytest.approx(0.5 * x1**2 + 6.96 * x1, rel=1e-8)  # the closed form, to solver tolerance
    dropped = dataclasses.replace(good, dt1=0.0)
    # judged as a campaign judges a gradient function (it claims 1e-6): the allowance is
    # C kappa (tau_m + tau_r) = 100 * 2060 * 1e-6 = 0.21 of s |dL/dt1| + N, and the miss is 0.5
    report = compare(prob, dropped, rtol=1e-8, candidate_rtol=1e-6)
    assert report.verdict == "fail" and "dL/dt1" in {f.quantity for f in report.failures}, report.text()
    assert compare(prob, good, rtol=1e-8, candidate_rtol=1e-10).ok


def test_compare_names_what_it_takes_when_handed_a_mapping():
    prob = decay()
    with pytest.raises(ValueError, match=r"compare\(\) judges a Gradient, got dict; .*as_gradient\(value, problem\)"):
        compare(prob, {"loss": 1.0, "dh0": [1.0], "dparams": {"k": 0.0}, "dt0": 0.0, "dt1": 0.0})
