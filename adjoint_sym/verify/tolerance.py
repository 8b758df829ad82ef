"""The tolerance model: when two gradient routes agree, and why they do not.

Tolerance model
---------------
Two routes agree on quantity ``q`` when

    s_q |g_m(q) - g_r(q)|  <=  C kappa [ (tau_m + tau_r) (s_q |g_r(q)| + N) + 2 atol s_q ],
    N = max(max_k s_k |g_r(k)|, |L|)

* ``tau_m`` is the accuracy of method ``m``: ``stats["accuracy"]``, the relative accuracy
  each route claims (the ``rtol`` it ran at for the adjoints, forward sensitivities and
  adaptive backprop; the references report their own), ``rtol`` where it says nothing.
  Errors of two independent routes add, so the pair gets the sum.
* ``s_q`` is the typical size of the input ``q`` differentiates by
  (:func:`input_scales`: ``max(|theta_j|, 1)`` for a parameter or a time, ``|h0_j|`` for
  a state that starts away from zero and the size it reaches for one that starts at
  zero), so that ``s_q g(q)`` is the change of ``L`` under a relative change of that
  input: every entry then has the units of ``L`` (a rate constant of 3e7 and one of 0.04
  become comparable).  A growing state is *not* scaled by the size it grows to: its
  growth is in ``kappa`` already, and counted twice it would lift the noise floor ``N``
  to ``kappa |L|`` (on ``x' = a x`` grown 2,000-fold a ``dL/dt1`` missing its whole
  value agreed).
* ``s_q |g_r(q)| + N`` mirrors the ``rtol |y| + atol`` that ``solve_ivp`` controls: relative
  to the quantity itself, with a floor ``N``, the *noise level*, set by the largest scaled
  entry and by the loss.  A route whose solves hold ``tau`` computes ``L`` itself only to
  about ``tau |L|``; an entry whose effect on ``L`` is below that is noise, and two routes
  that both put it there agree (a true 0 against 1e-17 is not "inf x the allowance").
* ``2 atol s_q`` is the absolute part: every gradient entry is a solved component (the
  adjoint's ``a``, ``a_theta``, ``a_t``; the sensitivities) or a quotient of solved states,
  and the solver holds each component to ``atol`` absolutely as well; when the loss and
  every entry vanish (a zero trajectory) this floor alone remains.
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

Causes
------
Each disagreement gets a cause decided by its size ``ratio`` (the deviation in units of
the allowance): backsolve instability (the re-integrated state drifted), discretization
(fixed-step backprop), non-smooth ``f`` (non-analytic functions), chaos (large ``kappa``),
stiffness (an explicit solver on a Jacobian whose spectrum, sampled along the
trajectory, has ``max(-Re lambda) |t1 - t0| >= STIFFNESS``), each only up to
``REFINE_BAND`` times the allowance; tolerance (same sign, within ``TOLERANCE_BAND``:
tighten rtol); beyond that an error in the method, with a hint from the pattern (opposite
sign, zero, the time block, the jumps).  When the references disagree among themselves,
:func:`remedy` names what would settle it (a stiff solver, a tighter rtol, a shorter
span), never a term of the method under test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..adjoint.gradient import DRIFT_WARNING
from ..errors import AdjointSymError, SolverFailedError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import integrate
from ..reference.finite_difference import input_scale, input_vector, trajectory
from ..reference.forward import state_growth
from .report import AGREEMENT

#: Deviations within this factor of the allowance (same sign) are blamed on tolerances.
#: The allowance already holds ``C = 100`` tolerance units, two decades above the worst
#: measured global error; one decade more may still be a solver's error on a hard draw,
#: beyond it (a 2% error at 278x the allowance) tolerance proportionality does not stretch.
TOLERANCE_BAND = 10.0

#: Deviations up to this factor are re-checked at a tighter rtol (by :func:`check`) and may
#: be explained by a regime (chaos, stiffness, kinks); beyond it, ``1e5`` tolerance units,
#: only a wrong term is left.
REFINE_BAND = 1e3

#: Amplification above which a failure is blamed on chaos (ill-conditioning).
CHAOS_GROWTH = 1e4

#: ``max(-Re lambda(f_h)) * |t1 - t0|`` along the trajectory above which an explicit solver
#: is blamed for stiffness: the fast mode then forces ``>= STIFFNESS / 3.3`` (about 100)
#: stability-limited steps on RK45 whatever the accuracy asked, and there the error
#: estimate of an explicit pair is unreliable (the step oscillates about the stability
#: boundary; Hairer & Wanner, Solving ODEs II, sec. IV.2), so the global error leaves
#: tolerance proportionality.  |lambda| T of 500 to 1000 is in; the fast modes of the
#: mildly stiff draws start at 25.
STIFFNESS = 300.0

#: Points of the trajectory at which the Jacobian's spectrum is sampled.
STIFFNESS_SAMPLES = 17


def accuracy(g: Gradient, rtol: float) -> float:
    """``tau`` of a route: the relative accuracy it claims (``stats["accuracy"]``), else ``rtol``."""
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
    """``s_q`` per quantity, in the order of :meth:`Gradient.quantities` (see the module docstring).

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> sys = ODESystem.from_strings(["x", "y"], ["a"], "t", ["a*x", "a*x"])  # y starts at 0
    >>> prob = Problem(sys, [0.5, 0.0], {"a": 2.0}, 0.0, 1.0, FinalLoss("x + y"))
    >>> [round(float(s), 3) for s in input_scales(prob)]  # |x0|; y(1) = (e^2 - 1)/2; a; t0, t1
    [0.5, 3.195, 2.0, 1.0, 1.0]
    """
    x = input_vector(prob)
    try:
        states = trajectory(prob, x, solver=solver, rtol=rtol, atol=atol)
    except SolverFailedError:
        states = None
    scale = input_scale(prob, states)
    n = prob.system.n
    h0 = np.abs(np.asarray(prob.h0, dtype=complex).real)
    scale[:n] = np.where(h0 > 0, h0, scale[:n])  # a relative change of h0_j where it has a size
    return scale


@dataclass(frozen=True)
class Deviation:
    """One quantity of one pair of routes: the deviation and what the model allows."""

    deviation: float  # s |a - b| / (s |b| + N)
    allowed: float  # the right-hand side of the model over (s |b| + N)

    @property
    def ratio(self) -> float:
        return self.deviation / self.allowed if self.allowed > 0 else (0.0 if self.deviation == 0 else np.inf)

    @property
    def agree(self) -> bool:
        return bool(self.deviation <= self.allowed)  # NaN disagrees


@dataclass(frozen=True)
class ToleranceModel:
    """The model of the module docstring for one problem: scales, ``kappa`` and ``atol``.

    Examples
    --------
    >>> model = ToleranceModel({"dL/da": 1.0, "dL/db": 1.0}, kappa=1.0, atol=1e-10)
    >>> devs = model.compare({"dL/da": 1.001, "dL/db": 0.0}, {"dL/da": 1.0, "dL/db": 0.0}, 1e-8, 1e-8, loss=1.0)
    >>> devs["dL/da"].agree, devs["dL/db"].agree  # 1e-3 is 2500x the allowance; 0 = 0
    (False, True)
    """

    scales: Mapping[str, float]
    kappa: float = 1.0
    atol: float = 1e-10
    constant: float = field(default=AGREEMENT)

    def allowance(self, tau_a: float, tau_b: float) -> float:
        """``C kappa (tau_a + tau_b)``: the relative part of the model."""
        return self.constant * self.kappa * (tau_a + tau_b)

    def compare(self, a: Mapping[str, float], b: Mapping[str, float], tau_a: float, tau_b: float, loss: float = 0.0):
        """:class:`Deviation` of ``a`` from ``b`` per quantity of ``b`` (``b`` sets the scale)."""
        s = {q: float(self.scales.get(q, 1.0)) for q in b}
        finite = [s[q] * abs(v) for q, v in b.items() if np.isfinite(v)]
        noise = max(max(finite, default=0.0), abs(float(loss)) if np.isfinite(loss) else 0.0)
        rel = self.allowance(tau_a, tau_b)
        out = {}
        for q, r in b.items():
            denom = s[q] * abs(r) + noise
            absolute = self.constant * self.kappa * 2 * self.atol * s[q]
            diff = s[q] * abs(a[q] - r)
            if denom > 0:
                out[q] = Deviation(float(diff / denom), float(rel + absolute / denom))
            else:  # nothing but the absolute floor: express both in its units
                out[q] = Deviation(float(diff / absolute) if absolute > 0 else float(diff > 0) * np.inf, 1.0)
        return out


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


# -- regimes -----------------------------------------------------------------------------
def stiffness_index(prob: Problem, samples: int = STIFFNESS_SAMPLES) -> float:
    """``max_t max(-Re lambda(f_h(t, h(t)))) * |t1 - t0|`` over the trajectory.

    The spectrum is sampled at ``samples`` times of a loose LSODA solve (it switches to a
    stiff method by itself, so a stiff draw stays cheap), not at ``t0`` only: a system
    can start slow and turn stiff on its way (Robertson's fast species, a neural field
    that saturates).  0 when the Jacobian cannot be evaluated.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> sys = ODESystem.from_strings(["x", "y"], ["k"], "t", ["-k*y*x", "1"])  # the rate k y grows from 0
    >>> prob = Problem(sys, [1.0, 0.0], {"k": 100.0}, 0.0, 2.0, FinalLoss("x"))
    >>> round(stiffness_index(prob))  # 0 at t0; k y(t1) |t1 - t0| = 100 * 2 * 2 at the end
    400
    """
    f, jac, theta = prob.kernels.f.fn, prob.kernels.jac_h.fn, prob.theta
    span = abs(prob.t1 - prob.t0)
    times = np.linspace(prob.t0, prob.t1, samples)
    try:
        res = integrate(
            lambda t, y: f(t, y, theta), (prob.t0, prob.t1), prob.h0, solver="LSODA", rtol=1e-6, atol=1e-9,
            dense=False, t_eval=times, what="stiffness estimate",
        )  # fmt: skip
        states = res.y.T
    except SolverFailedError:
        states = prob.h0[None, :]
        times = times[:1]
    worst = 0.0
    for t, h in zip(times, states):
        try:
            lam = np.linalg.eigvals(np.asarray(jac(t, h, theta), dtype=float))
        except (AdjointSymError, np.linalg.LinAlgError, ValueError, FloatingPointError):
            continue
        if np.all(np.isfinite(lam)):
            worst = max(worst, float(np.max(-lam.real, initial=0.0)))
    return worst * span


def cause(
    prob, q, v, r, ratio, kappa, non_analytic, stiffness, method, ref, fixed_steps=False, drift=0.0, refined=None
) -> str:
    """Why ``method`` (``v``) misses ``ref`` (``r``) on ``q`` by ``ratio`` x the allowance.

    ``refined`` is ``(rtol, ratio)`` of the re-run at a tighter rtol that still disagreed,
    when :func:`~adjoint_sym.verify.check` made one.
    """
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
    # Opposite signs, neither near zero, are never a tolerance effect however small the gap
    # looks next to the gradient's largest entry.
    opposite = v * r < 0 and abs(v - r) > max(abs(v), abs(r))
    regime = ratio <= REFINE_BAND and not opposite and refined is None
    if non_analytic and not opposite:
        fns = ", ".join(sorted({fn for _, fn in non_analytic}))
        return (
            f"non-smooth f: the problem uses {fns}, whose derivative jumps; methods differ where the "
            "trajectory crosses a kink (use a smooth surrogate such as softplus)"
        )
    if regime and kappa >= CHAOS_GROWTH:
        return (
            f"chaos: the flow amplifies perturbations by kappa = {kappa:.3g}, so gradients over this span are "
            "ill-conditioned; shorten the time span (or split it, multiple shooting)"
        )
    if regime and stiffness >= STIFFNESS:
        return (
            f"stiffness: max |Re lambda| * span = {stiffness:.3g} along the trajectory with an explicit solver; "
            "use solver='BDF', 'Radau' or 'LSODA'"
        )
    if ratio <= TOLERANCE_BAND and not opposite and refined is None:
        fd = "finite-difference" in (method, ref)
        return "tolerance: within a decade of what the tolerances explain; tighten rtol and re-check" + (
            " (finite differences are the least accurate route)" if fd else ""
        )
    return _not_explained(prob, q, v, r, method, ref, opposite, refined)


def _not_explained(prob, q, v, r, method, ref, opposite, refined) -> str:
    hint = f"not explained by tolerances: an error in {method} (against {ref})"
    if refined is not None:
        hint += f" (still {refined[1]:.3g}x the allowance at rtol {refined[0]:.0e}: the error does not shrink)"
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


def remedy(prob, kappa, non_analytic, stiffness, routes) -> str:
    """What would settle a disagreement among the references ``routes``: never a term of the
    method under test (the references, not the method, are in question)."""
    if non_analytic:
        fns = ", ".join(sorted({fn for _, fn in non_analytic}))
        return f"the problem uses {fns}: the routes differ at kinks; use a smooth surrogate (softplus)"
    if stiffness >= STIFFNESS:
        return (
            f"the problem is stiff (max |Re lambda| * span = {stiffness:.3g} along the trajectory): re-check with "
            "solver='BDF' or 'Radau' (forward sensitivities are then the reference)"
        )
    if kappa >= CHAOS_GROWTH:
        return f"the flow amplifies perturbations by kappa = {kappa:.3g}: shorten the time span, or tighten rtol"
    hint = "tighten rtol (and atol) and re-check"
    if "finite-difference" in routes:
        hint += "; finite differences are the least accurate reference (their step trades truncation for noise)"
    return hint
