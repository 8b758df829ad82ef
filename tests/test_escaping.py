"""User text in every output format: escaped for the terminal, Markdown, HTML and LaTeX."""

from __future__ import annotations

import pytest

from adjoint_sym.symbolic.names import escape, markdown_code, markdown_text, shown, shown_value
from adjoint_sym.verify.report import Report

HOSTILE = "x_1 <script>&|$#{}^~\\%\x1b\u202e"


def _report(quantity: str) -> Report:
    values = {"forward": {quantity: 1.0}, "adjoint": {quantity: 1.0}}
    return Report(
        verdict="ok",
        reference="forward",
        methods=("forward", "adjoint"),
        quantities=(quantity,),
        values=values,
        errors={"adjoint": {quantity: 0.0}},
        deviations={"adjoint": {quantity: 0.0}},
        failures=(),
        accuracies={"forward": 1e-8, "adjoint": 1e-8},
        conditioning=1.0,
    )


def test_latex_table_escapes_every_special_character():
    table = _report(HOSTILE).latex()
    row = next(line for line in table.splitlines() if line.startswith("x"))
    assert row.startswith(r"x\_1 \textless{}script\textgreater{}\&|\$\#\{\}\textasciicircum{}\textasciitilde{}")
    assert r"\textbackslash{}\%" in row
    assert "\x1b" not in table and "\u202e" not in table


def test_markdown_table_cells_cannot_break_the_table_or_inject_html():
    text = _report(HOSTILE).markdown()
    row = next(line for line in text.splitlines() if line.startswith("| x"))
    assert "&lt;script&gt;&amp;\\|" in row and "<script>" not in text
    assert row.count(" | ") == 2  # three cells: the quantity's '|' is escaped
    assert "\\u001b\\u202e" in row


def test_html_escapes_the_quantity():
    html = _report(HOSTILE)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("function", "text", "expected"),
    [
        (escape, "a\x00b\tc\n", "a\\x00b\tc\n"),
        (escape, "\ud800", "\\ud800"),
        (escape, "\U000e0001", "\\U000e0001"),
        (shown, "x" * 10, "'xxxxxxxxxx'"),
        (markdown_text, "*a* [b](c) `d`", "\\*a\\* \\[b\\](c) \\`d\\`"),
        (markdown_code, "line\nbreak", "` line break `"),
    ],
)
def test_text_helpers(function, text, expected):
    assert function(text) == expected


def test_shown_value_survives_what_repr_refuses():
    assert shown_value(10**5000) == "<int too large to show>"
    assert shown_value("\x1b[2J") == "'\\x1b[2J'"
