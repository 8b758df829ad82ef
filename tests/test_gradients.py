"""Adjoint gradients against closed forms, for every adjoint variant and several solvers.

Every exact gradient here comes from a route that shares nothing with the adjoint code:
a hand-derived formula, SymPy's ``diff`` of the closed-form solution, or the matrix
exponential and its Frechet derivative (``scipy.linalg.expm_frechet``).

Tolerances.  ``solve_ivp`` keeps each step's local error below ``atol + rtol*|y|``; the
global error of one solve is then a modest multiple of ``rtol`` (the local errors add up
over the steps, damped or amplified by the flow), and a gradient needs a forward and a
backward solve.  So we assert ``error <= C * G * rtol`` with ``G`` the problem's growth
factor (how much the flow or its adjoint can magnify an early error; 1 for the
contracting problems below, stated per problem otherwise) and ``C = 100``: explicit
Runge-Kutta methods stay within a few ``rtol``, but the variable-order multistep methods
(BDF, LSODA) are known to be less tolerance-proportional (tens of ``rtol`` on the
exponential decay).  ``atol`` is kept at ``1e-3 * rtol`` so that the relative tolerance,
not the absolute one, controls the error of these O(1) states.  At two tolerances
``1e-6`` and ``1e-10`` we also assert that the tighter solve is more accurate, which a
wrong adjoint (an error independent of the tolerance) cannot satisfy.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.linalg
import sympy as sp

from adjoint_sym import CallableLoss, FinalLoss, ObservationLoss, ODESystem, Problem, gradient
from adjoint_sym.adjoint.kernels import adjoint_kernels
from adjoint_sym.builders import linear_system, two_layer
from adjoint_sym.numeric.compile import Kernel

METHODS = ("interpolating", "backsolve", "quadrature", "adjoint")
TOLERANCES = (1e-6, 1e-10)
C = 100  # see the module docstring


# -- comparing a Gradient with an exact one ------------------------------------------------
def components(g) -> dict[str, float]:
    """Every scalar derivative of ``g`` by name (``dL/dh0[0]``, ``dL/dA[1,2]``, ``dL/dt_obs[3]``...)."""
    out = g.quantities()  # states named by index, as the exact dictionaries use
    out.setdefault("dL/dt1", g.dt1)  # None for observation losses, and compared as such
    return out


def gradient_error(g, exact: dict[str, float | None]) -> float:
    """The largest relative error of ``g`` against ``exact``, component by component.

    Each component's error is relative to ``|exact| + 1e-3 * max|exact|`` so that a
    derivative that is (nearly) zero is compared on the gradient's scale.
    """
    got = components(g)
    assert set(got) == set(exact), f"components {sorted(got)} != expected {sorted(exact)}"
    for name in ("dL/dt1",):
        assert (got[name] is None) == (exact[name] is None), f"{name}: got {got[name]}, expected {exact[name]}"
    values = {k: v for k, v in exact.items() if v is not None}
    scale = 1e-3 * max(abs(v) for v in values.values())
    return max(abs(got[k] - v) / (abs(v) + scale) for k, v in values.items())


def assert_gradient(g, exact: dict, bound: float) -> float:
    """Assert every component within ``bound`` (relative); list each failing one."""
    err = gradient_error(g, exact)
    if err > bound:
        got = components(g)
        scale = 1e-3 * max(abs(v) for v in exact.values() if v is not None)
        lines = [
            f"  {k}: got {got[k]!r}, exact {v!r}, relative error {abs(got[k] - v) / (abs(v) + scale):.3g}"
            for k, v in exact.items()
            if v is not None and abs(got[k] - v) / (abs(v) + scale) > bound
        ]
        raise AssertionError(f"{g.method}: relative error {err:.3g} > {bound:.3g}\n" + "\n".join(lines))
    return err


# -- closed-form problems ------------------------------------------------------------------
@dataclass
class Case:
    """A problem, its exact gradient, and its growth factor ``G`` (see the module docstring)."""

    problem: Callable[[], Problem]
    exact: Callable[[], dict]
    growth: float = 1.0


def sympy_gradient(solution, x0, params, t0, times, loss, final: bool, values: dict) -> dict:
    """Exact derivatives of ``L = sum_i loss(i, x(t_i), t_i)`` by ``sympy.diff`` of the closed form.

    ``solution(t)`` is the closed-form ``x(t)`` in the symbols ``x0``, ``params`` and
    ``t0`` (``h0`` held fixed at ``t0``, exactly the semantics of ``dL/dt0``).
    """
    taus = sp.symbols(f"tau0:{len(times)}")
    L = sp.Add(*[loss(i, solution(tau), tau) for i, tau in enumerate(taus)])
    subs = {**values, **dict(zip(taus, times))}
    out = {"dL/dh0[0]": float(sp.diff(L, x0).subs(subs))}
    for p in params:
        out[f"dL/d{p}"] = float(sp.diff(L, p).subs(subs))
    out["dL/dt0"] = float(sp.diff(L, t0).subs(subs))
    if final:
        out["dL/dt1"] = float(sp.diff(L, taus[0]).subs(subs))
    else:
        out["dL/dt1"] = None
        out.update({f"dL/dt_obs[{i}]": float(sp.diff(L, tau).subs(subs)) for i, tau in enumerate(taus)})
    return out


X0, K, R, KK, T0, TT = sp.symbols("x0 k r K t0 T")
DECAY = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])


def decay_solution(t):
    return X0 * sp.exp(-K * (t - T0))


def decay_problem(loss, x0=1.3, k=0.7, t0=0.2, t1=2.0) -> Problem:
    return Problem(DECAY, [x0], {"k": k}, t0, t1, loss)


def decay_exact_by_hand(x0=1.3, k=0.7, t0=0.2, t1=2.0) -> dict:
    """``L = x(T)^2`` with ``x(T) = x0 exp(-k (T - t0))``: the issue's formulas."""
    tau = t1 - t0
    xT = x0 * np.exp(-k * tau)
    return {
        "dL/dh0[0]": 2 * x0 * np.exp(-2 * k * tau),
        "dL/dk": -2 * tau * x0**2 * np.exp(-2 * k * tau),
        "dL/dt1": -2 * k * xT**2,
        "dL/dt0": 2 * k * xT**2,
    }


