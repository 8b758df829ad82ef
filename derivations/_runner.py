"""Run every script of the repository's ``derivations/`` folder and write the report.

Each script ``derivations/<topic>.py`` exposes ``run(out_dir=None, quick=False)``
returning ``{claim id: {"verdict", "correct_statement", "evidence", ...}}`` (see
:mod:`_claims`).  :func:`run_all` imports them one by one (files starting with
``_`` are helpers, not derivations), collects the claims, and writes into ``out_dir``:

* ``report.md`` (and ``report.tex``, the same as a standalone LaTeX document): the verdict
  table, then one section per claim (the note's statement, the correct statement, the
  symbolic proof, the numeric experiment, the figures);
* ``verdicts.json``: ``{"C1": {"verdict": ..., "correct_statement": ..., "evidence": ...}, ...}``;
* ``figures/``: the scripts' PNG figures (skipped when matplotlib is missing).

The scripts live in the source repository, not in the installed wheel; from an
installation without them, :func:`run_all` says where it looked and what to do.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType

from _claims import VERDICTS

from adjoint_sym.errors import AdjointSymError
from adjoint_sym.symbolic.names import latex_text

#: The keys of each claim in ``verdicts.json`` (the issue's contract).
JSON_KEYS = ("verdict", "correct_statement", "evidence")


def derivations_dir() -> Path:
    """This folder: the ``derivations/`` of the source checkout.

    Examples
    --------
    >>> derivations_dir().name
    'derivations'
    """
    return Path(__file__).resolve().parent


def scripts(folder: Path | None = None) -> list[Path]:
    """The derivation scripts in ``folder``, sorted by name (``_*.py`` helpers excluded).

    Examples
    --------
    >>> [p.name for p in scripts()][:1]
    ['adjoint_state.py']
    """
    folder = derivations_dir() if folder is None else Path(folder)
    found = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if not found:
        raise AdjointSymError(f"no derivation scripts (*.py) in {folder}")
    return found


def load_script(path: Path) -> ModuleType:
    """Import the derivation script at ``path`` (its folder goes on ``sys.path`` for its helpers)."""
    folder = str(path.parent)
    if folder not in sys.path:  # scripts import their shared helpers (_common.py) from their folder
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"adjoint_sym_derivation_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise AdjointSymError(f"cannot import the derivation script {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AdjointSymError(f"derivation script {path.name} has no run(out_dir=None, quick=False) function")
    return module


def _claim_key(cid: str) -> tuple[int, str]:
    m = re.fullmatch(r"C(\d+)", cid)
    return (int(m.group(1)), cid) if m else (10**6, cid)


def _check_results(name: str, results: object) -> dict[str, dict]:
    if not isinstance(results, dict) or not results:
        raise AdjointSymError(f"derivation {name}: run() must return a non-empty dict of claims, got {results!r}")
    for cid, r in results.items():
        missing = [k for k in JSON_KEYS if k not in r]
        if missing:
            raise AdjointSymError(f"derivation {name}: claim {cid} lacks {', '.join(missing)}")
        if r["verdict"] not in VERDICTS:
            raise AdjointSymError(f"derivation {name}: claim {cid} has verdict {r['verdict']!r}, not one of {VERDICTS}")
    return results


def _notify(progress, message: str) -> None:
    if progress is None:
        return
    step = getattr(progress, "step", None)
    (step if callable(step) else progress)(message)


def run_all(
    out_dir: str | Path,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    *,
    derivations: str | Path | None = None,
) -> dict[str, dict]:
    """Run every derivation; write ``report.md``, ``verdicts.json`` and ``figures/`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Output folder (created if needed).
    quick : bool
        Cheaper experiments (fewer step sizes, one test problem): seconds, not minutes.
    progress : callable or object with ``.step(str)``, optional
        Told the name of each script as it starts.
    derivations : path, optional
        The folder of scripts; default: the repository's ``derivations/``.

    Returns
    -------
    dict
        The content of ``verdicts.json``: claim id -> verdict, correct statement, evidence.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    claims: dict[str, dict] = {}
    sources: dict[str, str] = {}
    timings: dict[str, float] = {}
    for path in scripts(None if derivations is None else Path(derivations)):
        _notify(progress, f"derivation {path.name}{' (quick)' if quick else ''}")
        started = time.perf_counter()
        module = load_script(path)
        try:
            results = module.run(out_dir=figures, quick=quick)
        except Exception as exc:
            raise AdjointSymError(f"derivation {path.name} failed: {type(exc).__name__}: {exc}") from exc
        timings[path.name] = time.perf_counter() - started
        for cid, r in _check_results(path.name, results).items():
            if cid in claims:
                raise AdjointSymError(f"claim {cid} is decided twice: in {sources[cid]} and in {path.name}")
            claims[cid] = r
            sources[cid] = path.name
    ordered = dict(sorted(claims.items(), key=lambda kv: _claim_key(kv[0])))
    verdicts = {cid: {k: r[k] for k in JSON_KEYS} for cid, r in ordered.items()}
    (out / "verdicts.json").write_text(json.dumps(verdicts, indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(report_markdown(ordered, sources, timings, quick))
    (out / "report.tex").write_text(report_latex(ordered, sources))
    return verdicts


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(claims: dict[str, dict], sources: dict[str, str], timings: dict[str, float], quick: bool) -> str:
    """The Markdown report: verdict table, then one section per claim."""
    try:
        release = version("adjoint_sym")
    except PackageNotFoundError:  # a source tree without installation
        release = "0+unknown"
    counts = {v: sum(r["verdict"] == v for r in claims.values()) for v in VERDICTS}
    lines = [
        "# The source note's claims, decided",
        "",
        f"adjoint_sym {release}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        f"{', quick mode (cheaper experiments)' if quick else ''}. Generated by `adjoint-sym derivations`; every "
        "verdict below was computed from the symbolic and numeric checks listed in its section.",
        "",
        "Verdicts, by the rubric of `derivations/README.md`: **exact** (true as written), **conditional** (true only "
        "under a condition the note does not state), **incomplete** (true, but a constant, terminal value, initial "
        "value or limit is missing), **wrong** (a sign, factor or identification fails; a counterexample exists).",
        "",
        "Summary: " + ", ".join(f"{n} {v}" for v, n in counts.items()),
        "",
        "| claim | the note says | verdict | correct statement |",
        "|---|---|---|---|",
    ]
    for cid, r in claims.items():
        note, correct = _cell(r.get("note_statement", "")), _cell(r["correct_statement"])
        lines.append(f"| [{cid}](#{cid.lower()}) | {note} | **{r['verdict']}** | {correct} |")
    lines.append("")
    for cid, r in claims.items():
        lines += [f"## {cid}", "", f"**Verdict: {r['verdict']}** (from `derivations/{sources[cid]}`)", ""]
        if r.get("note_statement"):
            lines += [f"*The note says:* {r['note_statement']}", ""]
        lines += [f"*Correct statement:* {r['correct_statement']}", ""]
        for title, key in (("Symbolic proof", "proof"), ("Numeric experiment", "experiment")):
            items = r.get(key) or []
            if items:
                lines += [f"**{title}**", ""] + [f"- {_cell(x)}" for x in items] + [""]
        if not r.get("proof") and not r.get("experiment"):
            lines += [f"Evidence: {r['evidence']}", ""]
        for fig in r.get("figures") or []:
            lines += [f"![{cid}: {fig}](figures/{fig})", ""]
    lines += ["## Run times", "", "| script | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.1f} |" for name, sec in timings.items()]
    return "\n".join(lines) + "\n"


def report_latex(claims: dict[str, dict], sources: dict[str, str]) -> str:
    r"""A standalone LaTeX document: the verdict table and each claim's checks (figures under ``figures/``).

    Examples
    --------
    >>> tex = report_latex({"C1": {"verdict": "exact", "correct_statement": "a_t = 1", "evidence": "e"}},
    ...                    {"C1": "x.py"})
    >>> r"a\_t = 1" in tex and tex.rstrip().endswith(r"\end{document}")
    True
    """
    lines = [
        r"\documentclass[10pt]{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage{longtable,graphicx}",
        r"\title{The source note's claims, decided}",
        r"\author{adjoint\_sym derivations}",
        r"\begin{document}",
        r"\maketitle",
        r"\begin{longtable}{p{0.06\linewidth}p{0.12\linewidth}p{0.74\linewidth}}",
        r"claim & verdict & correct statement \\ \hline",
    ]
    for cid, r in claims.items():
        lines.append(rf"{cid} & \textbf{{{r['verdict']}}} & {latex_text(r['correct_statement'])} \\")
    lines.append(r"\end{longtable}")
    for cid, r in claims.items():
        source = latex_text(sources.get(cid, ""))
        lines += [rf"\section*{{{cid}: {r['verdict']}}}", rf"\emph{{Source:}} \texttt{{{source}}}\\"]
        if r.get("note_statement"):
            lines.append(rf"\emph{{The note says:}} {latex_text(r['note_statement'])}\\")
        lines.append(rf"\emph{{Correct statement:}} {latex_text(r['correct_statement'])}")
        items = [*(r.get("proof") or []), *(r.get("experiment") or [])] or [r["evidence"]]
        lines += [r"\begin{itemize}", *(rf"\item {latex_text(x)}" for x in items), r"\end{itemize}"]
        for fig in r.get("figures") or []:
            lines.append(rf"\includegraphics[width=\linewidth]{{figures/{fig}}}")
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"


__all__ = ["JSON_KEYS", "derivations_dir", "load_script", "report_latex", "report_markdown", "run_all", "scripts"]
