"""What the theory predicts, as numbers and arrays (``idcrisis theory fcn1|cnn1|ntk`` without
files). Images are float32 ``[P, C, H, W]`` (the theory works in float64; arrays are rounded)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import numpy.typing as npt

from . import _native
from ._run import PathLike

__all__ = ["fcn1", "cnn1", "ntk", "Fcn1", "Cnn1", "Ntk"]

Images = npt.NDArray[np.float32]
DEFAULT_RHO = (0.0, 0.5, 0.9)
DEFAULT_KERNELS = (1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 35, 41, 55)


def _dd(d: Optional[PathLike]) -> Optional[str]:
    return None if d is None else os.fspath(d)


@dataclass
class Fcn1:
    """Theorem 1 on the one-layer linear FCN trained from ``W0``."""

    #: Numbers: ``weights_max_rel_diff``, ``worst_probe_max_rel_diff``, ``noise_std_predicted``,
    #: ``final_loss``, ``steps``, ``lr``, ... and ``probes`` (per-probe records).
    report: Dict[str, Any]
    #: Probe names.
    probe_names: List[str]
    #: Probes, ``[P, C, H, W]``.
    probes: Images
    #: The theorem's predicted outputs ``W* x``, ``[P, C, H, W]``.
    predicted: Images
    #: The trained network's outputs, ``[P, C, H, W]``.
    trained: Images


def fcn1(
    *,
    train_image: str = "mnist:train:15",
    gray: Optional[int] = None,
    init: str = "torch-default",
    init_scale: float = 1.0,
    seed: int = 0,
    steps: int = 100,
    rho: Sequence[float] = DEFAULT_RHO,
    threads: int = 0,
    data_dir: Optional[PathLike] = None,
) -> Fcn1:
    """Theorem 1: GD on a one-layer linear FCN from ``W0`` converges to
    ``W0 + (x̂ − W0x̂)x̂ᵀ/‖x̂‖²``; predicted and trained outputs on every probe."""
    rep, names, probes, pred, trained = _native.theory_fcn1(
        train_image, gray, init, init_scale, seed, steps, list(rho), threads, _dd(data_dir)
    )
    return Fcn1(json.loads(rep), names, probes, pred, trained)


@dataclass
class Cnn1:
    """The one-layer, one-channel k×k CNN, per kernel size."""

    #: One record per kernel size: ``kernel``, ``rank``, ``nullity``, ``predicted_error``,
    #: ``bound``, ``trained_error``, ``max_rel_diff``, ... (``pandas.DataFrame(rows)``).
    rows: List[Dict[str, Any]]
    #: Probe names.
    probe_names: List[str]
    #: Probes, ``[P, 1, H, W]``.
    probes: Images


def cnn1(
    *,
    kernels: Sequence[int] = DEFAULT_KERNELS,
    train_image: str = "mnist:train:15",
    gray: Optional[int] = None,
    init: str = "torch-default",
    init_scale: float = 1.0,
    seed: int = 0,
    steps: int = 30000,
    rho: Sequence[float] = DEFAULT_RHO,
    threads: int = 0,
    data_dir: Optional[PathLike] = None,
) -> Cnn1:
    """Rank and null space of the patch matrix, predicted and trained error, per odd kernel size."""
    rows, names, probes = _native.theory_cnn1(
        train_image, gray, list(kernels), init, init_scale, seed, steps, list(rho), threads, _dd(data_dir)
    )
    return Cnn1(json.loads(rows), names, probes)


@dataclass
class Ntk:
    """Infinite-width predictions after training on the one image."""

    #: The kernel's config (arch, depth, act, kernel, weight_var, bias_var, height, width).
    config: Dict[str, Any]
    #: Probe names and categories.
    probe_names: List[str]
    probe_categories: List[str]
    #: Probes, ``[P, 1, H, W]``.
    probes: Images
    #: NTK mean prediction ``Θ(x, x̂)Θ(x̂, x̂)⁻¹x̂``, ``[P, 1, H, W]``.
    ntk: Images
    #: NNGP posterior mean ``K(x, x̂)K(x̂, x̂)⁻¹x̂``, ``[P, 1, H, W]``.
    nngp: Images
    #: The training image, ``[1, 1, H, W]``.
    train_image: Images

    @property
    def scores(self) -> List[Dict[str, Any]]:
        """Per probe: Pearson correlation of each prediction with the probe (identity) and the
        training image (constant)."""

        def corr(a: Images, b: Images) -> float:
            return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])

        t = self.train_image[0]
        return [
            {
                "probe": n,
                "category": c,
                "ntk.corr_identity": corr(self.ntk[i], self.probes[i]),
                "ntk.corr_constant": corr(self.ntk[i], t),
                "nngp.corr_identity": corr(self.nngp[i], self.probes[i]),
                "nngp.corr_constant": corr(self.nngp[i], t),
            }
            for i, (n, c) in enumerate(zip(self.probe_names, self.probe_categories))
        ]


def ntk(
    *,
    arch: str = "cnn",
    depth: int = 5,
    act: str = "relu",
    kernel: int = 5,
    weight_var: float = 2.0,
    bias_var: float = 0.0,
    train_image: str = "mnist:train:15",
    gray: Optional[int] = None,
    rho: Sequence[float] = DEFAULT_RHO,
    threads: int = 0,
    data_dir: Optional[PathLike] = None,
) -> Ntk:
    """NTK and NNGP predictions of the depth-``depth`` infinite-width network (NTK
    parameterization, no readout) on every probe."""
    cfg, names, cats, probes, k_ntk, k_nngp = _native.theory_ntk(
        train_image, gray, arch, depth, act, kernel, weight_var, bias_var, list(rho), threads, _dd(data_dir)
    )
    train = _native.load_image(train_image, gray, _dd(data_dir))
    return Ntk(json.loads(cfg), names, cats, probes, k_ntk, k_nngp, train)
