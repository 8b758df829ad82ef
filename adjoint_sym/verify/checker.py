"""The gradient checker: every route to ``dL/dx``, compared quantity by quantity.

:func:`check` runs several methods (adjoints and references), judges each quantity
(every ``dL/dh0`` entry, every parameter entry, ``dL/dt0``, ``dL/dt1`` or ``dL/dt_i``)
against the references (complex step, forward sensitivities, finite differences: two
that agree are needed to fail a method) and explains every disagreement.  :func:`compare` checks a gradient
computed elsewhere; :func:`assert_gradients_agree` raises with the table;
:func:`convergence_study` shows errors shrinking with the tolerance and the step.

The tolerance model and the causes of disagreement are in
:mod:`adjoint_sym.verify.tolerance`, the comparison engine in
:mod:`adjoint_sym.verify.engine`, running, escalating and re-running in
:mod:`adjoint_sym.verify.session`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import GradientMismatchError, InvalidModelError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import EXPLICIT, IMPLICIT, check_solver
from ..reference.complex_step import non_analytic_functions
from ..reference.taylor import MIN_ORDER, taylor_test
from .report import Failure, Report
from .routes import methods as all_methods
from .session import BEST_REFERENCES, Session
from .tolerance import accuracy

DEFAULT_METHODS = ("adjoint", "forward", "complex-step", "finite-difference")


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
    """Compute the gradient by every method in ``methods`` and give the verdict.

    Every method (an adjoint, ``"backprop"``, any route that is not a reference) is judged
    against the references among ``methods`` (forward sensitivities, complex step, finite
    differences), see :mod:`adjoint_sym.verify.engine`: it fails only where two
    references that agree with each other both disagree with it.  Where fewer than two
    references can decide, further ones are run (complex step, forward, finite
    differences); a method that fails by at most ``REFINE_BAND`` times the allowance, or
    is undecided, is re-run at ``rtol / 100``: a solver's error shrinks, a wrong term does
    not.  A method that raises is recorded as failed with its message.

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
        The reference the table is shown against; default the best of ``methods`` that no
        consensus outvotes (complex step, forward, finite differences), computed in
        addition if none is listed.
    options : mapping, optional
        Per-method keyword options, e.g. ``{"backprop": {"scheme": "rk4", "steps": 400}}``.
    taylor : bool
        Also run :func:`~adjoint_sym.reference.taylor.taylor_test` on every gradient (a
        check that needs no second method): an order below 1.8 is a failure.

    Returns
    -------
    Report
        ``report.verdict`` is ``"ok"``, ``"fail"`` or ``"inconclusive"``.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> report = check(prob, ["adjoint", "forward", "complex-step"])
    >>> report.verdict, report.reference
    ('ok', 'complex-step')
    """
    check_solver(solver)
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in all_methods()]
    if reference is not None and reference not in all_methods():
        unknown.append(reference)
    if unknown:
        raise InvalidModelError(f"unknown method {unknown[0]!r}; choose among {', '.join(all_methods())}")
    session = Session(prob, solver, rtol, atol, options)
    for m in methods:
        session.add(m)
    ref = reference or pick_reference(prob, solver, session.references())
    if ref not in session.grads and not session.add(ref) and not session.references():
        session.escalate()
    if not session.grads:
        raise InvalidModelError(f"no method produced a gradient: {'; '.join(session.notes)}")
    report = session.decide([ref])
    return _with_taylor(prob, report, solver) if taylor else report


def _with_taylor(prob: Problem, report: Report, solver: str) -> Report:
    """Add a Taylor test of every gradient to ``report``."""
    results, failures, notes = {}, list(report.failures), list(report.notes)
    tight_solver = solver if solver in IMPLICIT else "DOP853"
    for m, g in report.gradients.items():
        if m not in report.methods:
            continue
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
    verdict = "fail" if len(failures) > len(report.failures) else report.verdict
    return dataclasses.replace(report, verdict=verdict, failures=tuple(failures), notes=tuple(notes), taylor=results)


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
        References run first; the first is shown as the reference, all of them vote.  When
        fewer than two agreeing ones can decide, forward sensitivities (then finite
        differences) are run as well; the candidate is never re-run (it was computed
        elsewhere), the references that track ``rtol`` may be.
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
    name = label or f"candidate ({candidate.method})"
    session = Session(prob, solver, rtol, atol)
    candidate, session.omit = _returned(prob, candidate, name, session.notes)
    session.grads[name] = candidate
    session.taus[name] = float(candidate_rtol) if candidate_rtol is not None else accuracy(candidate, rtol)
    session.fixed.add(name)
    session.tried.add(name)
    for m in reference_methods:
        session.add(m)
    if not session.references():
        session.add("forward") or session.escalate()
    if not session.references():
        raise InvalidModelError(f"no reference produced a gradient: {'; '.join(session.notes)}")
    return session.decide(list(reference_methods[:1]))


def _returned(prob: Problem, candidate: Gradient, name: str, notes: list[str]) -> tuple[Gradient, set[str]]:
    """The candidate's time derivatives that the problem has (``dtimes`` of a final loss and
    ``dt1`` of an observation loss are dropped), and those it did not return: not judged."""
    if prob.is_final_loss and candidate.dtimes is not None:
        candidate = dataclasses.replace(candidate, dtimes=None)
    if not prob.is_final_loss and candidate.dt1 is not None:
        candidate = dataclasses.replace(candidate, dt1=None)
    expected = ("dt0", "dt1") if prob.is_final_loss else ("dt0", "dtimes")
    missing = {k for k in expected if getattr(candidate, k) is None}
    readable = {"dt0": "dL/dt0", "dt1": "dL/dt1", "dtimes": "dL/dt_i"}
    notes += [f"{readable[k]} not returned by {name}: not judged" for k in expected if k in missing]
    return candidate, missing


def _check_shapes(prob: Problem, candidate: Gradient) -> None:
    """Refuse a candidate that is not a Gradient, or whose matrix gradients are not shaped like
    their parameters (a transpose?)."""
    if not isinstance(candidate, Gradient):
        raise InvalidModelError(
            f"compare() judges a Gradient, got {type(candidate).__name__}; a gradient function's mapping "
            "(loss, dh0, dparams, dt0, dt1) becomes one with adjoint_sym.testing.as_gradient(value, problem)"
        )
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
