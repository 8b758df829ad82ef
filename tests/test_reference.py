"""The reference gradients against closed forms, against each other, and for independence.

Closed-form gradients come from SymPy differentiating the known solution of the ODE,
never from the code under test.  Tolerances are in solver units: ``err / (rtol * |ref|)``
against a constant justified where it is used.
"""

import ast
import pathlib

import numpy as np
import pytest
import sympy as sp

from adjoint_sym import CallableLoss, FinalLoss, InvalidModelError, ObservationLoss, ODESystem, Problem
from adjoint_sym.builders import linear_system, lotka_volterra, neural_ode, two_layer
from adjoint_sym.discrete.backprop import complex_step_discrete, make_grids, tableau
from adjoint_sym.reference import REFERENCES
from adjoint_sym.reference.complex_step import non_analytic_functions
from adjoint_sym.reference.finite_difference import input_vector
from adjoint_sym.reference.taylor import gradient_vector, taylor_test
from adjoint_sym.verify.routes import gradient, methods

REFERENCE_DIR = pathlib.Path(__file__).parents[1] / "adjoint_sym" / "reference"

# -- closed forms -----------------------------------------------------------------------


def decay_problem(k=0.7, x0=1.3, t0=0.2, t1=2.0):
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    return Problem(system, [x0], {"k": k}, t0, t1, FinalLoss("x**2"))


def decay_exact(k=0.7, x0=1.3, t0=0.2, t1=2.0):
    """dL/dx0 = 2 x0 e^{-2kT}, dL/dk = -2T x0^2 e^{-2kT}, dL/dt1 = -2k x(T)^2 = -dL/dt0."""
    T = t1 - t0
    xT = x0 * np.exp(-k * T)
    return np.array([2 * x0 * np.exp(-2 * k * T), -2 * T * x0**2 * np.exp(-2 * k * T), 2 * k * xT**2, -2 * k * xT**2])


def logistic_problem():
    system = ODESystem.from_strings(["x"], ["r", "K"], "t", ["r*x*(1 - x/K)"])
    loss = ObservationLoss([0.5, 1.2, 2.0], expr=["(x - 0.4)**2", "(x - 0.9)**2 + t*x", "x**3"])
    return Problem(system, [0.3], {"r": 1.4, "K": 1.7}, 0.1, 2.0, loss)


def logistic_exact(prob):
    """The gradient by SymPy differentiation of the closed-form logistic solution."""
    x0, r, K, t0 = sp.symbols("x0 r K t0")
    ts = sp.symbols("t1:4")

    def x(t):
        e = sp.exp(r * (t - t0))
        return K * x0 * e / (K + x0 * (e - 1))

    exprs = [(x(ts[0]) - sp.Float("0.4")) ** 2, (x(ts[1]) - sp.Float("0.9")) ** 2 + ts[1] * x(ts[1]), x(ts[2]) ** 3]
    L = sum(exprs)
    variables = [x0, r, K, t0, *ts]
    values = dict(zip(variables, [*prob.h0, *prob.theta, prob.t0, *prob.times]))
    return np.array([float(sp.diff(L, v).subs(values)) for v in variables])


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - b) / np.abs(b))


# Each reference against the closed form, with the accuracy it promises.  The constants
# are global-error factors (a solve at rtol carries a few hundred rtol at most on these
# short, contracting problems).
CASES = [
    ("forward", {"rtol": 1e-11, "atol": 1e-13}, 1e-8),  # 1000 rtol: global error of the joint solve
    ("complex-step", {}, 1e-12),  # the target: solves at 1e-13, no cancellation
    ("finite-difference", {}, 1e-7),  # noise 1e-12 / step 7e-4 ~ 1.4e-9, with margin
    ("backprop", {"rtol": 1e-11, "atol": 1e-13}, 1e-8),  # adaptive DOP853 grid at 1e-11
]


