"""The public API: train, Run, load_run, save."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

import idcrisis
from conftest import small_config


def test_run_exposes_config_losses_probes_and_scores(small_run: idcrisis.Run) -> None:
    r = small_run
    assert r.path is None
    assert r.status in ("converged", "max-steps")
    assert r.config["model"]["depth"] == 2 and r.config["shape"] == [1, 28, 28]
    assert r.shape == (1, 28, 28)
    assert r.losses.dtype == np.float64 and r.losses.shape == (r.steps + 1,)
    assert r.losses[0] == pytest.approx(r.result["initial_loss"])
    assert r.losses[-1] == pytest.approx(r.final_loss)
    names, cats = r.probe_names, r.probe_categories
    assert len(names) == len(cats) == 13  # 12 fixed probes + one random-ρ probe
    assert cats[0] == "blend" and cats[1] == "mnist" and cats[-1] == "random-rho"
    for a in (r.probes, r.predictions):
        assert a.dtype == np.float32 and a.shape == (13, 1, 28, 28)
    assert r.train_image.shape == (1, 1, 28, 28)
    assert r.train_image.min() >= 0 and r.train_image.max() <= 1
    scores = r.scores
    assert [s["probe"] for s in scores] == names
    assert {"probe", "category", "corr_identity", "corr_constant", "ssim_identity", "mse_constant", "outcome"} <= set(scores[0])
    assert any(c["category"] == "paper" for c in r.categories)


def test_scores_make_a_dataframe(small_run: idcrisis.Run) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(small_run.scores)
    assert len(df) == 13 and df["corr_identity"].dtype == np.float64


def test_predict_matches_the_runs_own_evaluation(small_run: idcrisis.Run) -> None:
    y = small_run.predict(small_run.probes)
    assert y.dtype == np.float32 and y.shape == (13, 1, 28, 28)
    np.testing.assert_allclose(y, small_run.predictions, rtol=0, atol=1e-6)
    # Correlations recomputed from the arrays agree with result.json.
    s = small_run.scores[3]
    c = np.corrcoef(y[3].ravel(), small_run.probes[3].ravel())[0, 1]
    assert c == pytest.approx(s["corr_identity"], abs=1e-5)
    # Any batch size, and arrays that are not C-contiguous.
    np.testing.assert_allclose(small_run.predict(small_run.probes, batch=1), y, atol=1e-6)
    x = np.asfortranarray(small_run.probes)
    np.testing.assert_allclose(small_run.predict(x), y, atol=1e-6)
    assert small_run.predict(np.zeros((0, 1, 28, 28), np.float32)).shape == (0, 1, 28, 28)


def test_hidden_gives_every_layer(small_run: idcrisis.Run) -> None:
    x = small_run.probes[:3]
    hs = small_run.hidden(x)
    assert [h.shape for h in hs] == [(3, 4, 28, 28), (3, 1, 28, 28)]
    assert all(h.dtype == np.float32 for h in hs)
    assert (hs[0] >= 0).all(), "hidden layers are after the ReLU"
    np.testing.assert_allclose(hs[-1], small_run.predict(x), atol=1e-6)


def test_weights_are_in_pytorch_layout(small_run: idcrisis.Run) -> None:
    w = small_run.weights
    assert {k: v.shape for k, v in w.items()} == {
        "layers.0.weight": (4, 1, 3, 3),
        "layers.0.bias": (4,),
        "layers.1.weight": (1, 4, 3, 3),
        "layers.1.bias": (1,),
    }
    assert all(v.dtype == np.float32 for v in w.values())
    assert not np.array_equal(w["layers.0.weight"], small_run.init_weights["layers.0.weight"])


def test_save_writes_the_run_directory_and_load_run_reads_it(small_run: idcrisis.Run, tmp_path: Path) -> None:
    d = small_run.save(tmp_path / "run")
    assert sorted(p.name for p in d.iterdir()) == sorted(
        ["config.toml", "init.safetensors", "weights.safetensors", "loss.csv", "result.json", "predictions.png"]
    )
    assert small_run.file("predictions.png")[:8] == b"\x89PNG\r\n\x1a\n"
    again = idcrisis.load_run(d)
    assert again.path == d
    assert again.config == small_run.config
    np.testing.assert_array_equal(again.predictions, small_run.predictions)
    np.testing.assert_array_equal(again.losses, small_run.losses)
    for k, v in small_run.weights.items():
        np.testing.assert_array_equal(again.weights[k], v)
    with pytest.raises(ValueError, match="already holds a finished run"):
        small_run.save(d)


def test_train_into_a_directory_keeps_it(data_dir: Path, tmp_path: Path) -> None:
    r = idcrisis.train(small_config(), out=tmp_path / "r", progress=False)
    assert r.path == tmp_path / "r" and (tmp_path / "r" / "result.json").is_file()
    with pytest.raises(idcrisis.ConfigError, match="already holds a finished run"):
        idcrisis.train(small_config(), out=tmp_path / "r", progress=False)


def test_keywords_dicts_and_flat_keys_mean_the_same(data_dir: Path) -> None:
    a = idcrisis.train(small_config(), progress=False)
    b = idcrisis.train(small_config(depth=2, steps=12), progress=False)
    c = idcrisis.train(small_config(), model={"kernel": 3}, train={"lr": 1e-3}, progress=False)
    for other in (b, c):
        assert other.config == a.config
        np.testing.assert_array_equal(other.losses, a.losses)
    d = idcrisis.train(small_config(), depth=1, progress=False)
    assert d.config["model"]["depth"] == 1 and d.config["model"]["channels"] == 4
    # The config of a run reruns it.
    e = idcrisis.train(a.config, progress=False)
    np.testing.assert_array_equal(e.losses, a.losses)


@pytest.mark.parametrize("bar", [False, True])
def test_on_step_is_called_every_n_steps(data_dir: Path, bar: bool) -> None:
    if bar:
        pytest.importorskip("tqdm")
    seen: List[Tuple[int, float]] = []
    r = idcrisis.train(small_config(), on_step=lambda s, l: seen.append((s, l)), every=5, progress=bar)
    assert [s for s, _ in seen] == [0, 5, 10]
    assert [l for _, l in seen] == [r.losses[s] for s, _ in seen]


def test_an_exception_in_on_step_stops_training_and_is_raised(data_dir: Path, tmp_path: Path) -> None:
    def boom(step: int, loss: float) -> None:
        if step == 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        idcrisis.train(small_config(), out=tmp_path / "x", on_step=boom, every=1, progress=False)
    assert not (tmp_path / "x").exists()


def test_progress_bar_with_tqdm(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    idcrisis.train(small_config(), progress=True)
    assert "step" in capsys.readouterr().err


def test_f64_runs_give_float64_weights_and_float32_images(data_dir: Path) -> None:
    r = idcrisis.train(small_config(dtype="f64", steps=3), progress=False)
    assert r.weights["layers.0.weight"].dtype == np.float64
    assert r.predict(r.probes).dtype == np.float32


def test_fcn_hidden_layers_are_flat(data_dir: Path) -> None:
    r = idcrisis.train(small_config(model={"arch": "fcn", "depth": 3, "width": 16}, steps=3), progress=False)
    hs = r.hidden(r.probes[:2])
    assert [h.shape for h in hs] == [(2, 16), (2, 16), (2, 1, 28, 28)]
    assert r.weights["layers.0.weight"].shape == (16, 784)


def test_training_releases_the_gil(data_dir: Path) -> None:
    import threading
    import time

    box: List[idcrisis.Run] = []
    t = threading.Thread(
        target=lambda: box.append(idcrisis.train(small_config(model={"channels": 32, "depth": 3}, train={"steps": 1500, "tol": 0.0, "lr": 1e-3}), progress=False))
    )
    start = time.perf_counter()
    t.start()
    ticks = 0
    while t.is_alive():
        ticks += 1
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    assert box and elapsed > 0.3, f"training took only {elapsed:.2f} s; too short to tell"
    # With the GIL held the whole time, this thread could not have run in between.
    assert ticks > 0.3 * elapsed / 0.001 * 0.2, f"{ticks} ticks in {elapsed:.2f} s"


def test_load_helpers(data_dir: Path) -> None:
    x = idcrisis.load_image()
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    t = idcrisis.load_dataset("mnist:test", 10)
    assert t.shape == (10, 1, 28, 28)
    assert idcrisis.load_dataset("fashion-mnist:test").shape == (10000, 1, 28, 28)  # 0: all
    assert idcrisis.__version__
