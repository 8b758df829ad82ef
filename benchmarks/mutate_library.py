"""Mutants of the library itself: planted source mutations of the adjoint and the references (issue 12).

Each entry of :data:`MUTANTS` is one realistic bug planted in the library's own code
(``adjoint_sym/adjoint``, ``adjoint_sym/reference``, ``adjoint_sym/discrete``): a flipped
sign, a dropped term, an off-by-one observation index, a wrong transpose, a step-size
factor, a wrong Richardson coefficient, a missing jump, ``t0``/``t1`` swapped.  For each,
the package is copied to a temporary directory, the one snippet is replaced, and two
subprocesses (``PYTHONPATH`` at the copy, each with a timeout) judge the mutant:

* **tests**: a fixed fast subset of the suite (:data:`TEST_FILES`, ``pytest -x``);
  killed when it fails (or times out);
* **check()**: :func:`adjoint_sym.check` with every adjoint and reference on the
  problems of :func:`check_problems`; killed when any verdict is not ``ok``.  A mutant of a
  *reference* is killed only when check reports ``fail`` or ``inconclusive``; check is
  built to outvote one wrong reference with two that agree (the verdict on the adjoint
  stays right), and the table says ``outvoted`` when that happened.  ``n.a.``: the
  mutated code is never run by check() (the arbiter, the discrete complex step).

Every snippet must occur exactly once in the unmutated source (checked before any run),
so the table fails loudly instead of silently rotting when the code moves.  Survivors
of both are killed by ``tests/test_library_mutants.py`` or explained in their entry.

    python benchmarks/mutate_library.py              # all mutants, one at a time
    python benchmarks/mutate_library.py --list       # the table of mutants
    python benchmarks/mutate_library.py --only backward.jump-sign --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mutants_table import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[1]
#: The test files that exercise the adjoint, the references and backprop, fastest first
#: (``-x`` stops at the first failure, so killed mutants cost little).
TEST_FILES = (
    "tests/test_library_mutants.py",
    "tests/test_gradients.py",
    "tests/test_reference.py",
    "tests/test_reference_accuracy.py",
    "tests/test_running_cost.py",
    "tests/test_adjoint.py",
)
#: Copied for each mutant: the package, the tests, and what the tests' conftest reads.
COPIED = ("adjoint_sym", "tests", "derivations", "pyproject.toml")
#: Every adjoint and every reference check() runs, so that each mutated route is judged.
CHECK_METHODS = ("adjoint", "backsolve", "quadrature", "backprop", "forward", "complex-step", "finite-difference")
TEST_TIMEOUT = 600  # s: the subset takes about 45 s unmutated on a loaded 2-core machine
CHECK_TIMEOUT = 300  # s: about 10 s unmutated


@dataclass(frozen=True)
class Outcome:
    """What the tests and check() made of one mutant."""

    tests: str  # "killed", "killed (timeout)", "survived"
    check: str  # "killed (fail)", "killed (inconclusive)", "no", "no (outvoted)", "n.a."
    seconds: float

    @property
    def killed_by_tests(self) -> bool:
        return self.tests.startswith("killed")

    @property
    def killed_by_check(self) -> bool:
        return self.check.startswith("killed")


def verify_table(mutants: tuple[Mutant, ...] = MUTANTS) -> None:
    """Fail loudly unless every snippet occurs exactly once and every name is unique."""
    names = [m.name for m in mutants]
    if len(set(names)) != len(names):
        raise SystemExit(f"duplicate mutant names: {sorted(n for n in names if names.count(n) > 1)}")
    for m in mutants:
        text = (ROOT / m.file).read_text()
        count = text.count(m.old)
        if count != 1 or m.old == m.new:
            raise SystemExit(f"mutant {m.name}: its snippet occurs {count} times in {m.file} (must be once): {m.old!r}")


def planted(mutant: Mutant | None, where: Path) -> Path:
    """A copy of the repository's package and tests under ``where``, with ``mutant`` applied."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, where / name, ignore=shutil.ignore_patterns(".pytest_cache", ".hypothesis"))
        else:
            shutil.copy2(source, where / name)
    if mutant is not None:
        path = where / mutant.file
        path.write_text(path.read_text().replace(mutant.old, mutant.new, 1))
    return where


