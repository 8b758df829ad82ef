"""The house stays standing: folders are layers, imports point one way, references stay independent.

The import graph is read from the source with ``ast`` (every ``import`` anywhere in a
module, so imports inside functions count as much as those at the top, plus the
name-to-module tables that package ``__init__`` files load lazily), never by importing.

Allowed directions (a layer may import itself and the layers it lists):

=============  ==============================================================
layer          may import
=============  ==============================================================
base           ``errors``, ``_lazy``, ``_figures``, ``_version``, ``_limits``: nothing of ours
symbolic       base
numeric        base, symbolic
adjoint        base, symbolic, numeric
reference      base, symbolic, numeric (never adjoint: a check sharing code with
               what it checks proves nothing)
discrete       base, symbolic, numeric, reference
verify         everything above
testing        everything above, verify
plot           everything above, testing
campaign       everything above plot: base .. testing (plot is a leaf it never needs)
cli            everything above, plot, campaign
adapters       base, symbolic, numeric
facade         anything (the package root and the public aliases
               ``builders``, ``identities``, ``strategies``)
=============  ==============================================================
"""

from __future__ import annotations

import ast
import itertools
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "adjoint_sym"

BASE = {"errors", "_lazy", "_figures", "_version", "_limits"}
FACADES = {"__init__", "__main__", "builders", "identities", "strategies"}
ORDER = ["base", "symbolic", "numeric", "adjoint", "reference", "discrete", "verify", "testing", "plot", "cli"]
ALLOWED = {
    "base": {"base"},
    "symbolic": {"base", "symbolic"},
    "numeric": {"base", "symbolic", "numeric"},
    "adjoint": {"base", "symbolic", "numeric", "adjoint"},
    "reference": {"base", "symbolic", "numeric", "reference"},
    "discrete": {"base", "symbolic", "numeric", "reference", "discrete"},
    "verify": {"base", "symbolic", "numeric", "adjoint", "reference", "discrete", "verify"},
    "adapters": {"base", "symbolic", "numeric", "adapters"},
}
for _lower, _upper in itertools.pairwise(ORDER[6:]):  # verify < testing < plot < cli, each sees all below
    ALLOWED[_upper] = ALLOWED[_lower] | {_upper}
ALLOWED["campaign"] = ALLOWED["testing"] | {"campaign"}  # beside plot: runs checks at scale
ALLOWED["cli"] |= {"campaign"}
ALLOWED["facade"] = set(ALLOWED) | {"facade"}

#: Names of the adjoint's derivative kernels: no independent route may call them.
ADJOINT_KERNEL_NAMES = {"vjp", "vjp_h", "vjp_batched", "vjp_blocks", "adjoint_rhs", "backsolve_rhs", "jac_h_from_vjp"}
#: The symbolic derivation of a running cost's gradient the adjoint compiles
#: (:mod:`adjoint_sym.symbolic.running_cost`): the references differentiate ``g`` themselves.
RUNNING_COST_DERIVATION = {"running_cost_gradient", "hamiltonian_products", "hamiltonian_gradient"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["adjoint_sym", *parts])


def layer_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or (len(parts) == 1 and parts[0] in FACADES):
        return "facade"
    if parts[0] in BASE:
        return "base"
    return parts[0].removesuffix(".py")


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def _executed_nodes(tree: ast.AST):
    """Every node, except under ``if TYPE_CHECKING:`` (type hints only, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> modules it imports`` (ours only), lazy imports and lazy tables included."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in _executed_nodes(tree):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node.level, node.module)
                for alias in node.names:  # ``from pkg import submodule`` imports the submodule
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in modules else target)
            elif is_package and isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                if names & {"_EXPORTS", "_LAZY"}:
                    edges.update(f"{module}.{v.value}" for v in node.value.values if isinstance(v, ast.Constant))
        graph[module] = {e for e in edges if e in modules and e != module}
    return graph


def layer_violations(root: Path = PACKAGE) -> list[str]:
    out = []
    for module, targets in sorted(import_graph(root).items()):
        layer = layer_of(module)
        for target in sorted(targets):
            if layer_of(target) not in ALLOWED[layer]:
                out.append(f"{module} ({layer}) imports {target} ({layer_of(target)})")
    return out


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_every_module_belongs_to_a_known_layer():
    unknown = sorted({layer_of(m) for m in import_graph()} - set(ALLOWED))
    assert not unknown, f"modules outside every layer: {unknown}; add the folder to the layer table"


def test_imports_point_only_down_the_layers():
    assert layer_violations() == []


def test_no_reference_reaches_the_adjoint_even_transitively():
    graph = import_graph()
    independent = [m for m in graph if layer_of(m) in ("reference", "discrete")]
    reached = {m: sorted(r for r in reachable(graph, m) if layer_of(r) == "adjoint") for m in independent}
    assert {m: r for m, r in reached.items() if r} == {}


def test_no_independent_route_calls_the_adjoints_kernels():
    """Beyond imports: the references and backprop never touch a VJP kernel by attribute."""
    used = {}
    for path in [*(PACKAGE / "reference").rglob("*.py"), *(PACKAGE / "discrete").rglob("*.py")]:
        names = {n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)}
        if names & ADJOINT_KERNEL_NAMES:
            used[path.name] = sorted(names & ADJOINT_KERNEL_NAMES)
    assert used == {}


def test_no_independent_route_uses_the_adjoints_running_cost_derivative():
    """The references and backprop differentiate a running cost entry by entry, never by the
    reverse-mode derivation the adjoint compiles (neither imported nor called)."""
    used = {}
    for path in [*(PACKAGE / "reference").rglob("*.py"), *(PACKAGE / "discrete").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        if names & RUNNING_COST_DERIVATION:
            used[path.name] = sorted(names & RUNNING_COST_DERIVATION)
    assert used == {}


def test_there_are_no_import_cycles():
    graph = import_graph()
    # The package roots lazily re-export their layers' names; importing a submodule runs
    # them, but they import nothing eagerly that imports them back.
    assert cycles({m: {t for t in ts if layer_of(t) != "facade"} for m, ts in graph.items()}) == []


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        ("reference/forward.py", "def _planted():\n    from ..adjoint import kernels\n", "adjoint_sym.adjoint.kernels"),
        ("numeric/solve.py", "from ..verify import routes\n", "adjoint_sym.verify.routes"),
        ("symbolic/system.py", "from ..numeric import problem\n", "adjoint_sym.numeric.problem"),
    ],
)
def test_a_planted_upward_import_is_caught(tmp_path, module, planted, expected):
    copy = tmp_path / "adjoint_sym"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert layer_violations(copy) == []
    target = copy / module
    target.write_text(target.read_text() + "\n\n" + planted)
    found = layer_violations(copy)
    assert len(found) == 1 and found[0].endswith(f"imports {expected} ({layer_of(expected)})"), found


def test_a_planted_cycle_is_caught(tmp_path):
    copy = tmp_path / "adjoint_sym"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    parse = copy / "symbolic" / "parse.py"
    parse.write_text(parse.read_text() + "\n\ndef _planted():\n    from .system import ODESystem\n")
    graph = import_graph(copy)
    assert any("adjoint_sym.symbolic.parse" in c and "adjoint_sym.symbolic.system" in c for c in cycles(graph))
