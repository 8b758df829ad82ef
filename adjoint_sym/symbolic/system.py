"""The ODE system ``dh/dt = f(h, t, theta)``: frozen, hashable, with cached derivatives.

Two kinds of right-hand side share one class:

* **scalar** systems: the state is a list of scalar symbols ``x, y, ...`` and the
  right-hand side a list of scalar expressions (Lotka-Volterra, SIR, ...);
* **matrix-level** systems: the state is one column :class:`sympy.MatrixSymbol` ``h``
  and the right-hand side a matrix expression such as ``W2*tanh.(W1*h + b1) + b2``.

Parameters may be scalar symbols or matrix symbols (weights) in both.  Numerically the
parameter vector ``theta`` is every parameter flattened in order, matrices row-major.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .._limits import current_limits
from ..errors import InvalidModelError
from .augmented import Adjoint, AugmentedSystem
from .matrix_calculus import vjp as _matrix_vjp
from .names import check_names, normal, shown
from .parse import CONSTANTS, FUNCTIONS, parse_counted
from .size import check_derivative_work, check_size
from .trace import trace
from .validate import canonical

Param = sp.Symbol | sp.MatrixSymbol


@dataclass(frozen=True, eq=False)
class ODESystem:
    """An ODE ``dh/dt = f(h, t, theta)`` over declared symbols.

    Parameters
    ----------
    state : sequence of sympy.Symbol, or a column sympy.MatrixSymbol
        The state ``h``: scalar symbols, or one ``(n, 1)`` matrix symbol.
    params : sequence of sympy.Symbol or sympy.MatrixSymbol
        The parameters ``theta``, in the order of the flattened parameter vector.
    t : sympy.Symbol
        The time symbol.
    rhs : sequence of expressions, a column matrix, or an ``(n, 1)`` matrix expression
        The right-hand side ``f``.
    name : str, optional
        A label used in printed output.

    Examples
    --------
    >>> import sympy as sp
    >>> x, y, a, b, c, d, t = sp.symbols("x y a b c d t")
    >>> lv = ODESystem(state=[x, y], params=[a, b, c, d], t=t,
    ...                rhs=[a*x - b*x*y, d*x*y - c*y])
    >>> lv.n, lv.n_params
    (2, 4)
    """

    state: tuple
    params: tuple
    t: sp.Symbol
    rhs: sp.Basic
    name: str = field(default="")

    def __init__(
        self,
        state: Sequence[sp.Symbol] | sp.MatrixSymbol,
        params: Sequence[Param],
        t: sp.Symbol,
        rhs: Sequence[sp.Expr] | sp.MatrixBase | sp.MatrixExpr,
        name: str = "",
    ) -> None:
        state_t = _normalize_state(state)
        params_t = _normalize_params(params)
        if not isinstance(t, sp.Symbol):
            raise InvalidModelError(f"time must be a sympy Symbol, got {t!r}")
        matrix_level = isinstance(state_t[0], sp.MatrixSymbol)
        shapes = [_shape_of(p) for p in params_t]
        check_size(_state_width(state_t), shapes, matrix_level)
        rhs_m, size = _canonical_rhs(_normalize_rhs(rhs, state_t))
        check_derivative_work(size, len(state_t), shapes, matrix_level)
        object.__setattr__(self, "state", state_t)
        object.__setattr__(self, "params", params_t)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "rhs", rhs_m)
        object.__setattr__(self, "name", str(name))
        #: Nodes of the right-hand side's expression trees; a loss may use the rest of the budget.
        object.__setattr__(self, "expression_size", size)
        _check_names(self)
        _check_free_symbols(self)

    # -- construction from text -------------------------------------------------------
    @classmethod
    def from_strings(
        cls,
        state: Sequence[str],
        params: Sequence[str] | Mapping[str, tuple[int, int]],
        time: str,
        rhs: Sequence[str],
        name: str = "",
    ) -> ODESystem:
        """Build a scalar system from names and expression strings, parsed safely.

        Parameters
        ----------
        state, params : sequence of str
            Names; any identifier works (``S``, ``I``, ``E``, ``N``, ``beta``,
            ``lambda_``...), they become plain real symbols.  ``params`` may also be a
            mapping of name to a ``(rows, cols)`` shape for matrix parameters, whose
            entries the text addresses as ``W[i, j]``.
        time : str
            The time symbol's name.
        rhs : sequence of str
            One expression per state, see :func:`adjoint_sym.symbolic.parse.parse_expression`.

        Examples
        --------
        >>> sir = ODESystem.from_strings(["S", "I", "R"], ["beta", "gamma"], "t",
        ...     ["-beta*S*I", "beta*S*I - gamma*I", "gamma*I"])
        >>> sir.rhs[2]
        I*gamma
        """
        state = _check_name_list(state, "state")
        if isinstance(params, Mapping):
            names = _check_name_list(list(params), "params")
            shapes = {normal(k): v for k, v in params.items()}
        else:
            names = _check_name_list(params, "params")
            shapes = {}
        time = _check_name_list([time], "time")[0]
        check_names(_declared(state, names, time))  # before normalising: 'x' and 'ｘ' are refused
        state, names, time = [normal(s) for s in state], [normal(p) for p in names], normal(time)
        _check_time_name(time, state, names)
        _check_unique(state + names)
        dims = {p: None if shapes.get(p) in (None, ()) else _shape(shapes[p], f"params[{p!r}]") for p in names}
        check_size(len(state), list(dims.values()), matrix_level=False)  # before any parsing
        symbols: dict[str, sp.Basic] = {s: sp.Symbol(s, real=True) for s in state}
        param_syms = []
        for p in names:
            sym = sp.Symbol(p, real=True) if dims[p] is None else sp.MatrixSymbol(p, *dims[p])
            param_syms.append(sym)
            symbols[p] = sym
        symbols[time] = sp.Symbol(time, real=True)
        if isinstance(rhs, str) or not isinstance(rhs, Sequence):
            raise InvalidModelError("rhs must be a list of expression strings, one per state")
        if len(rhs) != len(state):
            raise InvalidModelError(
                f"rhs has {len(rhs)} expressions but the state has {len(state)} names; "
                "give one right-hand side per state"
            )
        exprs, left = [], current_limits().max_expression_size
        for i, text in enumerate(rhs):  # the budget is shared: refuse before parsing the rest
            expr, size = parse_counted(text, symbols, where=f"rhs[{i}]", budget=left)
            exprs.append(expr)
            left -= size
        return cls(
            state=[symbols[s] for s in state],
            params=param_syms,
            t=symbols[time],
            rhs=exprs,
            name=name,
        )

    @classmethod
    def from_function(
        cls,
        f,
        state: Sequence[str] | Mapping[str, int],
        params: Sequence[str] | Mapping[str, object] = (),
        time: str = "t",
        name: str = "",
    ) -> ODESystem:
        """Build a system from a plain Python right-hand side, by tracing it on symbols.

        ``f`` is called once (twice, to check it is a pure function) with stand-ins that
        record its arithmetic and its NumPy calls (``np.sin``, ``np.tanh``, ``@``, ``**``,
        ...), so an existing NumPy function needs no rewriting; see
        :mod:`adjoint_sym.symbolic.trace` for what is refused and why.

        Parameters
        ----------
        f : callable
            Its arguments are matched by name first (an argument named like a state, a
            parameter or the time gets that symbol; one named ``np`` gets the tracing
            namespace), the rest by position in SciPy's order ``f(t, h, theta)``: the time,
            the state (a NumPy array of the scalar states, which unpacks as ``x, y = h``;
            the column for a matrix-level system) and the parameters (``p.a``, ``p["a"]``,
            ``a, b = p``; or one by one through ``*args``).  It returns one expression per
            state (a list or array) or, matrix-level, the column.
        state : list of str, or {name: size}
            Scalar state names, or one column state of the given size (matrix level).
        params : list of str, or mapping of name to shape
            Scalar parameters by name, or ``{"W": (rows, cols), "b": (rows, 1), "k": ()}``.
            A matrix parameter of a scalar system is a NumPy array of its entries; of a
            matrix-level system, a matrix (``W @ h`` stays one matrix product).
        time : str
            The time symbol's name.

        Examples
        --------
        >>> import numpy as np
        >>> def pendulum(t, y, p):
        ...     theta, omega = y
        ...     return np.array([omega, -p.g / p.l * np.sin(theta)])
        >>> ODESystem.from_function(pendulum, ["theta", "omega"], ["g", "l"]).rhs.T
        Matrix([[omega, -g*sin(theta)/l]])
        >>> spiral = ODESystem.from_function(lambda t, h, W, b: W @ h**3 + b, {"h": 2}, {"W": (2, 2), "b": (2, 1)})
        >>> spiral.rhs
        W*HadamardPower(h, 3) + b
        """
        traced = trace(f, state, params, time)
        rhs = traced.rhs if isinstance(traced.rhs, sp.MatrixExpr) else list(traced.rhs)
        return cls(state=traced.state, params=traced.params, t=traced.t, rhs=rhs, name=name)

    # -- shape and naming -------------------------------------------------------------
    @property
    def is_matrix_level(self) -> bool:
        """True when the state is a matrix symbol and ``rhs`` a matrix expression."""
        return isinstance(self.state[0], sp.MatrixSymbol)

    @property
    def n(self) -> int:
        """The state dimension."""
        # int(): SymPy's Integer would make every numeric slice y[n:2*n] a SymPy operation.
        return int(self.state[0].shape[0]) if self.is_matrix_level else len(self.state)

    @property
    def h(self) -> sp.MatrixBase | sp.MatrixSymbol:
        """The state as a column: an explicit matrix of symbols, or the matrix symbol."""
        return self.state[0] if self.is_matrix_level else sp.ImmutableMatrix(self.state)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def state_names(self) -> tuple[str, ...]:
        if self.is_matrix_level:
            return tuple(f"{self.state[0].name}[{i}]" for i in range(self.n))
        return tuple(s.name for s in self.state)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's numeric shape: ``()`` for scalars, ``(rows, cols)`` else."""
        return {p.name: (tuple(int(d) for d in p.shape) if isinstance(p, sp.MatrixSymbol) else ()) for p in self.params}

    @property
    def n_params(self) -> int:
        """Length of the flattened parameter vector."""
        return sum(_size(p) for p in self.params)

    @property
    def is_autonomous(self) -> bool:
        return not self.rhs.has(self.t)

    @cached_property
    def flat_state(self) -> tuple[sp.Basic, ...]:
        """The state's scalar entries (symbols, or ``h[i, 0]`` elements)."""
        if self.is_matrix_level:
            return tuple(self.state[0][i, 0] for i in range(self.n))
        return self.state

    @cached_property
    def flat_params(self) -> tuple[sp.Basic, ...]:
        """The parameters' scalar entries, matrices row-major (``W[i, j]`` elements)."""
        out: list[sp.Basic] = []
        for p in self.params:
            if isinstance(p, sp.MatrixSymbol):
                out.extend(p[i, j] for i in range(p.shape[0]) for j in range(p.shape[1]))
            else:
                out.append(p)
        return tuple(out)

    def symbol_table(self) -> dict[str, sp.Basic]:
        """Name to symbol for the state, parameters and time: what expressions may use."""
        table: dict[str, sp.Basic] = {s.name: s for s in self.state}
        table.update({p.name: p for p in self.params})
        table[self.t.name] = self.t
        return table

    # -- derivatives ------------------------------------------------------------------
    @cached_property
    def explicit_rhs(self) -> sp.ImmutableMatrix:
        """``f`` with every matrix expanded entry by entry (cost grows with the width)."""
        if isinstance(self.rhs, sp.MatrixBase):
            return self.rhs
        return sp.ImmutableMatrix(self.rhs.as_explicit())

    @cached_property
    def jacobian_h(self) -> sp.ImmutableMatrix:
        """``df/dh``, shape (n, n), entry by entry."""
        return _sparse_jacobian(self.explicit_rhs, self.flat_state)

    @cached_property
    def jacobian_theta(self) -> sp.ImmutableMatrix:
        """``df/dtheta``, shape (n, n_params), entry by entry."""
        if not self.flat_params:
            return sp.ImmutableMatrix.zeros(self.n, 0)
        return _sparse_jacobian(self.explicit_rhs, self.flat_params)

    @cached_property
    def derivative_t(self) -> sp.ImmutableMatrix:
        """``df/dt``, shape (n, 1), entry by entry."""
        return sp.ImmutableMatrix(self.explicit_rhs.diff(self.t))

    def vjp(self, a: sp.MatrixBase | sp.MatrixExpr) -> tuple[sp.Basic, list[sp.Basic], sp.Basic]:
        """``a^T df/dh``, ``[a^T df/dtheta_k]`` per parameter, and ``a^T df/dt``.

        Differentiates the scalar ``a . f`` once, at the matrix level where ``f`` is a
        matrix expression (see :mod:`adjoint_sym.symbolic.matrix_calculus`).  The state product
        is returned as a column like ``h``; each parameter's product has its shape.
        """
        wrt = [*self.state, *self.params, self.t]
        products = _matrix_vjp(self.rhs, a, wrt)
        if self.is_matrix_level:
            d_h = products[self.state[0]]
        else:
            d_h = sp.ImmutableMatrix([products[s] for s in self.state])
        return d_h, [products[p] for p in self.params], products[self.t]

    # -- the augmented system -----------------------------------------------------------
    def augmented(self):
        """The augmented system ``[h, theta, t]`` with ``f_aug = [f, 0, 1]`` (Chen et al.)."""
        return AugmentedSystem.of(self)

    def adjoint(self, *, form: str = "vjp", running_cost: sp.Expr | None = None):
        """The augmented adjoint system; see :class:`adjoint_sym.Adjoint` (``running_cost``: its ``g``)."""
        return Adjoint.of(self, form=form, running_cost=running_cost)

    # -- identity, display --------------------------------------------------------------
    def _key(self) -> tuple:
        return (self.state, self.params, self.t, self.rhs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ODESystem) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        if self.is_matrix_level:
            f = f"d{self.state[0].name}/d{self.t} = {self.rhs}"
        else:
            f = ", ".join(f"d{s}/d{self.t} = {e}" for s, e in zip(self.state, self.rhs))
        params = ", ".join(_describe_param(p) for p in self.params)
        return f"ODESystem({label}{f}; params [{params}])"

    def _repr_latex_(self) -> str:
        from .render import system_latex

        return "$$" + system_latex(self) + "$$"

    def latex(self, *, bold_vectors: bool = False, environment: str = "aligned") -> str:
        """The dynamics as an ``aligned`` (or ``align``) LaTeX block."""
        from .render import system_latex

        return system_latex(self, bold_vectors=bold_vectors, environment=environment)

    def to_latex(self, *, bold_vectors: bool = False) -> str:
        """Paste-ready ``align`` block of the dynamics."""
        return self.latex(bold_vectors=bold_vectors, environment="align")


