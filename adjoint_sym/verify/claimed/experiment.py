"""Integrate a claimed derivation and hold its gradient against the independent references.

The claimed pieces run through the library's one backward sweep
(:func:`adjoint_sym.adjoint.sweep`): a :class:`ClaimedVJP` evaluates the claimed right-hand
sides of ``[a, a_theta, a_t]`` (and the correct ones for the pieces not claimed), the
claimed terminal values and jumps enter as the sweep's ``jumps``, ``motion`` and
``initial``, and the claimed ``dL/dt0``, ``dL/dt1`` are read at the ends.  The result is
compared with :func:`adjoint_sym.gradient` by ``"forward"`` (sensitivity equations with
entry-wise Jacobians) and, to confirm a rejection, ``"complex-step"``: neither shares code
with the adjoint.

Agreement: every quantity block (``dL/dh0``, ``dL/dtheta``, ``dL/dt0``, ``dL/dt1``) within
:data:`AGREE` relative to its largest entry.  Both sides solve at ``rtol = 1e-10``; the
global error of two such solves over the spans the verifier is used on is below ``1e-7``
relative, so ``1e-5`` leaves two decades of margin while a flipped sign (deviation 2),
a missing transpose or a dropped term (typically ``O(1)``) stands far above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from ...adjoint import AdjointState, InterpolatingAdjoint, Observations, VectorJacobianProduct, sweep
from ...errors import InvalidModelError
from ...numeric.compile import Argument, Kernel, compile_kernel, scalar_argument
from ...numeric.loss import ObservationLoss
from ...numeric.problem import Problem, unflatten_params
from ...numeric.result import Gradient
from ...numeric.solve import forward
from ..routes import gradient
from .pieces import ReadClaim

#: Relative deviation per quantity block below which a claimed gradient agrees (see the module docstring).
AGREE = 1e-5
#: Which gradient blocks each piece moves.
AFFECTS = {
    "adjoint": ("dh0", "dtheta", "dt0"),
    "terminal": ("dh0", "dtheta", "dt0"),
    "jumps": ("dh0", "dtheta", "dt0"),
    "param_integrand": ("dtheta",),
    "terminal_param": ("dtheta",),
    "adjoint_time": ("dt0",),
    "terminal_time": ("dt0",),
    "dL_dt0": ("dt0",),
    "dL_dt1": ("dt1",),
}


class ClaimedVJP(VectorJacobianProduct):
    """The sweep's products ``[a^T f_h, a^T f_theta, a^T f_t]`` from claimed rates.

    The sweep integrates ``d[a, a_theta, a_t]/dt = -products``, so the products are the
    negated rates: ``rates(t, h, a, theta)`` returns ``[da/dt, da_theta/dt, da_t/dt]``.
    """

    def __init__(self, system, rates: Kernel) -> None:
        super().__init__(system)
        self.rates = rates

    def products(self, t, h, a, theta):
        return -self.rates.fn(t, h, a, theta)


@dataclass(frozen=True, eq=False)
class Rejection:
    """The worst quantity of a claimed gradient against the references."""

    quantity: str
    claimed: float
    references: dict  # method -> value
    deviation: float  # relative, of the worst block
    agrees: bool


class Runner:
    """Claimed gradients of one read claim on a problem (the spec's, or a perturbed one)."""

    def __init__(self, read: ReadClaim, rtol: float, atol: float) -> None:
        self.read, self.rtol, self.atol = read, rtol, atol
        self._references: dict = {}

    # -- kernels of the claimed and the correct pieces ----------------------------------------
    def _args(self) -> list[Argument]:
        system, names = self.read.problem.system, self.read.names
        targets = names.targets or (sp.Dummy("no_target"),)
        return [
            scalar_argument(system.t),
            Argument("h", tuple(system.state)),
            Argument("a", tuple(names.adjoint)),
            Argument("theta", tuple(system.params)),
            Argument("y", tuple(targets)),
        ]

    def _exprs(self, piece: str, claimed: set[str]) -> tuple:
        """The claimed expressions of ``piece`` when in ``claimed``, else the correct ones."""
        if piece in claimed:
            return self.read.pieces[piece].exprs
        return _correct(self.read, piece)

    def rates(self, claimed: frozenset[str]) -> Kernel:
        """``[da/dt, da_theta/dt, da_t/dt](t, h, a, theta)``: claimed where claimed, else correct."""
        rate_a = self._exprs("adjoint", claimed)
        if "param_integrand" in claimed:  # a_theta(t0) = a_theta(t1) + int_{t1}^{t0} rate dt
            sign = 1 if self.read.limits == ("t1", "t0") else -1
            rate_theta = tuple(sign * g for g in self.read.pieces["param_integrand"].exprs)
        else:
            rate_theta = _correct(self.read, "param_integrand", limits=("t1", "t0"))
        rate_t = self._exprs("adjoint_time", claimed)
        outputs = [sp.ImmutableMatrix(list(rate_a)), *([sp.ImmutableMatrix(list(rate_theta))] if rate_theta else [])]
        outputs.append(rate_t[0])
        return compile_kernel("claimed_rates", self._args()[:4], outputs)

    def kernel(self, piece: str) -> Kernel:
        return compile_kernel(
            f"claimed_{piece}", self._args(), [sp.ImmutableMatrix(list(self.read.pieces[piece].exprs))]
        )

    @cached_property
    def _kernels(self) -> dict:
        return {p: self.kernel(p) for p in self.read.pieces if p not in ("adjoint", "param_integrand", "adjoint_time")}

    # -- one claimed gradient ---------------------------------------------------------------
    def claimed_gradient(self, problem: Problem, claimed: frozenset[str]) -> Gradient:
        """The gradient when the pieces in ``claimed`` are the claim's and the others correct."""
        n, p = problem.system.n, problem.system.n_params
        fwd = forward(problem, solver="DOP853", rtol=self.rtol, atol=self.atol)
        obs = Observations.of(problem, fwd.at(problem.times))
        theta, times, states = problem.theta, problem.times, obs.states
        rows = _target_rows(problem)
        jumps, motion = np.array(obs.loss.d_states, dtype=float), np.array(obs.motion, dtype=float)
        k = self._kernels
        last = len(times) - 1
        if "jumps" in claimed:
            true_last = jumps[last].copy()
            jumps = np.array([k["jumps"](times[i], states[i], jumps[i], theta, rows[i]) for i in range(len(times))])
            if not self.read.pieces["jumps"].stated:  # only the intermediate jumps are missing
                jumps[last] = true_last
        if "terminal" in claimed:
            jumps[last] = k["terminal"](times[last], states[last], jumps[last], theta, rows[last])
        true_a1 = obs.loss.d_states[last]
        if "terminal_time" in claimed:  # the sweep subtracts motion from a_t at the jump
            motion[last] = -k["terminal_time"](times[last], states[last], true_a1, theta, rows[last])[0]
        a_theta1 = np.zeros(p)
        if "terminal_param" in claimed:
            a_theta1 = k["terminal_param"](times[last], states[last], true_a1, theta, rows[last])
        method = InterpolatingAdjoint(vjp=lambda system: ClaimedVJP(system, self.rates(claimed)))
        engine = method.segments(problem, fwd, "DOP853", self.rtol, self.atol)
        end = sweep(problem, obs, engine, jumps=jumps, motion=motion, initial=AdjointState(np.zeros(n), a_theta1, 0.0))
        d_theta = end.a_theta + (0.0 if "terminal_param" in claimed else obs.loss.d_theta)
        dt0 = float(end.a_t)
        if "dL_dt0" in claimed:
            dt0 = float(k["dL_dt0"](problem.t0, problem.h0, end.a, theta, rows[0])[0])
        dt1 = float(obs.dtimes[-1]) if problem.is_final_loss else None
        if "dL_dt1" in claimed:
            dt1 = float(k["dL_dt1"](times[last], states[last], true_a1, theta, rows[last])[0])
        return Gradient(
            loss=float(np.real(obs.loss.value)),
            dh0=np.asarray(end.a, dtype=float),
            dparams=unflatten_params(problem.system, np.asarray(d_theta, dtype=float)),
            dt0=dt0,
            dt1=dt1,
            method="claimed",
            dtimes=None if problem.is_final_loss else obs.dtimes,
        )

    # -- the references ------------------------------------------------------------------------
    def reference(self, problem: Problem, method: str) -> Gradient | None:
        key = (id(problem), method)
        if key not in self._references:
            try:
                self._references[key] = gradient(problem, method, rtol=self.rtol, atol=self.atol)
            except InvalidModelError:  # complex step refuses non-analytic f (Abs, Max, sign): say so, skip it
                self._references[key] = None
        return self._references[key]

    def judge(self, problem: Problem, claimed: frozenset[str], blocks: tuple[str, ...]) -> Rejection:
        """The claimed gradient against ``"forward"``, confirmed by ``"complex-step"`` when rejected."""
        mine = self.claimed_gradient(problem, claimed)
        ref = self.reference(problem, "forward")
        worst = _worst(problem, mine, ref, blocks)
        refs = {"forward": worst[2]}
        if worst[3] > AGREE:
            cs = self.reference(problem, "complex-step")
            if cs is not None:
                refs["complex-step"] = _quantity(problem, cs, worst[0])
        return Rejection(worst[0], worst[1], refs, worst[3], worst[3] <= AGREE)


def _correct(read: ReadClaim, piece: str, limits=None) -> tuple:
    """The correct expressions of a dynamics piece (no claim needed)."""
    system = read.problem.system
    a = sp.Matrix(read.names.adjoint_entries)
    if piece == "adjoint":
        return tuple(-(system.jacobian_h.T * a))
    if piece == "param_integrand":
        return tuple(-(system.jacobian_theta.T * a)) if system.n_params else ()
    if piece == "adjoint_time":
        return (-(system.derivative_t.T * a)[0, 0],)
    raise ValueError(piece)  # pragma: no cover - only the three dynamics pieces have a default here


def _target_rows(problem: Problem) -> np.ndarray:
    loss = problem.loss
    if isinstance(loss, ObservationLoss) and loss.targets is not None:
        return np.asarray(loss.targets, dtype=float)
    return np.zeros((len(problem.times), 1))


def _blocks(problem: Problem, g: Gradient) -> dict[str, np.ndarray]:
    out = {"dh0": np.asarray(g.dh0, dtype=float), "dtheta": g.dtheta, "dt0": np.atleast_1d(float(g.dt0))}
    if g.dt1 is not None:
        out["dt1"] = np.atleast_1d(float(g.dt1))
    return out


def _names(problem: Problem) -> dict[str, list[str]]:
    system = problem.system
    return {
        "dh0": [f"dL/dh0[{s}]" for s in system.state_names],
        "dtheta": [f"dL/d{p}" for p in system.flat_params],
        "dt0": ["dL/dt0"],
        "dt1": ["dL/dt1"],
    }


def _worst(problem: Problem, mine: Gradient, ref: Gradient, blocks) -> tuple[str, float, float, float]:
    a, b, names = _blocks(problem, mine), _blocks(problem, ref), _names(problem)
    worst = ("", 0.0, 0.0, -1.0)
    for block in blocks:
        if block not in a or block not in b or b[block].size == 0:
            continue
        scale = max(float(np.max(np.abs(b[block]))), np.finfo(float).tiny)
        errors = np.abs(a[block] - b[block]) / scale
        k = int(np.argmax(errors))
        if errors[k] > worst[3]:
            worst = (names[block][k], float(a[block][k]), float(b[block][k]), float(errors[k]))
    return worst


def _quantity(problem: Problem, g: Gradient, name: str) -> float:
    blocks, names = _blocks(problem, g), _names(problem)
    for block, labels in names.items():
        if name in labels and block in blocks:
            return float(blocks[block][labels.index(name)])
    return float("nan")  # pragma: no cover - every name comes from _names


def perturbed(problem: Problem, rng: np.random.Generator, count: int) -> list[Problem]:
    """``problem`` and up to ``count`` copies with moved ``h0`` and parameters (valid ones only)."""
    out = [problem]
    for _ in range(count):
        h0 = problem.h0 * (1 + 0.3 * rng.standard_normal(problem.h0.shape)) + 0.2 * rng.standard_normal(
            problem.h0.shape
        )
        theta = problem.theta * (1 + 0.2 * rng.standard_normal(problem.theta.shape))
        try:
            out.append(Problem(problem.system, h0, theta, problem.t0, problem.t1, problem.loss))
        except InvalidModelError:  # pragma: no cover - the same loss and span stay valid
            continue
    return out


__all__ = ["AFFECTS", "AGREE", "ClaimedVJP", "Rejection", "Runner", "perturbed"]
