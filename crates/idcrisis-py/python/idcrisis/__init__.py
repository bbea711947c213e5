"""idcrisis: memorization versus generalization on one training image.

Zhang, Bengio, Hardt, Mozer & Singer, *Identity Crisis: Memorization and Generalization under
Extreme Overparameterization* (ICLR 2020). A network is trained on one image to reproduce its
input; whether it then behaves like the identity or like the constant map on unseen probes shows
its inductive bias. This package is the idcrisis Rust engine, in process::

    import idcrisis
    run = idcrisis.train(depth=5, channels=128, steps=500)
    run.predictions          # float32 [P, 1, 28, 28]
    pandas.DataFrame(run.scores)

Images are float32 numpy arrays shaped ``[N, C, H, W]`` with pixels in [0, 1].
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import numpy.typing as npt

from . import _native, sweep, theory
from ._run import Run, load_run, train
from .errors import ConfigError, DataError, DivergedError, IdcrisisError, InternalError, MissingDataError

__version__: str = _native.version()

__all__ = [
    "train",
    "load_run",
    "Run",
    "load_image",
    "load_dataset",
    "data_dir",
    "sweep",
    "theory",
    "IdcrisisError",
    "ConfigError",
    "MissingDataError",
    "DataError",
    "DivergedError",
    "InternalError",
]


def load_image(spec: str = "mnist:train:15", *, gray: Optional[int] = None, data_dir: Optional[str] = None) -> npt.NDArray[np.float32]:
    """One image, as ``train_image`` names it (``DATASET:SPLIT:INDEX`` or a PNG/JPEG path):
    float32 ``[1, C, H, W]``; ``gray`` takes the luma and the central N×N crop."""
    return _native.load_image(spec, gray, data_dir)


def load_dataset(
    spec: str = "mnist:test", limit: int = 0, *, gray: Optional[int] = None, data_dir: Optional[str] = None
) -> npt.NDArray[np.float32]:
    """The first ``limit`` (0: all) images of a data set split (``mnist:test``,
    ``fashion-mnist:train``, ``cifar-10:test``): float32 ``[N, C, H, W]``."""
    return _native.load_dataset(spec, limit, gray, data_dir)


def data_dir(path: Optional[str] = None) -> str:
    """The data directory used when none is given: ``$IDCRISIS_DATA``, else the user cache dir +
    ``/idcrisis``. Get the data with ``idcrisis data fetch mnist`` (and ``fashion-mnist``)."""
    return os.fspath(_native.resolve_data_dir(path))
