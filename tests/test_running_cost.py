"""Running costs ``L = Phi(h(t1)) + int_{t0}^{t1} g dt`` against closed forms, by every route.

Every exact value comes from a route that shares nothing with the code under test: SymPy's
``diff`` of a closed-form solution and its integral (exponential decay, the logistic
equation), or, for a linear system, Van Loan's block matrix exponential for the integral
of a quadratic form, differentiated by the complex step through ``scipy.linalg.expm``
(exact to rounding).

Tolerances, as in ``test_gradients.py``: ``solve_ivp`` keeps each step's local error below
``atol + rtol |y|``, so a forward and a backward solve leave a gradient error of a modest
multiple of ``rtol`` on these contracting or mildly growing problems; we assert
``error <= C * max(rtol, claim)`` with ``C = 100`` and ``claim`` the accuracy a reference
states for itself (``stats["accuracy"]``: the complex step's and the finite differences'
tighter solves, the arbiter's 1e-15).  The running cost's quadrature variable ``q`` rides in
the same solves under the same error control, so it adds no new error term.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import sympy as sp

import adjoint_sym as asym
from adjoint_sym import FinalLoss, IntegralLoss, ObservationLoss, ODESystem, Problem, gradient
from adjoint_sym.builders import linear_system, lotka_volterra
from adjoint_sym.reference import arbiter_gradient

C = 100  # see the module docstring
RTOL = 1e-10
ATOL = 1e-12
ADJOINTS = ("interpolating", "backsolve", "quadrature")
REFERENCES = ("forward", "complex-step", "finite-difference", "backprop")


def relative_errors(g, exact: dict) -> dict[str, float]:
    """Each component's error relative to ``|exact| + 1e-3 max|exact|`` (a vanishing entry on the gradient's scale)."""
    got = {"L": g.loss, **g.quantities()}
    if g.dt1 is not None:
        got["dL/dt1"] = g.dt1
    assert set(exact) <= set(got), f"missing components {sorted(set(exact) - set(got))}"
    floor = 1e-3 * max(abs(v) for v in exact.values())
    return {k: abs(got[k] - v) / (abs(v) + floor) for k, v in exact.items()}


def assert_close(g, exact: dict, bound: float) -> float:
    errors = relative_errors(g, exact)
    bad = {k: e for k, e in errors.items() if e > bound}
    assert not bad, f"{g.method}: " + ", ".join(f"{k} off by {e:.3g} (> {bound:.3g})" for k, e in bad.items())
    return max(errors.values())


def all_routes(problem: Problem, solver: str = "DOP853"):
    """(method, gradient, bound) for every adjoint variant and every reference."""
    for method in (*ADJOINTS, *REFERENCES):
        g = gradient(problem, method, solver=solver, rtol=RTOL, atol=ATOL)
        yield method, g, C * max(RTOL, g.stats.get("accuracy", 0.0))
    g = arbiter_gradient(problem)
    yield "arbiter", g, C * max(1e-13, g.stats["accuracy"])


# -- closed forms ---------------------------------------------------------------------------
def decay_exact(x0, k, t0, t1, point, g_of) -> dict:
    """x' = -k x: L = point(x(t1)) + int g(x, k, t) dt, every derivative by SymPy."""
    X0, K, T0, T1, t = sp.symbols("X0 K T0 T1 t", real=True)
    x = X0 * sp.exp(-K * (t - T0))
    L = point(x.subs(t, T1)) + sp.integrate(g_of(x, K, t), (t, T0, T1))
    at = {X0: x0, K: k, T0: t0, T1: t1}
    value = {"L": L, "dL/dh0[0]": L.diff(X0), "dL/dk": L.diff(K), "dL/dt0": L.diff(T0), "dL/dt1": L.diff(T1)}
    return {name: float(e.subs(at).evalf(30)) for name, e in value.items()}


DECAY_COSTS = {
    "x**2": lambda x, k, t: x**2,
    "k*t*x": lambda x, k, t: k * t * x,  # explicit parameter and time: g_theta and g_t enter
}


