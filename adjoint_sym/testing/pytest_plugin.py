"""A pytest plugin: command-line options, fixtures and hypothesis profiles.

Installed as the ``pytest11`` entry point ``adjoint_sym`` (or enabled with
``-p adjoint_sym.testing.pytest_plugin``), it adds

* options ``--adjoint-sym-examples N`` (examples per property; default: the hypothesis
  profile's), ``--adjoint-sym-rtol X`` and ``--adjoint-sym-atol X`` (the allowed
  deviation ``atol + rtol*|reference|`` of :func:`adjoint_sym.testing.check_gradient_function`);
* fixtures ``adjoint_sym_settings`` (those values) and ``gradient_checker`` (the check
  with them applied);
* hypothesis profiles ``adjoint-sym-ci`` (25 examples, derandomized: a fixed set of
  problems per run) and ``adjoint-sym-thorough`` (300 examples), for
  ``--hypothesis-profile adjoint-sym-ci``.

A test in a user's project::

    def test_my_adjoint(gradient_checker):
        gradient_checker(my_gradient_function)

When such a test fails, the report shows the test's own frame and the
:class:`~adjoint_sym.GradientMismatchError`'s message (the shrunk counterexample and the
table of quantities), not the frames of adjoint_sym and hypothesis it passed through;
``pytest --fulltrace`` shows them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..errors import GradientMismatchError

#: Frames from these folders are library plumbing around a gradient mismatch.
_LIBRARY_ROOTS = (Path(__file__).resolve().parents[1],)


@dataclass(frozen=True)
class CheckSettings:
    """What the command line set for gradient checks (``None``: the default)."""

    max_examples: int | None
    rtol: float
    atol: float


def pytest_addoption(parser: pytest.Parser) -> None:
    from .gradient_function import DEFAULT_ATOL, DEFAULT_RTOL

    group = parser.getgroup("adjoint_sym", "adjoint_sym gradient property tests")
    group.addoption(
        "--adjoint-sym-examples",
        type=_positive_int,
        default=None,
        metavar="N",
        help="examples per gradient property (default: the hypothesis profile's max_examples)",
    )
    group.addoption(
        "--adjoint-sym-rtol",
        type=_positive_float,
        default=DEFAULT_RTOL,
        metavar="X",
        help=f"allowed relative deviation from the reference gradient (default {DEFAULT_RTOL:g})",
    )
    group.addoption(
        "--adjoint-sym-atol",
        type=_positive_float,
        default=DEFAULT_ATOL,
        metavar="X",
        help=f"allowed absolute deviation from the reference gradient (default {DEFAULT_ATOL:g})",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be a positive number, got {text}")
    return value


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: register before hypothesis' own plugin loads --hypothesis-profile
    try:
        from .strategies import register_profiles
    except ImportError:  # hypothesis is an optional extra; fixtures say so when used
        return
    register_profiles()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A gradient mismatch reports the user's frames and the message, not the library's frames."""
    excinfo = call.excinfo
    if excinfo is not None and excinfo.errisinstance(GradientMismatchError) and not item.config.getoption("fulltrace"):
        _drop_plumbing(excinfo)
    return (yield)


def _drop_plumbing(excinfo: pytest.ExceptionInfo) -> None:
    """Unlink adjoint_sym's and hypothesis' frames from the exception's traceback.

    pytest cuts a traceback at the test function by following the raw ``tb_next`` links,
    so the frames are taken out of that chain (Python lets ``tb_next`` be assigned), the
    last frame kept where the error was raised if every other frame is plumbing.
    """
    raw, tb = [], excinfo.tb
    while tb is not None:
        raw.append(tb)
        tb = tb.tb_next
    kept = [tb for tb in raw if not _is_plumbing(Path(tb.tb_frame.f_code.co_filename))] or raw[-1:]
    for a, b in zip(kept, [*kept[1:], None]):
        a.tb_next = b
    excinfo.value.__traceback__ = kept[0]
    excinfo.traceback = type(excinfo.traceback)(kept[0])


def _is_plumbing(path: Path) -> bool:
    roots = [*_LIBRARY_ROOTS, *_hypothesis_root()]
    return any(path.is_relative_to(root) for root in roots)


def _hypothesis_root() -> list[Path]:
    try:
        import hypothesis
    except ImportError:  # the optional extra: no hypothesis frames to hide
        return []
    return [Path(hypothesis.__file__).resolve().parent]


@pytest.fixture(scope="session")
def adjoint_sym_settings(pytestconfig: pytest.Config) -> CheckSettings:
    """The gradient-check settings of this run (from the command line)."""
    return CheckSettings(
        max_examples=pytestconfig.getoption("--adjoint-sym-examples"),
        rtol=pytestconfig.getoption("--adjoint-sym-rtol"),
        atol=pytestconfig.getoption("--adjoint-sym-atol"),
    )


@pytest.fixture
def gradient_checker(adjoint_sym_settings: CheckSettings) -> Callable[..., None]:
    """:func:`adjoint_sym.testing.check_gradient_function` with this run's settings.

    Keyword arguments given to the checker override the command line.
    """
    pytest.importorskip("hypothesis", reason="gradient_checker needs hypothesis: pip install adjoint_sym[hypothesis]")
    from .gradient_function import check_gradient_function

    def checker(fn, **options) -> None:
        options.setdefault("max_examples", adjoint_sym_settings.max_examples)
        options.setdefault("rtol", adjoint_sym_settings.rtol)
        options.setdefault("atol", adjoint_sym_settings.atol)
        check_gradient_function(fn, **options)

    return checker
