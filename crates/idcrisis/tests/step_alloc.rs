//! What a warm training step allocates: forward, loss, backward and the optimizer update run on
//! buffers the workspace, the net and the optimizer own, so idcrisis's own code allocates
//! nothing per step. The `gemm` crate does: every product it packs allocates its packing buffer
//! and a flag vector per call (gemm-common 0.19, `gemm_basic_generic`), and its API takes no
//! workspace. Since the Winograd kernel transforms run in blocks on `gemm_small`, a step reaches
//! the `gemm` crate only through im2col layers and Winograd products too large for
//! `gemm_small` (over 64 channels): a 16-channel Winograd CNN went from 143 allocations per
//! step to none.
//!
//! So this test holds every step at zero allocations whose convolutions are all direct or
//! Winograd (here at most 16 channels on 12×12 images, so every product is small), the FCN
//! included, on one and two threads; and an im2col step (reflect padding) above zero and at the
//! same count as the step before on one thread: the counter does see the `gemm` crate, and
//! nothing grows or depends on the data. Allocations are counted on the thread that runs the
//! steps (a counter per thread: a global one also sees the test harness's threads), in a test
//! binary of its own.

use idcrisis::engine::Engine;
use idcrisis::engine::Padding;
use idcrisis::nn::layers::{Activation, Algo, Layer, Pass};
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::nn::optim::{Optimizer, OptimizerKind};
use idcrisis::nn::train::{forward_loss, update, TrainConfig};
use idcrisis::Shape;

#[path = "common/alloc_count.rs"]
mod alloc_count;
use alloc_count::count;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

#[test]
fn a_warm_training_step_allocates_only_inside_the_gemm_crate_and_only_for_im2col() {
    // Every engine lives to the end of the test: a team shutting down allocates.
    let engines = [Engine::new(1).unwrap(), Engine::new(2).unwrap()];
    let shape = Shape { channels: 1, height: 12, width: 12 };
    let x: Vec<f32> = (0..shape.len()).map(|i| (i % 7) as f32 / 7.0).collect();
    let mut report = Vec::new();
    for threads in [1, 2] {
        let eng = &engines[threads - 1];
        for (arch, padding, channels) in [
            (Arch::Fcn, Padding::Zero, 4),
            (Arch::Cnn, Padding::Zero, 4),
            (Arch::Cnn, Padding::Zero, 16),
            (Arch::Cnn, Padding::Circular, 4),
            (Arch::Cnn, Padding::Reflect, 4),
        ] {
            for kind in [OptimizerKind::Gd, OptimizerKind::Momentum, OptimizerKind::Adam] {
                let cfg = ModelConfig {
                    arch,
                    depth: 3,
                    channels,
                    width: Some(32),
                    kernel: 5,
                    padding,
                    act: Activation::Relu,
                    ..ModelConfig::default()
                };
                let mut net = Net::<f32>::new(&cfg, shape).unwrap();
                net.init(Init::TorchDefault, 1.0, 3);
                let mut ws = net.workspace(1, true);
                let tc = TrainConfig { optimizer: kind, lr: 1e-3, ..TrainConfig::default() };
                let mut opt = Optimizer::new(&tc, net.params.len());
                // The steps run on this thread, as `train` runs them, and its allocations are
                // counted (with one thread, all of the step's work; with two, the part this
                // thread takes of each parallel region).
                // Warm up: thread-local buffers are created.
                for _ in 0..3 {
                    forward_loss(eng, &net, &mut ws, &x, 1);
                    update(eng, &mut net, &mut ws, &mut opt, 1);
                }
                let mut per_step = Vec::with_capacity(5);
                for _ in 0..5 {
                    let before = count();
                    forward_loss(eng, &net, &mut ws, &x, 1);
                    update(eng, &mut net, &mut ws, &mut opt, 1);
                    per_step.push(count() - before);
                }
                let line = format!("{arch:?} {padding:?} C={channels} {kind:?} threads={threads}: {per_step:?} allocations per step");
                // Only im2col layers reach the `gemm` crate in these nets. Reflect padding is
                // im2col on every CPU (the positive control); the 4-channel zero-padded nets are
                // im2col too on a CPU without AVX2, where `auto` takes no direct convolution.
                let im2col = net.layers.iter().any(|l| match l {
                    Layer::Conv(c) => c.algo::<f32>(eng, Pass::Train) == Algo::Im2col,
                    Layer::Dense(_) => false,
                });
                assert!(im2col || padding != Padding::Reflect, "{line}: reflect padding should train im2col");
                if !im2col {
                    assert!(per_step.iter().all(|&n| n == 0), "{line}");
                } else if threads == 1 {
                    // With two threads, how much of a step's GEMMs this thread runs varies with
                    // work stealing; with one, it runs them all.
                    assert!(per_step[0] > 0 && per_step.windows(2).all(|w| w[0] == w[1]), "{line}");
                }
                report.push(line);
            }
        }
    }
    eprintln!("{}", report.join("\n"));
}
