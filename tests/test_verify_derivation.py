"""verify_derivation decides claimed adjoint pieces: proof, counterexample, or an honest "undecided".

Every expected verdict below comes from the mathematics (the reason is written beside it),
never from a run of the code.  The correct pieces are those of Chen et al. 2018 (eqs. 4-5,
Algorithm 1, appendix B) in the convention a(t) = dL/dh(t); each wrong one is a mistake
named in the issue (flipped sign, missing transpose, dropped term, wrong terminal value,
limits reversed, missing jump, a_t started at +dL/dt1).  Timing targets live in
benchmarks/bench_verify_derivation.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from adjoint_sym import (
    CallableLoss,
    FinalLoss,
    InvalidModelError,
    ObservationLoss,
    ODESystem,
    Problem,
    UnsupportedExpressionError,
    gradient,
    load_spec,
    verify_derivation,
)
from adjoint_sym.builders import neural_ode
from adjoint_sym.cli import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "derivations" / "corpus"

LV = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"])
LV_PROB = Problem(LV, [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 2.0, FinalLoss("x**2 + y**2"))
LV_ADJOINT = ["-a_x*(a - b*y) - a_y*d*y", "a_x*b*x - a_y*(d*x - c)"]  # -J^T a, J = df/d(x, y)
LV_INTEGRAND = ["-a_x*x", "a_x*x*y", "a_y*y", "-a_y*x*y"]  # -a^T df/d(a, b, c, d)
PEND = ODESystem.from_strings(["q", "p"], ["g", "l"], "t", ["p", "-(g/l)*sin(q)"])
PEND_PROB = Problem(PEND, [1.0, 0.0], {"g": 9.81, "l": 2.0}, 0.0, 1.5, FinalLoss("q**2 + p"))
Z0, Z1 = "W[0, 0]*x + W[0, 1]*y + b", "W[1, 0]*x + W[1, 1]*y"
LAYER = ODESystem.from_strings(
    ["x", "y"], {"W": (2, 2), "b": ()}, "t", [f"tanh({Z0})", f"tanh({Z1}) + sin(t)"], name="tanh layer"
)
LAYER_PROB = Problem(LAYER, [0.5, -0.3], {"W": [[0.4, -1.2], [0.9, 0.3]], "b": 0.2}, 0.0, 1.0, FinalLoss("x*y + t"))
LAYER_ADJOINT = [
    f"-a_x*(1 - tanh({Z0})**2)*W[0, 0] - a_y*(1 - tanh({Z1})**2)*W[1, 0]",
    f"-a_x*(1 - tanh({Z0})**2)*W[0, 1] - a_y*(1 - tanh({Z1})**2)*W[1, 1]",
]
DECAY = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
OBS_PROB = Problem(DECAY, [2.0], {"k": 0.7}, 0.0, 3.0, ObservationLoss([1.0, 2.0, 3.0], targets=[[1.0], [0.5], [0.2]]))

# (id, problem, claim, piece -> expected holds, the diagnosis must contain, why)
CASES = [
    ("lv-correct", LV_PROB, {"adjoint": LV_ADJOINT, "terminal": ["2*x", "2*y"], "param_integrand": LV_INTEGRAND,
     "adjoint_time": "0", "terminal_time": "-(2*x*(a*x - b*x*y) + 2*y*(d*x*y - c*y))",
     "dL_dt0": "-(a_x*(a*x - b*x*y) + a_y*(d*x*y - c*y))", "dL_dt1": "a_x*(a*x - b*x*y) + a_y*(d*x*y - c*y)"},
     True, None, "eqs. 4-5 and Algorithm 1 instantiated on LV; dL/dt1 = a(t1).f, L has no explicit t"),
    ("lv-rearranged", LV_PROB, {"adjoint": ["a_x*(b*y - a) - d*y*a_y", "b*x*a_x + (c - d*x)*a_y"]}, True, None,
     "the same polynomials, regrouped"),
    ("lv-flipped", LV_PROB, {"adjoint": ["a_x*(a - b*y) + a_y*d*y", "-a_x*b*x + a_y*(d*x - c)"]}, False,
     "flipped sign", "+J^T a"),
    ("lv-transpose", LV_PROB, {"adjoint": ["-(a - b*y)*a_x + b*x*a_y", "-d*y*a_x - (d*x - c)*a_y"]}, False,
     "missing transpose", "-J a; J is not symmetric"),
    ("lv-dropped", LV_PROB, {"adjoint": ["-a_x*(a - b*y)", "a_x*b*x - a_y*(d*x - c)"]}, False, "dropped term -a_y*d*y",
     "the a_y d y term left out"),
    ("lv-terminal-sign", LV_PROB, {"terminal": ["-2*x", "-2*y"]}, False, "sign flipped", "a = -dL/dh"),
    ("lv-terminal-factor", LV_PROB, {"terminal": ["x", "y"]}, False, "1/2 times", "d(x^2)/dx is 2x"),
    ("lv-terminal-missing", LV_PROB, {"terminal": ["0", "0"]}, False, "terminal value missing", "a(t1) = 0"),
    ("lv-limits", LV_PROB, {"param_integrand": LV_INTEGRAND, "param_limits": ["t0", "t1"]}, False,
     "limits reversed", "eq. 5's integrand belongs to t1 -> t0"),
    ("lv-limits-ok", LV_PROB, {"param_integrand": [f"-({g})" for g in LV_INTEGRAND], "param_limits": ["t0", "t1"]},
     True, None, "int_{t0}^{t1} a^T f_theta = -int_{t1}^{t0} a^T f_theta"),
    ("lv-at-plus", LV_PROB, {"terminal_time": "2*x*(a*x - b*x*y) + 2*y*(d*x*y - c*y)"}, False, "+dL/dt1",
     "Algorithm 1 starts a_t at -dL/dt1"),
    ("lv-dt0-sign", LV_PROB, {"dL_dt0": "a_x*(a*x - b*x*y) + a_y*(d*x*y - c*y)"}, False, "flipped sign",
     "dL/dt0 = -a(t0).f(h0, t0)"),
    ("pend-half-angle", PEND_PROB, {"adjoint": ["a_p*(g/l)*(1 - 2*sin(q/2)**2)", "-a_q"]}, True, None,
     "cos q = 1 - 2 sin^2(q/2)"),
    ("pend-double-angle", PEND_PROB, {"adjoint": ["a_p*(g/l)*(cos(q)**2 - sin(q)**2)", "-a_q"]}, False, None,
     "cos^2 q - sin^2 q = cos 2q, not cos q"),
    ("layer-correct", LAYER_PROB, {"adjoint": LAYER_ADJOINT, "terminal": ["y", "x"], "adjoint_time": "-a_y*cos(t)",
     "dL_dt1": f"y*tanh({Z0}) + x*(tanh({Z1}) + sin(t)) + 1"}, True, None, "explicit t in f and in L"),
    ("layer-sech", LAYER_PROB, {"adjoint": [
        f"-a_x*W[0, 0]/cosh({Z0})**2 - a_y*W[1, 0]/cosh({Z1})**2",
        f"-a_x*W[0, 1]/cosh({Z0})**2 - a_y*W[1, 1]/cosh({Z1})**2"]}, True, None, "1 - tanh^2 = 1/cosh^2"),
    ("layer-transpose", LAYER_PROB, {"adjoint": [
        f"-a_x*(1 - tanh({Z0})**2)*W[0, 0] - a_y*(1 - tanh({Z0})**2)*W[0, 1]",
        f"-a_x*(1 - tanh({Z1})**2)*W[1, 0] - a_y*(1 - tanh({Z1})**2)*W[1, 1]"]}, False,
     "missing transpose", "W, not W^T"),
    ("layer-dt1-explicit", LAYER_PROB, {"dL_dt1": f"y*tanh({Z0}) + x*(tanh({Z1}) + sin(t))"}, False,
     "explicit dL/dt1", "L = x y + t: dL/dt1 has the +1"),
    ("layer-at-explicit", LAYER_PROB, {"terminal_time": f"-(y*tanh({Z0}) + x*(tanh({Z1}) + sin(t)) + 1)"}, False,
     "belongs to t1", "the explicit dL/dt1 is not part of a_t(t1)"),
    ("obs-jumps", OBS_PROB, {"adjoint": ["k*a_x"], "jumps": ["2*(x - target_x)"]}, True, None, "appendix B"),
    ("obs-no-jumps", OBS_PROB, {"adjoint": ["k*a_x"], "terminal": ["2*(x - target_x)"]}, False, "missing jump",
     "the loss reads x at t = 1, 2 too"),
    ("obs-jump-sign", OBS_PROB, {"jumps": ["-2*(x - target_x)"]}, False, "jump sign flipped", "-dL/dh(t_i)"),
    ("obs-jump-zero", OBS_PROB, {"jumps": ["0"]}, False, "missing jump", "no jump at all"),
]  # fmt: skip


@pytest.mark.parametrize(("problem", "claim", "holds", "named"), [c[1:5] for c in CASES], ids=[c[0] for c in CASES])
def test_every_verdict_is_the_mathematics(problem, claim, holds, named):
    verdict = verify_derivation(problem, claim)
    assert verdict.holds is holds, verdict.text()
    if named is not None:
        assert any(named in (p.diagnosis or "") for p in verdict.pieces), verdict.text()
    for piece in verdict.pieces:
        if piece.holds:
            assert piece.how.startswith("symbolic") and {r.split(": ")[-1] for r in piece.residual} <= {
                "0",
                "[0, 0]",
                "[0, 0, 0, 0]",
            }
        elif piece.holds is False:
            assert piece.counterexample["point"]["claimed"] != piece.counterexample["point"]["expected"]


def test_a_failing_piece_comes_with_a_point_and_a_rejected_gradient_with_both_numbers():
    verdict = verify_derivation(LV_PROB, adjoint=["a_x*(a - b*y) + a_y*d*y", "-a_x*b*x + a_y*(d*x - c)"])
    piece = verdict["adjoint"]
    assert piece.how == "counterexample: nonzero at a point; gradient rejected"
    point, grad = piece.counterexample["point"], piece.counterexample["gradient"]
    # at the point, +J^T a is the negative of -J^T a: the claimed value is minus the correct one
    assert point["claimed"] == pytest.approx(-point["expected"], rel=1e-12)
    assert set(point["at"]) <= {"x", "y", "a", "b", "c", "d", "a_x", "a_y"}
    # the references were run independently, and the claim's number is not theirs
    ref = gradient(LV_PROB, "forward", rtol=1e-10, atol=1e-12).quantities(["x", "y"])
    assert grad["problem"] == "the given problem"
    assert grad["references"]["forward"] == pytest.approx(ref[grad["quantity"]], rel=1e-6)
    assert grad["references"]["complex-step"] == pytest.approx(ref[grad["quantity"]], rel=1e-6)
    assert grad["deviation"] > 0.1 and abs(grad["claimed"] - ref[grad["quantity"]]) > 0.1 * abs(ref[grad["quantity"]])
    assert verdict.experiment["agrees"] is False and verdict.exit_code == 1


def test_a_wrong_piece_that_does_not_move_the_given_problem_is_looked_for_elsewhere():
    # h0 = (0, 0) is an equilibrium: x = y = 0 throughout, so every integrand a^T df/dtheta
    # vanishes along it and a wrong one gives the right (zero) dL/da there; the point shows
    # the error, and a perturbed problem (h0 moved off the equilibrium) shows it in the gradient.
    prob = Problem(LV, [0.0, 0.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.0, FinalLoss("x + y"))
    wrong = ["-2*a_x*x", "a_x*x*y", "a_y*y", "-a_y*x*y"]  # factor 2 on dL/da's integrand
    piece = verify_derivation(prob, param_integrand=wrong)["param_integrand"]
    assert piece.holds is False
    assert "perturbed" not in piece.counterexample.get("note", "")
    grad = piece.counterexample["gradient"]
    assert grad["problem"].startswith("the problem with h0 = [")  # a perturbed problem exposed it
    assert grad["quantity"] == "dL/da"


def test_claimed_equations_that_blow_up_are_rejected_with_the_reason():
    # da/dt = -300 k a_x grows like exp(150 t) backward in time: past float range over [0, 30]
    prob = Problem(DECAY, [1.0], {"k": 0.5}, 0.0, 30.0, FinalLoss("x"))
    verdict = verify_derivation(prob, adjoint=["-300*k*a_x"])
    piece = verdict["adjoint"]
    assert piece.holds is False and piece.counterexample["point"] is not None
    assert "could not be integrated on the given and 3 perturbed problems" in piece.counterexample["note"]
    assert verdict.experiment["agrees"] is False and verdict.experiment["error"]
    assert "could not be integrated" in verdict.text()


def test_undecided_is_said_and_never_called_a_proof():
    # cos q = 1 - 2 sin^2(q/2) needs the exponential stage; 1e-4 s of budget cannot reach it
    verdict = verify_derivation(PEND_PROB, adjoint=["a_p*(g/l)*(1 - 2*sin(q/2)**2)", "-a_q"], budget=1e-4)
    piece = verdict["adjoint"]
    assert piece.holds is None and verdict.holds is None and verdict.exit_code == 4
    assert piece.how.startswith("undecided: no disagreement at") and "not a proof" in piece.how
    assert piece.counterexample is None


def test_latex_round_trip_to_a_verdict():
    claim = {
        "adjoint_latex": [r"\frac{d a_x}{dt} = -a_{x} \left(a - b y\right) - a_{y} d y", r"a_x b x - a_y (d x - c)"],
        "terminal_latex": ["2 x", "-2 y"],
    }
    verdict = verify_derivation(LV_PROB, claim)
    assert verdict["adjoint"].holds is True  # "d y" read as d*y, "a_x (...)" as a product
    assert verdict["terminal"].holds is False
    assert verdict["terminal"].claimed == ("2 x", "-2 y")
    assert r"\\" not in verdict.latex() or "tabular" in verdict.latex()


def test_renamed_adjoint_symbols_and_a_matrix_level_state():
    costate = verify_derivation(PEND_PROB, adjoint=["lam_p*(g/l)*cos(q)", "-lam_q"], adjoint_symbols=["lam_q", "lam_p"])
    assert costate.holds is True
    rng = np.random.default_rng(0)
    net = Problem(neural_ode(2), [0.5, -0.3], {"W": rng.normal(size=(2, 2)), "b": rng.normal(size=(2, 1))},
                  0.0, 1.0, FinalLoss("h[0]**2 + h[1]"))  # fmt: skip
    z = ["W[0,0]*h[0] + W[0,1]*h[1] + b[0]", "W[1,0]*h[0] + W[1,1]*h[1] + b[1]"]
    adjoint = [f"-a[0]*(1 - tanh({z[0]})**2)*W[0,{j}] - a[1]*(1 - tanh({z[1]})**2)*W[1,{j}]" for j in range(2)]
    assert verify_derivation(net, adjoint=adjoint, terminal=["2*h[0]", "1"]).holds is True
    wrong = verify_derivation(net, adjoint=[e.replace("W[0,1]", "W[1,0]", 1) for e in adjoint])
    assert wrong.holds is False


def test_sympy_expressions_from_python_are_checked_like_text():
    x, y = LV.state
    a_x, a_y = sp.symbols("a_x a_y", real=True)
    a, b, c, d = LV.params
    verdict = verify_derivation(LV_PROB, adjoint=[-a_x * (a - b * y) - a_y * d * y, a_x * b * x - a_y * (d * x - c)])
    assert verdict.holds is True
    with pytest.raises(InvalidModelError, match=r"claim\.terminal\[0\]: unknown symbol 'z'"):
        verify_derivation(LV_PROB, terminal=[sp.Symbol("z"), y])


def test_outputs_json_markdown_latex_and_text():
    verdict = verify_derivation(LV_PROB, adjoint=LV_ADJOINT, terminal=["-2*x", "-2*y"], name="LV")
    data = json.loads(json.dumps(verdict.as_dict()))
    assert data["holds"] is False and data["name"] == "LV"
    assert [p["piece"] for p in data["pieces"]] == ["adjoint", "terminal"]
    for p in data["pieces"]:
        assert set(p) >= {"piece", "holds", "how", "residual", "diagnosis", "counterexample"}
    assert data["pieces"][0]["holds"] is True and data["pieces"][1]["holds"] is False
    md = verdict.markdown()
    assert "| piece | claimed | verdict | how | residual | diagnosis | counterexample |" in md
    assert "**fails**" in md and "**holds**" in md
    tex = verdict.latex()
    assert tex.startswith(r"\begin{tabular}") and r"$- 2 x$" in tex and r"\textbf{fails}" in tex
    assert "terminal" in verdict.text() and repr(verdict).startswith("DerivationVerdict('LV', fails")


# -- the shipped corpus of published statements -----------------------------------------------

CORPUS_EXPECTED = {
    "chen2018_eq4_adjoint.toml": True,  # eq. 4 with a(t1) = dL/dz(t1)
    "chen2018_eq5_param_gradient.toml": True,  # eq. 5
    "chen2018_alg1_initial_values.toml": True,  # [dL/dz(t1), 0, -dL/dt1] for a loss without explicit t, theta
    "chen2018_appB_jumps.toml": True,  # a jumps by dL/dz(t_i)
    "pontryagin1962_costate.toml": True,  # dlambda/dt = -dH/dx, lambda(T) = dphi/dx
    "note_C10_adjoint_sign.toml": False,  # a(t1) = -dL/dh(t1) flips every gradient
    "note_C11_adjoint_ode.toml": False,  # no terminal value: a stays 0
    "note_C13_augmented_meaning.toml": False,  # a_t(t1) = +dL/dt1
    "note_C14_augmented_dynamics.toml": True,  # the three blocks of the augmented adjoint
    "msurtsukov_notebook_adjoint_sign.toml": False,  # published: a = -dL/dz
    "sciml_discrete_cost_jump_sign.toml": False,  # published: the discrete cost's jump with the wrong sign
}


def test_the_corpus_holds_at_least_eight_sourced_statements():
    files = sorted(p.name for p in CORPUS.glob("*.toml"))
    assert files == sorted(CORPUS_EXPECTED) and len(files) >= 8
    for name in files:
        text = (CORPUS / name).read_text()
        assert text.startswith("# Source: "), name  # a bibliographic reference, stated in the file
        assert "../" not in text, name  # never a path outside the repository


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTED))
def test_each_corpus_statement_is_decided_as_published(name):
    spec = load_spec(CORPUS / name)
    verdict = verify_derivation(spec.problem, spec.claim)
    assert verdict.holds is CORPUS_EXPECTED[name], verdict.text()
    assert verdict.experiment["agrees"] is CORPUS_EXPECTED[name]


def test_the_published_sign_errors_are_named_as_sign_errors():
    for name, piece in (
        ("msurtsukov_notebook_adjoint_sign.toml", "terminal"),
        ("sciml_discrete_cost_jump_sign.toml", "jumps"),
    ):
        spec = load_spec(CORPUS / name)
        diagnosis = verify_derivation(spec.problem, spec.claim)[piece].diagnosis
        assert "sign flipped" in diagnosis, (name, diagnosis)


# -- the command line -----------------------------------------------------------------------------


def _spec(tmp_path, claim: str, top: str = "") -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(
        top + 'state = ["x"]\nrhs = ["-k*x"]\nh0 = [1.0]\nt1 = 1.0\n[params]\nk = 0.5\n[loss]\nkind = "final"\n'
        'expr = "x**2"\n' + claim
    )
    return path


def test_cli_exit_codes_and_formats(tmp_path, capsys):
    good = _spec(tmp_path, '[claim]\nadjoint = ["k*a_x"]\nterminal = ["2*x"]\n')
    assert main(["verify-derivation", str(good), "--quiet"]) == 0
    assert "holds" in capsys.readouterr().out
    bad = _spec(tmp_path, '[claim]\nadjoint = ["-k*a_x"]\n')
    assert main(["verify-derivation", str(bad), "--json", "--quiet"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["holds"] is False and out["pieces"][0]["diagnosis"].startswith("flipped sign")
    assert main(["verify-derivation", str(bad), "--markdown", "--quiet"]) == 1
    assert "| adjoint (da/dt) |" in capsys.readouterr().out
    assert main(["verify-derivation", str(bad), "--latex", "--quiet"]) == 1
    assert r"\begin{tabular}" in capsys.readouterr().out
    slow = _spec(tmp_path, '[claim]\nadjoint = ["k*a_x*(cos(x)**2 + sin(x)**2)"]\n')
    assert main(["verify-derivation", str(slow), "--budget", "0.0001", "--quiet"]) == 4
    assert "undecided" in capsys.readouterr().out


def test_cli_bad_input_exits_2_naming_the_field(tmp_path, capsys):
    none = _spec(tmp_path, "")
    assert main(["verify-derivation", str(none), "--quiet"]) == 2
    assert "no [claim] table" in capsys.readouterr().err
    typo = _spec(tmp_path, '[claim]\nadjoint = ["k*b_x"]\n')
    assert main(["verify-derivation", str(typo), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "mine.toml: claim.adjoint[0]: unknown symbol 'b_x'" in err and "Traceback" not in err
    table = _spec(tmp_path, "", top='claim = "adjoint"\n')
    assert main(["verify-derivation", str(table), "--quiet"]) == 2
    assert "claim: expected a table of claimed pieces" in capsys.readouterr().err


def test_console_script_runs_a_corpus_file():
    spec = str(CORPUS / "note_C10_adjoint_sign.toml")
    command = [sys.executable, "-m", "adjoint_sym", "verify-derivation", spec, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["holds"] is False


# -- every refusal names its culprit ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "claim", "message"),
    [
        (LV_PROB, {"adjoints": ["0", "0"]}, r"claim\.adjoints: unknown field"),
        (LV_PROB, {}, r"claim: no pieces stated"),
        (LV_PROB, {"adjoint": LV_ADJOINT, "adjoint_latex": ["0", "0"]}, r"given both as text and as adjoint_latex"),
        (LV_PROB, {"adjoint": ["0"]}, r"claim\.adjoint: 1 expressions for 2 state entries"),
        (LV_PROB, {"adjoint": "0"}, r"claim\.adjoint: expected a list of 2 expressions"),
        (LV_PROB, {"dL_dt0": ["0", "1"]}, r"claim\.dL_dt0: expected one expression, got a list of 2"),
        (LV_PROB, {"terminal": ["a_x", "0"]}, r"claim\.terminal\[0\]: unknown symbol 'a_x'"),
        (LV_PROB, {"terminal": [[1], "0"]}, r"claim\.terminal\[0\]: expected an expression as text, got list"),
        (LV_PROB, {"jumps": ["0", "0"]}, r"claim\.jumps: the loss is read at t1 only"),
        (OBS_PROB, {"dL_dt1": "0"}, r"claim\.dL_dt1: dL/dt1 is not defined for observation losses"),
        (OBS_PROB, {"terminal_param": ["0"]}, r"claim\.terminal_param: a_theta\(t1\) needs a final loss"),
        (LV_PROB, {"param_integrand": LV_INTEGRAND, "param_limits": ["t1", "t1"]}, r"claim\.param_limits: expected"),
        (LV_PROB, {"adjoint": LV_ADJOINT, "adjoint_symbols": ["p"]}, r"claim\.adjoint_symbols: expected a list of 2"),
        (LV_PROB, {"adjoint": LV_ADJOINT, "adjoint_symbols": ["p", "p"]}, r"already a state, parameter"),
        (LV_PROB, {"adjoint": LV_ADJOINT, "adjoint_symbols": ["a", "q"]}, r"claim\.adjoint_symbols 'a' is already"),
        (LV_PROB, {"adjoint": LV_ADJOINT, "adjoint_symbols": ["lambda", "q"]}, r"'lambda' is not a valid name"),
        (LV_PROB, {"adjoint": ["x**", "0"]}, r"claim\.adjoint\[0\]: cannot parse"),
        (LV_PROB, {"adjoint": ["__import__('os')", "0"]}, r"dunder name"),
        (LV_PROB, {"adjoint_latex": [r"\int x dx", "0"]}, r"claim\.adjoint_latex\[0\]: Integral is not allowed"),
        (LV_PROB, {"adjoint_latex": [r"\frac{1}{", "0"]}, r"claim\.adjoint_latex\[0\]: cannot parse the LaTeX"),
        (LV_PROB, {"adjoint_latex": [r"z x", "0"]}, r"unknown symbol 'z'"),
        (LV_PROB, {"adjoint_latex": ["", "0"]}, r"the LaTeX is empty"),
        (LV_PROB, {"adjoint_latex": [3, "0"]}, r"expected a LaTeX string"),
    ],
)
def test_bad_claims_are_refused_with_the_field_and_the_fix(problem, claim, message):
    with pytest.raises(InvalidModelError, match=message):
        verify_derivation(problem, claim)


def test_other_refusals():
    with pytest.raises(InvalidModelError, match=r"takes a Problem"):
        verify_derivation("spec.toml", adjoint=["0"])
    with pytest.raises(InvalidModelError, match=r"points: expected an integer from 3 to 1000"):
        verify_derivation(LV_PROB, adjoint=LV_ADJOINT, points=1)
    with pytest.raises(InvalidModelError, match=r"budget: expected seconds"):
        verify_derivation(LV_PROB, adjoint=LV_ADJOINT, budget=0)
    free = Problem(ODESystem.from_strings(["x"], [], "t", ["-x"]), [1.0], {}, 0.0, 1.0, FinalLoss("x"))
    with pytest.raises(InvalidModelError, match=r"claim\.param_integrand: the system has no parameters"):
        verify_derivation(free, param_integrand=["0"])
    callable_loss = CallableLoss(lambda s, th: float(s[-1, 0]), lambda s, th: (np.ones_like(s), np.zeros(1)))
    prob = Problem(DECAY, [1.0], {"k": 0.5}, 0.0, 1.0, callable_loss)
    with pytest.raises(InvalidModelError, match=r"claim\.terminal: the loss is a Python callable"):
        verify_derivation(prob, terminal=["1"])
    assert issubclass(UnsupportedExpressionError, InvalidModelError)


def test_a_missing_latex_parser_says_what_to_install(monkeypatch):
    import sympy.parsing.latex as latex_parsing

    def missing(_text, *args, **kwargs):
        raise ImportError("LaTeX parsing requires the antlr4 Python package")

    monkeypatch.setattr(latex_parsing, "parse_latex", missing)
    with pytest.raises(InvalidModelError, match=r"antlr4-python3-runtime 4\.11 \(pip install 'adjoint_sym\[latex\]'\)"):
        verify_derivation(LV_PROB, adjoint_latex=["0", "0"])
