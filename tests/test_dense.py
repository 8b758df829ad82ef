import numpy as np
import pytest
from scipy.integrate import solve_ivp

from adjoint_sym.numeric.dense import DenseState


def _rhs(t, y):
    # a moving component, a constant one (its interpolant has zero high-order terms)
    return np.array([np.cos(3 * t) * y[0], 0.0, -y[2] + t])


@pytest.mark.parametrize("solver", ["RK23", "RK45", "DOP853", "LSODA", "BDF", "Radau"])
@pytest.mark.parametrize("span", [(0.0, 2.0), (2.0, -1.0)], ids=["forward", "backward"])
def test_dense_state_equals_scipys_interpolant_in_any_order(solver, span):
    sol = solve_ivp(_rhs, span, [1.0, 0.5, -1.0], method=solver, dense_output=True, rtol=1e-8, atol=1e-10).sol
    dense = DenseState(sol)
    times = np.linspace(*span, 41)
    rng = np.random.default_rng(0)
    # a sweep backward (the adjoint's order), then random jumps that defeat the cursor
    for t in [*times[::-1], *rng.permutation(times)]:
        np.testing.assert_allclose(dense(t), sol(t), rtol=1e-13, atol=1e-15)
