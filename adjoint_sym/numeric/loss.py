"""Losses: what is observed of the trajectory, and when.

=======================  ==========================================================
loss                     ``L``
=======================  ==========================================================
:class:`FinalLoss`       ``expr(h(t1), theta, t1)``: an expression in the state, the
                         parameters and the time
:class:`ObservationLoss` ``sum_i ||h(t_i) - y_i||^2`` for targets ``y_i``, or
                         ``sum_i expr(h(t_i), theta, t_i)`` in the expression form
:class:`CallableLoss`    a Python function of the observed states and its gradient
:class:`IntegralLoss`    ``int_{t0}^{t1} g(h(t), theta, t) dt``: a running cost
:class:`SumLoss`         a point loss plus running costs: ``FinalLoss("x**2") +
                         IntegralLoss("u**2")`` is ``x(t1)^2 + int u^2 dt``
=======================  ==========================================================

Observation times run from ``t0`` towards ``t1`` and the last one is ``t1``.  Expression
losses are parsed through the whitelist (:mod:`adjoint_sym.symbolic.parse`) against the system's
names; an expression may use parameters (their explicit derivative is added to
``dL/dtheta``) and the time symbol (added to ``dL/dt_i``).

A loss has a *point part*, read at the observation times (:meth:`Loss.point`), and a
*running cost* ``g`` integrated over ``[t0, t1]`` (:meth:`Loss.running_cost`, ``None``
for the point losses).  ``+`` sums losses into a :class:`SumLoss`: at most one point loss
(a :class:`FinalLoss` or an :class:`ObservationLoss`; write two final terms as one
expression) and any number of :class:`IntegralLoss` terms, whose integrands add up.
A running cost moves ``dL/dt1`` by ``g(h(t1), theta, t1)`` (the integral grows with its
end) and ``dL/dt0`` by ``-g(h0, theta, t0)``; with observations, ``t1`` is the last
observation time, so ``dL/dt_N`` carries the term.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .._limits import current_limits, how_to_raise
from ..errors import InvalidModelError
from ..symbolic.names import shown, shown_value
from ..symbolic.parse import parse_expression
from ..symbolic.system import ODESystem
from ..symbolic.validate import canonical


def real_array(value: object, where: str) -> np.ndarray:
    """A float array of real numbers only: text ('1.0'), booleans and complex values are refused,
    not converted, and so is an integer beyond the float range.

    Examples
    --------
    >>> real_array([1, 2.5], "h0")
    array([1. , 2.5])
    """
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):  # ragged nesting
        raw = None
    reals = raw is not None and raw.dtype.kind == "O"
    if reals and all(isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_) for x in raw.flat):
        try:
            return raw.astype(float)
        except OverflowError:
            raise InvalidModelError(f"{where}: a number is beyond the float range (about 1.8e308)") from None
    if raw is None or (raw.dtype.kind not in "iuf" and raw.size):
        raise InvalidModelError(f"{where} must hold real numbers only, got {shown_value(value)}")
    return raw.astype(float)


class Loss(ABC):
    """A loss observed at one or more times; see the module documentation."""

    @abstractmethod
    def observation_times(self, t1: float) -> np.ndarray:
        """The times at which the loss reads the state, the last being ``t1``."""

    def point(self) -> Loss:
        """The part read at the observation times (a loss of its own kind for point losses)."""
        return self

    def running_cost(self, system: ODESystem) -> sp.Expr | None:
        """The integrand ``g(h, theta, t)`` of the loss's running cost, or ``None``."""
        return None

    def __add__(self, other: object) -> SumLoss:
        if not isinstance(other, Loss):
            return NotImplemented
        return SumLoss(self, other)


def _expression(expr: str | sp.Expr, system: ODESystem, where: str) -> sp.Expr:
    # The loss shares the expression budget with the right-hand side it reads.
    budget = max(1, current_limits().max_expression_size - getattr(system, "expression_size", 0))
    if isinstance(expr, str):
        return parse_expression(expr, system.symbol_table(), where=where, budget=budget)
    try:
        value = sp.sympify(expr, strict=True)
    except sp.SympifyError:
        raise InvalidModelError(f"{where}: {shown_value(expr)} is neither text nor a SymPy expression") from None
    if isinstance(value, sp.MatrixBase | sp.MatrixExpr) and not isinstance(value, MatrixElement):
        raise InvalidModelError(f"{where}: the loss is a matrix; it must be a scalar expression")
    allowed = set(system.symbol_table().values())
    for s in value.free_symbols:
        base = s.args[0] if isinstance(s, MatrixElement) else s
        if base not in allowed:
            raise InvalidModelError(f"{where}: unknown symbol {shown(str(base))}")
    return canonical(value, where, budget=budget)[0]


