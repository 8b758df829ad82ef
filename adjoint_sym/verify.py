"""The gradient checker: every route to ``dL/dx``, compared quantity by quantity.

:func:`check` runs several methods (adjoints and references), compares each quantity
(every ``dL/dh0`` entry, every parameter entry, ``dL/dt0``, ``dL/dt1`` or ``dL/dt_i``)
against the best reference available (complex step, then forward sensitivities, then
finite differences) and explains every disagreement.  :func:`compare` checks a gradient
computed elsewhere; :func:`assert_gradients_agree` raises with the table;
:func:`convergence_study` shows errors shrinking with the tolerance and the step.

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

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .dispatch import gradient
from .dispatch import methods as all_methods
from .errors import AdjointSymError, GradientMismatchError, InvalidModelError, SolverFailedError
from .gradients import DRIFT_WARNING
from .problem import Problem
from .reference.complex_step import non_analytic_functions
from .reference.finite_difference import input_scale, input_vector, trajectory
from .reference.forward import state_growth
from .reference.taylor import MIN_ORDER, taylor_test
from .report import AGREEMENT, Failure, Report
from .result import Gradient
from .solve import EXPLICIT, IMPLICIT, check_solver

#: Deviations within this factor of the allowance are blamed on tolerances.
TOLERANCE_BAND = 1e3
#: Amplification above which a failure is blamed on chaos (ill-conditioning).
CHAOS_GROWTH = 1e4
#: ``max |Re lambda(f_h)| * |t1 - t0|`` above which an explicit solver is blamed for stiffness.
STIFFNESS = 1e3

#: References in order of preference.
BEST_REFERENCES = ("complex-step", "forward", "finite-difference")
DEFAULT_METHODS = ("adjoint", "forward", "complex-step", "finite-difference")


def _accuracy(g: Gradient, rtol: float) -> float:
    acc = g.stats.get("accuracy")
    return float(acc) if acc is not None else float(rtol)


def _run(prob, method, solver, rtol, atol, options, notes) -> Gradient | None:
    if method == "complex-step" and solver in IMPLICIT:
        notes.append(
            f"complex-step skipped: it needs an explicit solver and solver={solver!r} marks a stiff problem, "
            "where DOP853 at rtol 1e-13 would crawl; forward sensitivities are the reference"
        )
        return None
    if method == "backprop" and solver in IMPLICIT and "backprop" not in options:
        notes.append(
            f"backprop skipped: it differentiates an explicit Runge-Kutta solve, and solver={solver!r} marks a "
            "stiff problem where explicit steps would be stability-limited; pass options={'backprop': {...}} to force"
        )
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            g = gradient(prob, method, solver=solver, rtol=rtol, atol=atol, **options.get(method, {}))
        except InvalidModelError as exc:
            if method == "complex-step":  # refused (non-analytic f): say so, compare the rest
                notes.append(f"complex-step skipped: {exc}")
                return None
            raise
    for w in caught:
        notes.append(f"{method}: {w.message}")
    if "backsolve_drift" in g.stats and not caught:
        notes.append(
            f"{method}: backward-reconstructed state drifted {g.stats['backsolve_drift']:.3g} tolerance units "
            "from the forward one (large values: use method='interpolating')"
        )
    if "note" in g.stats:
        notes.append(f"{method}: {g.stats['note']}")
    return g


def _pick_reference(prob: Problem, solver: str, available: Sequence[str]) -> str:
    for name in BEST_REFERENCES:
        if name in available:
            return name
    if not non_analytic_functions(prob) and solver in EXPLICIT:
        return "complex-step"
    return "forward"


def check(
    prob: Problem,
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    reference: str | None = None,
    options: Mapping[str, dict] | None = None,
    taylor: bool = False,
) -> Report:
    """Compute the gradient by every method in ``methods`` and compare (see the module docstring).

    Parameters
    ----------
    prob : Problem
    methods : sequence of str
        Names accepted by :func:`adjoint_sym.dispatch.gradient`.  ``"backprop"`` runs on
        the steps of an adaptive solve at ``rtol`` (a fine grid) unless ``options`` says
        otherwise.
    solver, rtol, atol
        Passed to every method (references tighten their own solves).
    reference : str, optional
        The method to compare against; default the best of ``methods`` (complex step,
        forward, finite differences), computed in addition if none is listed.
    options : mapping, optional
        Per-method keyword options, e.g. ``{"backprop": {"scheme": "rk4", "steps": 400}}``.
    taylor : bool
        Also run :func:`~adjoint_sym.reference.taylor.taylor_test` on every gradient (a
        check that needs no second method): an order below 1.8 is a failure.

    Returns
    -------
    Report

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> report = check(prob, ["adjoint", "forward", "complex-step"])
    >>> report.ok, report.reference
    (True, 'complex-step')
    """
    check_solver(solver)
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in all_methods()]
    if unknown:
        raise InvalidModelError(f"unknown method {unknown[0]!r}; choose among {', '.join(all_methods())}")
    options = dict(options or {})
    notes: list[str] = []
    grads: dict[str, Gradient] = {}
    for m in methods:
        g = _run(prob, m, solver, rtol, atol, options, notes)
        if g is not None:
            grads[m] = g
    ref = reference or _pick_reference(prob, solver, list(grads))
    if ref not in grads:
        g = _run(prob, ref, solver, rtol, atol, options, notes)
        if g is None:  # complex-step refused: forward sensitivities always apply
            ref = "forward"
            g = _run(prob, ref, solver, rtol, atol, options, notes)
        grads[ref] = g
    accuracies = {m: _accuracy(g, rtol) for m, g in grads.items()}
    kappa = _conditioning(prob, grads, solver, rtol, atol)
    report = _compare(prob, grads, ref, accuracies, kappa, solver, notes)
    return _with_taylor(prob, report, solver) if taylor else report


def _with_taylor(prob: Problem, report: Report, solver: str) -> Report:
    """Add a Taylor test of every gradient to ``report``."""
    results, failures, notes = {}, list(report.failures), list(report.notes)
    tight_solver = solver if solver in IMPLICIT else "DOP853"
    for m, g in report.gradients.items():
        res = taylor_test(prob, g, solver=tight_solver)
        results[m] = res
        notes.append(f"Taylor test of {m}: remainder order {res.fitted_order:.2f} ({'ok' if res.ok else 'FAILED'})")
        if not res.ok:
            failures.append(
                Failure(
                    "Taylor remainder order",
                    m,
                    "(second order expected)",
                    res.fitted_order,
                    2.0,
                    abs(2.0 - res.fitted_order),
                    2.0 - MIN_ORDER,
                    f"|L(x + eps v) - L(x) - eps g.v| shrinks like eps^{res.fitted_order:.2f}, not eps^2: "
                    "g is not the derivative of L along a random direction v",
                )
            )
    return dataclasses.replace(report, ok=not failures, failures=tuple(failures), notes=tuple(notes), taylor=results)


def compare(
    prob: Problem,
    candidate: Gradient,
    reference_methods: Sequence[str] = ("complex-step",),
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    candidate_rtol: float | None = None,
    label: str | None = None,
) -> Report:
    """Check a gradient computed elsewhere against references.

    Parameters
    ----------
    prob : Problem
    candidate : Gradient
        The gradient under test.
    reference_methods : sequence of str
        The first is the reference; the others are compared too.
    candidate_rtol : float, optional
        The accuracy ``tau`` of the candidate; default ``candidate.stats["accuracy"]`` or ``rtol``.
    label : str, optional
        The candidate's column name; default ``"candidate (<method>)"``.

    Examples
    --------
    >>> import dataclasses
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss, gradient
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> good = gradient(prob, "forward")
    >>> compare(prob, good).ok
    True
    >>> bad = dataclasses.replace(good, dparams={"k": -good.dparams["k"]})
    >>> compare(prob, bad).failures[0].quantity
    'dL/dk'
    """
    check_solver(solver)
    notes: list[str] = []
    name = label or f"candidate ({candidate.method})"
    grads: dict[str, Gradient] = {name: candidate}
    accuracies = {name: float(candidate_rtol) if candidate_rtol is not None else _accuracy(candidate, rtol)}
    ref = None
    for m in reference_methods:
        g = _run(prob, m, solver, rtol, atol, {}, notes)
        if g is not None:
            grads[m] = g
            accuracies[m] = _accuracy(g, rtol)
            ref = ref or m
    if ref is None:
        ref = "forward"
        grads[ref] = _run(prob, ref, solver, rtol, atol, {}, notes)
        accuracies[ref] = _accuracy(grads[ref], rtol)
    kappa = _conditioning(prob, grads, solver, rtol, atol)
    return _compare(prob, grads, ref, accuracies, kappa, solver, notes)


def assert_gradients_agree(prob: Problem, methods: Sequence[str] = DEFAULT_METHODS, **kwargs) -> Report:
    """:func:`check`, raising :class:`GradientMismatchError` (an ``AssertionError``) with the table.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> assert_gradients_agree(prob, ["adjoint", "complex-step"]).ok
    True
    """
    report = check(prob, methods, **kwargs)
    if not report.ok:
        raise GradientMismatchError(report.text())
    return report


# -- comparing ---------------------------------------------------------------------------
def _conditioning(prob, grads, solver, rtol, atol) -> float:
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


def _stiffness(prob: Problem) -> float:
    try:
        J = prob.kernels.jac_h(prob.t0, prob.h0, prob.theta)
        lam = np.linalg.eigvals(np.asarray(J, dtype=float))
    except (AdjointSymError, np.linalg.LinAlgError, ValueError):
        return 0.0
    return float(np.max(np.abs(lam.real), initial=0.0) * abs(prob.t1 - prob.t0))


def _compare(prob, grads, ref, accuracies, kappa, solver, notes) -> Report:
    names = prob.system.state_names
    values = {m: g.quantities(names) for m, g in grads.items()}
    quantities = tuple(values[ref])
    for m, vals in values.items():
        if tuple(vals) != quantities:
            raise InvalidModelError(f"{m} reports quantities {list(vals)} but {ref} reports {list(quantities)}")
    refv = values[ref]
    scales = input_scales(prob, solver=solver, rtol=1e-6, atol=1e-12)  # sizes only: a loose solve will do
    smooth = non_analytic_functions(prob)
    stiffness = _stiffness(prob) if solver in EXPLICIT else 0.0
    errors: dict = {}
    deviations: dict = {}
    failures: list[Failure] = []
    for m in grads:
        if m == ref:
            continue
        allowed = AGREEMENT * kappa * (accuracies[m] + accuracies[ref])
        errors[m], deviations[m] = {}, {}
        devs = scaled_deviations(values[m], refv, scales)
        for q in quantities:
            v, r = values[m][q], refv[q]
            diff = abs(v - r)
            dev = devs[q]
            errors[m][q] = diff / abs(r) if r != 0 else (0.0 if diff == 0 else np.inf)
            deviations[m][q] = dev / allowed
            if not dev <= allowed:  # catches NaN too
                stats = grads[m].stats
                drift = max(
                    float(stats.get("backsolve_drift", 0.0)), float(grads[ref].stats.get("backsolve_drift", 0.0))
                )
                fixed = bool(stats.get("fixed_steps") or grads[ref].stats.get("fixed_steps"))
                cause = _cause(prob, q, v, r, dev / allowed, kappa, smooth, stiffness, m, ref, fixed, drift)
                failures.append(Failure(q, m, ref, v, r, dev, allowed, cause))
    notes = [*notes, *_outlier_notes(failures, values, scales, accuracies, kappa)]
    deviations[ref] = dict.fromkeys(quantities, 0.0)
    errors[ref] = dict.fromkeys(quantities, 0.0)
    order = [m for m in grads if m != ref]
    return Report(
        ok=not failures,
        reference=ref,
        methods=(ref, *order),
        quantities=quantities,
        values=values,
        errors=errors,
        deviations=deviations,
        failures=tuple(failures),
        accuracies=dict(accuracies),
        conditioning=kappa,
        notes=tuple(notes),
        gradients=dict(grads),
    )


def _outlier_notes(failures, values, scales, accuracies, kappa) -> list[str]:
    """Where two methods agree with each other but both fail against the reference, say so:
    the reference, not the methods, is then the likely culprit."""
    by_quantity: dict[str, list[str]] = {}
    for f in failures:
        by_quantity.setdefault(f.quantity, []).append(f.method)
    notes = []
    for q, failed in by_quantity.items():
        for i, a in enumerate(failed):
            for b in failed[i + 1 :]:
                dev = scaled_deviations(values[a], values[b], scales)[q]
                if dev <= AGREEMENT * kappa * (accuracies[a] + accuracies[b]):
                    ref = next(f.reference for f in failures if f.quantity == q)
                    notes.append(
                        f"{q}: {a} and {b} agree with each other but not with the reference {ref}; "
                        "the reference is the likely outlier (re-check with reference=... or another solver)"
                    )
    return notes


def _cause(prob, q, v, r, ratio, kappa, non_analytic, stiffness, method, ref, fixed_steps=False, drift=0.0) -> str:
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


# -- convergence -------------------------------------------------------------------------
def relative_error(g: Gradient, ref: Gradient, scales=None, state_names=None) -> float:
    """The largest of :func:`scaled_deviations` (scales default to 1): the checker's normalized error."""
    a, b = g.quantities(state_names), ref.quantities(state_names)
    scales = np.ones(len(b)) if scales is None else scales
    return max(scaled_deviations(a, b, scales).values(), default=0.0)


