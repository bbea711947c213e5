//! Step-time benchmarks: median ms per training step of the four workloads.

use crate::engine::Engine;
use crate::error::Result;
use crate::nn::layers::Activation;
use crate::nn::model::{Arch, Init, ModelConfig, Net};
use crate::nn::optim::{Optimizer, OptimizerKind};
use crate::nn::train::{forward_loss, update, TrainConfig};
use crate::shape::Shape;
use serde::Serialize;
use std::time::Instant;

/// The CPU model from `/proc/cpuinfo` (`unknown CPU` where there is none), for the header of
/// every benchmark table: ratios differ between machines.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Side of the square f32 product [`gemm_peak_gflops`] times.
pub const PEAK_GEMM_SIDE: usize = 1024;

/// The measured GEMM peak of `eng` on this machine, GFLOP/s: the best of 5 timed products
/// `C [n, n] = A [n, n] · B [n, n]` in f32 through [`crate::engine::gemm`] on the engine's
/// threads, n = [`PEAK_GEMM_SIDE`] (2·n³ FLOPs each), after one untimed. It is what the `bench`
/// table's fraction of peak divides by: a rate this machine reaches on our engine's GEMM, where
/// a fixed FMA peak would hold for one kind of CPU only.
pub fn gemm_peak_gflops(eng: &Engine) -> f64 {
    use crate::engine::{gemm, Acc, Trans};
    let n = PEAK_GEMM_SIDE;
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 97) as f32 - 48.0) / 97.0).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i % 89) as f32 - 44.0) / 89.0).collect();
    let mut c = vec![0f32; n * n];
    let mut best = f64::INFINITY;
    for rep in 0..6 {
        let t = Instant::now();
        gemm(eng, n, n, n, &mut c, &a, Trans::No, &b, Trans::No, Acc::Overwrite);
        std::hint::black_box(&c);
        if rep > 0 {
            best = best.min(t.elapsed().as_secs_f64());
        }
    }
    2.0 * (n as f64).powi(3) / best / 1e9
}

/// One benchmark workload, with PyTorch's step time on the 2-core dev machine (2 threads,
/// batch 1, Adam), as measured with `shared/reference/torch_identity.py`.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Short name.
    pub name: &'static str,
    /// The network.
    pub model: ModelConfig,
    /// PyTorch 2-thread median ms per step (reference measurement).
    pub torch_ms: f64,
}

/// The four workloads of the core and performance issues.
pub fn workloads() -> Vec<Workload> {
    let cnn = |depth, channels, kernel| ModelConfig { arch: Arch::Cnn, depth, channels, kernel, ..Default::default() };
    vec![
        Workload { name: "cnn-d5-c128-k5", model: cnn(5, 128, 5), torch_ms: 16.0 },
        Workload { name: "cnn-d20-c128-k5", model: cnn(20, 128, 5), torch_ms: 84.0 },
        Workload { name: "cnn-d5-c32-k3", model: cnn(5, 32, 3), torch_ms: 1.4 },
        Workload {
            name: "fcn-d3-w2048",
            model: ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(2048), act: Activation::Relu, ..Default::default() },
            torch_ms: 21.0,
        },
    ]
}

/// Timing of one workload.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Workload name.
    pub name: String,
    /// Median ms per step.
    pub median_ms: f64,
    /// Fastest step, ms.
    pub min_ms: f64,
    /// Training FLOPs per step.
    pub flops: f64,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// Fraction of the measured GEMM peak it was given ([`gemm_peak_gflops`]).
    pub frac_peak: f64,
    /// Threads used.
    pub threads: usize,
}

/// Time `steps` Adam steps (after `warmup`) of `model` on the MNIST-shaped image `x [784]`;
/// `peak_gflops` (GFLOP/s, [`gemm_peak_gflops`]) scales [`BenchResult::frac_peak`].
pub fn time_model(
    eng: &Engine,
    name: &str,
    model: &ModelConfig,
    x: &[f32],
    warmup: usize,
    steps: usize,
    peak_gflops: f64,
) -> Result<BenchResult> {
    let mut net = Net::<f32>::new(model, Shape::MNIST)?;
    net.init(Init::TorchDefault, 1.0, 0);
    let tc = TrainConfig { optimizer: OptimizerKind::Adam, lr: 1e-4, ..TrainConfig::default() };
    let mut opt = Optimizer::<f32>::new(&tc, net.num_params());
    let mut ws = net.workspace(1, true);
    let mut times = Vec::with_capacity(steps);
    for s in 0..warmup + steps {
        let t = Instant::now();
        forward_loss(eng, &net, &mut ws, x, 1);
        update(eng, &mut net, &mut ws, &mut opt, 1);
        if s >= warmup {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let median_ms = times[times.len() / 2];
    let flops = net.train_flops(1);
    let gflops = flops / median_ms / 1e6;
    Ok(BenchResult {
        name: name.to_string(),
        median_ms,
        min_ms: times[0],
        flops,
        gflops,
        frac_peak: gflops / peak_gflops,
        threads: eng.threads(),
    })
}

/// A forward-only (probing) workload: the network and how many MNIST test images it runs over.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeWorkload {
    /// Short name (the training workload's).
    pub name: &'static str,
    /// The network.
    pub model: ModelConfig,
    /// Images evaluated per timed pass (the first `images` MNIST test images).
    pub images: usize,
}

/// The probing workloads: the small CNN and the FCN over all 10,000 MNIST test images, the
/// 5-layer 128-channel CNN over the first 1,000 (the whole set takes minutes at ~2 GFLOP an image)
/// and a 10-layer 8-channel CNN over the first 2,000.
pub fn probe_workloads() -> Vec<ProbeWorkload> {
    let w = workloads();
    let pick = |name: &str| w.iter().find(|x| x.name == name).expect("known workload").model.clone();
    let small = |depth, channels, kernel| ModelConfig { arch: Arch::Cnn, depth, channels, kernel, ..Default::default() };
    vec![
        ProbeWorkload { name: "cnn-d5-c32-k3", model: pick("cnn-d5-c32-k3"), images: 10_000 },
        ProbeWorkload { name: "fcn-d3-w2048", model: pick("fcn-d3-w2048"), images: 10_000 },
        ProbeWorkload { name: "cnn-d5-c128-k5", model: pick("cnn-d5-c128-k5"), images: 1_000 },
        // The beyond-paper experiments' 8-channel nets (boundary, kernels, attractors): direct
        // convolution under `auto` on AVX2 and AVX-512.
        ProbeWorkload { name: "cnn-d10-c8-k5", model: small(10, 8, 5), images: 2_000 },
    ]
}

/// Forward-pass throughput of `model` (torch-default init, seed 0) over `images [count, 784]` in
/// batches of `batch`: the best of `repeats` timed passes, in images per second.
pub fn time_probe(eng: &Engine, model: &ModelConfig, images: &[f32], batch: usize, repeats: usize) -> Result<f64> {
    let mut net = Net::<f32>::new(model, Shape::MNIST)?;
    net.init(Init::TorchDefault, 1.0, 0);
    let count = images.len() / Shape::MNIST.len();
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let out = net.predict(eng, images, count, batch);
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(out.len(), images.len());
    }
    Ok(count as f64 / best)
}
