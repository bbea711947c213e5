"""Sweeps and theory from Python."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import idcrisis


def test_plan_run_collect(data_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "sweep"
    spec = {"threads": 1, "rho": [0.5], "depth": [1, 2], "model": {"channels": 4, "kernel": 3}, "train": {"steps": 5}}
    assert idcrisis.sweep.plan(spec, d) == 2
    assert idcrisis.sweep.plan(spec, d) == 2  # the same spec again: a no-op
    with pytest.raises(ValueError, match="different sweep file"):
        idcrisis.sweep.plan({**spec, "depth": [1, 3]}, d)
    assert (d / "slurm.sbatch").is_file()
    assert idcrisis.sweep.status(d)["missing"] == 2
    assert idcrisis.sweep.run(d, jobs=1) == []
    st = idcrisis.sweep.status(d)
    assert st["done"] == 2 and st["not_done"] == []
    rows = idcrisis.sweep.collect(d, as_frame=False)
    assert [r["model.depth"] for r in rows] == [1, 2]
    assert list(rows[0])[:3] == ["index", "id", "model.depth"]
    assert {"paper.corr_identity", "status", "ms_per_step"} <= set(rows[0])
    cell = idcrisis.sweep.load_cell(d, 1)
    assert cell.config["model"]["depth"] == 2
    assert rows[1]["paper.corr_identity"] == pytest.approx(next(c for c in cell.categories if c["category"] == "paper")["corr_identity"])


def test_a_grouped_run_gives_the_same_cells(data_dir: Path, tmp_path: Path) -> None:
    spec = "threads = 1\nrho = [0.5]\nseed = [0, 1, 2]\n[model]\ndepth = 2\nchannels = 4\nkernel = 3\n[train]\nsteps = 20\ntol = 0.0\n"
    alone, grouped = tmp_path / "alone", tmp_path / "grouped"
    for d in (alone, grouped):
        idcrisis.sweep.plan(spec, d)
    assert idcrisis.sweep.run(alone, jobs=1, threads_per_worker=1) == []
    assert idcrisis.sweep.run(grouped, jobs=1, threads_per_worker=2, group=3) == []
    for i in range(3):
        a, g = idcrisis.sweep.load_cell(alone, i), idcrisis.sweep.load_cell(grouped, i)
        assert g.result["group"] == {"size": 3, "threads": 2} and "group" not in a.result
        assert a.result["final_loss"] == g.result["final_loss"] and a.result["steps"] == g.result["steps"]
        assert a.weights.keys() == g.weights.keys()
        for k in a.weights:
            np.testing.assert_array_equal(a.weights[k], g.weights[k])
        np.testing.assert_array_equal(a.predict(a.probes), g.predict(g.probes))


def test_collect_gives_a_dataframe_with_pandas(data_dir: Path, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    d = tmp_path / "s"
    idcrisis.sweep.plan("threads = 1\nrho = [0.5]\nseed = [0, 1]\n[model]\ndepth = 1\nkernel = 3\n[train]\nsteps = 2\n", d)
    idcrisis.sweep.run(d)
    df = idcrisis.sweep.collect(d)
    assert isinstance(df, pd.DataFrame) and list(df.columns[:3]) == ["index", "id", "seed"] and list(df["seed"]) == [0, 1]


def test_fcn1_predicts_the_trained_net(data_dir: Path) -> None:
    t = idcrisis.theory.fcn1(steps=60, rho=[0.5])
    assert t.probes.shape == t.predicted.shape == t.trained.shape == (13, 1, 28, 28)
    assert t.predicted.dtype == np.float32
    assert t.report["weights_max_rel_diff"] < 1e-6
    np.testing.assert_allclose(t.trained, t.predicted, atol=1e-5)


def test_cnn1_rows(data_dir: Path) -> None:
    c = idcrisis.theory.cnn1(kernels=[1, 3], steps=300, rho=[])
    assert [r["kernel"] for r in c.rows] == [1, 3]
    assert c.rows[0]["nullity"] == 0 and c.probes.shape[1:] == (1, 28, 28)


def test_ntk_predictions(data_dir: Path) -> None:
    k = idcrisis.theory.ntk(arch="fcn", depth=3, rho=[0.5])
    assert k.ntk.shape == k.nngp.shape == (13, 1, 28, 28)
    s = k.scores
    assert len(s) == 13 and all(-1.0 <= r["ntk.corr_identity"] <= 1.0 for r in s)
    assert k.config["depth"] == 3
