"""Problem spec files: a gradient problem stated in TOML or JSON, validated field by field.

A spec names the state, the parameters with their values, the right-hand sides as text,
the initial value, the time span, the loss and, optionally, the solver::

    name = "Lotka-Volterra"          # optional label
    state = ["x", "y"]
    time = "t"                       # optional, default "t"
    rhs = ["a*x - b*x*y", "d*x*y - c*y"]
    h0 = [1.0, 1.0]
    t0 = 0.0                         # optional, default 0.0
    t1 = 10.0
    [params]                         # name = value; a list of rows is a matrix parameter
    a = 1.5
    b = 1.0
    c = 3.0
    d = 1.0
    [loss]
    kind = "final"                   # L = expr at h(t1); expr may use params and time
    expr = "x**2 + y**2"
    # or: kind = "observations", times = [...], targets = [[...], ...]  (sum of squared errors)
    # or: kind = "observations", times = [...], expr = "..."            (expr summed over times)
    # or: kind = "integral", expr = "..."          (a running cost: int_t0^t1 expr dt)

A loss that is a sum of kinds is a list of such tables, added up (TOML's ``[[loss]]``;
JSON's ``"loss": [{...}, {...}]``): at most one ``final`` or ``observations`` term and any
number of ``integral`` ones (:class:`~adjoint_sym.numeric.loss.SumLoss`)::

    [[loss]]
    kind = "final"
    expr = "x**2"
    [[loss]]
    kind = "integral"
    expr = "y**2"                    # L = x(t1)^2 + int_t0^t1 y^2 dt
    [solver]                         # optional
    method = "DOP853"
    rtol = 1e-10
    atol = 1e-12
    [limits]                         # optional: raise (or lower) a budget of adjoint_sym.limits
    max_steps = 1_000_000            # steps per solve; also time_limit (s), max_states, max_params,
                                     # max_matrix_entries, max_observations, max_loss_expressions,
                                     # max_expression_size

JSON carries the same fields in one object.  A spec is read only from a regular file, at
most :data:`MAX_SPEC_BYTES` of it (a device or a FIFO is refused, not read); a UTF-8
byte-order mark is accepted.  Expressions go through the whitelist parser
(:mod:`adjoint_sym.symbolic.parse`): nothing in a spec is ever passed to ``eval``.  Every problem is
reported as :class:`~adjoint_sym.errors.InvalidModelError` whose message starts with the
field at fault, e.g. ``rhs[1]: unknown symbol 'z'`` or ``h0[0]: expected a finite number,
got nan``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from .._limits import LIMIT_NAMES, Limits, limits
from ..errors import InvalidModelError
from ..numeric.loss import FinalLoss, IntegralLoss, ObservationLoss, SumLoss
from ..numeric.problem import Problem
from ..numeric.solve import SOLVERS
from ..symbolic.names import did_you_mean, shown, shown_value
from ..symbolic.system import ODESystem

#: Spec files larger than this are refused before parsing (a spec is a few hundred bytes).
MAX_SPEC_BYTES = 5_000_000

#: Solver settings used when a spec has no ``[solver]`` section (those of :func:`adjoint_sym.gradient`).
DEFAULT_SOLVER = "DOP853"
DEFAULT_RTOL = 1e-8
DEFAULT_ATOL = 1e-10

TOP_LEVEL_FIELDS = ("name", "state", "time", "rhs", "params", "h0", "t0", "t1", "loss", "solver", "claim", "limits")
REQUIRED_FIELDS = ("state", "rhs", "h0", "t1", "loss")
LOSS_KINDS = ("final", "observations", "integral")
_LOSS_FIELDS = {
    "final": ("kind", "expr"),
    "observations": ("kind", "times", "targets", "expr"),
    "integral": ("kind", "expr"),
}
_SOLVER_FIELDS = ("method", "rtol", "atol")


@dataclass(frozen=True)
class SolverSettings:
    """The ``[solver]`` section: a ``solve_ivp`` method and its tolerances."""

    method: str = DEFAULT_SOLVER
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL


@dataclass(frozen=True, eq=False)
class Spec:
    """A loaded spec: the validated :class:`~adjoint_sym.numeric.problem.Problem` and solver settings.

    Attributes
    ----------
    problem : Problem
    solver : SolverSettings
    name : str
        The spec's ``name``, else the file's stem.
    source : str
        Where the spec came from (a path, or ``"<spec>"``).
    claim : dict or None
        The ``[claim]`` table, handed unparsed to :func:`adjoint_sym.verify_derivation`
        (``adjoint-sym verify-derivation``), which validates it.
    """

    problem: Problem
    solver: SolverSettings
    name: str
    source: str
    claim: dict | None = None
    #: The ``[limits]`` table (merged with any overrides given to the loader), for
    #: ``adjoint_sym.limits(**spec.limits)`` around the work on this problem.
    limits: dict = field(default_factory=dict)

    @property
    def system(self) -> ODESystem:
        return self.problem.system


def load_spec(path: str | Path, *, limit_overrides: Mapping[str, object] | None = None) -> Spec:
    """Read and validate a spec file (``.toml`` or ``.json``; other names are tried as both).

    Parameters
    ----------
    path : str or pathlib.Path
    limit_overrides : mapping, optional
        Limits that win over the spec's ``[limits]`` table (the command line's flags).

    Returns
    -------
    Spec

    Raises
    ------
    InvalidModelError
        When the file cannot be read, is not TOML/JSON, or any field is invalid; the
        message names the file and the field.

    Examples
    --------
    >>> import tempfile, os
    >>> text = '{"state": ["x"], "params": {"k": 0.5}, "rhs": ["-k*x"], "h0": [1.0],'
    >>> text += ' "t1": 1.0, "loss": {"kind": "final", "expr": "x**2"}}'
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "decay.json")
    ...     _ = open(p, "w").write(text)
    ...     spec = load_spec(p)
    >>> spec.name, spec.problem.params
    ('decay', {'k': 0.5})
    """
    path = Path(path)
    raw = read_bounded(path)
    try:
        text = raw.decode("utf-8-sig")  # -sig: a byte-order mark (Windows editors) is no error
    except UnicodeDecodeError:
        raise InvalidModelError(f"{path}: not a text file (not UTF-8); a spec is TOML or JSON") from None
    data = parse_text(text, fmt=_format_of(path), source=str(path))
    return spec_from_dict(data, name=path.stem, source=str(path), limit_overrides=limit_overrides)


def read_bounded(path: Path, limit: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is refused unread.

    A device (``/dev/zero``) reports size 0 and never ends; opening a FIFO without a writer
    blocks: both are refused from ``stat`` alone, and the read itself stops after ``limit``
    bytes, in case the file grows meanwhile.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise InvalidModelError(
                f"cannot read spec file {shown(str(path))}: it is {kind}; give a .toml or .json file"
            )
        if info.st_size > limit:
            raise InvalidModelError(f"{path}: file is {info.st_size} bytes; a spec may be at most {limit}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise InvalidModelError(f"cannot read spec file {shown(str(path))}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise InvalidModelError(f"{path}: file is more than {limit} bytes; a spec may be at most {limit}")
    return raw


def _format_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".toml": "toml", ".json": "json"}.get(suffix)


def parse_text(text: str, fmt: str | None = None, source: str = "<spec>") -> dict:
    """Parse spec text as TOML or JSON (``fmt=None``: JSON if it starts with ``{``, else TOML).

    JSON objects with a repeated key are refused (JSON parsers keep the last silently).

    Examples
    --------
    >>> parse_text('t1 = 2.0', fmt="toml")
    {'t1': 2.0}
    >>> parse_text('{"t1": 2.0}')
    {'t1': 2.0}
    """
    guessed = ""
    if fmt is None:
        fmt = "json" if text.lstrip().startswith("{") else "toml"
        guessed = " (format guessed from the content; name the file .toml or .json)"
    text = text.removeprefix("\ufeff")
    if fmt == "json":
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKey as exc:
            raise InvalidModelError(f"{source}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise InvalidModelError(
                f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{guessed}"
            ) from None
        except RecursionError:
            raise InvalidModelError(f"{source}: not valid JSON: nested too deeply") from None
        except ValueError as exc:  # an integer literal past Python's 4,300-digit limit
            raise InvalidModelError(f"{source}: not valid JSON: {_number_error(exc)}") from None
        if not isinstance(data, dict):
            raise InvalidModelError(f"{source}: a JSON spec must be one object {{...}}, got {type(data).__name__}")
        return data
    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidModelError(f"{source}: not valid TOML: {exc}{guessed}") from None
        except RecursionError:
            raise InvalidModelError(f"{source}: not valid TOML: nested too deeply") from None
        except ValueError as exc:  # an integer literal past Python's 4,300-digit limit
            raise InvalidModelError(f"{source}: not valid TOML: {_number_error(exc)}") from None
    raise InvalidModelError(f"unknown spec format {fmt!r}; use 'toml' or 'json'")


def _number_error(exc: ValueError) -> str:
    # The parsers' only ValueError past their own decode errors: Python's int() digit limit.
    return "an integer literal has more than 4300 digits; a spec's numbers are floats (at most about 1.8e308)"


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate key {shown(key)} in a JSON object; give each field once")
        out[key] = value
    return out


def spec_from_dict(
    data: Mapping, *, name: str = "", source: str = "<spec>", limit_overrides: Mapping[str, object] | None = None
) -> Spec:
    """Validate parsed spec data and build the problem.

    Parameters
    ----------
    data : mapping
        The fields described in the module documentation.
    name : str
        Fallback label when ``data`` has no ``name``.
    source : str
        Prefix of error messages (a file name).
    limit_overrides : mapping, optional
        Limits that win over the spec's ``[limits]`` table.

    Examples
    --------
    >>> spec = spec_from_dict({"state": ["x"], "params": {"k": 2.0}, "rhs": ["-k*x"],
    ...                        "h0": [1.0], "t1": 1.0, "loss": {"kind": "final", "expr": "x"}})
    >>> spec.problem.system
    ODESystem(dx/dt = -k*x; params [k])
    """
    try:
        table = _limits_table(data.get("limits", {}) if isinstance(data, Mapping) else {})
        merged = {**table, **(limit_overrides or {})}
        with limits(**merged):  # the size limits apply while the problem is built
            spec = _build(data, name, source)
        return dataclasses.replace(spec, limits=merged)
    except InvalidModelError as exc:
        message = str(exc)
        if source != "<spec>" and not message.startswith(source):
            message = f"{source}: {message}"
        raise type(exc)(message) from None


def _build(data: Mapping, name: str, source: str) -> Spec:
    if not isinstance(data, Mapping):
        raise InvalidModelError(f"a spec must be a table/object of fields, got {type(data).__name__}")
    _check_keys(data, TOP_LEVEL_FIELDS, "")
    for required in REQUIRED_FIELDS:
        if required not in data:
            raise InvalidModelError(f"missing field {required!r}; a spec needs {', '.join(REQUIRED_FIELDS)}")
    label = data.get("name", name)
    if not isinstance(label, str):
        raise InvalidModelError(f"name: expected a string, got {_show(label)}")
    if any("\ud800" <= ch <= "\udfff" for ch in label):
        raise InvalidModelError(f"name: {shown(label)} holds a lone surrogate, which is not valid Unicode text")
    state = _string_list(data["state"], "state")
    time = data.get("time", "t")
    if not isinstance(time, str):
        raise InvalidModelError(f"time: expected a string (the time symbol's name), got {_show(time)}")
    rhs = _string_list(data["rhs"], "rhs")
    if len(rhs) != len(state):
        raise InvalidModelError(
            f"rhs: {len(rhs)} expressions for {len(state)} state names {state}; give one right-hand side per state"
        )
    params = data.get("params", {})
    if not isinstance(params, Mapping):
        raise InvalidModelError(f"params: expected a table of name = value, got {_show(params)}")
    values, shapes = {}, {}
    for key, value in params.items():
        values[key], shapes[key] = _param_value(value, f"params.{key}")
    names = list(params)
    declared = shapes if any(shapes.values()) else names
    system = ODESystem.from_strings(state=state, params=declared, time=time, rhs=rhs, name=label)
    h0 = _number_list(data["h0"], "h0")
    if len(h0) != len(state):
        raise InvalidModelError(f"h0: {len(h0)} values for {len(state)} state names {state}")
    t0 = _number(data.get("t0", 0.0), "t0")
    t1 = _number(data["t1"], "t1")
    loss = _loss(data["loss"], len(state))
    problem = Problem(system, h0, values, t0, t1, loss)
    _check_params_used(problem)
    solver = _solver(data.get("solver", {}))
    claim = data.get("claim")
    if claim is not None and not isinstance(claim, Mapping):
        raise InvalidModelError(
            f"claim: expected a table of claimed pieces (adjoint, terminal, ...), got {_show(claim)}"
        )
    return Spec(problem=problem, solver=solver, name=label, source=source, claim=None if claim is None else dict(claim))


def _check_keys(table: Mapping, allowed: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            # Echo the key escaped and cut short: it may be a megabyte long or hold control characters.
            name = shown(key, limit=40)[1:-1] if len(str(key)) <= 40 else shown(key, limit=40)
            where = f"{prefix}.{name}" if prefix else name
            hint = did_you_mean(str(key), allowed) if len(str(key)) <= 40 else ""
            raise InvalidModelError(f"{where}: unknown field{hint}; known fields here are {', '.join(allowed)}")


def _limits_table(value: object) -> dict:
    """The ``[limits]`` table: known names, positive numbers (``time_limit`` in seconds)."""
    if not isinstance(value, Mapping):
        raise InvalidModelError(f"limits: expected a table of name = value, got {_show(value)}")
    _check_keys(value, LIMIT_NAMES, "limits")
    out = {}
    for key, item in value.items():
        try:
            Limits(**{key: item})
        except InvalidModelError as exc:
            raise InvalidModelError(f"limits.{key}: {str(exc).removeprefix(f'limit {key} ')}") from None
        out[key] = item
    return out


def _show(value: object) -> str:
    return f"{type(value).__name__} {shown_value(value)}"


def _string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list):
        raise InvalidModelError(f"{where}: expected a list of strings, got {_show(value)}")
    if not value:
        raise InvalidModelError(f"{where}: the list is empty")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidModelError(f"{where}[{i}]: expected a string, got {_show(item)}")
    return list(value)


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidModelError(f"{where}: expected a number, got {_show(value)}")
    try:
        out = float(value)
    except OverflowError:  # a JSON/TOML integer beyond float range
        raise InvalidModelError(f"{where}: number out of range") from None
    if not math.isfinite(out):
        raise InvalidModelError(f"{where}: expected a finite number, got {out}")
    return out


def _number_list(value: object, where: str) -> list[float]:
    if not isinstance(value, list):
        raise InvalidModelError(f"{where}: expected a list of numbers, got {_show(value)}")
    return [_number(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _param_value(value: object, where: str) -> tuple[object, tuple[int, int] | None]:
    """A scalar, or a matrix given as a list of equally long rows (a column as ``[[1], [2]]``)."""
    if not isinstance(value, list):
        return _number(value, where), None
    if not value or not all(isinstance(row, list) for row in value):
        raise InvalidModelError(f"{where}: expected a number or a matrix as a list of rows, got {_show(value)}")
    rows = [_number_list(row, f"{where}[{i}]") for i, row in enumerate(value)]
    width = len(rows[0])
    if width == 0 or any(len(r) != width for r in rows):
        raise InvalidModelError(f"{where}: matrix rows must be non-empty and of equal length")
    return rows, (len(rows), width)


def _loss(value: object, n: int):
    """One loss table, or a list of them summed (:class:`SumLoss`)."""
    if not isinstance(value, list):
        return _loss_term(value, n, "loss")
    if not value:
        raise InvalidModelError("loss: the list of loss terms is empty; give one table per term")
    terms = [_loss_term(v, n, f"loss[{i}]") for i, v in enumerate(value)]
    if len(terms) == 1:
        return terms[0]
    points = [i for i, v in enumerate(value) if v.get("kind") != "integral"]
    if len(points) > 1:
        raise InvalidModelError(
            f"loss[{points[1]}]: a second final or observations term; a sum holds at most one (write the final "
            "terms as one expression) and any number of 'integral' terms"
        )
    return SumLoss(*terms)


def _loss_term(value: object, n: int, where: str):
    if not isinstance(value, Mapping):
        raise InvalidModelError(f"{where}: expected a table with a 'kind', got {_show(value)}")
    kind = value.get("kind")
    if kind not in LOSS_KINDS:
        got = "missing" if kind is None else repr(kind)
        raise InvalidModelError(f"{where}.kind: {got}; choose one of {', '.join(map(repr, LOSS_KINDS))}")
    _check_keys(value, _LOSS_FIELDS[kind], where)
    if kind in ("final", "integral"):
        if "expr" not in value:
            needs = "a final loss needs the expression L(h(t1))"
            if kind == "integral":
                needs = "an integral loss needs the integrand g of int_t0^t1 g dt"
            raise InvalidModelError(f"{where}.expr: missing; {needs}")
        if not isinstance(value["expr"], str):
            raise InvalidModelError(f"{where}.expr: expected a string, got {_show(value['expr'])}")
        return FinalLoss(value["expr"]) if kind == "final" else IntegralLoss(value["expr"])
    if "times" not in value:
        raise InvalidModelError(f"{where}.times: missing; an observation loss needs its observation times")
    times = _number_list(value["times"], f"{where}.times")
    if not times:
        raise InvalidModelError(f"{where}.times: the list is empty")
    has_targets, has_expr = "targets" in value, "expr" in value
    if has_targets == has_expr:
        raise InvalidModelError(f"{where}: an observation loss needs exactly one of 'targets' or 'expr'")
    if has_targets:
        targets = value["targets"]
        if not isinstance(targets, list):
            raise InvalidModelError(f"{where}.targets: expected a list of rows, got {_show(targets)}")
        if len(targets) != len(times):
            raise InvalidModelError(f"{where}.targets: {len(targets)} rows for {len(times)} observation times")
        rows = [_number_list(row, f"{where}.targets[{i}]") for i, row in enumerate(targets)]
        for i, row in enumerate(rows):
            if len(row) != n:
                raise InvalidModelError(f"{where}.targets[{i}]: {len(row)} values for a state of {n}")
        return ObservationLoss(times, targets=rows)
    expr = value["expr"]
    if not isinstance(expr, str):
        expr = _string_list(expr, f"{where}.expr")
    return ObservationLoss(times, expr=expr)


def _check_params_used(problem: Problem) -> None:
    """A parameter no expression uses is most likely a misspelt name: refuse it."""
    system = problem.system
    exprs = [*list(system.explicit_rhs), *problem.point_loss.expressions(system, len(problem.times))]
    if problem.running_cost is not None:
        exprs.append(problem.running_cost)
    used: set[sp.Basic] = set()
    for e in exprs:
        for s in e.free_symbols:
            used.add(s.args[0] if isinstance(s, MatrixElement) else s)
    for p in system.params:
        if p not in used:
            raise InvalidModelError(
                f"params.{p.name}: unknown parameter: no rhs or loss expression uses {p.name!r}; "
                "fix the name or remove it"
            )


def _solver(value: object) -> SolverSettings:
    if not isinstance(value, Mapping):
        raise InvalidModelError(f"solver: expected a table (method, rtol, atol), got {_show(value)}")
    _check_keys(value, _SOLVER_FIELDS, "solver")
    method = value.get("method", DEFAULT_SOLVER)
    if not isinstance(method, str) or method not in SOLVERS:
        raise InvalidModelError(f"solver.method: unknown solver {method!r}; choose one of {', '.join(SOLVERS)}")
    rtol = positive_tolerance(value.get("rtol", DEFAULT_RTOL), "solver.rtol")
    atol = positive_tolerance(value.get("atol", DEFAULT_ATOL), "solver.atol")
    return SolverSettings(method, rtol, atol)


def positive_tolerance(value: object, where: str) -> float:
    """A finite tolerance in ``(0, 1)``.

    Examples
    --------
    >>> positive_tolerance(1e-8, "rtol")
    1e-08
    """
    out = _number(value, where)
    if not 0.0 < out < 1.0:
        raise InvalidModelError(f"{where}: a tolerance must lie in (0, 1), got {out}")
    return out


__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "DEFAULT_SOLVER",
    "SolverSettings",
    "Spec",
    "load_spec",
    "parse_text",
    "positive_tolerance",
    "spec_from_dict",
]
