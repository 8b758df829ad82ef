"""A gradient problem: a system, its numbers, a time span and a loss, all validated.

Semantics of the time derivatives (the same for every method):

* ``dL/dt0`` is taken with ``h0`` held fixed: the initial value is imposed at the moved
  ``t0``, so ``dL/dt0 = -a(t0) . f(h0, t0)``; observation times stay where they are.
* ``dL/dt1`` (final losses): moving ``t1`` moves where the loss reads the state, so
  ``dL/dt1 = dL/dh(t1) . f(h(t1), t1)`` plus any explicit time dependence of ``L``.
  For observation losses ``dL/dt1`` is ``None``; ``dL/dt_i`` per observation time is
  reported as ``dtimes``.
* A running cost ``int_{t0}^{t1} g dt`` (:class:`~adjoint_sym.numeric.loss.IntegralLoss`)
  adds ``g(h(t1), theta, t1)`` to ``dL/dt1`` (to ``dL/dt_N`` with observations, whose
  last time is ``t1``) and ``-g(h0, theta, t0)`` to ``dL/dt0``.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from ..errors import InvalidModelError, SolverFailedError
from ..symbolic.names import did_you_mean, normal, shown, shown_value
from ..symbolic.system import ODESystem
from .compile import Argument, Kernel, compile_kernel, scalar_argument
from .diagnose import short
from .kernels import CompiledSystem, compiled
from .loss import CallableLoss, FinalLoss, Loss, ObservationLoss, check_observations, real_array


@dataclass(frozen=True)
class LossValue:
    """A loss and its partial derivatives at the observed states."""

    value: float
    d_states: np.ndarray  # (N, n)
    d_theta: np.ndarray  # (p,)
    d_times: np.ndarray  # (N,) explicit partial derivative in each observation time


@dataclass(frozen=True, eq=False)
class Problem:
    """What to differentiate: ``L(h(t_i))`` for ``dh/dt = f``, ``h(t0) = h0``.

    Parameters
    ----------
    system : ODESystem
    h0 : array-like, shape (n,)
    params : mapping of name to value, or a flat array of length ``system.n_params``
        Scalars for scalar parameters, arrays of the declared shape for matrices.
    t0, t1 : float
        ``t1 < t0`` integrates backward in time; ``t1 == t0`` is legal.
    loss : Loss
        :class:`FinalLoss`, :class:`ObservationLoss`, :class:`CallableLoss`,
        :class:`IntegralLoss`, or a :class:`SumLoss` of a point loss and running costs.

    Examples
    --------
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), h0=[1.0, 1.0],
    ...                params={"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                t0=0.0, t1=10.0, loss=FinalLoss("x**2 + y**2"))
    >>> prob.theta
    array([1.5, 1. , 3. , 1. ])
    """

    system: ODESystem
    h0: np.ndarray
    theta: np.ndarray
    t0: float
    t1: float
    loss: Loss
    times: np.ndarray = field(repr=False)

    def __init__(self, system: ODESystem, h0, params, t0: float, t1: float, loss: Loss) -> None:
        if not isinstance(system, ODESystem):
            raise InvalidModelError(f"system must be an ODESystem, got {type(system).__name__}")
        if not isinstance(loss, Loss):
            raise InvalidModelError(
                f"loss must be a FinalLoss, ObservationLoss, CallableLoss, IntegralLoss or SumLoss, got {loss!r}"
            )
        h0_arr = _finite_vector(h0, "h0", system.n)
        theta = flatten_params(system, params)
        t0_f, t1_f = _finite_scalar(t0, "t0"), _finite_scalar(t1, "t1")
        times = loss.observation_times(t1_f)
        check_observations(len(times))
        _check_times(times, t0_f, t1_f)
        for name, value in (("system", system), ("h0", h0_arr), ("theta", theta), ("t0", t0_f), ("t1", t1_f)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "times", times)
        self._loss_kernels  # noqa: B018 - parse and compile the loss now: bad input fails here
        self.running_cost  # noqa: B018 - and the running cost's integrand

    @property
    def params(self) -> dict[str, float | np.ndarray]:
        """The parameters by name (scalars as floats, matrices in their shape)."""
        return unflatten_params(self.system, self.theta)

    @property
    def point_loss(self) -> Loss:
        """The part of the loss read at the observation times (``FinalLoss(0)`` for an integral alone)."""
        return self.loss.point()

    @cached_property
    def running_cost(self) -> sp.Expr | None:
        """The integrand ``g(h, theta, t)`` of the loss's running cost, or ``None`` (point losses)."""
        return self.loss.running_cost(self.system)

    @property
    def is_final_loss(self) -> bool:
        point = self.point_loss
        return isinstance(point, FinalLoss) or (isinstance(point, CallableLoss) and point.times is None)

    @property
    def kernels(self) -> CompiledSystem:
        return compiled(self.system)

    def with_values(self, *, h0=None, theta=None, t0=None, t1=None) -> Problem:
        """A copy with some numbers replaced (no validation: references perturb freely,
        including into complex values). Observation times stay fixed."""
        new = copy.copy(self)
        for name, value in (("h0", h0), ("theta", theta), ("t0", t0), ("t1", t1)):
            if value is not None:
                object.__setattr__(new, name, value)
        if t1 is not None and self.is_final_loss:
            object.__setattr__(new, "times", np.array([t1]))
        return new

    # -- the loss, numerically --------------------------------------------------------
    @cached_property
    def _loss_kernels(self) -> list[Kernel] | None:
        point = self.point_loss
        if isinstance(point, CallableLoss):
            return None
        targets = _squared_errors(point)
        if targets is not None:
            if targets.shape[1] != self.system.n:
                raise InvalidModelError(
                    f"loss.targets rows have {targets.shape[1]} entries but the state has {self.system.n}"
                )
            return None
        exprs = point.expressions(self.system, len(self.times))
        return [_loss_kernel(self.system, e) for e in exprs]

    def evaluate_loss(self, states: np.ndarray, theta=None, times=None) -> LossValue:
        """The point loss at ``states`` (shape (N, n), one row per observation time).

        A running cost is not in it: its integral needs the whole trajectory.
        """
        theta = self.theta if theta is None else theta
        times = self.times if times is None else times
        states = np.asarray(states)
        point = self.point_loss
        if isinstance(point, CallableLoss):
            return _callable_loss(point, states, theta, self.system)
        n, p = self.system.n, self.system.n_params
        dtype = np.result_type(states, theta, times)
        targets = _squared_errors(point)
        if targets is not None:  # sum of squared errors: no symbolic detour, one kernel-free formula
            residual = states - targets
            zeros = np.zeros(p, dtype=dtype), np.zeros(len(times), dtype=dtype)
            return LossValue(np.sum(residual * residual), 2 * residual, *zeros)
        value = 0.0
        d_states = np.zeros(states.shape, dtype=dtype)
        d_theta = np.zeros(p, dtype=dtype)
        d_times = np.zeros(len(times), dtype=dtype)
        for i, kernel in enumerate(self._loss_kernels):
            try:
                with np.errstate(all="ignore"):
                    out = kernel(times[i], states[i], theta)
            except (ZeroDivisionError, OverflowError) as exc:
                raise _loss_not_finite(times[i], states[i], f"{type(exc).__name__}: {exc}") from None
            if not np.all(np.isfinite(out)):
                raise _loss_not_finite(times[i], states[i], f"L = {out[0]}, dL/dh = {out[1 : 1 + n]}")
            value = value + out[0]
            d_states[i] = out[1 : 1 + n]
            d_theta += out[1 + n : 1 + n + p]
            d_times[i] = out[1 + n + p]
        return LossValue(value, d_states, d_theta, d_times)

    # -- the loss value alone: what the references differentiate themselves ----------------
    @cached_property
    def _value_kernels(self) -> list[Kernel] | None:
        point = self.point_loss
        if isinstance(point, CallableLoss) or _squared_errors(point) is not None:
            return None
        exprs = point.expressions(self.system, len(self.times))
        return [_value_kernel(self.system, e) for e in exprs]

    @cached_property
    def _running_value_kernel(self) -> Kernel | None:
        g = self.running_cost
        return None if g is None else _value_kernel(self.system, g)

    def running_value(self, t, h: np.ndarray, theta=None):
        """The running cost ``g(h, theta, t)`` (any dtype; zero without one), value only.

        As :meth:`loss_term`, compiled from the expression alone: the references integrate
        and differentiate it themselves.

        Examples
        --------
        >>> from adjoint_sym import ODESystem, IntegralLoss
        >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
        >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, IntegralLoss("k*x**2 + t"))
        >>> float(prob.running_value(2.0, np.array([3.0])))
        6.5
        """
        theta = self.theta if theta is None else theta
        kernel = self._running_value_kernel
        return 0.0 if kernel is None else kernel(t, h, theta)[0]

    def loss_term(self, i: int, t, h: np.ndarray, theta=None):
        """The ``i``-th observation's term of an expression or squared-error loss (any dtype).

        Compiled from the loss expression alone, with no derivative: the references
        differentiate it themselves (complex step, differences), so they share nothing
        with the partial derivatives :meth:`evaluate_loss` hands the adjoint.

        Examples
        --------
        >>> from adjoint_sym import ODESystem, FinalLoss
        >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
        >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("k*x**2"))
        >>> float(prob.loss_term(0, 1.0, np.array([3.0])))
        4.5
        """
        if isinstance(self.point_loss, CallableLoss):
            raise InvalidModelError("a CallableLoss has no terms to evaluate one by one; call loss_value")
        theta = self.theta if theta is None else theta
        targets = _squared_errors(self.point_loss)
        if targets is not None:
            residual = h - targets[i]
            return np.sum(residual * residual)
        return self._value_kernels[i](t, h, theta)[0]

    def loss_value(self, states: np.ndarray, theta=None, times=None):
        """The point loss at ``states`` (shape (N, n)), from the value-only kernels (any dtype)."""
        theta = self.theta if theta is None else theta
        times = self.times if times is None else times
        states = np.asarray(states)
        if isinstance(self.point_loss, CallableLoss):
            return _call_user(self.point_loss.value, states, theta)
        return sum(self.loss_term(i, times[i], states[i], theta) for i in range(len(times)))


def _loss_not_finite(t: float, state: np.ndarray, detail: str) -> SolverFailedError:
    return SolverFailedError(
        f"the loss or its derivative is not finite at t = {complex(t).real:.6g} (state {short(np.real(state))}): "
        f"{detail}; the loss expression leaves its domain at the state the solve reached (log or sqrt of a "
        "negative value, a division by zero): change the loss, or the time span",
        t=float(np.real(t)),
        state=np.real(state).copy(),
    )


def _squared_errors(loss: Loss) -> np.ndarray | None:
    """The targets of a sum-of-squared-errors observation loss, else None."""
    return loss.targets if isinstance(loss, ObservationLoss) and loss.targets is not None else None


@lru_cache(maxsize=256)  # like the system's kernels: a property run builds many Problems
def _loss_kernel(system: ODESystem, expr: sp.Expr) -> Kernel:
    # Differentiate with respect to plain symbols standing in for h[i, 0]: SymPy's
    # derivative by a matrix element rescans every element (quadratic in the width).
    plain = [sp.Dummy(f"h{i}", real=True) for i in range(system.n)]
    to_plain = dict(zip(system.flat_state, plain))
    back = dict(zip(plain, system.flat_state))
    flat = expr.xreplace(to_plain)
    grad_h = sp.ImmutableMatrix([flat.diff(s).xreplace(back) for s in plain])
    blocks: list[sp.Basic] = []
    for p in system.params:
        if not expr.has(p):
            blocks.append(sp.ZeroMatrix(*p.shape) if isinstance(p, sp.MatrixSymbol) else sp.Integer(0))
        elif isinstance(p, sp.MatrixSymbol):
            rows, cols = p.shape
            blocks.append(sp.ImmutableMatrix(rows, cols, lambda i, j, p=p: expr.diff(p[i, j])))
        else:
            blocks.append(expr.diff(p))
    args = [scalar_argument(system.t), Argument("h", tuple(system.state)), Argument("theta", tuple(system.params))]
    return compile_kernel("loss", args, [expr, grad_h, *blocks, expr.diff(system.t)])


@lru_cache(maxsize=256)
def _value_kernel(system: ODESystem, expr: sp.Expr) -> Kernel:
    args = [scalar_argument(system.t), Argument("h", tuple(system.state)), Argument("theta", tuple(system.params))]
    return compile_kernel("loss_value", args, [expr])


def _call_user(fn, states, theta):
    try:
        return fn(states, theta)
    except Exception as exc:  # a user function: report it as theirs, with its message
        raise InvalidModelError(f"the loss callable raised {type(exc).__name__}: {exc}") from exc


def _callable_loss(loss: CallableLoss, states, theta, system: ODESystem) -> LossValue:
    value = _call_user(loss.value, states, theta)
    d_states, d_theta = callable_loss_gradient(loss, states, theta, system)
    return LossValue(value, d_states, d_theta, np.zeros(len(states)))


def callable_loss_gradient(loss: CallableLoss, states, theta, system: ODESystem) -> tuple[np.ndarray, np.ndarray]:
    """``(d_states, d_theta)`` from the user's own gradient, shapes checked."""
    d_states, d_theta = _call_user(loss.gradient, states, theta)
    d_states = np.asarray(d_states)
    d_theta = np.asarray(d_theta)
    if d_states.shape != states.shape or d_theta.shape != (system.n_params,):
        raise InvalidModelError(
            f"the loss gradient must return shapes {states.shape} and ({system.n_params},), "
            f"got {d_states.shape} and {d_theta.shape}"
        )
    return d_states, d_theta


def _finite_scalar(value, name: str) -> float:
    """A real number as the spec loader takes one: text such as '0' and booleans are refused."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidModelError(f"{name} must be a number, got {type(value).__name__} {shown_value(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise InvalidModelError(f"{name} is beyond the float range (about 1.8e308)") from None
    if not np.isfinite(out):
        raise InvalidModelError(f"{name} must be finite, got {out}")
    return out


def _finite_vector(value, name: str, n: int) -> np.ndarray:
    if isinstance(value, str | bytes):
        raise InvalidModelError(f"{name} must be a list of {n} numbers, got {shown_value(value)}")
    arr = real_array(value, name)
    if arr.shape != (n,):
        raise InvalidModelError(f"{name} must have shape ({n},), got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InvalidModelError(f"{name}[{bad[0]}] is not finite ({arr[bad[0]]})")
    return arr


def _check_times(times: np.ndarray, t0: float, t1: float) -> None:
    if times[-1] != t1:
        raise InvalidModelError(f"loss.times: the last observation time {times[-1]} must equal t1 = {t1}")
    direction = 1.0 if t1 >= t0 else -1.0
    steps = np.diff(np.concatenate([[t0], times])) * direction
    if np.any(steps < 0) or np.any(np.diff(times) * direction <= 0):
        raise InvalidModelError(
            f"loss.times: observation times {times.tolist()} must be strictly monotone from t0 = {t0} towards t1 = {t1}"
        )


def flatten_params(system: ODESystem, params) -> np.ndarray:
    """Parameter values, by name or flat, as the flat vector ``theta`` (validated)."""
    p = system.n_params
    if isinstance(params, Mapping):
        if not all(isinstance(k, str) for k in params):
            raise InvalidModelError(f"params: names must be strings, got {shown_value(list(params))}")
        params = {normal(k): v for k, v in params.items()}  # as the names were declared (NFKC)
        unknown = sorted(set(params) - set(system.param_names))
        if unknown:
            raise InvalidModelError(
                f"unknown parameter {shown(unknown[0])}{did_you_mean(unknown[0], system.param_names)}; "
                f"the system's parameters are {list(system.param_names)}"
            )
        missing = [n for n in system.param_names if n not in params]
        if missing:
            raise InvalidModelError(f"missing value for parameter {missing[0]!r}")
        parts = []
        for name, shape in system.param_shapes.items():
            parts.append(_finite_block(params[name], name, shape))
        return np.concatenate(parts) if parts else np.zeros(0)
    if isinstance(params, str) or not isinstance(params, Sequence | np.ndarray):
        raise InvalidModelError(f"params must be a mapping of name to value or a flat array, got {params!r}")
    return _finite_vector(params, "params", p)


def _finite_block(value, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(value, str | bytes):
        raise InvalidModelError(f"params[{name!r}] must be numeric, got {shown_value(value)}")
    arr = real_array(value, f"params[{name!r}]")
    if arr.shape != shape and not (shape and arr.size == int(np.prod(shape)) and arr.ndim == 1):
        raise InvalidModelError(f"params[{name!r}] must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidModelError(f"params[{name!r}] contains a non-finite value")
    return arr.reshape(-1)


def unflatten_params(system: ODESystem, theta: np.ndarray) -> dict[str, float | np.ndarray]:
    """The flat vector ``theta`` back into named values."""
    out: dict[str, float | np.ndarray] = {}
    k = 0
    for name, shape in system.param_shapes.items():
        size = int(np.prod(shape)) if shape else 1
        block = theta[k : k + size]
        out[name] = block.reshape(shape).copy() if shape else block[0].item()
        k += size
    return out