LOGISTIC = ODESystem.from_strings(["x"], ["r", "K"], "t", ["r*x*(1 - x/K)"])
LOGISTIC_VALUES = {X0: 0.5, R: 1.2, KK: 3.0, T0: 0.1}


def logistic_solution(t):
    return KK * X0 / (X0 + (KK - X0) * sp.exp(-R * (t - T0)))


NONAUTONOMOUS = ODESystem.from_strings(["x"], ["k"], "t", ["-k*t*x"])
NONAUTONOMOUS_VALUES = {X0: 1.1, K: 0.8, T0: 0.3}


def nonautonomous_solution(t):
    return X0 * sp.exp(-K * (t**2 - T0**2) / 2)


OBS_TIMES = (0.5, 0.9, 1.4, 2.0)
OBS_TARGETS = ((1.0,), (0.6,), (0.5,), (0.2,))
DECAY_VALUES = {X0: 1.3, K: 0.7, T0: 0.2}


def sse(i, x, t):
    return (x - OBS_TARGETS[i][0]) ** 2


def decay_sympy(loss, times, final, **values) -> dict:
    subs = {**DECAY_VALUES, **{sp.Symbol(k): v for k, v in values.items()}}
    return sympy_gradient(decay_solution, X0, [K], T0, times, loss, final, subs)


# The linear system h' = A h, L = |h(T)|^2, exact through expm and its Frechet derivative.
LIN_N = 3
LIN_A = np.array([[-0.4, 0.9, 0.1], [-0.8, -0.3, 0.2], [0.3, -0.1, -0.5]])
LIN_H0 = np.array([1.0, -0.5, 0.7])
LIN_T0, LIN_T1 = 0.3, 1.8


def linear_problem() -> Problem:
    loss = FinalLoss(" + ".join(f"h[{i}]**2" for i in range(LIN_N)))
    return Problem(linear_system(LIN_N), LIN_H0, {"A": LIN_A}, LIN_T0, LIN_T1, loss)


