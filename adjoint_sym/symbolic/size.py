"""Problem-level size limits, checked before anything is parsed, differentiated or compiled.

SymPy's work grows with the problem: entry-wise Jacobians with states times parameters,
differentiation with expression nodes times variables.  These checks turn a problem that
would run for minutes into an immediate :class:`~adjoint_sym.errors.InvalidModelError`
naming the limit of :func:`adjoint_sym.limits` and how to raise it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._limits import current_limits, how_to_raise
from ..errors import InvalidModelError


def check_size(n_states: int, shapes: Sequence[tuple[int, int] | None], matrix_level: bool) -> None:
    """Refuse a system beyond the limits on states, parameters and matrix entries.

    ``shapes`` holds ``None`` for each scalar parameter and ``(rows, cols)`` for a matrix.
    A scalar system is differentiated entry by entry, so there every matrix entry counts
    as a parameter; a matrix-level one is differentiated per matrix.
    """
    limits = current_limits()
    if n_states > limits.max_states:
        raise InvalidModelError(
            f"state: {n_states} state variables, more than the max_states limit of {limits.max_states}; "
            + how_to_raise("max_states")
        )
    entries = sum(r * c for r, c in (s for s in shapes if s is not None))
    if entries > limits.max_matrix_entries:
        raise InvalidModelError(
            f"params: the matrix parameters have {entries} entries, more than the max_matrix_entries limit of "
            f"{limits.max_matrix_entries}; " + how_to_raise("max_matrix_entries")
        )
    scalars = len(shapes) if matrix_level else sum(1 if s is None else s[0] * s[1] for s in shapes)
    if scalars > limits.max_params:
        detail = "" if matrix_level or not entries else f", {entries} of them matrix entries, each differentiated alone"
        raise InvalidModelError(
            f"params: {scalars} parameters{detail}, more than the max_params limit of {limits.max_params}; "
            + how_to_raise("max_params")
        )


def check_derivative_work(size: int, n_state_symbols: int, shapes: list, matrix_level: bool) -> None:
    """Differentiation costs about (nodes x variables): refuse before SymPy spends minutes on it."""
    limit = current_limits().max_derivative_work
    params = len(shapes) if matrix_level else sum(1 if s is None else s[0] * s[1] for s in shapes)
    variables = n_state_symbols + params + 1
    if size * variables > limit:
        raise InvalidModelError(
            f"rhs: {size} expression nodes differentiated by {variables} variables (states, parameters, time) "
            f"is {size * variables} units of work, more than the max_derivative_work limit of {limit} "
            f"(about {limit / 1e4:.0f} s of SymPy); simplify the right-hand side, or "
            + how_to_raise("max_derivative_work")
        )


__all__ = ["check_derivative_work", "check_size"]
