"""``adjoint-sym hvp`` and ``adjoint-sym derive --order 2``: outputs, contracts, exit codes, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adjoint_sym.cli import main
from adjoint_sym.cli.hvp import parse_direction
from adjoint_sym.errors import InvalidModelError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DECAY = str(EXAMPLES / "exponential_decay.json")  # x' = -k x, k = 0.7, x0 = 2, T = 1.5, L = x(T)^2
LV = str(EXAMPLES / "lotka_volterra.toml")
SIR = str(EXAMPLES / "sir.toml")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def test_hvp_text_output_matches_the_closed_form(capsys):
    code, out, err = run(capsys, "hvp", DECAY, "--direction", "0", "1")
    assert code == 0, err
    e = np.exp(-2 * 0.7 * 1.5)  # L = x0^2 e^{-2 k T}: d2L/dk2 = 4 T^2 x0^2 e, d2L/dx0 dk = -4 T x0 e
    values = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.startswith("  Hv[")}
    assert values["Hv[h0[x]]"] == pytest.approx(-4 * 1.5 * 2 * e, rel=1e-8)
    assert values["Hv[k]"] == pytest.approx(4 * 1.5**2 * 4 * e, rel=1e-8)
    assert "H v by adjoint" in out and "(t0, t1 held fixed)" in out


def test_hvp_json_contract(capsys):
    code, out, _ = run(capsys, "hvp", SIR, "--direction", '{"dparams": {"beta": 1}}', "--json")
    assert code == 0
    payload = json.loads(out)
    assert set(payload) == {"loss", "Hv_h0", "Hv_params", "direction", "gradient", "method", "stats"}
    assert payload["direction"] == [0.0, 0.0, 0.0, 1.0, 0.0] and set(payload["Hv_params"]) == {"beta", "gamma"}


def test_hvp_check_passes_and_reports_the_taylor_order(capsys):
    code, out, err = run(capsys, "hvp", LV, "--direction", "random", "--check")
    assert code == 0, out + err
    assert "verdict: **OK**" in out and "order-3 Taylor test of adjoint: fitted order" in out
    code, out, _ = run(capsys, "hvp", DECAY, "--direction", "1,0.5", "--check", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["reference"] == "complex-step"
    assert abs(report["taylor_order"] - 3.0) <= 0.2


def test_hvp_by_a_reference_method(capsys):
    code, out, _ = run(capsys, "hvp", DECAY, "--direction", "0", "1", "--method", "forward-hessian", "--json")
    assert code == 0 and json.loads(out)["method"] == "forward-hessian"


@pytest.mark.parametrize(
    ("direction", "message"),
    [
        (["1", "2", "3"], "the direction must have 2 entries, [h0 (1), theta (1)] in the order h0[x], k"),
        (["1", "two"], "--direction: 'two' is not a number"),
        (["{not json"], "--direction: not valid JSON"),
        (['{"dh0": [1], "extra": 2}'], "unknown key 'extra'"),
        (["[1, 2, 3]"], "the direction must have 2 entries"),
        (['"text"'], "--direction: '\"text\"' is not a number"),
        (['{"dparams": {"k": "z"}}'], "dparams['k'] must be numeric"),
    ],
)
def test_hvp_bad_directions_exit_2_with_the_culprit(capsys, direction, message):
    code, out, err = run(capsys, "hvp", DECAY, "--direction", *direction)
    assert code == 2 and out == "" and message in err and "Traceback" not in err


def test_parse_direction_forms():
    with pytest.raises(InvalidModelError, match="--direction is empty"):
        parse_direction([" , "])
    assert parse_direction(["random"]) == "random"
    assert parse_direction(["[1, 2.5]"]) == [1, 2.5]
    assert parse_direction(["1", "2,3"]) == [1.0, 2.0, 3.0]


def test_derive_order_two(capsys):
    code, out, _ = run(capsys, "derive", DECAY, "--order", "2")
    assert code == 0
    assert "ds_x/dt = -k*s_x - v_k*x" in out and "dmu_k/dt = a_x*s_x + lambda_x*x" in out
    code, out, _ = run(capsys, "derive", DECAY, "--order", "2", "--latex")
    assert code == 0 and out.startswith("\\begin{align}") and r"\frac{d \lambda_{x}}{d t}" in out
    code, out, _ = run(capsys, "derive", DECAY, "--order", "2", "--markdown")
    assert code == 0 and "### Second-order adjoint" in out
    code, out, err = run(capsys, "derive", DECAY, "--order", "2", "--form", "jacobian")
    assert code == 2 and "--order 2 derives the tangent adjoint from the vjp form" in err
    code, out, _ = run(capsys, "derive", DECAY)  # order 1 unchanged
    assert code == 0 and "lambda" not in out


def test_hvp_console_script_in_a_fresh_process():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "adjoint_sym", "hvp", DECAY, "--direction", "1", "0", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Hv_h0"][0] == pytest.approx(2 * np.exp(-2.1), rel=1e-8)  # d2L/dx0^2 = 2 e
    helped = subprocess.run(
        [sys.executable, "-m", "adjoint_sym", "--help"], capture_output=True, text=True, env=env, timeout=300
    )
    assert "hvp" in helped.stdout