@pytest.mark.parametrize(("method", "kw", "bound"), CASES)
def test_reference_matches_exponential_decay(method, kw, bound):
    prob = decay_problem()
    g = gradient(prob, method, **kw)
    got = [g.dh0[0], g.dparams["k"], g.dt0, g.dt1]
    assert rel(got, decay_exact()) < bound, (method, got)
    assert g.method == method


@pytest.mark.parametrize(("method", "kw", "bound"), CASES)
def test_reference_matches_logistic_observation_loss(method, kw, bound):
    prob = logistic_problem()
    g = gradient(prob, method, **kw)
    exact = logistic_exact(prob)
    assert g.dt1 is None and g.dtimes is not None
    assert rel(gradient_vector(prob, g), exact) < bound, method


def test_complex_step_reaches_1e_12_on_a_nonlinear_two_state_system():
    # Lotka-Volterra has no closed form: compare with the forward reference at 1e-13 and
    # with finite differences, then the decay closed form sets the bar.
    prob = decay_problem(k=1.9, x0=0.4, t0=-1.0, t1=1.5)
    g = gradient(prob, "complex-step")
    assert rel([g.dh0[0], g.dparams["k"], g.dt0, g.dt1], decay_exact(1.9, 0.4, -1.0, 1.5)) <= 1e-12


def test_complex_step_agrees_with_forward_on_lotka_volterra():
    prob = Problem(lotka_volterra(), [1.0, 0.8], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.0, FinalLoss("x*y"))
    cs = gradient_vector(prob, gradient(prob, "complex-step"))
    fw = gradient_vector(prob, gradient(prob, "forward", rtol=1e-12, atol=1e-14))
    assert rel(cs, fw) < 1e-9  # the forward solve at 1e-12 is the looser of the two


def test_backward_time_span_is_supported():
    prob = decay_problem(t0=2.0, t1=0.2)  # integrate backward: x(T) = x0 e^{+k 1.8}
    g = gradient(prob, "complex-step")
    k, x0, T = 0.7, 1.3, -1.8
    xT = x0 * np.exp(-k * T)
    assert rel([g.dh0[0], g.dt1], [2 * x0 * np.exp(-2 * k * T), -2 * k * xT**2]) < 1e-12


# -- complex step: where it does not apply ----------------------------------------------