@pytest.mark.parametrize("cost", sorted(DECAY_COSTS))
@pytest.mark.parametrize("span", [(0.3, 2.3), (2.0, 0.5)], ids=["forward", "backward"])
def test_decay_every_route_matches_the_closed_form(cost, span):
    t0, t1 = span
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    loss = FinalLoss("0.5*x**2") + IntegralLoss(cost)
    problem = Problem(system, [1.5], {"k": 0.7}, t0, t1, loss)
    exact = decay_exact(1.5, 0.7, t0, t1, lambda x1: x1**2 / 2, DECAY_COSTS[cost])
    for _, g, bound in all_routes(problem):
        assert_close(g, exact, bound)


def test_decay_running_cost_alone_and_its_time_terms():
    # L = int_t0^t1 x^2 dt, h0 held fixed at t0: dL/dt1 = x(t1)^2 and dL/dt0 = -a(t0) f(h0) - x0^2
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    problem = Problem(system, [1.5], {"k": 0.7}, 0.0, 2.0, IntegralLoss("x**2"))
    exact = decay_exact(1.5, 0.7, 0.0, 2.0, lambda x1: 0, DECAY_COSTS["x**2"])
    assert exact["dL/dt1"] == pytest.approx(1.5**2 * np.exp(-2 * 0.7 * 2.0), rel=1e-14)  # g(h(t1))
    for method in ADJOINTS:
        g = gradient(problem, method, rtol=RTOL, atol=ATOL)
        assert_close(g, exact, C * RTOL)
        # dL/dt0 = -a(t0) . f(h0, t0) - g(h0, t0), from the adjoint's own a(t0)
        assert g.dt0 == pytest.approx(-g.dh0[0] * (-0.7 * 1.5) - 1.5**2, rel=C * RTOL)


def test_logistic_every_route_matches_the_closed_form():
    # x' = r x (1 - x/K): int_t0^t1 x dt = K/r log(1 + x0 (e^{r T} - 1)/K), T = t1 - t0
    X0, R, K, T0, T1 = sp.symbols("X0 R K T0 T1", positive=True)
    E = sp.exp(R * (T1 - T0))
    x1 = K * X0 * E / (K + X0 * (E - 1))
    L = x1 + K / R * sp.log(1 + X0 * (E - 1) / K)
    at = {X0: 0.2, R: 1.3, K: 2.0, T0: 0.0, T1: 3.0}
    names = {"L": L, "dL/dh0[0]": L.diff(X0), "dL/dr": L.diff(R), "dL/dK": L.diff(K)}
    names |= {"dL/dt0": L.diff(T0), "dL/dt1": L.diff(T1)}
    exact = {k: float(v.subs(at).evalf(30)) for k, v in names.items()}
    system = ODESystem.from_strings(["x"], ["r", "K"], "t", ["r*x*(1 - x/K)"])
    problem = Problem(system, [0.2], {"r": 1.3, "K": 2.0}, 0.0, 3.0, FinalLoss("x") + IntegralLoss("x"))
    for _, g, bound in all_routes(problem):
        assert_close(g, exact, bound)


def van_loan_loss(A: np.ndarray, h0: np.ndarray, c: np.ndarray, Q: np.ndarray, T: float):
    """``c . h(T) + int_0^T h^T Q h dt`` for ``h' = A h``: the integral is ``h0^T F22^T F12 h0``
    with ``F = expm([[-A^T, Q], [0, A]] T)`` (Van Loan 1978)."""
    n = len(h0)
    M = np.block([[-A.T, Q], [np.zeros((n, n)), A]])
    F = scipy.linalg.expm(M * T)
    gram = F[n:, n:].T @ F[:n, n:]
    return c @ scipy.linalg.expm(A * T) @ h0 + h0 @ gram @ h0


