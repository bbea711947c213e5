//! Round trips: safetensors weights, and `config.toml` (rerunning from it gives the same run).

mod common;

use idcrisis::experiment::config::RunConfig;
use idcrisis::experiment::run::{execute, RunOptions, RunResult};
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use std::path::Path;

#[test]
fn safetensors_round_trip_in_pytorch_layout() {
    for cfg in [
        ModelConfig { arch: Arch::Cnn, depth: 3, channels: 4, kernel: 3, ..Default::default() },
        ModelConfig { arch: Arch::Fcn, depth: 2, width: Some(10), bias: false, ..Default::default() },
    ] {
        let mut a = Net::<f32>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        a.init(Init::HeUniform, 1.0, 4);
        let bytes = a.to_safetensors(None).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        match cfg.arch {
            Arch::Cnn => {
                assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), &[4, 1, 3, 3]);
                assert_eq!(st.tensor("layers.1.weight").unwrap().shape(), &[4, 4, 3, 3]);
                assert_eq!(st.tensor("layers.2.bias").unwrap().shape(), &[1]);
            }
            Arch::Fcn => {
                assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), &[10, 784]);
                assert!(st.tensor("layers.0.bias").is_err());
            }
        }
        let mut b = Net::<f32>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        b.load_safetensors(&bytes, Path::new("x")).unwrap();
        assert_eq!(a.params, b.params);
        // f32 → f64 loads exactly.
        let mut c = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        c.load_safetensors(&bytes, Path::new("x")).unwrap();
        assert!(a.params.iter().zip(&c.params).all(|(x, y)| *x as f64 == *y));
    }
}

#[test]
fn weights_for_another_shape_are_rejected() {
    let small = ModelConfig { arch: Arch::Cnn, depth: 2, channels: 4, kernel: 3, ..Default::default() };
    let other = ModelConfig { channels: 5, ..small.clone() };
    let bytes = Net::<f32>::new(&small, idcrisis::Shape::MNIST).unwrap().to_safetensors(None).unwrap();
    let e = Net::<f32>::new(&other, idcrisis::Shape::MNIST).unwrap().load_safetensors(&bytes, Path::new("w.safetensors")).unwrap_err();
    assert!(e.to_string().contains("layers.0.weight has shape [4, 1, 3, 3], expected [5, 1, 3, 3]"), "{e}");
    let nobias = ModelConfig { bias: false, ..small.clone() };
    let e = Net::<f32>::new(&nobias, idcrisis::Shape::MNIST).unwrap().load_safetensors(&bytes, Path::new("w")).unwrap_err();
    assert!(e.to_string().contains("unexpected tensor layers.0.bias"), "{e}");
    let e = Net::<f32>::new(&small, idcrisis::Shape::MNIST).unwrap().load_safetensors(b"garbage", Path::new("w")).unwrap_err();
    assert!(e.to_string().contains("not a safetensors file"), "{e}");
}

fn small_config() -> RunConfig {
    let mut c =
        RunConfig { model: ModelConfig { arch: Arch::Cnn, depth: 2, channels: 4, kernel: 3, ..Default::default() }, ..Default::default() };
    c.train.steps = 12;
    c.train.lr = 1e-3;
    c.threads = 1;
    c.rho = vec![0.5];
    c
}

fn go(cfg: &RunConfig, out: &Path) -> RunResult {
    execute(cfg, RunOptions { data_dir: common::data_dir(), out: out.to_path_buf(), progress: &mut |_, _| true }).unwrap()
}