def test_complex_step_refuses_non_analytic_rhs_naming_the_function():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*max(x, 0)"])
    prob = Problem(system, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    with pytest.raises(InvalidModelError, match=r"Max in the right-hand side.*forward"):
        gradient(prob, "complex-step")


def test_complex_step_refuses_non_analytic_loss_naming_the_function():
    prob = Problem(decay_problem().system, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("abs(x)"))
    assert non_analytic_functions(prob) == [("the loss", "Abs")]
    with pytest.raises(InvalidModelError, match="Abs in the loss"):
        gradient(prob, "complex-step")


def test_complex_step_with_implicit_solver_falls_back_and_says_so():
    g = gradient(decay_problem(), "complex-step", solver="BDF")
    assert "DOP853" in g.stats["note"] and "BDF" in g.stats["note"]
    assert rel([g.dh0[0], g.dparams["k"], g.dt0, g.dt1], decay_exact()) < 1e-12


def test_callable_loss_is_complex_stepped_through_the_chain_rule():
    def value(states, theta):
        return float(np.sum(states**2))

    def grad(states, theta):
        return 2 * states, np.zeros(1)

    system = decay_problem().system
    prob = Problem(system, [1.3], {"k": 0.7}, 0.2, 2.0, CallableLoss(value, grad))
    g = gradient(prob, "complex-step")
    assert rel([g.dh0[0], g.dparams["k"], g.dt0, g.dt1], decay_exact()) < 1e-12


# -- backprop: the gradient of the discrete computation ---------------------------------


def nonautonomous_problem():
    system = ODESystem.from_strings(["x", "y"], ["k", "c"], "t", ["-k*x + y*sin(t)", "c*x - y**2"])
    loss = ObservationLoss([0.0, 0.6, 1.4], expr="x**2 + t*y")  # an observation at t0 too
    return Problem(system, [0.9, -0.4], {"k": 0.8, "c": 1.3}, 0.0, 1.4, loss)


@pytest.mark.parametrize("scheme", ["euler", "rk4"])
@pytest.mark.parametrize("steps", [1, 3, 17])
def test_backprop_equals_complex_step_through_the_same_discrete_solver(scheme, steps):
    prob = nonautonomous_problem()
    g = gradient(prob, "backprop", scheme=scheme, steps=steps)
    cs = complex_step_discrete(prob, scheme=scheme, grids=make_grids(prob, tableau(scheme), steps))
    assert g.stats["steps"] >= steps
    # both are exact derivatives of the same arithmetic: they differ by rounding only
    assert rel(gradient_vector(prob, g), cs) <= 1e-12


@pytest.mark.parametrize("scheme", ["RK23", "RK45", "DOP853"])
def test_backprop_through_recorded_adaptive_steps(scheme):
    prob = decay_problem()
    g = gradient(prob, "backprop", scheme=scheme, rtol=1e-6, atol=1e-9)
    grids = make_grids(prob, tableau(scheme), None, rtol=1e-6, atol=1e-9)
    cs = complex_step_discrete(prob, scheme=scheme, grids=grids)
    assert rel(gradient_vector(prob, g), cs) <= 1e-12
    assert rel(gradient_vector(prob, g), decay_exact()) < 1e-3  # 1000 rtol: global error at 1e-6


def test_backprop_converges_to_the_continuous_gradient_at_the_order_of_the_scheme():
    exact = decay_exact()
    errors = [
        rel(gradient_vector(decay_problem(), gradient(decay_problem(), "backprop", scheme="rk4", steps=n)), exact)
        for n in (8, 16, 32)
    ]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 12) & (ratios < 20)), ratios  # 2^4 = 16 for RK4


def test_backprop_of_one_euler_step_is_the_hand_computed_derivative():
    # x1 = x0 (1 - k T): L = x0^2 (1 - k T)^2, dL/dk = -2 T x0^2 (1 - k T)
    g = gradient(decay_problem(), "backprop", scheme="euler", steps=1)
    k, x0, T = 0.7, 1.3, 1.8
    assert g.dparams["k"] == pytest.approx(-2 * T * x0**2 * (1 - k * T), rel=1e-14)
    assert g.dt1 == pytest.approx(-2 * k * x0**2 * (1 - k * T), rel=1e-14)


def test_backprop_messages():
    prob = decay_problem()
    with pytest.raises(InvalidModelError, match="'rk4' has no error estimate to choose steps; pass steps=N"):
        gradient(prob, "backprop", scheme="rk4")
    with pytest.raises(InvalidModelError, match="unknown scheme 'rk5'"):
        gradient(prob, "backprop", scheme="rk5", steps=3)
    with pytest.raises(InvalidModelError, match="steps must be a positive integer"):
        gradient(prob, "backprop", scheme="rk4", steps=0)


def test_backprop_on_a_matrix_level_neural_ode():
    prob = Problem(neural_ode(2, time="input"), [0.5, -0.3], np.linspace(-1, 1, 8), 0.0, 1.0, FinalLoss("h[0]**2"))
    g = gradient(prob, "backprop", scheme="rk4", steps=5)
    cs = complex_step_discrete(prob, scheme="rk4", grids=make_grids(prob, tableau("rk4"), 5))
    assert rel(gradient_vector(prob, g), cs) <= 1e-12


# -- Taylor test ------------------------------------------------------------------------


def test_taylor_test_accepts_a_correct_gradient_at_order_two():
    prob = nonautonomous_problem()
    res = taylor_test(prob, gradient(prob, "forward", rtol=1e-10, atol=1e-12))
    assert res.ok and 1.9 < res.fitted_order < 2.1


