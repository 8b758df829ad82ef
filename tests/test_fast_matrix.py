"""The fast backend's matrix-level path (tapes of BLAS calls, seminorm adjoint) against the default route.

Tolerances.  Three comparisons, as in ``test_fast.py`` (whose ``C`` and ``SAME_SCHEME``
are used here):

* Against ``gradient(problem, "interpolating")`` (SciPy DOP853, every component of
  ``[a, a_theta, a_t]`` under error control): a different integrator, so the two differ
  by the global errors of a forward and a backward solve.  The fast path keeps only
  ``a`` under error control and integrates ``a_theta`` and ``a_t`` with the same
  Runge-Kutta weights on ``a``'s steps (Kidger et al. 2021's seminorm): their integrands
  ``-a^T f_theta`` and ``-a^T f_t`` are smooth functions of ``a`` and ``h`` along the
  same stages, so their quadrature error is of the order of the error of ``a`` itself, a
  modest multiple of ``rtol``.  We allow ``C * G * rtol`` relative to the gradient's
  largest component, ``C = 100`` and ``G`` the problem's error growth (1 for these
  contracting networks, 10 for the expanding cubic spiral, see ``test_fast.py``).
* Against the same scheme written in Python (:class:`SeminormInterpolating`: SciPy's
  own ``RK45`` stepping ``a`` alone, ``a_theta`` and ``a_t`` summed from its stages with
  the default backend's numpy VJP kernels): only round-off differs, so ``SAME_SCHEME *
  rtol``; a wrong coefficient, a missing term or a transposed factor shows at ``rtol``.
* Against closed forms (the linear system, through the Frechet derivative of ``expm``).

``atol = 1e-3 * rtol`` keeps the relative tolerance in control of these O(1) states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import RK45
from scipy.linalg import expm, expm_frechet

pytest.importorskip("numba")

from test_fast import SAME_SCHEME, C, assert_close, spiral_problem

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem
from adjoint_sym.adjoint import fast as fast_module
from adjoint_sym.adjoint.backward import AdjointState, Segments
from adjoint_sym.adjoint.fast import fast_gradient
from adjoint_sym.adjoint.methods import AdjointMethod
from adjoint_sym.adjoint.vjp import SymbolicVJP
from adjoint_sym.builders import linear_system, neural_ode
from adjoint_sym.errors import InvalidModelError, SolverFailedError, UnsupportedExpressionError
from adjoint_sym.symbolic.matrix_calculus import elementwise
from adjoint_sym.verify.routes import gradient

RTOL = 1e-8


class _SeminormSegments(Segments):
    """SciPy's RK45 on ``a`` alone; ``a_theta``, ``a_t`` summed over its accepted stages."""

    def __init__(self, problem: Problem, fwd, rtol: float, atol: float) -> None:
        self.sol, self.theta, self.rtol, self.atol = fwd.sol, problem.theta, rtol, atol
        self.vjp, self.n, self.stats = SymbolicVJP(problem.system), problem.system.n, {}

    def cross(self, start, end, state, h_start):
        if start == end or self.sol is None:
            return state
        sol, theta, vjp, n = self.sol, self.theta, self.vjp, self.n
        rate = lambda t, a: -vjp.state_products(t, sol(t), a, theta)  # noqa: E731
        solver = RK45(rate, start, state.a, end, rtol=self.rtol, atol=self.atol)
        total = np.zeros(len(theta) + 1)
        while solver.status == "running":
            t_old, y_old = solver.t, solver.y.copy()
            solver.step()
            step = solver.t - t_old
            for i in range(len(RK45.B)):  # the accepted step's stages, as RK45 formed them
                t_i, y_i = t_old + RK45.C[i] * step, y_old + step * (RK45.A[i, :i] @ solver.K[:i])
                total -= step * RK45.B[i] * vjp.products(t_i, sol(t_i), y_i, theta)[n:]
        assert solver.status == "finished"
        return AdjointState(solver.y.copy(), state.a_theta + total[:-1], state.a_t + total[-1])


