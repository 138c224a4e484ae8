"""The package layout: no import cycle between hfadapt's modules, and a top level of folders only."""

from __future__ import annotations

import ast
from pathlib import Path

import hfadapt

PACKAGE = Path(hfadapt.__file__).resolve().parent


def module_names() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` of every module of hfadapt."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["hfadapt", *path.relative_to(PACKAGE).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_edges(modules: dict[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """The modules each module imports when it is imported: its top-level imports (in ``if``/``try`` blocks too),
    not those under ``TYPE_CHECKING`` or inside functions."""
    edges = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]

        def visit(body, name=name, here=here):
            for node in body:
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    visit(node.orelse)
                elif isinstance(node, (ast.If, ast.Try)):
                    visit(node.body)
                    visit(node.orelse)
                    for handler in getattr(node, "handlers", []):
                        visit(handler.body)
                    visit(getattr(node, "finalbody", []))
                elif isinstance(node, ast.ImportFrom):
                    base = here[: len(here) - node.level + 1] if node.level else []
                    target = ".".join(base + ([node.module] if node.module else []))
                    for alias in node.names:
                        sub = f"{target}.{alias.name}"
                        if sub in modules:
                            edges[name].add(sub)
                        elif target in modules:
                            edges[name].add(target)
                elif isinstance(node, ast.Import):
                    edges[name].update(alias.name for alias in node.names if alias.name in modules)

        visit(ast.parse(path.read_text()).body)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
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

    for v in edges:
        if v not in index:
            connect(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycle_inside_hfadapt():
    modules = module_names()
    edges = import_edges(modules)
    assert "hfadapt.methods.registry" in edges["hfadapt.methods.dann"]  # the graph sees relative imports
    assert cycles(edges) == []


def test_top_level_holds_folders_only():
    files = sorted(p.name for p in PACKAGE.iterdir() if p.is_file() and p.name != "py.typed")
    assert files == ["__init__.py"]
