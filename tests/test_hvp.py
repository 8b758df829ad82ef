"""Hessian-vector products against closed forms: the second-order adjoint and every reference.

Every exact ``H v`` here comes from a route that shares nothing with the code under test:
SymPy's ``hessian`` of a closed-form solution (exponential decay, logistic growth), or
the matrix exponential and its first and second Frechet derivatives (linear systems:
``expm`` of the block matrices ``[[A, V], [0, A]]`` and ``[[A, V, 0], [0, A, V], [0, 0, A]]``,
whose upper-right blocks are ``D exp(A)[V]`` and ``D^2 exp(A)[V, V] / 2``; Higham,
Functions of Matrices, sec. 3.2), polarized into ``H v`` entry by entry.

Tolerances.  As in ``tests/test_gradients.py``: ``H v`` comes from a forward solve of
``[h, s]`` and a backward solve of ``[a, lambda, a_theta, mu]``, each with a global error
of a modest multiple of its ``rtol``; the tangent ``s`` and the tangent adjoint ``lambda``
are part of those error-controlled solves.  So we assert ``error <= C * G * rtol`` (error
relative to the largest entry of the exact ``H v``), ``C = 100`` and ``G`` the flow's
growth factor (``||exp(A T)||`` for the linear systems, 1 for the contracting problems).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import sympy as sp

from adjoint_sym import FinalLoss, HessianVectorProduct, ObservationLoss, ODESystem, Problem, hvp
from adjoint_sym.builders import linear_system, lotka_volterra, neural_ode, robertson, two_layer
from adjoint_sym.reference.hessian_forward import forward_hessian

C = 100  # see the module docstring
REFERENCES = ("complex-step", "finite-difference", "forward-hessian")
DIRECTIONS = np.random.default_rng(7).standard_normal((3, 8))


def relative_error(hv: HessianVectorProduct, exact: np.ndarray) -> float:
    return float(np.max(np.abs(hv.flat - exact)) / np.max(np.abs(exact)))


def assert_close(hv: HessianVectorProduct, exact: np.ndarray, bound: float) -> float:
    err = relative_error(hv, exact)
    assert err <= bound, (
        f"{hv.method}: relative error {err:.3g} > {bound:.3g}\n  got   {hv.flat}\n  exact {np.asarray(exact)}"
    )
    return err


# -- closed forms by SymPy ---------------------------------------------------------------
def sympy_hessian(loss: sp.Expr, inputs: list[sp.Symbol], values: dict) -> np.ndarray:
    return np.array(sp.hessian(loss, inputs).subs(values).evalf(30), dtype=float)


def decay_problem(t1: float, loss: str):
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    return Problem(system, [1.5], {"k": 0.7}, 0.0, t1, FinalLoss(loss))


def decay_hessian(t1: float, loss: str) -> np.ndarray:
    x0, k = sp.symbols("x0 k")
    x_T = x0 * sp.exp(-k * t1)
    L = sp.sympify(loss, locals={"x": x_T, "k": k})
    return sympy_hessian(L, [x0, k], {x0: 1.5, k: 0.7})


@pytest.mark.parametrize("t1", [1.5, -1.0], ids=["forward", "backward"])
@pytest.mark.parametrize("loss", ["x**2", "k*x**2 + x", "x**3*k**2"])
def test_exponential_decay_matches_sympy(t1, loss):
    prob = decay_problem(t1, loss)
    H = decay_hessian(t1, loss)
    G = np.exp(0.7) if t1 < 0 else 1.0  # backward in time the decay grows like e^{k |T|}
    for v in DIRECTIONS[:, :2]:
        assert_close(hvp(prob, v, rtol=1e-10, atol=1e-14), H @ v, C * G * 1e-10)


def logistic_problem(loss: str, observations=None):
    system = ODESystem.from_strings(["x"], ["r", "K"], "t", ["r*x*(1 - x/K)"])
    final = FinalLoss(loss) if observations is None else ObservationLoss(observations, expr=loss)
    return Problem(system, [0.2], {"r": 1.3, "K": 2.0}, 0.0, 3.0, final)


def logistic_hessian(loss: str, times=(3.0,)) -> np.ndarray:
    x0, r, K = sp.symbols("x0 r K")
    total = 0
    for t in times:
        x_t = K * x0 * sp.exp(r * t) / (K + x0 * (sp.exp(r * t) - 1))
        total += sp.sympify(loss, locals={"x": x_t, "r": r, "K": K, "t": sp.Float(t)})
    return sympy_hessian(total, [x0, r, K], {x0: 0.2, r: 1.3, K: 2.0})


@pytest.mark.parametrize("loss", ["x**2", "(x - 1)**2 + r*x", "t*x*K"])
def test_logistic_matches_sympy(loss):
    prob = logistic_problem(loss)
    H = logistic_hessian(loss)
    for v in DIRECTIONS[:, :3]:
        assert_close(hvp(prob, v, rtol=1e-10, atol=1e-14), H @ v, C * 1e-10)


def test_logistic_observation_loss_matches_sympy():
    times = (0.5, 1.25, 3.0)
    prob = logistic_problem("(x - 1)**2 + r*x", observations=times)
    H = logistic_hessian("(x - 1)**2 + r*x", times)
    for v in DIRECTIONS[:, :3]:
        assert_close(hvp(prob, v, rtol=1e-10, atol=1e-14), H @ v, C * 1e-10)


# -- linear systems by the matrix exponential ----------------------------------------------
A = np.array([[0.5, 2.0], [0.0, -1.0]])  # a growing mode and a non-normal coupling
Q = np.array([[1.0, 0.3], [0.3, 2.0]])
c = np.array([0.5, -1.0])
H0 = np.array([0.4, -0.7])
T = 1.5


def expm_derivatives(A: np.ndarray, V: np.ndarray, T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``exp(A T)``, ``D exp[V T]`` and ``D^2 exp[V T, V T] / 2`` from one block exponential."""
    n = len(A)
    Z = np.zeros((3 * n, 3 * n))
    for i in range(3):
        Z[i * n : (i + 1) * n, i * n : (i + 1) * n] = A * T
    Z[:n, n : 2 * n] = Z[n : 2 * n, 2 * n :] = V * T
    E = scipy.linalg.expm(Z)
    return E[:n, :n], E[:n, n : 2 * n], E[:n, 2 * n :]