def linear_exact() -> dict:
    tau = LIN_T1 - LIN_T0
    E = scipy.linalg.expm(LIN_A * tau)
    hT = E @ LIN_H0
    out = {f"dL/dh0[{i}]": v for i, v in enumerate(2 * E.T @ hT)}
    for i in range(LIN_N):
        for j in range(LIN_N):
            direction = np.zeros((LIN_N, LIN_N))
            direction[i, j] = tau  # d(A tau)/dA_ij
            dE = scipy.linalg.expm_frechet(LIN_A * tau, direction, compute_expm=False)
            out[f"dL/dA[{i},{j}]"] = 2 * hT @ dE @ LIN_H0
    out["dL/dt1"] = 2 * hT @ LIN_A @ hT
    out["dL/dt0"] = -out["dL/dt1"]  # h(T) depends on T - t0 only
    return out


def sse_value(states, theta):
    return float(np.sum((states - np.asarray(OBS_TARGETS)) ** 2))


def sse_gradient(states, theta):
    return 2 * (states - np.asarray(OBS_TARGETS)), np.zeros(len(theta))


CASES = {
    "decay": Case(lambda: decay_problem(FinalLoss("x**2")), decay_exact_by_hand),
    "decay-backward-in-time": Case(
        lambda: decay_problem(FinalLoss("x**2"), t0=2.0, t1=0.2),
        lambda: decay_exact_by_hand(t0=2.0, t1=0.2),
        # integrating x' = -k x backward grows x by exp(k |T - t0|) = 3.5
        growth=np.exp(0.7 * 1.8),
    ),
    "decay-sympy": Case(
        lambda: decay_problem(FinalLoss("x**2")),
        lambda: decay_sympy(lambda i, x, t: x**2, [2.0], True),
    ),
    "logistic": Case(
        lambda: Problem(LOGISTIC, [0.5], {"r": 1.2, "K": 3.0}, 0.1, 2.5, FinalLoss("x**2")),
        lambda: sympy_gradient(logistic_solution, X0, [R, KK], T0, [2.5], lambda i, x, t: x**2, True, LOGISTIC_VALUES),
        # the logistic flow expands small perturbations by at most K/x0 = 6 on the way up
        growth=6.0,
    ),
    "nonautonomous": Case(
        lambda: Problem(NONAUTONOMOUS, [1.1], {"k": 0.8}, 0.3, 1.7, FinalLoss("x**2")),
        lambda: sympy_gradient(
            nonautonomous_solution, X0, [K], T0, [1.7], lambda i, x, t: x**2, True, NONAUTONOMOUS_VALUES
        ),
    ),
    # |expm(A tau)| <= 1.2 for this A over 1.5 time units: growth factor of order 1
    "linear-system": Case(linear_problem, linear_exact, growth=2.0),
    "observation-loss": Case(
        lambda: decay_problem(ObservationLoss(OBS_TIMES, OBS_TARGETS)),
        lambda: decay_sympy(sse, OBS_TIMES, False),
    ),
    "observation-at-t0": Case(
        lambda: decay_problem(ObservationLoss((0.2, *OBS_TIMES[1:]), OBS_TARGETS)),
        lambda: decay_sympy(sse, (0.2, *OBS_TIMES[1:]), False),
    ),
    "observation-backward-in-time": Case(
        lambda: decay_problem(ObservationLoss((1.5, 1.0, 0.6, 0.2), OBS_TARGETS), t0=2.0, t1=0.2),
        lambda: decay_sympy(sse, (1.5, 1.0, 0.6, 0.2), False, t0=2.0),
        growth=np.exp(0.7 * 1.8),
    ),
    "explicit-parameter": Case(
        lambda: decay_problem(FinalLoss("x**2 + k*x")),
        lambda: decay_sympy(lambda i, x, t: x**2 + K * x, [2.0], True),
    ),
    "explicit-time": Case(
        lambda: decay_problem(FinalLoss("t*x**2")),
        lambda: decay_sympy(lambda i, x, t: t * x**2, [2.0], True),
    ),
    "observation-expression-with-time": Case(
        lambda: decay_problem(ObservationLoss(OBS_TIMES, expr="sin(t)*x + k*x**2")),
        lambda: decay_sympy(lambda i, x, t: sp.sin(t) * x + K * x**2, OBS_TIMES, False),
    ),
    "callable-final": Case(
        lambda: decay_problem(
            CallableLoss(lambda s, th: float(s[-1, 0] ** 2), lambda s, th: (2 * s, np.zeros(len(th))))
        ),
        decay_exact_by_hand,
    ),
    "callable-observations": Case(
        lambda: decay_problem(CallableLoss(sse_value, sse_gradient, times=OBS_TIMES)),
        lambda: decay_sympy(sse, OBS_TIMES, False),
    ),
}

