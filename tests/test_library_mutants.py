"""Properties the rest of the suite left unchecked, found by mutating the library itself.

``benchmarks/mutate_library.py`` plants realistic bugs in the adjoint, the references and
backprop; each test here kills mutants that the other tests let through, and each checks
a property against an independent truth (central differences of the function whose
Jacobian is claimed, another route to the same number, a closed form), not the mutated
line's text.
"""

from __future__ import annotations

import numpy as np
import pytest

from adjoint_sym import FinalLoss, IntegralLoss, ObservationLoss, ODESystem, Problem, gradient
from adjoint_sym.adjoint.methods import BacksolveAdjoint, InterpolatingAdjoint, QuadratureAdjoint
from adjoint_sym.adjoint.vjp import JacobianVJP
from adjoint_sym.discrete.backprop import complex_step_discrete, make_grids, tableau
from adjoint_sym.numeric.solve import forward

# x' = a x - b x y + sin(t), y' = c x y - d y: f_h is far from symmetric and f depends on t,
# so a transposed Jacobian or a dropped time block shows.
FORCED_LV = ODESystem.from_strings(
    ["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y + sin(t)", "c*x*y - d*y"], name="forced LV"
)
LV_PARAMS = {"a": 1.5, "b": 1.0, "c": 0.7, "d": 3.0}


def forced_lv(t1: float = 1.5) -> Problem:
    return Problem(FORCED_LV, [1.0, 0.5], LV_PARAMS, 0.0, t1, FinalLoss("x**2 + y"))


def as_vector(g) -> np.ndarray:
    return np.array(list(g.quantities().values()))


def central_jacobian(fun, t: float, y: np.ndarray, step: float = 1e-6) -> np.ndarray:
    columns = []
    for j in range(len(y)):
        e = np.zeros(len(y))
        e[j] = step
        columns.append((fun(t, y + e) - fun(t, y - e)) / (2 * step))
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("method", [InterpolatingAdjoint(), QuadratureAdjoint()], ids=["interpolating", "quadrature"])
def test_the_stiff_solvers_newton_jacobian_is_the_derivative_of_the_adjoint_rate(method):
    """An implicit solver's Newton iteration gets ``d(rate)/dy``; a wrong one (``-f_h`` for
    ``-f_h^T``) only slows Newton down, so no gradient shows it: compare it with central
    differences of the rate itself, which is linear in ``y`` (exact to rounding)."""
    problem = forced_lv()
    fwd = forward(problem, solver="Radau", rtol=1e-8, atol=1e-10, dense=True)
    engine = method.segments(problem, fwd, "Radau", 1e-8, 1e-10)
    theta, n = problem.theta, problem.system.n
    if isinstance(method, InterpolatingAdjoint):
        jacobian = engine._jacobian()

        def rate(t, y):
            return engine.vjp.adjoint_rate(t, engine.h_of(t), y, theta)

        y = np.array([0.3, -1.2, 0.5, 2.0, -0.7, 1.1, 0.4])
    else:
        jac_h = engine._state_jacobian()

        def jacobian(t, y):
            return -jac_h(t).T

        def rate(t, y):
            return -engine.vjp.state_products(t, engine.h_of(t), y, theta)

        y = np.array([0.3, -1.2])
    for t in (0.2, 0.9, 1.4):
        expected = central_jacobian(rate, t, y)
        assert jacobian(t, y).shape == expected.shape
        # The rate is linear in y: central differences are exact up to rounding, ~1e-10 here.
        np.testing.assert_allclose(jacobian(t, y), expected, atol=1e-8)
    assert n == 2


def test_default_adjoint_tolerances_are_the_forward_ones():
    """``adjoint_rtol=None`` means "the forward rtol": the same backward solve, step for step,
    as stating the forward tolerances explicitly (another route to the same computation)."""
    problem = forced_lv()
    rtol, atol = 1e-5, 1e-12  # far apart, so that exchanging them changes the step sequence
    for method in ("interpolating", "backsolve", "quadrature"):
        implicit = gradient(problem, method, rtol=rtol, atol=atol)
        stated = gradient(problem, method, rtol=rtol, atol=atol, adjoint_rtol=rtol, adjoint_atol=atol)
        assert implicit.stats["steps_backward"] == stated.stats["steps_backward"], method
        np.testing.assert_array_equal(implicit.dh0, stated.dh0)


@pytest.mark.parametrize("method", [InterpolatingAdjoint, QuadratureAdjoint, BacksolveAdjoint])
def test_the_jacobian_form_of_every_adjoint_matches_forward_sensitivities(method):
    """``vjp=JacobianVJP`` (``a @ [f_h | f_theta | f_t]`` from the entry-wise Jacobians) runs the
    generic shapes of :class:`VectorJacobianProduct` (rate, backsolve rate, batches); on a
    system with a non-symmetric ``f_h`` and ``f_t != 0`` each must give the gradient of the
    forward sensitivities, a route through neither VJP."""
    problem = forced_lv()
    rtol, atol = 1e-10, 1e-12
    got = gradient(problem, method(vjp=JacobianVJP), rtol=rtol, atol=atol)
    truth = gradient(problem, "forward", rtol=rtol, atol=atol)
    scale = max(np.max(np.abs(as_vector(truth))), 1.0)
    # A forward and a backward solve at rtol, over a span where the flow grows modestly
    # (|dh/dh0| < 10): well within 1e3 rtol of the largest entry; a wrong term is O(1).
    np.testing.assert_allclose(as_vector(got), as_vector(truth), rtol=0, atol=1e3 * rtol * scale)


def test_backprop_of_observations_with_a_running_cost_is_the_derivative_of_the_discrete_loss():
    """With observations *and* a running cost, ``L = sum_i Phi_i + q(t_N)``: the cotangent of
    the quadrature state ``q`` enters at the last observation only.  Backprop's gradient must
    equal the complex step of the discrete loss on the same grid (to rounding)."""
    loss = ObservationLoss([0.5, 1.0, 1.5], expr="x**2") + IntegralLoss("x*y + t*a")
    problem = Problem(FORCED_LV, [1.0, 0.5], LV_PARAMS, 0.0, 1.5, loss)
    g = gradient(problem, "backprop", scheme="rk4", steps=8)
    truth = complex_step_discrete(problem, scheme="rk4", grids=make_grids(problem, tableau("rk4"), 8))
    # Both are the exact derivative of the same floating-point computation: agreement to
    # rounding, ~1e-13 relative; 1e-10 leaves room for the summation order.
    np.testing.assert_allclose(as_vector(g), truth, rtol=1e-10, atol=1e-10 * np.max(np.abs(truth)))
