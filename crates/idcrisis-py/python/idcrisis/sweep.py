"""Sweeps from Python: plan a grid of runs, run it on local workers, collect the results.

A sweep spec has the keys of ``config.toml`` where any value may be a list (a grid axis), plus an
optional ``zip`` table of equal-length lists that vary together; it is the same file as
``idcrisis sweep plan`` reads, here given as a dict (or as TOML text / a file path). The sweep
directory is the CLI's: ``idcrisis sweep status|collect|run`` work on it too, and so does Slurm
(``DIR/slurm.sbatch``).

    idcrisis.sweep.plan({"model": {"depth": [1, 3, 5]}, "train": {"steps": 500}}, "sweeps/depth")
    idcrisis.sweep.run("sweeps/depth", jobs=2)
    df = idcrisis.sweep.collect("sweeps/depth")   # a DataFrame with pandas, else records
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from . import _native
from ._run import PathLike, Run, load_run, merge_config

__all__ = ["plan", "run", "status", "collect", "load_cell", "Failure"]

#: ``(index, message)`` of a cell that failed.
Failure = Tuple[int, str]


def plan(
    spec: Union[Mapping[str, Any], str, "os.PathLike[str]"],
    dir: PathLike,
    *,
    force: bool = False,
    data_dir: Optional[PathLike] = None,
) -> int:
    """Plan the sweep ``spec`` (a dict, TOML text, or a path to a ``.toml`` file) into ``dir``:
    ``sweep.toml``, ``plan.jsonl`` and ``slurm.sbatch``. Returns the number of cells.

    Re-planning the same spec is a no-op; a different one is refused (:class:`ConfigError`)
    unless ``force`` (finished cells are never deleted). Top-level keys of one section may be
    given on their own, as in :func:`idcrisis.train` (``{"depth": [1, 3]}``).
    """
    if isinstance(spec, Mapping):
        text = _native.config_toml(merge_config(spec, {}))
    elif isinstance(spec, str) and "\n" in spec or isinstance(spec, str) and "=" in spec:
        text = str(spec)
    else:
        text = Path(os.fspath(spec)).read_text()
    exe = shutil.which("idcrisis")
    n, _written = _native.sweep_plan(
        text, os.fspath(dir), force, exe, None if data_dir is None else os.fspath(data_dir)
    )
    return n


def run(
    dir: PathLike,
    *,
    jobs: Optional[int] = None,
    threads_per_worker: Optional[int] = None,
    retry_failed: bool = False,
    data_dir: Optional[PathLike] = None,
    group: Optional[int] = None,
) -> List[Failure]:
    """Run every cell of the sweep in ``dir`` that is not done, on ``jobs`` local workers with
    ``threads_per_worker`` compute threads each (default: one worker per core, one thread
    each), with the GIL released. With ``group``, up to that many cells of one architecture
    train together, each net on one thread (bit-identical to running them one by one). Finished cells are
    kept if this is interrupted; failed cells run again only with ``retry_failed``. Returns the
    cells that failed, ``[(index, message)]``."""
    _todo, _done, failed = _native.sweep_run(
        os.fspath(dir),
        jobs,
        threads_per_worker,
        retry_failed,
        None if data_dir is None else os.fspath(data_dir),
        group,
    )
    return list(failed)


def status(dir: PathLike) -> Dict[str, Any]:
    """Counts of the sweep's cells: ``total``, ``done``, ``failed``, ``missing``, and the
    indices ``failed_indices`` and ``not_done``."""
    out: Dict[str, Any] = json.loads(_native.sweep_status(os.fspath(dir)))
    return out


def collect(dir: PathLike, *, as_frame: Optional[bool] = None) -> Any:
    """One record per done cell, as ``idcrisis sweep collect``: ``index``, ``id``, the keys that
    vary (dotted, e.g. ``model.depth``), then every metric (``status``, ``steps``,
    ``final_loss``, ``ms_per_step``, ``paper.corr_identity``, ``mnist.ssim_constant``, ...).

    Returns a ``pandas.DataFrame`` (columns in that order) when pandas is installed, else a list
    of dicts; ``as_frame=False`` always gives the list, ``as_frame=True`` requires pandas."""
    cols, rows_json, _skipped = _native.sweep_collect(os.fspath(dir))
    cols = list(dict.fromkeys(cols))  # `seed` is both a varying key and a metric
    rows: List[Dict[str, Any]] = json.loads(rows_json)
    records = [{c: r.get(c) for c in cols} for r in rows]
    if as_frame is False:
        return records
    try:
        pd: Any = importlib.import_module("pandas")  # optional; untyped without pandas-stubs
    except ImportError:
        if as_frame:
            raise
        return records
    return pd.DataFrame(records, columns=cols)


def load_cell(dir: PathLike, index: int, *, data_dir: Optional[PathLike] = None) -> Run:
    """The run of cell ``index`` of the sweep in ``dir`` (it must be done)."""
    return load_run(_native.sweep_cell_dir(os.fspath(dir), index), data_dir=data_dir)