def second_directional(v: np.ndarray) -> float:
    """``d^2/d eps^2 L(h0 + eps v_h0, A + eps V)`` for ``L = h^T Q h + c . h`` at ``h(T)``."""
    n = len(H0)
    v_h0, V = v[:n], v[n:].reshape(n, n)
    M0, M1, M2 = expm_derivatives(A, V, T)
    a, b, c2 = M0 @ H0, M1 @ H0 + M0 @ v_h0, M2 @ H0 + M1 @ v_h0  # h(eps) = a + eps b + eps^2 c2 + ...
    return 2 * (b @ Q @ b + 2 * a @ Q @ c2 + c @ c2)


def linear_hvp(v: np.ndarray) -> np.ndarray:
    """``H v`` entry by entry by polarization: ``e_j . H v = (D2[v + e_j] - D2[v] - D2[e_j]) / 2``."""
    units = np.eye(len(v))
    return np.array([(second_directional(v + e) - second_directional(v) - second_directional(e)) / 2 for e in units])


LINEAR_LOSS = "1.0*x**2 + 0.6*x*y + 2.0*y**2 + 0.5*x - 1.0*y"


def linear_problems() -> dict[str, Problem]:
    scalar = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t", ["a*x + b*y", "c*x + d*y"])
    matrix = linear_system(2)
    matrix_loss = LINEAR_LOSS.replace("x", "h[0, 0]").replace("y", "h[1, 0]")
    return {
        "scalar": Problem(scalar, H0, A.reshape(-1), 0.0, T, FinalLoss(LINEAR_LOSS)),
        "matrix-level": Problem(matrix, H0, {"A": A}, 0.0, T, FinalLoss(matrix_loss)),
    }


