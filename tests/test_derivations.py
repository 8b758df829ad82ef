"""The derivations decide the note's claims, and a flipped premise flips the verdict.

The expected verdicts below come from the mathematics, not from a run of the code:
each carries the reason it must be so.  The premise-flip tests show the verdicts are
computed: the same derivation, handed the corrected premise (or a broken one), decides
differently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from _claims import Check, Claim, decide, leading_term, measured_order
from _runner import JSON_KEYS, derivations_dir, load_script, report_latex, run_all, scripts

from adjoint_sym.errors import AdjointSymError

EXPECTED = {
    "C1": "wrong",  # GD is an Euler step with D = eta, but dL/dt along the flow is -|grad L|^2, not grad L
    "C2": "exact",  # the note calls the quotient the discrete derivative and takes the limit for dy/dt: both true
    "C3": "conditional",  # Euler: local error (D^2/2) y''
    "C4": "exact",  # h + f(h) is h + D f(h) with D = 1, identically
    "C5": "conditional",  # ResNet -> ODE flow only as D = T/N -> 0, at order 1
    "C6": "exact",  # layer-dependent weights are a time-dependent f
    "C7": "wrong",  # the note's dh/dt = sigma(W x + b) ignores h: a feed-forward layer is not its Euler step
    "C8": "incomplete",  # no limits, no h(t0): a family of solutions
    "C9": "incomplete",  # ODESolve is the flow map, but h(t1) = F|_{t=t0} lacks the upper limit and h(t0)
    "C10": "wrong",  # with a = -dL/dh the note's own a_theta readout gives -dL/dtheta
    "C11": "incomplete",  # the terminal value a(t1) = dL/dh(t1) is missing (else a = 0)
    "C12": "exact",  # [f, 0, 1] keeps theta constant and the clock equal to t
    "C13": "wrong",  # a_t(t1) = +dL/dt1 (the note's a_t = dL/dt at t1) gives a_t(t0) != dL/dt0
    "C14": "exact",  # the three blocks are the plain adjoint of the augmented system
    "C15": "conditional",  # agreement only as steps shrink; constant memory only for backsolve; time unproven
}


def _module(name: str):
    return load_script(derivations_dir() / f"{name}.py")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("derivations")
    seen: list[str] = []
    verdicts = run_all(out, quick=True, progress=seen.append)
    assert len(seen) == len(scripts())
    return out, verdicts


# -- every derivation, cheaply ------------------------------------------------------------


def test_every_claim_is_decided_as_the_mathematics_says(report):
    _, verdicts = report
    got = {cid: v["verdict"] for cid, v in verdicts.items()}
    assert got == EXPECTED


def test_verdicts_json_has_the_contract_keys(report):
    out, verdicts = report
    on_disk = json.loads((out / "verdicts.json").read_text())
    assert on_disk == verdicts
    assert list(on_disk) == [f"C{i}" for i in range(1, 16)]
    for cid, entry in on_disk.items():
        assert tuple(entry) == JSON_KEYS, cid
        assert entry["correct_statement"] and entry["evidence"], cid


def test_report_has_the_table_sections_and_figures(report):
    out, _ = report
    text = (out / "report.md").read_text()
    assert "| claim | the note says | verdict | correct statement |" in text
    for cid, verdict in EXPECTED.items():
        assert f"## {cid}\n" in text
        assert f"**Verdict: {verdict}**" in text
    # the rubric's words, never a "FAIL (conditional)" tag beside a verdict it does not decide
    assert "FAIL (" not in text and ": pass." not in text
    tex = (out / "report.tex").read_text()
    assert tex.startswith(r"\documentclass") and all(rf"\section*{{{c}: {v}}}" in tex for c, v in EXPECTED.items())
    # pdflatex with T1 fonts has no Greek text glyphs: every character is ASCII, Greek in math mode
    assert tex.isascii(), sorted({ch for ch in tex if not ch.isascii()})
    pytest.importorskip("matplotlib")
    linked = [line.split("](figures/")[1].rstrip(")") for line in text.splitlines() if "](figures/" in line]
    assert {"euler_convergence.png", "adjoint_sign.png", "memory_and_accuracy.png"} <= set(linked)
    for name in linked:
        assert (out / "figures" / name).stat().st_size > 1000, name


# -- premise flips -------------------------------------------------------------------------


def test_c1_flips_with_the_rate_of_the_loss_and_the_step_relation():
    m = _module("euler_and_resnets")
    assert m.claim_gradient_descent(quick=True)[0].verdict == "wrong"
    corrected, _ = m.claim_gradient_descent(dLdt_claim=lambda g: -(g**2), quick=True)
    assert corrected.verdict == "exact"
    broken, _ = m.claim_gradient_descent(step_relation=lambda eta: 2 * eta, dLdt_claim=lambda g: -(g**2), quick=True)
    assert broken.verdict == "wrong"
    assert not broken.proof[0].passed and broken.proof[1].passed  # the step relation is what failed


def test_c4_flips_with_the_step_of_the_residual_block():
    m = _module("euler_and_resnets")
    assert m.claim_residual_block(quick=True)[0].verdict == "exact"
    half, _ = m.claim_residual_block(step=sp.Rational(1, 2), quick=True)
    assert half.verdict == "wrong"
    assert not half.proof[0].passed and not half.experiment[0].passed


def test_c2_c3_c5_flip_with_a_wrong_quotient_coefficient_or_step():
    m = _module("euler_and_resnets")
    # claiming equality at finite D (which the note does not) is only conditionally true
    assert m.claim_forward_difference(reading="equal at finite D", quick=True)[0].verdict == "conditional"
    with pytest.raises(ValueError, match="reading must be"):
        m.claim_forward_difference(reading="exactly")
    halved, _ = m.claim_forward_difference(quotient=lambda y, t, d: (y(t + d) - y(t)) / (2 * d), quick=True)
    assert halved.verdict == "wrong"
    assert m.claim_euler_step(coefficient=lambda d: d / 2, quick=True)[0].verdict == "wrong"
    assert m.claim_resnet_limit(step=lambda span, depth: 1.0, quick=True)[0].verdict == "wrong"


def test_c10_flips_with_the_sign_convention():
    m = _module("adjoint_state")
    note, _ = m.claim_adjoint_sign(sign=-1, quick=True)
    chen, _ = m.claim_adjoint_sign(sign=+1, quick=True)
    assert (note.verdict, chen.verdict) == ("wrong", "exact")
    # the a-block is sign-blind, the parameter block is not: the failures are exactly the theta checks
    failed = [c.name for c in note.checks if not c.passed]
    assert failed and all("theta" in name or "dL/dk" in name or ": terminal = " in name for name in failed)
    # and verify_derivation, handed the note's a(t1) = -dL/dh(t1) as a derivation, names the sign
    api = [c for c in note.checks if c.name.startswith("verify_derivation, corpus/note_C10")]
    assert [c.passed for c in api] == [True, False, True] and "sign flipped" in api[1].detail


def test_c11_flips_with_the_terminal_value_and_the_sign_of_the_dynamics():
    m = _module("adjoint_state")
    assert m.claim_adjoint_ode(quick=True)[0].verdict == "incomplete"
    assert m.claim_adjoint_ode(terminal_value="dL/dh(t1)", quick=True)[0].verdict == "exact"
    assert m.claim_adjoint_ode(terminal_value="dL/dh(t1)", dyn_sign=+1, quick=True)[0].verdict == "wrong"
    with pytest.raises(ValueError, match="terminal_value must be"):
        m.claim_adjoint_ode(terminal_value="zero")


def test_the_note_adjoint_claims_are_decided_through_verify_derivation():
    state, augmented = _module("adjoint_state"), _module("augmented_adjoint")
    for claim in (
        state.claim_adjoint_sign(quick=True)[0],
        state.claim_adjoint_ode(quick=True)[0],
        augmented.claim_augmented_meaning(quick=True)[0],
        augmented.claim_augmented_dynamics(quick=True)[0],
    ):
        api = [c for c in claim.checks if c.name.startswith("verify_derivation, corpus/")]
        assert api, claim.id
    c11 = state.claim_adjoint_ode(quick=True)[0]
    terminal = next(c for c in c11.checks if c.name.startswith("verify_derivation") and ": terminal = " in c.name)
    assert not terminal.passed and terminal.failure == "incomplete" and "terminal value missing" in terminal.detail


def test_c12_to_c14_flip_with_their_premises():
    m = _module("augmented_adjoint")
    assert m.claim_augmented_state(clock_rate=2, quick=True)[0].verdict == "wrong"
    assert m.claim_augmented_state(theta_rate=1, quick=True)[0].verdict == "wrong"
    assert m.claim_augmented_meaning(a_t_terminal_sign=-1, quick=True)[0].verdict == "conditional"
    assert m.claim_augmented_dynamics(dyn_sign=+1, quick=True)[0].verdict == "wrong"


def test_c6_to_c9_flip_with_their_premises():
    m = _module("continuous_depth")
    assert m.claim_time_argument(time_dependent=False, quick=True)[0].verdict == "wrong"
    assert m.claim_network_as_rhs(layer="residual", quick=True)[0].verdict == "exact"
    assert m.claim_integral_form(initial_value=True, quick=True)[0].verdict == "exact"
    assert m.claim_odesolve(span="t1->t0", quick=True)[0].verdict == "wrong"
    assert m.claim_odesolve(bracket="t0 to t1", quick=True)[0].verdict == "exact"  # h(t0) + F(t1) - F(t0)
    with pytest.raises(ValueError, match="bracket must be"):
        m.claim_odesolve(bracket="t1")
    assert m.claim_network_as_rhs(layer="feedforward", quick=True)[0].verdict == "wrong"


def test_c15_flips_when_the_adjoint_keeps_its_trajectory():
    m = _module("memory_and_accuracy")
    claim, _ = m.claim_memory_and_accuracy(keep_trajectory=True, quick=True)
    assert claim.verdict == "wrong"
    memory = [c for c in claim.checks if "peak memory independent" in c.name]
    assert len(memory) == 1 and not memory[0].passed


# -- the pieces -----------------------------------------------------------------------------


def test_decide_takes_the_worst_failure():
    ok = Check("a", True, "")
    assert decide([ok]) == "exact"
    assert decide([ok, Check("b", False, "", "incomplete"), Check("c", False, "", "conditional")]) == "incomplete"
    assert Claim("C0", "", "", [ok], [Check("d", False, "")]).verdict == "wrong"
    with pytest.raises(ValueError, match="failure must be one of"):
        Check("e", False, "", "exact")


def test_leading_term_and_measured_order_on_known_cases():
    d, t = sp.symbols("d t")
    y = sp.Function("y")
    assert leading_term(y(t + d) - y(t) - d * y(t).diff(t), d) == (2, y(t).diff(t, 2) / 2)
    assert leading_term(sp.Integer(0), d) == (None, 0)
    assert measured_order([1.0, 0.5, 0.25], [3.0, 0.75, 0.1875]) == pytest.approx(2.0)


def test_script_runs_from_the_command_line(tmp_path):
    path = derivations_dir() / "continuous_depth.py"
    done = subprocess.run(
        [sys.executable, str(path), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "C8: incomplete" in done.stdout
    assert json.loads((tmp_path / "verdicts.json").read_text())["C9"]["verdict"] == "incomplete"


# -- the runner's errors name the culprit ----------------------------------------------------


def test_runner_refuses_an_empty_folder(tmp_path):
    with pytest.raises(AdjointSymError, match="no derivation scripts"):
        run_all(tmp_path / "out", derivations=tmp_path)


def test_runner_refuses_a_script_without_run(tmp_path):
    (tmp_path / "bad.py").write_text("x = 1\n")
    with pytest.raises(AdjointSymError, match=r"bad\.py has no run"):
        run_all(tmp_path / "out", derivations=tmp_path)


def test_runner_refuses_an_unknown_verdict_and_a_missing_key(tmp_path):
    (tmp_path / "odd.py").write_text(
        "def run(out_dir=None, quick=False):\n"
        "    return {'C1': {'verdict': 'plausible', 'correct_statement': 's', 'evidence': 'e'}}\n"
    )
    with pytest.raises(AdjointSymError, match="verdict 'plausible'"):
        run_all(tmp_path / "out", derivations=tmp_path)
    (tmp_path / "odd.py").write_text("def run(out_dir=None, quick=False):\n    return {'C1': {'verdict': 'exact'}}\n")
    with pytest.raises(AdjointSymError, match="lacks correct_statement, evidence"):
        run_all(tmp_path / "out", derivations=tmp_path)


def test_runner_refuses_a_claim_decided_twice_and_names_a_failing_script(tmp_path):
    body = (
        "def run(out_dir=None, quick=False):\n"
        "    return {'C1': {'verdict': 'exact', 'correct_statement': 's', 'evidence': 'e'}}\n"
    )
    (tmp_path / "a.py").write_text(body)
    (tmp_path / "b.py").write_text(body)
    with pytest.raises(AdjointSymError, match=r"C1 is decided twice: in a\.py and in b\.py"):
        run_all(tmp_path / "out", derivations=tmp_path)
    (tmp_path / "b.py").write_text("def run(out_dir=None, quick=False):\n    raise RuntimeError('boom')\n")
    with pytest.raises(AdjointSymError, match=r"derivation b\.py failed: RuntimeError: boom"):
        run_all(tmp_path / "out", derivations=tmp_path)


def test_latex_report_puts_the_notations_greek_in_math_mode():
    """The adjoint of a named state prints as lambda (the reader's notation): in LaTeX text
    that is ``$\\lambda$``, and a character with no LaTeX form is named, never dropped."""
    claim = {"verdict": "exact", "correct_statement": "dλ/dt = -λ·∂f/∂h, θ ≤ 1, ⊗", "evidence": "e"}
    tex = report_latex({"C1": claim}, {"C1": "x.py"})
    assert r"d$\lambda$/dt = -$\lambda$$\cdot$$\partial$f/$\partial$h, $\theta$ $\le$ 1, [U+2297]" in tex
    assert tex.isascii()
