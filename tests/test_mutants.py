"""The property suite's power: every deliberately wrong adjoint is caught, the right one passes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem
from adjoint_sym.errors import GradientMismatchError, InvalidModelError
from adjoint_sym.testing import check_gradient_function
from adjoint_sym.testing.mutants import MUTATIONS, handwritten_adjoint, mutant

pytest.importorskip("hypothesis")

REQUIRED = {
    "flipped_sign",
    "missing_transpose",
    "dropped_a_theta",
    "dropped_a_t",
    "wrong_terminal",
    "missing_jump",
    "theta_forward",
    "off_by_one",
}


def decay_problem(a=0.7, x0=1.3, t0=0.2, t1=1.1):
    sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    return Problem(sys, [x0], {"a": a}, t0, t1, FinalLoss("x")), a, x0, t1 - t0


def test_handwritten_adjoint_matches_closed_form():
    # L = x(t1) = x0 exp(-a T): every derivative by hand
    prob, a, x0, T = decay_problem()
    g = handwritten_adjoint(prob)
    L = x0 * math.exp(-a * T)
    assert g["loss"] == pytest.approx(L, rel=1e-9)
    assert g["dh0"][0] == pytest.approx(math.exp(-a * T), rel=1e-9)
    assert g["dparams"]["a"] == pytest.approx(-T * L, rel=1e-9)
    assert g["dt0"] == pytest.approx(a * L, rel=1e-9)
    assert g["dt1"] == pytest.approx(-a * L, rel=1e-9)


def test_handwritten_adjoint_observation_jumps_closed_form():
    # L = x(s)^2 + x(t1)^2 for x' = -a x: dL/dx0 = 2 x0 (e^{-2 a s} + e^{-2 a t1}) from t0 = 0
    a, x0, s, t1 = 0.5, 1.0, 0.4, 1.0
    sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    prob = Problem(sys, [x0], {"a": a}, 0.0, t1, ObservationLoss([s, t1], targets=[[0.0], [0.0]]))
    g = handwritten_adjoint(prob)
    assert g["dh0"][0] == pytest.approx(2 * x0 * (math.exp(-2 * a * s) + math.exp(-2 * a * t1)), rel=1e-9)
    dtimes = [-2 * a * x0**2 * math.exp(-2 * a * s), -2 * a * x0**2 * math.exp(-2 * a * t1)]
    np.testing.assert_allclose(g["dtimes"], dtimes, rtol=1e-9)
    assert g["dt1"] is None


def test_required_mutations_are_all_present():
    assert set(MUTATIONS) >= REQUIRED


def test_unknown_mutation_is_refused_with_the_choices():
    with pytest.raises(InvalidModelError, match=r"unknown mutation 'typo'; choose one of"):
        mutant("typo")
    prob, *_ = decay_problem()
    with pytest.raises(InvalidModelError, match=r"unknown mutation 'typo'"):
        handwritten_adjoint(prob, mutation="typo")


def test_the_correct_handwritten_adjoint_passes():
    check_gradient_function(handwritten_adjoint)


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_every_mutant_is_caught(mutation):
    # shrink=False: detection is what is measured here; the README test shows shrinking
    with pytest.raises(GradientMismatchError, match="disagrees with the reference"):
        check_gradient_function(mutant(mutation), shrink=False)


# -- the README example: a user's hand-written adjoint with a subtle bug ---------------------
def make_users_adjoint(transpose: bool):
    """Algorithm 1 of Chen et al. (2018) by hand, as in the README; the README's bug is
    ``f_h @ a`` where ``f_h.T @ a`` belongs (``transpose=False``)."""
    from scipy.integrate import solve_ivp

    def my_adjoint(prob):
        k, theta, n = prob.kernels, prob.theta, prob.system.n
        h1 = solve_ivp(lambda t, h: k.f(t, h, theta), (prob.t0, prob.t1), prob.h0, rtol=1e-11, atol=1e-12).y[:, -1]
        loss = prob.evaluate_loss(h1[None, :])  # L, dL/dh(t1), explicit dL/dtheta and dL/dt1
        a1 = loss.d_states[0]

        def backward(t, y):  # [h, a, a_theta, a_t] from t1 back to t0
            h, a = y[:n], y[n : 2 * n]
            f_h, f_theta, f_t = k.jac_h(t, h, theta), k.jac_theta(t, h, theta), k.f_t(t, h, theta)
            da = -(f_h.T if transpose else f_h) @ a
            return np.concatenate([k.f(t, h, theta), da, -f_theta.T @ a, [-a @ f_t]])

        flow = a1 @ k.f(prob.t1, h1, theta)
        y1 = np.concatenate([h1, a1, np.zeros(len(theta)), [-flow]])
        y0 = solve_ivp(backward, (prob.t1, prob.t0), y1, rtol=1e-11, atol=1e-12).y[:, -1]
        return {
            "loss": loss.value,
            "dh0": y0[n : 2 * n],
            "dparams": dict(zip(prob.system.param_names, y0[2 * n : -1] + loss.d_theta)),
            "dt0": y0[-1],
            "dt1": flow + loss.d_times[0],
        }

    return my_adjoint


def readme_strategy():
    from adjoint_sym.strategies import final_losses, polynomial_systems, problems

    return problems(systems=polynomial_systems(), losses=lambda system, t0, t1: final_losses(system))


def test_readme_example_without_the_bug_passes():
    check_gradient_function(make_users_adjoint(transpose=True), strategy=readme_strategy())


def test_readme_example_catches_and_shrinks_a_missing_transpose():
    with pytest.raises(AssertionError) as caught:
        check_gradient_function(make_users_adjoint(transpose=False), strategy=readme_strategy())
    error = caught.value
    assert isinstance(error, GradientMismatchError)
    shrunk = error.problem
    # the bug needs a non-symmetric Jacobian: two states are the fewest that show it
    assert shrunk.system.n == 2
    assert "dL/dh0" in str(error) and "**FAIL**" in str(error)
    assert "dx/dt = " in str(error) and "dy/dt = " in str(error)
    # shrunk towards readable values: zero initial state, the shortest forward span from 0
    assert np.all(shrunk.h0 == 0) and shrunk.t0 == 0 and shrunk.t1 == 0.25
    print(error)