# Every case with the explicit solvers; one implicit solver per case (all three on the decay).
IMPLICIT_FOR = {
    "decay": ("LSODA", "BDF", "Radau"),
    "logistic": ("Radau",),
    "nonautonomous": ("BDF",),
    "linear-system": ("LSODA",),
    "observation-loss": ("LSODA", "Radau"),
    "observation-backward-in-time": ("BDF",),
    "explicit-time": ("Radau",),
    "callable-observations": ("BDF",),
}
PARAMS = [
    pytest.param(case, method, solver, id=f"{case}-{method}-{solver}")
    for case in CASES
    for solver in ("DOP853", "RK45", *IMPLICIT_FOR.get(case, ()))
    for method in METHODS
]


@pytest.mark.parametrize(("case", "method", "solver"), PARAMS)
def test_matches_closed_form_and_error_shrinks_with_tolerance(case, method, solver):
    c = CASES[case]
    problem, exact = c.problem(), c.exact()
    errors = []
    for rtol in TOLERANCES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no drift warning on these well-conditioned problems
            g = gradient(problem, method, solver=solver, rtol=rtol, atol=1e-3 * rtol)
        errors.append(assert_gradient(g, exact, C * c.growth * rtol))
    assert errors[1] < errors[0], f"error did not shrink with the tolerance: {errors}"


@pytest.mark.parametrize("case", ["explicit-time", "observation-expression-with-time"])
@pytest.mark.parametrize("method", METHODS)
def test_explicit_time_dependence_except_dt0(case, method):
    """The components the dL/dt0 bug above leaves alone: dL/dh0, dL/dk, dL/dt1 or dL/dt_i."""
    c = CASES[case]
    exact = c.exact()
    exact["dL/dt0"] = None
    rtol = 1e-10
    g = gradient(c.problem(), method, rtol=rtol, atol=1e-3 * rtol)
    got = components(g)
    for name, value in exact.items():
        if value is not None:
            assert got[name] == pytest.approx(value, rel=C * rtol), name


def test_exact_formulas_agree_with_sympy():
    """The two exact routes for the decay (hand formula, sympy.diff) agree: the zoo is right."""
    by_hand, by_sympy = decay_exact_by_hand(), decay_sympy(lambda i, x, t: x**2, [2.0], True)
    for name, value in by_hand.items():
        assert by_sympy[name] == pytest.approx(value, rel=1e-14), name


@pytest.mark.parametrize("method", METHODS)
def test_zero_length_span_is_exact(method):
    """``t1 == t0``: no solve at all, ``h(t1) = h0``: L = x0^2 exactly."""
    x0, k = 1.3, 0.7
    g = gradient(decay_problem(FinalLoss("x**2"), t0=0.5, t1=0.5), method)
    assert g.loss == x0**2
    assert g.dh0[0] == 2 * x0
    assert g.dparams["k"] == 0.0
    assert g.dt1 == pytest.approx(-2 * k * x0**2, rel=1e-15)
    assert g.dt0 == pytest.approx(2 * k * x0**2, rel=1e-15)


