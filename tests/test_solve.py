"""The solve_ivp wrapper: trajectories, the Jacobian for stiff solvers, and every failure's message."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.linalg

from adjoint_sym import FinalLoss, ODESystem, Problem, gradient, limits
from adjoint_sym.adjoint.gradient import adjoint_gradient
from adjoint_sym.builders import linear_system, robertson
from adjoint_sym.errors import InvalidModelError, SolverFailedError
from adjoint_sym.numeric.compile import Kernel
from adjoint_sym.numeric.solve import EXPLICIT, IMPLICIT, SOLVERS, forward, integrate, reporting

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


# -- budgets, diagnosis and the non-finite guard (issue 14) -----------------------------------
ROBERTSON_K = {"k1": 0.04, "k2": 3e7, "k3": 1e4}
OSCILLATOR = ODESystem.from_strings(["x", "v"], [], "t", ["v", "-x"])


def test_a_rejected_non_finite_trial_stage_is_not_a_failure():
    """DOP853 on Robertson overshoots in a trial stage (inf/nan), which the solver rejects
    and retries shorter; the old guard raised on it ("may blow up" at t = 0.018). The
    answer must match Radau at tight tolerance, and the test must visit the regime."""
    kernels = Problem(robertson(), [1.0, 0.0, 0.0], ROBERTSON_K, 0.0, 1.0, FinalLoss("y1")).kernels
    theta = np.array([0.04, 3e7, 1e4])
    seen = []

    def fun(t, y):
        out = kernels.f.fn(t, y, theta)
        if not np.all(np.isfinite(out)):
            seen.append(t)
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = integrate(fun, (0.0, 1.0), np.array([1.0, 0.0, 0.0]), solver="DOP853", rtol=1e-8, atol=1e-10)
    assert seen, "no non-finite trial stage: the test no longer visits the regime it is about"
    ref = integrate(
        lambda t, y: kernels.f.fn(t, y, theta), (0.0, 1.0), np.array([1.0, 0.0, 0.0]), solver="Radau",
        rtol=1e-11, atol=1e-14, jac=lambda t, y: kernels.jac_h.fn(t, y, theta),
    )  # fmt: skip
    # DOP853 at rtol 1e-8 over a stability-limited run of ~350 steps: global error well below 1e-6
    np.testing.assert_allclose(res.y[:, -1], ref.y[:, -1], rtol=1e-6, atol=1e-12)


def test_stiffness_is_diagnosed_as_stiffness_from_the_spectrum():
    problem = Problem(robertson(), [1.0, 0.0, 0.0], ROBERTSON_K, 0.0, 40.0, FinalLoss("y1"))
    with pytest.raises(SolverFailedError) as info:
        forward(problem, solver="DOP853")
    message = str(info.value)
    assert "forward solve (DOP853) stopped at t = " in message
    assert "the problem is stiff: an eigenvalue of df/dh of magnitude" in message
    # Robertson's stiff eigenvalue after the transient is ~ -1e3..-1e4: the reported one must be there
    magnitude = float(message.split("magnitude ")[1].split()[0])
    assert 1e2 < magnitude < 1e5, magnitude
    assert "use solver='LSODA', 'BDF' or 'Radau'" in message and "blow up" not in message
    assert 0.0 < info.value.t < 40.0


def test_step_budget_names_the_limit_and_how_to_raise_it():
    problem = Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 10.0, FinalLoss("x"))
    with limits(max_steps=5), pytest.raises(SolverFailedError) as info:
        forward(problem)
    message = str(info.value)
    assert "after 5 steps" in message and "the step budget of 5 steps (max_steps) is used up" in message
    assert "adjoint_sym.limits(max_steps=...)" in message and "--max-steps" in message
    assert 0.0 < info.value.t < 10.0 and info.value.state.shape == (1,)
    with limits(max_steps=10_000):
        forward(problem)  # raised, it passes


def test_a_hopeless_span_is_refused_from_its_pace_not_after_the_budget():
    """The harmonic oscillator to t1 = 1e7 needs ~2e7 steps: the pace check refuses it after
    a few thousand steps, far below the budget."""
    problem = Problem(OSCILLATOR, [1.0, 0.0], {}, 0.0, 1e7, FinalLoss("x"))
    with pytest.raises(SolverFailedError, match=r"far more than the step budget of 200000 \(max_steps\)") as info:
        forward(problem)
    steps = int(str(info.value).split(" steps (state")[0].split("after ")[-1])
    assert steps < 200_000 // 10
    assert "the problem is stiff" not in str(info.value)  # |lambda| = 1: not stiff


def test_time_limit_stops_a_solve_where_it_stands():
    problem = Problem(OSCILLATOR, [1.0, 0.0], {}, 0.0, 1e5, FinalLoss("x"))
    with limits(time_limit=0.2, max_steps=10**9), pytest.raises(SolverFailedError) as info:
        forward(problem)
    message = str(info.value)
    assert "the time limit of 0.2 s (time_limit) is reached" in message
    assert "adjoint_sym.limits(time_limit=...)" in message and "--time-limit" in message


def test_progress_is_reported_during_a_long_solve(monkeypatch):
    import adjoint_sym.numeric.solve as solve_module

    monkeypatch.setattr(solve_module, "PROGRESS_EVERY", 0.0)
    lines: list[str] = []
    problem = Problem(OSCILLATOR, [1.0, 0.0], {}, 0.0, 200.0, FinalLoss("x"))
    with reporting(lines.append):
        forward(problem)
    assert lines and all(line.startswith("forward solve (DOP853): t = ") and " of [0, 200]" in line for line in lines)
    forward(problem)  # and without a reporter, nothing is collected
    assert len(lines) == len(set(lines))


def test_domain_error_at_the_start_does_not_blame_a_parameter():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["log(k*x)"])
    problem = Problem(system, [0.0], {"k": 2.0}, 0.0, 1.0, FinalLoss("x"))
    with pytest.raises(SolverFailedError) as info:
        forward(problem)
    message = str(info.value)
    assert "the right-hand side is not finite at the start, t = 0 (state [0.]): f[x] = -inf" in message
    assert "change h0 or t0, or the model" in message
    assert "param" not in message and "blow up" not in message


def test_python_float_division_by_zero_is_a_domain_error():
    """t is a Python float in the kernels: 0.0**-0.5 raises instead of giving inf."""
    system = ODESystem.from_strings(["x"], [], "t", ["t**(-0.5)"])
    with pytest.raises(SolverFailedError, match=r"not finite at the start, t = 0 .*ZeroDivisionError"):
        forward(Problem(system, [1.0], {}, 0.0, 1.0, FinalLoss("x")))


def test_sqrt_of_a_state_crossing_zero_is_not_a_blow_up():
    """x' = -sqrt(x) reaches 0 at t = 2 (x(0) = 1): the solver steps past it into sqrt(-...)."""
    system = ODESystem.from_strings(["x"], [], "t", ["-sqrt(x)"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(SolverFailedError) as info:
            forward(Problem(system, [1.0], {}, 0.0, 3.0, FinalLoss("x")))
    message = str(info.value)
    assert "f[x] = nan" in message and "an expression left its domain" in message
    assert "grows without bound" not in message and "blow up" not in message
    assert abs(info.value.t - 2.0) < 1e-2  # the exact extinction time


def test_a_jacobian_that_is_not_finite_stops_an_implicit_solver_with_where():
    """sqrt(x) at x = 0 is finite, its derivative is not: BDF cannot factorise the Jacobian."""
    system = ODESystem.from_strings(["x"], [], "t", ["sqrt(x) - 1"])
    with pytest.raises(SolverFailedError) as info:
        forward(Problem(system, [0.0], {}, 0.0, 1.0, FinalLoss("x")), solver="BDF")
    message = str(info.value)
    assert "forward solve (BDF): the Jacobian df/dh is not finite at t = 0" in message
    assert "use an explicit solver" in message


def test_lsoda_zero_length_step_is_no_traceback():
    """On Verwer's POLLU chemistry (20 species) LSODA takes a zero-length first step in the
    adjoint's quadrature segment; solve_ivp then raised "ts must be strictly increasing".
    The gradient now comes out, and agrees with forward sensitivities."""
    problem = _pollu_problem()
    adjoint = gradient(problem, "adjoint", solver="LSODA", rtol=1e-6, atol=1e-12)
    forward_g = gradient(problem, "forward", solver="LSODA", rtol=1e-6, atol=1e-12)
    # both at rtol 1e-6 on a stiff problem whose sensitivities span many decades: compare
    # the largest entries, 1e-3 relative is ~1000 rtol of slack for two independent routes
    big = [name for name, value in forward_g.dparams.items() if abs(value) > 1e-3]
    assert big
    for name in big:
        np.testing.assert_allclose(adjoint.dparams[name], forward_g.dparams[name], rtol=1e-3, err_msg=name)


def test_api_tolerances_are_validated_like_the_spec():
    problem = Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x"))
    with pytest.raises(InvalidModelError, match=r"rtol: a tolerance must lie in \(0, 1\), got -1.0"):
        gradient(problem, rtol=-1)
    with pytest.raises(InvalidModelError, match=r"atol must be a number, got str '1e-9'"):
        gradient(problem, atol="1e-9")


def _pollu_problem() -> Problem:
    k = [.35, 26.6, 1.23e4, 8.6e-4, 8.2e-4, 1.5e4, 1.3e-4, 2.4e4, 1.65e4, 9e3, 2.2e-2, 1.2e4, 1.88, 1.63e4, 4.8e6,
         3.5e-4, 1.75e-2, 1e8, 4.44e11, 1.24e3, 2.1, 5.78, 4.74e-2, 1.78e3, 3.12]  # fmt: skip
    r = ["k1*y1", "k2*y2*y4", "k3*y5*y2", "k4*y7", "k5*y7", "k6*y7*y6", "k7*y9", "k8*y9*y6", "k9*y11*y2",
         "k10*y11*y1", "k11*y13", "k12*y10*y2", "k13*y14", "k14*y1*y6", "k15*y3", "k16*y4", "k17*y4", "k18*y16",
         "k19*y16", "k20*y17*y6", "k21*y19", "k22*y19", "k23*y1*y4", "k24*y19*y1", "k25*y20"]  # fmt: skip
    balance = [
        "-1-10-14-23-24+2+3+9+11+12+22+25",
        "-2-3-9-12+1+21",
        "-15+1+17+19+22",
        "-2-16-17-23+15",
        "-3+4+4+6+7+13+20",
        "-6-8-14-20+3+18+18",
        "-4-5-6+13",
        "+4+5+6+7",
        "-7-8",
        "-12+7+9",
        "-9-10+8+11",
        "+9",
        "-11+10",
        "-13+12",
        "+14",
        "-18-19+16",
        "-20",
        "+20",
        "-21-22-24+23+25",
        "-25+24",
    ]  # fmt: skip (Hairer & Wanner's test set: reaction numbers per species)
    rhs = ["".join(f"{term[0]}({r[int(term[1:]) - 1]})" for term in re.findall(r"[+-]\d+", b)) for b in balance]
    system = ODESystem.from_strings([f"y{i}" for i in range(1, 21)], [f"k{i}" for i in range(1, 26)], "t", rhs)
    h0 = np.zeros(20)
    h0[[1, 3, 6, 7, 8, 16]] = [0.2, 0.04, 0.1, 0.3, 0.01, 0.007]
    return Problem(system, h0, dict(zip(system.param_names, k)), 0.0, 60.0, FinalLoss("y4"))


def test_an_error_inside_scipy_is_a_solver_failure_with_a_remedy():
    def fun(t, y):  # a ValueError from deep inside a step, as scipy's LU or mesh checks raise
        if t > 0.5:
            raise ValueError("array must not contain infs or NaNs")
        return -y

    for solver, remedy in (("BDF", "try another solver (RK23, RK45, DOP853, Radau, LSODA)"), ("LSODA", "try")):
        with pytest.raises(SolverFailedError) as info:
            integrate(fun, (0.0, 10.0), np.ones(1), solver=solver, rtol=1e-6, atol=1e-9)
        message = str(info.value)
        assert f"forward solve ({solver}) stopped at t = " in message
        assert f"scipy's {solver} raised ValueError: array must not contain infs or NaNs" in message
        assert remedy in message
    assert "try solver='BDF' or 'Radau'" in message  # LSODA's remedy


def test_a_stalled_solve_is_stopped_not_run_to_the_budget():
    """LSODA at the singularity of x' = x**2 takes steps below the resolution of t: the
    solve stalls at t = 1 and used to run all 200,000 steps of the budget."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(SolverFailedError) as info:
            forward(Problem(BLOW_UP, [1.0], {}, 0.0, 2.0, FinalLoss("x")), solver="LSODA")
    message = str(info.value)
    assert "the solution grows without bound" in message and "200000" not in message


def test_the_spectrum_of_a_wide_system_is_estimated_without_a_dense_jacobian():
    from adjoint_sym.numeric.diagnose import spectral_radius

    rates = np.arange(1.0, 151.0)  # eigenvalues -1 ... -150: the radius is 150

    def fun(t, y):
        return -rates * y

    # power iteration, 30 products: converges from below at the rate 149/150 per step, so
    # within a factor 2 of 150, which is what a stiffness diagnosis needs (an order of magnitude)
    rho = spectral_radius(fun, None, 0.0, np.ones(150))
    assert 75.0 < rho <= 150.0 + 1e-6
    J = np.diag(-np.arange(1.0, 501.0))
    assert abs(spectral_radius(fun, lambda t, y: J, 0.0, np.ones(500)) - 500.0) < 50.0
    assert spectral_radius(fun, lambda t, y: J * np.nan, 0.0, np.ones(500)) is None


def test_many_non_finite_entries_are_summarised():
    system = ODESystem.from_strings([f"x{i}" for i in range(6)], [], "t", [f"log(x{i})" for i in range(6)])
    with pytest.raises(SolverFailedError) as info:
        forward(Problem(system, np.zeros(6), {}, 0.0, 1.0, FinalLoss("x0")))
    assert "f[x0] = -inf, f[x1] = -inf, f[x2] = -inf, f[x3] = -inf and 2 more" in str(info.value)


@pytest.mark.parametrize(
    ("solver", "remedy"),
    [
        ("RK45", "the step size collapsed: the solution may blow up in finite time or have a kink or jump here"),
        ("BDF", "loosen rtol/atol or shorten the time span (the solution may blow up in finite time)"),
    ],
)
def test_a_step_size_collapse_without_blow_up_or_stiffness(solver, remedy):
    """x' = 1/(1.5 - t): f is singular at t = 1.5 while x grows only like a logarithm, so the
    steps collapse at a moderate state, with no eigenvalue to blame (df/dx = 0)."""
    system = ODESystem.from_strings(["x"], [], "t", ["1/(1.5 - t)"])
    with pytest.raises(SolverFailedError) as info:
        forward(Problem(system, [0.0], {}, 0.0, 2.0, FinalLoss("x")), solver=solver)
    message = str(info.value)
    assert f"forward solve ({solver}) stopped at t = 1.5 of [0, 2]" in message
    assert "Required step size is less than spacing between numbers" in message and remedy in message
    assert "stiff" not in message and "grows without bound" not in message


# -- the guard: off the hot path, back on for the diagnosis of a failure ------------------------
def count_guarded_calls(monkeypatch) -> list:
    """Count the evaluations that pass through the non-finite guard."""
    import adjoint_sym.numeric.solve as solve_module

    calls, original = [], solve_module.guarded

    def counting(fun, record):
        inner = original(fun, record)

        def rhs(t, y):
            calls.append(t)
            return inner(t, y)

        return rhs

    monkeypatch.setattr(solve_module, "guarded", counting)
    return calls


def test_a_successful_solve_guards_only_its_first_evaluations(monkeypatch):
    calls = count_guarded_calls(monkeypatch)
    res = forward(Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 10.0, FinalLoss("x")), solver="DOP853")
    # DOP853 evaluates f(t0, h0) and one trial point to pick its first step; every later
    # evaluation (hundreds here) goes to the kernel directly.
    assert len(calls) == 2 < res.nfev


def test_a_failed_solve_is_replayed_guarded_with_the_same_diagnosis(monkeypatch):
    """The sqrt case above: its diagnosis needs the NaN evaluation that only the guard sees."""
    calls = count_guarded_calls(monkeypatch)
    system = ODESystem.from_strings(["x"], [], "t", ["-sqrt(x)"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(SolverFailedError) as info:
            forward(Problem(system, [1.0], {}, 0.0, 3.0, FinalLoss("x")))
    assert "f[x] = nan" in str(info.value) and abs(info.value.t - 2.0) < 1e-2
    assert len(calls) > 10  # the replay evaluated every stage through the guard


def test_a_spent_step_budget_is_not_replayed(monkeypatch):
    """A budget is not a value gone non-finite: the guarded replay would only repeat the same
    steps and double the cost of every over-budget solve (its message needs no guard)."""
    from adjoint_sym import limits

    calls = count_guarded_calls(monkeypatch)
    with limits(max_steps=20), pytest.raises(SolverFailedError, match=r"step budget of 20 steps"):
        forward(Problem(DECAY, [1.0], {"k": 1.0}, 0.0, 1000.0, FinalLoss("x")), solver="DOP853")
    assert len(calls) == 2  # only the first, guarded evaluations: no replay through the guard