@dataclass(frozen=True)
class ConvergenceStudy:
    """Errors against a tight reference as tolerances and steps shrink.

    Attributes
    ----------
    rtols : ndarray
    errors : dict
        ``errors[method]``: :func:`relative_error` against the reference at each ``rtol``.
    steps : ndarray
        Step counts of the fixed-step backprop runs.
    backprop_vs_adjoint : ndarray
        Distance between backprop (discretize-then-optimize) with ``steps[k]`` steps and
        the adjoint (optimize-then-discretize) at the tightest ``rtol``.
    backprop_order : float
        Fitted slope of ``log(distance)`` against ``log(step size)``: the scheme's order.
    """

    rtols: np.ndarray
    errors: dict
    steps: np.ndarray
    backprop_vs_adjoint: np.ndarray
    backprop_order: float
    reference: str
    scheme: str

    def as_dict(self) -> dict:
        return {
            "rtols": self.rtols.tolist(),
            "errors": {m: v.tolist() for m, v in self.errors.items()},
            "steps": self.steps.tolist(),
            "backprop_vs_adjoint": self.backprop_vs_adjoint.tolist(),
            "backprop_order": self.backprop_order,
            "reference": self.reference,
            "scheme": self.scheme,
        }

    def markdown(self) -> str:
        methods = list(self.errors)
        lines = ["| rtol | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
        for i, r in enumerate(self.rtols):
            lines.append(f"| {r:.0e} | " + " | ".join(f"{self.errors[m][i]:.2e}" for m in methods) + " |")
        lines += ["", f"| steps | backprop ({self.scheme}) vs adjoint |", "|---|---|"]
        lines += [f"| {int(n)} | {d:.2e} |" for n, d in zip(self.steps, self.backprop_vs_adjoint)]
        lines.append(f"\nfitted order of backprop -> adjoint: {self.backprop_order:.2f}")
        return "\n".join(lines) + "\n"

    def plot(self, ax=None):
        """Two log-log panels: each method's error against rtol (with fitted orders) and
        backprop's distance to the adjoint against steps.

        Returns the matplotlib ``Figure`` (built without pyplot, so nothing accumulates in
        a session); pass ``ax`` (two axes) to draw into existing ones.  Needs matplotlib:
        ``pip install 'adjoint_sym[plot]'``.
        """
        from .plot import convergence  # plotting sits on top; matplotlib loads only here

        if ax is None:
            from matplotlib.figure import Figure

            figure = Figure(figsize=(10, 4), layout="constrained")
            ax = figure.subplots(1, 2)
        convergence(self, ax=ax[0], ylabel=f"error vs {self.reference}", title="error against tolerance")
        ax[1].loglog(self.steps, self.backprop_vs_adjoint, "o-", label=f"backprop ({self.scheme})")
        ax[1].set(xlabel="steps", ylabel="|backprop - adjoint|", title="discretize vs optimize first")
        ax[1].legend()
        return ax[0].figure


def convergence_study(
    prob: Problem,
    methods: Sequence[str] = ("adjoint", "forward"),
    rtols: Sequence[float] = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10),
    *,
    solver: str = "DOP853",
    reference: str | None = None,
    steps: Sequence[int] = (4, 8, 16, 32, 64),
    scheme: str = "rk4",
) -> ConvergenceStudy:
    """Errors of ``methods`` against a tight reference as ``rtol`` sweeps, and backprop
    with ``steps`` fixed steps of ``scheme`` converging to the adjoint.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> study = convergence_study(prob, ["adjoint"], rtols=[1e-4, 1e-8], steps=[4, 8, 16])
    >>> bool(study.errors["adjoint"][1] < study.errors["adjoint"][0])
    True
    >>> round(study.backprop_order)  # RK4
    4
    """
    ref_name = reference or _pick_reference(prob, solver, [])
    tight = min(rtols)
    ref = gradient(prob, ref_name, solver=solver, rtol=tight * 1e-2, atol=1e-14)
    names = prob.system.state_names
    scales = input_scales(prob, solver=solver, rtol=tight, atol=tight * 1e-2)
    errors = {}
    for m in methods:
        errors[m] = np.array(
            [relative_error(gradient(prob, m, solver=solver, rtol=r, atol=r * 1e-2), ref, scales, names) for r in rtols]
        )
    adj = gradient(prob, "adjoint", solver=solver, rtol=tight, atol=tight * 1e-2)
    dist = np.array(
        [relative_error(gradient(prob, "backprop", scheme=scheme, steps=int(n)), adj, scales, names) for n in steps]
    )
    good = dist > 0
    order = (
        float(-np.polyfit(np.log(np.asarray(steps, float)[good]), np.log(dist[good]), 1)[0])
        if good.sum() > 1
        else float("nan")
    )
    return ConvergenceStudy(np.asarray(rtols, float), errors, np.asarray(steps), dist, order, ref_name, scheme)


__all__ = [
    "AGREEMENT",
    "BEST_REFERENCES",
    "ConvergenceStudy",
    "Failure",
    "Report",
    "assert_gradients_agree",
    "check",
    "compare",
    "convergence_study",
    "input_scales",
    "relative_error",
    "scaled_deviations",
]
