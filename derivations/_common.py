"""Shared pieces of the adjoint derivations (not a derivation itself: the runner skips ``_*.py``).

The claimed derivations of ``corpus/`` decided through :func:`adjoint_sym.verify_derivation`
(:func:`corpus_checks`), the test problems, and a backward integration of ``[a, a_theta, a_t]`` whose terminal
values and dynamics sign are *parameters*, so that each premise of the note (a sign
convention, a missing terminal value) can be run as stated and compared with the
complex-step reference of :func:`adjoint_sym.gradient`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _claims import Check

from adjoint_sym import FinalLoss, Problem, gradient, load_spec, verify_derivation
from adjoint_sym.adjoint import (
    AdjointState,
    InterpolatingAdjoint,
    Observations,
    SymbolicVJP,
    VectorJacobianProduct,
    sweep,
)
from adjoint_sym.builders import lotka_volterra, neural_ode
from adjoint_sym.numeric import SolveResult, forward

#: Forward and backward solves run at this tolerance; the complex-step reference runs
#: tighter (1e-13), so the comparison error is that of these solves.
RTOL, ATOL = 1e-10, 1e-12
#: Agreement threshold, relative to the largest entry: the global error of a DOP853
#: solve at RTOL over a unit-length span is within a few hundred RTOL; 1e4 * RTOL = 1e-6
#: leaves margin while a sign error (relative deviation 2) or a missing term (1) is
#: seven orders of magnitude above it.
AGREE = 1e4 * RTOL


def neural_problem() -> Problem:
    """``dh/dt = tanh((W + tV) h + b + tc)``, n = 2, over [0.25, 1.25]: non-autonomous, so ``a_t`` moves."""
    rng = np.random.default_rng(11)
    params = {
        "W": rng.normal(size=(2, 2)),
        "b": rng.normal(size=(2, 1)),
        "V": 0.5 * rng.normal(size=(2, 2)),
        "c": 0.5 * rng.normal(size=(2, 1)),
    }
    return Problem(neural_ode(2, time="linear"), [0.5, -0.3], params, 0.25, 1.25, FinalLoss("h[0]**2 + 2*h[1]"))


def lotka_problem() -> Problem:
    """Lotka-Volterra over [0, 2] with ``L = x^2 + y^2`` at ``t1``."""
    params = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
    return Problem(lotka_volterra(), [1.0, 1.0], params, 0.0, 2.0, FinalLoss("x**2 + y**2"))


def problems(quick: bool) -> list[tuple[str, Problem]]:
    out = [("tanh layer, W(t) = W + tV", neural_problem())]
    if not quick:
        out.append(("Lotka-Volterra", lotka_problem()))
    return out


@dataclass(frozen=True)
class Terminal:
    """``dL/dh(t1)`` and ``dL/dt1`` of a final loss, from the forward solve."""

    dLdh1: np.ndarray
    dLdt1: float
    dLdtheta_explicit: np.ndarray


def terminal(problem: Problem, fwd: SolveResult) -> Terminal:
    h1 = fwd.y[:, -1]
    loss = problem.evaluate_loss(h1[None, :])
    f1 = problem.kernels.f.fn(problem.t1, h1, problem.theta)
    return Terminal(loss.d_states[0], float(loss.d_states[0] @ f1 + loss.d_times[0]), loss.d_theta)


class SignedVJP(VectorJacobianProduct):
    """The library's symbolic VJP with the adjoint dynamics' sign as a premise.

    The sweep integrates ``d[a, a_theta, a_t]/dt = -products``; returning
    ``-sign * a^T f_.`` makes that ``sign * a^T f_.``: ``sign = -1`` is Chen et al.'s
    (and the note's) dynamics, ``+1`` the flipped one a premise may claim.
    """

    def __init__(self, system, sign: float) -> None:
        super().__init__(system)
        self.base, self.sign = SymbolicVJP(system), sign

    def products(self, t, h, a, theta):
        return -self.sign * self.base.products(t, h, a, theta)


@dataclass(frozen=True)
class Backward:
    """``[a, a_theta, a_t]`` integrated from ``t1`` back to ``t0`` (dense, so it can be plotted)."""

    end: AdjointState
    path: object
    n: int
    p: int

    def at_t0(self) -> tuple[np.ndarray, np.ndarray, float]:
        return self.end.a, self.end.a_theta, float(self.end.a_t)

    def blocks(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = self.path(ts)
        return y[: self.n], y[self.n : self.n + self.p], y[-1]


def backward(
    problem: Problem,
    fwd: SolveResult,
    a1: np.ndarray,
    a_theta1: np.ndarray,
    a_t1: float,
    *,
    sign: float = -1.0,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Backward:
    """Integrate ``d/dt [a, a_theta, a_t] = sign * [a f_h, a f_theta, a f_t]`` from t1 to t0.

    The library's one backward sweep (:func:`adjoint_sym.adjoint.sweep`) run with the
    premises stated: the terminal values ``a(t1) = a1``, ``a_theta(t1) = a_theta1``,
    ``a_t(t1) = a_t1`` and the dynamics' sign.  ``h(t)`` is read from the forward solve's
    dense output.  ``sign = -1`` is the dynamics of Chen et al. (eq. 4 and appendix B)
    and of the note (C11, C14).
    """
    if len(problem.times) != 1:
        raise ValueError("the derivations' backward() states terminal values of a final loss")
    n, p = problem.system.n, problem.system.n_params
    method = InterpolatingAdjoint(keep_paths=True, vjp=lambda system: SignedVJP(system, sign))
    observations = Observations.of(problem, fwd.at(problem.times))
    crossings: list = []
    initial = AdjointState(np.zeros(n), np.asarray(a_theta1, dtype=float), float(a_t1))
    end = sweep(
        problem,
        observations,
        method.segments(problem, fwd, "DOP853", rtol, atol),
        jumps=np.asarray(a1, dtype=float)[None, :],
        motion=np.zeros(1),
        initial=initial,
        record=crossings,
    )
    return Backward(end, crossings[0].crossed.path, n, p)


def forward_tight(problem: Problem) -> SolveResult:
    return forward(problem, solver="DOP853", rtol=RTOL, atol=ATOL)


def reference(problem: Problem):
    """The complex-step gradient (independent of every adjoint code path)."""
    return gradient(problem, "complex-step", rtol=RTOL, atol=ATOL)


def dLdh_at(problem: Problem, fwd: SolveResult, t: float) -> np.ndarray:
    """``dL/dh(t)`` by complex step: restart the problem at ``t`` from the forward state there."""
    sub = Problem(problem.system, fwd.sol(t), problem.params, t, problem.t1, problem.loss)
    return reference(sub).dh0


#: The claimed derivations (problem spec + ``[claim]``) of published statements, the note's among them.
CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_checks(name: str, overrides: Mapping | None = None) -> list[Check]:
    """Each piece of ``corpus/<name>`` (with ``overrides`` replacing pieces: a premise) decided by
    :func:`adjoint_sym.verify_derivation`, as one :class:`~_claims.Check` per piece.

    A piece that holds passes.  A failing piece means the claim is ``incomplete`` when what
    fails is a missing value (the diagnosis says "missing"), else ``wrong``; an undecided
    piece is not a proof, so its check fails too (as ``wrong``, and says it was undecided).
    """
    spec = load_spec(CORPUS / name)
    verdict = verify_derivation(spec.problem, {**spec.claim, **dict(overrides or {})})
    checks = []
    for piece in verdict.pieces:
        missing = piece.diagnosis is not None and "missing" in piece.diagnosis
        detail = piece.how + (f"; {piece.diagnosis}" if piece.diagnosis else "")
        grad = (piece.counterexample or {}).get("gradient")
        if grad:
            refs = ", ".join(f"{m} {v:.6g}" for m, v in grad["references"].items())
            detail += f"; {grad['quantity']} = {grad['claimed']:.6g} from the claim vs {refs}"
        name_ = f"verify_derivation, corpus/{name}: {piece.piece} = {', '.join(piece.claimed)}"
        checks.append(Check(name_, piece.holds is True, detail, failure="incomplete" if missing else "wrong"))
    return checks