@dataclass(frozen=True)
class SeminormInterpolating(AdjointMethod):
    """The fast matrix path's scheme through the default backend (forward RK45 by ``solve_ivp``)."""

    name: ClassVar[str] = "interpolating"

    def segments(self, problem, fwd, solver, rtol, atol):
        return _SeminormSegments(problem, fwd, rtol, atol)


def check_matrix(problem: Problem, rtol: float = RTOL, growth: float = 1.0):
    atol = 1e-3 * rtol
    got = fast_gradient(problem, rtol=rtol, atol=atol)
    assert got.stats["kernels"] == "matrix" and got.stats["backend"] == "fast"
    dop = gradient(problem, "interpolating", rtol=rtol, atol=atol)
    assert_close(got, dop, C * growth * rtol, "fast (matrix) vs DOP853 interpolating")
    same = gradient(problem, SeminormInterpolating(), solver="RK45", rtol=rtol, atol=atol)
    assert_close(got, same, SAME_SCHEME * rtol, "fast (matrix) vs the same scheme in Python")
    return got


def mlp(n: int, *, time: str = "none", activation: str = "tanh", times=None) -> Problem:
    """``sigma(W h + b)`` (+ time terms), ``W ~ N(0, 1/n)``; ``|h(1)|^2`` or squared errors at ``times``."""
    rng = np.random.default_rng(n)
    system = neural_ode(n, time=time, activation=activation)
    params = {"W": rng.normal(size=(n, n)) / np.sqrt(n), "b": 0.1 * rng.normal(size=(n, 1))}
    if time == "input":
        params["u"] = rng.normal(size=(n, 1))
    elif time == "linear":
        params.update(V=0.5 * rng.normal(size=(n, n)) / np.sqrt(n), c=rng.normal(size=(n, 1)))
    h0 = rng.normal(size=n)
    if times is None:
        h = system.state[0]
        return Problem(system, h0, params, 0.0, 1.0, FinalLoss(sp.Add(*[h[i, 0] ** 2 for i in range(n)])))
    targets = rng.normal(size=(len(times), n))
    return Problem(system, h0, params, 0.0, times[-1], ObservationLoss(times, targets))


@pytest.mark.parametrize("n", [2, 8, 32])
def test_tanh_mlp_final_loss(n):
    g = check_matrix(mlp(n))
    assert g.dparams["W"].shape == (n, n) and g.dparams["b"].shape == (n, 1)


@pytest.mark.parametrize(("time", "activation"), [("input", "sigmoid"), ("linear", "tanh")])
def test_time_dependent_networks_with_observations(time, activation):
    """``t`` in the network reaches ``a_t``, ``dt0`` and ``dtimes``; an observation at ``t0`` is a zero segment."""
    g = check_matrix(mlp(8, time=time, activation=activation, times=(0.0, 0.4, 1.0, 2.0)))
    assert g.dtimes is not None and g.dtimes.shape == (4,)


def test_spiral_two_layer_network():
    check_matrix(spiral_problem(), growth=10.0)  # G = 10: the cubic input expands the flow (test_fast.py)


def test_a_reused_weight_a_scalar_parameter_and_a_forcing():
    """``W tanh(W h + b) - k h + t c``: ``dL/dW`` is a sum of two outer products, ``k`` a scalar block."""
    n = 5
    h, W, b, c = (
        sp.MatrixSymbol(s, *shape) for s, shape in (("h", (n, 1)), ("W", (n, n)), ("b", (n, 1)), ("c", (n, 1)))
    )
    k, t = sp.Symbol("k"), sp.Symbol("t", real=True)
    z = sp.Dummy("z")
    rhs = W * elementwise(sp.Lambda(z, sp.tanh(z)), W * h + b) - k * h + t * c
    system = ODESystem(h, [W, b, k, c], t, rhs)
    rng = np.random.default_rng(5)
    params = {
        "W": rng.normal(size=(n, n)) / np.sqrt(n),
        "b": rng.normal(size=(n, 1)),
        "k": 0.7,
        "c": rng.normal(size=(n, 1)),
    }
    loss = ObservationLoss([0.5, 1.5], targets=np.zeros((2, n)))
    g = check_matrix(Problem(system, rng.normal(size=n), params, 0.0, 1.5, loss))
    assert isinstance(g.dparams["k"], float)


