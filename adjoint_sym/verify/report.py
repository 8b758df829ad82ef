"""The outcome of a gradient check: per-quantity values, deviations and failures.

Tables as text, Markdown, LaTeX and HTML; :mod:`adjoint_sym.verify` builds the reports.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

#: Allowed global error in tolerance units: the constant of the tolerance model
#: (derived and measured in :mod:`adjoint_sym.verify`).
AGREEMENT = 100.0


@dataclass(frozen=True)
class Failure:
    """One quantity on which a method and the reference disagree beyond the tolerance model."""

    quantity: str
    method: str
    reference: str
    value: float
    expected: float
    deviation: float  # s |value - expected| / (s |expected| + max_k s_k |g_r(k)|)
    allowed: float  # C * kappa * (tau_m + tau_r)
    cause: str

    @property
    def ratio(self) -> float:
        """The deviation in units of the allowed one."""
        return self.deviation / self.allowed if self.allowed else np.inf

    def explain(self) -> str:
        return (
            f"{self.quantity}: {self.method} = {self.value:.10g} but {self.reference} = {self.expected:.10g} "
            f"(deviation {self.deviation:.2e}, allowed {self.allowed:.2e}, {self.ratio:.3g}x the allowance); "
            f"likely cause: {self.cause}"
        )


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`adjoint_sym.verify.check` or :func:`adjoint_sym.verify.compare`.

    Attributes
    ----------
    ok : bool
        No failures.
    reference : str
        The method every other one is compared against.
    methods : tuple of str
        Compared methods, reference included.
    quantities : tuple of str
        ``dL/dh0[x]``, ``dL/dk``, ``dL/dt0``, ...
    values : dict
        ``values[method][quantity]``.
    errors : dict
        ``errors[method][quantity]``: relative error ``|g_m - g_r| / |g_r|`` (for display).
    deviations : dict
        ``deviations[method][quantity]`` in units of the allowed deviation (pass if <= 1).
    failures : tuple of Failure
    accuracies : dict
        ``tau`` per method.
    conditioning : float
        ``kappa``.
    notes : tuple of str
        Warnings, skipped methods, backsolve drift.
    gradients : dict
        The :class:`Gradient` of each method.
    taylor : dict
        :class:`~adjoint_sym.reference.taylor.TaylorResult` per method (``check(taylor=True)``).
    """

    ok: bool
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
    gradients: dict = field(default_factory=dict, repr=False, compare=False)
    taylor: dict = field(default_factory=dict, repr=False, compare=False)

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
                row[f"{m} ok"] = bool(self.deviations[m][q] <= 1.0)
            rows.append(row)
        return rows

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        others = [m for m in self.methods if m != self.reference]
        head = ["quantity", f"{self.reference} (reference)"] + [f"{m} (rel. error)" for m in others]
        body = []
        for q in self.quantities:
            cells = [q, f"{self.values[self.reference][q]:.12g}"]
            for m in others:
                mark = "" if self.deviations[m][q] <= 1.0 else " FAIL"
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
        verdict = "all methods agree" if self.ok else f"{len(self.failures)} disagreement(s)"
        taus = ", ".join(f"{m}: {t:.0e}" for m, t in self.accuracies.items())
        return (
            f"gradient check: {verdict} (reference: {self.reference}; allowed = {AGREEMENT:g} * kappa * "
            f"(tau_m + tau_ref), kappa = {self.conditioning:.3g}; tau = {taus})"
        )

    def _explanations(self) -> list[str]:
        out = []
        if self.failures:
            out += ["", "failures:"] + [f"- {f.explain()}" for f in self.failures]
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

        esc = _latex

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
                f"<td style='color:#b00'>{html.escape(c)}</td>" if c.endswith("FAIL") else f"<td>{html.escape(c)}</td>"
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
                    "value": f.value,
                    "expected": f.expected,
                    "deviation": f.deviation,
                    "allowed": f.allowed,
                    "cause": f.cause,
                }
                for f in self.failures
            ],
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return (
            f"Report(ok={self.ok}, reference={self.reference!r}, methods={self.methods}, failures={len(self.failures)})"
        )


# -- escaping user text (state and parameter names) -------------------------------------
_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def _latex(text: str) -> str:
    """Text as literal LaTeX: every special character escaped, control characters dropped."""
    return "".join(_LATEX.get(ch, ch) for ch in text if ch.isprintable())


def _md(text: str) -> str:
    """A table cell as literal Markdown: HTML and the cell separator escaped."""
    text = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


__all__ = ["AGREEMENT", "Failure", "Report"]
