//! `idcrisis bench`: median ms per training step of the benchmark workloads, with PyTorch's
//! figure for the same workload beside it.

use anyhow::{bail, Result};
use clap::Args;
use idcrisis::bench;
use idcrisis::data::{self, ImageSpec};
use idcrisis::engine::{ConvAlgo, Engine};
use idcrisis::nn::model::{Arch, ModelConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Flags of `idcrisis bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Also time PyTorch (needs `python3 -c 'import torch'` to work) in this invocation.
    #[arg(long)]
    compare_torch: bool,
    /// Timed steps per workload, at least (the median is reported; fast workloads get enough
    /// steps for 1 s of timing).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed warm-up steps, at least (fast workloads get 0.3 s of warm-up).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Compute threads [default: all cores]. PyTorch gets the same number.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Convolution algorithm (auto: Winograd for zero-padded layers with ≥ 16 input channels, direct under 16 on AVX2 and
    /// AVX-512 (and for first and last layers, one channel in or out, up to 16) and, when probing, up to 16 (32 on
    /// AVX-512) except zero-padded 3×3 and 5×5 layers from 16 input channels; im2col otherwise).
    #[arg(long, value_enum, default_value_t = ConvAlgo::Auto)]
    conv_algo: ConvAlgo,
    /// Also time forward passes (probing) over MNIST test images, in images per second.
    #[arg(long)]
    probe: bool,
    /// Batch size of the probing passes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10000))]
    probe_batch: u64,
    /// Only these workloads (names as printed).
    #[arg(long)]
    workload: Vec<String>,
    /// Python interpreter for --compare-torch.
    #[arg(long, env = "IDCRISIS_PYTHON", default_value = "python3")]
    python: String,
    /// PyTorch reference script [default: ../shared/reference/torch_identity.py, searched upward].
    #[arg(long, env = "IDCRISIS_TORCH_SCRIPT")]
    torch_script: Option<PathBuf>,
}

fn find_script() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        for cand in [dir.join("shared/reference/torch_identity.py"), dir.join("../shared/reference/torch_identity.py")] {
            if cand.is_file() {
                return Some(cand);
            }
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// Run a PyTorch script built into `cmd` for `model` (its depth, architecture and data flags are
/// added here) and read `key` from the one JSON line it prints.
fn run_torch(mut cmd: Command, model: &ModelConfig, data_dir: &Path, key: &str) -> Result<f64> {
    cmd.args(["--depth", &model.depth.to_string(), "--data-dir"]).arg(data_dir);
    match model.arch {
        Arch::Cnn => cmd.args(["--arch", "cnn", "--channels", &model.channels.to_string(), "--kernel", &model.kernel.to_string()]),
        Arch::Fcn => cmd.args(["--arch", "fcn", "--width", &model.width_for(idcrisis::Shape::MNIST).to_string()]),
    };
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("failed"));
    }
    let v: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii())?;
    v[key].as_f64().ok_or_else(|| anyhow::anyhow!("no {key} in PyTorch output"))
}

/// PyTorch's median ms per training step, from `torch_identity.py`.
fn torch_ms(
    python: &str,
    script: &Path,
    w: &bench::Workload,
    (warmup, steps): (usize, usize),
    threads: usize,
    data_dir: &Path,
) -> Result<f64> {
    let mut cmd = Command::new(python);
    cmd.arg(script).args(["--optimizer", "adam", "--lr", "1e-4", "--json"]);
    cmd.args(["--steps", &steps.to_string(), "--warmup", &warmup.to_string(), "--threads", &threads.to_string()]);
    run_torch(cmd, &w.model, data_dir, "median_ms_per_step")
}

/// Our PyTorch probing-throughput script, written to a temporary file when needed.
const TORCH_PROBE: &str = include_str!("../scripts/torch_probe.py");

/// PyTorch's probing throughput in images/s, from `script` (our `torch_probe.py`).
fn torch_probe(python: &str, script: &Path, w: &bench::ProbeWorkload, batch: u64, threads: usize, data_dir: &Path) -> Result<f64> {
    let mut cmd = Command::new(python);
    cmd.arg(script).args(["--images", &w.images.to_string(), "--batch", &batch.to_string()]);
    cmd.args(["--threads", &threads.to_string()]);
    run_torch(cmd, &w.model, data_dir, "images_per_s")
}

/// The probing table: forward passes over MNIST test images.
fn run_probe(a: &BenchArgs, eng: &Engine, torch: bool, data_dir: &Path) -> Result<()> {
    let test = data::load_images(data_dir, data::Dataset::Mnist, data::Split::Test)?;
    let all: Vec<f32> = test.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    println!();
    println!("probing: forward passes over MNIST test images, batches of {}, best of 2 passes", a.probe_batch);
    // The PyTorch script, written once for all workloads.
    let script = if torch {
        // Removed when dropped, also on an early error return.
        let dir = tempfile::Builder::new().prefix("idcrisis-bench-").tempdir()?;
        let path = dir.path().join("torch_probe.py");
        std::fs::write(&path, TORCH_PROBE)?;
        Some((dir, path))
    } else {
        None
    };
    let torch_col = if torch { "torch img/s" } else { "torch img/s (-)" };
    println!("{:<18} {:>7} {:>11} {:>15} {:>11}", "workload", "images", "ours img/s", torch_col, "ours/torch");
    for w in bench::probe_workloads() {
        if !a.workload.is_empty() && !a.workload.iter().any(|n| n == w.name) {
            continue;
        }
        let n = w.images.min(test.count);
        let ours = bench::time_probe(eng, &w.model, &all[..n * idcrisis::Shape::MNIST.len()], a.probe_batch as usize, 2)?;
        let t = match &script {
            Some((_, path)) => torch_probe(&a.python, path, &w, a.probe_batch, eng.threads(), data_dir).unwrap_or_else(|e| {
                println!("  (PyTorch failed on {}: {e})", w.name);
                f64::NAN
            }),
            None => f64::NAN,
        };
        println!("{:<18} {:>7} {:>11.0} {:>15.0} {:>11.2}", w.name, n, ours, t, ours / t);
    }
    Ok(())
}

/// Run the benchmark table.
pub fn run(a: BenchArgs, data_dir: PathBuf) -> Result<ExitCode> {
    idcrisis::experiment::run::check_data_dir(&data_dir)?;
    let (_, x) = data::load_image(&data_dir, &ImageSpec::default(), None)?;
    let eng = Engine::new(a.threads)?.with_conv_algo(a.conv_algo);
    let threads = eng.threads();
    let torch = if a.compare_torch {
        let ok = Command::new(&a.python).args(["-c", "import torch"]).output().map(|o| o.status.success()).unwrap_or(false);
        let script = a.torch_script.clone().or_else(find_script);
        match (ok, script) {
            (true, Some(s)) => Some(s),
            (false, _) => {
                println!("PyTorch is not importable by `{}`: showing our numbers only.", a.python);
                None
            }
            (true, None) => {
                println!("torch_identity.py not found (give --torch-script): showing our numbers only.");
                None
            }
        }
    } else {
        None
    };
    println!(
        "CPU: {}; Winograd transforms dispatched to {} (set {} to lower it); {threads} threads",
        bench::cpu_model(),
        idcrisis::engine::winograd::Isa::detect().name(),
        idcrisis::engine::winograd::Isa::ENV
    );
    println!(
        "batch 1, Adam, MNIST train #15, {threads} threads, median of ≥ {} steps (≥ 1 s) after ≥ {} warm-up (≥ 0.3 s), convolutions: {}",
        a.steps, a.warmup, a.conv_algo
    );
    let peak = bench::gemm_peak_gflops(&eng);
    println!(
        "peak = measured GEMM peak: {peak:.1} GFLOP/s (f32 {n}×{n}×{n} product, {threads} threads); GFLOP/s counts direct-convolution FLOPs,",
        n = bench::PEAK_GEMM_SIDE
    );
    println!("so with Winograd convolutions (fewer multiplies) it is an effective rate that can pass the peak");
    let torch_col = if torch.is_some() { "torch ms" } else { "torch ms (ref)" };
    println!("{:<18} {:>9} {:>14} {:>7} {:>9} {:>7}", "workload", "ours ms", torch_col, "ratio", "GFLOP/s", "peak");
    for w in bench::workloads() {
        if !a.workload.is_empty() && !a.workload.iter().any(|n| n == w.name) {
            continue;
        }
        // Fast workloads get more steps: at least --warmup steps and 0.3 s of warm-up, at least
        // --steps steps and 1 s of timing (one short calibration run first), the same for PyTorch.
        let cal = bench::time_model(&eng, w.name, &w.model, &x, 1, 3, peak)?.median_ms;
        let counts = (a.warmup.max((300.0 / cal).ceil() as usize).min(2000), a.steps.max(1).max((1000.0 / cal).ceil() as usize).min(5000));
        let r = bench::time_model(&eng, w.name, &w.model, &x, counts.0, counts.1, peak)?;
        let t = match &torch {
            Some(script) => match torch_ms(&a.python, script, &w, counts, threads, &data_dir) {
                Ok(ms) => ms,
                Err(e) => {
                    println!("  (PyTorch failed on {}: {e})", w.name);
                    f64::NAN
                }
            },
            None => w.torch_ms,
        };
        println!(
            "{:<18} {:>9.2} {:>14.2} {:>7.2} {:>9.1} {:>6.1}%",
            w.name,
            r.median_ms,
            t,
            r.median_ms / t,
            r.gflops,
            100.0 * r.frac_peak
        );
    }
    if torch.is_none() {
        println!("(ref) = PyTorch 2 threads on the 2-core dev machine, from the issue; run with --compare-torch to measure here");
    }
    if a.probe {
        run_probe(&a, &eng, torch.is_some(), &data_dir)?;
    }
    Ok(ExitCode::SUCCESS)
}