@pytest.mark.parametrize("form", ["scalar", "matrix-level"])
def test_linear_system_matches_the_matrix_exponential(form):
    prob = linear_problems()[form]
    G = float(np.linalg.norm(scipy.linalg.expm(A * T), 2))  # the growing mode amplifies errors
    for v in DIRECTIONS[:, :6]:
        assert_close(hvp(prob, v, rtol=1e-10, atol=1e-14), linear_hvp(v), C * G * 1e-10)


def test_the_error_follows_the_tolerance():
    """A wrong term errs independently of rtol; the adjoint's error shrinks with it."""
    prob = linear_problems()["matrix-level"]
    v = DIRECTIONS[0, :6]
    exact = linear_hvp(v)
    loose = relative_error(hvp(prob, v, rtol=1e-6, atol=1e-10), exact)
    tight = relative_error(hvp(prob, v, rtol=1e-10, atol=1e-14), exact)
    assert tight < loose / 100, (loose, tight)


@pytest.mark.parametrize("method", REFERENCES)
def test_references_match_the_closed_forms(method):
    bound = {"finite-difference": 1e-7}.get(method, C * 1e-10)  # differences: noise / step, see their stats
    for prob, exact_of in [
        (decay_problem(1.5, "k*x**2 + x"), lambda v: decay_hessian(1.5, "k*x**2 + x") @ v),
        (linear_problems()["scalar"], linear_hvp),
        (logistic_problem("(x - 1)**2 + r*x"), lambda v: logistic_hessian("(x - 1)**2 + r*x") @ v),
    ]:
        v = DIRECTIONS[1, : prob.system.n + prob.system.n_params]
        ref = hvp(prob, v, method, rtol=1e-10, atol=1e-12)
        assert ref.method == method
        assert_close(ref, exact_of(v), bound * float(np.linalg.norm(scipy.linalg.expm(A * T), 2)))


def test_the_dense_hessian_is_symmetric_and_matches_the_closed_form():
    prob = linear_problems()["scalar"]
    dense = forward_hessian(prob, rtol=1e-11, atol=1e-14)
    exact = np.stack([linear_hvp(e) for e in np.eye(6)], axis=1)
    assert np.max(np.abs(dense.hessian - exact)) <= 1e-8 * np.max(np.abs(exact))
    assert np.max(np.abs(dense.hessian - dense.hessian.T)) <= 1e-8 * np.max(np.abs(exact))
    assert "DenseHessian(m=6" in repr(dense)


# -- hard regimes --------------------------------------------------------------------------
def test_zero_length_span_leaves_only_the_loss_hessian():
    """``t1 == t0``: ``h(t1) = h0``, so ``H`` is the loss's own Hessian, exactly."""
    prob = decay_problem(0.0, "k*x**2 + x")
    v = np.array([0.3, -0.8])
    # L = k x0^2 + x0: H = [[2k, 2 x0], [2 x0, 0]]
    exact = np.array([[2 * 0.7, 2 * 1.5], [2 * 1.5, 0.0]]) @ v
    for method in ("adjoint", "complex-step", "forward-hessian"):
        np.testing.assert_allclose(hvp(prob, v, method).flat, exact, rtol=1e-12)