@dataclass(frozen=True)
class FinalLoss(Loss):
    """``L = expr(h(t1), theta, t1)``.

    Examples
    --------
    >>> FinalLoss("x**2 + y**2")
    FinalLoss(expr='x**2 + y**2')
    """

    expr: str | sp.Expr

    def observation_times(self, t1: float) -> np.ndarray:
        return np.array([float(t1)])

    def expressions(self, system: ODESystem, n_times: int) -> list[sp.Expr]:
        return [_expression(self.expr, system, "loss.expr")]


@dataclass(frozen=True)
class ObservationLoss(Loss):
    """A loss summed over observation times.

    Parameters
    ----------
    times : sequence of float
        Increasing away from ``t0``; the last equals ``t1``.
    targets : array-like, shape (len(times), n), optional
        For the sum of squared errors ``sum_i ||h(t_i) - y_i||^2``.
    expr : str or sympy expression, or a sequence of them, optional
        The expression form: one expression read at every time, or one per time.
    """

    times: tuple
    targets: np.ndarray | None = field(default=None, compare=False)
    expr: object = None

    def __init__(self, times: Sequence[float], targets=None, expr=None) -> None:
        if isinstance(times, Sequence | np.ndarray) and not isinstance(times, str):
            check_observations(len(times))
        times_arr = real_array(times, "loss.times")
        if times_arr.ndim != 1 or times_arr.size == 0:
            raise InvalidModelError(f"loss.times must be a non-empty list of numbers, got {times!r}")
        if not np.all(np.isfinite(times_arr)):
            raise InvalidModelError(f"loss.times contains a non-finite value: {times_arr.tolist()}")
        if (targets is None) == (expr is None):
            raise InvalidModelError("ObservationLoss needs exactly one of targets= or expr=")
        if targets is not None:
            targets = real_array(targets, "loss.targets")
            if targets.ndim != 2 or targets.shape[0] != times_arr.size:
                raise InvalidModelError(
                    f"loss.targets must have one row per time ({times_arr.size} rows), got shape {targets.shape}"
                )
            if not np.all(np.isfinite(targets)):
                raise InvalidModelError("loss.targets contains a non-finite value")
        object.__setattr__(self, "times", tuple(times_arr.tolist()))
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "expr", expr)

    def observation_times(self, t1: float) -> np.ndarray:
        return np.asarray(self.times, dtype=float)

    def expressions(self, system: ODESystem, n_times: int) -> list[sp.Expr]:
        if self.targets is not None:
            if self.targets.shape[1] != system.n:
                raise InvalidModelError(
                    f"loss.targets rows have {self.targets.shape[1]} entries but the state has {system.n}"
                )
            h = system.flat_state
            return [
                sp.Add(*[(hj - sp.Float(repr(float(y)), 17)) ** 2 for hj, y in zip(h, row)]) for row in self.targets
            ]
        exprs = self.expr
        if isinstance(exprs, str | sp.Basic):
            one = _expression(exprs, system, "loss.expr")
            return [one] * n_times
        exprs = list(exprs)
        if len(exprs) != n_times:
            raise InvalidModelError(f"loss.expr has {len(exprs)} expressions for {n_times} observation times")
        _check_distinct(exprs)
        return [_expression(e, system, f"loss.expr[{i}]") for i, e in enumerate(exprs)]


def _check_distinct(exprs: list) -> None:
    """Each distinct per-time expression is compiled on its own: bound their number first."""
    limit = current_limits().max_loss_expressions
    try:
        distinct = len(set(exprs))
    except TypeError:  # unhashable entries are refused one by one by _expression
        distinct = len(exprs)
    if distinct > limit:
        raise InvalidModelError(
            f"loss.expr: {distinct} different expressions, more than the max_loss_expressions limit of {limit} "
            f"(each is compiled on its own; one expression in the time t, or targets, cost one); "
            + how_to_raise("max_loss_expressions")
        )


def check_observations(count: int, where: str = "loss.times") -> None:
    """Refuse more observation times than the ``max_observations`` limit."""
    limit = current_limits().max_observations
    if count > limit:
        raise InvalidModelError(
            f"{where}: {count} observation times, more than the max_observations limit of {limit}; "
            + how_to_raise("max_observations")
        )


