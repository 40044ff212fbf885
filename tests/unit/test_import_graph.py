"""No import cycles among the project's own modules (`harness/` and `targets/`).

Every module is parsed with `ast` (nothing is imported). An edge A → B is an import in A of the
project module B, wherever it is written: at module level or inside a function, method or class
body. Relative imports are resolved against A's package. What counts as B:

- `import a.b.c` and `from a.b.c import x` give an edge to `a.b.c` (or, for `from`, to
  `a.b.c.x` when `x` is itself a module). The parent packages Python initialises on the way
  (`a`, `a.b`) are not edges: otherwise a package whose `__init__` imports its own submodules
  would always be a cycle.
- Imports under `if TYPE_CHECKING:` count too: they never run, but a cycle hidden there is still
  two modules that each need the other to be read (and it is one edit away from a real one).

Cycles are the strongly connected components of more than one module (or a module importing
itself), found with Tarjan's algorithm; the failure lists each one with the lines that close it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "targets")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every `.py` under the project packages."""
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in `tree`, at any depth, `if TYPE_CHECKING:` blocks included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module named by `from <node.module> import ...` inside `module`."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def edges_of(module: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    """The project modules `module` (parsed from `path`) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[Edge] = []
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _base(module, is_package, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        out += [Edge(module, t, node.lineno) for t in targets if t in modules]
    return out


def import_graph(root: Path = ROOT) -> dict[str, list[Edge]]:
    modules = module_names(root)
    return {name: edges_of(name, path, modules) for name, path in modules.items()}


class _Tarjan:
    """Tarjan's strongly connected components, iterative (a deep chain must not hit the
    recursion limit)."""

    def __init__(self, graph: dict[str, list[Edge]]) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.found: list[list[str]] = []

    def enter(self, node: str, work: list[tuple[str, Iterator[Edge]]]) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        work.append((node, iter(self.graph.get(node, []))))

    def visit(self, start: str) -> None:
        work: list[tuple[str, Iterator[Edge]]] = []
        self.enter(start, work)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    self.low[parent] = min(self.low[parent], self.low[node])
                if self.low[node] == self.index[node]:
                    self.close(node)
            elif child.target not in self.index:
                self.enter(child.target, work)
            elif child.target in self.on_stack:
                self.low[node] = min(self.low[node], self.index[child.target])

    def close(self, root: str) -> None:
        """Pop the component rooted at `root`; keep it when it is a cycle."""
        component: list[str] = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == root:
                break
        self_loop = any(e.target == root for e in self.graph.get(root, []))
        if len(component) > 1 or self_loop:
            self.found.append(sorted(component))


def cycles(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """The strongly connected components that are cycles, each sorted, in sorted order."""
    tarjan = _Tarjan(graph)
    for name in sorted(graph):
        if name not in tarjan.index:
            tarjan.visit(name)
    return sorted(tarjan.found)


def describe(graph: dict[str, list[Edge]], component: list[str]) -> str:
    members = set(component)
    lines = [f"{e.source}:{e.line} imports {e.target}" for name in component
             for e in graph[name] if e.target in members]
    return " ↔ ".join(component) + "\n    " + "\n    ".join(lines)


def test_the_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    def edge(a: str, b: str) -> Edge:
        return Edge(a, b, 1)

    graph = {"a": [edge("a", "b")], "b": [edge("b", "c")], "c": [edge("c", "a"), edge("c", "d")],
             "d": [], "e": [edge("e", "e")], "f": [edge("f", "d")]}
    assert cycles(graph) == [["a", "b", "c"], ["e"]]
    assert cycles({"x": [edge("x", "y")], "y": []}) == []


def test_imports_inside_functions_and_relative_imports_are_edges(tmp_path: Path) -> None:
    pkg = tmp_path / "harness"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n", encoding="utf-8")
    (pkg / "sub" / "leaf.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import harness.other\n"
        "def f() -> None:\n    from ..top import g\n", encoding="utf-8")
    (pkg / "other.py").write_text("", encoding="utf-8")
    (pkg / "top.py").write_text("import harness.sub.leaf\n", encoding="utf-8")
    (tmp_path / "targets").mkdir()
    graph = import_graph(tmp_path)
    assert [e.target for e in graph["harness.sub"]] == ["harness.sub.leaf"]
    assert sorted((e.target, e.line) for e in graph["harness.sub.leaf"]) == [
        ("harness.other", 3), ("harness.top", 5)]
    assert cycles(graph) == [["harness.sub.leaf", "harness.top"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str) -> None:
    graph = import_graph()
    found = [c for c in cycles(graph) if any(m.split(".")[0] == package for m in c)]
    assert not found, "import cycles:\n" + "\n".join(describe(graph, c) for c in found)


# A package's `__init__` that imports project modules runs them whenever any of its submodules is
# imported, so `a.x` imported from `b` while `b` is loading through `a/__init__` is a cycle at run
# time that the edges above (which skip parent packages) cannot see. Package inits hold their
# docstring (the map of the package); these two are explicit registries, listed here on purpose.
REGISTRIES = {
    "harness.drivers": "the DRIVERS dict and the Driver protocol; the drivers load lazily",
    "targets": "the TARGETS dict; each target module loads only when started",
}


def init_imports(root: Path = ROOT) -> dict[str, list[str]]:
    """Each package `__init__`'s imports of project modules (any depth, as `edges_of` sees)."""
    modules = module_names(root)
    return {name: sorted({e.target for e in edges_of(name, path, modules)})
            for name, path in modules.items() if path.name == "__init__.py"}


def test_package_inits_import_no_project_module_except_the_registries() -> None:
    found = {name: targets for name, targets in init_imports().items()
             if targets and name not in REGISTRIES}
    assert not found, "keep package __init__ files to their docstring; move the code into a " \
        "named module:\n" + "\n".join(f"{k}: {', '.join(v)}" for k, v in sorted(found.items()))


def test_the_init_check_sees_an_init_that_imports_its_submodule(tmp_path: Path) -> None:
    pkg = tmp_path / "harness" / "stage"
    pkg.mkdir(parents=True)
    (tmp_path / "harness" / "__init__.py").write_text('"""doc"""\n', encoding="utf-8")
    (pkg / "__init__.py").write_text("from harness.stage.core import run\n", encoding="utf-8")
    (pkg / "core.py").write_text("def run() -> None: ...\n", encoding="utf-8")
    (tmp_path / "targets").mkdir()
    assert init_imports(tmp_path) == {"harness": [], "harness.stage": ["harness.stage.core"]}