def _env(copy: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(copy), HYPOTHESIS_PROFILE="ci", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run_tests(copy: Path) -> str:
    """The test subset on the copy: ``killed`` when it fails, ``survived`` when it passes."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TEST_FILES]
    try:
        done = subprocess.run(command, cwd=copy, env=_env(copy), capture_output=True, timeout=TEST_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "killed (timeout)"
    if done.returncode not in (0, 1):
        tail = done.stdout.decode(errors="replace")[-2000:]
        raise RuntimeError(f"pytest exited {done.returncode} (collection error?):\n{tail}")
    return "survived" if done.returncode == 0 else "killed"


def run_check(copy: Path) -> str:
    """check() on :func:`check_problems` in a subprocess at the copy (see the module docstring)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--check-here", str(copy)]
    try:
        done = subprocess.run(command, cwd=copy, env=_env(copy), capture_output=True, timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "killed (timeout)"
    if done.returncode != 0:
        raise RuntimeError(f"the check subprocess failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    verdicts = json.loads(done.stdout.decode().strip().splitlines()[-1])
    bad = sorted({v["verdict"] for v in verdicts.values() if v["verdict"] != "ok"})
    if bad:
        return "killed (" + ", ".join(bad) + ")"
    return "no (outvoted)" if any(v["outvoted"] for v in verdicts.values()) else "no"


def check_problems() -> dict:
    """The fixed problems check() judges each mutant on (built in the copy's adjoint_sym)."""
    from adjoint_sym import FinalLoss, IntegralLoss, ObservationLoss, ODESystem, Problem
    from adjoint_sym.builders import lotka_volterra, neural_ode

    forced = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x + sin(t)"])  # non-autonomous: f_t != 0
    lv, lv_params = lotka_volterra(), {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
    net_params = {"W": [[0.5, -1.0], [0.8, 0.2]], "b": [0.1, -0.2]}
    return {
        "decay with observations": Problem(
            forced, [1.0], {"k": 0.7}, 0.0, 2.0, ObservationLoss([0.5, 1.2, 2.0], targets=[[0.3], [0.2], [0.4]])
        ),
        "Lotka-Volterra": Problem(lv, [1.0, 0.5], lv_params, 0.0, 3.0, FinalLoss("x**2 + y")),
        "tanh network": Problem(
            neural_ode(2), [0.5, -0.3], net_params, 0.0, 2.0, ObservationLoss([1.0, 2.0], expr="h[0]**2 + h[1]")
        ),
        "backward span": Problem(forced, [0.8], {"k": 0.4}, 2.0, 0.5, ObservationLoss([1.0, 0.5], expr="x**2")),
        "explicit time in the loss": Problem(forced, [1.0], {"k": 0.9}, 0.2, 1.5, FinalLoss("t*x**2 + k*t")),
        "running cost": Problem(lv, [1.0, 0.5], lv_params, 0.0, 2.0, FinalLoss("x") + IntegralLoss("x*y + t*a")),
    }


def check_here(copy: str) -> None:
    """(In the subprocess.) Print one JSON line: each problem's verdict and outvoted references."""
    import warnings

    import adjoint_sym

    if not Path(adjoint_sym.__file__).resolve().is_relative_to(Path(copy).resolve()):
        raise SystemExit(f"adjoint_sym was imported from {adjoint_sym.__file__}, not from the mutated copy {copy}")
    warnings.simplefilter("ignore")  # backsolve drift warnings are part of a verdict's notes already
    out = {}
    for name, problem in check_problems().items():
        try:
            report = adjoint_sym.check(problem, methods=CHECK_METHODS)
        except Exception as exc:  # a check that raises kills the mutant; say how
            out[name] = {"verdict": f"raised {type(exc).__name__}", "outvoted": []}
            continue
        outvoted = sorted({m for m, row in report.statuses.items() for s in row.values() if s == "outvoted"})
        out[name] = {"verdict": report.verdict, "outvoted": outvoted}
    print(json.dumps(out))


def judge(mutant: Mutant | None) -> Outcome:
    """Plant ``mutant`` (``None``: the unmutated library) in a fresh copy and run both judges."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="adjoint-sym-mutant-") as tmp:
        copy = planted(mutant, Path(tmp))
        tests = run_tests(copy)
        check = run_check(copy) if mutant is None or mutant.check_runs else "n.a."
    return Outcome(tests, check, time.perf_counter() - started)


def judged(mutant: Mutant) -> Outcome:
    """:func:`judge`, with a progress line on stderr (the table comes at the end)."""
    outcome = judge(mutant)
    print(f"{mutant.name}: tests {outcome.tests}, check() {outcome.check} ({outcome.seconds:.0f} s)", file=sys.stderr)
    return outcome


def print_table(results: list[tuple[Mutant, Outcome]]) -> None:
    print("| mutant | file | what | killed by tests | killed by check() | seconds |")
    print("|---|---|---|---|---|---|")
    for m, o in results:
        tests = "yes" if o.killed_by_tests else "**no**"
        check = o.check if o.check == "n.a." else ("yes" + o.check[6:] if o.killed_by_check else o.check)
        print(f"| {m.name} | {m.file.removeprefix('adjoint_sym/')} | {m.what} | {tests} | {check} | {o.seconds:.0f} |")
    n = len(results)
    by_tests = sum(o.killed_by_tests for _, o in results)
    decided = [o for _, o in results if o.check != "n.a."]
    by_check = sum(o.killed_by_check for o in decided)
    either = sum(o.killed_by_tests or o.killed_by_check for _, o in results)
    print(f"\ntests: {by_tests}/{n}")
    print(f"check(): {by_check}/{len(decided)} (n.a. for {n - len(decided)} mutants of code check() never runs)")
    print(f"either: {either}/{n}")
    survivors = [m for m, o in results if not (o.killed_by_tests or o.killed_by_check)]
    for m in survivors:
        print(f"survivor {m.name}: {m.survivor or '(no explanation in the table)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="print the table of mutants and exit")
    parser.add_argument("--jobs", type=int, default=1, help="mutants judged at once (default 1)")
    parser.add_argument("--check-here", metavar="COPY", help=argparse.SUPPRESS)  # the check subprocess
    args = parser.parse_args()
    if args.check_here:
        return check_here(args.check_here)
    verify_table()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        raise SystemExit(f"unknown mutants {sorted(unknown)}; see --list")
    if args.list:
        for m in chosen:
            print(f"{m.name:32} {m.file.removeprefix('adjoint_sym/'):30} {m.what}")
        return None
    baseline = judge(None)
    print(f"unmutated library: tests {baseline.tests}, check() {baseline.check} ({baseline.seconds:.0f} s)\n")
    if baseline.killed_by_tests or baseline.check != "no":
        raise SystemExit("the unmutated library must pass both judges (no outvoted reference either)")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(zip(chosen, pool.map(judged, chosen)))
    print_table(results)
    return None


if __name__ == "__main__":
    main()
