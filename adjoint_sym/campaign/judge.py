"""A gradient computed elsewhere, judged against the references on the quantities it returns.

:func:`adjoint_sym.verify.compare` judges a candidate that reports every quantity the
references do.  The gradient-function contract (:func:`adjoint_sym.testing.as_gradient`)
leaves ``dtimes`` optional and ``dt0`` may be ``None``, and a function may return
``dtimes`` for a final loss too; so :func:`judge_gradient` aligns the groups first (what
the function did not return is not judged, and a note says so), then hands every
gradient to the comparison engine that ``check`` and ``compare`` end in, with the same
tolerance model and the same causes.

Examples
--------
>>> import dataclasses
>>> from adjoint_sym import FinalLoss, ODESystem, Problem, gradient
>>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
>>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
>>> good = dataclasses.replace(gradient(prob), dt0=None)
>>> report = judge_gradient(prob, good, ["complex-step"], label="mine")
>>> report.ok, report.notes[0]
(True, 'dL/dt0 not returned by mine: not judged')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import IMPLICIT
from ..verify.engine import compare_routes
from ..verify.report import Report
from ..verify.routes import gradient
from ..verify.tolerance import accuracy, conditioning


def judge_gradient(
    problem: Problem,
    candidate: Gradient,
    references: Sequence[str] = ("complex-step",),
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    candidate_rtol: float | None = None,
    label: str = "candidate",
) -> Report:
    """``candidate`` against ``references`` (the first that runs is the reference).

    Complex step is skipped for implicit solvers and for non-analytic right-hand sides
    (as in :func:`~adjoint_sym.verify.check`); forward sensitivities judge when no
    listed reference runs.
    """
    notes: list[str] = []
    candidate = _aligned(problem, candidate, label, notes)
    grads: dict[str, Gradient] = {label: candidate}
    for method in [*references, "forward"]:
        if method in grads or (method == "forward" and len(grads) > 1):
            continue
        if method == "complex-step" and solver in IMPLICIT:
            notes.append(f"complex-step skipped: solver={solver!r} marks a stiff problem; forward sensitivities judge")
            continue
        try:
            g = gradient(problem, method, solver=solver, rtol=rtol, atol=atol)
        except InvalidModelError as exc:
            if method != "complex-step":
                raise
            notes.append(f"complex-step skipped: {exc}")
            continue
        grads[method] = _like(g, candidate)
    reference = next(m for m in grads if m != label)
    tau = {m: accuracy(g, rtol) for m, g in grads.items()}
    if candidate_rtol is not None:
        tau[label] = float(candidate_rtol)
    kappa = conditioning(problem, grads, solver, rtol, atol)
    return compare_routes(problem, grads, reference, tau, kappa, solver, notes)


def _aligned(problem: Problem, candidate: Gradient, label: str, notes: list[str]) -> Gradient:
    """Drop what the problem has no use for (``dtimes`` of a final loss, ``dt1`` of an
    observation loss); note what the candidate left out."""
    if problem.is_final_loss and candidate.dtimes is not None:
        candidate = dataclasses.replace(candidate, dtimes=None)
    if not problem.is_final_loss and candidate.dt1 is not None:
        candidate = dataclasses.replace(candidate, dt1=None)
    if candidate.dt0 is None:
        notes.append(f"dL/dt0 not returned by {label}: not judged")
    if problem.is_final_loss and candidate.dt1 is None:
        notes.append(f"dL/dt1 not returned by {label}: not judged")
    if not problem.is_final_loss and candidate.dtimes is None:
        notes.append(f"dL/dt_i not returned by {label}: not judged")
    return candidate


def _like(reference: Gradient, candidate: Gradient) -> Gradient:
    """The reference with the time derivatives the candidate lacks left out."""
    missing = {k: None for k in ("dt0", "dt1", "dtimes") if getattr(candidate, k) is None}
    return dataclasses.replace(reference, **missing) if missing else reference


__all__ = ["judge_gradient"]