# -- the identity dL/dt0 = -a(t0) . f(h0, t0) ---------------------------------------------
@pytest.mark.parametrize(
    ("system", "h0", "params", "t0", "t1"),
    [
        (
            ODESystem.from_strings(["x", "y"], ["a", "b"], "t", ["a*x - x*y", "x*y - b*y"]),
            [1.0, 0.5],
            [1.5, 1.0],
            0.0,
            3.0,
        ),
        (NONAUTONOMOUS, [1.1], [0.8], 0.3, 1.7),
        (ODESystem.from_strings(["x"], ["w"], "t", ["sin(w*t) - x"]), [0.4], [2.0], -1.0, 2.0),
    ],
    ids=["autonomous", "nonautonomous", "forced"],
)
@pytest.mark.parametrize("method", ["interpolating", "backsolve", "quadrature"])
def test_dt0_is_minus_adjoint_dot_rhs_at_t0(system, h0, params, t0, t1, method):
    n = system.n
    loss = FinalLoss(" + ".join(f"{s}**2" for s in system.state_names))
    problem = Problem(system, h0, params, t0, t1, loss)
    rtol = 1e-10
    g = gradient(problem, method, rtol=rtol, atol=1e-3 * rtol)
    f0 = problem.kernels.f(t0, problem.h0, problem.theta)
    expected = -g.dh0 @ f0
    # dt0 and a(t0) come out of the same backward solve through different components
    # (a_t accumulates -a^T f_t, a follows -a^T f_h): both carry the solve's global error.
    scale = np.abs(g.dh0) @ np.abs(f0)
    assert abs(g.dt0 - expected) <= C * rtol * scale, (g.dt0, expected, n)


# -- a matrix-level neural ODE: the variants agree with each other -------------------------
def spiral_problem() -> Problem:
    """``W2 tanh(W1 h^3 + b1) + b2`` with ``W2 W1`` close to the spiral matrix of Chen et al."""
    rng = np.random.default_rng(0)
    spiral = np.array([[-0.1, 2.0], [-2.0, -0.1]])
    W1 = 0.3 * rng.normal(size=(8, 2))
    W2 = spiral @ np.linalg.pinv(W1)
    times = np.linspace(0.5, 5.0, 10)
    targets = np.stack([2 * np.cos(2 * times), -2 * np.sin(2 * times)], axis=1) * np.exp(-0.1 * times)[:, None]
    params = {"W1": W1, "b1": np.zeros((8, 1)), "W2": W2, "b2": np.zeros((2, 1))}
    return Problem(two_layer(2, 8, input_power=3), [2.0, 0.0], params, 0.0, 5.0, ObservationLoss(times, targets))


def flat(g) -> np.ndarray:
    return np.concatenate([g.dh0, g.dtheta, [g.dt0], g.dtimes])


