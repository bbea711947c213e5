//! Scientific checks that can fail for a real reason: a 1-layer CNN generalizes (identity) on
//! the digit probes; a 6-layer ReLU FCN memorizes (constant); and the paper's direction: depth
//! moves a CNN trained with SGD + momentum from identity towards constant, and the 6-layer ReLU
//! FCN is more constant than the 1-layer linear one (Fig. 2's FCN rows).

mod common;

use idcrisis::experiment::config::RunConfig;
use idcrisis::experiment::run::{execute, execute_group, RunOptions};
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, ModelConfig};
use idcrisis::nn::optim::OptimizerKind;
use idcrisis::nn::train::TrainConfig;
use std::sync::OnceLock;

fn go(cfg: &RunConfig, tag: &str) -> idcrisis::experiment::run::Evaluation {
    let tmp = common::tempdir(tag);
    let out = tmp.join("run");
    execute(cfg, RunOptions { data_dir: common::data_dir(), out, progress: &mut |_, _| true }).unwrap().evaluation.unwrap()
}

#[test]
fn one_layer_cnn_learns_the_identity_on_digits() {
    let mut c = RunConfig { model: ModelConfig { arch: Arch::Cnn, depth: 1, kernel: 5, ..Default::default() }, ..Default::default() };
    c.threads = 2;
    let ev = go(&c, "cnn1");
    let digits = &ev.categories["mnist"];
    assert!(digits.corr_identity > 0.95, "corr to identity on digits {}", digits.corr_identity);
    assert!(ev.categories["blend"].corr_identity > 0.95);
}

/// An FCN of width 784 as in Fig. 2, trained with plain GD, lr 0.1, to MSE < 1e-4 or 5000 steps.
fn fcn_fig2(depth: usize, act: Activation, tag: &str) -> idcrisis::experiment::run::Evaluation {
    let mut c =
        RunConfig { model: ModelConfig { arch: Arch::Fcn, depth, width: Some(784), act, ..Default::default() }, ..Default::default() };
    c.train.optimizer = OptimizerKind::Gd;
    c.train.lr = 0.1;
    c.train.steps = 5000;
    c.threads = 2;
    go(&c, tag)
}

/// The 6-layer ReLU FCN's evaluation, shared by the tests that need it (one training run).
fn fcn6() -> &'static idcrisis::experiment::run::Evaluation {
    static EV: OnceLock<idcrisis::experiment::run::Evaluation> = OnceLock::new();
    EV.get_or_init(|| fcn_fig2(6, Activation::Relu, "fcn6"))
}

#[test]
fn six_layer_relu_fcn_memorizes_the_seven() {
    let paper = &fcn6().categories["paper"];
    assert!(paper.corr_constant > 0.9, "corr to constant {}", paper.corr_constant);
    assert!(paper.corr_identity < 0.5);
}

#[test]
fn fig2_fcn_rows_six_relu_layers_are_more_constant_than_one_linear_layer() {
    let lin = fcn_fig2(1, Activation::Linear, "fcn1");
    let (l, r) = (&lin.categories["paper"], &fcn6().categories["paper"]);
    println!(
        "1-layer linear: identity {:.3} constant {:.3}; 6-layer ReLU: identity {:.3} constant {:.3}",
        l.corr_identity, l.corr_constant, r.corr_identity, r.corr_constant
    );
    assert!(lin.train_mse < 1e-4 && fcn6().train_mse < 1e-3, "not fitted: {} {}", lin.train_mse, fcn6().train_mse);
    assert!(
        r.corr_constant - l.corr_constant >= 0.2,
        "corr to constant: 6-layer ReLU {} vs 1-layer linear {}",
        r.corr_constant,
        l.corr_constant
    );
}

/// A k5, 16-channel CNN config trained with SGD + momentum 0.9, lr 0.01 (the protocol under
/// which deep CNNs memorize), to MSE < `tol` or `steps`.
fn cnn_momentum(depth: usize, steps: u64, tol: f64, seed: u64) -> RunConfig {
    let mut c =
        RunConfig { model: ModelConfig { arch: Arch::Cnn, depth, channels: 16, kernel: 5, ..Default::default() }, ..Default::default() };
    c.train = TrainConfig { optimizer: OptimizerKind::Momentum, lr: 0.01, momentum: 0.9, steps, tol };
    c.seed = seed;
    c
}

