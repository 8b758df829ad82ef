"""The one backward sweep: the augmented adjoint from the last observation back to ``t0``.

Every continuous adjoint of the library runs this loop (the default engine, the compiled
fast backend, the plotted adjoint path, the planted mutants and the derivations); only
how a segment between two observation times is crossed differs, and that is a
:class:`Segments` engine (:mod:`adjoint_sym.adjoint.methods`, :mod:`adjoint_sym.adjoint.fast`).

At each observation time ``t_i``, from the last to the first (Chen et al. 2018, appendix B):

* ``a += dL/dh(t_i)``: the loss reads the state there;
* ``a_t -= dL/dh(t_i) . f(h(t_i), t_i)``: only the state's motion enters ``a_t``.  An
  explicit ``dL/dt_i`` belongs to ``t_i``, which stays put when ``t0`` moves, so
  ``a_t(t0) = -a(t0) . f(h0, t0) = dL/dt0``;

then the engine integrates ``[a, a_theta, a_t]`` back to ``t_{i-1}`` (``t0`` last) with
``da/dt = -a^T f_h``, ``da_theta/dt = -a^T f_theta``, ``da_t/dt = -a^T f_t``.  The
gradient is ``dL/dh0 = a(t0)``, ``dL/dtheta = a_theta(t0) + dL/dtheta|explicit``,
``dL/dt0 = a_t(t0)``, and ``dL/dt_i = dL/dh(t_i) . f + dL/dt_i|explicit``.

A running cost ``int g dt`` (:mod:`adjoint_sym.adjoint.running_cost`) changes two things:
the engines integrate the Hamiltonian's products (``a^T f_x + g_x``), and the loss moves
with its last time ``t_N = t1`` by ``g(h(t1), t1)`` as well (the integral grows with its
end), which :class:`Observations` adds to ``motion[-1]``: ``a_t`` jumps by it, so
``dL/dt0 = -a(t0) . f(h0, t0) - g(h0, t0)``, and ``dL/dt1`` includes it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidModelError
from ..numeric.problem import LossValue, Problem, unflatten_params


@dataclass(frozen=True)
class Observations:
    """The forward solve at the observation times and the loss read there.

    Attributes
    ----------
    times : ndarray, shape (N,)
    states : ndarray, shape (N, n)
    loss : LossValue
        The point loss and its partial derivatives at ``states``.
    motion : ndarray, shape (N,)
        ``dL/dh(t_i) . f(h(t_i), t_i)``: how the loss moves with each observation time
        (plus ``g(h(t_N), t_N)`` at the last one under a running cost).
    integral : float
        ``int_{t0}^{t1} g dt`` of a running cost; 0 without one.
    """

    times: np.ndarray
    states: np.ndarray
    loss: LossValue
    motion: np.ndarray
    integral: float = 0.0

    @classmethod
    def of(
        cls, problem: Problem, states: np.ndarray, rates: np.ndarray | None = None, *, integral: float | None = None
    ) -> Observations:
        """Read the loss at ``states``; ``rates`` (``f`` at each ``t_i``) are computed if not given.

        ``integral`` is the running cost's integral (required when the loss has one: it
        cannot be read from the observed states).
        """
        loss = problem.evaluate_loss(states)
        times = problem.times
        if rates is None:
            f = problem.kernels.f.fn
            rates = np.array([f(t, states[i], problem.theta) for i, t in enumerate(times)])
        motion = np.einsum("ij,ij->i", loss.d_states, rates)
        if problem.running_cost is None:
            return cls(times, states, loss, motion)
        if integral is None:
            raise InvalidModelError(
                "the loss has a running cost: pass integral= (its integral over [t0, t1], e.g. from "
                "adjoint_sym.adjoint.running_cost.forward_with_cost)"
            )
        motion[-1] += problem.running_value(times[-1], states[-1])
        return cls(times, states, loss, motion, float(integral))

    @property
    def dtimes(self) -> np.ndarray:
        """``dL/dt_i``: the state's motion plus the loss's explicit time dependence."""
        return self.motion + self.loss.d_times


@dataclass(frozen=True)
class AdjointState:
    """``[a, a_theta, a_t]`` at one time of the backward sweep.

    ``path``, when an engine keeps it, is the dense ``[a, a_theta, a_t](t)`` over the
    segment just crossed (for plots).
    """

    a: np.ndarray
    a_theta: np.ndarray
    a_t: float
    path: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def zero(cls, n: int, p: int) -> AdjointState:
        return cls(np.zeros(n), np.zeros(p), 0.0)

    @classmethod
    def from_vector(cls, y: np.ndarray, n: int, p: int, path=None) -> AdjointState:
        return cls(y[:n], y[n : n + p], y[n + p], path)

    def vector(self) -> np.ndarray:
        return np.concatenate([self.a, self.a_theta, [self.a_t]])

    def jumped(self, d_state: np.ndarray, motion: float) -> AdjointState:
        """The jump at an observation time: ``a += dL/dh(t_i)``, ``a_t -= motion``."""
        return AdjointState(self.a + d_state, self.a_theta, self.a_t - motion)


class Segments(ABC):
    """How one adjoint method crosses a segment between observation times, backward.

    An engine is built per gradient computation (it holds the forward solution and
    counts its work in :attr:`stats`); :meth:`cross` is its one abstract method.
    """

    stats: dict

    @abstractmethod
    def cross(self, start: float, end: float, state: AdjointState, h_start: np.ndarray) -> AdjointState:
        """Integrate ``[a, a_theta, a_t]`` from ``start`` back to ``end``.

        ``h_start`` is the forward state at ``start`` (engines that re-integrate ``h``
        start from it or measure their drift against it).
        """

    def finish(self, h0: np.ndarray) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Called once the sweep reached ``t0``; ``h0`` is the initial state."""


