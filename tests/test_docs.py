"""Documentation: docstrings on every public name, every example tested, the docs site whole and its programs true."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tasker_async

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tasker_async"
DOCS = ROOT / "docs"

PUBLIC_MODULES = [
    "tasker_async",
    *sorted(
        f"tasker_async.{info.name}"
        for info in pkgutil.iter_modules(tasker_async.__path__)
        if not info.name.startswith("_")
    ),
]


def public_names() -> list[tuple[str, str]]:
    return [(module, name) for module in PUBLIC_MODULES for name in importlib.import_module(module).__all__]


def attribute_docstrings() -> set[str]:
    """Names assigned at the top of a package module with a string literal right after (an attribute docstring)."""
    documented: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        body = ast.parse(path.read_text()).body
        for statement, following in itertools.pairwise(body):
            targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
            value = following.value if isinstance(following, ast.Expr) else None
            is_doc = isinstance(value, ast.Constant) and isinstance(value.value, str)
            if isinstance(statement, (ast.Assign, ast.AnnAssign)) and is_doc:
                documented.update(target.id for target in targets if isinstance(target, ast.Name))
    return documented


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_has_a_docstring_and_an_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), module_name
    assert isinstance(module.__all__, tuple), module_name
    assert all(hasattr(module, name) for name in module.__all__), module_name


def undocumented_members(cls: type) -> list[str]:
    """Public methods and properties without a docstring, on ``cls`` and its tasker_async bases."""
    missing = []
    for klass in inspect.getmro(cls):
        if not klass.__module__.startswith("tasker_async"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") and name not in ("__call__", "__aenter__", "__aexit__", "__enter__", "__exit__"):
                continue
            function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if (inspect.isfunction(function) or isinstance(member, property)) and not (function.__doc__ or "").strip():
                missing.append(f"{klass.__qualname__}.{name}")
    return missing


@pytest.mark.parametrize(("module_name", "name"), public_names())
def test_every_public_name_has_a_docstring(module_name: str, name: str) -> None:
    obj = getattr(importlib.import_module(module_name), name)
    if inspect.isclass(obj):
        assert (vars(obj).get("__doc__") or "").strip(), f"{module_name}.{name}"
        assert not undocumented_members(obj)
    elif inspect.isfunction(obj):
        assert (obj.__doc__ or "").strip(), f"{module_name}.{name}"
    else:  # a constant or a type alias: documented by a string right after its assignment
        assert name in attribute_docstrings(), f"{module_name}.{name} needs an attribute docstring"


def test_every_example_is_run_by_a_test() -> None:
    tests = "\n".join(
        path.read_text() for path in (ROOT / "tests").glob("test_*.py") if path.name != Path(__file__).name
    )
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert examples
    untested = [path.name for path in examples if f"examples/{path.name}" not in tests]
    assert not untested, f"no test mentions {untested}"


# -- the documentation site -------------------------------------------------------------


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    missing = [
        str(page.relative_to(DOCS)) for page in pages() if f" {page.relative_to(DOCS).as_posix()}\n" not in config
    ]
    assert not missing, f"not in mkdocs.yml's nav: {missing}"


def test_the_reference_covers_every_public_module() -> None:
    reference = (DOCS / "reference.md").read_text()
    for module in PUBLIC_MODULES:
        assert f"::: {module}\n" in reference, module


def programs() -> list[tuple[str, str]]:
    """The Python blocks of the docs that are whole programs (they run or assert something)."""
    found = []
    for page in pages():
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL):
            if "asyncio.run(" in block or "\nassert " in block:
                found.append((str(page.relative_to(DOCS)), block))
    return found


# What each runnable program of the docs says it prints.
PRINTS = {
    "getting-started.md": ["ran on connection", "10 results", "after the block: stopped"],
    "guides/resources-and-health.md": ["done on connection 2 after 2 runs"],
    "guides/priorities-and-once.md": ["['first', 'urgent', 'a', 'b', 'c']"],
    "guides/observability.md": ["{'queued': 5, 'started': 5, 'succeeded': 5}"],
    "guides/resilience.md": ["https://example.com fetched on call 3\n2\n", "first square above 50: 64"],
    "guides/bursting.md": [],
}


@pytest.mark.parametrize("page", sorted({page for page, _ in programs()}))
def test_the_programs_in_the_docs_run_and_print_what_they_say(page: str) -> None:
    printed = ""
    for code in (code for where, code in programs() if where == page):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        printed += done.stdout
    for expected in PRINTS[page]:
        assert expected in printed, (expected, printed)


def test_every_runnable_page_says_what_it_prints() -> None:
    assert {page for page, _ in programs()} == set(PRINTS)
