"""The comparison engine: every route against every reference, and the verdict.

One engine judges :func:`~adjoint_sym.verify.check`, :func:`~adjoint_sym.verify.compare`
and :func:`~adjoint_sym.testing.check_gradient_function`; they differ only in the
:data:`Rule` that says when two columns agree on a quantity (the tolerance model of
:mod:`adjoint_sym.verify.tolerance`, or a user's ``atol + rtol |reference|``).

The routes are of two kinds.  *References* (:data:`REFERENCE_ROUTES`: forward
sensitivities, complex step, finite differences) are independent computations of the
continuous gradient; every other column is a *method* under test: the adjoints, a
user's gradient, and ``"backprop"``, the discrete counterpart (discretize-then-optimize),
shown beside the others and never an arbiter of the continuous gradient.

How a route stands on a quantity (:func:`standing`), with ``support`` the references
that agree with it and ``against`` those that do not:

* ``ok``: nothing against it; or two references that agree with each other support it
  (those against are outvoted); or each one against it agrees with one that supports it
  (agreement is not transitive at the edge of the allowance).
* ``fail``: at least ``confirmations`` (2) references against it agree with each other,
  and none supports it.
* ``inconclusive``: anything else: a single reference against it, references split
  between it and a consensus, or against it without confirming each other.

A method's ``fail`` fails the report; its ``inconclusive`` makes the report inconclusive;
a reference's ``fail`` (``"outvoted"``) or ``inconclusive`` (``"split"``) is a note while
every method agrees with a consensus, and the verdict when only references were run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..reference import REFERENCES
from .report import Failure, Inconclusive, Report
from .tolerance import Deviation

#: The independent references of the continuous gradient (never ``"backprop"``).
REFERENCE_ROUTES = tuple(REFERENCES)

#: ``rule(a, b)``: the :class:`~adjoint_sym.verify.tolerance.Deviation` of column ``a``
#: from column ``b`` per quantity (``b`` sets the scale).
Rule = Callable[[str, str], Mapping[str, Deviation]]


@dataclass(frozen=True)
class Standing:
    """How one route stands on one quantity (see the module docstring)."""

    status: str
    support: tuple[str, ...] = ()
    against: tuple[str, ...] = ()
    reason: str = ""  # for "inconclusive": "split", "unconfirmed", "precision" or "no reference"


def standing(
    route: str,
    others: Sequence[str],
    agree: Callable[[str, str], bool],
    confirmations: int = 2,
    *,
    reference: bool = False,
    rank: Callable[[str], float] | None = None,
) -> Standing:
    """The :class:`Standing` of ``route`` among the references ``others``.

    ``rank`` orders the references by their claimed accuracy (smaller: more accurate;
    default their order in ``others``).  A ``reference`` counts for itself: with one
    other reference on its side it is a consensus of two.

    Where every reference against the route agrees with every one for it, the references
    do not contradict each other: only their precision differs, so the loose ones'
    agreement is no evidence.  The route is then failed by two agreeing references
    against it, passed if the most accurate one is for it, and undecided otherwise (a
    tighter second reference would settle it).  Where some do contradict each other, a
    consensus on the route's side outvotes a lone dissenter; anything else is undecided.

    Examples
    --------
    >>> close = {frozenset(p) for p in [("adjoint", "forward"), ("adjoint", "fd"), ("forward", "fd")]}
    >>> agree = lambda a, b: frozenset((a, b)) in close
    >>> standing("adjoint", ["forward", "complex-step", "fd"], agree).status  # complex step is outvoted
    'ok'
    >>> standing("complex-step", ["forward", "fd"], agree).status
    'fail'
    >>> standing("adjoint", ["complex-step"], agree).status  # one reference cannot fail a method
    'inconclusive'
    """
    position = {r: i for i, r in enumerate(others)}
    rank = rank or position.__getitem__
    support = tuple(r for r in others if agree(route, r))
    against = tuple(r for r in others if r not in support)

    def confirmed(group) -> bool:
        return any(agree(a, b) for a, b in itertools.combinations(group, 2))

    if not others:  # a lone reference stands; a method with none cannot be judged
        return Standing("ok") if reference else Standing("inconclusive", reason="no reference")
    if not against:
        return Standing("ok", support)
    if not support:
        if confirmations <= 1 or confirmed(against):
            return Standing("fail", support, against)
        return Standing("inconclusive", support, against, "unconfirmed")
    if all(agree(a, s) for a in against for s in support):  # compatible: only precision differs
        if confirmed(against) and not reference:
            return Standing("fail", support, against)
        best = min((*support, *against), key=rank)
        return (
            Standing("ok", support, against)
            if best in support
            else Standing("inconclusive", support, against, "precision")
        )
    dissenters = tuple(a for a in against if not all(agree(a, s) for s in support))
    if (reference or confirmed(support)) and not confirmed(dissenters):
        return Standing("ok", support, against)  # the dissenters are outvoted
    return Standing("inconclusive", support, against, "split")


@dataclass
class Judgement:
    """Every route's :class:`Standing` on every quantity, and the deviations behind them."""

    quantities: tuple
    values: dict
    references: tuple
    candidates: tuple
    standings: dict = field(default_factory=dict)  # standings[route][quantity]
    deviations: dict = field(default_factory=dict)  # deviations[(a, b)][quantity]

    def undecided(self) -> bool:
        """A method is inconclusive somewhere, or (no methods) the references disagree."""
        if self.candidates:
            return any(s.status == "inconclusive" for m in self.candidates for s in self.standings[m].values())
        return any(s.status != "ok" for r in self.references for s in self.standings[r].values())


