"""What a campaign found: verdict counts, false alarms by cause, crashes, timings, throughput.

:func:`summarize` reads the records (of a finished, interrupted or resumed campaign) and
returns a :class:`CampaignSummary`; :func:`adjoint_sym.campaign.run_campaign` returns one
for its results file, with the throughput of the run itself.

Examples
--------
>>> records = [
...     {"index": 0, "family": "stiff", "verdict": "ok", "failures": [], "timings": {"total": 1.0}},
...     {"index": 1, "family": "neural", "verdict": "fail", "timings": {"total": 3.0},
...      "failures": [{"cause_kind": "tolerance"}, {"cause_kind": "tolerance"}]},
... ]
>>> s = summarize(records)
>>> s.verdicts["fail"], s.failures_by_cause, s.seconds["p50"]
(1, {'tolerance': 1}, 2.0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from .verdict import VERDICTS


@dataclass(frozen=True)
class CampaignSummary:
    """The outcome of a campaign.

    Attributes
    ----------
    problems : int
        Problems with a record (each index once).
    verdicts : dict
        Count per verdict: ``ok``, ``fail``, ``inconclusive``, ``crash``.
    failures_by_cause : dict
        Failing problems per cause kind (``tolerance``, ``stiffness``, ``chaos``, ...;
        a problem failing for two kinds of cause counts under both).  When the library's
        own methods are checked, every one is a false alarm of the checker unless a
        route is wrong.
    crashes : dict
        Crashed problems per ``"stage: ExceptionType"``.
    by_family : dict
        ``family -> verdict -> count``.
    seconds : dict
        Wall seconds per problem: ``p50``, ``p90``, ``p99``, ``max``.
    computed : int
        Problems computed by this run (the rest were in the file already).
    problems_per_minute : float or None
        This run's throughput, after the engine started.
    startup : float or None
        Seconds to start the engine (the Dask cluster).
    engine : str
        Where the problems ran.
    mode : str
        ``"check"`` or ``"function <module:callable>"``.
    out : str
        The results file.
    """

    problems: int
    verdicts: dict
    failures_by_cause: dict
    crashes: dict
    by_family: dict
    seconds: dict
    computed: int = 0
    problems_per_minute: float | None = None
    startup: float | None = None
    engine: str = ""
    mode: str = "check"
    out: str = ""
    examples: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """No problem failed or crashed (inconclusive verdicts do not fail a campaign)."""
        return self.verdicts.get("fail", 0) == 0 and self.verdicts.get("crash", 0) == 0

    def text(self) -> str:
        """The summary as a person reads it."""
        n = max(self.problems, 1)
        label = "false alarms" if self.mode == "check" else "failures"
        lines = [f"campaign: {self.problems} problems ({self.mode}) in {self.out or 'memory'}"]
        if self.engine:
            lines.append(f"  engine: {self.engine}")
        counts = ", ".join(
            f"{v} {self.verdicts.get(v, 0)} ({100 * self.verdicts.get(v, 0) / n:.1f}%)" for v in VERDICTS
        )
        lines.append(f"  verdicts: {counts}")
        lines.append(f"  {label} by cause: {_counts(self.failures_by_cause)}")
        lines.append(f"  crashes: {_counts(self.crashes)}")
        for family, verdicts in self.by_family.items():
            lines.append(f"    {family:<12} " + "  ".join(f"{v} {verdicts.get(v, 0)}" for v in VERDICTS))
        if self.seconds:
            s = self.seconds
            lines.append(
                f"  seconds per problem: p50 {s['p50']:.3g}, p90 {s['p90']:.3g}, p99 {s['p99']:.3g}, max {s['max']:.3g}"
            )
        if self.problems_per_minute is not None:
            start = f", engine start {self.startup:.1f} s" if self.startup and self.startup >= 0.05 else ""
            lines.append(
                f"  this run: {self.computed} computed, {self.problems_per_minute:.1f} problems per minute{start}"
            )
        for kind, index in self.examples.items():
            lines.append(f"  e.g. {kind}: problem {index}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready, with ``ok``."""
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        return self.text()


def summarize(records: Iterable[dict], **run) -> CampaignSummary:
    """The :class:`CampaignSummary` of ``records`` (each index counted once).

    ``run`` sets the fields that describe a run rather than the records: ``computed``,
    ``problems_per_minute``, ``startup``, ``engine``, ``mode``, ``out``.
    """
    unique: dict[int, dict] = {}
    for record in records:
        unique.setdefault(record["index"], record)
    verdicts: Counter = Counter(dict.fromkeys(VERDICTS, 0))
    causes: Counter = Counter()
    crashes: Counter = Counter()
    by_family: dict[str, Counter] = {}
    examples: dict[str, int] = {}
    times = []
    for index, record in sorted(unique.items()):
        verdict = record.get("verdict", "crash")
        verdicts[verdict] += 1
        by_family.setdefault(record.get("family", "?"), Counter())[verdict] += 1
        if verdict == "fail":
            for kind in sorted({f.get("cause_kind", "unexplained") for f in record.get("failures", [])}):
                causes[kind] += 1
                examples.setdefault(kind, index)
        elif verdict == "crash":
            error = record.get("error") or {}
            key = f"{error.get('stage', '?')}: {error.get('type', '?')}"
            crashes[key] += 1
            examples.setdefault(key, index)
        total = record.get("timings", {}).get("total")
        if isinstance(total, float | int):
            times.append(float(total))
    seconds = {}
    if times:
        p50, p90, p99 = np.percentile(times, [50, 90, 99])
        seconds = {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": max(times)}
    return CampaignSummary(
        problems=len(unique),
        verdicts=dict(verdicts),
        failures_by_cause=dict(causes.most_common()),
        crashes=dict(crashes.most_common()),
        by_family={f: dict(c) for f, c in by_family.items()},
        seconds=seconds,
        examples=examples,
        **run,
    )


def _counts(counter: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) if counter else "none"


__all__ = ["CampaignSummary", "summarize"]
