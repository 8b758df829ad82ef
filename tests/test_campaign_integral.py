"""The campaign's ``integral`` family: running costs ``int g dt`` drawn over the hard regimes.

Kept small like tests/test_campaign.py: a dozen problems per campaign, in one process.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from adjoint_sym import FinalLoss, IntegralLoss, ObservationLoss, Problem, SumLoss, gradient
from adjoint_sym.campaign import FAMILIES, build_problem, problem_spec, read_records, run_campaign, run_problem
from adjoint_sym.campaign.problems import family_of
from adjoint_sym.campaign.sampler import Sampler
from adjoint_sym.campaign.verdict import Settings
from adjoint_sym.cli import main
from adjoint_sym.cli.campaign import FAMILY_NAMES
from adjoint_sym.cli.spec import spec_from_dict
from adjoint_sym.errors import InvalidModelError
from adjoint_sym.testing.mutants import handwritten_adjoint, mutant

#: The rotation before the integral family joined it, in its order.
SEVEN = ("equilibrium", "long_span", "growing", "stiff", "neural", "observation", "backward")
TEMPLATES = {"equilibrium", "long-span", "growing", "backward", "decoupled", "weighted"}


def _template(spec: dict) -> str:
    name = spec["name"].split("/")[1]
    return "weighted" if name.startswith("weighted-") else name


# -- the other families are untouched ------------------------------------------------------------
def test_an_explicit_list_of_the_seven_older_families_draws_what_it_drew_before():
    """The integral family is appended: the seven keep their order, and problem i of a run with
    ``families=SEVEN`` is still family ``SEVEN[i % 7]`` drawn from ``Sampler(seed, i)``."""
    assert tuple(FAMILIES)[:7] == SEVEN and tuple(FAMILIES)[7:] == ("integral",)
    for seed in (0, 5):
        for i in range(21):
            assert family_of(i, SEVEN) == SEVEN[i % 7]
            assert problem_spec(seed, i, list(SEVEN)) == FAMILIES[SEVEN[i % 7]](Sampler(seed, i))
    record = run_problem(3, Settings(seed=2, families=SEVEN, methods=("adjoint", "forward")))
    assert record["family"] == "stiff" and record["problem"] == FAMILIES["stiff"](Sampler(2, 3))


def test_the_command_names_every_family_in_its_help(capsys):
    assert tuple(FAMILIES) == FAMILY_NAMES
    assert main(["campaign", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "problem families among " + ", ".join(FAMILIES) + " (default: all, taking turns)" in help_text
    assert "observation and integral losses" in help_text


def test_in_the_default_rotation_every_eighth_problem_is_an_integral_one():
    for i in range(16):
        family = "integral" if i % 8 == 7 else SEVEN[i % 8]
        assert problem_spec(4, i) == FAMILIES[family](Sampler(4, i)), i


# -- the problems ---------------------------------------------------------------------------
def test_integral_problems_have_a_running_cost_and_visit_their_regimes():
    """Measured on the built problems: the running cost is there, and each template's regime holds."""
    seen = set()
    for i in range(60):
        spec = problem_spec(3, i, ["integral"])
        prob, template = build_problem(spec), _template(spec)
        seen.add(template)
        assert prob.running_cost is not None and prob.running_cost.free_symbols & set(prob.system.state), spec
        span = prob.t1 - prob.t0
        f = np.asarray(prob.kernels.f(prob.t0, prob.h0, prob.theta), dtype=float)
        jac = np.asarray(prob.kernels.jac_h(prob.t0, prob.h0, prob.theta), dtype=float)
        if template == "equilibrium":
            assert np.all(f == 0), spec
        elif template == "long-span":
            assert 3 <= span <= 10
        elif template == "growing":  # amplified by e^2 .. e^8
            assert 0 < np.max(np.linalg.eigvals(jac).real) * span <= 8 + 1e-9, spec
        elif template == "backward":
            assert prob.t1 < prob.t0
        else:
            assert 0.5 <= span <= 3
        if isinstance(spec["loss"], list):
            assert isinstance(prob.loss, SumLoss) and len(prob.loss.integrals) == 1
            assert isinstance(prob.loss.point(), FinalLoss | ObservationLoss)
        else:
            assert isinstance(prob.loss, IntegralLoss)
    assert seen == TEMPLATES


