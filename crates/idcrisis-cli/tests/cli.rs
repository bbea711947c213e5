//! The command line: bad input exits 2 naming the problem, a diverging run exits 3, and the
//! happy paths write what they promise.

mod common;

use common::data_dir;
use std::path::Path;
use std::process::{Command, Output};

fn idcrisis(args: &[&str]) -> Output {
    common::run(args)
}

fn tempdir(tag: &str) -> common::TestDir {
    common::tempdir("cli", tag)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let o = idcrisis(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(needle), "{args:?}: stderr lacks {needle:?}: {}", stderr(&o));
}

const TINY: [&str; 10] = ["train", "--depth", "2", "--channels", "4", "--kernel", "3", "--steps", "5", "-q"];

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    assert_usage_error(&["train", "--depth", "0"], "--depth");
    assert_usage_error(&["train", "--kernel", "4"], "--kernel");
    assert_usage_error(&["train", "--lr", "-0.1"], "--lr");
    assert_usage_error(&["train", "--lr=-0.1"], "--lr");
    assert_usage_error(&["train", "--arch", "rnn"], "--arch");
    assert_usage_error(&["train", "--train-image", "mnist:train:abc"], "--train-image");
    assert_usage_error(&["train", "--momentum", "1.5"], "--momentum");
    assert_usage_error(&["train", "--residual", "--depth", "3"], "--residual");
    assert_usage_error(&["train", "--residual", "--arch", "fcn"], "--residual");
    assert_usage_error(&["train", "--conv-algo", "fast"], "--conv-algo");
    assert_usage_error(&["bench", "--conv-algo", "fast"], "--conv-algo");
    assert_usage_error(&["train", "--canvas", "20", "--depth", "1", "--steps", "1"], "--canvas");
    assert_usage_error(&["train", "--gray", "29", "--depth", "1", "--steps", "1"], "--gray");
    assert_usage_error(&["train", "--kernel", "57", "--depth", "1", "--steps", "1"], "--kernel");
    assert_usage_error(&["bench", "--probe", "--probe-batch", "0"], "--probe-batch");
    // The boundary and k-examples flags.
    assert_usage_error(&["train", "--coords", "polar"], "--coords");
    assert_usage_error(&["train", "--coords", "input", "--arch", "fcn", "--steps", "1"], "--coords");
    assert_usage_error(&["train", "--canvas-at", "0,0", "--depth", "1", "--steps", "1"], "--canvas-at");
    assert_usage_error(&["train", "--canvas", "42", "--canvas-at", "20,0", "--depth", "1", "--steps", "1"], "--canvas-at");
    assert_usage_error(&["train", "--train-images", "mnist:train:15,7,15", "--depth", "1", "--steps", "1"], "--train-indices");
    assert_usage_error(&["train", "--train-images", "mnist:test:10000", "--depth", "1", "--steps", "1"], "--train-indices");
    let too_many: String = (0..10001).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    assert_usage_error(&["train", "--train-images", &format!("mnist:test:{too_many}"), "--depth", "1", "--steps", "1"], "only 10000");
    assert_usage_error(&["train", "--train-images", "mnist:15,7", "--depth", "1", "--steps", "1"], "--train-images");
}

#[test]
fn bad_boundary_and_k_flags_write_nothing() {
    let t = tempdir("bad-k");
    let out = t.join("run");
    for args in [vec!["--coords", "input", "--arch", "fcn"], vec!["--canvas", "20"], vec!["--train-images", "mnist:train:15,7,15"]] {
        let mut a = vec!["train", "--depth", "1", "--steps", "1", "-q", "--out", out.to_str().unwrap()];
        a.extend(args);
        let o = idcrisis(&a);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", stderr(&o));
        assert!(!out.exists(), "{a:?} wrote {}", out.display());
    }
}

