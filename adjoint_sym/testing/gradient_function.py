"""Property-test helpers: check any gradient code against adjoint_sym's references.

:func:`check_gradient_function` points hypothesis at a user's gradient function (a
hand-written adjoint, torchdiffeq, JAX, anything callable): problems are drawn from
:mod:`adjoint_sym.strategies`, each is solved by the user's function and by a reference,
and the first disagreement is shrunk to a small problem and raised as a
:class:`~adjoint_sym.errors.GradientMismatchError` (an ``AssertionError``) whose message
shows the equations, the values and a table quantity / yours / reference / deviation.

Verdicts
--------
The comparison is :mod:`adjoint_sym.verify.engine`'s, the one behind
:func:`~adjoint_sym.verify.check`: your function fails on a quantity only where two
references that agree with each other (the preferred one, then forward sensitivities and
finite differences, run as needed) both disagree with it.  Where the references disagree
among themselves the draw is inconclusive: :func:`check_problem` returns it with
``verdict == "inconclusive"``, and :func:`check_gradient_function` skips it rather than
blame your code.

Tolerance model
---------------
A quantity passes when ``|yours - reference| <= atol + rtol * |reference|``; the table
reports the deviation in those units (pass <= 1).  Two references agree by the verifier's
model (:mod:`adjoint_sym.verify.tolerance`, each at the accuracy it claims).  The reference is solved at
``REFERENCE_RTOL = 1e-10`` / ``REFERENCE_ATOL = 1e-12``.  On the built-in strategies
(spans <= 1.5, states within 10, Lipschitz constants of a few units) the global error of
a tolerance-controlled solve is at most ``GLOBAL_ERROR_FACTOR = 100`` times its local
tolerance, so the reference is good to ~1e-8 relative.  The default ``rtol = 1e-6`` leaves two more decades for the
solver error of the code under test (solve at ``rtol <= 1e-8``, or raise ``rtol``), and
sits three decades below the relative errors of 1e-3 that must be caught; ``atol = 1e-8``
is the floor for quantities that vanish (a state the loss and the dynamics ignore).

Hypothesis is needed only by :func:`check_gradient_function` (imported on call).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
import sympy as sp

from ..errors import GradientMismatchError, InvalidModelError, SolverFailedError
from ..numeric.loss import ObservationLoss
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..symbolic import builders
from ..verify.checker import assert_gradients_agree  # re-exported: the checker of issue 4
from ..verify.routes import gradient
from .comparison import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    GLOBAL_ERROR_FACTOR,
    REFERENCE_ATOL,
    REFERENCE_PREFERENCE,
    REFERENCE_RTOL,
    Comparison,
    Row,
    judge_gradient,
)

#: The keys a gradient function's mapping must have.
_REQUIRED = ("loss", "dh0", "dparams", "dt0", "dt1")


# -- display -------------------------------------------------------------------------------
def describe(problem: Problem) -> str:
    """A problem as a person reads it: equations, values, span and loss.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 0.5], {"a": 1.0, "b": 0.5, "c": 1.0, "d": 0.25},
    ...                0.0, 1.0, FinalLoss("x"))
    >>> print(describe(prob))  # doctest: +NORMALIZE_WHITESPACE
    system: dx/dt = a*x - b*x*y
            dy/dt = -c*y + d*x*y
    params: a = 1, b = 0.5, c = 1, d = 0.25
    h0:     x = 1, y = 0.5
    span:   t0 = 0 -> t1 = 1
    loss:   FinalLoss(expr='x')
    """
    system = problem.system
    if system.is_matrix_level:
        equations = [f"d{system.state[0].name}/d{system.t} = {_matrix_rhs_text(system.rhs)}"]
    else:
        equations = [f"d{s}/d{system.t} = {e}" for s, e in zip(system.state, system.rhs)]
    values = []
    for name, value in problem.params.items():
        if np.ndim(value):
            values.append(f"{name} = {np.array2string(np.asarray(value), precision=6, separator=', ')}")
        else:
            values.append(f"{name} = {value:g}")
    h0 = ", ".join(f"{s} = {v:g}" for s, v in zip(system.state_names, problem.h0))
    lines = ["system: " + equations[0], *("        " + e for e in equations[1:])]
    lines.append("params: " + (", ".join(values) if values else "(none)").replace("\n", " "))
    lines.append(f"h0:     {h0}")
    lines.append(f"span:   t0 = {problem.t0:g} -> t1 = {problem.t1:g}")
    loss = problem.point_loss
    if isinstance(loss, ObservationLoss) and loss.targets is not None:
        lines.append(f"loss:   sum_i ||h(t_i) - y_i||^2 at t_i = {list(loss.times)}")
        lines.append(f"        y_i = {loss.targets.tolist()}")
        if problem.running_cost is not None:
            lines.append(f"        + int_t0^t1 {problem.running_cost} dt")
    else:
        lines.append(f"loss:   {problem.loss!r}")
    return "\n".join(lines)


def _matrix_rhs_text(rhs: sp.Basic) -> str:
    """``tanh.(W*h + b)`` rather than ``Lambda(z, tanh(z)).(W*h + b)``."""
    text = str(rhs)
    for lam in sorted(rhs.atoms(sp.Lambda), key=lambda lam: -len(str(lam))):
        if len(lam.variables) != 1:
            continue
        z = lam.variables[0]
        for name, fn in builders.ACTIVATIONS.items():
            if fn(z) == lam.expr:  # builders apply ACTIVATIONS[name] to the bound symbol
                text = text.replace(str(lam), name)
                break
    return text


# -- the reference -------------------------------------------------------------------------
def default_references() -> tuple[str, ...]:
    """The references used when none are named: :data:`REFERENCE_PREFERENCE`.

    The first that accepts a problem judges it.

    Examples
    --------
    >>> default_references()
    ('complex-step', 'forward')
    """
    return REFERENCE_PREFERENCE


def _references(problem: Problem, methods: Sequence[str] | None) -> list[Gradient]:
    """The reference gradients a problem is judged against: each of ``methods``, or the
    first of :data:`REFERENCE_PREFERENCE` that does not refuse the problem."""
    if methods:
        return [reference_gradient(problem, m) for m in methods]
    refusal = None
    for method in REFERENCE_PREFERENCE:
        try:
            return [reference_gradient(problem, method)]
        except InvalidModelError as exc:  # e.g. complex step on a non-analytic rhs
            refusal = exc
    raise refusal


_CACHE: dict[tuple, Gradient] = {}
_CACHE_SIZE = 512


def clear_reference_cache() -> None:
    """Forget memoized reference gradients (benchmarks time cold runs with it)."""
    _CACHE.clear()


def _fingerprint(problem: Problem) -> tuple:
    loss = problem.loss
    targets = getattr(problem.point_loss, "targets", None)
    return (
        problem.system,
        problem.h0.tobytes(),
        problem.theta.tobytes(),
        problem.t0,
        problem.t1,
        type(loss).__name__,
        repr(loss),
        None if targets is None else targets.tobytes(),
    )


def reference_gradient(problem: Problem, method: str) -> Gradient:
    """``method``'s gradient of ``problem`` at the reference tolerances (memoized).

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    >>> g = reference_gradient(Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x")), "complex-step")
    >>> bool(abs(g.dh0[0] - np.exp(-1.0)) < 1e-10)
    True
    """
    if callable(getattr(problem.loss, "value", None)):
        raise InvalidModelError("reference gradients need an expression loss; CallableLoss is not memoizable")
    key = (method, *_fingerprint(problem))
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = gradient(problem, method, rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
    return _CACHE[key]


# -- what the user returns -----------------------------------------------------------------
def as_gradient(value: Gradient | Mapping, problem: Problem, *, method: str = "yours") -> Gradient:
    """The user's result as a :class:`Gradient`, its keys and shapes checked.

    ``value`` is a :class:`Gradient` or a mapping with keys ``loss``, ``dh0``,
    ``dparams`` (name -> value, matrices in their shape or flat), ``dt0`` and ``dt1``
    (``None`` for observation losses), and optionally ``dtimes``.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    >>> prob = Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x"))
    >>> as_gradient({"loss": 0.37, "dh0": [0.37], "dparams": {"a": -0.37}, "dt0": 0.37, "dt1": -0.37}, prob).dt1
    -0.37
    """
    if isinstance(value, Gradient):
        return value
    if not isinstance(value, Mapping):
        raise InvalidModelError(
            f"a gradient function must return a Gradient or a mapping with keys {list(_REQUIRED)}, "
            f"got {type(value).__name__}"
        )
    missing = [k for k in _REQUIRED if k not in value]
    if missing:
        raise InvalidModelError(
            f"the gradient function's result lacks key {missing[0]!r}; it needs {list(_REQUIRED)} "
            "(dt1 may be None for observation losses)"
        )
    system = problem.system
    dh0 = _array(value["dh0"], "dh0", (system.n,))
    dparams_in = value["dparams"]
    if not isinstance(dparams_in, Mapping):
        raise InvalidModelError(f"dparams must map parameter names to values, got {type(dparams_in).__name__}")
    unknown = sorted(set(dparams_in) - set(system.param_names))
    if unknown:
        raise InvalidModelError(f"dparams has unknown parameter {unknown[0]!r}; the system's are {system.param_names}")
    dparams = {}
    for name, shape in system.param_shapes.items():
        if name not in dparams_in:
            raise InvalidModelError(f"dparams lacks parameter {name!r}")
        shape = tuple(int(k) for k in shape)
        arr = _array(dparams_in[name], f"dparams[{name!r}]", shape)
        dparams[name] = arr.reshape(shape) if shape else float(arr.reshape(-1)[0])
    dtimes = value.get("dtimes")
    if dtimes is not None:
        dtimes = _array(dtimes, "dtimes", (len(problem.times),))
    return Gradient(
        loss=_scalar(value["loss"], "loss"),
        dh0=dh0,
        dparams=dparams,
        dt0=None if value["dt0"] is None else _scalar(value["dt0"], "dt0"),
        dt1=None if value["dt1"] is None else _scalar(value["dt1"], "dt1"),
        method=method,
        dtimes=dtimes,
    )


def _array(value, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(_to_numpy(value), dtype=float)
    except (TypeError, ValueError):
        raise InvalidModelError(f"{name} must be numeric, got {value!r}") from None
    size = int(np.prod(shape)) if shape else 1
    if arr.size != size:
        raise InvalidModelError(f"{name} must have shape {shape}, got shape {arr.shape}")
    if len(shape) == 2 and min(shape) > 1 and arr.ndim > 1 and arr.shape != shape:
        # flat (row-major) is read as given; any other shape would be reshaped into the wrong entries
        raise InvalidModelError(f"{name} must have shape {shape} (or be flat, row-major), got shape {arr.shape}")
    return arr.reshape(shape)


def _scalar(value, name: str) -> float:
    return float(_array(value, name, ()).reshape(-1)[0])


def _to_numpy(value):
    """Tensors of torch or JAX to numpy without importing either library."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_to_numpy(v) for v in value]
    return np.asarray(value)


def compare_gradients(
    yours: Gradient,
    reference: Gradient,
    problem: Problem,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    ignore: Collection[str] = (),
) -> Comparison:
    """Compare ``yours`` with ``reference`` quantity by quantity (the caller vouches for it).

    Quantities are named as by :meth:`Gradient.quantities` plus ``L`` for the loss; a
    quantity the reference has but ``yours`` lacks fails (deviation ``inf``).  Leave
    out whole groups with ``ignore`` (``"loss"``, ``"dh0"``, ``"dparams"``, ``"dt0"``,
    ``"dt1"``, ``"dtimes"``).  One reference decides here; :func:`check_problem` asks
    for two that agree.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    >>> prob = Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x"))
    >>> ref = reference_gradient(prob, "forward")
    >>> e = float(np.exp(-1))
    >>> mine = as_gradient({"loss": e, "dh0": [e], "dparams": {"a": -e}, "dt0": e, "dt1": -e * 1.001}, prob)
    >>> [r.quantity for r in compare_gradients(mine, ref, prob).failures]
    ['dL/dt1']
    """
    return judge_gradient(problem, yours, [reference], rtol, atol, ignore, confirmations=1)


def mismatch_error(
    problem: Problem, comparison: Comparison, what: str = "your gradient function"
) -> GradientMismatchError:
    """The :class:`GradientMismatchError` for a failed comparison: problem, table, rule."""
    failing = ", ".join(r.quantity for r in comparison.failures)
    confirmed = ""
    if len(comparison.references) > 1:
        confirmed = f"; the references {' and '.join(comparison.references)} agree with each other"
    message = (
        f"{what} disagrees with the reference {comparison.reference!r} on {failing}\n\n"
        f"{describe(problem)}\n\n{comparison.table()}\n\n"
        f"allowed: |yours - reference| <= atol + rtol*|reference| with rtol = {comparison.rtol:g}, "
        f"atol = {comparison.atol:g}; the reference was solved at rtol = {REFERENCE_RTOL:g}{confirmed}"
    )
    error = GradientMismatchError(message)
    error.problem = problem
    error.comparison = comparison
    return error


#: References run, in this order, until two that agree decide (:func:`check_problem`).
ESCALATION = (*REFERENCE_PREFERENCE, "finite-difference")


# -- the checks ----------------------------------------------------------------------------
def check_problem(
    fn: Callable[[Problem], Gradient | Mapping],
    problem: Problem,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    methods: Sequence[str] | None = None,
    ignore: Collection[str] = (),
) -> Comparison:
    """Run ``fn`` on one problem and judge it against the references; raise on a mismatch.

    A mismatch needs two references that agree with each other and not with ``fn``:
    beyond the first reference (or the named ``methods``) the next of :data:`ESCALATION`
    is run until the verdict is decided.  A comparison whose references disagree among
    themselves comes back with ``verdict == "inconclusive"`` (and ``ok`` false) instead.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, gradient
    >>> sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
    >>> prob = Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x"))
    >>> check_problem(lambda p: gradient(p, rtol=1e-10, atol=1e-12), prob).ok
    True
    """
    yours = as_gradient(fn(problem), problem)
    references = _references(problem, methods)
    comparison = judge_gradient(problem, yours, references, rtol, atol, ignore, confirmations=2)
    for method in ESCALATION:
        if comparison.verdict != "inconclusive":
            break
        if method in comparison.references:
            continue
        try:
            references.append(reference_gradient(problem, method))
        except (InvalidModelError, SolverFailedError):  # this reference cannot judge the draw
            continue
        comparison = judge_gradient(problem, yours, references, rtol, atol, ignore, confirmations=2)
    if comparison.verdict == "fail":
        raise mismatch_error(problem, comparison)
    return comparison


def check_gradient_function(
    fn: Callable[[Problem], Gradient | Mapping],
    *,
    strategy=None,
    max_examples: int | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    methods: Sequence[str] | None = None,
    ignore: Collection[str] = (),
    shrink: bool = True,
    seed: int | None = None,
) -> None:
    """Property-test a gradient function against adjoint_sym's references.

    Parameters
    ----------
    fn : callable ``Problem -> Gradient | mapping``
        The code under test: returns ``loss``, ``dh0`` (n,), ``dparams`` (name ->
        value), ``dt0``, ``dt1`` (``None`` for observation losses), optionally
        ``dtimes``.  Torch and JAX tensors are accepted.
    strategy : hypothesis strategy of Problem, optional
        Default :func:`adjoint_sym.strategies.problems` (polynomial, linear and neural
        systems; final and observation losses; forward and backward spans).
    max_examples : int, optional
        Default: the loaded hypothesis profile's.
    rtol, atol : float
        Allowed deviation ``atol + rtol*|reference|`` (see the module docstring).
    methods : sequence of str, optional
        Reference methods (each must agree); default the first of
        :data:`REFERENCE_PREFERENCE` that accepts the problem.
    ignore : collection of str
        Quantity groups your function does not compute (``"dt0"``, ``"dt1"``, ...).
    shrink : bool
        Shrink a failure to a minimal problem (default) or report the first one found.
    seed : int, optional
        Fix hypothesis' random choices (a run is otherwise reproducible only under a
        ``derandomize=True`` profile such as ``adjoint-sym-ci``).

    Raises
    ------
    GradientMismatchError
        An ``AssertionError`` whose message shows the shrunk problem (equations, values)
        and the table quantity / yours / reference / deviation; its attributes
        ``problem`` (the shrunk :class:`Problem`) and ``comparison`` (a
        :class:`Comparison`) carry the same for programs.

    Examples
    --------
    >>> from adjoint_sym.testing.mutants import handwritten_adjoint
    >>> check_gradient_function(handwritten_adjoint, max_examples=5)
    """
    from . import strategies  # hypothesis is an optional extra: imported only here

    def judge(problem: Problem) -> bool:
        try:
            _references(problem, methods)
        except SolverFailedError:
            return False  # the reference cannot judge this draw: reject it
        comparison = check_problem(fn, problem, rtol=rtol, atol=atol, methods=methods, ignore=ignore)
        return comparison.verdict != "inconclusive"  # references in disagreement: reject, never fail fn

    strategies.run_property(judge, strategy, max_examples=max_examples, shrink=shrink, seed=seed)


__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "GLOBAL_ERROR_FACTOR",
    "REFERENCE_ATOL",
    "REFERENCE_RTOL",
    "Comparison",
    "Row",
    "as_gradient",
    "assert_gradients_agree",
    "check_gradient_function",
    "check_problem",
    "clear_reference_cache",
    "compare_gradients",
    "default_references",
    "describe",
    "mismatch_error",
    "reference_gradient",
]
