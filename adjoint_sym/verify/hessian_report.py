"""The verdict of :func:`~adjoint_sym.verify.hessian.check_hvp`: every ``H v`` entry of every route."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class HessianFailure:
    """One entry of ``H v`` on which a route disagrees with the reference."""

    quantity: str
    method: str
    reference: str
    value: float
    reference_value: float
    deviation: float  # scaled deviation (see verify.hessian)
    allowed: float
    cause: str

    def __str__(self) -> str:
        return (
            f"{self.quantity}: {self.method} = {self.value:.12g}, {self.reference} = {self.reference_value:.12g} "
            f"({self.deviation / self.allowed:.3g} x the allowed deviation): {self.cause}"
        )


@dataclass(frozen=True)
class HessianReport:
    """Hessian-vector products of several routes along one direction, compared entry by entry.

    Attributes
    ----------
    ok : bool
        Every route within the tolerance model and, when run, the Taylor test passed.
    reference : str
    methods : tuple of str
        The reference first.
    direction : ndarray
    quantities : tuple of str
        ``Hv[h0[x]]``, ``Hv[k]``, ...
    values : dict
        Method to quantity to value.
    deviations : dict
        Method to quantity to the deviation in units of the allowed one (pass <= 1).
    failures : tuple of HessianFailure
    accuracies : dict
        The accuracy ``tau`` each route ran at.
    conditioning : float
        ``kappa`` of the tolerance model.
    taylor_order : float or None
        The order-3 Taylor test's fitted order for the first method under test (None if not run).
    taylor_ok : bool or None
    """

    ok: bool
    reference: str
    methods: tuple
    direction: np.ndarray
    quantities: tuple
    values: dict
    deviations: dict
    failures: tuple
    accuracies: dict
    conditioning: float
    taylor_order: float | None = None
    taylor_ok: bool | None = None
    hvps: dict = field(default_factory=dict, repr=False, compare=False)

    def max_deviation(self, method: str) -> float:
        """The largest deviation of ``method`` in units of the allowed one."""
        return max(self.deviations[method].values(), default=0.0)

    def markdown(self) -> str:
        """A table quantity / each method, with the worst deviation per method and the verdict."""
        head = "| quantity | " + " | ".join(self.methods) + " |"
        lines = [head, "|---" * (len(self.methods) + 1) + "|"]
        for q in self.quantities:
            lines.append(f"| {q} | " + " | ".join(f"{self.values[m][q]:.12g}" for m in self.methods) + " |")
        worst = " | ".join(
            "(reference)" if m == self.reference else f"{self.max_deviation(m):.3g}" for m in self.methods
        )
        lines.append(f"| max deviation / allowed | {worst} |")
        verdict = "**OK**" if self.ok else "**FAILED**"
        text = [f"Hessian-vector product along v = {np.array2string(self.direction, precision=4)}", ""]
        text += [*lines, "", f"conditioning kappa = {self.conditioning:.3g}"]
        if self.taylor_order is not None:
            state = "ok" if self.taylor_ok else "FAILED"
            text.append(f"order-3 Taylor test of {self.methods[1]}: fitted order {self.taylor_order:.3f} ({state})")
        text += ["", f"verdict: {verdict}"]
        text += [f"- {f}" for f in self.failures]
        return "\n".join(text) + "\n"

    def as_dict(self) -> dict:
        """A JSON-ready dictionary (``adjoint-sym hvp --check --json``)."""

        def clean(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "ok": self.ok,
            "reference": self.reference,
            "methods": list(self.methods),
            "direction": [float(x) for x in self.direction],
            "values": {m: {q: clean(x) for q, x in vals.items()} for m, vals in self.values.items()},
            "deviations": {m: {q: clean(x) for q, x in vals.items()} for m, vals in self.deviations.items()},
            "failures": [str(f) for f in self.failures],
            "accuracies": {m: float(a) for m, a in self.accuracies.items()},
            "conditioning": float(self.conditioning),
            "taylor_order": None if self.taylor_order is None else clean(self.taylor_order),
            "taylor_ok": self.taylor_ok,
        }

    def __repr__(self) -> str:
        worst = ", ".join(f"{m}={self.max_deviation(m):.3g}" for m in self.methods if m != self.reference)
        taylor = "" if self.taylor_order is None else f", taylor_order={self.taylor_order:.3f}"
        return f"HessianReport(ok={self.ok}, reference={self.reference!r}, max deviation/allowed: {worst}{taylor})"


__all__ = ["HessianFailure", "HessianReport"]
