"""Claims of the source note and their computed verdicts (used by ``derivations/``).

A :class:`Claim` holds what the note says, the precise statement, the symbolic proof
(as text: the residual SymPy simplified, or the exact error term) and the numeric
evidence, each piece a :class:`Check` that passed or failed.  The verdict is *computed*
from the checks by :func:`decide`; nothing here, and nothing in ``derivations/``, types a
verdict in.

Verdicts, from best to worst, by one rubric (``derivations/README.md``), applied to the
statement as the note writes it:

* ``exact``: read as written, with the note's own definitions, it is true; nothing has to be
  added (an approximation the note calls an approximation, or a limit it writes, is as written);
* ``conditional``: true only under a condition the note does not state (a limit, an order,
  a restriction on ``f``, one time instead of every time), and nothing in it is false then;
* ``incomplete``: true as far as it goes, but it does not determine its object: a constant,
  a terminal value, limits or an initial value is missing;
* ``wrong``: some part is false under every reasonable reading (a sign, a factor, an
  identification of one object with another); a counterexample exists.

Each :class:`Check` says which of the last three its failure would mean.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy as sp

VERDICTS = ("exact", "conditional", "incomplete", "wrong")
#: How a failed check reads in the report, by the verdict it means.
_OUTCOME = {
    "conditional": "holds only under a condition the note does not state",
    "incomplete": "a needed piece is missing",
    "wrong": "fails",
}


@dataclass(frozen=True)
class Check:
    """One test a claim must pass, with what it found.

    ``failure`` is the verdict the claim gets when this check fails: a missing piece
    (``"incomplete"``), an unstated condition (``"conditional"``) or an error
    (``"wrong"``, the default).
    """

    name: str
    passed: bool
    detail: str
    failure: str = "wrong"

    def __post_init__(self) -> None:
        if self.failure not in VERDICTS[1:]:
            raise ValueError(f"Check {self.name!r}: failure must be one of {VERDICTS[1:]}, got {self.failure!r}")

    def line(self) -> str:
        """``name: outcome. detail``, the outcome in the rubric's words (never a bare FAIL tag)."""
        return f"{self.name}: {self.outcome}. {self.detail}"

    @property
    def outcome(self) -> str:
        if self.passed:
            return "holds"
        return _OUTCOME[self.failure]


def decide(checks: Iterable[Check]) -> str:
    """The worst verdict among the failed checks; ``"exact"`` if every check passed.

    Examples
    --------
    >>> decide([Check("limit", True, "0"), Check("finite step", False, "D/2 y''", "conditional")])
    'conditional'
    >>> decide([Check("sign", False, "flipped"), Check("order", False, "1", "conditional")])
    'wrong'
    """
    worst = 0
    for c in checks:
        if not c.passed:
            worst = max(worst, VERDICTS.index(c.failure))
    return VERDICTS[worst]


@dataclass(frozen=True)
class Claim:
    """A claim of the note, decided.

    Attributes
    ----------
    id : str
        ``"C1"`` ... ``"C15"`` (see ``derivations/NOTE.md``).
    note_statement : str
        What the note says, in its notation.
    correct_statement : str
        The precise statement the checks establish.
    proof : list of Check
        Symbolic checks (SymPy residuals, error terms).
    experiment : list of Check
        Numeric checks that would expose the claim if it were wrong.
    figures : list of str
        File names (relative to the output folder) of the claim's figures.
    """

    id: str
    note_statement: str
    correct_statement: str
    proof: list[Check]
    experiment: list[Check]
    figures: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[Check]:
        return [*self.proof, *self.experiment]

    @property
    def verdict(self) -> str:
        return decide(self.checks)

    @property
    def evidence(self) -> str:
        return " | ".join(c.line() for c in self.checks)

    def as_dict(self) -> dict:
        """The ``verdicts.json`` entry plus the pieces the report prints."""
        return {
            "verdict": self.verdict,
            "correct_statement": self.correct_statement,
            "evidence": self.evidence,
            "note_statement": self.note_statement,
            "proof": [c.line() for c in self.proof],
            "experiment": [c.line() for c in self.experiment],
            "figures": list(self.figures),
        }


def measured_order(steps: Sequence[float], errors: Sequence[float]) -> float:
    """Least-squares slope of ``log(error)`` against ``log(step)``: the observed order.

    Examples
    --------
    >>> round(measured_order([0.1, 0.05, 0.025], [1e-2, 2.5e-3, 6.25e-4]), 6)
    2.0
    """
    x, y = np.log(np.asarray(steps, float)), np.log(np.asarray(errors, float))
    return float(np.polyfit(x, y, 1)[0])