def test_zero_state_at_an_equilibrium():
    """``h0 = 0`` is an equilibrium of the tanh layer with ``b = 0``: ``h`` stays 0, ``s`` does not."""
    system = neural_ode(2)
    W = np.array([[-0.5, 1.0], [-1.0, -0.5]])
    prob = Problem(system, [0.0, 0.0], {"W": W, "b": [0.0, 0.0]}, 0.0, 2.0, FinalLoss("h[0, 0]**2 + h[1, 0]"))
    v = np.random.default_rng(3).standard_normal(8)
    ours = hvp(prob, v, rtol=1e-10, atol=1e-14)
    ref = hvp(prob, v, "complex-step")
    assert np.max(np.abs(ours.flat - ref.flat)) <= C * 1e-10 * np.max(np.abs(ref.flat))
    assert np.max(np.abs(ref.flat)) > 0.1  # the curvature at the equilibrium is not trivially zero


def test_neural_network_with_observations_agrees_with_complex_step():
    system = two_layer(2, 3, activation="softplus", time="input")
    rng = np.random.default_rng(0)
    params = {name: 0.5 * rng.standard_normal(shape) for name, shape in system.param_shapes.items()}
    loss = ObservationLoss([0.5, 1.0, 1.5], targets=[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    prob = Problem(system, [0.5, -0.3], params, 0.0, 1.5, loss)
    v = rng.standard_normal(2 + system.n_params)
    ours, ref = hvp(prob, v, rtol=1e-10, atol=1e-14), hvp(prob, v, "complex-step")
    assert np.max(np.abs(ours.flat - ref.flat)) <= C * 1e-10 * np.max(np.abs(ref.flat))
    np.testing.assert_allclose(ours.gradient, ref.gradient, rtol=1e-7, atol=1e-9)


def test_long_span_lotka_volterra():
    prob = Problem(
        lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 10.0, FinalLoss("x**2 + y**2")
    )
    v = DIRECTIONS[2, :6]
    ours, ref = hvp(prob, v, rtol=1e-10, atol=1e-12), hvp(prob, v, "forward-hessian", rtol=1e-11, atol=1e-13)
    growth = 10.0  # ||dh(t)/dh0|| of this orbit stays below ~6 (measured by state_growth)
    assert np.max(np.abs(ours.flat - ref.flat)) <= C * growth * 1e-10 * np.max(np.abs(ref.flat))


def test_stiff_robertson_with_bdf():
    """Stiff: the adjoint and the dense Hessian both run BDF; they agree to the solver tolerance."""
    prob = Problem(robertson(), [1.0, 0.0, 0.0], {"k1": 0.04, "k2": 3e7, "k3": 1e4}, 0.0, 1.0, FinalLoss("y3"))
    v = np.array([0.0, 0.0, 0.0, 0.04, 3e7, 1e4]) * np.array([0, 0, 0, 1, 0.1, -0.2])  # relative moves
    ours = hvp(prob, v, solver="BDF", rtol=1e-8, atol=1e-14)
    ref = hvp(prob, v, "forward-hessian", solver="BDF", rtol=1e-10, atol=1e-16)
    scale = np.maximum(np.abs(np.concatenate([prob.h0, prob.theta])), 1.0)  # relative to each input's size
    assert np.max(np.abs((ours.flat - ref.flat) * scale)) <= C * 1e-8 * np.max(np.abs(ref.flat * scale))


def test_mapping_direction_equals_the_flat_one():
    prob = linear_problems()["matrix-level"]
    flat = np.array([0.1, -0.2, 1.0, 0.0, 0.5, -1.0])
    by_name = hvp(prob, {"dh0": [0.1, -0.2], "dparams": {"A": [[1.0, 0.0], [0.5, -1.0]]}})
    assert np.array_equal(by_name.direction, flat)
    np.testing.assert_array_equal(by_name.flat, hvp(prob, flat).flat)
    assert set(by_name.dparams) == {"A"} and by_name.dparams["A"].shape == (2, 2)
    assert hvp(prob, by_name).direction.tolist() == by_name.flat.tolist()  # a result is gradient-shaped
    assert "HessianVectorProduct(method='adjoint'" in repr(by_name)
    assert by_name.as_dict()["Hv_params"]["A"] == by_name.dparams["A"].tolist()
