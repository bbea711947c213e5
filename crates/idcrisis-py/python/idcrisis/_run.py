"""Training runs: :func:`train`, :func:`load_run` and :class:`Run`."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _native
from .errors import ConfigError, DivergedError

PathLike = Union[str, "os.PathLike[str]"]
#: A float32 array of images, ``[N, C, H, W]``, pixels in [0, 1].
Images = npt.NDArray[np.float32]
#: ``on_step(step, loss)``: called every ``every`` steps with the loss before that update.
StepCallback = Callable[[int, float], object]

__all__ = ["Run", "train", "load_run", "merge_config"]


def _placed(source: Mapping[str, Any]) -> Dict[str, Any]:
    """``source`` with every top-level key that belongs to exactly one section of
    ``config.toml`` moved into it (``depth`` → ``model.depth``); which keys a section holds is
    read off the library. Other keys stay, for the library to accept or name as unknown."""
    sections = _native.section_keys()
    out: Dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in source.items()}
    for k in [k for k in source if k not in sections]:
        owners = [s for s, keys in sections.items() if k in keys]
        if len(owners) != 1:
            continue
        sec = out.setdefault(owners[0], {})
        if not isinstance(sec, dict):
            raise ConfigError(f"{owners[0]} must be a table of settings, got {sec!r}")
        if k in sec:
            raise ConfigError(f"{k} is given twice: as {k} and as {owners[0]}.{k}")
        sec[k] = out.pop(k)
    return out


def merge_config(config: Optional[Mapping[str, Any]], keys: Mapping[str, Any]) -> Dict[str, Any]:
    """``config`` with ``keys`` laid over it, as nested sections: ``depth=3`` or
    ``model={"depth": 3}`` override ``config["model"]["depth"]`` and keep the other keys."""
    out: Dict[str, Any] = {}
    for source in (config or {}, keys):
        for k, v in _placed(source).items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = {**out[k], **v}
            else:
                out[k] = v
    return out


def _want_bar(progress: Optional[bool]) -> bool:
    if progress is not None:
        return progress
    if importlib.util.find_spec("tqdm") is None:
        return False
    ipython: Any = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if type(shell).__name__ == "ZMQInteractiveShell":  # a Jupyter notebook
        return True
    return sys.stderr is not None and sys.stderr.isatty()


def train(
    config: Optional[Mapping[str, Any]] = None,
    /,
    *,
    out: Optional[PathLike] = None,
    data_dir: Optional[PathLike] = None,
    on_step: Optional[StepCallback] = None,
    every: int = 10,
    progress: Optional[bool] = None,
    **keys: Any,
) -> "Run":
    """Train a network on one image, probe it, and return the :class:`Run`.

    The configuration has the keys of ``config.toml``, as a dict (``config``) and/or keyword
    arguments, which override it: top-level keys (``seed``, ``threads``, ``dtype``,
    ``train_image``, ``rho``, ...), the sections ``model``, ``init`` and ``train`` as dicts, and
    any key of a section also on its own (``depth=20`` is ``model={"depth": 20}``). The library
    checks every key and value: an unknown key or a bad value raises :class:`ConfigError` (a
    ``ValueError``) with its message. For example::

        run = idcrisis.train(depth=20, channels=128, steps=2000, threads=2)
        run = idcrisis.train({"model": {"arch": "fcn", "depth": 3}, "train": {"lr": 1e-3}})

    Args:
        out: keep the run directory there (the same files as ``idcrisis train --out``); by
            default it is kept in memory only (see :meth:`Run.save`).
        data_dir: the data directory (else ``$IDCRISIS_DATA``, else the user cache dir).
        on_step: called as ``on_step(step, loss)`` every ``every`` steps (loss: the training MSE
            before that update). An exception it raises stops training and is re-raised.
        progress: show a tqdm bar (default: when tqdm is installed and stderr is a terminal or
            the code runs in a notebook).

    Training runs with the GIL released. Ctrl-C stops it within a few steps, removes what the
    run had written, and raises ``KeyboardInterrupt``. Results are bit-identical to
    ``idcrisis train`` for the same config and thread count.

    Raises:
        ConfigError: a bad key or value. MissingDataError: the data set is not on disk.
        DivergedError: the loss became NaN or infinite (``.run`` holds the run).
    """
    cfg = merge_config(config, keys)
    every = max(1, int(every))
    bar: Any = None
    if _want_bar(progress):
        tqdm: Any = importlib.import_module("tqdm.auto").tqdm  # optional; untyped
        steps = cfg.get("train", {}).get("steps", 10000)
        bar = tqdm(total=int(steps), unit="step", leave=False, mininterval=0.1)

    def tick(step: int, loss: float) -> None:
        if on_step is not None and step % every == 0:
            on_step(step, loss)
        if bar is not None:
            bar.update(step - bar.n)
            bar.set_postfix_str(f"loss {loss:.3e}", refresh=False)

    try:
        native = _native.train(
            cfg,
            None if out is None else os.fspath(out),
            None if data_dir is None else os.fspath(data_dir),
            tick if (on_step is not None or bar is not None) else None,
            # The bar wants every step; on_step alone only every `every`.
            1 if bar is not None else every,
        )
    finally:
        if bar is not None:
            bar.close()
    run = Run(native)
    if run.status == "diverged":
        raise DivergedError(f"training diverged after {run.steps} steps (loss NaN or infinite)", run)
    return run


def load_run(path: PathLike, *, data_dir: Optional[PathLike] = None, threads: Optional[int] = None) -> "Run":
    """Open a run directory written by ``idcrisis train``, a sweep cell, or :meth:`Run.save`.

    ``threads`` sets the compute threads for :meth:`Run.predict` and :meth:`Run.hidden`
    (default: the run's own setting; 0 = all cores). Raises ``FileNotFoundError`` for a missing
    path and :class:`ConfigError` for a directory that is not a finished run.
    """
    return Run(
        _native.load_run(os.fspath(path), None if data_dir is None else os.fspath(data_dir), threads)
    )


class Run:
    """A finished training run: its config, losses, probes, scores, weights and the trained net.

    Images are float32 arrays shaped ``[N, C, H, W]`` (pixels in [0, 1]); :attr:`shape` is
    ``(C, H, W)``.
    """

    def __init__(self, native: _native.Run) -> None:
        self._native = native
        self._config: Optional[Dict[str, Any]] = None
        self._result: Optional[Dict[str, Any]] = None

    def __repr__(self) -> str:
        r = self.result
        where = f" at {self.path}" if self.path is not None else ""
        return f"<idcrisis.Run {r['status']} after {r['steps']} steps, final loss {r['final_loss']}{where}>"

    @property
    def path(self) -> Optional[Path]:
        """The run directory, or None when the run is kept in memory only."""
        p = self._native.path
        return None if p is None else Path(p)

    @property
    def config(self) -> Dict[str, Any]:
        """The config as run (``config.toml``), as a nested dict; ``idcrisis.train(run.config)``
        reruns it."""
        if self._config is None:
            self._config = json.loads(self._native.config_json())
        copy: Dict[str, Any] = json.loads(json.dumps(self._config))  # a copy the caller may change
        return copy

    @property
    def result(self) -> Dict[str, Any]:
        """``result.json``: status, steps, losses, timings, versions and the evaluation."""
        if self._result is None:
            parsed: Dict[str, Any] = json.loads(self._native.result_json())
            self._result = parsed
        return self._result

    @property
    def status(self) -> str:
        """``converged``, ``max-steps`` or ``diverged``."""
        return str(self.result["status"])

    @property
    def steps(self) -> int:
        """Updates made."""
        return int(self.result["steps"])

    @property
    def final_loss(self) -> Optional[float]:
        """Training MSE at the final weights (None when diverged)."""
        v = self.result["final_loss"]
        return None if v is None else float(v)

    @property
    def ms_per_step(self) -> float:
        """Mean wall milliseconds per update."""
        return float(self.result["ms_per_step"])

    @property
    def losses(self) -> npt.NDArray[np.float64]:
        """The loss before each update, then at the final weights: float64 ``[steps + 1]``."""
        return self._native.losses()

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(C, H, W)`` of the model's images."""
        return self._native.shape_chw()

    @property
    def train_image(self) -> Images:
        """The training image, ``[1, C, H, W]``."""
        return self._native.train_image()

    @property
    def probe_names(self) -> List[str]:
        """Probe names, in probe order."""
        return self._native.probe_names()

    @property
    def probe_categories(self) -> List[str]:
        """Probe categories (``mnist``, ``fashion``, ``synthetic``, ``random``, ...), in order."""
        return self._native.probe_categories()

    @property
    def probes(self) -> Images:
        """The probe inputs, ``[P, C, H, W]``."""
        return self._native.probe_inputs()

    @property
    def predictions(self) -> Images:
        """The trained net's outputs on the probes, ``[P, C, H, W]``, as the run's evaluation
        computed them."""
        return self._native.outputs()[1:]

    @property
    def scores(self) -> List[Dict[str, Any]]:
        """One record per probe: ``probe``, ``category``, ``outcome``, correlation, MSE and SSIM
        to the identity (the probe) and to the constant (the training image), and on a canvas
        the same over the image window (``window.corr_identity``, ...). ``pandas.DataFrame(run.scores)``
        makes a table of them. Empty for a diverged run."""
        ev = self.result.get("evaluation") or {}
        return [_flatten(p) for p in ev.get("probes", [])]

    @property
    def categories(self) -> List[Dict[str, Any]]:
        """One record per probe category (and ``paper``, ``all``): the mean scores and counts."""
        ev = self.result.get("evaluation") or {}
        return [{"category": k, **_flatten(v)} for k, v in (ev.get("categories") or {}).items()]

    @property
    def weights(self) -> Dict[str, npt.NDArray[Any]]:
        """Trained weights, name → array in PyTorch's layout: ``layers.{i}.weight``
        (``[C_out, C_in, k, k]`` or ``[out, in]``) and ``layers.{i}.bias``; float32 (float64 for
        an ``f64`` run). ``torch.nn.Conv2d(..., padding=k // 2)`` / ``Linear`` layers with ReLU
        between them load them as they are."""
        return self._native.weights(False)

    @property
    def init_weights(self) -> Dict[str, npt.NDArray[Any]]:
        """The initial weights, in the layout of :attr:`weights`."""
        return self._native.weights(True)

    def predict(self, x: Images, batch: int = 100) -> Images:
        """The net's outputs for ``x``, a float32 array ``[N, C, H, W]`` of this run's
        :attr:`shape`, computed in batches of at most ``batch`` (split over the threads for
        convolutional nets; the same bits either way) with the GIL released. Raises
        ``TypeError`` / ``ValueError`` naming the expected dtype and shape."""
        return self._native.predict(x, batch)

    def hidden(self, x: Images) -> List[npt.NDArray[np.float32]]:
        """Every weight layer's output for ``x`` (float32 ``[N, C, H, W]``), after its
        activation: CNN layers ``[N, channels, H, W]``, FCN hidden layers ``[N, width]``; the
        last entry is the net's output. All layers are held at once (``N`` × depth ×
        channels × H × W floats)."""
        return list(self._native.hidden(x))

    def save(self, path: PathLike) -> Path:
        """Write the run directory (the files ``idcrisis train`` writes, each to a temporary name
        then renamed) into ``path``; refuses one that holds a finished run. Returns ``path``."""
        self._native.save(os.fspath(path))
        return Path(path)

    def file(self, name: str) -> bytes:
        """The bytes of a file of the run directory, e.g. ``predictions.png``."""
        return self._native.file(name)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
