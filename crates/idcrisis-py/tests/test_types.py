"""The stubs and the example type-check under mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CRATE = Path(__file__).resolve().parents[1]


def test_mypy_strict_on_the_package_stubs_and_example() -> None:
    pytest.importorskip("mypy")
    pytest.importorskip("matplotlib")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "python/idcrisis", "examples/quickstart.py"],
        cwd=CRATE,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
