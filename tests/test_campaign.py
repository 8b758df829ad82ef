"""Campaigns: reproducible problems, one record per verdict, resumable, on Dask or in one process.

The expensive parts are kept small: tiny problems, the methods ``adjoint`` and
``forward`` (the cheapest reference), 20 problems on a 2-worker cluster at most.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from adjoint_sym import ObservationLoss
from adjoint_sym.campaign import (
    FAMILIES,
    build_problem,
    problem_spec,
    read_records,
    run_campaign,
    run_problem,
    summarize,
)
from adjoint_sym.campaign.problems import family_of
from adjoint_sym.campaign.verdict import Settings
from adjoint_sym.campaign.watchdog import ProblemTimeout, run_with_limit
from adjoint_sym.cli import main
from adjoint_sym.cli.campaign import CampaignProgress
from adjoint_sym.cli.common import Progress
from adjoint_sym.cli.spec import spec_from_dict
from adjoint_sym.errors import InvalidModelError
from adjoint_sym.numeric.solve import IMPLICIT
from adjoint_sym.testing.mutants import handwritten_adjoint, mutant

CHEAP = ["adjoint", "forward"]
#: Families a hand-written DOP853 adjoint handles quickly (stiff problems would crawl).
NON_STIFF = ["equilibrium", "long_span", "growing", "neural", "observation", "backward"]
PLANTED = """\
import os
from adjoint_sym.testing.mutants import handwritten_adjoint, mutant

flipped = mutant("flipped_sign")
correct = handwritten_adjoint


def killer(problem):
    os._exit(1)
"""


def _dask_or_skip():
    return pytest.importorskip("distributed", reason="the [campaign] extra (dask.distributed) is not installed")


def _verdicts(path: Path) -> dict[int, tuple]:
    out = {}
    for r in read_records(path):
        out[r["index"]] = (r["verdict"], sorted((f["quantity"], f["method"]) for f in r["failures"]), r["problem"])
    return out


# -- problems ---------------------------------------------------------------------------------
def test_the_same_seed_draws_the_same_specs_in_another_process():
    here = [problem_spec(11, i) for i in range(14)]
    assert here == [problem_spec(11, i) for i in range(14)]
    code = "import json; from adjoint_sym.campaign import problem_spec as p; "
    code += "print(json.dumps([p(11, i) for i in range(14)]))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # set and dict order may not leak into the draws
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    assert json.loads(there.stdout) == json.loads(json.dumps(here))
    assert problem_spec(12, 3) != problem_spec(11, 3) and problem_spec(11, 3) != problem_spec(11, 10)


def test_expression_specs_are_spec_files_of_the_cli():
    for i in range(21):
        spec = problem_spec(3, i)
        if "network" in spec:
            continue
        ours, theirs = build_problem(spec), spec_from_dict(json.loads(json.dumps(spec))).problem
        assert ours.system == theirs.system and repr(ours.loss) == repr(theirs.loss), spec["name"]
        assert np.array_equal(ours.h0, theirs.h0) and np.array_equal(ours.theta, theirs.theta)
        assert (ours.t0, ours.t1) == (theirs.t0, theirs.t1)


def test_the_families_visit_their_regimes():
    """Each family's defining property, measured on the built problems (not read from the spec's name)."""
    seen = {name: 0 for name in FAMILIES}
    for i in range(80):
        spec, family = problem_spec(5, i), family_of(i, tuple(FAMILIES))
        prob = build_problem(spec)
        span = prob.t1 - prob.t0
        seen[family] += 1
        jac = np.asarray(prob.kernels.jac_h(prob.t0, prob.h0, prob.theta), dtype=float)
        if family == "equilibrium":  # at rest (f(h0) = 0 exactly), or a zero component that stays zero
            f = prob.kernels.f(prob.t0, prob.h0, prob.theta)
            assert np.all(f == 0) or (np.any(prob.h0 == 0) and np.all(f[prob.h0 == 0] == 0)), spec
        elif family == "long_span":
            assert 3 <= span <= 10
        elif family == "growing":  # a mode with positive real part, amplified by e^2 .. e^8
            growth = np.max(np.linalg.eigvals(jac).real) * span
            assert 0 < growth <= 8 + 1e-9, (spec, growth)
        elif family == "stiff":
            assert spec["solver"]["method"] in IMPLICIT
            assert np.max(np.abs(np.linalg.eigvals(jac))) * span >= 100 or "robertson" in spec["name"]
        elif family == "neural":
            assert prob.system.is_matrix_level
        elif family == "observation":
            assert isinstance(prob.loss, ObservationLoss) and span > 0
        elif family == "backward":
            assert prob.t1 < prob.t0
        elif family == "integral":  # its regimes: tests/test_campaign_integral.py
            assert prob.running_cost is not None
    assert all(count == 10 for count in seen.values())


def test_problems_of_one_template_share_one_system_and_its_kernels():
    """What makes a worker compile once per template: equal specs' systems are one object."""
    specs = [problem_spec(9, i, ["growing"]) for i in range(30)]
    by_template: dict[str, list] = {}
    for spec in specs:
        by_template.setdefault(spec["name"], []).append(build_problem(spec))
    assert len(by_template) == 3  # exponential, saddle, unstable-spiral
    for problems in by_template.values():
        assert len({id(p.system) for p in problems}) == 1 and len({id(p.kernels) for p in problems}) == 1
        assert len({p.theta.tobytes() for p in problems}) == len(problems)  # the values differ


