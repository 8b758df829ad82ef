"""The LaTeX adjoint_sym prints compiles, and rich display renders.

Without a TeX installation the output is checked for what makes LaTeX fail: unbalanced
braces, ``\\begin``/``\\end`` pairs that do not match, ``\\left`` without its ``\\right`` (or
one crossing a brace group), math-only commands inside ``\\text{...}``, and SymPy internals
(``Lambda``, dummies) leaking into the printout.  When ``pdflatex`` or ``latex`` is on PATH,
the block is also compiled in an ``amsmath`` document.  The checker is shown to fail on
broken input, so a pass means something.
"""

from __future__ import annotations

import html.parser
import re
import shutil
import subprocess
from typing import ClassVar

import numpy as np
import pytest

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem, gradient
from adjoint_sym.builders import lotka_volterra, neural_ode, sir, two_layer

#: The notebook's model (examples/neural_ode_walkthrough.ipynb) first, then scalar and
#: time-dependent systems whose printouts exercise Greek names, subscripts and t terms.
SYSTEMS = {
    "notebook spiral network": lambda: two_layer(2, 8, input_power=3),
    "two-layer with time input": lambda: two_layer(3, 4, time="input", activation="sigmoid"),
    "tanh layer W(t) = W + tV": lambda: neural_ode(2, time="linear"),
    "Lotka-Volterra": lotka_volterra,
    "SIR": sir,
    "forced oscillator": lambda: ODESystem.from_strings(
        ["x", "v"], ["omega", "zeta"], "t", ["v", "-omega**2*x - zeta*v + sin(t)"]
    ),
}

TOKEN = re.compile(r"\\(begin|end)\{([^}]*)\}|\\(left|right)(?![a-zA-Z])|\\[{}]|\\[a-zA-Z]+|\\.|[{}]", re.DOTALL)
MATH_ONLY = re.compile(r"[\^_]|\\(frac|left|right|partial|circ|mathbf|theta|quad)\b")


def latex_problems(source: str) -> list[str]:
    """Reasons ``source`` would not compile (empty when it looks well-formed)."""
    problems: list[str] = []
    stack: list[tuple[str, str]] = []  # ("{", "") / ("env", name) / ("left", "")
    for match in TOKEN.finditer(source):
        env_kind, env_name, delim = match.group(1), match.group(2), match.group(3)
        token = match.group(0)
        if env_kind == "begin":
            stack.append(("env", env_name))
        elif env_kind == "end":
            if not stack or stack[-1] != ("env", env_name):
                problems.append(f"\\end{{{env_name}}} closes {stack[-1] if stack else 'nothing'}")
                return problems
            stack.pop()
        elif delim == "left":
            stack.append(("left", ""))
        elif delim == "right":
            if not stack or stack[-1][0] != "left":
                problems.append(f"\\right at offset {match.start()} closes {stack[-1] if stack else 'nothing'}")
                return problems
            stack.pop()
        elif token == "{":
            stack.append(("{", ""))
        elif token == "}":
            if not stack or stack[-1][0] != "{":
                problems.append(f"}} at offset {match.start()} closes {stack[-1] if stack else 'nothing'}")
                return problems
            stack.pop()
    if stack:
        problems.append(f"left open at the end: {stack}")
    for body in _text_arguments(source):
        if MATH_ONLY.search(body):
            problems.append(f"math inside \\text{{{body}}} (a TeX error in text mode)")
    for leak in ("Lambda", "Dummy", "HadamardPower", "_z", "\\operatorname{Lambda}"):
        if leak in source:
            problems.append(f"SymPy internals leaked into the LaTeX: {leak!r}")
    return problems


def _text_arguments(source: str) -> list[str]:
    out = []
    for match in re.finditer(r"\\text\{", source):
        depth, i = 1, match.end()
        while i < len(source) and depth:
            depth += {"{": 1, "}": -1}.get(source[i], 0)
            i += 1
        out.append(source[match.end() : i - 1])
    return out


# -- the checker can fail ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (r"\begin{align} x \end{aligned}", "closes"),
        (r"\begin{align} \left( x \end{align}", "closes"),
        (r"\frac{a}{b", "left open"),
        (r"a}", "closes nothing"),
        (r"\left( x \right) \right)", "closes nothing"),
        (r"{\left( x } \right)", "closes"),
        (r"\text{a^T df/dx}", "math inside"),
        (r"W_{2} \operatorname{Lambda}(h)", "internals"),
    ],
)
def test_checker_catches_broken_latex(broken, reason):
    assert any(reason in p for p in latex_problems(broken)), latex_problems(broken)


def test_checker_accepts_escaped_braces_and_nesting():
    assert (
        latex_problems(r"\begin{align} \left\{ \frac{a}{b} \right\} &= \left( \left[ x \right] \right) \end{align}")
        == []
    )


# -- what adjoint_sym prints ------------------------------------------------------------------


