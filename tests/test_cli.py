"""The ``adjoint-sym`` command line, driven as a user drives it: a real process per call.

Subprocess calls cost an interpreter start and the package import each (about a second),
so the many bad-input cases run concurrently in a module-scoped pool; every case still
asserts its own exit code and message.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sympy as sp

from adjoint_sym import cli
from adjoint_sym.symbolic.parse import parse_expression

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPECS = sorted([*EXAMPLES.glob("*.toml"), *EXAMPLES.glob("*.json")])
DECAY = EXAMPLES / "exponential_decay.json"
LV = EXAMPLES / "lotka_volterra.toml"
SIR = EXAMPLES / "sir.toml"
OBSERVATIONS = EXAMPLES / "damped_oscillator_observations.toml"
SCRIPT = shutil.which("adjoint-sym")
CONTRACT_KEYS = {
    *("loss", "dL_dh0", "dL_dparams", "dL_dt0", "dL_dt1", "dL_dtimes", "method", "stats"),
    *("requested", "solver", "rtol", "atol", "options"),
}


def run(args: list[str], *, cwd: Path | None = None, launcher: str = "module") -> subprocess.CompletedProcess:
    """One command-line call in a fresh process; stderr is a pipe, so not a terminal."""
    if launcher == "script":
        if SCRIPT is None:
            pytest.skip("the adjoint-sym console script is not on PATH (pip install -e .)")
        command = [SCRIPT, *args]
    else:
        command = [sys.executable, "-m", "adjoint_sym", *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def run_many(jobs: dict[str, tuple[list[str], Path | None]]) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run, args, cwd=cwd) for name, (args, cwd) in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def assert_clean_failure(result: subprocess.CompletedProcess, code: int, *messages: str) -> None:
    detail = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == code, detail
    assert "Traceback" not in result.stderr, detail
    assert result.stdout == "", detail
    for message in messages:
        assert message in result.stderr, f"expected {message!r} on stderr\n{detail}"


# -- the JSON contract against closed-form gradients ----------------------------------


def decay_closed_form(x0: float, k: float, t0: float, t1: float) -> dict:
    """x' = -k x, L = x(t1)^2: every derivative by hand."""
    T = t1 - t0
    xT = x0 * math.exp(-k * T)
    return {
        "loss": xT**2,
        "dL_dh0": [2 * x0 * math.exp(-2 * k * T)],
        "dL_dparams": {"k": -2 * T * x0**2 * math.exp(-2 * k * T)},
        "dL_dt1": -2 * k * xT**2,  # moving t1 later lets x decay longer
        "dL_dt0": 2 * k * xT**2,  # h0 held fixed at a later t0: a shorter decay
    }


#: Allowed error in units of the solver tolerance ``atol + rtol*|ref|``.  Adaptive RK's
#: global error on this smooth, contracting scalar problem stays within a few local
#: tolerances; 100 leaves room for the backward solve and the quadrature of a_theta
#: while a wrong sign or a dropped term (an O(1) relative error) is still caught.
TOLERANCE_UNITS = 100


@pytest.mark.parametrize(
    ("launcher", "tolerances"),
    [("module", None), ("script", None), ("module", ("1e-6", "1e-9"))],
    ids=["module", "console-script", "loose-override"],
)
def test_gradient_json_matches_closed_form(launcher: str, tolerances) -> None:
    spec = json.loads(DECAY.read_text())
    args = ["gradient", str(DECAY), "--json"]
    if tolerances is None:
        rtol, atol = spec["solver"]["rtol"], spec["solver"]["atol"]
    else:
        args += ["--rtol", tolerances[0], "--atol", tolerances[1]]
        rtol, atol = float(tolerances[0]), float(tolerances[1])
    result = run(args, launcher=launcher)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "no progress output when stderr is not a terminal"
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("}\n"), "exactly one JSON object on one line"
    got = json.loads(result.stdout)
    assert set(got) == CONTRACT_KEYS
    assert got["dL_dtimes"] is None
    assert isinstance(got["method"], str) and isinstance(got["stats"], dict)
    # the record says how it ran: the tolerances given on the command line or in the spec
    assert (got["requested"], got["solver"]) == ("adjoint", spec["solver"]["method"])
    assert (got["rtol"], got["atol"]) == (rtol, atol)
    want = decay_closed_form(spec["h0"][0], spec["params"]["k"], spec["t0"], spec["t1"])
    pairs = {
        "loss": (got["loss"], want["loss"]),
        "dL_dh0[0]": (got["dL_dh0"][0], want["dL_dh0"][0]),
        "dL_dparams.k": (got["dL_dparams"]["k"], want["dL_dparams"]["k"]),
        "dL_dt0": (got["dL_dt0"], want["dL_dt0"]),
        "dL_dt1": (got["dL_dt1"], want["dL_dt1"]),
    }
    failures = [
        f"{name}: got {g!r}, closed form {w!r}, {abs(g - w) / (atol + rtol * abs(w)):.3g} tolerance units"
        for name, (g, w) in pairs.items()
        if abs(g - w) > TOLERANCE_UNITS * (atol + rtol * abs(w))
    ]
    assert not failures, "\n".join(failures)