#[test]
fn depth_moves_a_momentum_trained_cnn_from_identity_to_constant() {
    let mut one = cnn_momentum(1, 2000, 1e-4, 0);
    one.threads = 2;
    let shallow = go(&one, "cnn-d1");
    let s = &shallow.categories["paper"];
    // The deep seeds train together, one net per thread; each is bit-identical to a run alone.
    let dir = common::tempdir("cnn-deep");
    let runs: Vec<(RunConfig, std::path::PathBuf)> =
        (0..DEEP_SEEDS).map(|seed| (cnn_momentum(DEEP, DEEP_STEPS, DEEP_TOL, seed), dir.join(format!("seed-{seed}")))).collect();
    let deep: Vec<_> = execute_group(&runs, &common::data_dir(), 2).into_iter().map(|r| r.unwrap().evaluation.unwrap()).collect();
    println!("depth 1: identity {:.3} constant {:.3} (mse {:.1e})", s.corr_identity, s.corr_constant, shallow.train_mse);
    let mut fitted = 0;
    for (seed, ev) in deep.iter().enumerate() {
        let d = &ev.categories["paper"];
        println!("depth {DEEP} seed {seed}: identity {:.3} constant {:.3} (mse {:.1e})", d.corr_identity, d.corr_constant, ev.train_mse);
        if ev.train_mse >= DEEP_MSE || ev.train_mse.is_nan() {
            // Not fitted, so it says nothing about which function a fitted net picks: either a
            // loss spike killed every ReLU (one flat output, correlated with nothing) or the cap
            // came inside a spike. Only the count below bounds these.
            let collapsed = d.corr_identity.abs() < 1e-3 && d.corr_constant.abs() < 1e-3;
            println!("depth {DEEP} seed {seed} did not fit (collapsed to a flat output: {collapsed})");
            continue;
        }
        fitted += 1;
        assert!(
            s.corr_identity - d.corr_identity > 0.3,
            "corr to identity: depth 1 {} vs depth {DEEP} seed {seed} {}",
            s.corr_identity,
            d.corr_identity
        );
        assert!(
            d.corr_constant > s.corr_constant,
            "corr to constant: depth 1 {} vs depth {DEEP} seed {seed} {}",
            s.corr_constant,
            d.corr_constant
        );
    }
    assert!(fitted >= 2, "only {fitted} of {DEEP_SEEDS} depth-{DEEP} seeds fitted the seven (MSE < {DEEP_MSE})");
}

/// The deep CNN of the depth test: depth, seeds, step cap, the MSE at which a run stops and the
/// training MSE that counts as fitted. Measured (16 channels, test profile): depth 12 is not deep
/// enough (after 4000 steps, MSE 8.7e-4, paper probes corr-to-identity 0.39 but corr-to-constant
/// 0.15, below depth 1's 0.17). Depth 20 under this protocol sits at the edge of stability:
/// every run has loss spikes (to 0.1-0.3 after step 300), and a spike can kill every ReLU, after
/// which the net outputs the flat mean image for good (MSE 9.22e-2, corr 0 to both). Which seed
/// does so depends on the last bits of the arithmetic: of seeds 0-5, none collapsed with the
/// `gemm` crate's Winograd products, seed 0 did with `engine::gemm_small` alone, and none
/// again once the output transform used its sign pairs (2026-12-03; all four seeds here then
/// reach MSE 3.0e-3). The others fit: MSE < 1e-2 by step 2000-3600 (a seed could also sit
/// inside a spike at the cap), corr-to-identity 0.16-0.18,
/// corr-to-constant 0.98-1.00 (depth 1 after 2000 steps: 0.998 and 0.17). So the test trains
/// four seeds, needs at least two fitted and checks every fitted one.
const DEEP: usize = 20;
const DEEP_SEEDS: u64 = 4;
const DEEP_STEPS: u64 = 4000;
const DEEP_TOL: f64 = 3e-3;
const DEEP_MSE: f64 = 1e-2;
