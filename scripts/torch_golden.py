#!/usr/bin/env python3
"""Independent golden values for idcrisis's engine, computed with PyTorch in float64.

For each case it loads the initial weights idcrisis wrote (init.safetensors of a `--steps 0`
run), trains a few steps with torch.optim on MNIST train #15 with nn.MSELoss, and records the
loss before every step and the trained weights (all of them for the small CNN; per-tensor sums
and a fixed sample for the FCN). The output is tests/fixtures/torch_golden.json.

Regenerate (needs torch and safetensors):
  for c in cnn fcn; do ... see scripts/torch_golden.sh
"""
import gzip, json, os, struct, sys

import torch
import torch.nn as nn
from safetensors.torch import load_file


def seven(data_dir):
    with gzip.open(os.path.join(data_dir, "mnist", "train-images-idx3-ubyte.gz"), "rb") as f:
        f.read(16)
        f.seek(16 + 15 * 784)
        raw = f.read(784)
    return torch.tensor(list(raw), dtype=torch.float64).view(1, 1, 28, 28) / 255.0


def build(case):
    layers = []
    d = case["depth"]
    act = nn.ReLU if case["act"] == "relu" else nn.Identity
    if case["arch"] == "cnn":
        dims = [1] + [case["channels"]] * (d - 1) + [1]
        for i in range(d):
            layers.append(nn.Conv2d(dims[i], dims[i + 1], case["kernel"], padding=case["kernel"] // 2, bias=case["bias"]))
            if i < d - 1:
                layers.append(act())
        mods = [m for m in layers if isinstance(m, nn.Conv2d)]
        return nn.Sequential(*layers).double(), mods
    dims = [784] + [case["width"]] * (d - 1) + [784]
    for i in range(d):
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=case["bias"]))
        if i < d - 1:
            layers.append(act())
    mods = [m for m in layers if isinstance(m, nn.Linear)]
    return nn.Sequential(nn.Flatten(), *layers, nn.Unflatten(1, (1, 28, 28))).double(), mods


def main():
    data_dir, init_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    cases = json.load(open(os.path.join(init_dir, "cases.json")))
    x = seven(data_dir)
    results = []
    for case in cases:
        net, mods = build(case)
        state = load_file(os.path.join(init_dir, case["name"], "init.safetensors"))
        for i, m in enumerate(mods):
            m.weight.data.copy_(state[f"layers.{i}.weight"].double())
            if m.bias is not None:
                m.bias.data.copy_(state[f"layers.{i}.bias"].double())
        if case["optimizer"] == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=case["lr"])
        elif case["optimizer"] == "momentum":
            opt = torch.optim.SGD(net.parameters(), lr=case["lr"], momentum=case["momentum"])
        else:
            opt = torch.optim.SGD(net.parameters(), lr=case["lr"])
        losses = []
        for _ in range(case["steps"]):
            opt.zero_grad()
            loss = nn.MSELoss()(net(x), x)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        losses.append(nn.MSELoss()(net(x), x).item())
        tensors = {}
        for i, m in enumerate(mods):
            for kind, p in (("weight", m.weight), ("bias", m.bias)):
                if p is None:
                    continue
                flat = p.detach().reshape(-1)
                entry = {"sum": flat.sum().item(), "sumsq": (flat * flat).sum().item()}
                if case.get("full", False):
                    entry["values"] = flat.tolist()
                else:
                    idx = list(range(0, flat.numel(), max(1, flat.numel() // 25)))
                    entry["sample_index"] = idx
                    entry["sample"] = [flat[j].item() for j in idx]
                tensors[f"layers.{i}.{kind}"] = entry
        results.append({"case": case, "losses": losses, "tensors": tensors})
    json.dump({"generator": f"scripts/torch_golden.py with torch {torch.__version__}, float64", "results": results},
              open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