@dataclass(frozen=True)
class CallableLoss(Loss):
    """A loss given as Python functions of the observed states.

    Parameters
    ----------
    value : callable ``(states, theta) -> float``
        ``states`` has shape (len(times), n), ``theta`` is the flat parameter vector.
    gradient : callable ``(states, theta) -> (d_states, d_theta)``
        The partial derivatives, shapes (len(times), n) and (n_params,).
    times : sequence of float, optional
        Observation times; by default only ``t1``.
    """

    value: Callable = field(repr=False)
    gradient: Callable = field(repr=False)
    times: tuple | None = None

    def observation_times(self, t1: float) -> np.ndarray:
        return np.array([float(t1)]) if self.times is None else np.asarray(self.times, dtype=float)


@dataclass(frozen=True)
class IntegralLoss(Loss):
    """A running cost: ``L = int_{t0}^{t1} expr(h(t), theta, t) dt``.

    Add it to a point loss for ``L = Phi(h(t1)) + int g dt`` (see :class:`SumLoss`).  Alone,
    its point part is zero at ``t1``.

    Examples
    --------
    >>> IntegralLoss("x**2")
    IntegralLoss(expr='x**2')
    >>> FinalLoss("x") + IntegralLoss("x**2")
    SumLoss(FinalLoss(expr='x'), IntegralLoss(expr='x**2'))
    """

    expr: str | sp.Expr

    def observation_times(self, t1: float) -> np.ndarray:
        return np.array([float(t1)])

    def point(self) -> Loss:
        return FinalLoss(sp.Integer(0))

    def expressions(self, system: ODESystem, n_times: int) -> list[sp.Expr]:
        """The point part's summands: zero (an integral reads no single time)."""
        return [sp.Integer(0)] * n_times

    def running_cost(self, system: ODESystem) -> sp.Expr:
        return _expression(self.expr, system, "IntegralLoss.expr")  # refuses matrices, as every loss


@dataclass(frozen=True, init=False)
class SumLoss(Loss):
    """A point loss plus running costs: ``L = Phi(h(t_i)) + int_{t0}^{t1} (g_1 + g_2 + ...) dt``.

    Parameters
    ----------
    *terms : Loss
        At most one :class:`FinalLoss` or :class:`ObservationLoss` (the point part; none
        means zero at ``t1``) and any number of :class:`IntegralLoss`.  Sums nest and
        flatten: ``a + b + c`` holds the three terms.

    Examples
    --------
    >>> loss = SumLoss(FinalLoss("x**2"), IntegralLoss("x**2"), IntegralLoss("k*x"))
    >>> loss.integrals
    (IntegralLoss(expr='x**2'), IntegralLoss(expr='k*x'))
    """

    terms: tuple

    def __init__(self, *terms: Loss) -> None:
        flat: list[Loss] = []
        for term in terms:
            flat.extend(term.terms if isinstance(term, SumLoss) else [term])
        for term in flat:
            if not isinstance(term, Loss):
                raise InvalidModelError(f"a SumLoss adds losses, got {term!r}")
            if isinstance(term, CallableLoss):
                raise InvalidModelError(
                    "a CallableLoss cannot be summed with other losses (its gradient is Python code the sum cannot "
                    "extend); state the point loss as a FinalLoss or ObservationLoss expression"
                )
        points = [t for t in flat if not isinstance(t, IntegralLoss)]
        if len(points) > 1:
            raise InvalidModelError(
                f"a SumLoss holds at most one point loss, got {len(points)} ({', '.join(map(repr, points))}); "
                "write the final terms as one expression, e.g. FinalLoss('x**2 + y')"
            )
        if not any(isinstance(t, IntegralLoss) for t in flat) and len(flat) < 2:
            raise InvalidModelError("a SumLoss needs at least two terms; use the loss itself")
        object.__setattr__(self, "terms", tuple(flat))

    def __repr__(self) -> str:
        return f"SumLoss({', '.join(map(repr, self.terms))})"

    @property
    def integrals(self) -> tuple:
        """The :class:`IntegralLoss` terms."""
        return tuple(t for t in self.terms if isinstance(t, IntegralLoss))

    def point(self) -> Loss:
        points = [t for t in self.terms if not isinstance(t, IntegralLoss)]
        return points[0] if points else FinalLoss(sp.Integer(0))

    def observation_times(self, t1: float) -> np.ndarray:
        return self.point().observation_times(t1)

    def expressions(self, system: ODESystem, n_times: int) -> list[sp.Expr]:
        """The point part's summands (see :meth:`FinalLoss.expressions`, :meth:`ObservationLoss.expressions`)."""
        return self.point().expressions(system, n_times)

    def running_cost(self, system: ODESystem) -> sp.Expr | None:
        costs = [t.running_cost(system) for t in self.integrals]
        return sp.Add(*costs) if costs else None
