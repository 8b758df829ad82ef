"""The gradient checker: every route to ``dL/dx``, compared quantity by quantity.

:func:`check` runs several methods (adjoints and references), compares each quantity
(every ``dL/dh0`` entry, every parameter entry, ``dL/dt0``, ``dL/dt1`` or ``dL/dt_i``)
against the best reference available (complex step, then forward sensitivities, then
finite differences) and explains every disagreement.  :func:`compare` checks a gradient
computed elsewhere; :func:`assert_gradients_agree` raises with the table;
:func:`convergence_study` shows errors shrinking with the tolerance and the step.

The tolerance model and the causes of disagreement are in
:mod:`adjoint_sym.verify.tolerance`, the comparison engine in
:mod:`adjoint_sym.verify.engine`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import GradientMismatchError, InvalidModelError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import EXPLICIT, IMPLICIT, check_solver
from ..reference.complex_step import non_analytic_functions
from ..reference.taylor import MIN_ORDER, taylor_test
from .engine import compare_routes
from .report import Failure, Report
from .routes import gradient
from .routes import methods as all_methods
from .tolerance import accuracy, conditioning

#: References in order of preference.
BEST_REFERENCES = ("complex-step", "forward", "finite-difference")

DEFAULT_METHODS = ("adjoint", "forward", "complex-step", "finite-difference")


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


def pick_reference(prob: Problem, solver: str, available: Sequence[str]) -> str:
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
        Names accepted by :func:`adjoint_sym.verify.routes.gradient`.  ``"backprop"`` runs on
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
    ref = reference or pick_reference(prob, solver, list(grads))
    if ref not in grads:
        g = _run(prob, ref, solver, rtol, atol, options, notes)
        if g is None:  # complex-step refused: forward sensitivities always apply
            ref = "forward"
            g = _run(prob, ref, solver, rtol, atol, options, notes)
        grads[ref] = g
    accuracies = {m: accuracy(g, rtol) for m, g in grads.items()}
    kappa = conditioning(prob, grads, solver, rtol, atol)
    report = compare_routes(prob, grads, ref, accuracies, kappa, solver, notes)
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
    _check_shapes(prob, candidate)
    notes: list[str] = []
    name = label or f"candidate ({candidate.method})"
    grads: dict[str, Gradient] = {name: candidate}
    accuracies = {name: float(candidate_rtol) if candidate_rtol is not None else accuracy(candidate, rtol)}
    ref = None
    for m in reference_methods:
        g = _run(prob, m, solver, rtol, atol, {}, notes)
        if g is not None:
            grads[m] = g
            accuracies[m] = accuracy(g, rtol)
            ref = ref or m
    if ref is None:
        ref = "forward"
        grads[ref] = _run(prob, ref, solver, rtol, atol, {}, notes)
        accuracies[ref] = accuracy(grads[ref], rtol)
    kappa = conditioning(prob, grads, solver, rtol, atol)
    return compare_routes(prob, grads, ref, accuracies, kappa, solver, notes)


def _check_shapes(prob: Problem, candidate: Gradient) -> None:
    """Refuse a candidate whose matrix gradients are not shaped like their parameters (a transpose?)."""
    for name, shape in prob.system.param_shapes.items():
        got = np.shape(candidate.dparams.get(name, 0.0))
        if shape and got != tuple(shape):
            raise InvalidModelError(
                f"the candidate's dparams[{name!r}] has shape {got} but the parameter {name} has shape {tuple(shape)}; "
                "return each gradient in its parameter's shape (a transposed matrix would otherwise be compared "
                "entry by entry with the wrong entries)"
            )


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


__all__ = ["BEST_REFERENCES", "DEFAULT_METHODS", "assert_gradients_agree", "check", "compare"]