def judge(
    quantities: Sequence[str],
    values: Mapping[str, Mapping[str, float]],
    references: Sequence[str],
    rule: Rule,
    *,
    confirmations: int = 2,
    accuracies: Mapping[str, float] | None = None,
) -> Judgement:
    """Judge every column of ``values`` (references among them) quantity by quantity.

    Parameters
    ----------
    quantities : sequence of str
    values : mapping
        ``values[route][quantity]``; routes not in ``references`` are methods under test.
    references : sequence of str
        The independent references, most trusted first (it sets the scale of a pair).
    rule : Rule
        When two columns agree.
    confirmations : int
        References that must agree with each other to fail a method: 2, or 1 where the
        caller vouches for a single reference (:func:`~adjoint_sym.testing.compare_gradients`).
    accuracies : mapping, optional
        ``tau`` per reference: which of two compatible references is the more accurate.
    """
    refs = tuple(r for r in references if r in values)
    candidates = tuple(m for m in values if m not in refs)
    j = Judgement(tuple(quantities), dict(values), refs, candidates)
    cache: dict = {}
    taus = dict(accuracies or {})

    def rank(r: str) -> tuple:
        return (taus.get(r, np.inf), refs.index(r))

    def agree_on(q: str):
        def agree(a: str, b: str) -> bool:
            if a in refs and b in refs and refs.index(a) < refs.index(b):
                a, b = b, a  # the more trusted reference sets the scale
            elif a in refs and b not in refs:
                a, b = b, a
            if (a, b) not in cache:
                cache[(a, b)] = rule(a, b)
            return cache[(a, b)][q].agree

        return agree

    for route in (*candidates, *refs):
        j.standings[route] = {}
        others = [r for r in refs if r != route]
        for q in quantities:
            j.standings[route][q] = standing(
                route, others, agree_on(q), confirmations, reference=route in refs, rank=rank
            )
    j.deviations = cache
    return j


# -- the report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """What the causes need beyond the numbers (lazily: the stiffness estimate costs a solve)."""

    explain_failure: Callable[[str, str, str, float, float, float], str]  # (method, ref, q, v, r, ratio) -> cause
    remedy: Callable[[Sequence[str]], str]  # (routes in conflict) -> remedy


#: A reference's standing in the report's words.
_AS_REFERENCE = {"fail": "outvoted", "inconclusive": "split"}


def display_reference(j: Judgement, preferred: Sequence[str]) -> str:
    """The first of ``preferred`` that no consensus outvotes (else the first)."""
    order = [r for r in preferred if r in j.references] + [r for r in j.references if r not in preferred]
    for r in order:
        if all(s.status == "ok" for s in j.standings[r].values()):
            return r
    return order[0]


def _deviation(j: Judgement, rule: Rule, a: str, b: str, q: str) -> Deviation:
    if (a, b) not in j.deviations:
        j.deviations[(a, b)] = rule(a, b)
    return j.deviations[(a, b)][q]


