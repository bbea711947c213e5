//! Training S nets together ([`idcrisis::nn::group`]) gives bit-identical weights, losses, step
//! counts and statuses to training each alone; for every optimizer, with members that stop at
//! different steps, one that diverges and one that is interrupted. Groups that mix architectures
//! are refused.

mod common;

use idcrisis::engine::{ConvAlgo, Engine};
use idcrisis::nn::group::{train_group, train_group_with, Member, Schedule};
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::nn::optim::OptimizerKind;
use idcrisis::nn::train::{train, Status, TrainConfig, TrainOutcome};
use idcrisis::{Error, Shape};

/// A small CNN (3×3, 8 channels, 3 layers) and a small FCN on MNIST-shaped images.
fn archs() -> [ModelConfig; 2] {
    [
        ModelConfig { arch: Arch::Cnn, depth: 3, channels: 8, kernel: 3, ..Default::default() },
        ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(64), ..Default::default() },
    ]
}

/// Two different training images: the "7" and the "7" mirrored left to right.
fn images() -> [Vec<f32>; 2] {
    let seven = common::seven();
    let mirrored: Vec<f32> = (0..28 * 28).map(|i| seven[(i / 28) * 28 + 27 - i % 28]).collect();
    [seven, mirrored]
}

fn net(cfg: &ModelConfig, seed: u64) -> Net<f32> {
    let mut n = Net::<f32>::new(cfg, Shape::MNIST).unwrap();
    n.init(Init::TorchDefault, 1.0, seed);
    n
}

fn solo(cfg: &ModelConfig, seed: u64, x: &[f32], tc: &TrainConfig, threads: usize) -> (Vec<f32>, TrainOutcome) {
    let eng = Engine::new(threads).unwrap().with_conv_algo(ConvAlgo::Auto);
    let mut n = net(cfg, seed);
    let out = train(&eng, &mut n, x, 1, tc, &mut |_, _| true).unwrap();
    (n.params, out)
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
}

fn same_losses(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
}

/// The learning rate of each optimizer that trains these nets, and one that blows them up.
fn rates(kind: OptimizerKind) -> (f64, f64) {
    match kind {
        OptimizerKind::Gd => (0.5, 1e6),
        OptimizerKind::Momentum => (0.05, 1e6),
        OptimizerKind::Adam => (1e-3, 1e30),
    }
}

#[test]
fn a_group_is_bit_identical_to_training_each_net_alone() {
    let xs = images();
    for cfg in archs() {
        for kind in [OptimizerKind::Gd, OptimizerKind::Momentum, OptimizerKind::Adam] {
            let (lr, blow_up) = rates(kind);
            let base = TrainConfig { optimizer: kind, lr, momentum: 0.9, steps: 40, tol: 0.0 };
            // A tolerance the first net crosses mid-run, so that it stops converged before the
            // others (taken from its own solo losses: the loss halfway between steps 11 and 12).
            let (_, probe) = solo(&cfg, 1, &xs[0], &base, 1);
            let mid = (probe.losses[11] + probe.losses[12]) / 2.0;
            let tcs = [
                TrainConfig { tol: mid, ..base.clone() },
                TrainConfig { steps: 25, lr: lr * 0.5, ..base.clone() },
                base.clone(),
                TrainConfig { lr: blow_up, ..base.clone() },
            ];
            let setups: Vec<(u64, usize)> = vec![(1, 0), (2, 1), (3, 0), (4, 1)];
            let alone: Vec<(Vec<f32>, TrainOutcome)> =
                setups.iter().zip(&tcs).map(|(&(seed, img), tc)| solo(&cfg, seed, &xs[img], tc, 1)).collect();
            let label = format!("{} {kind:?}", cfg.label());
            assert_eq!(alone[0].1.status, Status::Converged, "{label}: member 0 must converge early");
            assert_eq!(alone[1].1.status, Status::MaxSteps, "{label}");
            assert_eq!(alone[3].1.status, Status::Diverged, "{label}: member 3 must diverge");
            let steps: Vec<u64> = alone.iter().map(|a| a.1.steps).collect();
            assert!(
                steps[0] < steps[1] && steps[1] < steps[2] && steps[3] < steps[0],
                "{label}: members must stop at different steps, got {steps:?}"
            );

            for schedule in [Schedule::Lockstep, Schedule::PerNet] {
                let label = format!("{label} {schedule:?}");
                let mut nets: Vec<Net<f32>> = setups.iter().map(|&(seed, _)| net(&cfg, seed)).collect();
                let members: Vec<Member<f32>> = nets
                    .iter_mut()
                    .zip(&setups)
                    .zip(&tcs)
                    .map(|((n, &(_, img)), tc)| Member { net: n, x: &xs[img], n: 1, cfg: tc })
                    .collect();
                let eng = Engine::new(2).unwrap();
                let outs = train_group_with(&eng, members, schedule, &|_, _, _| true).unwrap();
                for (i, ((n, out), (params, want))) in nets.iter().zip(outs).zip(&alone).enumerate() {
                    let out = out.unwrap();
                    assert_eq!(out.status, want.status, "{label} member {i}");
                    assert_eq!(out.steps, want.steps, "{label} member {i}");
                    assert!(same_losses(&out.losses, &want.losses), "{label} member {i}: losses differ");
                    if want.status != Status::Diverged {
                        assert!(same_bits(&n.params, params), "{label} member {i}: weights differ from the solo run");
                    }
                }
            }
        }
    }
}