def test_linear_system_matches_the_matrix_exponential():
    A = np.array([[-0.6, 0.9], [-0.4, -0.3]])
    h0, c, T = np.array([1.0, -0.5]), np.array([0.3, 1.1]), 1.7
    Q = np.array([[1.0, 0.25], [0.25, 2.0]])  # g = h^T Q h written out
    system = linear_system(2)
    loss = FinalLoss("0.3*h[0] + 1.1*h[1]") + IntegralLoss("h[0]**2 + 0.5*h[0]*h[1] + 2*h[1]**2")
    problem = Problem(system, h0, {"A": A}, 0.0, T, loss)
    # every input's derivative by the complex step through expm: exact to rounding
    x = np.concatenate([h0, A.ravel()])

    def L(z):
        return van_loan_loss(z[2:].reshape(2, 2), z[:2], c, Q, T)

    step = 1e-30
    d = [np.imag(L(x + 1j * step * e)) / step for e in np.eye(len(x))]
    h1 = scipy.linalg.expm(A * T) @ h0
    dt1 = c @ A @ h1 + h1 @ Q @ h1  # the point loss moves with h(t1), the integral grows by g(h(t1))
    exact = {"L": float(np.real(L(x))), "dL/dh0[0]": d[0], "dL/dh0[1]": d[1]}
    exact |= {f"dL/dA[{i},{j}]": d[2 + 2 * i + j] for i in range(2) for j in range(2)}
    exact |= {"dL/dt1": dt1, "dL/dt0": -dt1}  # autonomous, h0 held fixed: L depends on t1 - t0
    for method in (*ADJOINTS, *REFERENCES):
        g = gradient(problem, method, rtol=RTOL, atol=ATOL)
        assert_close(g, exact, C * max(RTOL, g.stats.get("accuracy", 0.0)))
    for solver in ("Radau", "BDF"):  # the stiff solvers: the Jacobians of [h, q] and of [a, ...]
        assert_close(gradient(problem, "quadrature", solver=solver, rtol=RTOL, atol=ATOL), exact, C * RTOL)


def test_observations_plus_running_cost_closed_form():
    # x' = -k x, L = x(s)^2 + x(t1)^2 + int_0^t1 x^2 dt: dL/dt_N gains g(h(t_N)) = x(t1)^2
    k, x0, s, t1 = 0.5, 1.2, 0.4, 1.5
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    loss = ObservationLoss([s, t1], targets=[[0.0], [0.0]]) + IntegralLoss("x**2")
    problem = Problem(system, [x0], {"k": k}, 0.0, t1, loss)

    def x(t):
        return x0 * np.exp(-k * t)

    integral = x0**2 * (1 - np.exp(-2 * k * t1)) / (2 * k)
    exact = {
        "L": x(s) ** 2 + x(t1) ** 2 + integral,
        "dL/dh0[0]": 2 * (x(s) ** 2 + x(t1) ** 2) / x0 + 2 * integral / x0,
        "dL/dt_obs[0]": -2 * k * x(s) ** 2,
        "dL/dt_obs[1]": -2 * k * x(t1) ** 2 + x(t1) ** 2,
        # moving t0 with x0 fixed delays the whole trajectory and starts the integral later
        "dL/dt0": 2 * k * (x(s) ** 2 + x(t1) ** 2) + 2 * k * integral - x0**2,
    }
    for method in (*ADJOINTS, *REFERENCES):
        g = gradient(problem, method, rtol=RTOL, atol=ATOL)
        assert g.dt1 is None
        assert_close(g, exact, C * max(RTOL, g.stats.get("accuracy", 0.0)))


def test_a_tighter_solve_is_more_accurate():
    # an adjoint whose error does not shrink with the tolerance (a dropped term) cannot pass this
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    problem = Problem(system, [1.5], {"k": 0.7}, 0.0, 2.0, FinalLoss("x") + IntegralLoss("k*t*x"))
    exact = decay_exact(1.5, 0.7, 0.0, 2.0, lambda x1: x1, DECAY_COSTS["k*t*x"])
    for method in ADJOINTS:
        loose = max(relative_errors(gradient(problem, method, rtol=1e-6, atol=1e-9), exact).values())
        tight = max(relative_errors(gradient(problem, method, rtol=1e-10, atol=1e-13), exact).values())
        assert tight < loose / 10 and tight <= C * 1e-10, (method, loose, tight)


def test_matrix_level_network_agrees_with_the_references():
    from adjoint_sym.builders import two_layer

    system = two_layer(2, 3)
    rng = np.random.default_rng(1)
    params = {name: 0.5 * rng.standard_normal(shape) for name, shape in system.param_shapes.items()}
    loss = FinalLoss("h[0]") + IntegralLoss("h[0]**2 + W1[0, 1]*h[1] + t*b1[1]")
    problem = Problem(system, [0.5, -0.2], params, 0.0, 1.0, loss)
    ref = gradient(problem, "complex-step", rtol=RTOL, atol=ATOL)
    exact = {"L": ref.loss, **ref.quantities(), "dL/dt1": ref.dt1}
    for method in (*ADJOINTS, "forward", "backprop"):
        g = gradient(problem, method, rtol=RTOL, atol=ATOL)
        assert_close(g, exact, C * max(RTOL, g.stats.get("accuracy", 0.0)))


