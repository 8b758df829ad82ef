"""One problem of a campaign, judged where it runs: a spec in, a JSON-ready record out.

:func:`run_problem` is the task a worker runs.  It receives the problem's index, the
campaign's :class:`Settings` and (optionally) the spec, never a ``Problem`` object;
builds the problem (systems and kernels are cached per process, so each template is
derived and compiled once per worker); judges it; and returns only the record.

Two kinds of judgement:

* **the library's own methods** (``function=None``): :func:`adjoint_sym.verify.check`
  with ``methods`` (default the checker's).  The routes are independent implementations
  that have passed the test suite, so a ``"fail"`` here is a false alarm of the checker
  (or a real bug, which the record lets a person tell apart).
* **a gradient function** (``function="module:callable"`` or a callable, the contract of
  :func:`adjoint_sym.testing.check_gradient_function`: ``problem -> Gradient`` or a mapping
  with ``loss``, ``dh0``, ``dparams``, ``dt0``, ``dt1`` and optionally ``dtimes``):
  its result against the references ``methods`` (default complex step, forward
  sensitivities where complex step does not apply) by
  :func:`~adjoint_sym.campaign.judge.judge_gradient`: the checker's comparison engine and
  tolerance model, with the function's accuracy ``function_rtol``.

Whatever goes wrong becomes the record's ``error`` (``verdict = "crash"``) with the stage
(``build``, ``function``, ``checker``, ``timeout``) and the message: one problem never
ends a campaign.  The record's fields are listed in :func:`run_problem`.
"""

from __future__ import annotations

import importlib
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InvalidModelError
from ..testing.gradient_function import DEFAULT_RTOL, as_gradient
from ..verify.checker import DEFAULT_METHODS, check
from ..verify.routes import methods as all_methods
from .judge import judge_gradient
from .problems import build_problem, check_families, family_of, problem_spec, solver_of
from .sampler import check_seed
from .watchdog import ProblemTimeout, run_with_limit

VERDICTS = ("ok", "fail", "inconclusive", "crash")
#: Default reference of a gradient-function campaign (compare() falls back to forward sensitivities).
FUNCTION_REFERENCES = ("complex-step",)
#: Bounds on what one record carries (a message, the checker's notes).
MAX_MESSAGE, MAX_NOTES, MAX_NOTE = 2000, 20, 400


@dataclass(frozen=True)
class Settings:
    """What every problem of one campaign is judged with (shipped with each task).

    Attributes
    ----------
    seed : int
    families : tuple of str
    methods : tuple of str or None
        Methods of :func:`~adjoint_sym.verify.check`, or the references of a gradient
        function; ``None`` for the defaults.
    function : str, callable or None
        ``"module:callable"`` (imported on the worker) or a callable (pickled to it).
    function_rtol : float
        The accuracy ``tau`` the gradient function is judged at.
    timeout : float or None
        Wall-clock seconds per problem before it is recorded as a crash.
    """

    seed: int = 0
    families: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    function: str | Callable | None = None
    function_rtol: float = DEFAULT_RTOL
    timeout: float | None = 300.0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        object.__setattr__(self, "families", check_families(self.families))
        if self.methods is not None:
            object.__setattr__(self, "methods", check_methods(self.methods))
        if self.function is not None:
            resolve_function(self.function)  # fail here, before any worker sees it
        if not (isinstance(self.function_rtol, float | int) and 0 < self.function_rtol < 1):
            raise InvalidModelError(f"function_rtol must be a number in (0, 1), got {self.function_rtol!r}")
        if self.timeout is not None and not (isinstance(self.timeout, float | int) and self.timeout > 0):
            raise InvalidModelError(f"timeout must be a positive number of seconds, got {self.timeout!r}")

    def config(self) -> dict:
        """The settings a record must share with the others of its file (``--resume`` checks them)."""
        return {
            "seed": self.seed,
            "families": list(self.families),
            "methods": None if self.methods is None else list(self.methods),
            "function": None if self.function is None else function_name(self.function),
            "function_rtol": None if self.function is None else float(self.function_rtol),
        }


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """Known method names, each once (order kept)."""
    if isinstance(methods, str) or not methods:
        raise InvalidModelError(f"methods must be a non-empty list of names among {', '.join(all_methods())}")
    unknown = [m for m in methods if m not in all_methods()]
    if unknown:
        raise InvalidModelError(f"unknown method {unknown[0]!r}; choose among {', '.join(all_methods())}")
    return tuple(dict.fromkeys(methods))


