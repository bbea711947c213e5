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
