"""A gradient computed elsewhere, judged against the references on the quantities it returns.

:func:`adjoint_sym.verify.compare` judges a candidate that reports every quantity the
references do.  The gradient-function contract (:func:`adjoint_sym.testing.as_gradient`)
leaves ``dtimes`` optional and ``dt0`` may be ``None``, and a function may return
``dtimes`` for a final loss too; ``compare`` judges the quantities the candidate returned
(what it did not return is not judged, and a note says so), with the verdict rules,
tolerance model and causes that ``check`` uses.

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

from collections.abc import Sequence

from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..verify.checker import compare
from ..verify.report import Report


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
    """``candidate`` against ``references`` by :func:`adjoint_sym.verify.compare`, which judges
    only the time derivatives the candidate returned (and says which it did not)."""
    return compare(
        problem, candidate, references, solver=solver, rtol=rtol, atol=atol, candidate_rtol=candidate_rtol, label=label
    )


__all__ = ["judge_gradient"]
