"""Budgets that bound every run: steps per solve, wall-clock time, and the size of a problem.

Defaults are far above what a hand-written or generated problem of sensible size needs, and
low enough that a mistake (a span of ``1e300``, 2,000 states, a 700 x 700 matrix parameter)
is refused in seconds instead of running for an hour.  The symbolic limits are checked
before any expensive work (parsing, differentiation, compilation); the step and time
budgets are checked while a solve runs.  Hitting a symbolic limit raises
:class:`~adjoint_sym.errors.InvalidModelError` (exit 2 on the command line), a step or time
budget :class:`~adjoint_sym.errors.SolverFailedError` (exit 3), each message naming the limit
and how to raise it.

Raise a limit for a block of code with :func:`limits`; in a spec file with a ``[limits]``
table; on the command line with ``--max-steps``, ``--time-limit`` or ``--limit NAME=VALUE``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import InvalidModelError


@dataclass(frozen=True)
class Limits:
    """The budgets in force; see the module documentation.

    Parameters
    ----------
    max_steps : int
        Accepted steps per solve (forward, backward, each reference solve).
    time_limit : float or None
        Wall-clock seconds for everything run inside :func:`limits`; ``None``: no limit.
    max_states : int
        State variables of a system (the width of a matrix state).
    max_params : int
        Scalar parameters of a system differentiated entry by entry: every scalar
        parameter plus every entry of a matrix parameter in a scalar system, or every
        declared parameter of a matrix-level system.
    max_matrix_entries : int
        Entries of all matrix parameters together.
    max_observations : int
        Observation times of a loss.
    max_loss_expressions : int
        Distinct per-time loss expressions (each one is compiled on its own).
    max_expression_size : int
        Nodes of the expression trees of a system's right-hand side and its loss, together.
    max_derivative_work : int
        Nodes of the right-hand side times the variables it is differentiated by (states,
        scalar parameters or matrix parameters, time): what SymPy's differentiation costs,
        about 0.1 ms per unit.

    Examples
    --------
    >>> Limits().max_steps
    200000
    >>> Limits(max_steps=10).max_steps
    10
    """

    max_steps: int = 200_000
    time_limit: float | None = None
    max_states: int = 500
    max_params: int = 500
    max_matrix_entries: int = 1_000_000
    max_observations: int = 10_000
    max_loss_expressions: int = 1_000
    max_expression_size: int = 20_000
    max_derivative_work: int = 300_000
    #: Absolute ``time.perf_counter()`` at which ``time_limit`` runs out (set by :func:`limits`).
    deadline: float | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name == "deadline":
                continue
            value = getattr(self, f.name)
            if f.name == "time_limit":
                if value is None:
                    continue
                ok = (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                    and value > 0
                )
                kind = "a positive number of seconds or None"
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
                kind = "a positive integer"
            if not ok:
                raise InvalidModelError(f"limit {f.name} must be {kind}, got {value!r}")

    def seconds_left(self) -> float | None:
        """Wall-clock seconds until the time limit, or None without one."""
        return None if self.deadline is None else self.deadline - time.perf_counter()


#: The names of the limits a user sets, in the order of :class:`Limits`.
LIMIT_NAMES = tuple(f.name for f in dataclasses.fields(Limits) if f.name != "deadline")

#: Command-line flags of the two budgets a user raises most often.
_FLAGS = {"max_steps": "--max-steps", "time_limit": "--time-limit"}

_DEFAULTS = Limits()
_current: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("adjoint_sym_limits", default=None)


def current_limits() -> Limits:
    """The limits in force here (the defaults outside any :func:`limits` block)."""
    return _current.get() or _DEFAULTS


@contextlib.contextmanager
def limits(**values) -> Iterator[Limits]:
    """Set budgets for the code in the ``with`` block; unnamed ones keep their current value.

    Parameters
    ----------
    **values
        Any field of :class:`Limits` except ``deadline``: ``max_steps``, ``time_limit``
        (seconds, counted from entering the block), ``max_states``, ``max_params``,
        ``max_matrix_entries``, ``max_observations``, ``max_loss_expressions``,
        ``max_expression_size``, ``max_derivative_work``.

    Examples
    --------
    >>> with limits(max_steps=1_000_000, time_limit=60) as active:
    ...     active.max_steps
    1000000
    >>> current_limits().max_steps
    200000
    """
    unknown = sorted(set(values) - set(LIMIT_NAMES))
    if unknown:
        close = difflib.get_close_matches(unknown[0], LIMIT_NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidModelError(f"unknown limit {unknown[0]!r}{hint} (the limits are {', '.join(LIMIT_NAMES)})")
    outer = current_limits()
    new = dataclasses.replace(outer, **values)
    if "time_limit" in values:
        own = None if new.time_limit is None else time.perf_counter() + new.time_limit
        # A nested block may shorten the time left, never extend an outer deadline.
        deadline = own if outer.deadline is None else outer.deadline if own is None else min(own, outer.deadline)
        new = dataclasses.replace(new, deadline=deadline)
    token = _current.set(new)
    try:
        yield new
    finally:
        _current.reset(token)


def how_to_raise(name: str) -> str:
    """The sentence that says how to raise the limit ``name``, in every interface.

    Examples
    --------
    >>> print(how_to_raise("max_states"))  # doctest: +NORMALIZE_WHITESPACE
    raise it with adjoint_sym.limits(max_states=...) in Python, max_states = ... under [limits]
    in a spec, or --limit max_states=... on the command line
    """
    flag = _FLAGS.get(name)
    cli = f"{flag} ..." if flag else f"--limit {name}=..."
    return (
        f"raise it with adjoint_sym.limits({name}=...) in Python, {name} = ... under [limits] in a spec, "
        f"or {cli} on the command line"
    )


__all__ = ["LIMIT_NAMES", "Limits", "current_limits", "how_to_raise", "limits"]