def test_taylor_test_rejects_a_wrong_gradient_at_order_one():
    import dataclasses

    prob = nonautonomous_problem()
    good = gradient(prob, "forward", rtol=1e-10, atol=1e-12)
    bad = dataclasses.replace(good, dt0=-good.dt0)  # one flipped sign among 8 entries
    res = taylor_test(prob, bad)
    assert not res.ok and 0.9 < res.fitted_order < 1.2, res


def test_taylor_test_checks_the_direction_shape():
    prob = decay_problem()
    with pytest.raises(ValueError, match="direction must have 4 entries"):
        taylor_test(prob, gradient(prob, "forward"), direction=np.ones(3))


# -- registration and independence ------------------------------------------------------


def test_references_are_registered_without_extra_imports():
    assert set(REFERENCES) == {"forward", "complex-step", "finite-difference"}
    assert set(REFERENCES) | {"backprop"} <= set(methods())
    assert len(input_vector(decay_problem())) == 4


@pytest.mark.parametrize("path", sorted(REFERENCE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_references_never_import_the_adjoint_code(path):
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    forbidden = [m for m in imported if any(part in ("adjoint", "gradients", "methods") for part in m.split("."))]
    assert not forbidden, f"{path.name} imports {forbidden}"


# -- stiff problems and badly scaled parameters -----------------------------------------


@pytest.mark.parametrize("method", ["forward", "finite-difference"])
@pytest.mark.parametrize("solver", ["BDF", "Radau"])
def test_references_with_implicit_solvers(method, solver):
    g = gradient(decay_problem(), method, solver=solver, rtol=1e-10, atol=1e-12)
    # implicit methods of order <= 5: global error up to ~1e3 rtol on this span
    assert rel([g.dh0[0], g.dparams["k"], g.dt0, g.dt1], decay_exact()) < 1e-6


def test_forward_sensitivity_of_a_huge_rate_constant_is_controlled():
    # Robertson's k2 = 3e7: dh/dk2 ~ 1e-13 lies below any sensible atol unless the column is
    # scaled by k2; unscaled, dL/dk2 came out 20% wrong at rtol 1e-6.
    from adjoint_sym.builders import robertson

    prob = Problem(
        robertson(), [1.0, 0.0, 0.0], {"k1": 0.04, "k2": 3e7, "k3": 1e4}, 0.0, 10.0, FinalLoss("y1 + 1e4*y2")
    )
    loose = gradient(prob, "forward", solver="BDF", rtol=1e-6, atol=1e-10)
    tight = gradient(prob, "forward", solver="Radau", rtol=1e-11, atol=1e-16)
    assert loose.stats["steps_forward"] < 2000  # the block Jacobian keeps BDF's steps few
    assert abs(loose.dparams["k2"] / tight.dparams["k2"] - 1) < 1e-4  # 100 rtol


def robertson_problem(loss="y1", t1=40.0):
    from adjoint_sym.builders import robertson

    return Problem(robertson(), [1.0, 0.0, 0.0], {"k1": 0.04, "k2": 3e7, "k3": 1e4}, 0.0, t1, FinalLoss(loss))


def test_sensitivity_jacobian_matches_the_row_major_layout_of_S():
    # The Jacobian handed to the implicit solvers must be d(rhs)/dz for the layout rhs
    # uses (S row-major): I (x) f_h, the column-major order, sent LSODA through 170k steps
    # of failed Newton iterations and left Robertson's dL/dk2 33% off at rtol 1e-8.
    from adjoint_sym.reference.forward import sensitivity_equations

    prob = robertson_problem()
    n, m = 3, 7
    col = np.ones(m)
    col[n : n + 3] = np.maximum(np.abs(prob.theta), 1.0)
    rhs, jac = sensitivity_equations(prob, col)
    rng = np.random.default_rng(1)
    z = np.concatenate([[0.7, 2e-5, 0.3], rng.standard_normal(n * m)])
    J = jac(1.0, z)
    # The exact Jacobian by complex step (the kernels take complex input): no rounding.
    exact = np.stack([rhs(1.0, z + 1e-30j * e).imag / 1e-30 for e in np.eye(z.size)], axis=1)
    # jac's d(dS/dt)/dh column is a central difference with step 1e-7 |h_j|, rounding at
    # ~1e-16 / 1e-7 relative to the column; the column-major order missed by O(1)
    scale = np.abs(exact).max(axis=0, keepdims=True) + 1.0
    assert np.max(np.abs(J - exact) / scale) < 1e-6


def test_forward_sensitivities_under_lsoda_match_central_differences_on_robertson():
    # Regression: LSODA with the column-major block Jacobian returned dL/dk2 = -1.53e-9 for
    # L = y1(40) (BDF forward and every adjoint: -2.288e-9).  The truth here comes from
    # central differences of state-only Radau solves, which share no code with forward.py.
    from scipy.integrate import solve_ivp

    prob = robertson_problem()
    k = prob.kernels

    def loss(theta):
        sol = solve_ivp(
            lambda t, h: k.f.fn(t, h, theta),
            (prob.t0, prob.t1),
            prob.h0,
            method="Radau",
            rtol=1e-11,
            atol=[1e-15, 1e-19, 1e-15],  # y2 stays below 4e-5: its atol sits 1e4 below the others
            jac=lambda t, h: k.jac_h.fn(t, h, theta),
        )
        return sol.y[0, -1]

    d = 1e-4 * prob.theta[1]  # truncation ~ (1e-4)^2 relative, far below the bound
    up, down = prob.theta.copy(), prob.theta.copy()
    up[1] += d
    down[1] -= d
    expected = (loss(up) - loss(down)) / (2 * d)
    g = gradient(prob, "forward", solver="LSODA", rtol=1e-8, atol=1e-12)
    # 1e3 rtol: a stiff solve's global error, plus the difference quotient's own error
    # (rounding ~1e-11 / 1e-4 relative); the bug missed by 0.33
    assert abs(g.dparams["k2"] / expected - 1) < 1e3 * 1e-8
    assert g.stats["steps_forward"] < 5000  # a Jacobian that fits keeps LSODA's steps few (was 169k)


# -- independent by construction: no shared loss gradient, no VJP ------------------------


def _observed_lotka_volterra():
    # A loss with every kind of partial derivative: states, a parameter and the time.
    loss = ObservationLoss([0.4, 0.9, 1.3], expr="x**2 + a*y + t*x*y")
    return Problem(lotka_volterra(), [1.0, 0.8], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.3, loss)


def test_a_planted_error_in_the_shared_loss_gradient_moves_the_adjoint_and_no_reference(monkeypatch):
    from adjoint_sym.numeric.problem import LossValue

    prob = _observed_lotka_volterra()
    tight = {"rtol": 1e-10, "atol": 1e-12}
    routes = ["forward", "complex-step", "finite-difference"]
    clean = {m: gradient_vector(prob, gradient(prob, m, **tight)) for m in [*routes, "adjoint"]}
    original = Problem.evaluate_loss

    def one_percent_off(self, *args, **kwargs):
        v = original(self, *args, **kwargs)
        return LossValue(v.value, 1.01 * v.d_states, 1.01 * v.d_theta, 1.01 * v.d_times)

    monkeypatch.setattr(Problem, "evaluate_loss", one_percent_off)
    for m in routes:  # not one bit moves: the references never read the planted kernel
        assert np.array_equal(gradient_vector(prob, gradient(prob, m, **tight)), clean[m]), m
    planted = gradient_vector(prob, gradient(prob, "adjoint", **tight))
    # The adjoint is linear in the loss's partials: it moves by the planted 1%, 1e8 rtol.
    assert np.max(np.abs(planted - clean["adjoint"])) >= 0.009 * np.max(np.abs(clean["adjoint"]))


def test_references_never_run_the_adjoints_vjp(monkeypatch):
    # At run time, beyond the import graph: every VJP entry point raises, and the
    # references still run, implicit solvers and a matrix-level network included (their
    # Newton Jacobians come from the numeric layer's forward-mode JVP).
    from adjoint_sym.numeric.kernels import CompiledSystem
    from adjoint_sym.numeric.solve import forward

    def forbidden(*args, **kwargs):
        raise AssertionError("a reference ran the adjoint's vector-Jacobian product")

    for name in ("vjp_h", "vjp_blocks", "cotangent"):
        monkeypatch.setattr(CompiledSystem, name, property(forbidden))
    monkeypatch.setattr(CompiledSystem, "jac_h_from_vjp", forbidden)
    monkeypatch.setattr(ODESystem, "vjp", forbidden)
    prob = Problem(neural_ode(2, time="input"), [0.5, -0.3], np.linspace(-1, 1, 8), 0.0, 0.5, FinalLoss("h[0]**2"))
    forward(prob, solver="BDF")
    grads = [
        gradient(prob, "forward", solver="BDF", rtol=1e-10, atol=1e-12),
        gradient(prob, "finite-difference", solver="BDF"),
        gradient(prob, "complex-step"),
    ]
    for g in grads[1:]:  # and they agree: 1e4 rtol of the stiff solves, far inside a wrong term
        assert rel(gradient_vector(prob, g), gradient_vector(prob, grads[0])) < 1e-6, g.method


@pytest.mark.parametrize(
    "system",
    [neural_ode(3), neural_ode(3, time="input"), linear_system(3)]
    + [two_layer(2, 3, activation=a) for a in ("tanh", "sigmoid", "softplus", "swish", "gelu")],
    ids=str,
)
def test_the_numeric_jvp_is_the_entry_wise_jacobian(system):
    from adjoint_sym.numeric.kernels import compiled

    k = compiled(system)
    rng = np.random.default_rng(3)
    h, theta, V = (
        rng.standard_normal(system.n),
        rng.standard_normal(system.n_params),
        rng.standard_normal((system.n, 4)),
    )
    J = k.jac_h(0.3, h, theta)  # SymPy's entry-wise derivative: a separate derivation
    np.testing.assert_allclose(k.jvp_h(0.3, h, V, theta), J @ V, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(k.jvp_h(0.3, h, V[:, 0], theta), J @ V[:, 0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(k.state_jacobian(0.3, h, theta), J, rtol=1e-13, atol=1e-14)


def test_jvp_rules_on_every_matrix_node():
    # Transposes, Hadamard products and powers, explicit matrices, a scalar coefficient
    # depending on a variable, elementwise functions: against the expanded Jacobian.
    from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

    from adjoint_sym.symbolic.jvp import jvp
    from adjoint_sym.symbolic.matrix_calculus import elementwise

    h, v = sp.MatrixSymbol("h", 2, 1), sp.MatrixSymbol("v", 2, 1)
    W = sp.MatrixSymbol("W", 2, 2)
    s = sp.Symbol("s")
    d = sp.Dummy("d")
    explicit = sp.ImmutableMatrix([[h[0, 0] * h[1, 0]], [sp.sin(h[1, 0])]])
    expr = sp.MatAdd(
        sp.MatMul(s * h[0, 0], W, h),
        HadamardProduct(W * h, HadamardPower(h, 3)),
        sp.MatMul(W, sp.Transpose(sp.Transpose(h))),
        elementwise(sp.Lambda(d, sp.tanh(d)), W * h + explicit),
    )
    tangent = jvp(expr, {h: v}).as_explicit()
    flat = sp.ImmutableMatrix([h[0, 0], h[1, 0]])
    expected = expr.as_explicit().jacobian(flat) * sp.ImmutableMatrix([v[0, 0], v[1, 0]])
    rng = np.random.default_rng(0)
    values = {e: float(x) for e, x in zip([*flat, v[0, 0], v[1, 0], *W.as_explicit(), s], rng.standard_normal(9))}
    got = np.array(tangent.subs(values).evalf(), dtype=float)
    want = np.array(expected.subs(values).evalf(), dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert jvp(W * W, {h: v}) == sp.ZeroMatrix(2, 2)  # nothing depends on h


def test_jvp_messages():
    from sympy.matrices.expressions.hadamard import HadamardPower

    from adjoint_sym.errors import UnsupportedExpressionError
    from adjoint_sym.symbolic.jvp import jvp
    from adjoint_sym.symbolic.matrix_calculus import elementwise

    h, v = sp.MatrixSymbol("h", 2, 1), sp.MatrixSymbol("v", 2, 1)
    s, d = sp.Symbol("s"), sp.Dummy("d")
    with pytest.raises(UnsupportedExpressionError, match="non-constant exponent s"):
        jvp(HadamardPower(h, s), {h: v, s: sp.Symbol("ds")})
    with pytest.raises(UnsupportedExpressionError, match="depends on a variable"):
        jvp(elementwise(sp.Lambda(d, s * d), h), {h: v, s: sp.Symbol("ds")})
    with pytest.raises(UnsupportedExpressionError, match="cannot differentiate the matrix node Inverse"):
        jvp(sp.Inverse(sp.MatrixSymbol("W", 2, 2)) * h, {h: v, sp.MatrixSymbol("W", 2, 2): sp.Identity(2)})


# -- the loss's derivatives of the forward reference ---------------------------------------


@pytest.mark.parametrize(
    "loss",
    [
        FinalLoss("k*x**2 + t*x"),
        FinalLoss("abs(x - 0.3) + k*x"),  # non-analytic: SymPy's derivative instead of a complex step
        ObservationLoss([0.5, 1.0], targets=[[0.2], [0.1]]),
        ObservationLoss([0.5, 1.0], expr=["x**3", "exp(k*x) + t"]),
    ],
    ids=repr,
)
def test_forward_differentiates_the_loss_value_itself(loss):
    from adjoint_sym.reference.loss_derivative import loss_partials

    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    prob = Problem(system, [1.3], {"k": 0.7}, 0.0, 1.0, loss)
    states = np.array([[0.9], [0.6]])[: len(prob.times)]
    ours, shared = loss_partials(prob, states), prob.evaluate_loss(states)
    for field in ("value", "d_states", "d_theta", "d_times"):  # two derivations, one answer
        np.testing.assert_allclose(getattr(ours, field), getattr(shared, field), rtol=1e-14, atol=1e-15)


def test_forward_loss_derivative_on_matrix_parameters_and_a_callable_loss():
    from adjoint_sym.reference.loss_derivative import loss_partials, used_parameters

    prob = Problem(
        neural_ode(2, time="input"), [0.5, -0.3], np.linspace(-1, 1, 8), 0.0, 1.0, FinalLoss("h[0]**2*W[0, 1] + b[1]")
    )
    states = np.array([[0.4, 0.1]])
    ours, shared = loss_partials(prob, states), prob.evaluate_loss(states)
    np.testing.assert_allclose(ours.d_theta, shared.d_theta, rtol=1e-14, atol=1e-15)
    assert ours.d_theta[1] == pytest.approx(0.16) and ours.d_theta[5] == 1.0  # dL/dW[0,1] = h0^2, dL/db[1] = 1
    assert used_parameters(prob.system, sp.sympify(0)).size == 0

    def value(s, theta):
        return float(np.sum(s**2))

    callable_prob = Problem(
        decay_problem().system, [1.3], {"k": 0.7}, 0.2, 2.0, CallableLoss(value, lambda s, th: (2 * s, np.zeros(1)))
    )
    out = loss_partials(callable_prob, np.array([[0.5]]))
    assert out.value == 0.25 and out.d_states.tolist() == [[1.0]]


def test_loss_term_refuses_a_callable_loss():
    prob = Problem(
        decay_problem().system,
        [1.3],
        {"k": 0.7},
        0.2,
        2.0,
        CallableLoss(lambda s, th: 0.0, lambda s, th: (s, np.zeros(1))),
    )
    with pytest.raises(InvalidModelError, match=r"CallableLoss has no terms.*loss_value"):
        prob.loss_term(0, 2.0, np.array([1.0]))