#[test]
fn train_images_trains_full_batch_and_scores_the_set() {
    let t = tempdir("k");
    let out = t.join("run");
    let o = idcrisis(&[
        "train",
        "--train-images",
        "mnist:train:15,1,3",
        "--depth",
        "2",
        "--channels",
        "4",
        "--kernel",
        "3",
        "--coords",
        "all",
        "--padding",
        "circular",
        "--steps",
        "30",
        "--threads",
        "1",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["config"]["train_set"]["indices"], serde_json::json!([15, 1, 3]));
    assert_eq!(r["config"]["train_image"], "mnist:train:15");
    assert_eq!(r["config"]["model"]["coords"], "all");
    assert_eq!(r["evaluation"]["example_mse"].as_array().unwrap().len(), 3);
    // The input scaling and norms are logged: #15's norm recomputed here from its pixels.
    assert_eq!(r["input"]["example_norms"].as_array().unwrap().len(), 3);
    assert_eq!(r["input"]["train_norm"], r["input"]["example_norms"][0]);
    assert!(r["input"]["pixel_scaling"].as_str().unwrap().contains("255"));
    let set = &r["evaluation"]["probes"][0]["set"];
    assert!(set["nearest"].as_u64().unwrap() < 3 && set["blend"].as_f64().unwrap() >= 0.0, "{set}");
    assert!(r["evaluation"]["categories"]["paper"]["set"]["corr_nearest"].is_number());
    // The weights carry the coordinate channels, and probe re-opens the run with them.
    let w = std::fs::read(out.join("weights.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&w[8..8 + u64::from_le_bytes(w[..8].try_into().unwrap()) as usize]).into_owned();
    assert!(header.contains("\"layers.1.coord_weight\":{\"dtype\":\"F32\",\"shape\":[1,2,3,3]"), "{header}");
    let o = idcrisis(&["probe", out.to_str().unwrap(), "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn missing_data_directory_exits_2_and_says_how_to_fix_it() {
    let o = idcrisis(&["train", "--data-dir", "/nonexistent/idcrisis-data", "--depth", "1", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("--data-dir") && e.contains("idcrisis data fetch mnist"), "{e}");
}

#[test]
fn config_file_errors_exit_2_naming_the_key() {
    let dir = tempdir("config");
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, "seed = 1\n[model]\ndepht = 3\n").unwrap();
    assert_usage_error(&["train", "--config", unknown.to_str().unwrap()], "depht");
    let wrong = dir.join("wrong.toml");
    std::fs::write(&wrong, "[model]\ndepth = \"three\"\n").unwrap();
    assert_usage_error(&["train", "--config", wrong.to_str().unwrap()], "depth");
    let even = dir.join("even.toml");
    std::fs::write(&even, "[model]\nkernel = 4\n").unwrap();
    assert_usage_error(&["train", "--config", even.to_str().unwrap()], "--kernel");
    let algo = dir.join("algo.toml");
    std::fs::write(&algo, "conv_algo = \"fast\"\n").unwrap();
    assert_usage_error(&["train", "--config", algo.to_str().unwrap()], "conv_algo");
    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "[model\n").unwrap();
    assert_usage_error(&["train", "--config", bad_toml.to_str().unwrap()], "bad.toml");
    // Nothing was written for any of them.
    assert!(!Path::new("runs").exists() || std::fs::read_dir("runs").unwrap().count() == 0);
}

#[test]
fn train_writes_a_run_and_flags_override_the_config() {
    let dir = tempdir("train");
    let out = dir.join("run");
    let mut args: Vec<&str> = TINY.to_vec();
    args.extend(["--out", out.to_str().unwrap(), "--threads", "1", "--rho", "0.5,-0.5"]);
    let o = idcrisis(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("predictions.png"), "{stdout}");
    for f in ["config.toml", "result.json", "loss.csv", "init.safetensors", "weights.safetensors", "predictions.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // Rerun from config.toml with one flag overridden.
    let out2 = dir.join("run2");
    let cfg = out.join("config.toml");
    let o = idcrisis(&["train", "--config", cfg.to_str().unwrap(), "--steps", "3", "--out", out2.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = std::fs::read_to_string(out2.join("config.toml")).unwrap();
    assert!(toml.contains("steps = 3") && toml.contains("channels = 4") && toml.contains("-0.5"), "{toml}");
    // probe re-evaluates the saved weights, on the paper's probes and on a data set.
    let o = idcrisis(&["probe", out.to_str().unwrap(), "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("probe-paper.json").is_file());
    let o = idcrisis(&["probe", out.to_str().unwrap(), "--dataset", "fashion-mnist:test", "--limit", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("probe-fashion-mnist-test.json")).unwrap()).unwrap();
    assert_eq!(j["probes"].as_array().unwrap().len(), 5);
    // The re-evaluation agrees with the one done at the end of training.
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("probe-paper.json")).unwrap()).unwrap();
    assert_eq!(r["evaluation"]["probes"], p["probes"]);
    // Probing something that is not a run is a clear error.
    assert_usage_error(&["probe", dir.to_str().unwrap()], "config.toml");
}

#[test]
fn the_convolution_algorithm_is_recorded_and_probe_reuses_it() {
    let dir = tempdir("algo");
    for algo in ["winograd", "direct"] {
        let out = dir.join(algo);
        let mut args: Vec<&str> = TINY.to_vec();
        args.extend(["--out", out.to_str().unwrap(), "--threads", "1", "--conv-algo", algo]);
        let o = idcrisis(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
        assert_eq!(r["conv_algo"], algo);
        assert_eq!(r["config"]["conv_algo"], algo);
        let toml = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(toml.contains(&format!("conv_algo = \"{algo}\"")), "{toml}");
        // probe evaluates with the run's algorithm, so it reproduces the run's numbers exactly.
        let o = idcrisis(&["probe", out.to_str().unwrap(), "--threads", "1"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let p: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("probe-paper.json")).unwrap()).unwrap();
        assert_eq!(r["evaluation"]["probes"], p["probes"], "{algo}");
    }
    // An unknown algorithm is a usage error naming the flag, and nothing is written.
    let bad = dir.join("bad");
    let mut args: Vec<&str> = TINY.to_vec();
    args.extend(["--out", bad.to_str().unwrap(), "--conv-algo", "fastest"]);
    assert_usage_error(&args, "--conv-algo");
    assert!(!bad.exists());
    // The default is not written, so configs (and sweep cell ids) from before the option stay the same.
    let out2 = dir.join("run2");
    let mut args: Vec<&str> = TINY.to_vec();
    args.extend(["--out", out2.to_str().unwrap(), "--threads", "1"]);
    assert!(idcrisis(&args).status.success());
    assert!(!std::fs::read_to_string(out2.join("config.toml")).unwrap().contains("conv_algo"));
    let r2: serde_json::Value = serde_json::from_slice(&std::fs::read(out2.join("result.json")).unwrap()).unwrap();
    assert_eq!(r2["conv_algo"], "auto");
}

#[test]
fn a_diverging_run_exits_3_with_a_message() {
    let dir = tempdir("diverge");
    let out = dir.join("run");
    let args = [
        "train",
        "--depth",
        "2",
        "--channels",
        "4",
        "--kernel",
        "3",
        "-q",
        "--optimizer",
        "gd",
        "--lr",
        "1e6",
        "--steps",
        "100",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = idcrisis(&args);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("diverged"));
    assert!(!stderr(&o).contains("panicked"));
    assert!(out.join("result.json").is_file());
}

#[test]
fn data_verify_and_bench_run() {
    let o = idcrisis(&["data", "verify", "mnist", "fashion-mnist"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).matches(" ok ").count(), 8);
    let o = idcrisis(&["bench", "--workload", "cnn-d5-c32-k3", "--steps", "2", "--warmup", "1", "--threads", "1", "--probe"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("cnn-d5-c32-k3") && s.contains("ratio"), "{s}");
    // The probing table: 10,000 test images through the small CNN, a positive rate.
    let row = s.lines().find(|l| l.starts_with("cnn-d5-c32-k3") && l.contains("10000")).unwrap_or_else(|| panic!("{s}"));
    let rate: f64 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(rate > 10.0, "{row}");
    // --compare-torch without an importable torch says so and still prints our numbers.
    let o = idcrisis(&[
        "bench",
        "--compare-torch",
        "--python",
        "false",
        "--workload",
        "cnn-d5-c32-k3",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("not importable") && s.contains("cnn-d5-c32-k3"), "{s}");
}

#[test]
fn first_use_downloads_into_the_cache_dir() {
    // A local mirror of shared/data; the user's cache dir is a fresh temp dir.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", server.server_addr().to_ip().unwrap());
    let root = data_dir();
    let h = std::thread::spawn(move || {
        while let Ok(Some(req)) = server.recv_timeout(std::time::Duration::from_secs(20)) {
            let path = root.join(req.url().trim_start_matches('/'));
            let resp = match std::fs::read(&path) {
                Ok(b) => tiny_http::Response::from_data(b),
                Err(_) => tiny_http::Response::from_data(Vec::new()).with_status_code(404),
            };
            let _ = req.respond(resp);
        }
    });
    let home = tempdir("home");
    let out = home.join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_idcrisis"))
        .args(TINY)
        .args(["--out", out.to_str().unwrap()])
        .env_remove("IDCRISIS_DATA")
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("IDCRISIS_MIRRORS", &addr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("downloading it (first use)"), "{}", stderr(&o));
    assert!(home.join("cache/idcrisis/mnist/train-images-idx3-ubyte.gz").is_file());
    assert!(home.join("cache/idcrisis/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file());
    assert!(out.join("result.json").is_file());
    drop(h);
}

#[test]
fn a_canvas_run_trains_probes_and_draws_at_the_canvas_size() {
    let t = tempdir("canvas");
    let out = t.join("run");
    let o = idcrisis(&[
        "train",
        "--canvas",
        "56",
        "--depth",
        "3",
        "--channels",
        "16",
        "--steps",
        "20",
        "--threads",
        "1",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["config"]["shape"], serde_json::json!([1, 56, 56]));
    assert!(r["evaluation"]["probes"][0]["window"]["corr_identity"].is_number());
    let png = image::open(out.join("predictions.png")).unwrap();
    assert!(png.width() > 1000);
    // probe re-opens the run at its shape and reproduces its scores.
    let o = idcrisis(&["probe", out.to_str().unwrap(), "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("probe-paper.json")).unwrap()).unwrap();
    assert_eq!(p["probes"], r["evaluation"]["probes"]);
}
