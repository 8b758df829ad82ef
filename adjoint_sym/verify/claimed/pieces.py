"""The pieces a derivation states, read through the whitelist, and the names they may use.

A derivation of the adjoint method (Chen et al. 2018, eqs. 4-5, Algorithm 1, appendix B;
Pontryagin et al. 1962) states some of these pieces, with the convention ``a(t) = dL/dh(t)``:

==================  ====================================================  =======================
piece               what it states                                        one expression per
==================  ====================================================  =======================
``adjoint``         ``da/dt``                                             state
``terminal``        ``a(t1)`` (observation losses: the jump at ``t_N``)   state
``jumps``           the jump ``a(t_i-) - a(t_i+)`` at each observation    state
``param_integrand`` ``g`` in ``dL/dtheta = int g dt`` over ``param_limits``  parameter entry
``terminal_param``  ``a_theta(t1)`` (final losses)                        parameter entry
``adjoint_time``    ``da_t/dt``                                           (one expression)
``terminal_time``   ``a_t(t1)``                                           (one expression)
``dL_dt0``          ``dL/dt0`` in terms of ``a(t0)``, ``h(t0)``            (one expression)
``dL_dt1``          ``dL/dt1`` in terms of ``a(t1)``, ``h(t1)`` (final)   (one expression)
==================  ====================================================  =======================

Each piece may be given as text (the whitelist parser of :mod:`adjoint_sym.symbolic.parse`),
as LaTeX (``<piece>_latex``, :mod:`.latex`) or, from Python, as SymPy expressions over
the names below.  The adjoint symbols are ``a_<state>`` (``a`` with entries ``a[i]`` for a
matrix-level state) unless ``adjoint_symbols`` renames them; for losses with targets,
``target_<state>`` is the target at the observation time a jump is read at.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from ...errors import InvalidModelError
from ...numeric.loss import CallableLoss, ObservationLoss
from ...numeric.problem import Problem
from ...symbolic.parse import CONSTANTS, FUNCTIONS, parse_expression
from ...symbolic.system import ODESystem

#: The pieces, in the order they are decided and reported.
PIECES = (
    "adjoint",
    "terminal",
    "jumps",
    "param_integrand",
    "terminal_param",
    "adjoint_time",
    "terminal_time",
    "dL_dt0",
    "dL_dt1",
)
#: What each piece states, for tables and messages.
MEANING = {
    "adjoint": "da/dt",
    "terminal": "a(t1)",
    "jumps": "jump of a at each t_i",
    "param_integrand": "integrand of dL/dtheta",
    "terminal_param": "a_theta(t1)",
    "adjoint_time": "da_t/dt",
    "terminal_time": "a_t(t1)",
    "dL_dt0": "dL/dt0",
    "dL_dt1": "dL/dt1",
}
_PER_STATE = {"adjoint", "terminal", "jumps"}
_PER_PARAM = {"param_integrand", "terminal_param"}
#: Pieces whose expressions may use the adjoint symbols.
_USES_ADJOINT = {"adjoint", "param_integrand", "adjoint_time", "terminal_time", "dL_dt0", "dL_dt1"}
#: Pieces read at an observation time, which may use the target symbols.
_USES_TARGETS = {"terminal", "jumps", "terminal_param", "terminal_time"}
OTHER_FIELDS = ("adjoint_symbols", "param_limits")
FIELDS = (*PIECES, *(f"{p}_latex" for p in PIECES), *OTHER_FIELDS)
LIMITS = ("t0", "t1")


@dataclass(frozen=True, eq=False)
class Names:
    """The symbols a claim may use: the system's, the adjoint's and (target losses) the targets'."""

    system: ODESystem
    adjoint: tuple  # scalar symbols, or one column MatrixSymbol at matrix level
    targets: tuple  # like ``adjoint``, or () when the loss has no targets

    @property
    def adjoint_entries(self) -> tuple:
        return _entries(self.adjoint)

    @property
    def target_entries(self) -> tuple:
        return _entries(self.targets)

    def table(self, piece: str) -> dict[str, sp.Basic]:
        table = dict(self.system.symbol_table())
        if piece in _USES_ADJOINT:
            table.update({s.name: s for s in self.adjoint})
        if piece in _USES_TARGETS:
            table.update({s.name: s for s in self.targets})
        return table


