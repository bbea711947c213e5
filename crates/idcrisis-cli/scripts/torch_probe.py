#!/usr/bin/env python3
"""PyTorch forward-pass (probing) throughput, for `idcrisis bench --probe --compare-torch`.

Builds the same networks as shared/reference/torch_identity.py (CNN: conv 1->C, (L-2) x C->C,
C->1, zero 'same' padding; FCN: 784->W, ..., W->784; ReLU between layers), runs them over the
first --images MNIST test images in batches of --batch under torch.inference_mode(), and prints
one JSON line: {"images_per_s": best of --repeats passes}.

Needs: pip install torch
"""
import argparse, gzip, json, os, struct, sys, time

import torch
import torch.nn as nn


def mnist_test(data_dir, count):
    with gzip.open(os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz"), "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051 or count > n:
            sys.exit(f"bad IDX file or count {count} (n={n})")
        raw = f.read(count * rows * cols)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().view(count, 1, rows, cols) / 255.0


def build(a):
    layers = []
    if a.arch == "cnn":
        dims = [1] + [a.channels] * (a.depth - 1) + [1]
        for i in range(a.depth):
            layers.append(nn.Conv2d(dims[i], dims[i + 1], a.kernel, padding=a.kernel // 2))
            if i < a.depth - 1:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)
    dims = [784] + [a.width] * (a.depth - 1) + [784]
    for i in range(a.depth):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < a.depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(nn.Flatten(), *layers, nn.Unflatten(1, (1, 28, 28)))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", choices=["cnn", "fcn"], default="cnn")
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=os.environ.get("IDCRISIS_DATA", "."))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = build(a).eval()
    x = mnist_test(a.data_dir, a.images)
    best = float("inf")
    with torch.inference_mode():
        net(x[: a.batch])  # warm-up
        for _ in range(a.repeats):
            t = time.perf_counter()
            for s in range(0, a.images, a.batch):
                net(x[s : s + a.batch])
            best = min(best, time.perf_counter() - t)
    print(json.dumps({"images_per_s": a.images / best, "images": a.images, "batch": a.batch, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
