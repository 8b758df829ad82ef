"""The planted source mutations of :mod:`mutate_library`: one realistic bug each.

A :class:`Mutant` replaces one exact snippet of one file (it must occur there exactly
once: :func:`mutate_library.verify_table`).  ``check_runs`` is ``False`` for code that
check() never runs; ``survivor`` explains, for a mutant neither judge kills, why it is
equivalent or unobservable (empty for every mutant that is killed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    what: str
    check_runs: bool = True
    survivor: str = ""


_A = "adjoint_sym/adjoint/"
_R = "adjoint_sym/reference/"
_D = "adjoint_sym/discrete/backprop.py"

_ADJOINT = (
    Mutant(
        "backward.jump-sign",
        _A + "backward.py",
        "AdjointState(self.a + d_state, self.a_theta, self.a_t - motion)",
        "AdjointState(self.a - d_state, self.a_theta, self.a_t - motion)",
        "a -= dL/dh(t_i) at an observation (jump sign flipped)",
    ),
    Mutant(
        "backward.a_t-jump-sign",
        _A + "backward.py",
        "AdjointState(self.a + d_state, self.a_theta, self.a_t - motion)",
        "AdjointState(self.a + d_state, self.a_theta, self.a_t + motion)",
        "a_t += dL/dh . f at an observation (dL/dt0 sign of the jump)",
    ),
    Mutant(
        "backward.missing-first-jump",
        _A + "backward.py",
        "jumped = state.jumped(jumps[i], motion[i])",
        "jumped = state.jumped(jumps[i], motion[i]) if i > 0 else state",
        "the jump at the first observation time is left out",
    ),
    Mutant(
        "backward.restart-index",
        _A + "backward.py",
        "engine.cross(float(times[i]), float(starts[i]), jumped, observations.states[i])",
        "engine.cross(float(times[i]), float(starts[i]), jumped, observations.states[i - 1])",
        "off by one: a segment restarts from the previous observation's state (backsolve)",
    ),
    Mutant(
        "backward.no-explicit-dt",
        _A + "backward.py",
        "return self.motion + self.loss.d_times",
        "return self.motion",
        "dL/dt_i loses the loss's explicit time dependence",
    ),
    Mutant(
        "backward.no-explicit-dtheta",
        _A + "backward.py",
        "d_theta = final.a_theta + observations.loss.d_theta",
        "d_theta = final.a_theta",
        "dL/dtheta loses the loss's explicit parameter dependence",
    ),
    Mutant(
        "backward.no-cost-at-t1",
        _A + "backward.py",
        "motion[-1] += problem.running_value(times[-1], states[-1])",
        "motion[-1] += 0.0",
        "the running cost's g(t1) is left out of a_t's jump (dL/dt0, dL/dt1)",
    ),
    Mutant(
        "backward.no-integral-value",
        _A + "backward.py",
        '"loss": float(np.real(observations.loss.value)) + observations.integral,',
        '"loss": float(np.real(observations.loss.value)),',
        "the loss value leaves out the running cost's integral",
    ),
    Mutant(
        "kernels.a_t-rate-sign",
        _A + "kernels.py",
        "products, negate_from = self._negated_products(0)",
        "products, negate_from = self._negated_products(0); products[-1] = _negated(products[-1])",
        "interpolating adjoint: da_t/dt = +a^T f_t (sign of the time block)",
    ),
    Mutant(
        "kernels.vjp-time-block",
        _A + "kernels.py",
        'compile_kernel("vjp", self._arguments(), [d_h, *d_theta, d_t])',
        'compile_kernel("vjp", self._arguments(), [d_h, *d_theta, _negated(d_t)])',
        "the unbatched VJP kernel returns -a^T f_t (quadrature on matrix-level systems)",
    ),
    Mutant(
        "vjp.jacobian-transpose",
        _A + "vjp.py",
        "[a @ self._jac_h(t, h, theta), a @ self._jac_theta(t, h, theta), [a @ self._f_t(t, h, theta)]]",
        "[self._jac_h(t, h, theta) @ a, a @ self._jac_theta(t, h, theta), [a @ self._f_t(t, h, theta)]]",
        "Jacobian form: f_h a instead of a^T f_h (missing transpose)",
    ),
    Mutant(
        "vjp.backsolve-rate-sign",
        _A + "vjp.py",
        "return np.concatenate([f(t, y[:n], theta), -self.products(t, y[:n], y[n : 2 * n], theta)])",
        "return np.concatenate([f(t, y[:n], theta), self.products(t, y[:n], y[n : 2 * n], theta)])",
        "generic backsolve rate: +products (the Jacobian form's and mutants' backsolve)",
    ),
    Mutant(
        "methods.quadrature-sign",
        _A + "methods.py",
        "total = -(products[n:] @ weights)",
        "total = products[n:] @ weights",
        "quadrature: a_theta and a_t integrate +a^T f_theta",
    ),
    Mutant(
        "methods.gauss-half-width",
        _A + "methods.py",
        "half = (hi - lo) / 2",
        "half = hi - lo",
        "Gauss-Legendre on [lo, hi]: nodes and weights scaled by the full width",
    ),
    Mutant(
        "methods.mesh-order",
        _A + "methods.py",
        "return points[::-1] if start > end else points",
        "return points",
        "quadrature mesh not reversed for a backward segment (weights change sign)",
    ),
    Mutant(
        "methods.two-nodes",
        _A + "methods.py",
        "QUADRATURE_NODES = 5",
        "QUADRATURE_NODES = 2",
        "quadrature of order 4 instead of 10",
    ),
    Mutant(
        "methods.no-restart",
        _A + "methods.py",
        "self.h = np.asarray(h_start).copy()",
        "self.h = np.asarray(h_start).copy() if self.h is None else self.h",
        "backsolve carries the re-integrated h through every observation (no restart)",
    ),
    Mutant(
        "methods.jacobian-transpose",
        _A + "methods.py",
        "out[:n, :n] = -jac_h(t).T",
        "out[:n, :n] = -jac_h(t)",
        "interpolating adjoint's Newton Jacobian -f_h instead of -f_h^T (implicit solvers)",
    ),
    Mutant(
        "methods.tolerances-swapped",
        _A + "methods.py",
        "rtol if self.adjoint_rtol is None else self.adjoint_rtol,\n            atol if",
        "atol if self.adjoint_rtol is None else self.adjoint_rtol,\n            rtol if",
        "the backward solve's default (rtol, atol) swapped",
    ),
    Mutant(
        "running_cost.rate-sign",
        _A + "running_cost.py",
        "return self.inner.adjoint_rate(t, h, y, theta) - self.cost_gradient(t, h, theta)",
        "return self.inner.adjoint_rate(t, h, y, theta) + self.cost_gradient(t, h, theta)",
        "interpolating adjoint with a running cost: rate - a^T f_x + g_x",
    ),
    Mutant(
        "running_cost.q0",
        _A + "running_cost.py",
        "np.concatenate([problem.h0, [0.0]]),",
        "np.concatenate([problem.h0, [1.0]]),",
        "the running cost's quadrature state starts at 1 (loss value off by 1)",
    ),
)

_REFERENCES = (
    Mutant(
        "fd.richardson-coefficient",
        _R + "finite_difference.py",
        "return (4 * quotient(delta / 2) - d) / 3 if richardson else d",
        "return (2 * quotient(delta / 2) - d) if richardson else d",
        "Richardson with the first-order coefficients (2 D(d/2) - D(d)): O(d^2) left",
    ),
    Mutant(
        "fd.no-truncation-claim",
        _R + "finite_difference.py",
        "truncation = 2 * abs(g[j] - estimate(steps[j] / 2))",
        "truncation = 0.0",
        "the claimed accuracy leaves out the truncation error",
    ),
    Mutant(
        "fd.step-exponent",
        _R + "finite_difference.py",
        "(_EPS ** (1 / 5) if richardson",
        "(_EPS ** (1 / 2) if richardson",
        "Richardson step eps^(1/2) instead of eps^(1/5): noise / delta dominates",
    ),
    Mutant(
        "cs.unscaled-quotient",
        _R + "complex_step.py",
        "g[j] = np.imag(value) / (step * scale[j])",
        "g[j] = np.imag(value) / step",
        "complex step divided by the step without the input's scale",
    ),
    Mutant(
        "inputs.moved-time-ignored",
        _R + "inputs.py",
        "out[i] = flow(z, base, times[i]) if times[i] != base else z",
        "out[i] = z",
        "moving t_i does not move the observation (dL/dt_i of FD and CS)",
    ),
    Mutant(
        "inputs.t0-t1-swapped",
        _R + "inputs.py",
        "dt0=float(t0),\n        dt1=float(times[-1]) if final else None,",
        "dt0=float(times[-1]),\n        dt1=float(t0) if final else None,",
        "dL/dt0 and dL/dt1 swapped when a reference's vector becomes a Gradient",
    ),
    Mutant(
        "forward.dt0-sign",
        _R + "forward.py",
        "S0[:, -1] = -f(problem.t0, problem.h0, theta) * col[-1]",
        "S0[:, -1] = f(problem.t0, problem.h0, theta) * col[-1]",
        "forward sensitivity to t0 starts at +f(h0, t0)",
    ),
    Mutant(
        "forward.column-scale",
        _R + "forward.py",
        "states[i], sens[i] = z[:n], z[n:size].reshape(n, m) / col",
        "states[i], sens[i] = z[:n], z[n:size].reshape(n, m) * col",
        "scaled sensitivity columns multiplied by their scale instead of divided",
    ),
    Mutant(
        "forward.no-explicit-dt",
        _R + "forward.py",
        "+ loss.d_times[i] for i, t in enumerate(times)])",
        "for i, t in enumerate(times)])",
        "forward dL/dt_i loses the loss's explicit time dependence",
    ),
    Mutant(
        "forward.cost-at-first-time",
        _R + "forward.py",
        "dtimes[-1] += problem.running_value(times[-1], states[-1])",
        "dtimes[-1] += problem.running_value(times[0], states[0])",
        "off by one: the running cost's growth read at the first observation, not at t1",
    ),
    Mutant(
        "forward.kron-order",
        _R + "forward.py",
        "J[n:, n:] = np.kron(Jh, np.eye(m))",
        "J[n:, n:] = np.kron(np.eye(m), Jh)",
        "the stiff solvers' Jacobian of S in column-major order (the historic LSODA bug)",
    ),
    Mutant(
        "arbiter.safety",
        _R + "arbiter.py",
        "SAFETY = 0.5",
        "SAFETY = 2.0",
        "Taylor steps twice the estimated radius (truncation 4^24 times the tolerance)",
        check_runs=False,
    ),
)

_DISCRETE = (
    Mutant(
        "backprop.dt-stage-time",
        _D,
        "dt_bar += c[j] * T_bar",
        "dt_bar += 0.0 * T_bar",
        "stage times t_k + c_j dt: the dt part of their cotangent dropped",
    ),
    Mutant(
        "backprop.tableau-transpose",
        _D,
        "K_bar[l] = K_bar[l] + dt * A[j, l] * Y_bar",
        "K_bar[l] = K_bar[l] + dt * A[l, j] * Y_bar",
        "stage cotangents through A^T's wrong triangle (A[l, j] for A[j, l])",
    ),
    Mutant(
        "backprop.segment-start-sign",
        _D,
        "time_bar[i - 1] += start_bar - length_bar",
        "time_bar[i - 1] += start_bar + length_bar",
        "dL/dt_{i-1} through the segment length L = t_i - t_{i-1} with the wrong sign",
    ),
    Mutant(
        "backprop.cost-jump-index",
        _D,
        "jumps[-1, n] = 1.0",
        "jumps[0, n] = 1.0",
        "off by one: dL/dq read at the first observation instead of t1",
    ),
)

MUTANTS: tuple[Mutant, ...] = _ADJOINT + _REFERENCES + _DISCRETE
