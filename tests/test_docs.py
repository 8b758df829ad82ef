"""The documentation site builds strictly, documents every module, and its examples run.

* ``mkdocs build --strict``: a broken link, a missing page, an unresolved cross-reference
  (``[Problem][adjoint_sym.numeric.problem.Problem]``) or an object mkdocstrings cannot collect is
  a warning, and strict mode turns warnings into a failed build.  Skipped when mkdocs,
  mkdocs-material or mkdocstrings are not installed (they are in the ``[test]`` extra).
* Every ``python`` code block of a page runs, in order, in one namespace per page (blocks
  in other languages, ``bash`` and ``toml``, are shown only).  A renamed function or a
  changed default breaks the page here instead of in a reader's hands.  A block whose
  first line is ``# requires: torch, torchdiffeq`` (optional extras) runs when those
  modules import and is skipped, by name, when one is missing; the page's other blocks
  still run and must not depend on it.
* Every module of the package appears in the API reference, and the two commands of the
  Getting started page are those of README.md.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
REQUIRES = re.compile(r"\A# requires: ([\w.]+(?:, [\w.]+)*)\n")


def code_blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text(encoding="utf-8")) if lang == language]


def missing_modules(block: str) -> list[str]:
    """The modules a block's ``# requires: a, b`` first line names that do not import."""
    match = REQUIRES.match(block)
    if match is None:
        return []
    return [m for m in match.group(1).split(", ") if importlib.util.find_spec(m) is None]


def test_requires_marker_is_parsed_strictly():
    assert missing_modules("# requires: numpy, sympy\nimport numpy\n") == []
    assert missing_modules("# requires: numpy, no_such_module_xyz\n") == ["no_such_module_xyz"]
    assert missing_modules("# requires torch\n") == [] and missing_modules("x = 1  # requires: torch\n") == []


def test_docs_build_strictly(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            pytest.skip(f"building the docs needs {module} (pip install -e '.[test]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    # mkdocstrings rendered the API: anchors of objects from the docstrings are in the pages.
    for page, anchor in [
        ("api/symbolic/index.html", "adjoint_sym.symbolic.system.ODESystem"),
        ("api/symbolic/index.html", "adjoint_sym.symbolic.augmented.Adjoint"),
        ("api/gradients/index.html", "adjoint_sym.verify.routes.gradient"),
        ("api/plot/index.html", "adjoint_sym.verify.convergence.convergence"),
    ]:
        assert f'id="{anchor}"' in (site / page).read_text(encoding="utf-8"), f"{anchor} missing from {page}"
    # Maths reaches MathJax: arithmatex wrapped the display equations of the Concepts page.
    assert (site / "concepts" / "index.html").read_text(encoding="utf-8").count('class="arithmatex"') > 10


@pytest.mark.parametrize("page", [p for p in PAGES if code_blocks(p, "python")], ids=lambda p: str(p.relative_to(DOCS)))
def test_python_examples_run(page, tmp_path, monkeypatch):
    blocks = code_blocks(page, "python")
    if any("plot" in b for b in blocks):
        matplotlib = pytest.importorskip("matplotlib")
        matplotlib.use("Agg")
    if any("check_gradient_function" in b for b in blocks):
        pytest.importorskip("hypothesis")
    monkeypatch.chdir(tmp_path)  # examples that save figures write here
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    skipped = []
    for i, block in enumerate(blocks):
        missing = missing_modules(block)
        if missing:  # an optional extra is not installed: this block only is not run
            skipped.append(f"python block {i + 1} needs {', '.join(missing)}")
            continue
        code = compile(block, f"{page.relative_to(ROOT)} [python block {i + 1}]", "exec")
        exec(code, namespace)  # the project's own documentation examples, run like doctests
    if skipped:
        pytest.skip(f"the other {len(blocks) - len(skipped)} blocks ran; skipped: {'; '.join(skipped)}")


#: The public namespaces: their ``__all__`` is the API (the adapters page documents its modules whole).
PUBLIC = (
    "adjoint_sym",
    "adjoint_sym.builders",
    "adjoint_sym.identities",
    "adjoint_sym.strategies",
    "adjoint_sym.testing",
    "adjoint_sym.testing.mutants",
    "adjoint_sym.verify",
    "adjoint_sym.reference",
    "adjoint_sym.discrete",
    "adjoint_sym.adjoint",
    "adjoint_sym.plot",
    "adjoint_sym.campaign",
)
WHOLE_MODULES = {"adjoint_sym.adapters", "adjoint_sym.adapters.torch", "adjoint_sym.adapters.jax"}


def _documented() -> set[str]:
    found = set()
    for page in (DOCS / "api").glob("*.md"):
        found |= set(re.findall(r"^::: (adjoint_sym[\w.]*)", page.read_text(encoding="utf-8"), re.MULTILINE))
    return found


def test_the_api_reference_lists_every_public_name():
    import importlib
    import inspect

    documented = _documented()
    missing = []
    for namespace in PUBLIC:
        module = importlib.import_module(namespace)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants are described in their module's prose
            qual = name if "<" in obj.__qualname__ else obj.__qualname__
            if f"{obj.__module__}.{qual}" not in documented:
                missing.append(f"{namespace}.{name} ({obj.__module__}.{qual})")
    assert not missing, f"add '::: <defining path>' for {missing} to a page of docs/api/"


def test_the_api_reference_documents_no_internal_module_whole():
    """Internals stay out: an entry is a public object, or one of the adapter modules."""
    import importlib
    import inspect

    whole = []
    for path in _documented():
        try:
            target = importlib.import_module(path)
        except ImportError:
            continue  # an object path, not a module
        if inspect.ismodule(target) and path not in WHOLE_MODULES:
            whole.append(path)
    assert whole == [], f"docs/api/ renders internal modules whole: {sorted(whole)}"


def test_getting_started_commands_are_the_readme_commands():
    readme = code_blocks(ROOT / "README.md", "bash")
    page = code_blocks(DOCS / "getting-started.md", "bash")
    for command in (
        "pip install -e . && python -m adjoint_sym derive examples/lotka_volterra.toml",
        'pip install -e ".[test]" && pytest',
    ):
        assert any(command in block for block in readme), f"README.md no longer shows: {command}"
        assert any(command in block for block in page), f"docs/getting-started.md no longer shows: {command}"