@pytest.mark.parametrize("rtol", [1e-6, 1e-9])
def test_spiral_variants_agree(rtol):
    problem = spiral_problem()
    atol = 1e-2 * rtol
    ref = gradient(problem, "interpolating", rtol=rtol, atol=atol)
    quad = gradient(problem, "quadrature", rtol=rtol, atol=atol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # over [0, 5] the backward flow is tame enough: no drift warning
        back = gradient(problem, "backsolve", rtol=rtol, atol=atol)
    norm = np.max(np.abs(flat(ref)))
    # Each variant's error is the global error of its solves, C * rtol relative to the
    # gradient's size (module docstring; the spiral over [0, 5] contracts slowly, G ~ 1).
    # Normwise, because components near zero carry the same absolute error.
    assert np.max(np.abs(flat(quad) - flat(ref))) <= C * rtol * norm
    assert np.max(np.abs(flat(back) - flat(ref))) <= C * rtol * norm
    # backsolve measures how far its re-integrated h strays from the forward one
    drift = back.stats["backsolve_drift"]
    assert np.isfinite(drift) and drift >= 0
    assert ref.dt1 is None and len(ref.dtimes) == 10
    assert ref.loss == quad.loss == back.loss  # the same forward solve


# -- where backsolve fails: a stiff, dissipative system -------------------------------------
STIFF = ODESystem.from_strings(["x", "y"], ["k", "m"], "t", ["-k*x", "x - m*y"])


def stiff_exact(x0=1.0, y0=1.0, k=50.0, m=0.5, t0=0.0, t1=1.0) -> dict:
    """``L = y(T)``, ``y(T) = y0 e^{-m tau} + x0 (e^{-m tau} - e^{-k tau}) / (k - m)``."""
    sx0, sy0, sk, sm, st0, sT = sp.symbols("x0 y0 k m t0 T")
    tau = sT - st0
    L = sy0 * sp.exp(-sm * tau) + sx0 * (sp.exp(-sm * tau) - sp.exp(-sk * tau)) / (sk - sm)
    subs = {sx0: x0, sy0: y0, sk: k, sm: m, st0: t0, sT: t1}
    names = {"dL/dh0[0]": sx0, "dL/dh0[1]": sy0, "dL/dk": sk, "dL/dm": sm, "dL/dt0": st0, "dL/dt1": sT}
    return {name: float(sp.diff(L, s).subs(subs)) for name, s in names.items()}


@pytest.mark.parametrize("solver", ["DOP853", "LSODA"])
def test_backsolve_fails_on_a_dissipative_system_where_the_default_does_not(solver):
    """x' = -50 x decays by e^-50 over [0, 1]: the forward solve keeps x(1) only to atol,
    and backsolve, re-integrating x backward from there, amplifies that error by e^50."""
    problem = Problem(STIFF, [1.0, 1.0], {"k": 50.0, "m": 0.5}, 0.0, 1.0, FinalLoss("y"))
    exact = stiff_exact()
    rtol, atol = 1e-8, 1e-10
    g = gradient(problem, "adjoint", solver=solver, rtol=rtol, atol=atol)
    assert_gradient(g, exact, C * rtol)
    with pytest.warns(RuntimeWarning, match="interpolating"):
        bad = gradient(problem, "backsolve", solver=solver, rtol=rtol, atol=atol)
    assert bad.stats["backsolve_drift"] > 1e6
    assert gradient_error(bad, exact) > 1e3  # dL/dk off by orders of magnitude


def test_backsolve_restarts_h_at_each_observation_time():
    """x' = -k x observed at t = 1, ..., 10: re-integrating x backward amplifies the forward
    error by e^{k dt} per segment.  Restarted from the forward state at each t_i (as
    torchdiffeq and JAX do), backsolve's error stays within one segment's amplification,
    e^{k dt} = e^2, times the tolerance; carried through all ten, it would grow like e^{20}."""
    k, x0, rtol, atol = 2.0, 1.0, 1e-9, 1e-12
    times = np.arange(1.0, 11.0)
    targets = 0.5 * np.exp(-0.3 * times)[:, None]
    decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    problem = Problem(decay, [x0], {"k": k}, 0.0, 10.0, ObservationLoss(times, targets=targets))
    x = x0 * np.exp(-k * times)
    residual = 2 * (x - targets[:, 0])
    exact = {
        "dL/dh0[0]": float(np.sum(residual * np.exp(-k * times))),
        "dL/dk": float(np.sum(residual * -times * x)),
        "dL/dt0": float(np.sum(residual * k * x)),  # h0 imposed at the moved t0: x(t) = x0 e^{-k (t - t0)}
        "dL/dt1": None,
        **{f"dL/dt_obs[{i}]": float(residual[i] * -k * x[i]) for i in range(len(times))},
    }
    g = gradient(problem, "backsolve", rtol=rtol, atol=atol)
    assert_gradient(g, exact, C * np.exp(k * 1.0) * rtol)


# -- the checks above can fail: deliberately wrong adjoints are caught ---------------------
def _wrong(kernel: Kernel, mistake: str, n: int, jac_h) -> Kernel:
    """``kernel`` (a VJP with blocks [a^T f_h, a^T f_theta, a^T f_t] along axis 0) with a mistake."""

    def fn(t, h, a, theta):
        out = np.array(kernel.fn(t, h, a, theta))
        if mistake == "flipped sign of a^T f_theta":
            out[n:-1] *= -1
        elif mistake == "dropped a^T f_t":
            out[-1] = 0.0
        elif mistake == "missing transpose":
            out[:n] = jac_h(t, h, theta) @ a  # f_h a instead of a^T f_h
        return out

    return Kernel(kernel.name, fn, kernel.source, kernel.output_size)


def inject(monkeypatch, problem: Problem, mistake: str) -> None:
    """Replace every VJP kernel of the problem's (cached) compiled system by a wrong one."""
    kernels, n = adjoint_kernels(problem.system), problem.system.n
    jac_h = problem.kernels.jac_h.fn
    names = ["vjp"] if problem.system.is_matrix_level else ["vjp", "vjp_batched"]
    for name in names:
        if hasattr(type(kernels), name):
            monkeypatch.setitem(kernels.__dict__, name, _wrong(getattr(kernels, name), mistake, n, jac_h))
    # The interpolating and backsolve variants call fused kernels built on the same VJP:
    # rebuild them around the wrong one.
    wrong_vjp, f = kernels.__dict__["vjp"].fn, kernels.f.fn

    def adjoint_rhs(t, h, y, theta):
        return -wrong_vjp(t, h, y[:n], theta)

    def backsolve_rhs(t, y, theta):
        return np.concatenate([f(t, y[:n], theta), -wrong_vjp(t, y[:n], y[n : 2 * n], theta)])

    monkeypatch.setitem(kernels.__dict__, "adjoint_rhs", Kernel("adjoint_rhs", adjoint_rhs, "", 0))
    monkeypatch.setitem(kernels.__dict__, "backsolve_rhs", Kernel("backsolve_rhs", backsolve_rhs, "", 0))
    if mistake == "missing transpose":  # the quadrature variant integrates a through vjp_h
        wrong = Kernel("vjp_h", lambda t, h, a, theta: jac_h(t, h, theta) @ a, "", n)
        monkeypatch.setitem(kernels.numeric.__dict__, "vjp_h", wrong)


@pytest.mark.parametrize(
    ("case", "mistake"),
    [
        ("decay", "flipped sign of a^T f_theta"),
        ("nonautonomous", "dropped a^T f_t"),
        ("linear-system", "missing transpose"),
    ],
)
@pytest.mark.parametrize("method", ["interpolating", "backsolve", "quadrature"])
def test_a_wrong_adjoint_is_caught(case, mistake, method, monkeypatch):
    c = CASES[case]
    problem, exact = c.problem(), c.exact()
    inject(monkeypatch, problem, mistake)
    rtol = 1e-10
    g = gradient(problem, method, rtol=rtol, atol=1e-3 * rtol)
    with pytest.raises(AssertionError, match="relative error"):
        assert_gradient(g, exact, C * c.growth * rtol)


# -- options and the result object -----------------------------------------------------------
def test_adjoint_tolerances_are_separate_from_the_forward_ones():
    """A loose adjoint solve behind a tight forward one: fewer backward evaluations, a
    larger error, still within C * adjoint_rtol (the backward solve dominates)."""
    c = CASES["logistic"]
    problem, exact = c.problem(), c.exact()
    tight = gradient(problem, "interpolating", rtol=1e-10, atol=1e-13)
    loose = gradient(problem, "interpolating", rtol=1e-10, atol=1e-13, adjoint_rtol=1e-5, adjoint_atol=1e-8)
    assert loose.stats["nfev_forward"] == tight.stats["nfev_forward"]
    assert loose.stats["nfev_backward"] < tight.stats["nfev_backward"]
    assert gradient_error(tight, exact) < gradient_error(loose, exact) <= C * c.growth * 1e-5


def test_result_as_dict_and_markdown():
    import json

    g = gradient(CASES["observation-loss"].problem())
    data = json.loads(json.dumps(g.as_dict()))
    assert data["dL_dt1"] is None and len(data["dL_dtimes"]) == len(OBS_TIMES)
    assert data["method"] == "interpolating" and set(data["dL_dparams"]) == {"k"}
    assert data["dL_dh0"] == [float(g.dh0[0])]
    quantities = g.quantities(["x"])
    assert set(quantities) == {"dL/dh0[x]", "dL/dk", "dL/dt0"} | {f"dL/dt_obs[{i}]" for i in range(len(OBS_TIMES))}
    markdown = g.to_markdown()
    assert "| dL/dk |" in markdown and markdown.startswith("**interpolating**")
    matrix = gradient(linear_problem())
    assert matrix.dparams["A"].shape == (3, 3)
    assert "dL/dA[1,2]" in matrix.quantities()
    np.testing.assert_array_equal(matrix.dtheta, matrix.dparams["A"].reshape(-1))
    assert "A=<(3, 3)>" in repr(matrix)