def _sparse_jacobian(entries: sp.MatrixBase, variables: Sequence[sp.Basic]) -> sp.ImmutableMatrix:
    """``d entries / d variables``, differentiating each entry only by the variables it contains.

    ``Matrix.jacobian`` takes every derivative, ``n^2`` of them, almost all zero for the
    sparse systems of chemistry and discretized PDEs (a 256-state Brusselator spends
    most of its first stiff gradient there); this costs one derivative per nonzero.
    """
    column = {v: j for j, v in enumerate(variables)}
    out: dict[tuple[int, int], sp.Basic] = {}
    for i, entry in enumerate(entries):
        for atom in entry.atoms(sp.Symbol, MatrixElement):
            j = column.get(atom)
            if j is not None:
                out[i, j] = entry.diff(atom)
    return sp.ImmutableMatrix(sp.SparseMatrix(len(entries), len(variables), out))


def _describe_param(p: Param) -> str:
    if isinstance(p, sp.MatrixSymbol):
        return f"{p.name}: {p.shape[0]}x{p.shape[1]}"
    return p.name


def _size(p: Param) -> int:
    if isinstance(p, sp.MatrixSymbol):
        return int(p.shape[0] * p.shape[1])
    return 1


def _shape(shape: object, where: str) -> tuple[int, int]:
    if (
        isinstance(shape, Sequence)
        and len(shape) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    ):
        return int(shape[0]), int(shape[1])
    raise InvalidModelError(f"{where}: shape must be two positive integers, got {shape!r}")


