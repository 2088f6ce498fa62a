"""Where and how the numbers were measured, and rewriting the results section of ``benchmarks/README.md``."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

README = Path(__file__).with_name("README.md")
BEGIN = "<!-- benchmark results: begin -->"
END = "<!-- benchmark results: end -->"


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git() -> str:
    root = README.parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "tasker_async")
    except (OSError, subprocess.SubprocessError):
        return ""
    if not commit:
        return ""
    return f" at git {commit}" + (" + uncommitted changes in tasker_async/" if dirty else "")


def environment(loops: list[str]) -> str:
    """One line: when, on what machine, Python, loops and library version."""
    cpu = _cpu_model()
    cores = f"{os.cpu_count()} cores" + (f" ({cpu})" if cpu else "")
    shown = [f"uvloop {_version('uvloop')}" if loop == "uvloop" else loop for loop in loops]
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.system()} {platform.machine()}, "
        f"{cores}, {platform.python_implementation()} {platform.python_version()}; loops: {', '.join(shown)}; "
        f"tasker_async {_version('tasker-async')}{_git()}."
    )


def write_results(section: str) -> None:
    """Replace what lies between the markers in ``benchmarks/README.md`` with ``section``."""
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{README}: put the lines {BEGIN!r} and {END!r} where the results go, then rerun")
    README.write_text(f"{text[: start + len(BEGIN)]}\n\n{section.strip()}\n\n{text[end:]}", encoding="utf-8")
