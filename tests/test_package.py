"""The sgnoise package as a whole: its modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import sgnoise

PACKAGE = Path(sgnoise.__file__).parent


def _modules(package: Path) -> dict[str, Path]:
    """{dotted name: file} of every module of the package (a package by its own name)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = (package.name, *path.relative_to(package).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``name`` imports, at the top or inside a function (those run
    too), not under ``if TYPE_CHECKING:``. Importing a.b.c runs a and a.b first: they
    count, except the packages ``name`` is itself part of (their imports are in progress)."""
    tree = ast.parse(path.read_text())
    hidden = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    own = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*own.split(".")[: len(own.split(".")) - node.level + 1], base])
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                        for a in node.names}  # fmt: skip
    edges = set()
    for target in targets:
        parts = target.split(".")
        for depth in range(1, len(parts) + 1):
            module = ".".join(parts[:depth])
            inside = name == module or name.startswith(module + ".")
            if module in known and not inside:
                edges.add(module)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = _modules(package)
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_sgnoise_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert {"sgnoise.settings", "sgnoise.studies", "sgnoise.plots"} <= set(graph)
    assert "sgnoise.studies" in graph["sgnoise.settings"]  # lazy imports count
    assert _cycles(graph) == []


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    """The check finds what it is for: a -> b at the top, b -> a inside a function."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\n")
    (pkg / "b.py").write_text("def g():\n    from pkg import a\n    return a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n"
    )
    graph = import_graph(pkg)
    assert graph["pkg.c"] == set()
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]