@pytest.mark.parametrize(
    ("families", "message"),
    [
        (["stif"], "unknown family 'stif'; choose among equilibrium, long_span"),
        ([], "families must be a non-empty list"),
    ],
)
def test_unknown_families_are_refused(families, message):
    with pytest.raises(InvalidModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        problem_spec(0, 0, families)


def test_a_planned_family_is_refused_with_what_it_waits_for(monkeypatch):
    from adjoint_sym.campaign import families

    monkeypatch.setitem(families.PLANNED, "chaotic", "chaotic systems need a shadowing reference")
    with pytest.raises(InvalidModelError, match=r"^family 'chaotic' is planned: chaotic systems need a shadowing ref"):
        problem_spec(0, 0, ["chaotic"])


def test_a_spec_with_a_missing_field_or_builder_is_refused():
    spec = problem_spec(0, 4, ["neural"])
    with pytest.raises(InvalidModelError, match="lacks field 'h0'"):
        build_problem({k: v for k, v in spec.items() if k != "h0"})
    with pytest.raises(InvalidModelError, match=r"unknown builder 'os\.system'"):
        build_problem({**spec, "network": {"builder": "os.system"}})
    with pytest.raises(InvalidModelError, match="lacks field 'state'"):
        build_problem({k: v for k, v in problem_spec(0, 0).items() if k != "state"})
    with pytest.raises(InvalidModelError, match=r"^loss\.kind: 'running'; a campaign problem's loss is 'final', 'obs"):
        build_problem({**problem_spec(0, 0), "loss": {"kind": "running", "expr": "x"}})


# -- the results file ------------------------------------------------------------------------
def test_every_verdict_is_one_line_with_its_spec_and_timings(tmp_path):
    out = tmp_path / "r.jsonl"
    summary = run_campaign(7, out, seed=2, methods=CHEAP, workers=0)
    lines = out.read_text().splitlines()
    assert len(lines) == 7 and summary.problems == 7 and summary.computed == 7
    for i, line in enumerate(lines):
        record = json.loads(line)
        assert record["index"] == i and record["family"] == list(FAMILIES)[i]
        assert record["problem"] == problem_spec(2, i)
        assert record["verdict"] in ("ok", "fail", "inconclusive") and record["error"] is None
        assert record["timings"]["total"] >= record["timings"]["checker"] > 0
        assert record["config"] == {"seed": 2, "families": list(FAMILIES), "methods": CHEAP, "function": None,
                                    "function_rtol": None}  # fmt: skip
    assert sum(summary.verdicts.values()) == 7 and summary.problems_per_minute > 0


def test_an_interrupted_run_resumes_without_repeating_work(tmp_path):
    out = tmp_path / "r.jsonl"
    run_campaign(8, out, seed=4, methods=CHEAP, workers=0)
    first = out.read_text().splitlines()
    summary = run_campaign(20, out, seed=4, methods=CHEAP, workers=0, resume=True)
    lines = out.read_text().splitlines()
    assert lines[:8] == first  # the first 8 records untouched: same verdicts, same timestamps
    assert sorted(json.loads(line)["index"] for line in lines) == list(range(20))
    assert summary.computed == 12 and summary.problems == 20
    again = run_campaign(20, out, seed=4, methods=CHEAP, workers=0, resume=True)
    assert again.computed == 0 and out.read_text().splitlines() == lines


def test_a_truncated_last_line_is_dropped_and_recomputed(tmp_path):
    out = tmp_path / "r.jsonl"
    run_campaign(8, out, seed=4, methods=CHEAP, workers=0)
    text = out.read_text()
    out.write_text(text[: len(text) - 40])  # killed in the middle of writing record 7
    assert [r["index"] for r in read_records(out)] == list(range(7))
    summary = run_campaign(10, out, seed=4, methods=CHEAP, workers=0, resume=True)
    assert summary.computed == 3
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == list(range(10))


def test_a_results_file_is_never_overwritten_or_mixed(tmp_path):
    out = tmp_path / "r.jsonl"
    run_campaign(2, out, seed=1, methods=CHEAP, workers=0)
    with pytest.raises(InvalidModelError, match="already holds results; pass --resume"):
        run_campaign(2, out, seed=1, methods=CHEAP, workers=0)
    with pytest.raises(InvalidModelError, match="written with seed = 1 but this run has seed = 2"):
        run_campaign(4, out, seed=2, methods=CHEAP, workers=0, resume=True)
    with pytest.raises(InvalidModelError, match="written with methods = \\['adjoint', 'forward'\\]"):
        run_campaign(4, out, seed=1, workers=0, resume=True)
    lines = out.read_text().splitlines()
    out.write_text("\n".join([lines[0], "not json", lines[1]]) + "\n")
    with pytest.raises(InvalidModelError, match="line 2 is not a JSON record; the file is damaged"):
        run_campaign(4, out, seed=1, methods=CHEAP, workers=0, resume=True)
    out.write_text('{"no_index": 1}\n')
    with pytest.raises(InvalidModelError, match="line 1 is not a campaign record"):
        read_records(out)
    with pytest.raises(InvalidModelError, match=r"the folder .* does not exist"):
        run_campaign(1, tmp_path / "missing" / "r.jsonl", workers=0)


# -- gradient functions ----------------------------------------------------------------------
def test_a_planted_bug_is_recorded_as_failing_and_the_correct_adjoint_is_not(tmp_path):
    kwargs = {"seed": 8, "families": NON_STIFF, "workers": 0}
    bad = run_campaign(6, tmp_path / "bad.jsonl", function=mutant("flipped_sign"), **kwargs)
    good = run_campaign(6, tmp_path / "good.jsonl", function=handwritten_adjoint, **kwargs)
    assert bad.verdicts["fail"] == 6 and "not explained by tolerances" in bad.failures_by_cause
    assert good.verdicts["ok"] == 6, good.text()
    record = read_records(tmp_path / "bad.jsonl")[0]
    assert record["config"]["function"].endswith("mutant.<locals>.gradient_function")
    assert {f["method"] for f in record["failures"]} == {record["config"]["function"]}
    assert not bad.ok and good.ok


def test_a_function_that_raises_or_hangs_is_a_crash_and_the_campaign_goes_on(tmp_path):
    def broken(problem):
        raise ValueError("my adjoint has no observation support")

    def spins(problem):
        while True:
            pass

    summary = run_campaign(2, tmp_path / "a.jsonl", function=broken, families=["growing"], workers=0)
    assert summary.crashes == {"function: ValueError": 2}
    record = read_records(tmp_path / "a.jsonl")[1]
    assert record["error"]["message"] == "my adjoint has no observation support" and record["verdict"] == "crash"
    summary = run_campaign(2, tmp_path / "b.jsonl", function=spins, families=["growing"], workers=0, timeout=0.3)
    assert summary.crashes == {"timeout: ProblemTimeout": 2} and summary.problems == 2


def test_a_missing_time_derivative_is_not_judged_and_says_so(tmp_path):
    def without_dtimes(problem):
        result = handwritten_adjoint(problem)
        del result["dtimes"]
        return result

    summary = run_campaign(1, tmp_path / "r.jsonl", function=without_dtimes, families=["observation"], workers=0)
    record = read_records(tmp_path / "r.jsonl")[0]
    assert summary.verdicts["ok"] == 1 and any("dL/dt_i not returned" in n for n in record["notes"])
    assert not any("dL/dt_obs" in f["quantity"] for f in record["failures"])


def test_the_watchdog_interrupts_a_worker_thread():
    caught = []

    def work():
        try:
            run_with_limit(lambda: [None for _ in iter(int, 1)], 0.2)  # an endless Python loop
        except ProblemTimeout as exc:
            caught.append(str(exc))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and caught == ["no verdict within 0.2 s"]
    assert run_with_limit(lambda: "done", 0.2) == "done"


# -- Dask ------------------------------------------------------------------------------------
def test_a_two_worker_local_cluster_gives_the_verdicts_of_one_process(tmp_path):
    _dask_or_skip()
    here, there = tmp_path / "here.jsonl", tmp_path / "there.jsonl"
    run_campaign(20, here, seed=6, methods=CHEAP, workers=0)
    summary = run_campaign(20, there, seed=6, methods=CHEAP, workers=2)
    assert summary.engine == "Dask LocalCluster, 2 worker processes"
    assert len(there.read_text().splitlines()) == 20
    assert _verdicts(there) == _verdicts(here) and sorted(_verdicts(there)) == list(range(20))
    workers = {r["worker"] for r in read_records(there)}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One 2-worker cluster for the tests that bring their own scheduler: its workers can
    import ``planted`` (spawned workers inherit ``sys.path``), and a worker that dies takes
    its task with it at once (``allowed-failures = 0``; the default retries thrice)."""
    _dask_or_skip()
    import dask
    from distributed import LocalCluster

    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted.py").write_text(PLANTED)
    sys.path.insert(0, str(folder))
    try:
        no_retries = dask.config.set({"distributed.scheduler.allowed-failures": 0})
        with no_retries, LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as c:
            yield c.scheduler_address
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("planted", None)


def test_the_command_campaigns_a_named_function_on_an_existing_cluster(tmp_path, cluster, capsys):
    out = tmp_path / "nightly.jsonl"
    args = ["campaign", "--problems", "4", "--seed", "1", "--families", *NON_STIFF[:4], "--function", "planted:flipped"]
    assert main([*args, "--scheduler", cluster, "--out", str(out)]) == 1
    stdout = capsys.readouterr().out
    assert f"engine: Dask scheduler {cluster}, 2 workers, 2 threads" in stdout
    assert "verdicts: ok 0 (0.0%), fail 4 (100.0%)" in stdout
    assert [r["verdict"] for r in read_records(out)] == ["fail"] * 4


def test_a_dead_worker_is_a_recorded_crash(tmp_path, cluster):
    summary = run_campaign(2, tmp_path / "r.jsonl", function="planted:killer", families=["growing"], scheduler=cluster)
    assert summary.crashes == {"worker: KilledWorker": 2}


# -- the command line ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--problems", "0"], "problems must be an integer from 1 to"),
        (["--problems", "many"], "--problems: expected a whole number, got 'many'"),
        (["--problems", "2", "--seed", "-1"], "--seed: expected a non-negative number, got -1"),
        (["--problems", "2", "--families", "integrals"], "unknown family 'integrals'; choose among"),
        (["--problems", "2", "--methods", "adjiont"], "unknown method 'adjiont'"),
        (["--problems", "2", "--function", "nocolon"], "expected 'module:callable'"),
        (["--problems", "2", "--function", "no_such_module_xyz:f"], "cannot import module 'no_such_module_xyz'"),
        (["--problems", "2", "--function", "adjoint_sym.testing.mutants:nope"], "has no attribute 'nope'"),
        (["--problems", "2", "--function", "adjoint_sym.testing.mutants:MUTATIONS"], "'MUTATIONS' is a tuple, not a"),
        (["--problems", "2", "--function-rtol", "2"], "--function-rtol"),
        (["--problems", "2", "--timeout", "-1"], "--timeout: expected a finite number of seconds >= 0"),
        (["--problems", "2", "--workers", "2", "--scheduler", "tcp://x:1"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message, tmp_path, capsys):
    code = main(["campaign", *args, "--out", str(tmp_path / "r.jsonl"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and not (tmp_path / "r.jsonl").exists()


def test_an_existing_results_file_and_a_missing_folder_exit_2(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["campaign", "--problems", "1", "--methods", *CHEAP, "--workers", "0", "--out", str(out)]) == 0
    assert main(["campaign", "--problems", "1", "--workers", "0", "--out", str(out)]) == 2
    assert "already holds results; pass --resume" in capsys.readouterr().err
    assert main(["campaign", "--problems", "1", "--out", str(tmp_path / "no" / "r.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_an_unreachable_scheduler_exits_2(tmp_path, capsys, monkeypatch):
    _dask_or_skip()
    from adjoint_sym.campaign import runner

    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", 1)
    code = main(["campaign", "--problems", "1", "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "r.jsonl")])
    assert code == 2 and "scheduler 'tcp://127.0.0.1:9': cannot connect" in capsys.readouterr().err


def test_without_dask_the_command_runs_in_one_process_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    out = tmp_path / "r.jsonl"
    code = main(["campaign", "--problems", "2", "--methods", *CHEAP, "--workers", "2", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and "dask.distributed is not installed; running in one process" in captured.err
    assert json.loads(captured.out)["engine"] == "one process" and len(read_records(out)) == 2
    code = main(["campaign", "--problems", "2", "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "s.jsonl")])
    assert code == 2 and "dask.distributed is not installed" in capsys.readouterr().err
    with pytest.warns(RuntimeWarning, match="runs in one process"):
        run_campaign(1, tmp_path / "t.jsonl", methods=CHEAP, workers=2)


def test_the_progress_line_is_drawn_on_terminals_only():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown, hidden = CampaignProgress(Progress(True, Terminal())), CampaignProgress(Progress(True, io.StringIO()))
    for bar in (shown, hidden):
        bar.start("one process", 2, 0)
        bar.record({"verdict": "ok"})
        bar.record({"verdict": "crash"})
        bar.close()
    assert "\r  2/2  ok 1  fail 0  inconclusive 0  crash 1" in shown.stream.getvalue()
    assert hidden.stream.getvalue() == ""


def test_the_summary_counts_each_problem_once_per_cause():
    records = [
        {"index": 0, "family": "a", "verdict": "fail", "failures": [{"cause_kind": "tolerance"}] * 3},
        {"index": 0, "family": "a", "verdict": "ok", "failures": []},  # a repeated index: the first counts
        {"index": 1, "family": "b", "verdict": "crash", "error": {"stage": "checker", "type": "SolverFailedError"}},
        {
            "index": 2,
            "family": "b",
            "verdict": "fail",
            "failures": [{"cause_kind": "chaos"}, {"cause_kind": "tolerance"}],
        },
    ]
    s = summarize(records)
    assert s.problems == 3 and s.verdicts == {"ok": 0, "fail": 2, "inconclusive": 0, "crash": 1}
    assert s.failures_by_cause == {"tolerance": 2, "chaos": 1} and s.crashes == {"checker: SolverFailedError": 1}
    assert s.by_family == {"a": {"fail": 1}, "b": {"crash": 1, "fail": 1}} and not s.ok


def test_run_problem_is_the_task_and_ships_only_plain_data():
    settings = Settings(seed=3, families=("backward",), methods=tuple(CHEAP))
    record = run_problem(5, settings)
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert record["problem"] == problem_spec(3, 5, ["backward"]) and record["verdict"] == "ok"


def test_an_inconclusive_record_names_the_references_on_each_side(monkeypatch):
    """Two references made to contradict each other (a bug in them would): the record says
    which supported the method and which opposed it, not only that no verdict was reached."""
    import dataclasses

    import adjoint_sym.verify.session as session
    from adjoint_sym.campaign.verdict import run_problem

    real = session.gradient
    factors = {"complex-step": 1.1, "finite-difference": 0.9}

    def broken(problem, method="adjoint", **kw):
        g = real(problem, method, **kw)
        return dataclasses.replace(g, dh0=g.dh0 * factors[method]) if method in factors else g

    monkeypatch.setattr(session, "gradient", broken)
    settings = Settings(seed=0, families=("long_span",))
    record = json.loads(json.dumps(run_problem(0, settings)))  # as it is written to the JSONL file
    assert record["verdict"] == "inconclusive" and record["failures"] == []
    entry = record["inconclusive"][0]
    assert entry["quantity"].startswith("dL/dh0[") and entry["method"] == "adjoint"
    assert "forward" in entry["support"] and set(entry["against"]) == set(factors)
    assert entry["reason"] and entry["remedy"]
