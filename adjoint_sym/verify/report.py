"""The outcome of a gradient check: per-quantity values, deviations, failures and the verdict.

Verdicts
--------
``"ok"``: every method agrees with the references.  ``"fail"``: on some quantity at
least two independent references agree with each other and not with a method, and no
reference sides with it (or a method raised instead of returning a gradient).
``"inconclusive"``: the references disagree among themselves where a method's verdict
depends on them; the report names them and the remedy, and fails no method.  A
reference outvoted by two others that agree with every method is a note, not a verdict.

Tables as text, Markdown, LaTeX and HTML; :mod:`adjoint_sym.verify` builds the reports.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np

from ..symbolic.names import latex_text

#: Allowed global error in tolerance units: the constant of the tolerance model
#: (derived and measured in :mod:`adjoint_sym.verify`).
AGREEMENT = 100.0

#: The verdicts of a :class:`Report`.
VERDICTS = ("ok", "fail", "inconclusive")

#: What a cell of the table is marked with, by the status of its route on its quantity.
_MARKS = {"fail": " FAIL", "inconclusive": " ?", "split": " ?", "outvoted": " OUTVOTED"}


@dataclass(frozen=True)
class Failure:
    """One quantity on which a method and the reference disagree beyond the tolerance model."""

    quantity: str
    method: str
    reference: str
    value: float
    expected: float
    deviation: float  # s |value - expected| / (s |expected| + max_k s_k |g_r(k)|)
    allowed: float  # C * kappa * (tau_m + tau_r) (+ the absolute floor, in the same units)
    cause: str
    references: tuple = ()  # the references that agree with each other against the method

    @property
    def ratio(self) -> float:
        """The deviation in units of the allowed one."""
        return self.deviation / self.allowed if self.allowed else np.inf

    def explain(self) -> str:
        if not self.reference:  # the method raised: there is no value to compare
            return f"{self.method}: no gradient; {self.cause}"
        confirmed = ""
        if len(self.references) > 1:
            confirmed = f"; {' and '.join(self.references)} agree with each other"
        return (
            f"{self.quantity}: {self.method} = {self.value:.10g} but {self.reference} = {self.expected:.10g} "
            f"(deviation {self.deviation:.2e}, allowed {self.allowed:.2e}, {self.ratio:.3g}x the allowance"
            f"{confirmed}); likely cause: {self.cause}"
        )


@dataclass(frozen=True)
class Inconclusive:
    """A quantity on which no two agreeing references decide a route's verdict.

    ``reason`` says why: ``"split"`` (the references contradict each other over it),
    ``"unconfirmed"`` (those against it do not confirm each other), ``"precision"`` (only
    the most accurate reference resolves the gap; the looser ones agree with both),
    ``"converging"`` (a re-run at a tighter rtol shrank the gap without closing it: a
    solver's error beyond the tolerance model) or ``"no reference"``.
    """

    quantity: str
    method: str
    support: tuple  # references that agree with the method
    against: tuple  # references that do not
    values: dict  # value per route: the method and every reference
    remedy: str
    reason: str = "split"

    def explain(self) -> str:
        def listed(names):
            return ", ".join(f"{m} = {self.values[m]:.10g}" for m in names)

        head = f"{self.quantity}: {self.method} = {self.values[self.method]:.10g}"
        if self.reason == "precision":
            body = (
                f"misses {listed(self.against)}, while the looser {', '.join(self.support)} agree with both: "
                "no second reference confirms the miss"
            )
        elif self.reason == "converging":
            body = f"misses {listed(self.against)} at both tolerances it was run at, by less at the tighter"
        elif self.reason == "unconfirmed":
            body = f"disagrees with {listed(self.against)}, which do not confirm each other"
        elif self.reason == "no reference":
            body = "has no reference to be judged by"
        else:
            body = (
                f"agrees with {listed(self.support)} but not with {listed(self.against)}: the references disagree "
                "among themselves"
            )
        return f"{head} {body}, so no verdict on {self.method}; remedy: {self.remedy}"


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`adjoint_sym.verify.check` or :func:`adjoint_sym.verify.compare`.

    Attributes
    ----------
    verdict : {"ok", "fail", "inconclusive"}
        See the module docstring; :attr:`ok` is ``verdict == "ok"``.
    reference : str
        The reference every column is shown against (the best one no other pair outvoted).
    methods : tuple of str
        Compared methods, reference included.
    quantities : tuple of str
        ``dL/dh0[x]``, ``dL/dk``, ``dL/dt0``, ...
    values : dict
        ``values[method][quantity]``.
    errors : dict
        ``errors[method][quantity]``: relative error ``|g_m - g_r| / |g_r|`` (for display).
    deviations : dict
        ``deviations[method][quantity]`` against :attr:`reference` in units of the allowed
        deviation (agreement if <= 1).
    failures : tuple of Failure
    accuracies : dict
        ``tau`` per method.
    conditioning : float
        ``kappa``.
    notes : tuple of str
        Warnings, skipped methods, backsolve drift, outvoted references, re-checks.
    inconclusive : tuple of Inconclusive
        The undecided quantities, with the references on each side and the remedy.
    statuses : dict
        ``statuses[method][quantity]``: ``"ok"``, ``"fail"``, ``"inconclusive"`` for the
        methods; ``"ok"``, ``"outvoted"``, ``"split"`` for the references.
    crashed : dict
        ``crashed[method]``: the message of a method that raised instead of returning.
    gradients : dict
        The :class:`Gradient` of each method.
    taylor : dict
        :class:`~adjoint_sym.reference.taylor.TaylorResult` per method (``check(taylor=True)``).
    """

    verdict: str
    reference: str
    methods: tuple
    quantities: tuple
    values: dict
    errors: dict
    deviations: dict
    failures: tuple
    accuracies: dict
    conditioning: float
    notes: tuple = ()
    inconclusive: tuple = ()
    statuses: dict = field(default_factory=dict, repr=False)
    crashed: dict = field(default_factory=dict)
    gradients: dict = field(default_factory=dict, repr=False, compare=False)
    taylor: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """The verdict is ``"ok"`` (``False`` for ``"fail"`` and for ``"inconclusive"``)."""
        return self.verdict == "ok"

    def status(self, method: str, quantity: str) -> str:
        """``"ok"``, ``"fail"``, ``"inconclusive"``, ``"outvoted"`` or ``"split"`` (see :attr:`statuses`)."""
        known = self.statuses.get(method, {}).get(quantity)
        if known is not None:
            return known
        return "ok" if self.deviations.get(method, {}).get(quantity, 0.0) <= 1.0 else "fail"

    # -- tables -------------------------------------------------------------------------
    def table(self) -> list[dict]:
        """One row per quantity: the reference value, each method's value and relative error."""
        rows = []
        for q in self.quantities:
            row: dict = {"quantity": q, self.reference: self.values[self.reference][q]}
            for m in self.methods:
                if m == self.reference:
                    continue
                row[m] = self.values[m][q]
                row[f"{m} rel. error"] = self.errors[m][q]
                row[f"{m} ok"] = self.status(m, q) == "ok"
                row[f"{m} status"] = self.status(m, q)
            rows.append(row)
        return rows

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        others = [m for m in self.methods if m != self.reference]
        head = ["quantity", f"{self.reference} (reference)"] + [f"{m} (rel. error)" for m in others]
        body = []
        for q in self.quantities:
            cells = [q, f"{self.values[self.reference][q]:.12g}" + _MARKS.get(self.status(self.reference, q), "")]
            for m in others:
                mark = _MARKS.get(self.status(m, q), "")
                cells.append(f"{self.values[m][q]:.10g} ({self.errors[m][q]:.1e}){mark}")
            body.append(cells)
        return head, body

    def text(self) -> str:
        """A plain-text table followed by the failures and notes."""
        head, body = self._cells()
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([self._summary(), "", *lines, *self._explanations()])

    def _summary(self) -> str:
        if self.verdict == "fail":
            verdict = f"{len(self.failures)} disagreement(s)"
        elif self.verdict == "inconclusive":
            undecided = sorted({i.quantity for i in self.inconclusive})
            verdict = (
                f"inconclusive on {', '.join(undecided) or 'the gradient'} (the references disagree among themselves)"
            )
        else:
            verdict = "all methods agree"
        taus = ", ".join(f"{m}: {t:.0e}" for m, t in self.accuracies.items())
        return (
            f"gradient check: {verdict} (reference: {self.reference}; allowed = {AGREEMENT:g} * kappa * "
            f"(tau_m + tau_ref), kappa = {self.conditioning:.3g}; tau = {taus})"
        )

    def _explanations(self) -> list[str]:
        out = []
        if self.failures:
            out += ["", "failures:"] + [f"- {f.explain()}" for f in self.failures]
        if self.inconclusive:
            out += ["", "inconclusive:"] + [f"- {i.explain()}" for i in self.inconclusive]
        if self.notes:
            out += ["", "notes:"] + [f"- {n}" for n in self.notes]
        return out

    def markdown(self) -> str:
        head, body = self._cells()
        head, body = [_md(c) for c in head], [[_md(c) for c in r] for r in body]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r).replace(" FAIL", " **FAIL**") + " |" for r in body]
        return "\n".join([f"**{self._summary()}**", "", *lines, *self._explanations()]) + "\n"

    def latex(self) -> str:
        head, body = self._cells()

        esc = latex_text

        lines = [r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\hline"]
        lines.append(" & ".join(esc(h) for h in head) + r" \\ \hline")
        lines += [" & ".join(esc(c).replace(" FAIL", r" \textbf{FAIL}") for c in r) + r" \\" for r in body]
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head, body = self._cells()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td style='color:#b00'>{html.escape(c)}</td>"
                if c.endswith(("FAIL", "?", "OUTVOTED"))
                else f"<td>{html.escape(c)}</td>"
                for c in r
            )
            + "</tr>"
            for r in body
        )
        extra = "".join(f"<li>{html.escape(x[2:])}</li>" for x in self._explanations() if x.startswith("- "))
        return f"<p><b>{html.escape(self._summary())}</b></p><table><tr>{th}</tr>{rows}</table>" + (
            f"<ul>{extra}</ul>" if extra else ""
        )

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "reference": self.reference,
            "methods": list(self.methods),
            "conditioning": self.conditioning,
            "accuracies": dict(self.accuracies),
            "agreement_constant": AGREEMENT,
            "rows": [{k: (bool(v) if isinstance(v, np.bool_) else v) for k, v in r.items()} for r in self.table()],
            "failures": [
                {
                    "quantity": f.quantity,
                    "method": f.method,
                    "reference": f.reference,
                    "value": _finite(f.value),
                    "expected": _finite(f.expected),
                    "deviation": _finite(f.deviation),
                    "allowed": _finite(f.allowed),
                    "cause": f.cause,
                    "references": list(f.references),
                }
                for f in self.failures
            ],
            "inconclusive": [
                {
                    "quantity": i.quantity,
                    "method": i.method,
                    "support": list(i.support),
                    "against": list(i.against),
                    "values": {k: _finite(v) for k, v in i.values.items()},
                    "remedy": i.remedy,
                    "reason": i.reason,
                }
                for i in self.inconclusive
            ],
            "crashed": dict(self.crashed),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return (
            f"Report(verdict={self.verdict!r}, ok={self.ok}, reference={self.reference!r}, methods={self.methods}, "
            f"failures={len(self.failures)}, inconclusive={len(self.inconclusive)})"
        )


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


# -- escaping user text (state and parameter names) -------------------------------------
def _md(text: str) -> str:
    """A table cell as literal Markdown: HTML and the cell separator escaped."""
    text = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


__all__ = ["AGREEMENT", "VERDICTS", "Failure", "Inconclusive", "Report"]