# -- the user's gradient function ---------------------------------------------------------
def resolve_function(ref: str | Callable) -> Callable:
    """A callable from ``"module:callable"`` (``callable`` may be dotted), or ``ref`` itself.

    Examples
    --------
    >>> resolve_function("adjoint_sym.testing.mutants:handwritten_adjoint").__name__
    'handwritten_adjoint'
    >>> resolve_function("my_adjoint")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    adjoint_sym.errors.InvalidModelError: function: expected 'module:callable' (e.g. ...), got 'my_adjoint'
    """
    if callable(ref):
        return ref
    if not isinstance(ref, str):
        raise InvalidModelError(f"function: expected 'module:callable' or a callable, got {type(ref).__name__}")
    return _import_function(ref)


@lru_cache(maxsize=16)
def _import_function(ref: str) -> Callable:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr or ":" in attr:
        raise InvalidModelError(f"function: expected 'module:callable' (e.g. mypackage.grads:my_adjoint), got {ref!r}")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidModelError(
            f"function {ref!r}: cannot import module {module_name!r} ({exc}); is it installed or on PYTHONPATH?"
        ) from None
    except Exception as exc:  # the user's module failed while importing: say how, not a traceback
        raise InvalidModelError(
            f"function {ref!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidModelError(f"function {ref!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidModelError(f"function {ref!r}: {attr!r} is a {type(obj).__name__}, not a callable")
    return obj


def function_name(ref: str | Callable) -> str:
    """How a record names the gradient function: ``module:qualname``."""
    if isinstance(ref, str):
        return ref
    module = getattr(ref, "__module__", None) or "?"
    return f"{module}:{getattr(ref, '__qualname__', None) or type(ref).__name__}"


# -- one problem -------------------------------------------------------------------------------
def run_problem(index: int, settings: Settings, spec: Mapping | None = None) -> dict:
    """Judge problem ``index`` of the campaign and return its record.

    Parameters
    ----------
    index : int
    settings : Settings
    spec : mapping, optional
        The problem (default drawn from ``settings.seed`` and ``index``).

    Returns
    -------
    dict
        JSON-ready: ``index``, ``family``, ``config`` (:meth:`Settings.config`),
        ``problem`` (the spec), ``verdict`` (``"ok"``, ``"fail"``, ``"inconclusive"`` or
        ``"crash"``), ``ok``, ``reference``, ``methods``, ``conditioning``,
        ``failures`` (quantity, method, reference, value, expected, deviation, allowed,
        ratio, cause, cause_kind), ``inconclusive`` (quantity, method, the references that
        support and oppose it, reason, remedy), ``notes``, ``warnings`` (issued while judging),
        ``error`` (``None`` or type, message, stage), ``timings`` (seconds: build,
        function, checker, total; cpu), ``worker`` (host:pid), ``started``,
        ``finished`` (Unix times).

    Examples
    --------
    >>> record = run_problem(2, Settings(seed=0, methods=("adjoint", "forward")))
    >>> record["family"], record["verdict"]
    ('growing', 'ok')
    """
    spec = problem_spec(settings.seed, index, settings.families) if spec is None else dict(spec)
    record = _base_record(index, settings, spec)
    timings: dict[str, float] = {}
    stage = ["build"]
    started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings(record=True) as caught:  # into the record, not the worker's stderr
            warnings.simplefilter("always")
            report = run_with_limit(lambda: _judge(spec, settings, timings, stage), settings.timeout)
        record |= _from_report(report)
    except ProblemTimeout as exc:
        record["error"] = {"type": "ProblemTimeout", "message": str(exc), "stage": "timeout"}
    except Exception as exc:  # the campaign's boundary: recorded as a crash with its message, never silent
        record["error"] = {"type": type(exc).__name__, "message": _clip(str(exc), MAX_MESSAGE), "stage": stage[0]}
    record["warnings"] = _clip_list(list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)))
    timings["total"] = time.perf_counter() - wall
    timings["cpu"] = time.process_time() - cpu
    record["timings"] = {k: round(v, 6) for k, v in timings.items()}
    record |= {"worker": f"{socket.gethostname()}:{os.getpid()}", "started": started, "finished": time.time()}
    return jsonable(record)


