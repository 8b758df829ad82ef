"""Verify *your* derivation: claimed adjoint equations in, a proof or a counterexample out.

:func:`verify_derivation` takes a problem and the pieces a derivation states (the adjoint
ODE, its terminal value, the parameter-gradient integrand and its limits, ``a_t`` and its
start, ``dL/dt0``, ``dL/dt1``, the jumps at observation times; see
:mod:`adjoint_sym.verify.claimed.pieces`) and decides each one:

* **holds**: the residual against the correct piece simplifies to 0 (the stage is shown);
* **fails**: a point where the residual is nonzero (both values shown) and, integrated
  through the library's backward sweep with the other pieces correct, a problem on which
  the claim's gradient is rejected by the ``"forward"`` and ``"complex-step"`` references
  (both numbers shown); the mistake is named when it is a known one;
* **undecided**: no drawn point disagrees but no bounded simplification reached 0 (said
  so; never called a proof).

The correct pieces come from SymPy differentiation of ``f`` and the loss entry by entry
(:mod:`adjoint_sym.verify.claimed.truth`), not from the library's adjoint; the references
share no code with it either.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import sympy as sp

from ..errors import InvalidModelError, SolverFailedError
from ..numeric.problem import Problem
from ..numeric.solve import forward
from .claimed.decide import Decision, decide
from .claimed.experiment import AFFECTS, Runner, perturbed
from .claimed.pieces import PIECES, ClaimedPiece, ReadClaim, read_claim
from .claimed.truth import Comparison, comparisons
from .claimed.verdict import DerivationVerdict, PieceVerdict

#: Perturbed problems tried, after the given one, when looking for a gradient that exposes a failing piece.
SEARCH_PROBLEMS = 3


def verify_derivation(
    problem: Problem,
    claim: Mapping | None = None,
    /,
    *,
    points: int = 12,
    budget: float = 1.0,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    seed: int = 0,
    name: str | None = None,
    **pieces,
) -> DerivationVerdict:
    """Decide every piece of a claimed adjoint derivation for ``problem``.

    Parameters
    ----------
    problem : Problem
        The system, its numbers and the loss the derivation is about.
    claim : mapping, optional
        The pieces (a spec's ``[claim]`` table): ``adjoint``, ``terminal``, ``jumps``,
        ``param_integrand`` with ``param_limits``, ``terminal_param``, ``adjoint_time``,
        ``terminal_time``, ``dL_dt0``, ``dL_dt1``, each as text or as ``<piece>_latex``,
        and ``adjoint_symbols`` to rename ``a_<state>``.
    points : int
        Points at which claimed and correct pieces are compared numerically.
    budget : float
        Seconds of CPU time of symbolic simplification allowed per comparison.
    rtol, atol : float
        Tolerances of the integrated claim and of the references.
    seed : int
        Seed of the drawn points and perturbed problems (verdicts are reproducible).
    name : str, optional
        A label for the report (default: the system's name).
    **pieces
        The same pieces as keywords (they override ``claim``).

    Returns
    -------
    DerivationVerdict

    Raises
    ------
    InvalidModelError
        A piece that does not parse, uses an unknown name, has the wrong length or does
        not apply to the loss; the message names the field.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, Problem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> v = verify_derivation(prob, adjoint=["k*a_x"], terminal=["-2*x"])
    >>> v["adjoint"].holds, v["terminal"].holds, v["terminal"].diagnosis
    (True, False, 'sign flipped: a(t1) = -dL/dh(t1), the convention a = -dL/dh')
    >>> v.exit_code
    1
    """
    if not isinstance(problem, Problem):
        raise InvalidModelError(f"verify_derivation() takes a Problem, got {type(problem).__name__}")
    if problem.running_cost is not None:
        raise InvalidModelError(
            "verify_derivation decides claims about point losses; this loss has a running cost (IntegralLoss), whose "
            "pieces (-dg/dh in the adjoint, g(t1) in dL/dt1) it does not read yet: check the gradient with "
            "adjoint_sym.check instead"
        )
    if isinstance(points, bool) or not isinstance(points, int) or not 3 <= points <= 1000:
        raise InvalidModelError(f"points: expected an integer from 3 to 1000, got {points!r}")
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget <= 600:
        raise InvalidModelError(f"budget: expected seconds in (0, 600], got {budget!r}")
    started = time.perf_counter()
    read = read_claim(problem, {**dict(claim or {}), **pieces})
    read = _with_unstated_jumps(read)
    rng = np.random.default_rng(seed)
    fwd = forward(problem, solver="DOP853", rtol=rtol, atol=atol)
    draws = _draw_points(read, fwd, rng, points)
    runner = Runner(read, rtol, atol)
    verdicts = [_decide_piece(read, piece, draws, runner, budget, rng) for piece in PIECES if piece in read.pieces]
    experiment = _whole_claim(read, runner)
    label = name or problem.system.name or "claim"
    return DerivationVerdict(label, tuple(verdicts), experiment, time.perf_counter() - started)


def _with_unstated_jumps(read: ReadClaim) -> ReadClaim:
    """An observation loss read at several times whose claim states a(t1) but no jumps has dropped them."""
    times = read.problem.times
    if read.problem.is_final_loss or len(times) < 2 or "jumps" in read.pieces or "terminal" not in read.pieces:
        return read
    zero = ClaimedPiece("jumps", (sp.Integer(0),) * read.problem.system.n, ("(not stated)",), stated=False)
    return ReadClaim(read.problem, read.names, {**read.pieces, "jumps": zero}, read.limits)


def _draw_points(read: ReadClaim, fwd, rng: np.random.Generator, count: int) -> list[dict]:
    """States on the trajectory (and, for half the points, moved off it), parameters, drawn adjoints."""
    problem, names = read.problem, read.names
    system = problem.system
    n, p = system.n, system.n_params
    span = problem.t1 - problem.t0
    out = []
    for k in range(count):
        tau = problem.t0 + (0.5 if k == 0 else rng.uniform()) * span
        h = np.asarray(fwd.sol(tau) if fwd.sol is not None else problem.h0, dtype=float)
        theta = problem.theta
        if k % 2:
            theta = theta * (1 + 0.5 * rng.standard_normal(p)) + 0.1 * rng.standard_normal(p)
        if k >= count // 2:
            h = h * (1 + 0.5 * rng.standard_normal(n)) + 0.3 * rng.standard_normal(n)
        a = rng.standard_normal(n)
        values = dict(zip(system.flat_state, h)) | dict(zip(system.flat_params, theta))
        values |= dict(zip(names.adjoint_entries, a)) | {system.t: tau}
        out.append(values)
    return out


def _restrict(comparison: Comparison, draws: list[dict], rng: np.random.Generator) -> list[dict]:
    symbols = comparison.symbols
    out = []
    for values in draws:
        point = {s: values[s] if s in values else float(rng.standard_normal()) for s in symbols}
        out.append(point)
    return out


def _decide_piece(read: ReadClaim, piece: str, draws, runner: Runner, budget: float, rng) -> PieceVerdict:
    started = time.perf_counter()
    comps = comparisons(read, piece)
    decisions = [(c, decide(c, _restrict(c, draws, rng), budget)) for c in comps]
    outcomes = [d.holds for _, d in decisions]
    holds = False if False in outcomes else (None if None in outcomes else True)
    residual = tuple(_labelled(c, d.residual) for c, d in decisions)
    expected = tuple(_labelled(c, c.expected) for c, _ in decisions)
    claimed = tuple(_labelled(c, c.claimed) for c, _ in decisions) if piece == "jumps" else read.pieces[piece].source
    counterexample, diagnosis = None, None
    if holds is False:
        comp, failing = next((c, d) for c, d in decisions if d.holds is False)
        diagnosis = failing.diagnosis
        counterexample = {"point": _point(comp, failing), **_gradient_counterexample(read, piece, runner, rng)}
        how = "counterexample: nonzero at a point" + ("; gradient rejected" if "gradient" in counterexample else "")
    elif holds is True:
        how = max((d.how for _, d in decisions), key=_stage_rank)
    else:
        how = next(d.how for _, d in decisions if d.holds is None)
    pieces_tex = {
        "claimed": tuple(sp.latex(e) for e in read.pieces[piece].exprs),
        "residual": tuple(sp.latex(r) for _, d in decisions for r in d.residual),
    }
    return PieceVerdict(
        piece,
        holds,
        how,
        claimed,
        expected,
        residual,
        diagnosis,
        counterexample,
        time.perf_counter() - started,
        pieces_tex,
    )


def _stage_rank(how: str) -> int:
    order = ("expand", "cancel", "trigonometric", "simplify")
    return next((i for i, word in enumerate(order) if word in how), 0)


def _labelled(c: Comparison, exprs) -> str:
    text = "[" + ", ".join(sp.sstr(e) for e in exprs) + "]" if len(exprs) > 1 else sp.sstr(exprs[0])
    return f"{c.label}: {text}" if c.label else text


def _plain(value: complex):
    return (
        float(value.real) if abs(value.imag) <= 1e-12 * max(1.0, abs(value)) else {"re": value.real, "im": value.imag}
    )


def _point(comp: Comparison, d: Decision) -> dict:
    component, mine, right = d.at_point
    at = {str(s): float(v) for s, v in sorted(d.point.items(), key=lambda kv: str(kv[0]))}
    return {"at": at, "component": component, "claimed": _plain(mine), "expected": _plain(right), "where": comp.label}


def _gradient_counterexample(read: ReadClaim, piece: str, runner: Runner, rng) -> dict:
    """The first of the given and a few perturbed problems on which the isolated piece is rejected."""
    claimed = frozenset({piece})
    failures = []
    for k, problem in enumerate(perturbed(read.problem, rng, SEARCH_PROBLEMS)):
        try:
            rejection = runner.judge(problem, claimed, AFFECTS[piece])
        except SolverFailedError as exc:
            failures.append(str(exc))  # a problem the claimed equations cannot be integrated on: try the next
            continue
        if not rejection.agrees:
            return {
                "gradient": {
                    "problem": "the given problem" if k == 0 else _describe(problem),
                    "quantity": rejection.quantity,
                    "claimed": rejection.claimed,
                    "references": rejection.references,
                    "deviation": rejection.deviation,
                }
            }
    if len(failures) == SEARCH_PROBLEMS + 1:
        return {
            "note": f"no gradient to compare: the claimed equations could not be integrated on the given and "
            f"{SEARCH_PROBLEMS} perturbed problems ({failures[0]})"
        }
    return {
        "note": f"no gradient rejected on the given and {SEARCH_PROBLEMS} perturbed problems: "
        "the wrong piece does not move this problem's gradient beyond the tolerance"
    }


def _describe(problem: Problem) -> str:
    h0 = ", ".join(f"{v:.4g}" for v in problem.h0)
    theta = ", ".join(f"{p} = {v:.4g}" for p, v in zip(problem.system.flat_params, problem.theta))
    return f"the problem with h0 = [{h0}]" + (f", {theta}" if theta else "")


def _whole_claim(read: ReadClaim, runner: Runner) -> dict | None:
    """Every claimed piece at once, integrated, against the forward reference."""
    problem = read.problem
    blocks = ("dh0", "dtheta", "dt0", "dt1")
    try:
        r = runner.judge(problem, frozenset(read.pieces), blocks)
    except SolverFailedError as exc:  # the claimed equations blow up: that is a rejection too, with the reason
        failed = {"quantity": "", "claimed": float("nan"), "value": float("nan"), "deviation": float("inf")}
        return {"problem": "the given problem", "reference": "forward", **failed, "agrees": False, "error": str(exc)}
    return {
        "problem": "the given problem",
        "reference": "forward",
        "quantity": r.quantity,
        "claimed": r.claimed,
        "value": r.references["forward"],
        "deviation": r.deviation,
        "agrees": r.agrees,
        **({"complex-step": r.references["complex-step"]} if "complex-step" in r.references else {}),
    }


__all__ = ["verify_derivation"]