# -- each command on the shipped examples ---------------------------------------------


@pytest.fixture(scope="module")
def example_gradients() -> dict[str, subprocess.CompletedProcess]:
    jobs = {p.name: (["gradient", str(p), "--json"], None) for p in SPECS}
    jobs["lv-text"] = (["gradient", str(LV)], None)
    jobs["lv-forward"] = (["gradient", str(LV), "--method", "forward", "--json"], None)
    jobs["derive-lv"] = (["derive", str(LV)], None)
    jobs["derive-sir-latex"] = (["derive", str(SIR), "--latex"], None)
    return run_many(jobs)


def test_examples_are_shipped() -> None:
    names = {p.name for p in SPECS}
    assert {"lotka_volterra.toml", "exponential_decay.json", "damped_oscillator_observations.toml", "sir.toml"} <= names


@pytest.mark.parametrize("name", [p.name for p in SPECS])
def test_gradient_on_every_example(example_gradients, name: str) -> None:
    result = example_gradients[name]
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert set(got) == CONTRACT_KEYS
    path = EXAMPLES / name
    data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    assert len(got["dL_dh0"]) == len(data["state"])
    assert list(got["dL_dparams"]) == list(data["params"])
    terms = data["loss"] if isinstance(data["loss"], list) else [data["loss"]]  # a summed loss: [[loss]]
    observed = [term for term in terms if term["kind"] == "observations"]
    if observed:
        assert got["dL_dt1"] is None
        assert len(got["dL_dtimes"]) == len(observed[0]["times"])
    else:
        assert got["dL_dtimes"] is None
        assert math.isfinite(got["dL_dt1"])


def test_sir_conserves_population(example_gradients) -> None:
    """S + I + R is constant, so L = R(t1) moves one-for-one with R(0): dL/dR0 = 1."""
    got = json.loads(example_gradients["sir.toml"].stdout)
    rtol = tomllib.loads(SIR.read_text())["solver"]["rtol"]
    assert abs(got["dL_dh0"][2] - 1.0) < TOLERANCE_UNITS * rtol


def test_gradient_text_output_and_method_choice(example_gradients) -> None:
    text = example_gradients["lv-text"]
    assert text.returncode == 0, text.stderr
    adjoint = json.loads(example_gradients["lotka_volterra.toml"].stdout)
    forward = json.loads(example_gradients["lv-forward"].stdout)
    assert forward["method"] != adjoint["method"]
    values = dict(line.split() for line in text.stdout.splitlines()[2:])
    assert set(values) == {"dL/dh0[x]", "dL/dh0[y]", "dL/da", "dL/db", "dL/dc", "dL/dd", "dL/dt0", "dL/dt1"}
    rtol = tomllib.loads(LV.read_text())["solver"]["rtol"]
    # Two independent routes (adjoint backward, forward sensitivities) at the spec's
    # tolerance; Lotka-Volterra over 10 time units amplifies errors by ~1e2-1e3, so
    # 1e4 tolerance units is the bound, still far below an O(1) mistake.
    for name, value in adjoint["dL_dparams"].items():
        assert abs(float(values[f"dL/d{name}"]) - value) <= 1e-9 * abs(value)  # same numbers, printed
        assert abs(forward["dL_dparams"][name] - value) <= 1e4 * rtol * (1 + abs(value))


