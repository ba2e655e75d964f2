"""Static checks as tests, so the README's one test command covers them: ruff and mypy --strict on bot/."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _tool(name: str) -> list[str]:
    if shutil.which(name) is None and shutil.which(name, path=str(ROOT / ".venv" / "bin")) is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return [sys.executable, "-m", name]


def test_ruff_is_clean() -> None:
    proc = subprocess.run(
        [*_tool("ruff"), "check", "bot", "tests", "benchmarks"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([*_tool("mypy"), "--strict", "bot"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
