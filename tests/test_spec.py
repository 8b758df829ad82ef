"""Spec files: every example loads, TOML and JSON agree, and every invalid field is named."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from adjoint_sym.cli.spec import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    DEFAULT_SOLVER,
    load_spec,
    parse_text,
    spec_from_dict,
)
from adjoint_sym.errors import InvalidModelError, UnsupportedExpressionError
from adjoint_sym.numeric.loss import FinalLoss, ObservationLoss

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

DECAY = {
    "state": ["x"],
    "rhs": ["-k*x"],
    "params": {"k": 0.5},
    "h0": [2.0],
    "t1": 1.0,
    "loss": {"kind": "final", "expr": "x**2"},
}


def with_(**changes) -> dict:
    data = copy.deepcopy(DECAY)
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


_DROP = object()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")) + sorted(EXAMPLES.glob("*.json")), ids=str)
def test_every_example_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.source == str(path)
    assert spec.problem.system.n == len(spec.problem.h0)
    assert spec.name


def test_toml_and_json_give_the_same_problem(tmp_path: Path) -> None:
    toml_text = """
    state = ["x", "y"]
    rhs = ["a*x - b*x*y", "d*x*y - c*y"]
    h0 = [1.0, 1.0]
    t0 = 0.5
    t1 = 3.0
    [params]
    a = 1.5
    b = 1.0
    c = 3.0
    d = 1.0
    [loss]
    kind = "final"
    expr = "x**2 + y**2"
    [solver]
    method = "RK45"
    rtol = 1e-7
    atol = 1e-9
    """
    (tmp_path / "lv.toml").write_text(toml_text)
    data = parse_text(toml_text, fmt="toml")
    (tmp_path / "lv.json").write_text(json.dumps(data))
    a, b = load_spec(tmp_path / "lv.toml"), load_spec(tmp_path / "lv.json")
    assert a.problem.system == b.problem.system
    for field in ("h0", "theta"):
        np.testing.assert_array_equal(getattr(a.problem, field), getattr(b.problem, field))
    assert (a.problem.t0, a.problem.t1) == (b.problem.t0, b.problem.t1) == (0.5, 3.0)
    assert a.solver == b.solver
    assert (a.solver.method, a.solver.rtol, a.solver.atol) == ("RK45", 1e-7, 1e-9)
    assert a.problem.loss == FinalLoss("x**2 + y**2")


def test_defaults_for_optional_fields() -> None:
    spec = spec_from_dict(DECAY, name="decay")
    assert spec.name == "decay"
    assert spec.problem.t0 == 0.0
    assert spec.problem.system.t.name == "t"
    assert (spec.solver.method, spec.solver.rtol, spec.solver.atol) == (DEFAULT_SOLVER, DEFAULT_RTOL, DEFAULT_ATOL)


def test_name_field_wins_over_file_stem() -> None:
    assert spec_from_dict(with_(name="my decay"), name="decay").name == "my decay"


def test_matrix_parameters_and_observation_expressions() -> None:
    data = with_(
        state=["x", "y"],
        rhs=["W[0,0]*x + W[0,1]*y + b[0]", "W[1,0]*x + W[1,1]*y + b[1]"],
        params={"W": [[-0.5, 1.0], [-1.0, -0.5]], "b": [[0.1], [0.2]]},
        h0=[1.0, 0.5],
        loss={"kind": "observations", "times": [0.5, 1.0], "expr": ["x**2", "t*y"]},
    )
    spec = spec_from_dict(data)
    assert spec.problem.system.param_shapes == {"W": (2, 2), "b": (2, 1)}
    np.testing.assert_array_equal(spec.problem.theta, [-0.5, 1.0, -1.0, -0.5, 0.1, 0.2])
    assert isinstance(spec.problem.loss, ObservationLoss)
    np.testing.assert_array_equal(spec.problem.times, [0.5, 1.0])


def test_observation_targets() -> None:
    data = with_(loss={"kind": "observations", "times": [0.5, 1.0], "targets": [[1.0], [0.5]]})
    loss = spec_from_dict(data).problem.loss
    np.testing.assert_array_equal(loss.targets, [[1.0], [0.5]])


def test_parse_text_guesses_json_from_a_brace() -> None:
    assert parse_text('  {"t1": 1}') == {"t1": 1}
    assert parse_text("t1 = 1") == {"t1": 1}


# Each invalid spec, and the words its message must contain (the field first).
BAD = {
    "missing rhs": (with_(rhs=_DROP), "missing field 'rhs'"),
    "missing loss": (with_(loss=_DROP), "missing field 'loss'"),
    "unknown top-level field": (with_(rsh=["x"]), "rsh: unknown field"),
    "state not a list": (with_(state="x"), "state: expected a list of strings, got str 'x'"),
    "state empty": (with_(state=[], rhs=[]), "state: the list is empty"),
    "state entry not a string": (with_(state=[1]), "state[0]: expected a string, got int 1"),
    "rhs entry not a string": (with_(rhs=[3]), "rhs[0]: expected a string, got int 3"),
    "rhs longer than state": (with_(rhs=["-k*x", "x"]), "rhs: 2 expressions for 1 state names"),
    "h0 shorter than state": (with_(h0=[]), "h0: 0 values for 1 state names"),
    "h0 not a list": (with_(h0=2.0), "h0: expected a list of numbers, got float 2.0"),
    "h0 string entry": (with_(h0=["1"]), "h0[0]: expected a number, got str '1'"),
    "h0 boolean": (with_(h0=[True]), "h0[0]: expected a number, got bool True"),
    "h0 nan": (with_(h0=[math.nan]), "h0[0]: expected a finite number, got nan"),
    "t1 inf": (with_(t1=math.inf), "t1: expected a finite number, got inf"),
    "t0 -inf": (with_(t0=-math.inf), "t0: expected a finite number, got -inf"),
    "t1 string": (with_(t1="10"), "t1: expected a number, got str '10'"),
    "t1 huge integer": (with_(t1=10**400), "t1: number out of range"),
    "time not a string": (with_(time=1), "time: expected a string"),
    "name not a string": (with_(name=3), "name: expected a string"),
    "params not a table": (with_(params=[0.5]), "params: expected a table of name = value"),
    "param nan": (with_(params={"k": math.nan}), "params.k: expected a finite number, got nan"),
    "param string": (with_(params={"k": "0.5"}), "params.k: expected a number, got str '0.5'"),
    "param ragged matrix": (with_(params={"k": [[1.0, 2.0], [3.0]]}), "params.k: matrix rows must be"),
    "param flat list": (with_(params={"k": [1.0, 2.0]}), "params.k: expected a number or a matrix as a list of rows"),
    "unused parameter": (with_(params={"k": 0.5, "kk": 1.0}), "params.kk: unknown parameter"),
    "missing parameter": (with_(params={}), "rhs[0]: unknown symbol 'k'"),
    "unknown symbol": (with_(rhs=["-k*x*z"]), "rhs[0]: unknown symbol 'z'"),
    "duplicate state": (
        with_(state=["x", "x"], rhs=["-k*x", "x"], h0=[1.0, 1.0]),
        "duplicate name 'x'",
    ),
    "param named like a state": (with_(params={"x": 1.0}, rhs=["-x"]), "duplicate name 'x'"),
    "time named like a state": (with_(time="x"), "state contains 'x', which is the time symbol"),
    "state named like a function": (with_(state=["exp"], rhs=["-k*exp"]), "'exp' is the name of a built-in"),
    "loss not a table": (with_(loss="x**2"), "loss: expected a table with a 'kind', got str 'x**2'"),
    "loss kind missing": (with_(loss={"expr": "x"}), "loss.kind: missing; choose one of 'final', 'observations'"),
    "loss kind unknown": (with_(loss={"kind": "mse", "expr": "x"}), "loss.kind: 'mse'; choose one of"),
    "loss field unknown": (with_(loss={"kind": "final", "expr": "x", "times": [1.0]}), "loss.times: unknown field"),
    "final loss without expr": (with_(loss={"kind": "final"}), "loss.expr: missing"),
    "final loss expr not text": (with_(loss={"kind": "final", "expr": 2}), "loss.expr: expected a string"),
    "loss expr unknown symbol": (with_(loss={"kind": "final", "expr": "q"}), "loss.expr: unknown symbol 'q'"),
    "observations without times": (with_(loss={"kind": "observations", "expr": "x"}), "loss.times: missing"),
    "observations empty times": (with_(loss={"kind": "observations", "times": [], "expr": "x"}), "loss.times: the"),
    "observations both": (
        with_(loss={"kind": "observations", "times": [1.0], "expr": "x", "targets": [[1.0]]}),
        "exactly one of 'targets' or 'expr'",
    ),
    "targets rows": (
        with_(loss={"kind": "observations", "times": [0.5, 1.0], "targets": [[1.0]]}),
        "loss.targets: 1 rows for 2 observation times",
    ),
    "targets width": (
        with_(loss={"kind": "observations", "times": [1.0], "targets": [[1.0, 2.0]]}),
        "loss.targets[0]: 2 values for a state of 1",
    ),
    "targets nan": (
        with_(loss={"kind": "observations", "times": [1.0], "targets": [[math.nan]]}),
        "loss.targets[0][0]: expected a finite number, got nan",
    ),
    "times not ending at t1": (
        with_(loss={"kind": "observations", "times": [0.5], "expr": "x"}),
        "the last observation time 0.5 must equal t1",
    ),
    "solver unknown": (with_(solver={"method": "Euler"}), "solver.method: unknown solver 'Euler'; choose one of"),
    "solver rtol negative": (with_(solver={"rtol": -1e-8}), "solver.rtol: a tolerance must lie in (0, 1)"),
    "solver atol string": (with_(solver={"atol": "tight"}), "solver.atol: expected a number"),
    "solver field unknown": (with_(solver={"order": 5}), "solver.order: unknown field"),
    "solver not a table": (with_(solver="LSODA"), "solver: expected a table"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_invalid_specs_name_the_field(case: str) -> None:
    data, message = BAD[case]
    with pytest.raises(InvalidModelError) as info:
        spec_from_dict(data, source="bad.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("bad.toml: "), "every message names the file"


HOSTILE = {
    "attribute access": ("x.real", "attribute access 'x.real' is not allowed"),
    "dunder name": ("x.__class__", "dunder name '__class__' is not allowed"),
    "dunder import": ("__import__('os').system('echo pwned')", "dunder name '__import__' is not allowed"),
    "lambda": ("(lambda: x)()", "lambda"),
    "huge exponent": ("x**10**10**10", "exceeds the limit"),
    "huge constant power": ("1e300**2 * x", "too large"),
    "string constant": ("'x'", "is not a number"),
    "comprehension": ("[x for x in (1, 2)]", "not allowed"),
    "keyword call": ("exp(x=1)", "keyword arguments"),
    "unknown function": ("eval(x)", "function 'eval' is not allowed"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
@pytest.mark.parametrize("field", ["rhs", "loss"])
def test_hostile_expressions_are_refused(case: str, field: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # had anything run, it would leave traces here
    text, message = HOSTILE[case]
    if field == "rhs":
        data, where = with_(rhs=[text]), "rhs[0]"
    else:
        data, where = with_(loss={"kind": "final", "expr": text}), "loss.expr"
    with pytest.raises(UnsupportedExpressionError) as info:
        spec_from_dict(data)
    assert str(info.value).startswith(f"{where}: ")
    assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.json", '{"state": ["x"],', "a.json: not valid JSON: Expecting property name"),
        ("a.json", "[1, 2]", "a.json: a JSON spec must be one object"),
        ("a.json", '{"t1": 1, "t1": 2}', "a.json: duplicate key 't1'"),
        ("a.json", "[" * 100_000 + "]" * 100_000, "a.json: not valid JSON"),
        ("a.toml", "state = [x]", "a.toml: not valid TOML"),
        ("a.txt", "hello: world", "a.txt: not valid TOML"),
        ("a.txt", "hello: world", "format guessed from the content"),
        ("a.txt", '{"a": }', "a.txt: not valid JSON"),
    ],
)
def test_unparsable_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidModelError) as info:
        load_spec(path)
    assert message in str(info.value).replace(str(tmp_path) + "/", "")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(InvalidModelError, match="not a text file"):
        load_spec(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match=r"cannot read spec file .*No such file"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(InvalidModelError, match="cannot read spec file"):
        load_spec(tmp_path)


def test_json_nan_and_infinity_literals(tmp_path: Path) -> None:
    (tmp_path / "n.json").write_text(json.dumps(with_(h0=[math.nan])))  # json writes NaN
    with pytest.raises(InvalidModelError, match=r"h0\[0\]: expected a finite number, got nan"):
        load_spec(tmp_path / "n.json")
    (tmp_path / "i.json").write_text(json.dumps(with_(params={"k": -math.inf})))
    with pytest.raises(InvalidModelError, match=r"params\.k: expected a finite number, got -inf"):
        load_spec(tmp_path / "i.json")


def test_toml_nan_and_inf_literals(tmp_path: Path) -> None:
    text = 'state = ["x"]\nrhs = ["-k*x"]\nh0 = [nan]\nt1 = 1.0\n[params]\nk = 1\n[loss]\nkind = "final"\nexpr = "x"\n'
    (tmp_path / "n.toml").write_text(text)
    with pytest.raises(InvalidModelError, match=r"h0\[0\]: expected a finite number, got nan"):
        load_spec(tmp_path / "n.toml")
    (tmp_path / "i.toml").write_text(text.replace("h0 = [nan]", "h0 = [1.0]").replace("t1 = 1.0", "t1 = +inf"))
    with pytest.raises(InvalidModelError, match="t1: expected a finite number, got inf"):
        load_spec(tmp_path / "i.toml")


# -- reading with a bound, and the [limits] table (issue 14) ----------------------------------
def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(DECAY).encode())
    (tmp_path / "bom.toml").write_bytes(
        b"\xef\xbb\xbf" + b'state = ["x"]\nrhs = ["-k*x"]\nh0 = [2.0]\nt1 = 1.0\n[params]\nk = 0.5\n'
        b'[loss]\nkind = "final"\nexpr = "x**2"\n'
    )
    assert load_spec(tmp_path / "bom.json").problem.params == load_spec(tmp_path / "bom.toml").problem.params


def test_a_directory_is_refused_by_kind(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match=r"it is a directory; give a \.toml or \.json file"):
        load_spec(tmp_path)


def test_a_file_growing_past_the_bound_is_cut_and_refused(tmp_path: Path) -> None:
    from adjoint_sym.cli.spec import read_bounded

    path = tmp_path / "big.json"
    path.write_bytes(b" " * 101)
    with pytest.raises(InvalidModelError, match="file is 101 bytes; a spec may be at most 100"):
        read_bounded(path, limit=100)
    assert read_bounded(path, limit=101) == b" " * 101


def test_integer_literals_past_python_digit_limit(tmp_path: Path) -> None:
    (tmp_path / "big.toml").write_text('state = ["x"]\nt1 = ' + "9" * 5000 + "\n")
    with pytest.raises(InvalidModelError, match="not valid TOML: an integer literal has more than 4300 digits"):
        load_spec(tmp_path / "big.toml")


def test_unknown_keys_are_escaped_cut_short_and_get_a_hint() -> None:
    with pytest.raises(InvalidModelError) as info:
        spec_from_dict(with_(rhss=["-k*x"]))
    assert "rhss: unknown field; did you mean 'rhs'?" in str(info.value)
    with pytest.raises(InvalidModelError) as info:
        spec_from_dict(with_(**{"k" * 100_000: 1}))
    assert "(100000 characters): unknown field" in str(info.value) and len(str(info.value)) < 300
    with pytest.raises(InvalidModelError) as info:
        spec_from_dict(with_(loss={"kind": "final", "expr": "x", "\x1b[2J": 1}))
    assert "loss.\\x1b[2J: unknown field" in str(info.value)


def test_limits_table_applies_while_the_problem_is_built() -> None:
    data = with_(state=["x", "y"], rhs=["-k*x", "-y"], h0=[1.0, 1.0], limits={"max_states": 1})
    with pytest.raises(InvalidModelError, match="state: 2 state variables, more than the max_states limit of 1"):
        spec_from_dict(data)
    spec = spec_from_dict(data, limit_overrides={"max_states": 5})  # the command line wins
    assert spec.limits == {"max_states": 5}
    assert spec_from_dict(with_(limits={"max_steps": 10, "time_limit": 2.5})).limits == {
        "max_steps": 10,
        "time_limit": 2.5,
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"max_step": 10}, "limits.max_step: unknown field; did you mean 'max_steps'?"),
        ({"max_steps": 0}, "limits.max_steps: must be a positive integer, got 0"),
        ({"max_steps": 1.5}, "limits.max_steps: must be a positive integer, got 1.5"),
        ({"time_limit": -1}, "limits.time_limit: must be a positive number of seconds or None, got -1"),
        ({"time_limit": "1"}, "limits.time_limit: must be a positive number of seconds or None, got '1'"),
        ([1], "limits: expected a table of name = value, got list [1]"),
    ],
)
def test_bad_limits_tables_are_named(table, message) -> None:
    with pytest.raises(InvalidModelError) as info:
        spec_from_dict(with_(limits=table))
    assert message in str(info.value)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_a_file_longer_than_its_size_says_is_cut_at_the_bound() -> None:
    """/proc files are regular but report size 0, like a file growing after stat: the read
    itself stops at the bound."""
    from adjoint_sym.cli.spec import read_bounded

    with pytest.raises(InvalidModelError, match="file is more than 10 bytes; a spec may be at most 10"):
        read_bounded(Path("/proc/self/maps"), limit=10)
