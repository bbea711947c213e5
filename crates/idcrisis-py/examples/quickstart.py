"""idcrisis from Python: train the paper's 20-layer CNN on one "7", look at its predictions, and
plot corr-to-identity against depth from a sweep.

    python examples/quickstart.py             # the paper's sizes (minutes on 2 cores)
    python examples/quickstart.py --small     # a small version (seconds; what CI runs)

Figures go to --out (default quickstart/); with --show they also open in a window.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List

import matplotlib

import idcrisis


def prediction_grid(run: idcrisis.Run, path: Path) -> None:
    """Probes on top, the trained net's outputs below (as the CLI's predictions.png)."""
    import matplotlib.pyplot as plt

    probes, outputs = run.probes, run.predictions
    n = len(probes)
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8))
    for i in range(n):
        for row, images in enumerate((probes, outputs)):
            ax = axes[row, i]
            ax.imshow(images[i, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, i].set_title(run.probe_names[i][:10], fontsize=6)
        axes[1, i].set_xlabel(f"id {run.scores[i]['corr_identity']:.2f}", fontsize=6)
    fig.suptitle(f"{run.config['model']['depth']}-layer CNN trained on one image: inputs (top), outputs (bottom)")
    fig.savefig(path, dpi=120)


def depth_sweep(out: Path, depths: List[int], base: Dict[str, Any]) -> Any:
    """Plan, run and collect a sweep over depth; returns the collected records."""
    sweep_dir = out / "depth-sweep"
    idcrisis.sweep.plan({**base, "model": {**base["model"], "depth": depths}}, sweep_dir)
    failed = idcrisis.sweep.run(sweep_dir)
    for index, message in failed:
        print(f"cell {index} failed: {message}")
    return idcrisis.sweep.collect(sweep_dir, as_frame=False)


def plot_depth(rows: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    depth = [r["model.depth"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(depth, [r["paper.corr_identity"] for r in rows], "o-", label="corr to identity")
    ax.plot(depth, [r["paper.corr_constant"] for r in rows], "s--", label="corr to constant")
    ax.set_xlabel("depth (conv layers)")
    ax.set_ylabel("mean corr over the paper's probes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="small nets and few steps (for CI)")
    ap.add_argument("--out", type=Path, default=Path("quickstart"), help="where figures and the sweep go")
    ap.add_argument("--show", action="store_true", help="also show the figures in a window")
    args = ap.parse_args()
    if not args.show:
        matplotlib.use("Agg")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    if args.small:
        model: Dict[str, Any] = {"depth": 4, "channels": 8, "kernel": 5}
        train: Dict[str, Any] = {"steps": 30}
        depths = [1, 2, 3]
    else:
        model = {"depth": 20, "channels": 128, "kernel": 5}
        train = {"steps": 10000}
        depths = [1, 2, 3, 5, 8, 12, 16, 20]

    # 1. The paper's 20-layer CNN (5×5, 128 channels), Adam, on MNIST train #15 (a "7").
    run = idcrisis.train(model=model, train=train)
    print(run)
    paper = next(c for c in run.categories if c["category"] == "paper")
    print(f"mean corr over the paper's probes: to identity {paper['corr_identity']:.2f}, to the 7 {paper['corr_constant']:.2f}")
    prediction_grid(run, out / "predictions.png")

    # 2. Corr-to-identity against depth, from a sweep (cells run on local workers).
    rows = depth_sweep(out, depths, {"model": {k: v for k, v in model.items() if k != "depth"}, "train": train})
    for r in rows:
        print(f"depth {r['model.depth']:2}: corr to identity {r['paper.corr_identity']:.2f}")
    plot_depth(rows, out / "depth.png")
    print(f"figures: {out / 'predictions.png'}, {out / 'depth.png'}")
    if args.show:
        import matplotlib.pyplot as plt

        plt.show()


if __name__ == "__main__":
    main()
