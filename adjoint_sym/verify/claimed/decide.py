"""Deciding one comparison: a counterexample point, a bounded symbolic proof, or neither.

The order matters for honesty and for time:

1. **Points.**  The claimed and the expected expressions are evaluated at ``N`` points
   (states on the problem's trajectory, its parameters and perturbations of them, drawn
   adjoint values) with 30 significant digits.  A residual above ``1e-12`` of the
   larger side at any point is a counterexample: the claim *fails*, and the point is
   shown.  (At 30 digits the rounding of either side is near ``1e-28`` of its terms.)
2. **Proof.**  Otherwise the residual is simplified in stages of growing cost: ``expand``;
   ``cancel`` (a decision procedure for rational functions); the same after rewriting
   trigonometric and hyperbolic functions as exponentials (which settles identities such
   as ``sin^2 + cos^2 = 1`` or ``1 - tanh^2 = 1/cosh^2``; a second form expands the
   exponentials of sums first, for half-angle identities); and last ``simplify``.  Each
   stage runs under a budget of CPU time (``SIGPROF`` in the main thread; elsewhere only the
   cheap stages, and only below a size bound), since simplifying a large expression can
   take unbounded time; CPU time, so that a verdict does not depend on the machine's load.
   A stage reaching zero proves the claim: it *holds*.
3. Neither: **undecided**, saying that no point disagreed and no stage reached zero.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sympy as sp

from .truth import Comparison

#: A residual this small against the larger side, at 30 digits, counts as zero at a point.
POINT_ZERO = 1e-12
#: Digits of the evaluation at the points.
DIGITS = 30
#: ``simplify`` is not attempted on residuals with more operations than this.
MAX_SIMPLIFY_OPS = 600
#: Without an interruptible clock (not the main thread) the cheap stages run only below this size.
MAX_UNTIMED_OPS = 300


@dataclass(frozen=True, eq=False)
class Decision:
    """The outcome for one comparison."""

    holds: bool | None
    how: str
    residual: tuple[sp.Expr, ...]
    point: dict | None = None
    at_point: tuple | None = None  # (component, claimed value, expected value) at the point
    diagnosis: str | None = None
    checked_points: int = 0


class _OutOfTime(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """Raise :class:`_OutOfTime` inside the block after ``seconds`` of this process's CPU time.

    CPU time (``ITIMER_PROF``), not wall time: a verdict must not depend on how loaded the
    machine is.  Yields whether it can interrupt (only the main thread receives signals).
    """
    main = threading.current_thread() is threading.main_thread()
    if seconds <= 0 or not main or not hasattr(signal, "setitimer") or not hasattr(signal, "SIGPROF"):
        yield False
        return

    def expired(signum, frame):
        raise _OutOfTime

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield True
    finally:
        try:
            signal.setitimer(signal.ITIMER_PROF, 0)
        finally:  # even if the alarm fired just now, the caller's handler comes back
            signal.signal(signal.SIGPROF, previous)


def _value(expr: sp.Expr, subs: dict) -> complex | None:
    try:
        v = sp.N(expr.xreplace(subs), DIGITS)
        if not v.is_number or v.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            return None
        return complex(v)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


def evaluate(comparison: Comparison, points: Sequence[dict]) -> list[tuple[dict, list, list]]:
    """``(point, claimed values, expected values)`` at every point where both sides evaluate."""
    out = []
    for point in points:
        subs = {s: sp.Float(repr(float(v)), DIGITS) for s, v in point.items()}
        mine = [_value(e, subs) for e in comparison.claimed]
        right = [_value(e, subs) for e in comparison.expected]
        if None not in mine and None not in right:
            out.append((point, mine, right))
    return out


def _close(x: complex, y: complex) -> bool:
    return abs(x - y) <= POINT_ZERO * max(1.0, abs(x), abs(y))


def _stages(allow_simplify: bool) -> list[tuple[str, Callable[[sp.Expr], sp.Expr]]]:
    stages = [
        ("expand", sp.expand),
        ("cancel (rational functions)", lambda r: sp.cancel(sp.together(r))),
        (
            "trigonometric and hyperbolic identities (rewritten as exponentials, then cancel)",
            lambda r: sp.cancel(sp.together(r.rewrite(sp.exp))),
        ),
        (
            "trigonometric and hyperbolic identities (exponentials expanded and combined, then cancel)",
            lambda r: sp.cancel(sp.powsimp(sp.expand(r.rewrite(sp.exp)))),
        ),
    ]
    if allow_simplify:
        stages.append(("simplify", sp.simplify))
    return stages


def prove_zero(residual: Sequence[sp.Expr], budget: float) -> tuple[str | None, tuple[sp.Expr, ...]]:
    """The first stage that reduces every component to zero (or None), and the smallest form seen."""
    shown = [sp.expand(r) for r in residual]
    deadline = time.process_time() + budget
    pending = [i for i, r in enumerate(shown) if r != 0]
    if not pending:
        return "expand", tuple(shown)
    ops = max(sp.count_ops(shown[i]) for i in pending)
    proved = None
    try:  # the alarm may fire anywhere inside, the context manager's own lines included
        with time_limit(budget) as timed:
            if timed or ops <= MAX_UNTIMED_OPS:
                proved = _run_stages(residual, shown, pending, timed and ops <= MAX_SIMPLIFY_OPS, deadline)
    except _OutOfTime:
        pass
    except (RecursionError, NotImplementedError, TypeError, ValueError, AttributeError):
        pass  # a SymPy stage that cannot handle the expression proves nothing either way
    return proved, tuple(shown)


def _run_stages(residual, shown: list, pending: list, allow_simplify: bool, deadline: float) -> str | None:
    for name, stage in _stages(allow_simplify)[1:]:
        for i in list(pending):
            reduced = stage(residual[i])
            if sp.count_ops(reduced) < sp.count_ops(shown[i]):
                shown[i] = reduced
            if reduced == 0:
                pending.remove(i)
        if not pending:
            return name
        if time.process_time() > deadline:
            return None
    return None


def decide(comparison: Comparison, points: Sequence[dict], budget: float) -> Decision:
    """Counterexample point first, then a bounded proof; see the module documentation."""
    residual = tuple(c - e for c, e in zip(comparison.claimed, comparison.expected))
    values = evaluate(comparison, points)
    for point, mine, right in values:
        bad = [k for k in range(len(mine)) if not _close(mine[k], right[k])]
        if bad:
            shown = tuple(_cheap(r) for r in residual)
            k = bad[0]
            return Decision(
                False,
                "counterexample",
                shown,
                point=point,
                at_point=(comparison.components[k], mine[k], right[k]),
                diagnosis=diagnose(comparison, values),
                checked_points=len(values),
            )
    stage, shown = prove_zero(residual, budget)
    if stage is not None:
        return Decision(True, f"symbolic: {stage}", tuple(sp.Integer(0) for _ in residual), checked_points=len(values))
    if len(values) < 3:
        how = f"undecided: only {len(values)} of {len(points)} drawn points could be evaluated, and no stage proved it"
    else:
        how = (
            f"undecided: no disagreement at {len(values)} points, but simplification did not reach 0 "
            f"within {budget:g} s (not a proof)"
        )
    return Decision(None, how, shown, checked_points=len(values))


def _cheap(r: sp.Expr) -> sp.Expr:
    """A readable residual: expanded, or cancelled when that is smaller."""
    expanded = sp.expand(r)
    if sp.count_ops(expanded) > MAX_UNTIMED_OPS:
        return expanded
    try:
        cancelled = sp.factor_terms(sp.cancel(sp.together(r)))
    except (NotImplementedError, TypeError, ValueError):
        return expanded
    return cancelled if sp.count_ops(cancelled) < sp.count_ops(expanded) else expanded


def diagnose(comparison: Comparison, values: list[tuple[dict, list, list]]) -> str | None:
    """Name the mistake when it is a known one (a variant, a constant factor, dropped or extra terms)."""
    for label, variant in comparison.variants:
        trial = Comparison(
            comparison.piece, comparison.label, comparison.components, comparison.claimed, tuple(variant), ()
        )
        matched = evaluate(trial, [p for p, _, _ in values])
        if matched and all(_close(m, v) for _, mine, vs in matched for m, v in zip(mine, vs)):
            return label
    factor = _constant_factor(values)
    if factor is not None:
        return (
            f"wrong factor: the claim is {sp.nsimplify(factor, rational=True, tolerance=1e-9)} times the correct value"
        )
    return _term_diagnosis(comparison)


def _constant_factor(values) -> float | None:
    ratios = []
    for _, mine, right in values:
        for m, r in zip(mine, right):
            if abs(r) > 1e-12:
                ratios.append(m / r)
            elif abs(m) > 1e-12:
                return None
    if not ratios or any(abs(q.imag) > 1e-9 for q in ratios):
        return None
    c = ratios[0].real
    if abs(c - 1) < 1e-9 or any(abs(q.real - c) > 1e-9 * max(1.0, abs(c)) for q in ratios):
        return None
    return c


def _term_diagnosis(comparison: Comparison) -> str | None:
    findings = []
    for name, mine, right in zip(comparison.components, comparison.claimed, comparison.expected):
        if sp.count_ops(mine) + sp.count_ops(right) > MAX_UNTIMED_OPS:
            return None
        have, want = set(sp.Add.make_args(sp.expand(mine))), set(sp.Add.make_args(sp.expand(right)))
        missing, extra = want - have, have - want
        if not missing and not extra:
            continue
        if missing and not extra:
            findings.append(
                f"dropped term {' + '.join(map(sp.sstr, sorted(missing, key=sp.default_sort_key)))} in {name}"
            )
        elif extra and not missing:
            findings.append(f"extra term {' + '.join(map(sp.sstr, sorted(extra, key=sp.default_sort_key)))} in {name}")
        elif {-e for e in missing} == extra:
            flipped = " + ".join(map(sp.sstr, sorted(missing, key=sp.default_sort_key)))
            findings.append(f"sign of the term {flipped} flipped in {name}")
        else:
            return None
    return "; ".join(findings) or None


__all__ = ["DIGITS", "POINT_ZERO", "Decision", "decide", "diagnose", "evaluate", "prove_zero", "time_limit"]
