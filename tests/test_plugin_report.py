"""A failing gradient check under pytest reads as the counterexample and the table.

The plugin unlinks adjoint_sym's and hypothesis' frames from a ``GradientMismatchError``'s
traceback, so the report is the user's test line and the message; ``--fulltrace`` keeps
every frame, and errors other than a mismatch keep theirs.
"""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis")

from test_testing import plugin_args

pytest_plugins = ["pytester"]

FAILING = """
from adjoint_sym import gradient
from adjoint_sym.testing import check_gradient_function


def off_by_one_percent(prob):
    g = gradient(prob)
    return {"loss": g.loss, "dh0": 1.01 * g.dh0, "dparams": g.dparams, "dt0": g.dt0, "dt1": g.dt1,
            "dtimes": g.dtimes}


def test_through_the_fixture(gradient_checker):
    gradient_checker(off_by_one_percent, max_examples=5)


def test_called_directly():
    check_gradient_function(off_by_one_percent, max_examples=5)


def test_not_a_mismatch(gradient_checker):
    gradient_checker(lambda prob: 42, max_examples=2)
"""

LIBRARY_FRAMES = ("gradient_function.py:", "strategies.py:", "pytest_plugin.py:", "hypothesis/core.py:")


def _section(lines: list[str], test: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.strip("_ ") == test)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("____")), len(lines))
    return lines[start:end]


def test_a_mismatch_reports_the_table_not_the_library_frames(pytester):
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_inprocess(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    lines = result.stdout.lines
    for test in ("test_through_the_fixture", "test_called_directly"):
        section = _section(lines, test)
        text = "\n".join(section)
        assert "| quantity | yours | reference (complex-step)" in text and "**FAIL**" in text, text
        assert "system: " in text and "h0: " in text, "the shrunk counterexample is shown"
        leaked = [frame for frame in LIBRARY_FRAMES if frame in text]
        assert leaked == [], f"library frames in the report: {leaked}\n{text}"
        # the message (a table of a few rows and the counterexample) plus the test's own lines
        assert len(section) < 50, text
    other = "\n".join(_section(lines, "test_not_a_mismatch"))
    assert "InvalidModelError" in other and "gradient_function.py:" in other, "other errors keep their frames"


def test_fulltrace_keeps_every_frame(pytester):
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_inprocess(
        *plugin_args(), "-p", "no:cacheprovider", "--fulltrace", "-k", "test_through_the_fixture"
    )
    result.assert_outcomes(failed=1, deselected=2)
    text = "\n".join(result.stdout.lines)
    assert "gradient_function.py:" in text and "strategies.py:" in text
