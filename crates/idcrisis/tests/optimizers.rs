//! One Adam step, two Adam steps, momentum and GD against values worked out by hand.

use idcrisis::engine::Engine;
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::nn::optim::{Optimizer, OptimizerKind};
use idcrisis::nn::train::{forward_loss, update, TrainConfig};
use idcrisis::Shape;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn adam_matches_hand_computed_steps() {
    // g = (0.5, −0.1), lr 0.1. Step 1: m = 0.1g, v = 0.001g², m̂ = g, √v̂ = |g|, so
    // p −= 0.1·g/(|g| + 1e-8): 1 → 1 − 0.05/0.50000001, −2 → −2 + 0.01/0.10000001.
    let eng = Engine::new(1).unwrap();
    let mut p = vec![1.0f64, -2.0];
    let g = vec![0.5f64, -0.1];
    let mut opt = Optimizer::<f64>::new(&tc(OptimizerKind::Adam, 0.1, 0.0), 2);
    opt.step(&eng, &mut p, &g);
    assert!(close(p[0], 1.0 - 0.05 / 0.500_000_01), "{}", p[0]);
    assert!(close(p[1], -2.0 + 0.01 / 0.100_000_01), "{}", p[1]);
    // Step 2, same g: m = 0.095, v = 0.00049975, bias corrections 0.19 and 0.001999, so
    // √v̂ = √(0.00049975/0.001999) = 0.5 and the step is (0.1/0.19)·0.095/0.50000001.
    opt.step(&eng, &mut p, &g);
    assert!(close(p[0], 1.0 - 2.0 * 0.05 / 0.500_000_01), "{}", p[0]);
}

#[test]
fn momentum_matches_pytorch_sgd() {
    // torch.optim.SGD(lr=0.1, momentum=0.9): b1 = g1 = 0.5 → p = 0.95; b2 = 0.9·0.5 + 0.5 = 0.95
    // → p = 0.95 − 0.095 = 0.855.
    let eng = Engine::new(1).unwrap();
    let mut p = vec![1.0f64];
    let mut opt = Optimizer::<f64>::new(&tc(OptimizerKind::Momentum, 0.1, 0.9), 1);
    opt.step(&eng, &mut p, &[0.5]);
    assert!(close(p[0], 0.95));
    opt.step(&eng, &mut p, &[0.5]);
    assert!(close(p[0], 0.855), "{}", p[0]);
}

#[test]
fn gd_step() {
    let eng = Engine::new(1).unwrap();
    let mut p = vec![1.0f64, 2.0];
    let mut opt = Optimizer::<f64>::new(&tc(OptimizerKind::Gd, 0.1, 0.0), 2);
    opt.step(&eng, &mut p, &[0.5, -1.0]);
    assert!(close(p[0], 0.95) && close(p[1], 2.1));
}

#[test]
fn parallel_updates_match_serial_ones() {
    // Large vectors take the multi-threaded path; results must equal the single-thread ones.
    let n = 300_000;
    let g: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let mut results = Vec::new();
    for threads in [1, 2] {
        let eng = Engine::new(threads).unwrap();
        for kind in [OptimizerKind::Gd, OptimizerKind::Momentum, OptimizerKind::Adam] {
            let mut p = vec![0.25f32; n];
            let mut opt = Optimizer::<f32>::new(&tc(kind, 1e-3, 0.9), n);
            opt.step(&eng, &mut p, &g);
            opt.step(&eng, &mut p, &g);
            results.push(p);
        }
    }
    assert_eq!(results[0], results[3]);
    assert_eq!(results[1], results[4]);
    assert_eq!(results[2], results[5]);
}

/// The training step ([`update`]) updates each layer as soon as its gradients are final and,
/// under plain GD with one example, descends a dense layer's weights without writing their
/// gradient. It must give the bits of a whole backward pass followed by `Optimizer::step`: every
/// optimizer (GD with per-parameter rates too), FCNs with and without bias, a CNN, one example
/// and a minibatch, one thread and two (the 784×200 layers take the parallel path).
#[test]
fn the_fused_training_step_gives_the_bits_of_backward_then_step() {
    let fcn = ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(200), ..Default::default() };
    let nets = [
        fcn.clone(),
        ModelConfig { bias: !fcn.bias, ..fcn },
        ModelConfig { arch: Arch::Cnn, depth: 3, channels: 4, kernel: 3, ..Default::default() },
    ];
    let kinds = [(OptimizerKind::Gd, false), (OptimizerKind::Gd, true), (OptimizerKind::Momentum, false), (OptimizerKind::Adam, false)];
    for cfg in &nets {
        for threads in [1, 2] {
            let eng = Engine::new(threads).unwrap();
            for (kind, scaled) in kinds {
                for n in [1, 3] {
                    let x: Vec<f32> = (0..n * 784).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
                    let mut fused = Net::<f32>::new(cfg, Shape::MNIST).unwrap();
                    fused.init(Init::TorchDefault, 1.0, 3);
                    let (mut plain, start) = (fused.clone(), fused.params.clone());
                    let np = fused.num_params();
                    let (mut of, mut op) = (Optimizer::new(&tc(kind, 0.05, 0.9), np), Optimizer::new(&tc(kind, 0.05, 0.9), np));
                    if scaled {
                        let s: Vec<f32> = (0..np).map(|i| 0.5 + (i % 3) as f32 * 0.25).collect();
                        of.set_lr_scale(s.clone()).unwrap();
                        op.set_lr_scale(s).unwrap();
                    }
                    let (mut wf, mut wp) = (fused.workspace(n, true), plain.workspace(n, true));
                    for _ in 0..3 {
                        forward_loss(&eng, &fused, &mut wf, &x, n);
                        update(&eng, &mut fused, &mut wf, &mut of, n);
                        forward_loss(&eng, &plain, &mut wp, &x, n);
                        plain.backward(&eng, &mut wp, n);
                        op.step(&eng, &mut plain.params, &plain.grads);
                    }
                    let what = format!("{} {kind:?} scaled {scaled} n {n} threads {threads}", cfg.label());
                    assert!(fused.params.iter().zip(&start).any(|(a, b)| a != b), "{what}: nothing trained");
                    let bits = |v: &[f32]| v.iter().map(|p| p.to_bits()).collect::<Vec<_>>();
                    assert!(bits(&fused.params) == bits(&plain.params), "{what}: the fused step's weights differ");
                }
            }
        }
    }
}

#[test]
fn bad_hyperparameters_are_rejected() {
    assert!(tc(OptimizerKind::Adam, 1e-3, 0.9).validate().is_ok());
    assert!(tc(OptimizerKind::Adam, -1.0, 0.0).validate().unwrap_err().to_string().contains("--lr"));
    assert!(tc(OptimizerKind::Adam, f64::NAN, 0.0).validate().unwrap_err().to_string().contains("--lr"));
    assert!(tc(OptimizerKind::Momentum, 0.1, 1.0).validate().unwrap_err().to_string().contains("--momentum"));
}

/// The train config of an optimizer.
fn tc(optimizer: OptimizerKind, lr: f64, momentum: f64) -> TrainConfig {
    TrainConfig { optimizer, lr, momentum, ..TrainConfig::default() }
}
