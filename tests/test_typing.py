"""Typing: ``tests/typing`` passes ``mypy --strict``, and ``Config``'s typed constructor takes every field."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ForwardRef

import pytest
from mypy import api

from tasker_async import Config
from tasker_async._core.config_options import ConfigOptions

ROOT = Path(__file__).resolve().parent.parent

# The fields the overloads of Config.__init__ spell out themselves: their types name the resource.
RESOURCE_FIELDS = {"on_create", "on_destroy", "check_resource"}


@pytest.mark.timeout(120)
def test_the_typing_checks_pass_mypy_strict(tmp_path: Path) -> None:
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy_cache"),
            str(ROOT / "tests" / "typing"),
        ]
    )
    assert status == 0, stdout + stderr
    assert stdout.startswith("Success: no issues found in"), stdout


def test_config_options_are_every_other_field_with_its_own_annotation() -> None:
    # ConfigOptions (the keyword arguments type checkers see) must not drift from the dataclass.
    fields = {field.name for field in dataclasses.fields(Config)}
    options = {
        name: ref.__forward_arg__ if isinstance(ref, ForwardRef) else ref
        for name, ref in ConfigOptions.__annotations__.items()
    }
    assert set(options) == fields - RESOURCE_FIELDS
    assert ConfigOptions.__required_keys__ == frozenset()
    for name, annotation in options.items():
        assert annotation == Config.__annotations__[name], name