#[test]
fn config_toml_reruns_the_same_run() {
    let dir = common::tempdir("rerun");
    let cfg = small_config();
    let first = go(&cfg, &dir.join("a"));
    let text = std::fs::read_to_string(dir.join("a/config.toml")).unwrap();
    let back = RunConfig::from_toml(&text, Path::new("config.toml")).unwrap();
    // The run records what the data resolved: the image shape and the FCN width it implies.
    let mut want = cfg.clone();
    want.shape = Some(idcrisis::Shape::MNIST);
    want.model.width = Some(784);
    assert_eq!(back, want);
    assert!(text.contains("shape = [\n    1,\n    28,\n    28,\n]") || text.contains("shape = [1, 28, 28]"), "{text}");
    let second = go(&back, &dir.join("b"));
    assert_eq!(first.final_loss, second.final_loss);
    assert_eq!(std::fs::read(dir.join("a/weights.safetensors")).unwrap(), std::fs::read(dir.join("b/weights.safetensors")).unwrap());
    assert_eq!(std::fs::read(dir.join("a/loss.csv")).unwrap(), std::fs::read(dir.join("b/loss.csv")).unwrap());
    // --init-from the saved initial weights reproduces the same trained weights.
    let mut from = cfg.clone();
    from.init.from = Some(dir.join("a/init.safetensors"));
    from.seed = 999;
    go(&from, &dir.join("c"));
    assert_eq!(std::fs::read(dir.join("a/weights.safetensors")).unwrap(), std::fs::read(dir.join("c/weights.safetensors")).unwrap());
}

#[test]
fn run_directory_has_every_promised_file() {
    let tmp = common::tempdir("rundir");
    let dir = tmp.join("run");
    let r = go(&small_config(), &dir);
    for f in ["config.toml", "result.json", "loss.csv", "init.safetensors", "weights.safetensors", "predictions.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    for key in ["status", "steps", "final_loss", "seed", "threads", "versions", "train_seconds", "ms_per_step", "config", "evaluation"] {
        assert!(!j[key].is_null(), "result.json lacks {key}");
    }
    assert_eq!(j["status"], "max-steps");
    assert_eq!(j["steps"], 12);
    let ev = &j["evaluation"];
    assert_eq!(ev["probes"].as_array().unwrap().len(), 13, "12 paper probes + 1 random-ρ");
    for cat in ["blend", "mnist", "fashion", "synthetic", "random-rho", "paper", "all"] {
        assert!(ev["categories"][cat]["corr_identity"].is_number(), "category {cat}");
    }
    let csv = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 13, "header + steps + final");
    let png = image::open(dir.join("predictions.png")).unwrap();
    let (w, h) = idcrisis::figures::grid_size(2, 14, true);
    assert_eq!((png.width(), png.height()), (w, h));
    assert!(r.evaluation.is_some());
    // No temporary files left behind.
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
    // A finished run is never overwritten.
    let again = execute(&small_config(), RunOptions { data_dir: common::data_dir(), out: dir.clone(), progress: &mut |_, _| true });
    assert!(again.unwrap_err().to_string().contains("already holds a finished run"));
}

#[test]
fn a_diverging_run_is_recorded_not_panicked() {
    let tmp = common::tempdir("diverge");
    let dir = tmp.join("run");
    let mut cfg = small_config();
    cfg.train.optimizer = idcrisis::nn::optim::OptimizerKind::Gd;
    cfg.train.lr = 1e6;
    cfg.train.steps = 200;
    let r = go(&cfg, &dir);
    assert_eq!(r.status, idcrisis::nn::train::Status::Diverged);
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(j["status"], "diverged");
    assert!(j["final_loss"].is_null());
}

#[test]
fn an_interrupted_run_stops_at_once_and_leaves_no_files() {
    let parent = common::tempdir("interrupt");
    let out = parent.join("run");
    let mut calls = 0u64;
    let mut stop_at_3 = |step: u64, _loss: f64| {
        calls += 1;
        step < 3
    };
    let e = execute(&small_config(), RunOptions { data_dir: common::data_dir(), out: out.clone(), progress: &mut stop_at_3 }).unwrap_err();
    assert!(matches!(e, idcrisis::Error::Interrupted { step: 3 }), "{e}");
    assert_eq!(calls, 4, "the callback is asked once per loss evaluation, and training stops when it says so");
    assert!(!out.exists(), "the run directory it created is removed");
    // Into an existing directory: its own files go, anything else stays.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let e =
        execute(&small_config(), RunOptions { data_dir: common::data_dir(), out: out.clone(), progress: &mut |_, _| false }).unwrap_err();
    assert!(matches!(e, idcrisis::Error::Interrupted { step: 0 }), "{e}");
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("notes.txt")]);
}
