"""The property suite's comparison: your gradient against the references, as a table.

A :class:`Comparison` is a view of the verifier's engine
(:mod:`adjoint_sym.verify.engine`): one :class:`Row` per quantity with your value, the
shown reference's, the deviation in units of ``atol + rtol |reference|`` and the
engine's status.  Your column agrees with a reference by those tolerances (yours); two
references agree by the verifier's tolerance model, each at the accuracy it claims.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from ..numeric.loss import CallableLoss
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..reference.complex_step import non_analytic_functions
from ..verify.engine import Context, build_report, judge
from ..verify.report import Report
from ..verify.tolerance import Deviation, ToleranceModel, accuracy, conditioning, input_scales, remedy

#: Tolerances of the reference solve (see :mod:`adjoint_sym.testing.gradient_function`).
REFERENCE_RTOL = 1e-10
REFERENCE_ATOL = 1e-12
#: Global error of a tolerance-controlled solve, in units of its local tolerance: 1 to
#: 100 for embedded Runge-Kutta pairs on non-stiff problems (Hairer, Norsett & Wanner,
#: Solving ODEs I, sec. II.4); the strategies keep spans short and growth bounded.
GLOBAL_ERROR_FACTOR = 100
#: Default comparison tolerances: the reference's error (``GLOBAL_ERROR_FACTOR *
#: REFERENCE_RTOL = 1e-8``) plus as much again, twice over, for the code under test:
#: 1e-6, three decades below the 1e-3 relative errors the check must catch.
DEFAULT_RTOL = GLOBAL_ERROR_FACTOR**2 * REFERENCE_RTOL
#: The absolute floor, for quantities that vanish: the reference's absolute error
#: (``GLOBAL_ERROR_FACTOR * REFERENCE_ATOL = 1e-10``) with the same margin: 1e-8.
DEFAULT_ATOL = GLOBAL_ERROR_FACTOR**2 * REFERENCE_ATOL
#: References in order of preference (as in :mod:`adjoint_sym.verify`): both are
#: independent of the adjoint code; the complex step is near machine precision and, on
#: the built-in strategies, three times faster than forward sensitivities, but refuses
#: non-analytic right-hand sides (``abs``, ``max``), where forward sensitivities take over.
REFERENCE_PREFERENCE = ("complex-step", "forward")


@dataclass(frozen=True)
class Row:
    """One quantity: both values, the deviation in tolerance units (pass <= 1) and the verdict.

    ``status`` is the engine's (:mod:`adjoint_sym.verify.engine`): ``"ok"``, ``"fail"``
    (two references that agree with each other disagree with yours) or ``"inconclusive"``
    (the references disagree among themselves).
    """

    quantity: str
    yours: float
    reference: float
    deviation: float
    status: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok" if self.status else self.deviation <= 1.0


@dataclass(frozen=True)
class Comparison:
    """Every quantity of one gradient against the references: a view of the engine's report.

    Attributes
    ----------
    rows : tuple of Row
    reference : str
        The reference shown in the table.
    rtol, atol : float
        The comparison tolerances.
    verdict : {"ok", "fail", "inconclusive"}
    references : tuple of str
        Every reference that took part.
    report : Report
        The engine's :class:`~adjoint_sym.verify.report.Report` (causes, remedies, values).
    """

    rows: tuple[Row, ...]
    reference: str
    rtol: float
    atol: float
    verdict: str = ""
    references: tuple[str, ...] = ()
    report: Report | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok" if self.verdict else all(r.ok for r in self.rows)

    @property
    def failures(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.status == "fail" or (not r.status and not r.ok))

    def table(self) -> str:
        """A Markdown table quantity / yours / reference / deviation, failures marked."""
        lines = [
            f"| quantity | yours | reference ({self.reference}) | deviation / tol | |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            mark = {"fail": "**FAIL**", "inconclusive": "?"}.get(r.status, "ok" if r.ok else "**FAIL**")
            lines.append(f"| {r.quantity} | {r.yours:.12g} | {r.reference:.12g} | {r.deviation:.3g} | {mark} |")
        return "\n".join(lines)


_YOURS = "yours"


def _quantities(g: Gradient, problem: Problem) -> dict[str, float]:
    return {"L": float(g.loss), **g.quantities(problem.system.state_names)}


def _kept(problem: Problem, yours: Gradient, reference: Gradient, ignore: Collection[str]) -> list[str]:
    """The quantities compared: the reference's, less the ignored groups (and ``dtimes`` when
    yours has none: they are optional for the code under test)."""
    groups = {"dh0": "dL/dh0[", "dt0": "dL/dt0", "dt1": "dL/dt1", "dtimes": "dL/dt_obs["}

    def keep(q: str) -> bool:
        if q == "L":
            return "loss" not in ignore
        for group in ignore:
            prefix = groups.get(group)
            if prefix is not None and q.startswith(prefix):
                return False
            if group == "dparams" and q.startswith("dL/d") and not any(q.startswith(p) for p in groups.values()):
                return False
        return not (yours.dtimes is None and q.startswith("dL/dt_obs["))

    return [q for q in _quantities(reference, problem) if keep(q)]


def judge_gradient(
    problem: Problem, yours: Gradient, references: Sequence[Gradient], rtol: float, atol: float,
    ignore: Collection[str], confirmations: int,
) -> Comparison:  # fmt: skip
    """Judge ``yours`` against ``references`` with the verifier's engine: the :class:`Comparison`.

    ``confirmations`` is 2 (two agreeing references fail ``yours``) or 1 (the caller vouches
    for a single reference, as :func:`~adjoint_sym.testing.compare_gradients` does).
    """
    quantities = _kept(problem, yours, references[0], ignore)
    mine = _quantities(yours, problem)
    values = {_YOURS: {q: mine.get(q, math.nan) for q in quantities}}
    for g in references:
        values[g.method] = {q: v for q, v in _quantities(g, problem).items() if q in values[_YOURS]}
    rank = {m: i for i, m in enumerate((*REFERENCE_PREFERENCE, "finite-difference"))}
    names = sorted((g.method for g in references), key=lambda m: rank.get(m, len(rank)))  # most trusted first
    rule = _Rule(problem, references, values, rtol, atol)
    judgement = judge(quantities, values, names, rule, confirmations=confirmations)
    smooth = non_analytic_functions(problem) if not isinstance(problem.loss, CallableLoss) else []
    context = Context(
        lambda m, ref, q, v, r, ratio: f"outside atol + rtol*|reference| ({ratio:.3g} tolerance units against {ref})",
        lambda routes: remedy(problem, rule.kappa() if len(references) > 1 else 1.0, smooth, 0.0, routes),
    )
    taus = {_YOURS: rtol, **{g.method: accuracy(g, REFERENCE_RTOL) for g in references}}
    report = build_report(judgement, rule, context, preferred=names, accuracies=taus, kappa=1.0)
    shown = report.reference
    rows = []
    for q in quantities:
        y, r = values[_YOURS][q], values[shown][q]
        dev = rule(_YOURS, shown)[q].deviation
        rows.append(Row(q, y, r, dev, report.status(_YOURS, q)))
    return Comparison(tuple(rows), shown, rtol, atol, report.verdict, tuple(names), report)


class _Rule:
    """When two columns agree: yours against a reference by ``atol + rtol |reference|``
    (the user's tolerances), two references by the verifier's tolerance model."""

    def __init__(self, problem, references, values, rtol, atol):
        self.problem, self.references, self.values = problem, references, values
        self.rtol, self.atol = rtol, atol
        self._model = None
        self._kappa = None

    def kappa(self) -> float:
        if self._kappa is None:
            grads = {g.method: g for g in self.references}
            self._kappa = conditioning(self.problem, grads, "DOP853", 1e-8, 1e-10)
        return self._kappa

    def __call__(self, a: str, b: str) -> dict[str, Deviation]:
        if _YOURS in (a, b):
            mine, ref = self.values[_YOURS], self.values[b if a == _YOURS else a]
            return {q: Deviation(_tolerance_units(mine[q], r, self.rtol, self.atol), 1.0) for q, r in ref.items()}
        if self._model is None:
            names = list(self.values[b])
            scales = dict(zip([q for q in names if q != "L"], input_scales(self.problem, rtol=1e-6, atol=1e-12)))
            self._model = ToleranceModel(scales, self.kappa(), REFERENCE_ATOL)
        grads = {g.method: g for g in self.references}
        taus = {m: accuracy(g, REFERENCE_RTOL) for m, g in grads.items()}
        return self._model.compare(self.values[a], self.values[b], taus[a], taus[b], float(grads[b].loss))


def _tolerance_units(y: float, r: float, rtol: float, atol: float) -> float:
    dev = abs(y - r) / (atol + rtol * abs(r))
    return dev if math.isfinite(dev) else math.inf


__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "GLOBAL_ERROR_FACTOR",
    "REFERENCE_ATOL",
    "REFERENCE_PREFERENCE",
    "REFERENCE_RTOL",
    "Comparison",
    "Row",
    "judge_gradient",
]
