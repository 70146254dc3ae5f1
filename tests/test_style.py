"""The test command keeps the house style: ruff (lint and format) and mypy on src/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name):
    exe = Path(sys.executable).with_name(name)
    path = str(exe) if exe.exists() else shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' installs it)")
    return path


def _run(*cmd):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


PYTHON_DIRS = [d for d in ("src", "tests", "bench") if (ROOT / d).is_dir()]


def test_ruff_lint():
    _run(_tool("ruff"), "check", *PYTHON_DIRS)


def test_ruff_format():
    _run(_tool("ruff"), "format", "--check", *PYTHON_DIRS)


def test_mypy():
    _run(_tool("mypy"), "src/deltaprop")


def test_doctests():
    _run(sys.executable, "-m", "pytest", "-q", "--doctest-modules", "src/deltaprop", "-p", "no:cacheprovider")
