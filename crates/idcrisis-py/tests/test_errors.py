"""Bad input: clear Python exceptions with the library's messages, never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List

import numpy as np
import pytest

import idcrisis
from idcrisis import _native
from conftest import small_config


def test_unknown_config_key_is_a_value_error_naming_it(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown field `dpeth`") as e:
        idcrisis.train(small_config(), dpeth=3, progress=False)
    assert isinstance(e.value, idcrisis.ConfigError)
    with pytest.raises(ValueError, match="unknown field `widht`"):
        idcrisis.train(small_config(), model={"widht": 3}, progress=False)


@pytest.mark.parametrize(
    "over, message",
    [
        ({"kernel": 4}, "--kernel"),
        ({"lr": -1.0}, "--lr"),
        ({"rho": [2.0]}, "--rho"),
        ({"threads": 5000}, "--threads"),
        ({"arch": "mlp"}, "unknown variant `mlp`"),
        ({"steps": "many"}, "invalid type"),
        ({"depth": 2, "model": {"depth": 3}}, "depth is given twice"),
    ],
)
def test_bad_values_are_value_errors_with_the_librarys_message(data_dir: Path, over: Any, message: str) -> None:
    cfg = small_config()
    with pytest.raises(ValueError, match=message):
        idcrisis.train(cfg, progress=False, **over)


def test_negative_thread_count(data_dir: Path, small_run: idcrisis.Run, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="threads"):
        idcrisis.train(small_config(), threads=-1, progress=False)
    d = small_run.save(tmp_path / "r")
    with pytest.raises(ValueError, match="-2 must be 0"):
        idcrisis.load_run(d, threads=-2)


def test_predict_names_expected_and_actual_dtype_and_shape(small_run: idcrisis.Run) -> None:
    with pytest.raises(TypeError, match=r"expected a float32 array shaped \[N, 1, 28, 28\], got dtype float64"):
        small_run.predict(np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match=r"expected an array shaped \[N, 1, 28, 28\], got shape \[2, 28, 28\]"):
        small_run.predict(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"got shape \[2, 3, 28, 28\]"):
        small_run.hidden(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(TypeError, match="got a list"):
        small_run.predict([[0.0]])  # type: ignore[arg-type]


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a run directory: it has no config.toml"):
        idcrisis.load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        idcrisis.load_run(tmp_path / "nothing")
    (tmp_path / "config.toml").write_text("seed = 0\n")
    with pytest.raises(ValueError, match="no weights.safetensors"):
        idcrisis.load_run(tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(b"garbage")
    (tmp_path / "result.json").write_text("{}")
    with pytest.raises(idcrisis.DataError, match="not a safetensors file"):
        idcrisis.load_run(tmp_path)


def test_missing_data_says_how_to_get_it(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="idcrisis data fetch mnist") as e:
        idcrisis.train(small_config(), data_dir=tmp_path / "empty", progress=False)
    assert isinstance(e.value, idcrisis.MissingDataError)
    with pytest.raises(FileNotFoundError, match="idcrisis data fetch"):
        idcrisis.train(small_config(), data_dir=tmp_path / "absent", progress=False)


def test_diverged_training_raises_with_the_run(data_dir: Path) -> None:
    with pytest.raises(idcrisis.DivergedError, match="diverged") as e:
        idcrisis.train(small_config(optimizer="gd", lr=1e30, steps=50), progress=False)
    run = e.value.run
    assert run is not None and run.status == "diverged"
    assert not np.isfinite(run.losses[-1]) and run.scores == []


def test_a_panic_becomes_an_exception() -> None:
    with pytest.raises(idcrisis.InternalError, match="deliberate panic") as e:
        _native._panic_for_test()
    assert isinstance(e.value, RuntimeError)
    # The interpreter and the engine still work afterwards.
    assert idcrisis.load_image().shape == (1, 1, 28, 28)


BAD_CALLS: List[Callable[[idcrisis.Run], Any]] = [
    lambda r: r.predict(np.zeros((1, 1, 28, 28), np.float32), batch=0),
    lambda r: r.predict(np.full((1, 1, 28, 28), np.nan, np.float32)),
    lambda r: r.predict(np.zeros((1, 1, 0, 28), np.float32)),
    lambda r: r.predict(np.zeros((1, 1, 28, 28), np.int64)),
    lambda r: r.predict(None),  # type: ignore[arg-type]
    lambda r: r.hidden(np.zeros((0, 1, 28, 28), np.float32)),
    lambda r: r.file("nope"),
    lambda r: r.save(Path("/proc/forbidden/run")),
    lambda r: idcrisis.train(small_config(depth=0), progress=False),
    lambda r: idcrisis.train(small_config(channels=0), progress=False),
    lambda r: idcrisis.train(small_config(kernel=-3), progress=False),
    lambda r: idcrisis.train(small_config(kernel=10**30), progress=False),
    lambda r: idcrisis.train(small_config(train_image="mnist:train:999999"), progress=False),
    lambda r: idcrisis.train(small_config(train_image="nonsense"), progress=False),
    lambda r: idcrisis.train(small_config(canvas=0), progress=False),
    lambda r: idcrisis.train(small_config(gray=100), progress=False),
    lambda r: idcrisis.train(small_config(shape=[1, 2]), progress=False),
    lambda r: idcrisis.train(small_config(rho=[float("nan")]), progress=False),
    lambda r: idcrisis.train(small_config(init={"from": "/nonexistent.safetensors"}), progress=False),
    lambda r: idcrisis.train({"model": 3}, progress=False),
    lambda r: idcrisis.train({1: 2}, progress=False),  # type: ignore[dict-item]
    lambda r: idcrisis.train(small_config(seed=object()), progress=False),
    lambda r: idcrisis.train(small_config(train_set={"data": "mnist:train", "batch": 0}), progress=False),
    lambda r: idcrisis.theory.ntk(depth=0),
    lambda r: idcrisis.theory.ntk(kernel=4),
    lambda r: idcrisis.theory.cnn1(kernels=[2]),
    lambda r: idcrisis.theory.fcn1(init="nope"),
    lambda r: idcrisis.sweep.status("/nonexistent-sweep"),
    lambda r: idcrisis.sweep.plan({"model": {"depth": []}}, "/tmp/idcrisis-bad-sweep-never"),
    lambda r: idcrisis.load_dataset("mnist:nope", 3),
]


@pytest.mark.parametrize("i", range(len(BAD_CALLS)))
def test_no_bad_input_reaches_a_panic(small_run: idcrisis.Run, i: int) -> None:
    try:
        BAD_CALLS[i](small_run)
    except idcrisis.InternalError as e:  # a Rust panic: a bug
        pytest.fail(f"bad input {i} panicked: {e}")
    except Exception:
        pass
