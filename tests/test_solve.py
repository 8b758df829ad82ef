"""The solve_ivp wrapper: trajectories, the Jacobian for stiff solvers, and every failure's message."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg

from adjoint_sym import FinalLoss, ODESystem, Problem, gradient
from adjoint_sym.adjoint.gradient import adjoint_gradient
from adjoint_sym.builders import linear_system, robertson
from adjoint_sym.errors import InvalidModelError, SolverFailedError
from adjoint_sym.numeric.compile import Kernel
from adjoint_sym.numeric.solve import EXPLICIT, IMPLICIT, SOLVERS, forward, integrate

DECAY = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
BLOW_UP = ODESystem.from_strings(["x"], [], "t", ["x**2"])  # x(t) = 1/(1 - t): infinite at t = 1


def blow_up_error(solver: str) -> SolverFailedError:
    problem = Problem(BLOW_UP, [1.0], {}, 0.0, 2.0, FinalLoss("x"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow on the way to inf
        with pytest.raises(SolverFailedError) as info:
            gradient(problem, solver=solver)
    return info.value


# -- trajectories -----------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("t0", "t1"), [(0.0, 2.0), (2.0, 0.0)], ids=["forward", "backward-in-time"])
def test_forward_matches_closed_form(solver, t0, t1):
    rtol = 1e-8
    problem = Problem(DECAY, [1.3], {"k": 0.7}, t0, t1, FinalLoss("x"))
    res = forward(problem, solver=solver, rtol=rtol, atol=1e-3 * rtol)
    times = np.linspace(t0, t1, 7)
    exact = 1.3 * np.exp(-0.7 * (times - t0))
    # global error: a modest multiple of rtol (see tests/test_gradients.py), growth
    # exp(0.7 * 2) = 4 when integrating backward in time; 100 * 4 covers BDF and LSODA.
    np.testing.assert_allclose(res.at(times)[:, 0], exact, rtol=400 * rtol)
    assert res.at(np.array([t0]))[0, 0] == 1.3  # the endpoints are the solver's own values
    assert res.at(np.array([t1]))[0, 0] == res.y[0, -1]
    assert res.nfev > 0 and res.n_steps == len(res.t) - 1


def test_zero_length_span_needs_no_solve():
    res = integrate(lambda t, y: -y, (1.0, 1.0), np.array([2.0, 3.0]), solver="DOP853", rtol=1e-8, atol=1e-10)
    assert res.nfev == 0 and res.n_steps == 0 and res.sol is None
    np.testing.assert_array_equal(res.at(np.array([1.0, 1.0])), [[2.0, 3.0], [2.0, 3.0]])


@pytest.mark.parametrize("solver", IMPLICIT)
def test_matrix_level_system_with_stiff_solvers(solver):
    """The Jacobian of a matrix-level system comes from one batched VJP; the solution is expm."""
    A = np.array([[-1.0, 2.0], [-2.0, -1.0]])
    problem = Problem(linear_system(2), [1.0, 0.5], {"A": A}, 0.0, 1.5, FinalLoss("h[0]"))
    rtol = 1e-9
    res = forward(problem, solver=solver, rtol=rtol, atol=1e-3 * rtol)
    exact = scipy.linalg.expm(1.5 * A) @ [1.0, 0.5]
    np.testing.assert_allclose(res.y[:, -1], exact, rtol=100 * rtol)  # growth <= 1: |expm(tA)| <= 1


@pytest.mark.parametrize("solver", IMPLICIT)
def test_stiff_solvers_receive_the_symbolic_jacobian(solver, monkeypatch):
    """Every Jacobian the solver uses is our kernel's: it never estimates one by finite
    differences (those would be extra calls of f beyond the ``nfev`` scipy reports)."""
    problem = Problem(robertson(), [1.0, 0.0, 0.0], {"k1": 0.04, "k2": 3e7, "k3": 1e4}, 0.0, 40.0, FinalLoss("y1"))
    kernels = problem.kernels
    calls = {"f": 0, "jac_h": 0}

    def counting(name):
        kernel = getattr(kernels, name)

        def fn(*args):
            calls[name] += 1
            return kernel.fn(*args)

        return Kernel(kernel.name, fn, kernel.source, kernel.output_size)

    for name in calls:
        monkeypatch.setitem(kernels.__dict__, name, counting(name))  # the cached_property's slot
    res = forward(problem, solver=solver, rtol=1e-6, atol=1e-10)
    assert calls["jac_h"] >= 1
    assert calls["f"] == res.nfev
    # Robertson at t = 40, the classic reference (SUNDIALS cvRoberts_dns, LSODE's demo):
    # y = (7.158271e-01, 9.185535e-06, 2.841640e-01); rtol 1e-6 gives a few 1e-6 absolute.
    np.testing.assert_allclose(res.y[:, -1], [7.158271e-01, 9.185535e-06, 2.841640e-01], rtol=1e-4, atol=1e-9)


# -- failures ---------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
def test_blow_up_fails_at_the_blow_up_time(solver):
    err = blow_up_error(solver)
    assert abs(err.t - 1.0) < 1e-3, err.t
    assert err.state is not None and abs(err.state[0]) > 1e6  # near the singularity
    assert "forward solve" in str(err)
    assert "at t = 1" in str(err)


# A finite-time blow-up stops an explicit solver by step-size underflow: the message must
# suggest a shorter span, not only stiffness.
@pytest.mark.parametrize("solver", list(EXPLICIT) + list(IMPLICIT))
def test_blow_up_suggests_a_shorter_span(solver):
    assert "shorten the time span" in str(blow_up_error(solver))


# The solver-stopped message names the state as well as the time.
@pytest.mark.parametrize("solver", ["DOP853", "RK45", "RK23", "BDF", "Radau", "LSODA"])
def test_blow_up_message_shows_the_state(solver):
    assert "state [" in str(blow_up_error(solver))


def test_non_finite_rhs_is_caught_with_time_and_state():
    """sqrt(1 - t) is NaN past t = 1: the solve stops there instead of returning NaN."""
    system = ODESystem.from_strings(["x"], ["k"], "t", ["k*sqrt(1 - t)*x"])
    problem = Problem(system, [1.0], {"k": 1.0}, 0.0, 2.0, FinalLoss("x"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "invalid value in sqrt"
        with pytest.raises(
            SolverFailedError, match=r"forward solve \(DOP853\): the right-hand side is not finite at t = 1 "
        ) as info:
            gradient(problem)
    assert 1.0 < info.value.t < 1.01
    assert "state [" in str(info.value)
    assert "f[x] = nan" in str(info.value)
    # An expression leaving its domain, not a blow-up: no advice about growth or parameters.
    assert "left its domain" in str(info.value) and "shorten the time span" in str(info.value)
    assert "blow up" not in str(info.value) and "parameters" not in str(info.value)


def test_backsolve_overflow_is_an_error_not_garbage():
    """Re-integrating x' = -50 x backward over 20 time units overflows: backsolve must say so."""
    system = ODESystem.from_strings(["x", "y"], ["k", "m"], "t", ["-k*x", "x - m*y"])
    problem = Problem(system, [1.0, 1.0], {"k": 50.0, "m": 0.5}, 0.0, 20.0, FinalLoss("y"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(SolverFailedError, match=r"adjoint solve \(backsolve\).*grows without bound") as info:
            gradient(problem, "backsolve")
    assert "method='interpolating'" in str(info.value)
    gradient(problem, "adjoint")  # the default does not re-integrate h: it succeeds


def test_unknown_solver():
    problem = Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x"))
    message = r"unknown solver 'Euler'; choose one of RK23, RK45, DOP853, BDF, Radau, LSODA"
    with pytest.raises(InvalidModelError, match=message):
        gradient(problem, solver="Euler")
    with pytest.raises(InvalidModelError, match=message):
        forward(problem, solver="Euler")
    with pytest.raises(InvalidModelError, match=message):
        integrate(lambda t, y: y, (0.0, 1.0), np.ones(1), solver="Euler", rtol=1e-6, atol=1e-9)


def test_unknown_method():
    problem = Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x"))
    with pytest.raises(InvalidModelError, match=r"unknown method 'magic'; choose one of adjoint, interpolating"):
        gradient(problem, "magic")
    with pytest.raises(InvalidModelError, match=r"unknown adjoint method 'magic'"):
        adjoint_gradient(problem, method="magic")


def test_gradient_needs_a_problem():
    with pytest.raises(InvalidModelError, match="gradient\\(\\) takes a Problem, got dict"):
        gradient({"h0": [1.0]})


def test_adjoint_picks_the_stable_variant_for_the_solver():
    problem = Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x"))
    for solver in EXPLICIT:
        assert gradient(problem, solver=solver).method == "interpolating"
    for solver in IMPLICIT:
        assert gradient(problem, solver=solver).method == "quadrature"


def test_stats_count_the_work():
    problem = Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x"))
    g = gradient(problem, "backsolve")
    for key in ("nfev_forward", "nfev_backward", "steps_forward", "steps_backward", "wall_time", "backsolve_drift"):
        assert key in g.stats, key
    assert g.stats["nfev_forward"] > 0 and g.stats["nfev_backward"] > 0
    assert g.stats["solver"] == "DOP853"
