"""Python and the CLI give bit-identical runs for the same config and thread count."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import idcrisis
from conftest import REPO


def cli() -> Path:
    env = os.environ.get("IDCRISIS_BIN")
    if env:
        assert Path(env).is_file(), f"IDCRISIS_BIN={env} does not exist"
        return Path(env)
    for p in (REPO / "target" / "release" / "idcrisis", REPO / "target" / "debug" / "idcrisis"):
        if p.is_file():
            return p
    pytest.skip("no idcrisis binary (build it, or set IDCRISIS_BIN)")


@pytest.mark.parametrize("threads", [1, 2])
def test_cli_and_python_runs_are_bit_identical(data_dir: Path, tmp_path: Path, threads: int) -> None:
    # The same config twice, written independently: as TOML for the CLI, as a dict for Python.
    toml = f"threads = {threads}\nrho = [0.5]\n[model]\ndepth = 3\nchannels = 8\nkernel = 5\n[train]\nsteps = 20\nlr = 0.001\n"
    cfg = {"threads": threads, "rho": [0.5], "model": {"depth": 3, "channels": 8, "kernel": 5}, "train": {"steps": 20, "lr": 1e-3}}
    py = idcrisis.train(cfg, out=tmp_path / "py", progress=False)
    (tmp_path / "cfg.toml").write_text(toml)
    subprocess.run(
        [str(cli()), "--data-dir", str(data_dir), "train", "--config", str(tmp_path / "cfg.toml"), "--out", str(tmp_path / "cli"), "--quiet"],
        check=True,
        capture_output=True,
    )
    for f in ("config.toml", "init.safetensors", "weights.safetensors", "loss.csv", "predictions.png"):
        assert (tmp_path / "cli" / f).read_bytes() == (tmp_path / "py" / f).read_bytes(), f
    a = json.loads((tmp_path / "cli" / "result.json").read_text())
    b = json.loads((tmp_path / "py" / "result.json").read_text())
    for k in ("status", "steps", "final_loss", "initial_loss", "threads", "params", "config", "evaluation"):
        assert a[k] == b[k], k
    assert py.result["evaluation"] == a["evaluation"]