@dataclass(frozen=True)
class Crossing:
    """One segment of a recorded sweep: the state after the jump at ``start`` and at ``end``."""

    start: float
    end: float
    jumped: AdjointState
    crossed: AdjointState


def sweep(
    problem: Problem,
    observations: Observations,
    engine: Segments,
    *,
    jumps: np.ndarray | None = None,
    motion: np.ndarray | None = None,
    initial: AdjointState | None = None,
    record: list[Crossing] | None = None,
) -> AdjointState:
    """The backward sweep (see the module docstring); returns ``[a, a_theta, a_t](t0)``.

    Parameters
    ----------
    problem : Problem
    observations : Observations
    engine : Segments
    jumps, motion : ndarray, optional
        What is added to ``a`` and subtracted from ``a_t`` at each observation time;
        by default ``dL/dh(t_i)`` and ``dL/dh(t_i) . f``.  (Stating them is how a
        derivation runs a claimed terminal value, and a mutant a wrong one.)
    initial : AdjointState, optional
        The state before the jump at the last observation time; zero by default.
    record : list, optional
        Receives one :class:`Crossing` per segment, last segment first.
    """
    jumps = observations.loss.d_states if jumps is None else jumps
    motion = observations.motion if motion is None else motion
    times = observations.times
    starts = [problem.t0, *times[:-1]]
    state = AdjointState.zero(problem.system.n, problem.system.n_params) if initial is None else initial
    for i in range(len(times) - 1, -1, -1):
        jumped = state.jumped(jumps[i], motion[i])
        state = engine.cross(float(times[i]), float(starts[i]), jumped, observations.states[i])
        if record is not None:
            record.append(Crossing(float(times[i]), float(starts[i]), jumped, state))
    engine.finish(problem.h0)
    return state


def gradient_fields(problem: Problem, observations: Observations, final: AdjointState) -> dict:
    """The fields of :class:`~adjoint_sym.numeric.result.Gradient` from the sweep's end state."""
    d_theta = final.a_theta + observations.loss.d_theta
    dtimes = observations.dtimes
    return {
        "loss": float(np.real(observations.loss.value)) + observations.integral,
        "dh0": final.a,
        "dparams": unflatten_params(problem.system, d_theta),
        "dt0": float(final.a_t),
        "dt1": float(dtimes[-1]) if problem.is_final_loss else None,
        "dtimes": None if problem.is_final_loss else dtimes,
    }


__all__ = ["AdjointState", "Crossing", "Observations", "Segments", "gradient_fields", "sweep"]
