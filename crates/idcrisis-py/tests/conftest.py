"""Shared fixtures. The data directory is $IDCRISIS_DATA (MNIST and Fashion-MNIST)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict

import pytest

import idcrisis

REPO = Path(__file__).resolve().parents[3]


def small_config(**over: Any) -> Dict[str, Any]:
    """A 2-layer, 4-channel 3×3 CNN, 12 steps on one thread: a run in well under a second."""
    cfg: Dict[str, Any] = {
        "threads": 1,
        "rho": [0.5],
        "model": {"arch": "cnn", "depth": 2, "channels": 4, "kernel": 3},
        "train": {"steps": 12, "lr": 1e-3},
    }
    return idcrisis._run.merge_config(cfg, over)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = os.environ.get("IDCRISIS_DATA")
    if not d:
        d = str(REPO.parent / "shared" / "data")
    if not Path(d, "mnist").is_dir():
        pytest.fail(f"test data not found at {d}: set IDCRISIS_DATA to a directory with mnist/ and fashion-mnist/")
    os.environ["IDCRISIS_DATA"] = d
    return Path(d)


@pytest.fixture(scope="session")
def small_run(data_dir: Path) -> idcrisis.Run:
    return idcrisis.train(small_config(), progress=False)