# -- the checker, and planted wrong adjoints ------------------------------------------------
def lotka_problem(loss) -> Problem:
    return Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 2.0, loss)


@pytest.mark.parametrize(
    "loss",
    [
        FinalLoss("x**2") + IntegralLoss("a*x*y + t*y**2"),
        ObservationLoss([1.0, 2.0], targets=[[1.0, 1.0], [2.0, 1.0]]) + IntegralLoss("sin(t)*x + c*y"),
        IntegralLoss("x*y"),
    ],
    ids=["final", "observations", "alone"],
)
def test_the_full_checker_passes_every_method(loss):
    problem = lotka_problem(loss)
    report = asym.check(problem, methods=asym.methods())
    assert report.ok, str(report)
    table = str(report)
    times = ["dL/dt1"] if problem.is_final_loss else ["dL/dt_obs[0]", "dL/dt_obs[1]"]
    for name in ("dL/dt0", "dL/dh0[x]", "dL/dc", *times):  # every gradient kind is compared
        assert name in table, name


def test_planted_wrong_running_cost_adjoints_are_caught():
    from adjoint_sym.errors import GradientMismatchError
    from adjoint_sym.strategies import problems, running_cost_losses
    from adjoint_sym.testing import check_gradient_function
    from adjoint_sym.testing.mutants import RUNNING_COST_MUTATIONS, handwritten_adjoint, mutant

    strategy = problems(losses=running_cost_losses)
    check_gradient_function(handwritten_adjoint, strategy=strategy, max_examples=15)
    for mutation in RUNNING_COST_MUTATIONS:
        with pytest.raises(GradientMismatchError, match="disagrees with the reference"):
            check_gradient_function(mutant(mutation), strategy=strategy, max_examples=15, shrink=False)


def test_the_mutants_are_wrong_where_they_should_be():
    # on the decay closed form: dropping -dg/dh breaks dL/dx0 and dL/dk; missing g(t1) breaks dt0, dt1 only
    from adjoint_sym.testing.gradient_function import as_gradient
    from adjoint_sym.testing.mutants import mutant

    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    problem = Problem(system, [1.5], {"k": 0.7}, 0.0, 2.0, IntegralLoss("x**2"))
    exact = decay_exact(1.5, 0.7, 0.0, 2.0, lambda x1: 0, DECAY_COSTS["x**2"])
    dropped = as_gradient(mutant("dropped_cost_h")(problem), problem)
    errors = relative_errors(dropped, exact)
    assert errors["dL/dh0[0]"] > 0.5 and errors["dL/dk"] > 0.5
    missing = as_gradient(mutant("missing_cost_end")(problem), problem)
    errors = relative_errors(missing, exact)
    assert errors["dL/dt1"] > 0.5 and errors["dL/dt0"] > 0.5 and errors["dL/dh0[0]"] < C * 1e-10


def test_the_mutants_are_correct_on_point_losses():
    # the running-cost mutations touch only the running cost: on a point loss they are the adjoint
    from adjoint_sym.testing.mutants import RUNNING_COST_MUTATIONS, handwritten_adjoint, mutant

    problem = lotka_problem(FinalLoss("x**2"))
    right = handwritten_adjoint(problem)
    for mutation in RUNNING_COST_MUTATIONS:
        assert mutant(mutation)(problem)["dt0"] == right["dt0"]


def test_every_adjoint_agrees_with_the_references_on_drawn_running_costs():
    # polynomial, linear and neural systems, forward and backward spans, final and observation
    # points plus a drawn integrand (or the integrand alone): the checker's verdict on each draw
    pytest.importorskip("hypothesis")
    from adjoint_sym.strategies import problems, run_property, running_cost_losses
    from adjoint_sym.verify.checker import assert_gradients_agree

    seen = []

    def agree(problem):
        seen.append(problem.running_cost is not None)
        assert_gradients_agree(problem, methods=(*ADJOINTS, "forward", "complex-step"))

    run_property(agree, problems(losses=running_cost_losses), max_examples=12)
    assert seen and all(seen)