def _entries(blocks: tuple) -> tuple:
    if len(blocks) == 1 and isinstance(blocks[0], sp.MatrixSymbol):
        m = blocks[0]
        return tuple(m[i, 0] for i in range(m.shape[0]))
    return tuple(blocks)


@dataclass(frozen=True, eq=False)
class ClaimedPiece:
    """One piece as claimed: its expressions and the text they were read from."""

    name: str
    exprs: tuple[sp.Expr, ...]
    source: tuple[str, ...]
    latex: bool = False
    stated: bool = True  # False: a piece the claim leaves out but needs (jumps of an observation loss)


@dataclass(frozen=True, eq=False)
class ReadClaim:
    """A claim read and validated against a problem."""

    problem: Problem
    names: Names
    pieces: dict[str, ClaimedPiece]
    limits: tuple[str, str]


def read_claim(problem: Problem, claim: Mapping) -> ReadClaim:
    """Validate the claim table against ``problem`` and parse every piece through the whitelist.

    Raises
    ------
    InvalidModelError
        Naming the field (``claim.terminal[1]: unknown symbol 'z' ...``) and the remedy.
    """
    if not isinstance(claim, Mapping):
        raise InvalidModelError(f"claim: expected a table of pieces, got {type(claim).__name__}")
    for key in claim:
        if key not in FIELDS:
            raise InvalidModelError(
                f"claim.{key}: unknown field; a claim states some of {', '.join(PIECES)} "
                f"(or <piece>_latex), and optionally {', '.join(OTHER_FIELDS)}"
            )
    system = problem.system
    names = Names(system, _adjoint_symbols(system, claim.get("adjoint_symbols")), _target_symbols(problem))
    pieces: dict[str, ClaimedPiece] = {}
    for piece in PIECES:
        text, latex = claim.get(piece), claim.get(f"{piece}_latex")
        if text is not None and latex is not None:
            raise InvalidModelError(f"claim.{piece}: given both as text and as {piece}_latex; keep one")
        if text is None and latex is None:
            continue
        _check_applies(piece, problem)
        items = _items(piece, latex if text is None else text, system, f"{piece}_latex" if text is None else piece)
        exprs = tuple(
            _expression(item, names.table(piece), f"claim.{piece}{'_latex' if text is None else ''}[{i}]", text is None)
            for i, item in enumerate(items)
        )
        pieces[piece] = ClaimedPiece(piece, exprs, tuple(map(str, items)), latex=text is None)
    if not pieces:
        raise InvalidModelError(f"claim: no pieces stated; give at least one of {', '.join(PIECES)}")
    return ReadClaim(problem, names, pieces, _limits(claim.get("param_limits")))


def _check_applies(piece: str, problem: Problem) -> None:
    system, final = problem.system, problem.is_final_loss
    if piece in _PER_PARAM and system.n_params == 0:
        raise InvalidModelError(f"claim.{piece}: the system has no parameters; remove the piece")
    if piece == "jumps" and final:
        raise InvalidModelError("claim.jumps: the loss is read at t1 only; state a(t1) as claim.terminal")
    if piece in ("dL_dt1", "terminal_param") and not final:
        what = "dL/dt1 is not defined for observation losses" if piece == "dL_dt1" else "a_theta(t1) needs a final loss"
        raise InvalidModelError(f"claim.{piece}: {what}; use a FinalLoss or remove the piece")
    if isinstance(problem.loss, CallableLoss) and piece in ("terminal", "jumps", "terminal_param", "terminal_time"):
        raise InvalidModelError(
            f"claim.{piece}: the loss is a Python callable, whose derivatives are not symbolic; "
            "state it as a FinalLoss or ObservationLoss expression"
        )


