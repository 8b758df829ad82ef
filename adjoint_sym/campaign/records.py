"""The results file of a campaign: JSON Lines, one record per problem, flushed as it comes.

A record is written whole (one ``write`` of one line, then ``flush``) the moment its
verdict arrives, so an interrupted campaign leaves every finished verdict on disk and at
most one truncated last line.  :func:`open_results` prepares a file for a run: a new
file, or (``resume=True``) an existing one whose records are read back (a truncated last
line is cut off), whose settings must be those of the run, and whose indices are skipped.

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "results.jsonl")
>>> with RecordWriter(path) as out:
...     out.append({"index": 0, "config": {"seed": 1}, "verdict": "ok"})
>>> with open(path, "a") as f:
...     _ = f.write('{"index": 1, "conf')  # a run killed mid-line
>>> [r["index"] for r in read_records(path)]
[0]
>>> sorted(open_results(path, resume=True, config={"seed": 1}))
[0]
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InvalidModelError


def read_records(path: str | Path) -> list[dict]:
    """Every complete record of a results file, in file order.

    A last line that is cut short (no newline, or not valid JSON) is ignored: that is
    what an interrupted write leaves.  Any other line that is not a JSON object with an
    integer ``index`` means the file is damaged, and is refused with its line number.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise InvalidModelError(f"cannot read results file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidModelError(f"{path}: not a results file (not UTF-8 text)") from None
    records = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number - 1 == last:  # the interrupted last write
                break
            raise InvalidModelError(
                f"{path}: line {number} is not a JSON record; the file is damaged (only a truncated last "
                "line is tolerated): repair or remove that line"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("index"), int):
            raise InvalidModelError(f"{path}: line {number} is not a campaign record (no integer 'index')")
        records.append(record)
    return records


def open_results(path: str | Path, *, resume: bool, config: dict) -> dict[int, dict]:
    """Prepare ``path`` for a run with ``config``; return the records already done, by index.

    Raises
    ------
    InvalidModelError
        ``path`` exists and is not empty without ``resume`` (a campaign never overwrites
        results), its folder does not exist, it is damaged, or it was written with other
        settings (seed, families, methods, function).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InvalidModelError(f"--out {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise InvalidModelError(f"--out {str(path)!r} is a folder; name a .jsonl file")
    if not path.exists() or path.stat().st_size == 0:
        return {}
    if not resume:
        raise InvalidModelError(
            f"{path} already holds results; pass --resume to continue that campaign, or choose another --out"
        )
    records = read_records(path)
    _cut_partial_last_line(path)
    done: dict[int, dict] = {}
    for record in records:
        theirs = record.get("config", {})
        for key, value in config.items():
            if theirs.get(key) != value:
                raise InvalidModelError(
                    f"{path} was written with {key} = {theirs.get(key)!r} but this run has {key} = {value!r}; "
                    "resume with the same settings, or choose another --out"
                )
        done.setdefault(record["index"], record)  # a repeated index (two runs on one file): the first counts
    return done


def _cut_partial_last_line(path: Path) -> None:
    """Remove a truncated last line, so that the next record starts on a line of its own."""
    data = path.read_bytes()
    head, newline, tail = data.rstrip().rpartition(b"\n")
    if not tail:
        return
    try:
        json.loads(tail)
    except json.JSONDecodeError:  # what read_records() ignored: cut it off
        os.truncate(path, len(head) + len(newline))
        return
    if not data.endswith(b"\n"):  # a whole record whose newline is missing: complete the line
        with open(path, "ab") as f:
            f.write(b"\n")


class RecordWriter:
    """Append records to a results file, one flushed line each (a context manager)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = None

    def __enter__(self) -> RecordWriter:
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, record: dict) -> None:
        line = json.dumps(record, allow_nan=False, separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()

    def __exit__(self, *exc) -> None:
        self._file.close()


__all__ = ["RecordWriter", "open_results", "read_records"]
