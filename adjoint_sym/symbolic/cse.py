"""Common-subexpression elimination for mixed scalar and matrix expressions.

``sympy.cse`` handles scalar expressions well but cannot rebuild matrix trees that
contain elementwise functions.  Matrix subtrees are therefore shared by hash-consing
(a subtree seen twice becomes a temporary ``MatrixSymbol``), and the scalar entries of
explicit matrices go through ``sympy.cse``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .matrix_calculus import elementwise

Replacement = tuple[sp.Basic, sp.Basic]


def cse(exprs: Sequence[sp.Basic], prefix: str = "x") -> tuple[list[Replacement], list[sp.Basic]]:
    """Shared subexpressions of ``exprs``, as ``(replacements, reduced)`` like ``sympy.cse``.

    ``exprs`` may mix scalar expressions, explicit matrices and matrix expressions.
    Replacements come in dependency order: each may use the ones before it.

    Examples
    --------
    >>> import sympy as sp
    >>> W, h = sp.MatrixSymbol("W", 3, 2), sp.MatrixSymbol("h", 2, 1)
    >>> z = (W * h).applyfunc(sp.tanh)
    >>> reps, reduced = cse([z, sp.HadamardProduct(z, z)])
    >>> len(reps)
    1
    """
    matrix_reps, exprs = _matrix_cse(list(exprs), prefix)
    scalars, slots = _scalar_entries(exprs)
    if not scalars:
        return matrix_reps, exprs
    symbols = sp.numbered_symbols(prefix + "s")
    scalar_reps, reduced_scalars = sp.cse(scalars, symbols=symbols, order="none")
    return matrix_reps + scalar_reps, _refill(exprs, slots, reduced_scalars)


def _is_leaf(e: sp.Basic) -> bool:
    return isinstance(e, sp.MatrixSymbol | sp.MatrixBase) or (
        isinstance(e, sp.Transpose) and isinstance(e.arg, sp.MatrixSymbol)
    )


def _matrix_cse(exprs: list[sp.Basic], prefix: str) -> tuple[list[Replacement], list[sp.Basic]]:
    counts: Counter = Counter()

    def visit(e: sp.Basic) -> None:
        if not isinstance(e, sp.MatrixExpr) or _is_leaf(e):
            return
        counts[e] += 1
        if counts[e] == 1:
            for arg in e.args:
                visit(arg)

    for e in exprs:
        visit(e)
    replacements: list[Replacement] = []
    memo: dict[sp.Basic, sp.Basic] = {}

    def rebuild(e: sp.Basic) -> sp.Basic:
        if not isinstance(e, sp.MatrixExpr) or _is_leaf(e):
            return e
        if e in memo:
            return memo[e]
        args = [rebuild(a) for a in e.args]
        new = _rebuilt(e, args) if any(x is not y for x, y in zip(args, e.args)) else e
        if counts[e] > 1:
            temp = sp.MatrixSymbol(f"{prefix}m{len(replacements)}", *e.shape)
            replacements.append((temp, new))
            new = temp
        memo[e] = new
        return new

    return replacements, [rebuild(e) for e in exprs]


def _rebuilt(e: sp.Basic, args: list[sp.Basic]) -> sp.Basic:
    if isinstance(e, ElementwiseApplyFunction):
        return elementwise(*args)
    return e.func(*args)


def _scalar_entries(exprs: list[sp.Basic]) -> tuple[list[sp.Basic], list[tuple[int, int]]]:
    scalars, slots = [], []
    for i, e in enumerate(exprs):
        if isinstance(e, sp.MatrixBase):
            for k, entry in enumerate(e):
                scalars.append(entry)
                slots.append((i, k))
        elif not isinstance(e, sp.MatrixExpr):
            scalars.append(sp.sympify(e))
            slots.append((i, -1))
    return scalars, slots


def _refill(exprs: list[sp.Basic], slots: list[tuple[int, int]], values: list[sp.Basic]) -> list[sp.Basic]:
    out = list(exprs)
    entries: dict[int, list[sp.Basic]] = {}
    for (i, k), v in zip(slots, values):
        if k < 0:
            out[i] = v
            continue
        if i not in entries:  # once per matrix: setdefault's default would copy it for every entry
            entries[i] = list(exprs[i])
        entries[i][k] = v
    for i, flat in entries.items():
        out[i] = sp.ImmutableMatrix(*exprs[i].shape, flat)
    return out