def _items(piece: str, value: object, system: ODESystem, field: str) -> list:
    if piece in _PER_STATE or piece in _PER_PARAM:
        if piece in _PER_STATE:
            count, what = system.n, f"state entries ({', '.join(system.state_names)})"
        else:
            count, what = system.n_params, f"parameter entries ({', '.join(map(str, system.flat_params))})"
        if isinstance(value, str | sp.Basic) or not isinstance(value, Sequence):
            raise InvalidModelError(f"claim.{field}: expected a list of {count} expressions, one per {what[:-1]})")
        if len(value) != count:
            raise InvalidModelError(f"claim.{field}: {len(value)} expressions for {count} {what}; give one per entry")
        return list(value)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 1:
        value = value[0]  # ["expr"] for a scalar piece is accepted
    if isinstance(value, Sequence) and not isinstance(value, str):
        raise InvalidModelError(f"claim.{field}: expected one expression, got a list of {len(value)}")
    return [value]


def _expression(item: object, table: dict, where: str, latex: bool) -> sp.Expr:
    if latex:
        from .latex import parse_latex_expression  # the LaTeX parser loads only when a claim uses it

        return parse_latex_expression(item, table, where=where)
    if isinstance(item, str):
        return parse_expression(item, table, where=where)
    if isinstance(item, int | float) and not isinstance(item, bool):
        return sp.nsimplify(item) if float(item).is_integer() else sp.Float(item)
    if not isinstance(item, sp.Expr):
        raise InvalidModelError(f"{where}: expected an expression as text, got {type(item).__name__} {item!r}")
    allowed = set(table.values())
    for s in item.free_symbols:
        base = s.args[0] if isinstance(s, MatrixElement) else s
        if base not in allowed:
            raise InvalidModelError(f"{where}: unknown symbol {str(base)!r} (declared: {', '.join(sorted(table))})")
    return item


def _limits(value: object) -> tuple[str, str]:
    if value is None:
        return ("t1", "t0")
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and set(value) == set(LIMITS)
        and all(isinstance(v, str) for v in value)
    ):
        return (value[0], value[1])
    raise InvalidModelError(
        f'claim.param_limits: expected ["t1", "t0"] (Chen et al.\'s eq. 5) or ["t0", "t1"], got {value!r}'
    )


def _adjoint_symbols(system: ODESystem, given: object) -> tuple:
    taken = set(system.symbol_table())
    matrix = system.is_matrix_level
    if given is None:
        wanted = ["a"] if matrix else [f"a_{s.name}" for s in system.state]
        where = "the default adjoint name"
    else:
        count = 1 if matrix else system.n
        if isinstance(given, str) or not isinstance(given, Sequence) or len(given) != count:
            what = "one name for the column a" if matrix else f"{count} names, one per state"
            raise InvalidModelError(f"claim.adjoint_symbols: expected a list of {what}, got {given!r}")
        wanted, where = list(given), "claim.adjoint_symbols"
    for i, name in enumerate(wanted):
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise InvalidModelError(f"claim.adjoint_symbols[{i}]: {name!r} is not a valid name (letters, digits, _)")
        if name in taken or name in FUNCTIONS or name in CONSTANTS:
            raise InvalidModelError(
                f"{where} {name!r} is already a state, parameter, time or function name; "
                "give claim.adjoint_symbols = [...] with new names"
            )
        taken.add(name)
    if len(set(wanted)) != len(wanted):
        raise InvalidModelError(f"claim.adjoint_symbols: names repeat in {wanted}")
    if matrix:
        return (sp.MatrixSymbol(wanted[0], system.n, 1),)
    return tuple(sp.Symbol(name, real=True) for name in wanted)


def _target_symbols(problem: Problem) -> tuple:
    loss, system = problem.loss, problem.system
    if not (isinstance(loss, ObservationLoss) and loss.targets is not None):
        return ()
    if system.is_matrix_level:
        return (sp.MatrixSymbol("target", system.n, 1),)
    return tuple(sp.Symbol(f"target_{s.name}", real=True) for s in system.state)


__all__ = ["FIELDS", "MEANING", "PIECES", "ClaimedPiece", "Names", "ReadClaim", "read_claim"]