def _base_record(index: int, settings: Settings, spec: Mapping) -> dict:
    record = {"index": index, "family": family_of(index, settings.families), "config": settings.config()}
    record |= {"problem": spec, "verdict": "crash", "ok": False, "reference": None, "methods": [], "conditioning": None}
    return record | {"failures": [], "inconclusive": [], "notes": [], "warnings": [], "error": None}


def crash_record(index: int, settings: Settings, exc: BaseException, stage: str, spec: Mapping) -> dict:
    """The record of a problem that produced no verdict (its worker died, its task was lost)."""
    record = _base_record(index, settings, spec)
    record["error"] = {"type": type(exc).__name__, "message": _clip(str(exc), MAX_MESSAGE), "stage": stage}
    record |= {"timings": {}, "worker": None, "started": None, "finished": time.time()}
    return jsonable(record)


def _judge(spec: Mapping, settings: Settings, timings: dict, stage: list):
    clock = time.perf_counter()
    problem = build_problem(spec)
    solver, rtol, atol = solver_of(spec)
    timings["build"] = time.perf_counter() - clock
    if settings.function is None:
        stage[0], clock = "checker", time.perf_counter()
        report = check(problem, settings.methods or DEFAULT_METHODS, solver=solver, rtol=rtol, atol=atol)
        timings["checker"] = time.perf_counter() - clock
        return report
    stage[0], clock = "function", time.perf_counter()
    name = function_name(settings.function)
    candidate = as_gradient(resolve_function(settings.function)(problem), problem, method=name)
    timings["function"] = time.perf_counter() - clock
    stage[0], clock = "checker", time.perf_counter()
    references = settings.methods or FUNCTION_REFERENCES
    report = judge_gradient(
        problem, candidate, references, solver=solver, rtol=rtol, atol=atol,
        candidate_rtol=settings.function_rtol, label=name,
    )  # fmt: skip
    timings["checker"] = time.perf_counter() - clock
    return report


def _from_report(report) -> dict:
    verdict = getattr(report, "verdict", None)  # "ok" / "fail" / "inconclusive" where the Report has it
    if verdict not in VERDICTS:
        verdict = "ok" if report.ok else "fail"
    failures = [
        {
            "quantity": f.quantity,
            "method": f.method,
            "reference": f.reference,
            "value": f.value,
            "expected": f.expected,
            "deviation": f.deviation,
            "allowed": f.allowed,
            "ratio": f.ratio,
            "cause": f.cause,
            "cause_kind": cause_kind(f.cause),
        }
        for f in report.failures
    ]
    return {
        "verdict": verdict,
        "ok": verdict == "ok",
        "reference": report.reference,
        "methods": list(report.methods),
        "conditioning": report.conditioning,
        "failures": failures,
        # what left a verdict open: the references on each side and what would settle it
        "inconclusive": [
            {
                "quantity": u.quantity,
                "method": u.method,
                "support": list(u.support),
                "against": list(u.against),
                "reason": u.reason,
                "remedy": _clip(u.remedy, MAX_NOTE),
            }
            for u in list(getattr(report, "inconclusive", ()))[:MAX_NOTES]
        ],
        "notes": _clip_list(report.notes),
    }


def cause_kind(cause: str) -> str:
    """The kind of a failure's cause: its text up to the first colon.

    Examples
    --------
    >>> cause_kind("stiffness: |lambda| * span = 3e+04 with an explicit solver; use solver='BDF'")
    'stiffness'
    """
    return cause.split(":", 1)[0].strip() or "unexplained"


def jsonable(value):
    """``value`` with numpy types as Python ones and non-finite floats as ``"nan"``, ``"inf"``, ``"-inf"``.

    Examples
    --------
    >>> jsonable({"a": np.float64("nan"), "b": [np.int64(2), float("-inf")]})
    {'a': 'nan', 'b': [2, '-inf']}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _clip_list(texts) -> list[str]:
    return [_clip(str(n), MAX_NOTE) for n in list(texts)[:MAX_NOTES]]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ... (clipped)"


__all__ = [
    "VERDICTS",
    "Settings",
    "cause_kind",
    "check_methods",
    "crash_record",
    "function_name",
    "resolve_function",
    "run_problem",
]
