"""``adjoint-sym derivations``: run the repository's derivation scripts and write their report."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..errors import AdjointSymError
from .common import EXIT_CODES, EXIT_OK, Progress, formatter


def cmd_derivations(args: argparse.Namespace, progress: Progress) -> int:
    derivations_runner = _derivations_runner()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress.step(f"running the derivations into {out}{' (quick)' if args.quick else ''}")
    verdicts = derivations_runner.run_all(out, args.quick, progress)
    print(verdict_table(verdicts), end="")
    print(f"wrote {out / 'report.md'}, {out / 'report.tex'} and {out / 'verdicts.json'}")
    return EXIT_OK


def verdict_table(verdicts: dict) -> str:
    """One line per claim: its verdict and the first words of the correct statement.

    Examples
    --------
    >>> print(verdict_table({"C1": {"verdict": "exact", "correct_statement": "a = b."}}), end="")
    claim  verdict  correct statement
    C1     exact    a = b.
    """
    rows = [("claim", "verdict", "correct statement")]
    for cid, entry in verdicts.items():
        statement = " ".join(str(entry.get("correct_statement", "")).split())
        rows.append((cid, entry["verdict"], statement if len(statement) <= 90 else statement[:87] + "..."))
    widths = [max(len(r[k]) for r in rows) for k in range(2)]
    return "".join(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}\n" for r in rows)


def _derivations_runner() -> ModuleType:
    """``derivations/_runner.py`` of the source checkout this package was imported from.

    The derivation scripts are documents of the repository, not part of the installed
    package; their folder goes on ``sys.path`` so they find their shared helpers.
    """
    folder = Path(__file__).resolve().parents[2] / "derivations"
    runner = folder / "_runner.py"
    if not runner.is_file():
        raise AdjointSymError(
            f"the derivations/ folder was not found at {folder}: the derivation scripts ship with the source "
            "repository, not with the installed package; run from a checkout (pip install -e . in the repository)"
        )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("adjoint_sym_derivations_runner", runner)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``derivations`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "derivations",
        parents=[common],
        formatter_class=formatter,
        help="run every derivation script in derivations/ and print the claim verdicts",
        description="Run every script of the derivations/ folder (statement, symbolic proof, numeric experiment,\n"
        "verdict), write report.md, report.tex, verdicts.json and the figures to DIR, and print a table\n"
        "of the verdicts (the JSON is in DIR/verdicts.json).",
        epilog="examples:\n"
        "  adjoint-sym derivations --out results/\n"
        "  adjoint-sym derivations --out /tmp/quick --quick\n\n" + EXIT_CODES,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--quick", action="store_true", help="smaller experiments, for a fast look")
    p.set_defaults(func=cmd_derivations)
