"""The package's shape: no import cycles, small modules and functions, low complexity.

The import graph is read from the source with ``ast``: an edge is an import that runs when its module is
imported. Imports under ``if TYPE_CHECKING:`` never run, and an import inside a function runs on the first
call, once every module is loaded; neither can meet a half-initialised module, so neither is an edge.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radon.complexity import cc_rank
from radon.visitors import ComplexityVisitor

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tasker_async"

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
WORST_GRADE = "C"
# The one exception to the function size and complexity limits: the worker loop, kept in one piece because its
# speed is measured (benchmarks/) and every call taken out of it costs on every task.
HOT_LOOP = "tasker_async._core.worker._serve"


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def read_module(path: Path, source: str) -> Module:
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return Module(".".join(parts), path, ast.parse(source, str(path)), len(source.splitlines()))


def package_modules() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = read_module(path.relative_to(ROOT), path.read_text(encoding="utf-8"))
        modules[module.name] = module
    return modules


MODULES = package_modules()


# -- the import graph


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def eager_imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported (class bodies included)."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from eager_imports(node.orelse)
        else:
            yield from eager_imports(ast.iter_child_nodes(node))


def imported_modules(module: Module, statement: ast.Import | ast.ImportFrom, known: Iterable[str]) -> set[str]:
    """The modules among ``known`` a statement imports, by full name."""
    known = set(known)
    if isinstance(statement, ast.Import):
        return {alias.name for alias in statement.names if alias.name in known}
    if statement.level:
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        for _ in range(statement.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{statement.module}" if statement.module else package
    else:
        base = statement.module or ""
    targets = set()
    for alias in statement.names:
        submodule = f"{base}.{alias.name}"
        if submodule in known:
            targets.add(submodule)
        elif base in known:
            targets.add(base)
    return targets


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        edges = set()
        for statement in eager_imports(module.tree.body):
            edges |= imported_modules(module, statement, modules)
        graph[name] = edges - {name}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that all reach one another."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str]:
    """A shortest path of imports from ``start`` back to itself (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    return []


SAMPLE = """
import json
from typing import TYPE_CHECKING

import pkg._a
from . import _b, VERSION
from ._c import thing
from .sub import _d

if TYPE_CHECKING:
    from ._hint import Hint
else:
    from ._e import fallback

try:
    from ._f import fast
except ImportError:
    fast = None


class Holder:
    from ._g import helper


def lazy():
    from ._lazy import late
"""


def test_the_import_graph_keeps_the_imports_that_run_at_import_time() -> None:
    names = ["pkg", "pkg.sub", "pkg._m", "pkg._hint", "pkg._lazy", *(f"pkg._{x}" for x in "abcefg"), "pkg.sub._d"]
    modules = {name: Module(name, Path(), ast.parse(""), 0) for name in names}
    modules["pkg._m"] = read_module(Path("pkg/_m.py"), SAMPLE)
    # ``VERSION`` is no module: that name comes from the package itself, whose __init__ runs first.
    expected = {"pkg", "pkg._a", "pkg._b", "pkg._c", "pkg.sub._d", "pkg._e", "pkg._f", "pkg._g"}
    assert import_graph(modules)["pkg._m"] == expected


def test_cycle_search_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert [group for group in strongly_connected(graph) if len(group) > 1] == [["a", "b", "c"]]
    assert shortest_cycle(graph, "a") == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    graph = import_graph(MODULES)
    cycles = [" -> ".join(shortest_cycle(graph, group[0])) for group in strongly_connected(graph) if len(group) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# The layers, lowest first: a module imports (at import time) only from its own layer or lower ones.
LAYERS = (
    ("tasker_async.errors", "tasker_async._observe", "tasker_async._scaling.policies"),
    ("tasker_async._core",),
    ("tasker_async._scaling.supervisor",),
    ("tasker_async._api",),
    ("tasker_async", "tasker_async._demo", "tasker_async.prometheus", "tasker_async.otel",
     "tasker_async.fastapi", "tasker_async.aiohttp"),
    ("tasker_async.durable._model",),
    ("tasker_async.durable._stores",),
    ("tasker_async.durable._client", "tasker_async.durable._consumer"),
    ("tasker_async.durable",),
    ("tasker_async._cli", "tasker_async.__main__"),
    ("tasker_async.dashboard",),
)  # fmt: skip


def layer_of(name: str) -> int:
    """The index in LAYERS of the most specific prefix that names ``name``'s layer."""
    best, level = "", -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
                best, level = prefix, index
    assert level >= 0, f"{name} is in no layer"
    return level


def test_imports_only_go_down_the_layers() -> None:
    graph = import_graph(MODULES)
    upward = [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name, targets in graph.items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert not upward, "imports that go up the layers:\n" + "\n".join(upward)


# -- size


def functions(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method, nested ones included, with its dotted name."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}.{child.name}", child
            yield from functions(child, f"{prefix}.{child.name}")
        elif isinstance(child, ast.ClassDef):
            yield from functions(child, f"{prefix}.{child.name}")
        else:
            yield from functions(child, prefix)


def test_no_module_over_the_line_limit() -> None:
    too_long = [f"{m.name}: {m.lines} lines" for m in MODULES.values() if m.lines > MAX_MODULE_LINES]
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(too_long)


def test_no_function_over_the_line_limit() -> None:
    names = set()
    too_long = []
    for module in MODULES.values():
        for name, function in functions(module.tree, module.name):
            names.add(name)
            length = (function.end_lineno or function.lineno) - function.lineno + 1
            if length > MAX_FUNCTION_LINES and name != HOT_LOOP:
                too_long.append(f"{name}: {length} lines")
    assert HOT_LOOP in names, "the exception names a function that no longer exists"
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(too_long)


# -- complexity (radon's cyclomatic complexity, graded A to F)


@dataclass(frozen=True, slots=True)
class Block:
    name: str
    complexity: int


def flatten(prefix: str, block: Any) -> Iterator[Block]:
    """A radon block and every block inside it: methods, inner classes, closures."""
    name = f"{prefix}.{block.name}"
    yield Block(name, block.complexity)
    for child in (
        *getattr(block, "methods", ()),
        *getattr(block, "inner_classes", ()),
        *getattr(block, "closures", ()),
    ):
        yield from flatten(name, child)


@functools.cache
def radon_blocks() -> tuple[tuple[Block, ...], tuple[Block, ...]]:
    """The blocks ``radon cc -a`` averages (functions, classes, methods), and every block, closures included."""
    averaged: list[Block] = []
    every: list[Block] = []
    for module in MODULES.values():
        visitor = ComplexityVisitor.from_ast(module.tree)
        averaged += (Block(f"{module.name}.{block.fullname}", block.complexity) for block in visitor.blocks)
        for block in (*visitor.functions, *visitor.classes):
            every += flatten(module.name, block)
    return tuple(averaged), tuple(every)


def test_average_complexity_is_grade_a() -> None:
    blocks = radon_blocks()[0]
    average = sum(block.complexity for block in blocks) / len(blocks)
    assert cc_rank(average) == "A", f"average complexity {average:.2f} over {len(blocks)} blocks"


def test_no_block_worse_than_grade_c() -> None:
    blocks = radon_blocks()[1]
    worse = [
        f"{block.name}: {cc_rank(block.complexity)} ({block.complexity})"
        for block in blocks
        if cc_rank(block.complexity) > WORST_GRADE and block.name != HOT_LOOP
    ]
    assert HOT_LOOP in {block.name for block in blocks}, "the exception names a function that no longer exists"
    assert not worse, f"blocks worse than grade {WORST_GRADE}:\n" + "\n".join(worse)


def test_complexity_blocks_include_closures_and_methods() -> None:
    source = """
class K:
    def method(self):
        def inner(x):
            return 1 if x else 2

        return inner
"""
    visitor = ComplexityVisitor.from_ast(ast.parse(source))
    blocks = [block for top in (*visitor.functions, *visitor.classes) for block in flatten("m", top)]
    assert [(block.name, block.complexity) for block in blocks] == [
        ("m.K", 2),
        ("m.K.method", 1),
        ("m.K.method.inner", 2),
    ]
