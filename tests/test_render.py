"""What a researcher reads: complete derivations, names that cannot be confused, plain text.

The derivation is written once (``symbolic/document.py``) and printed as text, LaTeX and
Markdown; these tests read each form.  Where a printed formula carries a number (the loss's
explicit ``dl/dc``, ``dl/dt``), the test evaluates the printed text and compares it with
what the numeric gradient and the adjoint path say, so a wrong or missing term fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from test_latex import latex_problems  # the LaTeX well-formedness checker (shown to fail there)

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem, cli, gradient
from adjoint_sym.builders import lotka_volterra, two_layer
from adjoint_sym.plot import adjoint_path
from adjoint_sym.symbolic.notation import Notation, normal
from adjoint_sym.symbolic.parse import parse_expression
from adjoint_sym.symbolic.text import expression_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LV_PARAMS = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}


def _line(text: str, start: str) -> str:
    found = [line.strip() for line in text.splitlines() if line.strip().startswith(start)]
    assert found, f"no line starting with {start!r} in\n{text}"
    return found[0]


def _rhs_after(line: str, lhs: str) -> str:
    """The expression printed after ``lhs = `` in a line of clauses joined by ``,  ``."""
    clause = next(c for c in line.split(",  ") if c.startswith(lhs + " = "))
    return clause[len(lhs) + 3 :]


# -- the loss's explicit terms, in every form ---------------------------------------------------


def test_a_parameter_in_the_loss_appears_in_dL_dtheta_and_its_value_is_right():
    """L = x^2 + c y: dL/dc = a_c(t0) + dl/dc with dl/dc = y, checked against the numbers."""
    prob = Problem(lotka_volterra(), [1.0, 1.0], LV_PARAMS, 0.0, 1.0, FinalLoss("x**2 + c*y"))
    text = prob.system.adjoint().text(loss=prob.loss)
    line = _line(text, "dL/dc = ")
    assert line.startswith("dL/dc = lambda_c(t0) + dl/dc(t1)"), line
    printed = parse_expression(_rhs_after(line, "dl/dc"), prob.system.symbol_table())
    g = gradient(prob, rtol=1e-11, atol=1e-12)
    path = adjoint_path(prob, rtol=1e-11, atol=1e-12)
    h1 = dict(zip(prob.system.state, path_state_at_t1(prob)))
    explicit = float(printed.subs(h1).subs({sp.Symbol(k, real=True): v for k, v in LV_PARAMS.items()}))
    a_c = path.a_theta[-1][2]  # a_theta(t0) for c, the third parameter
    # both sides come from solves at rtol 1e-11: agreement to 1e-7 relative leaves a margin of 1e4
    assert g.dparams["c"] == pytest.approx(a_c + explicit, rel=1e-7)
    assert abs(explicit) > 0.1, "the explicit term is not negligible here: dropping it would fail the check"


def path_state_at_t1(prob: Problem) -> np.ndarray:
    from adjoint_sym.numeric.solve import forward

    return forward(prob, rtol=1e-11, atol=1e-12).at(np.array([prob.t1]))[0]


def test_a_time_in_the_loss_enters_dL_dt1_but_not_the_terminal_a_t():
    """L = t x: dL/dt1 = dl/dh . f + dl/dt; a_t(t1) = -dl/dh . f (the explicit part stays put)."""
    decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    prob = Problem(decay, [2.0], {"k": 0.7}, 0.0, 1.5, FinalLoss("t*x"))
    text = decay.adjoint().text(loss=prob.loss)
    assert "a_t(t1) = -dl/dh(t1) . f(h(t1), t1)" in text
    line = _line(text, "dL/dt1 = ")
    assert line.startswith("dL/dt1 = dl/dh(t1) . f(h(t1), t1) + dl/dt(t1)")
    d_t = parse_expression(_rhs_after(line, "dl/dt"), decay.symbol_table())
    x, k, t = decay.state[0], decay.params[0], decay.t
    x1 = 2.0 * np.exp(-0.7 * 1.5)
    # closed form: L = t1 x(t1) with x(t1) = x0 e^{-k t1}; dL/dt1 = x1 - k t1 x1
    motion = 1.5 * (-0.7 * x1)  # dl/dh . f = t1 * (-k x1)
    assert float(d_t.subs({x: x1, k: 0.7, t: 1.5})) + motion == pytest.approx(x1 - 0.7 * 1.5 * x1, rel=1e-12)
    assert gradient(prob, rtol=1e-11, atol=1e-12).dt1 == pytest.approx(x1 - 0.7 * 1.5 * x1, rel=1e-8)


@pytest.mark.parametrize("form", ["latex", "markdown", "text"])
def test_every_form_carries_the_explicit_terms_and_the_jumps(form):
    lv = lotka_volterra()
    final = FinalLoss("x**2 + c*y")
    observed = ObservationLoss([0.5, 1.0], expr="c*x")
    printed = {
        "latex": lambda loss: lv.adjoint().to_latex(loss=loss),
        "markdown": lambda loss: lv.adjoint().markdown(loss=loss),
        "text": lambda loss: lv.adjoint().text(loss=loss),
    }[form]
    one, many = printed(final), printed(observed)
    if form == "text":
        assert "dL/dc = lambda_c(t0) + dl/dc(t1),  dl/dc = y" in one
        assert "lambda(t_i-) = lambda(t_i+) + dl_i/dh(t_i)" in many
        assert "lambda_t(t_i-) = lambda_t(t_i+) - dl_i/dh(t_i) . f(h(t_i), t_i)" in many
        assert "dL/dc = lambda_c(t0) + sum_i dl_i/dc(t_i),  dl_i/dc = x" in many
    else:
        assert r"\frac{d L}{d c} &= \lambda_{c}(t_{0}) + \left. \frac{\partial \ell}{\partial c} \right|_{t_{1}}" in one
        assert r"\frac{\partial \ell}{\partial c} = y" in one
        jump = r"\lambda(t_{i}^{-}) &= \lambda(t_{i}^{+}) + \left. \frac{\partial \ell_{i}}{\partial h} \right|_{t_{i}}"
        assert jump in many
        assert r"\lambda_{t}(t_{i}^{-}) &= \lambda_{t}(t_{i}^{+}) - " in many
        assert latex_problems(one.replace("$$", "")) == [] and latex_problems(many.replace("$$", "")) == []


def test_without_a_loss_the_generic_terms_are_still_complete():
    text = lotka_volterra().adjoint().latex()
    explicit = r"\left. \frac{\partial \ell}{\partial \theta} \right|"
    assert r"\frac{d L}{d \theta} &= \lambda_{\theta}(t_{0}) + " + explicit in text
    assert r"\frac{d L}{d t_{1}} &= " in text


def test_report_md_has_the_jumps_and_the_explicit_terms(tmp_path: Path):
    spec = tmp_path / "osc.toml"
    spec.write_text(
        (EXAMPLES / "damped_oscillator_observations.toml")
        .read_text()
        .replace(
            "targets = [\n    [0.30, -1.05],\n    [-0.65, -0.55],\n    [-0.55, 0.45],\n    [0.20, 0.60],\n]",
            'expr = "zeta*x**2"',
        )
    )
    assert 'expr = "zeta*x**2"' in spec.read_text()
    assert cli.main(["report", str(spec), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert r"a(t_{i}^{-}) &= a(t_{i}^{+}) + " in report
    assert r"\frac{d L}{d \zeta} &= a_{\zeta}(t_{0}) + \sum_{i}" in report
    assert r"\frac{\partial \ell_{i}}{\partial \zeta} = x^{2}" in report


# -- names that cannot collide ----------------------------------------------------------------


def _lhs_of_derivatives(latex: str) -> list[str]:
    """The left-hand sides ``\\frac{d X}{d t}`` of the ODE lines (t is the time in these tests)."""
    return re.findall(r"^\\frac\{d (.+?)\}\{d t\} &=", latex, flags=re.MULTILINE)


CLASHES = {
    "state theta (pendulum)": (["theta", "omega"], ["g", "l"], ["omega", "-g/l*sin(theta)"]),
    "state a_x beside x": (["x", "a_x"], ["k"], ["-k*x", "x - a_x"]),
    "parameter a": (["x"], ["a"], ["-a*x"]),
    "parameter a_t": (["x"], ["a_t", "b"], ["-a_t*x + b"]),
    "states h, f, L": (["h", "f", "L"], ["k"], ["-k*h", "h - f", "f"]),
    "parameters lambda_x, a_x, mu_x": (["x"], ["a_x", "lamda_x", "mu_x"], ["-a_x*x + lamda_x - mu_x"]),
    "parameter ell, l": (["x"], ["l", "ell"], ["-l*x + ell"]),
    "names W1 and W_1": (["x"], ["W1", "W_1"], ["-W1*x + W_1"]),
}


@pytest.mark.parametrize("case", list(CLASHES))
def test_printed_names_never_collide(case):
    state, params, rhs = CLASHES[case]
    system = ODESystem.from_strings(state, params, "t", rhs)
    adj = system.adjoint()
    latex = adj.to_latex(loss=FinalLoss(state[0]))
    lhs = _lhs_of_derivatives(latex)
    assert len(lhs) == len(set(lhs)), f"two equations for one derivative: {lhs}"
    assert len(lhs) == len(state) + len(params) + len(state) + 1  # dynamics, a_theta, a, a_t
    user = {normal(adj.latex_names.get(s, sp.latex(s))) for s in [*system.state, *system.params, system.t]}
    ours = [adj.latex_names[s] for s in [*adj.a, *adj.a_theta, adj.a_t]]
    note = adj.notation
    ours += [note.adjoint.latex, note.params.latex, note.loss.latex, note.rhs.latex, note.ell.latex]
    ours += [adj.notation.adjoint_params.latex] + ([] if system.is_matrix_level else [note.state.latex])
    assert not {normal(n) for n in ours} & user, "a derivation name reads like a user name"
    assert len({normal(n) for n in ours}) == len(ours), "two derivation names read alike"
    plain = {s.name for s in [*system.state, *system.params, system.t]}
    assert not {s.name for s in [*adj.a, *adj.a_theta, adj.a_t]} & plain, "an adjoint symbol equals a user symbol"
    assert latex_problems(latex) == []


def test_a_state_named_theta_moves_the_parameter_vector():
    pendulum = ODESystem.from_strings(["theta", "omega"], ["g", "l"], "t", ["omega", "-g/l*sin(theta)"])
    latex = pendulum.adjoint().to_latex()
    assert latex.count(r"\frac{d \theta}{d t}") == 1
    assert r"\vartheta = \left(g, l\right)" in latex


def test_lotka_volterra_adjoint_is_lambda_because_a_is_a_parameter():
    note = Notation.of(lotka_volterra())
    assert (note.adjoint.plain, note.adjoint.latex) == ("lambda", r"\lambda")
    decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    assert Notation.of(decay).adjoint.plain == "a", "a is kept where nothing is named like it"


# -- plain text and matrix expressions ---------------------------------------------------------


def test_plain_derive_of_sir_is_free_of_latex(capsys):
    assert cli.main(["derive", str(EXAMPLES / "sir.toml")]) == 0
    out = capsys.readouterr().out
    assert "\\" not in out and "_{" not in out and "{" not in out, out
    assert "da_beta/dt = -I*S*a_I + I*S*a_S" in out


def test_matrix_expressions_print_as_maths():
    adj = two_layer(2, 50, input_power=3).adjoint()
    text, latex = adj.text(), adj.to_latex()
    for leak in ("Lambda", "HadamardProduct", "HadamardPower", "_y", "Dummy", ".T*"):
        assert leak not in text and leak not in latex, leak
    assert "z = W1*h.^3 + b1" in text and "dh/dt = W2*tanh(z) + b2" in text
    assert "da_b1/dt = -((W2^T*a) .* (1 - tanh(z)**2))" in text
    assert r"z &= W_{1} h^{\circ {3}} + b_{1}" in latex
    assert r"\left(1 - \tanh^{2}{\left(z \right)}\right)" in latex
    assert latex_problems(latex) == []


def test_expression_text_writes_transposes_and_hadamard_products():
    W, h, a = sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("h", 2, 1), sp.MatrixSymbol("a", 2, 1)
    from sympy.matrices.expressions.hadamard import HadamardProduct

    assert expression_text(W.T * HadamardProduct(a, h)) == "W^T*(a .* h)"


# -- the README shows what the code prints ----------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def _fenced(language: str) -> list[str]:
    """The README's fenced blocks tagged ``language`` (``""``: untagged), read fence by fence."""
    blocks, current, tag = [], None, None
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if current is None:
                current, tag = [], line[3:].strip()
            else:
                if tag == language:
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_readme_latex_is_what_adj_latex_prints():
    lv = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"])
    (shown,) = [block for block in _fenced("latex") if r"\lambda_{x}" in block]
    assert shown.strip() == lv.adjoint().latex()


def test_the_readme_plain_text_excerpts_are_what_the_code_prints():
    lv = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"])
    printed = lv.adjoint().text(loss="x**2 + c*y")
    spiral = two_layer(2, 50, input_power=3).adjoint().text()
    excerpts = [block for block in _fenced("") if "dL/dc = lambda_c(t0)" in block or "da_W1/dt" in block]
    assert len(excerpts) == 2
    for block in excerpts:
        for line in block.splitlines():
            if line.strip() and line.strip() != "...":
                assert line in printed.splitlines() or line in spiral.splitlines(), line
