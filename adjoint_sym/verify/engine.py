"""The comparison engine: every quantity of every route against the reference.

One function, :func:`compare_routes`, turns gradients into a :class:`Report` with the
tolerance model of :mod:`adjoint_sym.verify.tolerance`; :func:`~adjoint_sym.verify.check`
and :func:`~adjoint_sym.verify.compare` both end here.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidModelError
from ..numeric.solve import EXPLICIT
from ..reference.complex_step import non_analytic_functions
from .report import AGREEMENT, Failure, Report
from .tolerance import cause, input_scales, scaled_deviations, stiffness_index


def compare_routes(prob, grads, ref, accuracies, kappa, solver, notes) -> Report:
    names = prob.system.state_names
    values = {m: g.quantities(names) for m, g in grads.items()}
    quantities = tuple(values[ref])
    for m, vals in values.items():
        if tuple(vals) != quantities:
            raise InvalidModelError(f"{m} reports quantities {list(vals)} but {ref} reports {list(quantities)}")
    refv = values[ref]
    scales = input_scales(prob, solver=solver, rtol=1e-6, atol=1e-12)  # sizes only: a loose solve will do
    smooth = non_analytic_functions(prob)
    stiffness = stiffness_index(prob) if solver in EXPLICIT else 0.0
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
                why = cause(prob, q, v, r, dev / allowed, kappa, smooth, stiffness, m, ref, fixed, drift)
                failures.append(Failure(q, m, ref, v, r, dev, allowed, why))
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
