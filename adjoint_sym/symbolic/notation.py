"""The names a printed derivation uses, chosen so that none can be read as another.

A derivation prints the user's symbols beside its own: the adjoint ``a`` with its entries
``a_x`` and blocks ``a_theta``, ``a_t``; the state vector ``h``, the parameter vector
``theta``, the right-hand side ``f``, the loss ``L`` and its summand ``ell``; the end times
``t_0``, ``t_1``; abbreviations ``z`` of pre-activations.  Each role has a list of
candidates, and the first whose every name (plain and LaTeX) is free is taken: a state named
``theta`` moves the parameter vector to ``vartheta``, a parameter ``a`` (Lotka-Volterra)
or ``a_x`` moves the adjoint to ``lambda``, a parameter ``L`` moves the loss to ``J``.
Names compare after dropping braces and spaces, so ``a_{x}`` and ``a_x`` are one name.

Two user symbols that SymPy would print alike (``W1`` and ``W_1`` are both ``W_{1}``)
are printed by their literal names instead (``\\mathrm{W1}``, ``\\mathrm{W\\_1}``).

Examples
--------
>>> from adjoint_sym import ODESystem
>>> pendulum = ODESystem.from_strings(["theta", "omega"], ["g", "l"], "t",
...                                   ["omega", "-g/l*sin(theta)"])
>>> note = Notation.of(pendulum)
>>> note.params.latex, note.adjoint.plain
('\\\\vartheta', 'a')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sympy as sp

if TYPE_CHECKING:  # system.py builds on this module (through augmented.py), not the reverse
    from .system import ODESystem


@dataclass(frozen=True)
class Name:
    """One name in two spellings: ``plain`` for text, ``latex`` for LaTeX."""

    plain: str
    latex: str


def _n(plain: str, latex: str | None = None) -> Name:
    return Name(plain, plain if latex is None else latex)


#: Candidates per role, the preferred first.  The last of each list is a spelled-out word,
#: which no single-letter user name can equal.
CANDIDATES: dict[str, tuple[Name, ...]] = {
    "rhs": (_n("f"), _n("F"), _n("g"), _n("rhs", r"\mathrm{rhs}")),
    "loss": (_n("L"), _n("J"), _n("Phi", r"\Phi"), _n("loss", r"\mathcal{L}")),
    "ell": (_n("l", r"\ell"), _n("ell", r"\ell"), _n("varphi", r"\varphi"), _n("term", r"\mathrm{term}")),
    "params": (
        _n("theta", r"\theta"),
        _n("vartheta", r"\vartheta"),
        _n("Theta", r"\Theta"),
        _n("params", r"\mathrm{params}"),
    ),
    "state": (_n("h"), _n("u"), _n("X"), _n("state", r"\mathrm{state}")),
    "adjoint": (_n("a"), _n("lambda", r"\lambda"), _n("mu", r"\mu"), _n("p"), _n("adj", r"\mathrm{adj}")),
    "pre": (_n("z"), _n("s"), _n("q"), _n("pre", r"\mathrm{pre}")),
    "target": (_n("hhat", r"\hat{h}"), _n("ytarget", r"y^{\mathrm{target}}"), _n("data", r"\mathrm{data}")),
    "cost": (_n("g"), _n("r"), _n("G"), _n("cost", r"\mathrm{cost}")),
}

#: Candidates of the second-order adjoint's letters (:meth:`Notation.second_order_letters`).
SECOND_ORDER: dict[str, tuple[Name, ...]] = {
    "tangent": (_n("s"), _n("sigma", r"\sigma"), _n("tangent", r"\mathrm{tangent}")),
    "direction": (_n("v"), _n("w"), _n("direction", r"\mathrm{direction}")),
    "adjoint": (
        _n("lambda", r"\lambda"),
        _n("mu", r"\mu"),
        _n("nu", r"\nu"),
        _n("kappa", r"\kappa"),
        _n("rho", r"\rho"),
        _n("adjtwo", r"\mathrm{adj}_2"),
        _n("adjthree", r"\mathrm{adj}_3"),
    ),
}

#: End-time subscripts: ``t_0, t_1`` unless the user has such names.
ENDS: tuple[tuple[str, str], ...] = (("0", "1"), ("start", "end"))


def normal(name: str) -> str:
    """A name as it reads: braces and spaces dropped (``a_{x}`` reads as ``a_x``)."""
    return name.replace("{", "").replace("}", "").replace(" ", "")


@dataclass(frozen=True)
class Notation:
    """The derivation's names for one system (see the module documentation).

    Attributes
    ----------
    rhs, loss, ell, params, state, adjoint, pre, target, cost : Name
        The right-hand side ``f``, the loss ``L``, its summand ``ell``, the parameter
        vector ``theta``, the state vector ``h`` (a matrix-level system's own state
        symbol), the adjoint letter ``a``, the pre-activation ``z``, the observed data ``hhat``,
        the running cost's integrand ``g``.
    start, end : Name
        ``t_0`` and ``t_1`` in the user's time symbol.
    latex_names : dict
        LaTeX for symbols SymPy would not print as wanted: the adjoint's entries
        (``a_{S_{1}}``, not SymPy's ``a_{S 1}``) and user symbols that would print alike.
    """

    rhs: Name
    loss: Name
    ell: Name
    params: Name
    state: Name
    adjoint: Name
    pre: Name
    target: Name
    cost: Name
    start: Name
    end: Name
    time: Name
    latex_names: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, system: ODESystem) -> Notation:
        user = [*system.state, *system.params, system.t]
        latex_names = _user_latex(user)
        taken = _Taken()
        for s in user:
            taken.add(s.name, latex_names.get(s, sp.latex(s)))
        time = Name(system.t.name, latex_names.get(system.t, sp.latex(system.t)))
        start, end = _ends(time, taken)
        chosen: dict[str, Name] = {}
        for role in ("rhs", "loss", "ell", "params", "state", "target", "cost"):
            if role == "state" and _matrix_state(system):
                s = system.state[0]
                chosen[role] = Name(s.name, latex_names.get(s, sp.latex(s)))
                continue
            chosen[role] = taken.first(CANDIDATES[role], lambda c: [c])
        adjoint_names = _adjoint_family(system, chosen["params"], time, latex_names)
        chosen["adjoint"] = taken.first(CANDIDATES["adjoint"], adjoint_names)
        chosen["pre"] = taken.first(CANDIDATES["pre"], lambda c: [c, *(_indexed(c, i) for i in range(1, 10))])
        return cls(**chosen, start=start, end=end, time=time, latex_names=latex_names)

    def second_order_letters(self, system: ODESystem) -> tuple[Name, Name, Name, Name]:
        """The tangent ``s``, the direction ``v``, and the tangent adjoints ``lambda``, ``mu``.

        Chosen like the others, against the user's names and against this notation's
        adjoint letter: Lotka-Volterra's parameter ``a`` moves the adjoint to ``lambda``,
        so its tangent becomes ``mu`` and the parameters' tangent adjoint ``nu``.
        """
        taken = _Taken()
        for s in [*system.state, *system.params, system.t]:
            taken.add(s.name, self.user_latex(s))
        family = _adjoint_family(system, self.params, self.time, self.latex_names)
        for n in family(self.adjoint):
            taken.add(n.plain, n.latex)
        tangent = taken.first(SECOND_ORDER["tangent"], family)
        direction = taken.first(SECOND_ORDER["direction"], family)
        lam = taken.first(SECOND_ORDER["adjoint"], family)
        mu = taken.first(SECOND_ORDER["adjoint"], family)
        return tangent, direction, lam, mu

    def sub(self, base: Name, sub: Name) -> Name:
        """``base`` with a subscript: ``a_theta`` and ``a_{\\theta}``."""
        return Name(f"{base.plain}_{sub.plain}", f"{base.latex}_{{{sub.latex}}}")

    def adjoint_of(self, symbol: sp.Basic) -> Name:
        """The name of the adjoint entry of a state or parameter symbol."""
        return self.sub(self.adjoint, Name(symbol.name, self.latex_names.get(symbol, sp.latex(symbol))))

    @property
    def adjoint_params(self) -> Name:
        """``a_theta``: the block of the parameters' adjoints."""
        return self.sub(self.adjoint, self.params)

    @property
    def adjoint_time(self) -> Name:
        """``a_t``: the time adjoint."""
        return self.sub(self.adjoint, self.time)

    def user_latex(self, symbol: sp.Basic) -> str:
        """How a user symbol prints in LaTeX (SymPy's spelling unless two would collide)."""
        return self.latex_names.get(symbol, sp.latex(symbol))


class _Taken:
    """Names in use, by plain spelling and by how their LaTeX reads."""

    def __init__(self) -> None:
        self.plain: set[str] = set()
        self.latex: set[str] = set()

    def add(self, plain: str, latex: str) -> None:
        self.plain.add(plain)
        self.latex.add(normal(latex))

    def free(self, names: Sequence[Name]) -> bool:
        plains = [n.plain for n in names]
        latexes = [normal(n.latex) for n in names]
        distinct = len(set(plains)) == len(plains) and len(set(latexes)) == len(latexes)
        return distinct and not (set(plains) & self.plain) and not (set(latexes) & self.latex)

    def first(self, candidates: Sequence[Name], family) -> Name:
        """The first candidate whose family of names is free; its names are then taken."""
        for c in candidates:
            names = list(family(c))
            if self.free(names):
                for n in names:
                    self.add(n.plain, n.latex)
                return c
        raise AssertionError(f"every candidate of {candidates} is taken")  # the last is a word: unreachable


def _matrix_state(system: ODESystem) -> bool:
    return isinstance(system.state[0], sp.MatrixSymbol)


def _indexed(c: Name, i: int) -> Name:
    return Name(f"{c.plain}_{i}", f"{c.latex}_{{{i}}}")


def _adjoint_family(system: ODESystem, params: Name, time: Name, latex_names: dict):
    """Every name an adjoint letter ``c`` brings: ``c``, ``c_theta``, ``c_t`` and one per symbol."""
    symbols = [] if _matrix_state(system) else list(system.state)
    symbols += list(system.params)

    def family(c: Name) -> list[Name]:
        sub = [Name(f"{c.plain}_{s.name}", f"{c.latex}_{{{latex_names.get(s, sp.latex(s))}}}") for s in symbols]
        blocks = [Name(f"{c.plain}_{params.plain}", f"{c.latex}_{{{params.latex}}}")]
        blocks.append(Name(f"{c.plain}_{time.plain}", f"{c.latex}_{{{time.latex}}}"))
        return [c, *blocks, *sub]

    return family


def _ends(time: Name, taken: _Taken) -> tuple[Name, Name]:
    for a, b in ENDS:
        start = Name(f"{time.plain}{a}" if a.isdigit() else f"{time.plain}_{a}", _subscript(time.latex, a))
        end = Name(f"{time.plain}{b}" if b.isdigit() else f"{time.plain}_{b}", _subscript(time.latex, b))
        if taken.free([start, end]):
            taken.add(start.plain, start.latex)
            taken.add(end.plain, end.latex)
            return start, end
    raise AssertionError("no free end-time names")  # ENDS' last pair is words: unreachable


def _subscript(base: str, sub: str) -> str:
    return f"{base}_{{{sub}}}" if sub.isdigit() else rf"{base}_{{\mathrm{{{sub}}}}}"


def _user_latex(symbols: Iterable[sp.Basic]) -> dict:
    """Literal LaTeX names for user symbols that SymPy would print alike."""
    by_reading: dict[str, list[sp.Basic]] = {}
    for s in symbols:
        by_reading.setdefault(normal(sp.latex(s)), []).append(s)
    out: dict = {}
    for group in by_reading.values():
        if len(group) > 1:
            for s in group:
                out[s] = r"\mathrm{" + s.name.replace("_", r"\_") + "}"
    return out


__all__ = ["CANDIDATES", "Name", "Notation", "normal"]