def leading_term(expr: sp.Expr, step: sp.Symbol, order: int = 4) -> tuple[int | None, sp.Expr]:
    """The lowest power of ``step`` in the Taylor series of ``expr`` and its coefficient.

    Returns ``(None, 0)`` when the series vanishes through ``step**(order-1)``.

    Examples
    --------
    >>> D, t = sp.symbols("D t")
    >>> y = sp.Function("y")
    >>> leading_term((y(t + D) - y(t)) / D - y(t).diff(t), D)
    (1, Derivative(y(t), (t, 2))/2)
    """
    series = sp.series(expr, step, 0, order).removeO().doit()
    # SymPy's series cache can hand back a term built with a same-named symbol of other
    # assumptions (``t`` vs ``t`` positive), which then fails to cancel: map names back.
    mine = {s.name: s for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    strays = {s: mine[s.name] for s in series.free_symbols if s.name in mine and s != mine[s.name]}
    series = sp.expand(series.xreplace(strays))
    for k in range(order):
        coefficient = sp.simplify(series.coeff(step, k))
        if coefficient != 0:
            return k, coefficient
    return None, sp.Integer(0)


def relative_error(value, reference) -> float:
    """``max |value - reference| / max(|reference|, tiny)`` over all entries.

    Examples
    --------
    >>> relative_error([1.0, -2.0], [1.0, 2.0])  # a flipped sign shows as 2
    2.0
    """
    value, reference = np.atleast_1d(np.asarray(value, float)), np.atleast_1d(np.asarray(reference, float))
    scale = max(float(np.max(np.abs(reference))), np.finfo(float).tiny)
    return float(np.max(np.abs(value - reference)) / scale)


def as_results(claims: Iterable[Claim]) -> dict[str, dict]:
    """``{id: claim.as_dict()}``: what every derivation's ``run`` returns.

    Examples
    --------
    >>> out = as_results([Claim("C0", "1 = 1", "1 = 1", [Check("trivial", True, "0")], [])])
    >>> out["C0"]["verdict"], out["C0"]["evidence"]
    ('exact', 'trivial: holds. 0')
    """
    return {c.id: c.as_dict() for c in claims}


def figure_saver(out_dir: str | Path | None) -> Callable | None:
    """A function ``save(fig, name) -> name`` writing a ``matplotlib.figure.Figure`` into ``out_dir``.

    Returns None without ``out_dir``, and when matplotlib is missing: derivations then
    skip their figures.

    Examples
    --------
    >>> figure_saver(None) is None
    True
    """
    if out_dir is None or importlib.util.find_spec("matplotlib") is None:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from adjoint_sym.plot import layout_problems, tidy

    def save(fig, name: str) -> str:
        # the same finish and the same layout checks as every figure the package draws:
        # a figure that would not read (clipped title, overlapping ticks) is not written
        problems = layout_problems(tidy(fig))
        if problems:
            raise RuntimeError(f"figure {name} does not read well: {'; '.join(problems)}")
        fig.savefig(out / name, dpi=110, bbox_inches="tight")  # a pyplot-free Figure renders through Agg
        return name

    return save


def script_main(run: Callable[..., dict], doc: str | None, argv: Sequence[str] | None = None) -> int:
    """Command line of a derivation script: ``[--out DIR] [--quick]``; prints the verdicts."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    parser.add_argument("--out", help="folder for the figures (none written without it)")
    parser.add_argument("--quick", action="store_true", help="cheaper experiments (fewer steps and sizes)")
    args = parser.parse_args(argv)
    results = run(out_dir=args.out, quick=args.quick)
    for cid, r in results.items():
        print(f"{cid}: {r['verdict']}\n  correct: {r['correct_statement']}")
        for line in [*r["proof"], *r["experiment"]]:
            print(f"    - {line}")
    if args.out:
        path = Path(args.out) / "verdicts.json"
        keys = ("verdict", "correct_statement", "evidence")
        path.write_text(json.dumps({k: {x: v[x] for x in keys} for k, v in results.items()}, indent=2))
        print(f"wrote {path}")
    return 0


__all__ = [
    "VERDICTS",
    "Check",
    "Claim",
    "as_results",
    "decide",
    "figure_saver",
    "leading_term",
    "measured_order",
    "relative_error",
    "script_main",
]
