"""Python against the CLI on the same machine (BENCHMARKS.md, "Python package"):

1. training the 5-layer, 128-channel 5×5 CNN for 50 steps: ms/step of `idcrisis.train` against
   `idcrisis train` (both read from result.json), alternating, median of --repeats each;
2. `Run.predict` on the 10,000 MNIST test images (batches of 100, best of 2 passes) against
   `idcrisis bench --probe` on the same workload (cnn-d5-c32-k3: torch-default init, seed 0).

    python crates/idcrisis-py/scripts/bench.py --cli target/release/idcrisis --threads 2
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import idcrisis


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idcrisis-bench-"))

    cfg = {"threads": a.threads, "model": {"depth": 5, "channels": 128, "kernel": 5}, "train": {"steps": 50, "tol": 0.0}}
    (tmp / "cfg.toml").write_text(idcrisis._native.config_toml(cfg))
    cli_ms, py_ms = [], []
    for i in range(a.repeats):
        out = tmp / f"cli{i}"
        subprocess.run([str(a.cli), "train", "--config", str(tmp / "cfg.toml"), "--out", str(out), "--quiet"], check=True, capture_output=True)
        cli_ms.append(json.loads((out / "result.json").read_text())["ms_per_step"])
        py_ms.append(idcrisis.train(cfg, progress=False).ms_per_step)
    c, p = statistics.median(cli_ms), statistics.median(py_ms)
    print(f"train cnn-d5-c128-k5, 50 steps, {a.threads} threads: CLI {c:.2f} ms/step {cli_ms}, Python {p:.2f} ms/step {py_ms}: {100 * (p / c - 1):+.1f}%")

    run = idcrisis.train({"threads": a.threads, "model": {"depth": 5, "channels": 32, "kernel": 3}, "train": {"steps": 0}}, progress=False)
    x = idcrisis.load_dataset("mnist:test")
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        run.predict(x, batch=100)
        best = min(best, time.perf_counter() - t)
    py_ips = len(x) / best
    r = subprocess.run(
        [str(a.cli), "bench", "--probe", "--threads", str(a.threads), "--workload", "cnn-d5-c32-k3", "--steps", "3"],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(l for l in r.stdout.splitlines() if "cnn-d5-c32-k3" in l and "10000" in l.replace(",", ""))
    nums = [float(v) for v in re.findall(r"(\d+(?:\.\d+)?)\s*(?:img|images)/s", line)] or [float(v) for v in re.findall(r"\b\d{3,}(?:\.\d+)?\b", line)]
    print(r.stdout)
    print(f"predict cnn-d5-c32-k3 on {len(x)} MNIST test images, {a.threads} threads: Python {py_ips:.0f} images/s; CLI line: {line.strip()}")


if __name__ == "__main__":
    main()
