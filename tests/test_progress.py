"""Progress of ``check`` and ``report``: a line as each method starts and ends, on a terminal only."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from adjoint_sym.cli.common import Progress
from adjoint_sym.cli.compute import run_check
from adjoint_sym.cli.report import cmd_report
from adjoint_sym.cli.spec import load_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in a shell."""

    def isatty(self) -> bool:
        return True


def test_check_reports_each_method_as_it_runs():
    spec = load_spec(EXAMPLES / "exponential_decay.json")
    stream = Terminal()
    report = run_check(spec, spec.solver, ["adjoint", "forward", "complex-step"], Progress(True, stream))
    lines = stream.getvalue().splitlines()
    for method in ("adjoint", "forward", "complex-step"):
        start = next(i for i, line in enumerate(lines) if line.endswith(f"  {method} ..."))
        assert any(f"  {method} done in " in line for line in lines[start + 1 :]), lines
    assert report.ok


def test_no_progress_off_a_terminal_or_when_quiet():
    spec = load_spec(EXAMPLES / "exponential_decay.json")
    for progress in (Progress(True, io.StringIO()), Progress(False, Terminal())):
        run_check(spec, spec.solver, ["adjoint", "forward"], progress)
        assert progress.stream.getvalue() == ""


def test_report_shows_its_steps_and_each_method(tmp_path: Path):
    stream = Terminal()
    args = argparse.Namespace(spec=str(EXAMPLES / "exponential_decay.json"), output=str(tmp_path), solver=None,
                              rtol=None, atol=None, force=False)  # fmt: skip
    assert cmd_report(args, Progress(True, stream)) == 0
    text = stream.getvalue()
    for step in ("reading and validating", "deriving the adjoint", "comparing gradient methods", "  adjoint done in "):
        assert step in text, text
