#!/usr/bin/env python3
"""Golden SSIM values from an independent implementation (scikit-image) on real image pairs.

Writes crates/idcrisis/tests/fixtures/ssim_golden.json, which tests/ssim_golden.rs checks
idcrisis's SSIM against to 1e-6. Settings as idcrisis's metric: Gaussian weights, sigma = 1.5
(11x11 window: truncate 3.5), use_sample_covariance=False, data_range = 1, mean over the positions
whose window lies inside the image.

Usage: IDCRISIS_DATA=../shared/data python3 scripts/ssim_golden.py  (needs numpy, scikit-image)
"""
import gzip, json, os, struct, sys

import numpy as np
import skimage
from skimage.metrics import structural_similarity


def images(path):
    with gzip.open(path, "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 0x803
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(n, h, w)


def f32(u8):
    # idcrisis holds images as float32 u8/255; compare on exactly those values.
    return (u8.astype(np.float32) / np.float32(255.0)).astype(np.float64)


def noise(img):
    # The deterministic perturbation tests/ssim_golden.rs applies: pixel i gets
    # ((i*7919) % 101)/101 * 0.2 - 0.1 added, then clamped to [0, 1], in float32.
    i = np.arange(img.size)
    d = (((i * 7919) % 101).astype(np.float32) / np.float32(101.0)) * np.float32(0.2) - np.float32(0.1)
    return np.clip(img.astype(np.float32).ravel() + d, 0, 1).astype(np.float64).reshape(img.shape)


def main():
    data = os.environ.get("IDCRISIS_DATA") or sys.exit("set IDCRISIS_DATA")
    mnist = images(os.path.join(data, "mnist", "t10k-images-idx3-ubyte.gz"))
    fashion = images(os.path.join(data, "fashion-mnist", "t10k-images-idx3-ubyte.gz"))
    m = lambda i: f32(mnist[i])
    fa = lambda i: f32(fashion[i])
    blend = (np.float32(0.5) * m(3).astype(np.float32) + np.float32(0.5) * m(18).astype(np.float32)).astype(np.float64)
    pairs = [
        ("mnist:test:1", "mnist:test:4", m(1), m(4)),
        ("mnist:test:3", "blend:3:18", m(3), blend),
        ("fashion-mnist:test:0", "fashion-mnist:test:1", fa(0), fa(1)),
        ("mnist:test:1", "noise:mnist:test:1", m(1), noise(m(1))),
        ("fashion-mnist:test:0", "mnist:test:4", fa(0), m(4)),
        ("mnist:test:7", "mnist:test:7", m(7), m(7)),
    ]
    out = {
        "generator": f"scikit-image {skimage.__version__} structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)",
        "pairs": [
            {"a": a, "b": b, "ssim": float(structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0))}
            for a, b, x, y in pairs
        ],
    }
    path = os.path.join(os.path.dirname(__file__), "..", "crates", "idcrisis", "tests", "fixtures", "ssim_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