def build_report(
    j: Judgement,
    rule: Rule,
    context: Context,
    *,
    preferred: Sequence[str],
    accuracies: Mapping[str, float],
    kappa: float,
    notes: Sequence[str] = (),
    gradients: Mapping | None = None,
    crashed: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, str], tuple[str, str]] | None = None,
) -> Report:
    """The :class:`Report` of a judgement; ``overrides[(method, q)] = (status, cause)`` carries
    the outcome of a re-check at a tighter rtol."""
    overrides = dict(overrides or {})
    ref = display_reference(j, preferred)
    order = [ref, *j.candidates, *[r for r in j.references if r != ref]]
    statuses, failures, undecided, notes = {}, [], [], list(notes)
    for m in order:
        statuses[m] = {}
        for q in j.quantities:
            st = j.standings[m][q]
            status = (
                st.status if m in j.candidates else {"fail": "outvoted", "inconclusive": "split"}.get(st.status, "ok")
            )
            status, cause = overrides.get((m, q), (status, None))
            reason = "converging" if (m, q) in overrides else (st.reason or "split")
            statuses[m][q] = status
            v = j.values[m][q]
            if status == "fail":
                shown = ref if ref in st.against else st.against[0]
                dev = _deviation(j, rule, m, shown, q)
                r = j.values[shown][q]
                why = cause or context.explain_failure(m, " and ".join(st.against), q, v, r, dev.ratio)
                failures.append(Failure(q, m, shown, v, r, dev.deviation, dev.allowed, why, st.against))
            elif status == "inconclusive" or (status in ("split", "outvoted") and not j.candidates):
                routes = (*st.support, *st.against)
                vals = {k: j.values[k][q] for k in (m, *routes)}
                remedy = cause or context.remedy(routes)
                undecided.append(Inconclusive(q, m, st.support, st.against, vals, remedy, reason))
            elif status == "outvoted" and j.candidates:
                a, b = next((a, b) for a, b in itertools.combinations(st.against, 2) if _agrees(j, rule, a, b, q))
                notes.append(
                    f"{q}: the reference {m} = {v:.10g} is outvoted: {a} = {j.values[a][q]:.10g} and {b} agree with "
                    f"each other and with every method, so {m} misses the accuracy it claims here"
                )
    for m, message in (crashed or {}).items():
        if m not in REFERENCE_ROUTES:  # a reference that raised is replaced, a method that raised failed
            failures.append(Failure("(no gradient)", m, "", np.nan, np.nan, np.inf, np.nan, message))
    deviations, errors = {}, {}
    for m in order:
        deviations[m], errors[m] = {}, {}
        for q in j.quantities:
            v, r = j.values[m][q], j.values[ref][q]
            deviations[m][q] = 0.0 if m == ref else _deviation(j, rule, m, ref, q).ratio
            diff = abs(v - r)
            errors[m][q] = diff / abs(r) if r != 0 else (0.0 if diff == 0 else np.inf)
    verdict = _verdict(statuses, j, failures)
    return Report(
        verdict=verdict,
        reference=ref,
        methods=tuple(order),
        quantities=j.quantities,
        values={m: dict(j.values[m]) for m in order},
        errors=errors,
        deviations=deviations,
        failures=tuple(failures),
        accuracies={m: float(accuracies[m]) for m in order if m in accuracies},
        conditioning=float(kappa),
        notes=tuple(dict.fromkeys(notes)),
        inconclusive=tuple(undecided),
        statuses=statuses,
        crashed=dict(crashed or {}),
        gradients=dict(gradients or {}),
    )


def _verdict(statuses: Mapping, j: Judgement, failures: Sequence[Failure]) -> str:
    if failures:
        return "fail"
    if j.candidates:
        undecided = any(s == "inconclusive" for m in j.candidates for s in statuses[m].values())
    else:
        undecided = any(s != "ok" for r in j.references for s in statuses[r].values())
    return "inconclusive" if undecided else "ok"


def _agrees(j: Judgement, rule: Rule, a: str, b: str, q: str) -> bool:
    if j.references.index(a) < j.references.index(b):
        a, b = b, a
    return _deviation(j, rule, a, b, q).agree


__all__ = ["REFERENCE_ROUTES", "Context", "Judgement", "Rule", "Standing", "build_report", "judge", "standing"]