def test_decoupled_problems_have_exact_zeros_and_the_weight_is_read_from_the_cost_alone():
    """``y' = -m y + u`` never reaches ``L``: ``dL/dy0``, ``dL/dm``, ``dL/du`` are exactly 0. A cost
    weight ``q`` no rhs uses: ``dL/dq = (L - point part) / q``, the integral itself."""
    specs = [problem_spec(3, i, ["integral"]) for i in range(60)]
    decoupled = [s for s in specs if s["name"] == "integral/decoupled"]
    weighted = [s for s in specs if s["name"].startswith("integral/weighted") and not isinstance(s["loss"], list)]
    assert decoupled and weighted
    for spec in decoupled:
        grad = gradient(build_problem(spec))
        assert grad.dh0[1] == 0.0 and grad.dparams["m"] == 0.0 and grad.dparams["u"] == 0.0, spec
        assert grad.dh0[0] != 0.0
    for spec in weighted:  # an integral alone: L = q * int g' dt, so dL/dq = L / q
        grad = gradient(build_problem(spec))
        q = spec["params"]["q"]
        # both sides come out of one adjoint solve at rtol 1e-8: agree to well within 1e-6
        assert grad.dparams["q"] == pytest.approx(grad.loss / q, rel=1e-6, abs=1e-9), spec


def test_integral_specs_are_spec_files_of_the_cli():
    for i in range(24):
        spec = problem_spec(1, i, ["integral"])
        ours, theirs = build_problem(spec), spec_from_dict(json.loads(json.dumps(spec))).problem
        assert ours.system == theirs.system and repr(ours.loss) == repr(theirs.loss), spec["name"]
        assert np.array_equal(ours.h0, theirs.h0) and np.array_equal(ours.theta, theirs.theta)
        assert (ours.t0, ours.t1) == (theirs.t0, theirs.t1)


def test_a_bad_loss_list_or_kind_is_refused():
    spec = problem_spec(0, 0, ["integral"])
    with pytest.raises(InvalidModelError, match=r"^loss: a list of loss terms holds two or more tables, got 1$"):
        build_problem({**spec, "loss": [{"kind": "integral", "expr": "x"}]})
    with pytest.raises(InvalidModelError, match=r"^loss\[1\]\.kind: 'running'; a campaign problem's loss is 'final'"):
        build_problem({**spec, "loss": [{"kind": "final", "expr": "x"}, {"kind": "running", "expr": "x"}]})
    with pytest.raises(InvalidModelError, match="at most one point loss"):
        build_problem({**spec, "loss": [{"kind": "final", "expr": "x"}, {"kind": "final", "expr": "x**2"}]})


# -- campaigns of the family ------------------------------------------------------------------------
def test_the_checker_judges_integral_problems_ok_and_records_round_trip(tmp_path):
    """Two seeds, eight problems each, with the checker's default methods; every record's
    problem rebuilds into the Problem the seed draws."""
    for seed in (0, 6):
        out = tmp_path / f"integral-{seed}.jsonl"
        summary = run_campaign(8, out, seed=seed, families=["integral"], workers=0)
        assert summary.verdicts["ok"] == 8, summary.text()
        for record in read_records(out):
            drawn = problem_spec(seed, record["index"], ["integral"])
            assert record["family"] == "integral" and record["problem"] == drawn
            ours, theirs = build_problem(record["problem"]), build_problem(drawn)
            assert ours.system is theirs.system and repr(ours.loss) == repr(theirs.loss)
            assert np.array_equal(ours.h0, theirs.h0) and np.array_equal(ours.theta, theirs.theta)
            assert (ours.t0, ours.t1) == (theirs.t0, theirs.t1)


def _point_part_only(problem: Problem) -> dict:
    """A gradient function that forgets the running cost: it differentiates the point part only."""
    return handwritten_adjoint(
        Problem(problem.system, problem.h0, problem.params, problem.t0, problem.t1, problem.point_loss)
    )


@pytest.mark.parametrize("function", [mutant("dropped_cost_h"), _point_part_only], ids=["dropped_cost_h", "point"])
def test_a_gradient_function_that_drops_the_running_cost_fails_on_the_family(tmp_path, function):
    bad = run_campaign(10, tmp_path / "bad.jsonl", seed=1, families=["integral"], function=function, workers=0)
    assert bad.verdicts["fail"] == 10 and not bad.ok, bad.text()
    assert "not explained by tolerances" in bad.failures_by_cause


def test_the_correct_hand_written_adjoint_passes_on_the_same_problems(tmp_path):
    good = run_campaign(10, tmp_path / "good.jsonl", seed=1, families=["integral"], function=handwritten_adjoint,
                        workers=0)  # fmt: skip
    assert good.verdicts["ok"] == 10 and good.ok, good.text()