def _check_name_list(names: object, what: str) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise InvalidModelError(f"{what} must be a list of names, got {names!r}")
    names = list(names)
    if what == "state" and not names:
        raise InvalidModelError("state is empty; declare at least one state variable")
    out = []
    for i, n in enumerate(names):
        if not isinstance(n, str) or not n.isidentifier() or keyword.iskeyword(normal(n)):
            raise InvalidModelError(
                f"{what}[{i}]: {shown(n) if isinstance(n, str) else repr(n)} is not a valid name; use letters, "
                "digits and '_' (Python keywords such as 'lambda' need a trailing '_': 'lambda_')"
            )
        if n.startswith("__"):
            raise InvalidModelError(f"{what}[{i}]: dunder name {shown(n)} is not allowed")
        if normal(n) in FUNCTIONS or normal(n) in CONSTANTS:
            raise InvalidModelError(
                f"{what}[{i}]: {shown(n)} is the name of a built-in function or constant; rename it"
            )
        out.append(n)
    return out


def _check_unique(names: Sequence[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InvalidModelError(f"duplicate name {shown(n)}: state, parameter and time names must differ")
        seen.add(n)


def _declared(state: Sequence[str], params: Sequence[str], time: str) -> list[tuple[str, str]]:
    named = [(f"state[{i}]", s) for i, s in enumerate(state)]
    return named + [(f"params[{i}]", p) for i, p in enumerate(params)] + [("time", time)]


def _state_width(state: tuple) -> int:
    return int(state[0].shape[0]) if isinstance(state[0], sp.MatrixSymbol) else len(state)


def _shape_of(p: Param) -> tuple[int, int] | None:
    return (int(p.shape[0]), int(p.shape[1])) if isinstance(p, sp.MatrixSymbol) else None


def _canonical_rhs(rhs: sp.Basic) -> tuple[sp.Basic, int]:
    """The right-hand side through :func:`~adjoint_sym.symbolic.validate.canonical`, and its size."""
    left = current_limits().max_expression_size
    if not isinstance(rhs, sp.MatrixBase):
        out, size = canonical(rhs, "rhs", budget=left)
        return out, size
    entries, total = [], 0
    for i, entry in enumerate(rhs):
        out, size = canonical(entry, f"rhs[{i}]", budget=left - total)
        entries.append(out)
        total += size
    return sp.ImmutableMatrix(rhs.rows, rhs.cols, entries), total


def _normalize_state(state: object) -> tuple:
    if isinstance(state, sp.MatrixSymbol):
        if state.shape[1] != 1:
            raise InvalidModelError(f"matrix state {state} must be a column (n, 1), got shape {state.shape}")
        return (state,)
    if isinstance(state, str) or not isinstance(state, Iterable):
        raise InvalidModelError(f"state must be a list of symbols or a column MatrixSymbol, got {state!r}")
    items = tuple(state)
    if not items:
        raise InvalidModelError("state is empty; declare at least one state variable")
    for i, s in enumerate(items):
        if not isinstance(s, sp.Symbol):
            raise InvalidModelError(f"state[{i}] must be a sympy Symbol, got {s!r}")
    return items


def _normalize_params(params: object) -> tuple:
    if isinstance(params, str) or not isinstance(params, Iterable):
        raise InvalidModelError(f"params must be a list of symbols, got {params!r}")
    items = tuple(params)
    for i, p in enumerate(items):
        if not isinstance(p, sp.Symbol | sp.MatrixSymbol):
            raise InvalidModelError(f"params[{i}] must be a Symbol or MatrixSymbol, got {p!r}")
    return items


def _normalize_rhs(rhs: object, state: tuple) -> sp.Basic:
    matrix_state = isinstance(state[0], sp.MatrixSymbol)
    n = state[0].shape[0] if matrix_state else len(state)
    if isinstance(rhs, sp.MatrixExpr) and not isinstance(rhs, sp.MatrixBase):
        if not matrix_state:
            raise InvalidModelError(
                "a matrix-expression rhs needs a MatrixSymbol state; give scalar states a list of scalar expressions"
            )
        if tuple(rhs.shape) != (n, 1):
            raise InvalidModelError(f"rhs has shape {rhs.shape} but the state has shape ({n}, 1)")
        return rhs
    if isinstance(rhs, sp.MatrixBase) or (isinstance(rhs, Iterable) and not isinstance(rhs, str)):
        entries = list(rhs)
    else:
        raise InvalidModelError(f"rhs must be a list of expressions or a matrix, got {rhs!r}")
    if len(entries) != n:
        raise InvalidModelError(
            f"rhs has {len(entries)} expressions but the state has {n} entries; give one right-hand side per state"
        )
    out = []
    for i, e in enumerate(entries):
        if isinstance(e, str):
            raise InvalidModelError(f"rhs[{i}] is a string; use ODESystem.from_strings for text")
        try:
            e = sp.sympify(e, strict=True)  # strict: numbers and SymPy objects only, no text
        except sp.SympifyError:
            raise InvalidModelError(f"rhs[{i}]: {e!r} is not a SymPy expression") from None
        if isinstance(e, sp.MatrixBase | sp.MatrixExpr) and not isinstance(e, MatrixElement):
            raise InvalidModelError(f"rhs[{i}] is a matrix; entries must be scalar expressions")
        out.append(e)
    return sp.ImmutableMatrix(out)


def _check_names(system: ODESystem) -> None:
    state = [s.name for s in system.state]
    _check_time_name(system.t.name, state, list(system.param_names))
    _check_unique(state + list(system.param_names))
    check_names(_declared(state, list(system.param_names), system.t.name))


def _check_time_name(time: str, state: Sequence[str], params: Sequence[str]) -> None:
    for kind, names in (("state", state), ("params", params)):
        if time in names:
            noun = "state variable" if kind == "state" else "parameter"
            raise InvalidModelError(f"{kind} contains {time!r}, which is the time symbol; rename the {noun}")


def _check_free_symbols(system: ODESystem) -> None:
    allowed = set(system.state) | set(system.params) | {system.t}
    for i, entry in enumerate(_entries(system.rhs)):
        for s in entry.free_symbols:
            base = s.args[0] if isinstance(s, MatrixElement) else s
            if base not in allowed:
                raise InvalidModelError(
                    f"rhs[{i}]: unknown symbol {shown(str(base))}; declare it as a state or parameter"
                )


def _entries(rhs: sp.Basic) -> list[sp.Basic]:
    return list(rhs) if isinstance(rhs, sp.MatrixBase) else [rhs]