def test_derive_plain_text_has_the_hand_derived_adjoint(example_gradients) -> None:
    result = example_gradients["derive-lv"]
    assert result.returncode == 0, result.stderr
    lines = {
        line.split(" = ")[0].strip(): line.split(" = ", 1)[1] for line in result.stdout.splitlines() if " = " in line
    }
    # Lotka-Volterra has a parameter named a, so the adjoint is written lambda (symbolic/notation.py).
    names = "x y a b c d t lambda_x lambda_y lambda_a lambda_b lambda_c lambda_d lambda_t"
    symbols = {n: sp.Symbol(n, real=True) for n in names.split()}
    x, y, a, b, c, d, a_x, a_y = (symbols[n] for n in ["x", "y", "a", "b", "c", "d", "lambda_x", "lambda_y"])
    # By hand: da/dt = -(df/dh)^T a and da_theta/dt = -(df/dtheta)^T a for
    # f = [a x - b x y, d x y - c y]; a_t is constant for an autonomous system.
    by_hand = {
        "d(lambda_x)/dt": -(a_x * (a - b * y) + a_y * d * y),
        "d(lambda_y)/dt": -(a_x * (-b * x) + a_y * (d * x - c)),
        "d(lambda_a)/dt": -a_x * x,
        "d(lambda_b)/dt": a_x * x * y,
        "d(lambda_c)/dt": a_y * y,
        "d(lambda_d)/dt": -a_y * x * y,
        "d(lambda_t)/dt": sp.Integer(0),
    }
    for lhs, expected in by_hand.items():
        printed = parse_expression(lines[lhs], symbols, where=lhs)
        assert sp.simplify(printed - expected) == 0, f"{lhs}: printed {printed}, by hand {expected}"
    assert "lambda(t1) = dl/dh(t1)" in result.stdout and "dl/dh = [2*x, 2*y]" in result.stdout


