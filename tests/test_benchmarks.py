"""The benchmarks' own invariants that a refactor of the library can break silently.

(Not in ``tests/test_library_mutants.py``: the mutation run copies that file into a
package copy without ``benchmarks/``.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_mutation_benchmarks_snippets_still_occur_once_each():
    """``benchmarks/mutate_library.py`` plants its bugs by exact snippets of the source: a
    refactor that moves one must update the table, or the benchmark would stop; this keeps
    that from being found only when the benchmark is next run."""
    root = Path(__file__).resolve().parent.parent
    code = "import mutate_library as m; m.verify_table(); print(len(m.MUTANTS))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root / "benchmarks", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(done.stdout.split()[-1]) >= 30