@pytest.fixture(params=list(SYSTEMS), scope="module")
def system(request):
    return SYSTEMS[request.param]()


@pytest.mark.parametrize("bold", [False, True])
def test_adjoint_to_latex_is_well_formed(system, bold):
    source = system.adjoint().to_latex(bold_vectors=bold)
    assert source.startswith(r"\begin{align}") and source.rstrip().endswith(r"\end{align}")
    assert latex_problems(source) == []
    assert source.count(r"\frac{d") >= 3, "dynamics and adjoint lines are present"


def test_every_latex_printout_is_well_formed(system):
    adj = system.adjoint()
    for name, source in [
        ("system.to_latex()", system.to_latex()),
        ("system.latex()", system.latex()),
        ("augmented.to_latex()", system.augmented().to_latex()),
        ("adjoint.latex(aligned)", adj.latex(environment="aligned")),
        ("adjoint.markdown()", adj.markdown()),
        ("jacobian form", system.adjoint(form="jacobian").to_latex()) if system.n_params <= 20 else ("", ""),
    ]:
        assert latex_problems(source) == [], (name, latex_problems(source))


def test_symbols_are_named_as_the_user_named_them():
    source = sir().adjoint().to_latex()
    for printed in (r"\beta", r"\gamma", "a_{S}", "a_{I}", "a_{R}", r"a_{\beta}", r"a_{\gamma}"):
        assert printed in source
    bold = two_layer(2, 3).adjoint().to_latex(bold_vectors=True)
    assert r"\mathbf{W}_{1}" in bold or r"\mathbf{W_{1}}" in bold


@pytest.mark.skipif(not (shutil.which("pdflatex") or shutil.which("latex")), reason="no latex/pdflatex on PATH")
def test_notebook_adjoint_compiles_with_latex(tmp_path):
    engine = shutil.which("pdflatex") or shutil.which("latex")
    body = "\n\n".join(
        [
            two_layer(2, 8, input_power=3).adjoint().to_latex(),
            two_layer(2, 8, input_power=3).adjoint().to_latex(bold_vectors=True),
            sir().adjoint().to_latex(),
        ]
    )
    doc = "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n" + body + "\n\\end{document}\n"
    (tmp_path / "adjoint.tex").write_text(doc, encoding="utf-8")
    done = subprocess.run(
        [engine, "-interaction=nonstopmode", "-halt-on-error", "adjoint.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]


# -- rich display -----------------------------------------------------------------------------


def test_repr_latex_of_systems_and_adjoints_renders(system):
    for obj in (system, system.augmented(), system.adjoint()):
        source = obj._repr_latex_()
        assert source.startswith("$$") and source.endswith("$$"), type(obj).__name__
        assert latex_problems(source.strip("$")) == [], (type(obj).__name__, latex_problems(source))


class _Tags(html.parser.HTMLParser):
    VOID: ClassVar[frozenset[str]] = frozenset({"br", "hr", "img", "meta", "input", "col"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def html_tags(source: str) -> _Tags:
    parser = _Tags()
    parser.feed(source)
    parser.close()
    if parser.stack:
        parser.errors.append(f"left open: {parser.stack}")
    return parser


def test_html_checker_can_fail():
    assert html_tags("<table><tr><td>x</tr></table>").errors


def test_gradient_and_report_render_as_html():
    from adjoint_sym import verify

    rng = np.random.default_rng(3)
    net = two_layer(2, 3)
    params = {name: 0.3 * rng.standard_normal(shape) for name, shape in net.param_shapes.items()}
    prob = Problem(net, [0.5, -0.2], params, 0.0, 0.5, ObservationLoss([0.25, 0.5], targets=[[0.4, 0.0], [0.3, 0.1]]))
    g = gradient(prob)
    tags = html_tags(g._repr_html_())
    assert tags.errors == [] and "table" in tags.seen
    assert "dL/dW1[0,0]" in g._repr_html_()
    report = verify.check(prob, ["adjoint", "forward"])
    tags = html_tags(report._repr_html_())
    assert tags.errors == [] and "table" in tags.seen
    lv = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.0, FinalLoss("x"))
    assert "dL/dt1" in gradient(lv)._repr_html_()


def test_report_latex_table_is_well_formed():
    from adjoint_sym import verify

    sysm = ODESystem.from_strings(["y_1", "x"], ["k_1", "beta"], "t", ["-k_1*y_1 + x", "-beta*x"])
    prob = Problem(sysm, [1.0, 0.5], {"k_1": 0.5, "beta": 0.2}, 0.0, 1.0, FinalLoss("y_1**2"))
    source = verify.check(prob, ["adjoint", "forward"]).latex()
    assert source.startswith(r"\begin{tabular}") and latex_problems(source) == []
    assert "y_1" not in source.replace(r"y\_1", ""), "underscores of names are escaped in the table"