/// Solo runs with 1 and 4 threads, on nets large enough that the GEMMs (above 48·48·256
/// multiply-adds), the im2col / Winograd transforms and the elementwise kernels (above 32768
/// elements) really split over threads: a 784-wide FCN, and a 16-channel CNN under each
/// convolution algorithm.
#[test]
fn the_solo_runs_it_matches_do_not_depend_on_the_thread_count() {
    let xs = images();
    let cnn = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 16, kernel: 3, ..Default::default() };
    let fcn = ModelConfig { arch: Arch::Fcn, depth: 3, ..Default::default() };
    for (cfg, algo) in [(&fcn, ConvAlgo::Auto), (&cnn, ConvAlgo::Im2col), (&cnn, ConvAlgo::Winograd)] {
        let tc = TrainConfig { optimizer: OptimizerKind::Adam, lr: 1e-3, steps: 10, tol: 0.0, ..Default::default() };
        let run = |threads: usize| {
            let eng = Engine::new(threads).unwrap().with_conv_algo(algo);
            let mut n = net(cfg, 5);
            let out = train(&eng, &mut n, &xs[0], 1, &tc, &mut |_, _| true).unwrap();
            (n.params, out.losses)
        };
        let ((a, la), (b, lb)) = (run(1), run(4));
        assert!(same_bits(&a, &b) && same_losses(&la, &lb), "{} {algo:?}: 1 and 4 threads differ", cfg.label());
    }
}

#[test]
fn an_interrupted_member_stops_alone() {
    let xs = images();
    let cfg = &archs()[0];
    let tc = TrainConfig { optimizer: OptimizerKind::Momentum, lr: 0.05, steps: 20, tol: 0.0, ..Default::default() };
    for schedule in [Schedule::Lockstep, Schedule::PerNet] {
        let mut nets = [net(cfg, 1), net(cfg, 2)];
        let members: Vec<Member<f32>> = nets.iter_mut().map(|n| Member { net: n, x: &xs[0], n: 1, cfg: &tc }).collect();
        let outs = train_group_with(&Engine::new(2).unwrap(), members, schedule, &|member, step, _| !(member == 1 && step == 7)).unwrap();
        assert!(matches!(outs[1], Err(Error::Interrupted { step: 7 })), "{schedule:?} member 1: {:?}", outs[1].as_ref().map(|o| o.steps));
        let (params, want) = solo(cfg, 1, &xs[0], &tc, 1);
        let out = outs[0].as_ref().unwrap();
        assert_eq!(out.steps, want.steps);
        assert!(same_bits(&nets[0].params, &params), "{schedule:?}: the member that went on must match its solo run");
    }
}

#[test]
fn a_group_that_mixes_architectures_is_refused() {
    let xs = images();
    let tc = TrainConfig::default();
    let a = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 8, kernel: 3, ..Default::default() };
    for other in [
        ModelConfig { depth: 4, ..a.clone() },
        ModelConfig { channels: 4, ..a.clone() },
        ModelConfig { bias: false, ..a.clone() },
        ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(64), ..Default::default() },
    ] {
        let (mut n0, mut n1) = (net(&a, 1), net(&other, 2));
        let before = n1.params.clone();
        let members = vec![Member { net: &mut n0, x: &xs[0], n: 1, cfg: &tc }, Member { net: &mut n1, x: &xs[0], n: 1, cfg: &tc }];
        let err = train_group(&Engine::new(1).unwrap(), members, &|_, _, _| true).expect_err("a mixed group must be refused");
        let msg = err.to_string();
        assert!(msg.contains("group") && msg.contains("member 1") && msg.contains(&other.label()), "{msg}");
        assert_eq!(n1.params, before, "a refused group trains nothing");
    }
    // Inputs that do not fit the net are refused too.
    let mut n0 = net(&a, 1);
    let members = vec![Member { net: &mut n0, x: &xs[0][..100], n: 1, cfg: &tc }];
    let msg = train_group(&Engine::new(1).unwrap(), members, &|_, _, _| true).expect_err("short input").to_string();
    assert!(msg.contains("member 0") && msg.contains("100 input values"), "{msg}");
}
