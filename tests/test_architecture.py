"""The package's import graph: no cycles, no hidden (in-function) imports, a light CLI.

The graph is read statically with :mod:`ast` from every ``iqabench/**/*.py``, so it also
covers modules no test imports. An edge is one ``import iqabench...`` or
``from iqabench... import ...`` statement (relative forms included); ``from pkg import
name`` points at ``pkg.name`` when that is a submodule, else at ``pkg``. Imports under
``if TYPE_CHECKING:`` never run and are ignored. The parent packages Python initialises on
the way to a submodule are not edges: a package ``__init__`` that re-exports its
submodules is not a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import iqabench

PACKAGE_DIR = Path(iqabench.__file__).resolve().parent

#: Where in-function imports of the package are allowed (the CLI defers them for start-up time).
LATE_IMPORTS_ALLOWED = ("cli",)

#: Third-party modules that the light entry points must not load.
HEAVY = ("torch", "torchvision", "timm", "matplotlib.pyplot", "pandas")
LIGHT_MODULES = ("iqabench.config", "iqabench.errors", "iqabench.cli.app")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module
    line: int
    late: bool  # inside a function body


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir`` (a package)."""
    base = package_dir.name
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((base, *parts))] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """(node, late) for every import statement that runs, skipping ``if TYPE_CHECKING:`` bodies."""

    def visit(node: ast.AST, late: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, late
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:  # the else branch does run
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), late)
            else:
                inner = late or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                yield from visit(child, inner)

    yield from visit(tree, False)


def import_edges(package_dir: Path) -> list[Edge]:
    """Every import of a module of the package by a module of the package."""
    modules = module_files(package_dir)
    base = package_dir.name
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, late in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    origin = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [
                    f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                    for alias in node.names
                ]
            for target in dict.fromkeys(targets):
                if target == base or target.startswith(base + "."):
                    # `import pkg.a.b` names a module; keep the longest prefix that is one
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                    edges.append(Edge(name, target, node.lineno, late))
    return edges


def late_imports(package_dir: Path, allowed: tuple[str, ...] = LATE_IMPORTS_ALLOWED) -> list[str]:
    """``file:line: module imports target`` for each in-function import outside ``allowed`` subpackages."""
    base = package_dir.name
    exempt = tuple(f"{base}.{sub}" for sub in allowed)
    modules = module_files(package_dir)
    found = []
    for edge in import_edges(package_dir):
        if edge.late and not any(edge.source == e or edge.source.startswith(e + ".") for e in exempt):
            where = modules[edge.source].relative_to(package_dir.parent)
            found.append(f"{where}:{edge.line}: {edge.source} imports {edge.target} inside a function")
    return found


def import_cycles(package_dir: Path) -> list[list[str]]:
    """One cycle (module names, first repeated at the end) per strongly connected group of modules."""
    graph: dict[str, set[str]] = {}
    for edge in import_edges(package_dir):
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())

    # Tarjan's strongly connected components (iterative-free: the package is small)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles = []
    for group in groups:
        members = set(group)
        start = group[0]
        # shortest path back to start inside the group (breadth first)
        previous: dict[str, str] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            following = []
            for node in frontier:
                for nxt in sorted(graph[node] & members):
                    if nxt == start:
                        found = node
                        break
                    if nxt not in previous:
                        previous[nxt] = node
                        following.append(nxt)
                if found is not None:
                    break
            frontier = following
        path = [found]
        while path[-1] != start:
            path.append(previous[path[-1]])
        cycles.append([start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start])
    return cycles


# --- the project itself ------------------------------------------------------------------


def test_no_import_cycle_among_package_modules():
    cycles = import_cycles(PACKAGE_DIR)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_in_function_import_of_package_modules_outside_cli():
    found = late_imports(PACKAGE_DIR)
    assert not found, "in-function imports of iqabench modules:\n" + "\n".join(found)


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_modules_do_not_import_heavy_libraries(module):
    code = (
        f"import sys, {module}; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout.strip()
    assert not loaded, f"importing {module} loads {loaded}"


# --- the checker, on small packages made for it -------------------------------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_checker_finds_a_cycle_through_from_imports_and_names_it(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.b import thing\n",
        "b.py": "from pkg import c\n",  # c is a submodule: the edge goes to pkg.c
        "c.py": "from . import a\n",  # relative
        "d.py": "import pkg.a\n",  # outside the cycle
    })
    assert import_cycles(pkg) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_checker_counts_late_imports_in_cycles_but_not_type_checking_or_package_parents(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "sub/__init__.py": "from .x import f\nfrom pkg.sub.y import g\n",  # re-exports: no cycle
        "sub/x.py": "from pkg.sub.y import g\ndef f(): pass\n",
        "sub/y.py": "def g(): pass\n",
        "p.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg.q import Q
            def run():
                from pkg import q
        """,
        "q.py": """
            import typing
            if typing.TYPE_CHECKING:
                import pkg.p
            else:
                import os
            from pkg.p import run
        """,
    })
    cycles = import_cycles(pkg)
    assert cycles == [["pkg.p", "pkg.q", "pkg.p"]]  # p's late import closes it; type-only ones do not


def test_checker_reports_late_imports_outside_allowed_subpackages(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "base.py": "",
        "mid.py": """
            import json
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg import base
            class K:
                from pkg import base as b  # runs at import: not late
                def m(self):
                    import pkg.base
            def f():
                import json
                from .base import x
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.base import y
        """,
        "cli/__init__.py": "",
        "cli/app.py": "def main():\n    from pkg import mid\n",
    })
    found = late_imports(pkg)
    assert [line.split(": ", 1)[1] for line in found] == [
        "pkg.mid imports pkg.base inside a function",
        "pkg.mid imports pkg.base inside a function",
    ]
    assert [line.split(":")[1] for line in found] == ["9", "12"]
    assert found[0].startswith(str(Path("pkg") / "mid.py"))
    assert len(late_imports(pkg, allowed=())) == 3  # the cli one too


def test_checker_finds_no_cycle_in_a_layered_package(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "low.py": "import os\n",
        "high.py": "from pkg.low import x\nfrom . import low\n",
        "top.py": "import pkg.high, pkg.low\n",
    })
    assert import_cycles(pkg) == []
    assert {(e.source, e.target) for e in import_edges(pkg)} == {
        ("pkg.high", "pkg.low"), ("pkg.top", "pkg.high"), ("pkg.top", "pkg.low")
    }
