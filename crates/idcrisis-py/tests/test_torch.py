"""PyTorch interop: a torch.nn.Sequential built from run.weights computes run.predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import idcrisis
from conftest import small_config


def sequential(run: idcrisis.Run) -> Any:
    """The net of ``run`` in PyTorch, as shared/reference/torch_identity.py builds it."""
    import torch
    from torch import nn

    m = run.config["model"]
    w = run.weights
    act = nn.ReLU if m["act"] == "relu" else nn.Identity
    layers: list[Any] = []
    for i in range(m["depth"]):
        weight = torch.from_numpy(w[f"layers.{i}.weight"])
        if m["arch"] == "cnn":
            layer = nn.Conv2d(weight.shape[1], weight.shape[0], m["kernel"], padding=m["kernel"] // 2, bias=m["bias"])
        else:
            layer = nn.Linear(weight.shape[1], weight.shape[0], bias=m["bias"])
        with torch.no_grad():
            layer.weight.copy_(weight)
            if m["bias"]:
                layer.bias.copy_(torch.from_numpy(w[f"layers.{i}.bias"]))
        layers.append(layer)
        if i + 1 < m["depth"]:
            layers.append(act())
    if m["arch"] == "fcn":
        return nn.Sequential(nn.Flatten(), *layers, nn.Unflatten(1, tuple(run.shape)))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("arch", ["cnn", "fcn"])
def test_torch_sequential_from_weights_matches_predict(data_dir: Path, arch: str) -> None:
    torch = pytest.importorskip("torch")
    model = {"arch": arch, "depth": 3, "channels": 8, "kernel": 5, "width": 64}
    run = idcrisis.train(small_config(model=model, steps=30), progress=False)
    x = np.concatenate([run.probes, idcrisis.load_dataset("mnist:test", 20)])
    with torch.no_grad():
        ref = sequential(run)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run.predict(x), ref, rtol=0, atol=1e-5)


def numpy_forward(run: idcrisis.Run, x: np.ndarray) -> np.ndarray:
    """The net of ``run`` from ``run.weights`` in plain numpy, read as PyTorch reads them:
    cross-correlation with zero "same" padding, ``weight[c_out, c_in, ky, kx]``, or
    ``y = x @ W.T + b`` with ``W[out, in]`` on the flattened image."""
    m = run.config["model"]
    w = {k: v.astype(np.float64) for k, v in run.weights.items()}
    h = x.astype(np.float64)
    n = len(x)
    for i in range(m["depth"]):
        wt = w[f"layers.{i}.weight"]
        if m["arch"] == "cnn":
            k = wt.shape[-1]
            p = k // 2
            hp = np.pad(h, ((0, 0), (0, 0), (p, p), (p, p)))
            H, W = h.shape[2:]
            out = np.zeros((n, wt.shape[0], H, W))
            for dy in range(k):
                for dx in range(k):
                    out += np.einsum("nchw,oc->nohw", hp[:, :, dy : dy + H, dx : dx + W], wt[:, :, dy, dx])
            if m["bias"]:
                out += w[f"layers.{i}.bias"][None, :, None, None]
        else:
            out = h.reshape(n, -1) @ wt.T
            if m["bias"]:
                out += w[f"layers.{i}.bias"]
        h = np.maximum(out, 0) if i + 1 < m["depth"] and m["act"] == "relu" else out
    return h.reshape(x.shape)


@pytest.mark.parametrize("arch", ["cnn", "fcn"])
def test_weights_in_pytorch_layout_compute_predict(data_dir: Path, arch: str) -> None:
    """Without torch: the same layout contract, checked against numpy."""
    model = {"arch": arch, "depth": 3, "channels": 8, "kernel": 5, "width": 64}
    run = idcrisis.train(small_config(model=model, steps=30), progress=False)
    x = np.concatenate([run.probes[:4], idcrisis.load_dataset("mnist:test", 4)])
    np.testing.assert_allclose(run.predict(x), numpy_forward(run, x), rtol=0, atol=1e-5)
