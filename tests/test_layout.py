"""The package's layout (issue 23): no two voxface modules import each other, directly or in a circle, and the
metrics at the bottom import nothing of voxface. Imports inside functions count: a lazy import hides a circle
from Python's start-up but not from a reader."""

import ast
from pathlib import Path

import voxface

PACKAGE = Path(voxface.__file__).parent


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """voxface module -> the voxface modules it imports anywhere in its text (module and function level).

    ``from a.b import c`` names module ``a.b.c`` where that is a module, else ``a.b``. Importing ``a.b.c`` also
    runs the ``__init__`` of ``a.b``: an edge to each enclosing package, except those enclosing the importer
    itself (Python runs them before the importer, so they are no circle of its making)."""
    paths = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importer's package, up level - 1 packages
                    parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                for alias in node.names:
                    named.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base)
        edges = set()
        for target in named:
            while target and target not in paths:  # "voxface.x.y" naming an attribute of module voxface.x
                target = target.rpartition(".")[0]
            if target.split(".")[0] != package.name or target == name:
                continue
            edges.add(target)
            edges |= {a for a in _ancestors(target) if a in paths and a not in _ancestors(name)}
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports as [a, b, ..., a], or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_circle_through_a_function_level_import(tmp_path):
    package = tmp_path / "voxface"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from voxface.sub.high import g\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "high.py").write_text("from voxface import low\n")
    graph = import_graph(package)
    assert graph["voxface.low"] == {"voxface.sub.high", "voxface.sub"}
    assert graph["voxface.sub.high"] == {"voxface.low"}
    assert find_cycle(graph) == ["voxface.low", "voxface.sub.high", "voxface.low"]
    (package / "sub" / "high.py").write_text("import numpy\n")
    assert find_cycle(import_graph(package)) is None


def test_the_checker_counts_a_package_init_that_imports_back(tmp_path):
    package = tmp_path / "voxface"
    (package / "a").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a" / "__init__.py").write_text("from voxface.a.inner import x\n")
    (package / "a" / "inner.py").write_text("x = 1\n")  # its own package's __init__ is no circle of its making
    (package / "b.py").write_text("from voxface.a.inner import x\n")
    assert find_cycle(import_graph(package)) is None
    (package / "a" / "inner.py").write_text("from voxface.b import y\n")  # a.inner -> b -> a (its __init__)
    assert find_cycle(import_graph(package)) is not None


def test_no_two_voxface_modules_import_each_other():
    cycle = find_cycle(import_graph())
    assert cycle is None, "voxface modules import each other in a circle: " + " -> ".join(cycle)


def test_metrics_import_nothing_of_voxface():
    graph = import_graph()
    assert graph["voxface.metrics"] == set(), f"voxface/metrics.py imports {sorted(graph['voxface.metrics'])}"


def test_scoring_is_numpy_on_embeddings():
    """scoring/ knows no model, checkpoint or evaluation, and no torch: it scores arrays."""
    graph = import_graph()
    scoring = {m: deps for m, deps in graph.items() if m.startswith("voxface.scoring")}
    assert {"voxface.scoring.backend", "voxface.scoring.cosine", "voxface.scoring.probes"} <= set(scoring)
    for module, deps in scoring.items():
        outside = {d for d in deps if not d.startswith("voxface.scoring")} - {"voxface.metrics", "voxface.errors"}
        assert not outside, f"{module} imports {sorted(outside)}"
    for path in (PACKAGE / "scoring").glob("*.py"):
        roots = {alias.name.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Import) for alias in node.names}
        roots |= {node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.ImportFrom) and node.module}
        assert not roots & {"torch", "lightning"}, f"{path.name} imports {sorted(roots & {'torch', 'lightning'})}"
