"""The tolerance model: when two gradient routes agree, and why they do not.

Tolerance model
---------------
Two routes agree on quantity ``q`` when

    s_q |g_m(q) - g_r(q)|  <=  C * kappa * (tau_m + tau_r) * (s_q |g_r(q)| + max_k s_k |g_r(k)|)

* ``tau_m`` is the accuracy of method ``m``: the ``rtol`` it ran at for the adjoints,
  forward sensitivities and adaptive backprop; the tightened solve tolerance for complex
  step; solver noise over the step for finite differences (each reference reports it in
  ``stats["accuracy"]``).  Errors of two independent routes add, so the pair gets the sum.
* ``s_q`` is the typical size of the input ``q`` differentiates by
  (:func:`~adjoint_sym.reference.finite_difference.input_scale`: ``max(|theta_j|, 1)``
  for a parameter or a time, the size a state component reaches for ``h0``), so that
  ``s_q g(q)`` is the change of ``L`` under a relative change of that input: every entry
  then has the units of ``L`` (a rate constant of 3e7 and one of 0.04 become comparable).
* ``|s_q g_r(q)| + max_k |s_k g_r(k)|`` mirrors the ``atol + rtol |y|`` that ``solve_ivp``
  controls: relative to the quantity itself, with an absolute part set by the largest
  scaled entry of the gradient.  An entry that cancels to nearly zero is judged against
  the scale of the whole gradient, as the solver judges a state near zero against ``atol``.
* ``kappa = max(1, max_i ||dh(t_i)/dh0||_2)`` is the conditioning: how much the flow
  amplifies a perturbation (a local error) on its way to the loss.  It is 1 for
  contracting flows and grows like ``exp(lambda T)`` for chaotic ones.  It comes from the
  forward-sensitivity run, or from a cheap tangent solve when ``"forward"`` is not run.
* ``C = 100``: ``solve_ivp`` bounds the *local* error per step by the tolerance; the
  *global* error of embedded Runge-Kutta pairs on non-stiff problems is typically 1 to
  100 tolerance units (tolerance proportionality; Hairer, Norsett & Wanner, Solving ODEs
  I, sec. II.4).  Two decades cover that spread; a wrong term (flipped sign, missing
  jump) misses by ``1 / tau``, six or more decades at the default ``rtol = 1e-8``.
  Measured on Lotka-Volterra over 10 time units (final loss, and ten observations with
  RK45), a 2-4-2 tanh network and Lorenz over 15 time units (DOP853), and Robertson
  (BDF), every adjoint, forward and backprop route at ``rtol`` = 1e-6, 1e-8, 1e-10
  stayed within 0.07 of the allowance (7 tolerance units after ``kappa``).

The model ignores ``atol``: when the states themselves are of the order of ``atol`` the
relative accuracy is lower than ``rtol`` suggests; tighten ``atol`` for such problems.

Each failure names the quantity, the method pair, the deviation in units of the allowed
one, and the likely cause: backsolve instability (the re-integrated state drifted),
discretization (fixed-step backprop), non-smooth ``f`` (non-analytic functions), chaos (large
``kappa``), stiffness (explicit solver on a stiff Jacobian), tolerance (within three
decades of the allowance and of the same sign: tighten ``rtol`` and re-check), or an error
in the method or the reference (not explained by tolerances), with a hint from the pattern
(opposite sign, zero); where two methods agree with each other against the reference, a
note names the reference as the likely outlier.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..adjoint.gradient import DRIFT_WARNING
from ..errors import AdjointSymError, SolverFailedError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..reference.finite_difference import input_scale, input_vector, trajectory
from ..reference.forward import state_growth

#: Deviations within this factor of the allowance are blamed on tolerances.
TOLERANCE_BAND = 1e3

#: Amplification above which a failure is blamed on chaos (ill-conditioning).
CHAOS_GROWTH = 1e4

#: ``max |Re lambda(f_h)| * |t1 - t0|`` above which an explicit solver is blamed for stiffness.
STIFFNESS = 1e3


def accuracy(g: Gradient, rtol: float) -> float:
    acc = g.stats.get("accuracy")
    return float(acc) if acc is not None else float(rtol)


# -- comparing ---------------------------------------------------------------------------
def conditioning(prob, grads, solver, rtol, atol) -> float:
    if "forward" in grads and "growth" in grads["forward"].stats:
        return max(1.0, float(grads["forward"].stats["growth"]))
    try:
        return max(1.0, state_growth(prob, solver=solver, rtol=rtol, atol=atol))
    except SolverFailedError:
        return 1.0


def input_scales(prob: Problem, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10) -> np.ndarray:
    """``s_q`` per quantity, in the order of :meth:`Gradient.quantities` (see the module docstring)."""
    x = input_vector(prob)
    try:
        states = trajectory(prob, x, solver=solver, rtol=rtol, atol=atol)
    except SolverFailedError:
        states = None
    return input_scale(prob, states)


def scaled_deviations(values: Mapping[str, float], reference: Mapping[str, float], scales) -> dict[str, float]:
    """``s_q |g(q) - g_r(q)| / (s_q |g_r(q)| + max_k s_k |g_r(k)|)`` per quantity.

    Examples
    --------
    >>> devs = scaled_deviations({"dL/da": 1.001, "dL/db": 0.0}, {"dL/da": 1.0, "dL/db": 0.0}, [1.0, 1.0])
    >>> {q: round(d, 6) for q, d in devs.items()}  # 0.001 / (1 + 1): the largest entry is the floor
    {'dL/da': 0.0005, 'dL/db': 0.0}
    """
    s = dict(zip(reference, np.asarray(scales, dtype=float)))
    floor = max((s[q] * abs(r) for q, r in reference.items()), default=0.0)
    out = {}
    for q, r in reference.items():
        diff = s[q] * abs(values[q] - r)
        denom = s[q] * abs(r) + floor
        out[q] = float(diff / denom) if denom > 0 else (0.0 if diff == 0 else np.inf)
    return out


# -- convergence -------------------------------------------------------------------------
def relative_error(g: Gradient, ref: Gradient, scales=None, state_names=None) -> float:
    """The largest of :func:`scaled_deviations` (scales default to 1): the checker's normalized error."""
    a, b = g.quantities(state_names), ref.quantities(state_names)
    scales = np.ones(len(b)) if scales is None else scales
    return max(scaled_deviations(a, b, scales).values(), default=0.0)


