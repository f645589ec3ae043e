"""The package layout: stage subpackages, a small top level, and no import cycle.

An import cycle is a module that, through the modules it imports (at the top or inside a
function), imports itself again. ``from package import name`` counts as importing the submodule
``package.name`` when that is a module, else the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import emovox

SOURCE = Path(emovox.__file__).parent


def _modules() -> dict[str, Path]:
    root = SOURCE.parent
    return {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
            for p in SOURCE.glob("**/*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module → the emovox modules it imports anywhere in its source."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = subs if all(s in mods for s in subs) else [base, *subs]
            else:
                continue
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_top_level_is_the_public_face():
    modules = sorted(p.name for p in SOURCE.glob("*.py"))
    assert len(modules) <= 8, modules
    stages = {p.name for p in SOURCE.iterdir() if (p / "__init__.py").exists()}
    assert {"audio", "encoder", "features", "training", "evaluation", "prediction", "export", "runtime",
            "serving", "text", "batch", "cli", "corpora"} <= stages