def test_linear_system_matches_the_frechet_derivative_of_expm():
    """``h(T) = expm(A T) h0``, ``L = |h(T)|^2``: ``dL/dA_ij = 2 h(T) . (Dexpm(A T)[T E_ij] h0)``, exactly."""
    n, T = 3, 1.5
    rng = np.random.default_rng(7)
    A, h0 = rng.normal(size=(n, n)) / 2, rng.normal(size=n)
    system = linear_system(n)
    h = system.state[0]
    problem = Problem(system, h0, {"A": A}, 0.0, T, FinalLoss(sp.Add(*[h[i, 0] ** 2 for i in range(n)])))
    for rtol in (1e-6, 1e-10):
        g = fast_gradient(problem, rtol=rtol, atol=1e-3 * rtol)
        hT = expm(A * T) @ h0
        exact_A = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                E = np.zeros((n, n))
                E[i, j] = T
                exact_A[i, j] = 2 * hT @ (expm_frechet(A * T, E, compute_expm=False) @ h0)
        exact_h0 = 2 * expm(A * T).T @ hT
        scale = max(np.max(np.abs(exact_A)), np.max(np.abs(exact_h0)))
        # the closed form is exact; the fast path carries two solves' global error (C rtol)
        assert np.max(np.abs(g.dparams["A"] - exact_A)) <= C * rtol * scale, (g.dparams["A"], exact_A)
        assert np.max(np.abs(g.dh0 - exact_h0)) <= C * rtol * scale, (g.dh0, exact_h0)
        assert abs(g.loss - hT @ hT) <= C * rtol * (hT @ hT)


def test_a_transposed_factor_is_caught():
    """The same-scheme comparison has teeth: ``dL/dW`` accumulated as ``x u^T`` instead of ``u x^T``."""
    problem = mlp(4)
    ref = gradient(problem, SeminormInterpolating(), solver="RK45", rtol=RTOL, atol=1e-3 * RTOL)
    tapes = fast_module.fast_system(problem.system).tapes
    right = tapes.parameter_adjoint

    def transposed(acc, rows, weights):
        out = right(acc, rows, weights)
        W = out[:16].reshape(4, 4)
        out[:16] = W.T.ravel()
        return out

    tapes.parameter_adjoint = transposed
    try:
        wrong = fast_gradient(problem, rtol=RTOL, atol=1e-3 * RTOL)
    finally:
        del tapes.parameter_adjoint
    deviation = np.max(np.abs(wrong.dparams["W"] - ref.dparams["W"])) / np.max(np.abs(ref.dparams["W"]))
    assert deviation > 1e3 * C * RTOL


def test_tapes_do_not_grow_with_the_width():
    """No scalar expansion: the same network at widths 4 and 64 has programs of the same length."""
    small, wide = (fast_module.fast_system(neural_ode(n)).tapes for n in (4, 64))
    assert small.f_tape[0] == wide.f_tape[0] and small.vjp_tape[0] == wide.vjp_tape[0]
    assert wide.factors and wide.factors[0].rows == wide.factors[0].cols == 64  # dL/dW kept as factors


def stiff_linear(fast_rate: float, t1: float) -> Problem:
    """``dh/dt = A h`` with ``A = diag(-fast_rate, -1)``: stiff once ``fast_rate t1`` is large."""
    system = linear_system(2)
    h = system.state[0]
    A = np.diag([-fast_rate, -1.0])
    return Problem(system, [1.0, 1.0], {"A": A}, 0.0, t1, FinalLoss(h[0, 0] + h[1, 0] ** 2))