def stiffness_index(prob: Problem) -> float:
    try:
        J = prob.kernels.jac_h(prob.t0, prob.h0, prob.theta)
        lam = np.linalg.eigvals(np.asarray(J, dtype=float))
    except (AdjointSymError, np.linalg.LinAlgError, ValueError):
        return 0.0
    return float(np.max(np.abs(lam.real), initial=0.0) * abs(prob.t1 - prob.t0))


def cause(prob, q, v, r, ratio, kappa, non_analytic, stiffness, method, ref, fixed_steps=False, drift=0.0) -> str:
    if drift > DRIFT_WARNING:
        return (
            f"backsolve instability: the backward re-integration of h drifted {drift:.3g} tolerance units from "
            "the forward trajectory (the flow is unstable backward: stiff, dissipative or chaotic); "
            "use method='interpolating' or 'quadrature'"
        )
    if fixed_steps:
        return (
            "discretization: backprop differentiates a fixed-step solve, whose error shrinks like "
            "step^order, not with rtol; use more steps or the default adaptive steps (steps=None)"
        )
    if non_analytic:
        fns = ", ".join(sorted({fn for _, fn in non_analytic}))
        return (
            f"non-smooth f: the problem uses {fns}, whose derivative jumps; methods differ where the "
            "trajectory crosses a kink (use a smooth surrogate such as softplus)"
        )
    if kappa >= CHAOS_GROWTH:
        return (
            f"chaos: the flow amplifies perturbations by kappa = {kappa:.3g}, so gradients over this span are "
            "ill-conditioned; shorten the time span (or split it, multiple shooting)"
        )
    if stiffness >= STIFFNESS:
        return (
            f"stiffness: |lambda| * span = {stiffness:.3g} with an explicit solver; use solver='BDF', "
            "'Radau' or 'LSODA'"
        )
    # Opposite signs, neither near zero, are never a tolerance effect however small the gap
    # looks next to the gradient's largest entry.
    opposite = v * r < 0 and abs(v - r) > max(abs(v), abs(r))
    if ratio <= TOLERANCE_BAND and not opposite:
        fd = "finite-difference" in (method, ref)
        return "tolerance: within three decades of what the tolerances explain; tighten rtol and re-check" + (
            " (finite differences are the least accurate route)" if fd else ""
        )
    hint = f"not explained by tolerances: an error in {method} or in the reference {ref}"
    if opposite:
        hint += f" (the signs disagree: {v:.3g} against {r:.3g})"
    if r != 0 and abs(v + r) <= 1e-3 * abs(r):
        hint += " (the sign is flipped)"
    elif v == 0 and r != 0:
        hint += " (the value is zero: a term is missing)"
    if q == "dL/dt0" or q.startswith("dL/dt_obs"):
        hint += "; check the a_t block (its -a^T f_t integrand and its jumps)"
    elif not prob.is_final_loss:
        hint += "; check the jumps dL/dh(t_i) added to the adjoint at each observation time"
    return hint
