"""One check's gradients: run the routes, record refusals and crashes, escalate and re-run.

:func:`~adjoint_sym.verify.check` and :func:`~adjoint_sym.verify.compare` fill a
:class:`Session` with columns and ask it for the verdict (:meth:`Session.decide`):

1. judge the columns with :func:`~adjoint_sym.verify.engine.judge` under the tolerance
   model of :mod:`adjoint_sym.verify.tolerance`;
2. while a method is undecided, run the next reference not tried yet (complex step,
   forward sensitivities, finite differences): one reference can never fail a method;
3. re-run at ``rtol / REFINE_FACTOR`` every column in question whose accuracy is its
   ``rtol`` (the adjoints, forward sensitivities, adaptive backprop), and compare the
   gaps: a solver's error shrinks at least ``SHRINK`` times, a wrong term does not;
4. build the :class:`~adjoint_sym.verify.report.Report`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence

from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import EXPLICIT, IMPLICIT
from ..reference.complex_step import non_analytic_functions
from .engine import REFERENCE_ROUTES, Context, build_report, judge
from .report import Report
from .routes import gradient
from .tolerance import (
    REFINE_BAND,
    ToleranceModel,
    accuracy,
    cause,
    conditioning,
    input_scales,
    remedy,
    stiffness_index,
)

#: References in order of preference.
BEST_REFERENCES = ("complex-step", "forward", "finite-difference")

#: A re-check tightens rtol (and atol) this many times: two decades, so that a solver's
#: error shrinks visibly (by ~100, at least ``SHRINK``) while a wrong term does not move.
REFINE_FACTOR = 100.0
#: The tightest rtol a re-check asks for (``solve_ivp`` warns below 100 eps).
TIGHTEST_RTOL = 1e-13
#: A deviation that shrinks at least this much under a 100x tighter rtol is a solver's error.
SHRINK = 10.0


class Session:
    """The gradients of one check: runs routes, records refusals and crashes, judges them."""

    def __init__(self, prob: Problem, solver: str, rtol: float, atol: float, options: Mapping | None = None):
        self.prob, self.solver, self.rtol, self.atol = prob, solver, rtol, atol
        self.options = dict(options or {})
        self.grads: dict[str, Gradient] = {}
        self.taus: dict[str, float] = {}
        self.crashed: dict[str, str] = {}
        self.notes: list[str] = []
        self.tried: set[str] = set()
        self.fixed: set[str] = set()  # columns that cannot be re-run (a candidate computed elsewhere)
        self.omit: set[str] = set()  # time derivatives a candidate did not return: judged nowhere
        self._kappa: float | None = None
        self._stiffness: float | None = None
        self._scales = None

    # -- running ---------------------------------------------------------------------------
    def run(self, method: str, *, rtol: float | None = None, atol: float | None = None) -> Gradient | None:
        rtol, atol = rtol or self.rtol, atol or self.atol
        self.tried.add(method)
        if method == "complex-step" and self.solver in IMPLICIT:
            self.notes.append(
                f"complex-step skipped: it needs an explicit solver and solver={self.solver!r} marks a stiff problem, "
                "where DOP853 at rtol 1e-13 would crawl; forward sensitivities are the reference"
            )
            return None
        if method == "backprop" and self.solver in IMPLICIT and "backprop" not in self.options:
            self.notes.append(
                f"backprop skipped: it differentiates an explicit Runge-Kutta solve, and solver={self.solver!r} "
                "marks a stiff problem where explicit steps would be stability-limited; "
                "pass options={'backprop': {...}} to force"
            )
            return None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                g = gradient(
                    self.prob, method, solver=self.solver, rtol=rtol, atol=atol, **self.options.get(method, {})
                )
            except InvalidModelError as exc:
                if method == "complex-step":  # refused (non-analytic f): say so, compare the rest
                    self.notes.append(f"complex-step skipped: {exc}")
                    return None
                raise  # a usage error (unknown option, bad input): the caller must hear it
            except Exception as exc:  # a crash is a verdict on the method, not on the check
                message = f"{method} raised {type(exc).__name__}: {exc}"
                self.crashed.setdefault(method, message)
                self.notes.append(message)
                return None
        if self.omit:
            g = dataclasses.replace(g, **dict.fromkeys(self.omit))
        for w in caught:
            self.notes.append(f"{method}: {w.message}")
        if "backsolve_drift" in g.stats and not caught:
            self.notes.append(
                f"{method}: backward-reconstructed state drifted {g.stats['backsolve_drift']:.3g} tolerance units "
                "from the forward one (large values: use method='interpolating')"
            )
        if "note" in g.stats:
            self.notes.append(f"{method}: {g.stats['note']}")
        return g

    def add(self, method: str, *, tau: float | None = None) -> bool:
        g = self.run(method)
        if g is None:
            return False
        self.grads[method] = g
        self.taus[method] = accuracy(g, self.rtol) if tau is None else tau
        return True

    def references(self) -> list[str]:
        return [m for m in self.grads if m in REFERENCE_ROUTES]

    def escalate(self) -> bool:
        """Run the next reference not tried yet (a second opinion); ``False`` when none is left."""
        for m in (*BEST_REFERENCES, *REFERENCE_ROUTES):
            if m not in self.tried and m not in self.grads and self.add(m):
                self.notes.append(f"{m} was run as a further reference to decide between the others")
                return True
        return False

    # -- the model -------------------------------------------------------------------------
    @property
    def kappa(self) -> float:
        if "forward" in self.grads and "growth" in self.grads["forward"].stats:
            return max(1.0, float(self.grads["forward"].stats["growth"]))
        if self._kappa is None:
            self._kappa = conditioning(self.prob, {}, self.solver, self.rtol, self.atol)
        return self._kappa

    @property
    def stiffness(self) -> float:
        if self.solver not in EXPLICIT:
            return 0.0  # an implicit solver is what stiffness asks for
        if self._stiffness is None:
            self._stiffness = stiffness_index(self.prob)
        return self._stiffness

    def values(self) -> dict[str, dict[str, float]]:
        names = self.prob.system.state_names
        values = {m: g.quantities(names) for m, g in self.grads.items()}
        first = next(iter(values.values()))
        for m, vals in values.items():
            if tuple(vals) != tuple(first):
                raise InvalidModelError(f"{m} reports quantities {list(vals)} but others report {list(first)}")
        return values

    def rule(self, values):
        if self._scales is None:  # sizes only: a loose solve will do
            scales = input_scales(self.prob, solver=self.solver, rtol=1e-6, atol=1e-12)
            self._scales = dict(zip(next(iter(values.values())), scales))
        model = ToleranceModel(self._scales, self.kappa, self.atol)
        losses = {m: float(g.loss) for m, g in self.grads.items()}
        taus = dict(self.taus)  # a snapshot: a re-run replaces the live ones
        return lambda a, b: model.compare(values[a], values[b], taus[a], taus[b], losses[b])

    def context(self) -> Context:
        smooth = non_analytic_functions(self.prob)

        def explain(m, refs, q, v, r, ratio, refined=None):
            stats = self.grads[m].stats
            drift = float(stats.get("backsolve_drift", 0.0))
            fixed = bool(stats.get("fixed_steps"))
            stiffness = self.stiffness if ratio <= REFINE_BAND else 0.0
            return cause(self.prob, q, v, r, ratio, self.kappa, smooth, stiffness, m, refs, fixed, drift, refined)

        return Context(explain, lambda routes: remedy(self.prob, self.kappa, smooth, self.stiffness, routes))

    # -- deciding --------------------------------------------------------------------------
    def decide(self, preferred: Sequence[str]) -> Report:
        preferred = [*preferred, *BEST_REFERENCES]
        order = sorted(self.references(), key=lambda m: preferred.index(m) if m in preferred else len(preferred))
        j = judge_session(self, order)
        while j.undecided() and self.escalate():
            order = sorted(self.references(), key=lambda m: preferred.index(m) if m in preferred else len(preferred))
            j = judge_session(self, order)
        overrides = self.refine(j, order) if j.undecided() or _failing(j) else None
        if overrides is not None:  # something was re-run: judge the columns as they now are
            j = judge_session(self, order)
        values = self.values()
        return build_report(
            j,
            self.rule(values),
            self.context(),
            preferred=preferred,
            accuracies=self.taus,
            kappa=self.kappa,
            notes=self.notes,
            gradients=self.grads,
            crashed=self.crashed,
            overrides=overrides,
        )

    def _tracks_rtol(self, m: str) -> bool:
        claimed = self.grads[m].stats.get("accuracy")
        return claimed is None or abs(float(claimed) - self.rtol) <= 1e-9 * self.rtol

    def refine(self, j, order) -> dict | None:
        """Re-run at a tighter rtol every column in question that the rtol limits; the outcome
        per (method, quantity) where it changes the verdict (``None``: nothing was re-run)."""
        tight = max(self.rtol / REFINE_FACTOR, TIGHTEST_RTOL)
        if tight >= self.rtol:
            return None
        rule0 = self.rule(self.values())
        questioned = []
        for m in self.grads:
            if m in self.fixed or self.grads[m].stats.get("fixed_steps") or not self._tracks_rtol(m):
                continue  # computed elsewhere, fixed steps, or an accuracy of its own (complex step, FD)
            for q, st in j.standings[m].items():
                shown = st.against[0] if st.against else None
                if st.status == "inconclusive" or (
                    st.status == "fail" and shown and rule0(m, shown)[q].ratio <= REFINE_BAND
                ):
                    questioned.append(m)
                    break
        for m in j.candidates:  # a reference that leaves a method undecided gets a second, tighter look
            for st in j.standings[m].values():
                if st.status == "inconclusive":
                    involved = (*st.support, *st.against)
                    questioned += [r for r in involved if r not in questioned and r not in self.fixed]
        questioned = [m for m in questioned if self._tracks_rtol(m) and not self.grads[m].stats.get("fixed_steps")]
        before = {m: self.grads[m] for m in questioned}
        for m in questioned:
            g = self.run(m, rtol=tight, atol=self.atol / REFINE_FACTOR)
            if g is not None:
                self.grads[m], self.taus[m] = g, accuracy(g, tight)
                self.notes.append(f"{m} was re-run at rtol {tight:.0e} to tell a solver's error from a wrong term")
        rerun = [m for m in questioned if self.grads[m] is not before[m]]
        if not rerun:
            return None
        j1 = judge_session(self, order)
        return _outcomes(self, j, j1, before, rerun, rule0, tight)


def judge_session(session: Session, order: Sequence[str]):
    values = session.values()
    return judge(tuple(next(iter(values.values()))), values, order, session.rule(values), accuracies=session.taus)


def _failing(j) -> bool:
    return any(s.status == "fail" for m in j.candidates for s in j.standings[m].values())


def _outcomes(session, j0, j1, before, rerun, rule0, tight) -> dict:
    """What the re-run at rtol ``tight`` says, per (method, quantity) that was in question."""
    out = {}
    rule1 = session.rule(session.values())
    context = session.context()
    for m in rerun:
        if m not in j1.candidates:
            continue
        for q, st0 in j0.standings[m].items():
            st1 = j1.standings[m][q]
            if st0.status == "ok":
                continue
            if st1.status == "ok":
                loose = before[m].quantities(session.prob.system.state_names)[q]
                why = ""
                if st0.against:
                    shown = st0.against[0]
                    ratio0 = rule0(m, shown)[q].ratio
                    why = context.explain_failure(m, shown, q, loose, j0.values[shown][q], ratio0)
                    why = f" by {ratio0:.3g}x the allowance (likely cause: {why})"
                session.notes.append(
                    f"{q}: {m} agrees at rtol {tight:.0e}; at rtol {session.rtol:g} ({m} = {loose:.10g}) it missed "
                    f"the references{why}: the solver's error at the looser tolerance, not a wrong term"
                )
                continue
            if st1.status not in ("fail", "inconclusive") or not st1.against:
                continue
            shown = min(st1.against, key=lambda r: session.taus.get(r, 1.0))  # the most accurate against it
            dev1 = rule1(m, shown)[q]
            dev0 = rule0(m, shown)[q].deviation if shown in j0.values else None
            if dev0 is not None and dev0 >= SHRINK * dev1.deviation:
                out[(m, q)] = (
                    "inconclusive",
                    f"the gap to {shown} shrank {dev0 / max(dev1.deviation, 1e-300):.3g}x when rtol went from "
                    f"{session.rtol:g} to {tight:.0e}: the solver's error, beyond the tolerance model, not a wrong "
                    "term; " + context.remedy((m, *st1.against)),
                )
            elif st1.status == "fail":
                v, r = j1.values[m][q], j1.values[shown][q]
                refs = " and ".join(st1.against)
                out[(m, q)] = ("fail", context.explain_failure(m, refs, q, v, r, dev1.ratio, (tight, dev1.ratio)))
    return out


__all__ = ["BEST_REFERENCES", "REFINE_FACTOR", "SHRINK", "TIGHTEST_RTOL", "Session", "judge_session"]