def test_a_stiff_network_is_refused_naming_the_stiff_solvers():
    """Eigenvalue -1e4 over [0, 10]: RK45 would need ~3e4 stability-limited steps; refused after a few dozen."""
    pattern = r"forward solve \(fast backend, RK45\).*the problem is stiff.*solver='LSODA'\) \(or 'BDF', 'Radau'\)"
    with pytest.raises(SolverFailedError, match=pattern) as err:
        fast_gradient(stiff_linear(1e4, 10.0))
    assert err.value.t < 0.1, err.value.t


def test_the_adjoint_solve_is_refused_too(monkeypatch):
    """With the forward solve let through, the backward solve (same Jacobian) is refused by the same test."""
    forward = fast_module.forward

    def lenient(*args):
        return forward(*args[:-1], np.array([fast_module.MAX_STEPS, 10**9]))

    monkeypatch.setattr(fast_module, "forward", lenient)
    with pytest.raises(SolverFailedError, match=r"adjoint solve \(fast backend, RK45\).*the problem is stiff.*'BDF'"):
        fast_gradient(stiff_linear(1e4, 10.0), rtol=1e-6, atol=1e-9)


def test_mild_stiffness_is_integrated():
    """Eigenvalue -300 over [0, 1]: stability limits the step, but ~100 steps are cheap: not refused."""
    check_matrix(stiff_linear(300.0, 1.0))


# -- errors ----------------------------------------------------------------------------------
def test_unsupported_function_in_a_network_names_it():
    n, z = 2, sp.Dummy("z")
    h, W = sp.MatrixSymbol("h", n, 1), sp.MatrixSymbol("W", n, n)
    system = ODESystem(h, [W], sp.Symbol("t"), elementwise(sp.Lambda(z, sp.besselj(0, z)), W * h))
    problem = Problem(system, [1.0, 0.5], {"W": np.eye(n)}, 0.0, 1.0, FinalLoss(h[0, 0]))
    with pytest.raises(UnsupportedExpressionError, match="cannot compile besselj"):
        fast_gradient(problem)


def test_unsupported_matrix_expression_names_it():
    """The symbolic VJP refuses such nodes first; the lowering names them too, for kernels built directly."""
    from adjoint_sym.adjoint.fast_lower import Lowering, View

    h, W = sp.MatrixSymbol("h", 2, 1), sp.MatrixSymbol("W", 2, 2)
    lowering = Lowering({h: View(1, 2, 1), W: View(3, 2, 2)}, 7)
    with pytest.raises(UnsupportedExpressionError, match="cannot compile the matrix expression Inverse"):
        lowering.value(sp.Inverse(W) * h)
    with pytest.raises(UnsupportedExpressionError, match="fast backend is real-valued"):
        lowering.value(sp.I * h)


def test_networks_need_numba_but_not_symengine(monkeypatch):
    monkeypatch.setattr(fast_module, "se", None)
    assert fast_gradient(mlp(2)).stats["kernels"] == "matrix"
    monkeypatch.setattr(fast_module, "numba", None)
    with pytest.raises(InvalidModelError, match=r"needs numba, which is not installed"):
        fast_gradient(mlp(2))


def test_explicit_matrix_entries_and_scalar_parameters():
    """Lotka-Volterra written at matrix level: an explicit matrix of ``h[i, 0]`` entries, four scalar blocks."""
    h = sp.MatrixSymbol("h", 2, 1)
    a, b, c, d = sp.symbols("a b c d")
    x, y = h[0, 0], h[1, 0]
    system = ODESystem(
        h, [a, b, c, d], sp.Symbol("t", real=True), sp.ImmutableMatrix([a * x - b * x * y, d * x * y - c * y])
    )
    params = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
    g = check_matrix(Problem(system, [1.0, 1.0], params, 0.0, 5.0, FinalLoss(x**2 + y**2)))
    assert sorted(g.dparams) == ["a", "b", "c", "d"]


def test_a_network_run_backward_in_time():
    """``t0 = 1 > t1 = 0``: the factors' weights carry the step's sign."""
    forward = mlp(8, times=(0.5, 1.0))
    problem = Problem(
        forward.system, forward.h0, forward.params, 1.0, 0.0, ObservationLoss([0.5, 0.0], np.ones((2, 8)))
    )
    check_matrix(problem)
