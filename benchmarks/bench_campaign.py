"""Campaign throughput: problems per minute in one process, on 1 and on 2 local Dask workers, in one run.

``python benchmarks/bench_campaign.py [--problems N] [--rounds R] [--methods M ...] [--quick]``
runs the same campaign (same seed, so the same problems) in three engines and prints:

1. **Throughput**: problems per minute of each engine (wall clock from the first task to
   the last record, the cluster's start-up excluded and shown apart), the CPU seconds a
   problem costs inside its worker, and the ratio 2 workers / 1 worker, next to its
   ceiling: the CPU two busy processes obtain against one, measured first.  Engines take
   turns over ``--rounds`` rounds (round-robin, so load that comes and goes on a shared
   machine falls on all of them) and each round writes its own results file.
2. **What travels**: the bytes pickled per task (the function, a problem index and the
   campaign's settings) and per record, against the CPU seconds of work per task: the
   scaling argument for a cluster.

Wall time is the measure here (parallelism is what is measured); the machine line gives
the load average, and on a shared 2-core machine a second worker gains only what the
neighbours leave.  Nothing here asserts.
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import json
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path

from adjoint_sym.campaign import Settings, read_records, run_campaign, run_problem

ENGINES = {"one process (no Dask)": 0, "Dask, 1 worker": 1, "Dask, 2 workers": 2}


def machine() -> str:
    import platform

    import dask

    return (
        f"Python {platform.python_version()}, dask {dask.__version__}, {os.cpu_count()} cores "
        f"(load average {os.getloadavg()[0]:.1f} at the start); wall-clock times"
    )


def _spin(seconds: float, results) -> None:
    start, end = time.process_time(), time.time() + seconds
    while time.time() < end:
        pass
    results.put(time.process_time() - start)


def cpu_ceiling(seconds: float = 3.0) -> float:
    """CPU that two busy processes obtain, in units of what one obtains: the most a second
    worker can add on this machine now (2.0 on two free cores; about 1.0 where the
    scheduler gives this session a fixed share, as Linux's autogroup does under load)."""
    import multiprocessing

    obtained = {}
    for n in (1, 2):
        results = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_spin, args=(seconds, results)) for _ in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        obtained[n] = sum(results.get() for _ in procs)
    return obtained[2] / obtained[1]


def run_round(problems: int, seed: int, methods, folder: Path, round_: int, order: list[str]) -> dict[str, dict]:
    out = {}
    for name in order:
        path = folder / f"round{round_}-{ENGINES[name]}.jsonl"
        summary = run_campaign(problems, path, seed=seed, methods=methods, workers=ENGINES[name])
        cpu = [r["timings"]["cpu"] for r in read_records(path)]
        out[name] = {
            "rate": summary.problems_per_minute,
            "startup": summary.startup,
            "cpu": statistics.fmean(cpu),
            "verdicts": summary.verdicts,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=80, help="problems per campaign (default 80: 10 per family)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three engines (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", help="methods to check (default: the checker's)")
    parser.add_argument("--quick", action="store_true", help="21 problems, one round")
    args = parser.parse_args()
    problems, rounds = (21, 1) if args.quick else (args.problems, args.rounds)

    print(machine())
    ceiling = cpu_ceiling()
    rows: dict[str, list[dict]] = {name: [] for name in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = list(ENGINES) if r % 2 == 0 else list(reversed(ENGINES))
            for name, result in run_round(problems, args.seed, args.methods, Path(tmp), r, order).items():
                rows[name].append(result)
        sample = read_records(Path(tmp) / "round0-2.jsonl")

    table = []
    for name, results in rows.items():
        rate = statistics.median(x["rate"] for x in results)
        startup = statistics.median(x["startup"] for x in results)
        cpu = statistics.median(x["cpu"] for x in results)
        table.append([name, problems, f"{rate:.1f}", f"{1000 / rate:.1f}", f"{cpu:.3f}", f"{startup:.1f}"])
    heads = ["engine", "problems", "problems / min", "min per 1,000", "CPU s / problem", "start-up s"]
    methods = ", ".join(args.methods) if args.methods else "the checker's default"
    print(common.table(heads, table, f"Campaign throughput (seed {args.seed}, methods: {methods}; median of {rounds})"))
    one, two = (statistics.median(x["rate"] for x in rows[k]) for k in ("Dask, 1 worker", "Dask, 2 workers"))
    base = statistics.median(x["rate"] for x in rows["one process (no Dask)"])
    print(f"\n2 workers / 1 worker: {two / one:.2f}x;  1 worker / one process: {one / base:.2f}x")
    print(f"ceiling on this machine now: two busy processes obtain {ceiling:.2f}x the CPU of one")
    verdicts = {name: results[0]["verdicts"] for name, results in rows.items()}
    print(f"verdicts agree across engines: {len({json.dumps(v, sort_keys=True) for v in verdicts.values()}) == 1}")

    settings = Settings(seed=args.seed, methods=None if args.methods is None else tuple(args.methods))
    task = len(pickle.dumps((run_problem, problems - 1, settings)))
    record = statistics.fmean(len(json.dumps(r)) for r in sample)
    cpu = statistics.median(x["cpu"] for x in rows["Dask, 2 workers"])
    print()
    print(
        common.table(
            ["shipped per task", "returned per task", "CPU s of work per task", "work per byte moved"],
            [[f"{task} B", f"{record:.0f} B", f"{cpu:.3f}", f"{cpu / (task + record) * 1e6:.0f} us/B"]],
            "What travels between the client and a worker",
        )
    )
    print(f"(workers: {os.cpu_count()} cores on this machine; kernels stay compiled in each worker process)")


if __name__ == "__main__":  # Dask's worker processes re-import this file: run only as a script
    main()