def test_derive_latex_and_markdown(example_gradients, capsys) -> None:
    latex = example_gradients["derive-sir-latex"]
    assert latex.returncode == 0, latex.stderr
    assert latex.stdout.startswith("\\begin{align}") and latex.stdout.rstrip().endswith("\\end{align}")
    assert "\\frac{d a_{S}}{d t}" in latex.stdout and "\\frac{d a_{\\beta}}{d t}" in latex.stdout
    assert cli.main(["derive", str(DECAY), "--markdown", "--form", "jacobian"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.count("$$") % 2 == 0 and "$$" in markdown
    assert "jacobian form" in markdown


def test_derive_observation_loss_mentions_the_jumps(capsys) -> None:
    assert cli.main(["derive", str(OBSERVATIONS)]) == 0
    out = capsys.readouterr().out
    assert "a(t_i-) = a(t_i+) + dl_i/dh(t_i),  dl_i/dh = 2 (h - hhat_i)" in out
    assert "a_t(t_i-) = a_t(t_i+) - dl_i/dh(t_i) . f(h(t_i), t_i)" in out
    assert "t_i in {1, 2, 3, 4}" in out


def test_report_writes_markdown_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run(["report", str(OBSERVATIONS), "-o", str(out), "--quiet"])
    assert result.returncode in (0, 1), result.stderr  # 1 only if a checker finds disagreement
    text = (out / "report.md").read_text()
    for heading in ("# damped oscillator", "## Problem", "## Equations", "## Gradients", "## Plots"):
        assert heading in text
    assert "\\frac{d a_{x}}{d t}" in text
    assert "h0 held fixed" in text
    if importlib.util.find_spec("matplotlib") is None:
        assert "Plots skipped: matplotlib is not installed" in text
    else:
        for png in ("trajectories.png", "adjoint.png"):
            assert f"]({png})" in text
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_matplotlib(tmp_path: Path, monkeypatch, capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code = cli.main(["report", str(DECAY), "-o", str(tmp_path), "--quiet"])
    assert code in (0, 1)
    assert "Plots skipped: matplotlib is not installed" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "trajectories.png").exists()


# -- check: the verifier's verdict and exit code --------------------------------------


@pytest.mark.parametrize("path", [DECAY, LV], ids=lambda p: p.name)
def test_check_examples_agree(path: Path) -> None:
    result = run(["check", str(path), "--json"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)


def test_check_exits_1_when_backsolve_drifts(tmp_path: Path) -> None:
    """Algorithm 1 (backsolve) re-integrates h backward; for a strongly contracting x
    (k = 40 over 10 time units, a factor e^400) the reconstructed state is noise, and y feeds
    on it, so dL/dk must disagree with forward sensitivities and the verdict must say so."""
    (tmp_path / "contracting.toml").write_text(
        'state = ["x", "y"]\nrhs = ["-k*x + y", "-y + x"]\nh0 = [1.0, 1.0]\nt1 = 10.0\n[params]\nk = 40.0\n'
        '[loss]\nkind = "final"\nexpr = "y"\n[solver]\nmethod = "RK45"\nrtol = 1e-6\natol = 1e-9\n'
    )
    result = run(["check", "contracting.toml", "--methods", "backsolve", "forward"], cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "adjoint-sym: verification failed" in result.stderr
    assert "FAIL" in result.stdout


class FakeReport:
    def __init__(self, verdict: str) -> None:
        self.verdict = verdict
        self.ok = verdict == "ok"

    def markdown(self) -> str:
        return f"| fake table | ok={self.ok} |\n"

    def as_dict(self) -> dict:
        return {"ok": self.ok}


@pytest.mark.parametrize(("verdict", "code"), [("ok", 0), ("fail", 1), ("inconclusive", 4)])
def test_check_exit_code_follows_the_verdict(monkeypatch, capsys, verdict: str, code: int) -> None:
    calls = []
    ok = verdict == "ok"

    def fake_check(problem, **options):
        calls.append(options)
        return FakeReport(verdict)

    import adjoint_sym.verify

    monkeypatch.setattr(adjoint_sym.verify, "check", fake_check)
    assert cli.main(["check", str(DECAY), "--json", "--methods", "adjoint", "forward", "--rtol", "1e-7"]) == code
    out, err = capsys.readouterr()
    assert json.loads(out) == {"ok": ok}
    assert calls == [{"solver": "DOP853", "rtol": 1e-7, "atol": 1e-12, "methods": ["adjoint", "forward"]}]
    assert ("verification failed" in err) == (verdict == "fail")
    assert ("verification inconclusive" in err and "no method failed" in err) == (verdict == "inconclusive")


# -- derivations ----------------------------------------------------------------------


def test_derivations_outside_a_checkout_says_where_it_looked(tmp_path: Path, monkeypatch, capsys) -> None:
    """An installed wheel has no derivations/ folder: exit 2 with the place it looked."""
    import adjoint_sym.cli.derivations as cli_main

    installed = tmp_path / "site-packages" / "adjoint_sym" / "cli" / "derivations.py"
    monkeypatch.setattr(cli_main, "__file__", str(installed))
    assert cli.main(["derivations", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "derivations/ folder was not found at" in err and "ship with the source repository" in err


@pytest.mark.slow
def test_derivations_quick_run(tmp_path: Path) -> None:
    result = run(["derivations", "--out", str(tmp_path / "d"), "--quick"])
    assert result.returncode == 0, result.stderr
    on_disk = json.loads((tmp_path / "d" / "verdicts.json").read_text())
    lines = result.stdout.splitlines()  # a table, one line per claim, not the JSON
    assert lines[0].split() == ["claim", "verdict", "correct", "statement"]
    assert [line.split()[:2] for line in lines[1 : 1 + len(on_disk)]] == [[c, v["verdict"]] for c, v in on_disk.items()]


def test_derivations_calls_the_runner(tmp_path: Path, monkeypatch, capsys) -> None:
    import adjoint_sym.cli.derivations as cli_main

    calls = []
    fake = types.ModuleType("_runner")
    verdicts = {"claim_1": {"verdict": "exact", "correct_statement": "s"}}
    fake.run_all = lambda out, quick, progress=None: calls.append((out, quick)) or verdicts
    monkeypatch.setattr(cli_main, "_derivations_runner", lambda: fake)
    assert cli.main(["derivations", "--out", str(tmp_path / "d"), "--quick"]) == 0
    assert calls == [(tmp_path / "d", True)]
    assert capsys.readouterr().out.splitlines()[1].split() == ["claim_1", "exact", "s"]
    assert (tmp_path / "d").is_dir()


# -- help, progress, usage ------------------------------------------------------------


def test_top_level_help_in_a_process() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    for command in ("derive", "gradient", "check", "report", "derivations"):
        assert f"adjoint-sym {command} " in result.stdout, f"no example of {command}"
    assert "h0 held fixed" in result.stdout and "dL_dtimes[i] = dL/dt_i" in result.stdout
    assert "3 numerical failure" in result.stdout


@pytest.mark.parametrize("command", ["derive", "gradient", "check", "report", "derivations"])
def test_each_command_has_help_with_examples(command: str, capsys) -> None:
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"adjoint-sym {command} " in out.split("examples:")[1]
    if command == "gradient":
        assert "with h0 held fixed" in out and "dL_dt1 is null" in out


def test_usage_errors_exit_2(capsys) -> None:
    assert cli.main([]) == 2
    assert cli.main(["gradient"]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["derive", str(DECAY), "--latex", "--markdown"]) == 2
    assert "Traceback" not in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("flags", "shown"), [([], True), (["--quiet"], False), (["-q"], False)])
def test_progress_on_a_terminal_only_unless_quiet(monkeypatch, capsys, flags: list[str], shown: bool) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["gradient", str(DECAY), "--json", *flags]) == 0
    assert ("computing the gradient" in terminal.getvalue()) == shown
    json.loads(capsys.readouterr().out)  # progress never pollutes stdout


# -- bad input: exit 2 with the field named, never a traceback ------------------------

GOOD_TOML = """\
state = ["x"]
rhs = ["-k*x"]
h0 = [1.0]
t1 = 1.0
[params]
k = 0.5
[loss]
kind = "final"
expr = "x**2"
"""
GOOD_JSON = json.dumps(json.loads(DECAY.read_text()))


def _toml(old: str, new: str) -> str:
    assert old in GOOD_TOML
    return GOOD_TOML.replace(old, new)


def _json(old: str, new: str) -> str:
    assert old in GOOD_JSON, old
    return GOOD_JSON.replace(old, new)


#: name -> (file name, content or None for no file, extra arguments, expected message)
BAD_INPUTS: dict[str, tuple[str, str | bytes | None, list[str], str]] = {
    "attribute access": ("a.toml", _toml('"-k*x"', '"-k*x.real"'), [], "rhs[0]: attribute access 'x.real'"),
    "dunder name": ("a.toml", _toml('"-k*x"', '"x.__class__"'), [], "rhs[0]: dunder name '__class__'"),
    "dunder import": (
        "a.toml",
        _toml('"x**2"', "\"__import__('os').system('touch pwned')\""),
        [],
        "loss.expr: dunder name '__import__'",
    ),
    "lambda": (
        "a.toml",
        _toml('"-k*x"', '"(lambda: x)()"'),
        [],
        "rhs[0]: call of a lambda is not allowed: write the expression itself",
    ),
    "huge exponent": ("a.toml", _toml('"-k*x"', '"x**10**10**10"'), [], "rhs[0]: exponent 10000000000 exceeds"),
    "unknown symbol": ("a.toml", _toml('"-k*x"', '"-k*x*z"'), [], "rhs[0]: unknown symbol 'z'"),
    "not TOML": ("a.toml", "state = [x", [], "a.toml: not valid TOML"),
    "not JSON": ("a.json", '{"state": ["x"],', [], "a.json: not valid JSON: Expecting property name"),
    "neither": ("a.txt", "<html>not a spec</html>", [], "a.txt: not valid TOML"),
    "binary": ("a.toml", bytes(range(128, 256)), [], "a.toml: not a text file"),
    "JSON not an object": ("a.json", "[1, 2, 3]", [], "a.json: a JSON spec must be one object"),
    "missing field": ("a.toml", _toml("h0 = [1.0]\n", ""), [], "a.toml: missing field 'h0'"),
    "wrong type": ("a.toml", _toml("t1 = 1.0", 't1 = "one"'), [], "a.toml: t1: expected a number, got str 'one'"),
    "wrong type list": ("a.toml", _toml('state = ["x"]', 'state = "x"'), [], "state: expected a list of strings"),
    "JSON NaN": ("a.json", _json('"k": 0.7', '"k": NaN'), [], "params.k: expected a finite number, got nan"),
    "JSON Infinity": (
        "a.json",
        _json('"h0": [2.0]', '"h0": [Infinity]'),
        [],
        "h0[0]: expected a finite number, got inf",
    ),
    "TOML nan": ("a.toml", _toml("h0 = [1.0]", "h0 = [nan]"), [], "h0[0]: expected a finite number, got nan"),
    "TOML inf": ("a.toml", _toml("t1 = 1.0", "t1 = -inf"), [], "t1: expected a finite number, got -inf"),
    "rhs longer than state": (
        "a.toml",
        _toml('rhs = ["-k*x"]', 'rhs = ["-k*x", "x"]'),
        [],
        "rhs: 2 expressions for 1 state names",
    ),
    "state longer than rhs": (
        "a.toml",
        _toml('state = ["x"]', 'state = ["x", "y"]'),
        [],
        "rhs: 1 expressions for 2 state names",
    ),
    "duplicate state names": (
        "a.toml",
        _toml('state = ["x"]\nrhs = ["-k*x"]\nh0 = [1.0]', 'state = ["x", "x"]\nrhs = ["-k*x", "x"]\nh0 = [1.0, 1.0]'),
        [],
        "duplicate name 'x'",
    ),
    "duplicate JSON key": ("a.json", _json('"t0": 0.0', '"t0": 0.0, "t0": 1.0'), [], "a.json: duplicate key 't0'"),
    "duplicate TOML key": ("a.toml", _toml("k = 0.5", "k = 0.5\nk = 0.6"), [], "a.toml: not valid TOML"),
    "unknown loss kind": ("a.toml", _toml('"final"', '"mse"'), [], "loss.kind: 'mse'; choose one of 'final'"),
    "unknown solver": (
        "a.toml",
        GOOD_TOML + '[solver]\nmethod = "Euler"\n',
        [],
        "solver.method: unknown solver 'Euler'; choose one of",
    ),
    "unknown parameter": ("a.toml", _toml("k = 0.5", "k = 0.5\nkappa = 2.0"), [], "params.kappa: unknown parameter"),
    "unknown field": ("a.toml", "rsh = 1\n" + GOOD_TOML, [], "a.toml: rsh: unknown field"),
    "missing file": ("missing.toml", None, [], "cannot read spec file 'missing.toml': No such file or directory"),
    "unknown solver option": ("a.toml", GOOD_TOML, ["--solver", "Euler"], "--solver: unknown solver 'Euler'"),
    "bad rtol option": ("a.toml", GOOD_TOML, ["--rtol", "0"], "--rtol: a tolerance must lie in (0, 1)"),
    "unknown method": ("a.toml", GOOD_TOML, ["--method", "magic"], "unknown method 'magic'; choose one of"),
}


#: The bad inputs the issue lists, each run as its own process; the rest of the table
#: runs in-process through the same ``main`` (a process costs a second of imports).
IN_A_PROCESS = (
    "attribute access",
    "dunder import",
    "lambda",
    "huge exponent",
    "unknown symbol",
    "not TOML",
    "not JSON",
    "missing field",
    "wrong type",
    "JSON NaN",
    "JSON Infinity",
    "TOML nan",
    "TOML inf",
    "rhs longer than state",
    "duplicate state names",
    "unknown loss kind",
    "unknown solver",
    "unknown parameter",
    "missing file",
    "unknown method",
)


def _write_case(where: Path, case: str) -> list[str]:
    filename, content, extra, _ = BAD_INPUTS[case]
    if isinstance(content, bytes):
        (where / filename).write_bytes(content)
    elif content is not None:
        (where / filename).write_text(content)
    command = "derive" if len(case) % 3 == 0 and not extra else "gradient"  # both validate the same way
    return [command, filename, *extra]


@pytest.fixture(scope="module")
def bad_results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    jobs = {}
    for i, case in enumerate(IN_A_PROCESS):
        where = tmp_path_factory.mktemp(f"bad{i}")
        jobs[case] = (_write_case(where, case), where)
    results = run_many(jobs)
    for case, (_, cwd) in jobs.items():
        results[case].cwd = cwd
    return results


@pytest.mark.parametrize("case", IN_A_PROCESS)
def test_bad_input_exits_2_with_its_message(bad_results, case: str) -> None:
    result = bad_results[case]
    assert_clean_failure(result, 2, "adjoint-sym: error: ", BAD_INPUTS[case][3])
    assert not (result.cwd / "pwned").exists(), "spec text must never be executed"


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_in_process(case: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    args = _write_case(tmp_path, case)
    assert cli.main(args) == 2  # an exception escaping here would be a traceback for the user
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("adjoint-sym: error: ") and BAD_INPUTS[case][3] in err
    assert not (tmp_path / "pwned").exists()


def test_good_versions_of_the_bad_inputs_are_good(tmp_path: Path) -> None:
    """The bad cases are one edit away from a valid spec: their failure is that edit."""
    for name, text in (("a.toml", GOOD_TOML), ("a.json", GOOD_JSON)):
        path = tmp_path / name
        path.write_text(text)
        assert cli.main(["derive", str(path), "--quiet"]) == 0


def test_numerical_failure_exits_3_with_where_and_why(tmp_path: Path) -> None:
    # x' = x^2, x(0) = 1 has the solution 1/(1 - t): it blows up at t = 1 < t1 = 2.
    (tmp_path / "blowup.toml").write_text(
        'state = ["x"]\nrhs = ["x**2"]\nh0 = [1.0]\nt1 = 2.0\n[loss]\nkind = "final"\nexpr = "x"\n'
    )
    result = run(["gradient", "blowup.toml"], cwd=tmp_path)
    assert_clean_failure(result, 3, "adjoint-sym: numerical failure: ", "forward solve")
    where = float(result.stderr.split("at t = ")[1].split()[0])
    assert abs(where - 1.0) < 1e-3, "the failure is located at the blow-up time"


def test_derive_matrix_parameters_one_line_per_entry(tmp_path: Path, capsys) -> None:
    (tmp_path / "linear.toml").write_text(
        'state = ["x", "y"]\nrhs = ["W[0,0]*x + W[0,1]*y + b[0]", "W[1,0]*x + W[1,1]*y + b[1]"]\n'
        "h0 = [1.0, 0.5]\nt1 = 1.0\n[params]\nW = [[-0.5, 1.0], [-1.0, -0.5]]\nb = [[0.1], [0.2]]\n"
        '[loss]\nkind = "final"\nexpr = "x**2"\n'
    )
    assert cli.main(["derive", str(tmp_path / "linear.toml")]) == 0
    out = capsys.readouterr().out
    # d a_W / dt = -a f_W^T: entry (i, j) is -a_i * h_j for f = W h + b.
    for i, ai in enumerate(("a_x", "a_y")):
        for j, hj in enumerate(("x", "y")):
            assert f"da_W[{i},{j}]/dt = -{ai}*{hj}\n" in out
        assert f"da_b[{i},0]/dt = -{ai}\n" in out


def test_version(capsys) -> None:
    import adjoint_sym

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"adjoint-sym {adjoint_sym.__version__}"


# -- output hygiene, budgets and messages (issue 14) ------------------------------------------
def _no_matplotlib(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))


def test_report_refuses_an_empty_output_folder(capsys) -> None:
    assert cli.main(["report", str(DECAY), "-o", "", "--quiet"]) == 2
    assert "-o/--output: the output folder is empty" in capsys.readouterr().err


def test_report_never_writes_through_a_planted_symlink(tmp_path: Path, capsys) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").symlink_to(victim)
    for extra in ([], ["--force"]):
        assert cli.main(["report", str(DECAY), "-o", str(out), "--quiet", *extra]) == 2
        assert "report.md is a symbolic link; it is never written through" in capsys.readouterr().err
    assert victim.read_text() == "precious"
    linked = tmp_path / "linked"
    linked.symlink_to(out)
    assert cli.main(["report", str(DECAY), "-o", str(linked), "--quiet"]) == 2
    assert "the output folder is a symbolic link" in capsys.readouterr().err


def test_report_keeps_an_existing_report_unless_forced(tmp_path: Path, monkeypatch, capsys) -> None:
    _no_matplotlib(monkeypatch)
    (tmp_path / "report.md").write_text("mine")
    assert cli.main(["report", str(DECAY), "-o", str(tmp_path), "--quiet"]) == 2
    assert "report.md exists; pass --force to overwrite it" in capsys.readouterr().err
    assert (tmp_path / "report.md").read_text() == "mine"
    assert cli.main(["report", str(DECAY), "-o", str(tmp_path), "--quiet", "--force"]) in (0, 1)
    assert "## Gradients" in (tmp_path / "report.md").read_text()


def test_report_escapes_the_label_for_markdown_and_html(tmp_path: Path, monkeypatch) -> None:
    _no_matplotlib(monkeypatch)
    spec = json.loads(DECAY.read_text())
    spec["name"] = "<script>alert(1)</script> *bold* `tick`"
    (tmp_path / "s.json").write_text(json.dumps(spec))
    assert cli.main(["report", str(tmp_path / "s.json"), "-o", str(tmp_path / "r"), "--quiet"]) in (0, 1)
    text = (tmp_path / "r" / "report.md").read_text()
    assert "<script>" not in text
    assert "# &lt;script&gt;alert(1)&lt;/script&gt; \\*bold\\* \\`tick\\`" in text


def test_labels_on_the_terminal_are_escaped(tmp_path: Path, capsys) -> None:
    spec = json.loads(DECAY.read_text())
    spec["name"] = "evil\x1b[2J\u202e"
    (tmp_path / "s.json").write_text(json.dumps(spec))
    for command in ("derive", "gradient"):
        assert cli.main([command, str(tmp_path / "s.json"), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "evil\\x1b[2J\\u202e" in out and "\x1b" not in out and "\u202e" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-steps", "0"], "--max-steps: expected a positive integer, got '0'"),
        (["--max-steps", "many"], "--max-steps: expected a positive integer, got 'many'"),
        (["--time-limit", "-1"], "--time-limit: expected a positive number of seconds, got '-1'"),
        (["--limit", "max_states"], "--limit max_states: expected NAME=VALUE with NAME one of max_steps"),
        (["--limit", "colour=red"], "--limit colour=red: expected NAME=VALUE"),
        (["--limit", "max_states=2.5"], "--limit max_states: expected a positive integer, got '2.5'"),
    ],
)
def test_bad_budget_options(args: list[str], message: str, capsys) -> None:
    assert cli.main(["gradient", str(DECAY), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err


def test_budget_options_reach_the_solves_and_the_loader(capsys) -> None:
    assert cli.main(["gradient", str(LV), "--quiet", "--max-steps", "20"]) == 3
    assert "the step budget of 20 steps (max_steps) is used up" in capsys.readouterr().err
    assert cli.main(["derive", str(LV), "--quiet", "--limit", "max_states=1"]) == 2
    assert "more than the max_states limit of 1" in capsys.readouterr().err
    assert cli.main(["gradient", str(LV), "--quiet", "--max-steps", "1_000_000", "--time-limit", "600"]) == 0


def test_symbolic_work_past_the_time_limit_is_interrupted(monkeypatch, capsys) -> None:
    """Solves check the time limit themselves; anything else is stopped by an alarm."""
    import time as time_module

    from adjoint_sym.cli import derive as derive_module

    def slow(args, progress):
        progress.step("deriving something enormous")
        time_module.sleep(30)
        return 0

    monkeypatch.setattr(derive_module, "cmd_derive", slow)
    monkeypatch.setattr("adjoint_sym.cli.app._ALARM_GRACE", 0.0)
    assert cli.main(["derive", str(DECAY), "--quiet", "--time-limit", "0.3"]) == 3
    err = capsys.readouterr().err
    assert "the time limit (0.3 s) was reached while deriving something enormous" in err
    assert "--time-limit" in err


def test_long_messages_are_cut_and_escaped(monkeypatch, capsys) -> None:
    from adjoint_sym.cli import derive as derive_module
    from adjoint_sym.cli.common import MAX_MESSAGE
    from adjoint_sym.errors import InvalidModelError

    def noisy(args, progress):
        raise InvalidModelError("\x1b[31m" + "z" * 10_000)

    monkeypatch.setattr(derive_module, "cmd_derive", noisy)
    assert cli.main(["derive", str(DECAY), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("adjoint-sym: error: \\x1b[31mzzz") and "\x1b" not in err
    assert len(err) < MAX_MESSAGE + 200 and "more characters)" in err


def test_progress_updates_rewrite_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = cli.Progress(enabled=True, stream=stream)
    progress.update("forward solve (DOP853): t = 1 of [0, 10], 100 steps")
    progress.update("forward solve (DOP853): t = 2 of [0, 10], 200 steps")
    progress.step("done\x1b[2J")
    lines = stream.getvalue().split("\n")
    assert lines[0].count("\r") == 2 and lines[0].endswith("200 steps\x1b[K")  # one line, rewritten
    assert lines[1].endswith("done\\x1b[2J")  # a new stage starts a new line, user text escaped


def test_output_files_are_opened_without_following_links(tmp_path: Path) -> None:
    """The check before the work and the open itself both refuse: a link planted in between
    is not followed (O_NOFOLLOW), an existing file is not replaced without --force (O_EXCL)."""
    from adjoint_sym.cli.report import open_output
    from adjoint_sym.errors import InvalidModelError

    (tmp_path / "victim").write_text("precious")
    (tmp_path / "link.md").symlink_to(tmp_path / "victim")
    with pytest.raises(InvalidModelError, match=r"link\.md' is a symbolic link; it is never written through"):
        open_output(tmp_path / "link.md", True, "w")
    (tmp_path / "old.md").write_text("mine")
    with pytest.raises(InvalidModelError, match=r"old\.md' exists; pass --force to overwrite it"):
        open_output(tmp_path / "old.md", False, "w")
    with open_output(tmp_path / "old.md", True, "w") as f:
        f.write("new")
    assert (tmp_path / "old.md").read_text() == "new" and (tmp_path / "victim").read_text() == "precious"
