//! Theorem 1 (one-layer linear FCN) and the one-layer CNN's centre tap, checked against their
//! closed forms.

mod common;

use idcrisis::engine::{im2col, ConvGeom, Engine, Padding};
use idcrisis::eval::metrics::max_abs_diff;
use idcrisis::eval::probe;
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::nn::optim::OptimizerKind;
use idcrisis::nn::train::{train, Status, TrainConfig};
const PIXELS: usize = idcrisis::Shape::MNIST.len();

fn fcn1() -> ModelConfig {
    ModelConfig { arch: Arch::Fcn, depth: 1, act: Activation::Linear, bias: false, ..Default::default() }
}

/// W0 + (x̂ − W0 x̂) x̂ᵀ / ‖x̂‖², written out directly.
fn theorem1_weights(w0: &[f64], x: &[f64]) -> Vec<f64> {
    let nx: f64 = x.iter().map(|v| v * v).sum();
    let mut w = w0.to_vec();
    for i in 0..PIXELS {
        let wx: f64 = (0..PIXELS).map(|j| w0[i * PIXELS + j] * x[j]).sum();
        let r = x[i] - wx;
        for j in 0..PIXELS {
            w[i * PIXELS + j] += r * x[j] / nx;
        }
    }
    w
}

/// The tolerance of the Theorem 1 check, relative to the largest closed-form weight.
const THEOREM1_TOL: f64 = 1e-12;

/// Theorem 1's check: the trained weights `params` against the closed form from `w0` and `x`,
/// as the largest difference relative to the largest closed-form weight. `Err` (with the error)
/// when it is not below [`THEOREM1_TOL`].
fn check_theorem1(params: &[f64], w0: &[f64], x: &[f64]) -> Result<f64, String> {
    let want = theorem1_weights(w0, x);
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = max_abs_diff(params, &want) / scale;
    if err < THEOREM1_TOL {
        Ok(err)
    } else {
        Err(format!("weights differ from the closed form by {err:e} (relative)"))
    }
}

/// The one-layer linear FCN trained by GD on the "7" to convergence: (net, W0, x̂).
fn train_fcn1(seed: u64) -> (Net<f64>, Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = common::seven().iter().map(|&v| v as f64).collect();
    let nx: f64 = x.iter().map(|v| v * v).sum();
    let eng = Engine::new(2).unwrap();
    let mut net = Net::<f64>::new(&fcn1(), idcrisis::Shape::MNIST).unwrap();
    net.init(Init::TorchDefault, 1.0, seed);
    let w0 = net.params.clone();
    // The residual contracts by |1 − lr·2‖x̂‖²/784| per step: 0.5 with this lr.
    let lr = 0.5 * PIXELS as f64 / (2.0 * nx);
    let cfg = TrainConfig { optimizer: OptimizerKind::Gd, lr, momentum: 0.0, steps: 80, tol: 1e-30 };
    let out = train(&eng, &mut net, &x, 1, &cfg, &mut |_, _| true).unwrap();
    assert!(out.final_loss < 1e-28, "did not converge: {}", out.final_loss);
    (net, w0, x)
}

#[test]
fn theorem1_gd_converges_to_the_closed_form() {
    let x32 = common::seven();
    let (net, w0, x) = train_fcn1(11);
    let nx: f64 = x.iter().map(|v| v * v).sum();
    let eng = Engine::new(2).unwrap();
    check_theorem1(&net.params, &w0, &x).unwrap();

    // Outputs on the probes: f(x) = Π∥x + W0·Π⊥x.
    let probes = probe::paper_probes(&common::data_dir(), &x32, &[0.0, 0.5]).unwrap();
    for p in &probes {
        let v: Vec<f64> = p.image.iter().map(|&a| a as f64).collect();
        let c = v.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() / nx;
        let perp: Vec<f64> = v.iter().zip(&x).map(|(a, b)| a - c * b).collect();
        let pred: Vec<f64> = (0..PIXELS).map(|i| c * x[i] + (0..PIXELS).map(|j| w0[i * PIXELS + j] * perp[j]).sum::<f64>()).collect();
        let got = net.predict(&eng, &v, 1, 1);
        let s = pred.iter().fold(1e-12f64, |m, a| m.max(a.abs()));
        let e = max_abs_diff(&got, &pred) / s;
        assert!(e < 1e-10, "probe {}: relative error {e:e}", p.name);
    }
}

#[test]
fn theorem1_also_holds_in_f32_to_f32_precision() {
    let x = common::seven();
    let nx: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
    let eng = Engine::new(2).unwrap();
    let mut net = Net::<f32>::new(&fcn1(), idcrisis::Shape::MNIST).unwrap();
    net.init(Init::TorchDefault, 1.0, 12);
    let w0: Vec<f64> = net.params.iter().map(|&v| v as f64).collect();
    let lr = 0.5 * PIXELS as f64 / (2.0 * nx);
    let cfg = TrainConfig { optimizer: OptimizerKind::Gd, lr, momentum: 0.0, steps: 60, tol: 0.0 };
    train(&eng, &mut net, &x, 1, &cfg, &mut |_, _| true).unwrap();
    let want = theorem1_weights(&w0, &x.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let got: Vec<f64> = net.params.iter().map(|&a| a as f64).collect();
    let err = max_abs_diff(&got, &want) / scale;
    assert!(err < 1e-5, "f32 weights differ by {err:e}");
}

#[test]
fn theorem1_check_fails_for_weights_off_by_1e_9() {
    // The check above must be able to fail: the converged weights pass it, and the same weights
    // with one entry moved by 1e-9 (anywhere in the matrix, either sign) must not.
    let (net, w0, x) = train_fcn1(13);
    let ok = check_theorem1(&net.params, &w0, &x).unwrap();
    for (i, d) in [(0, 1e-9), (PIXELS * 400 + 215, -1e-9), (PIXELS * PIXELS - 1, 1e-9)] {
        let mut w = net.params.clone();
        w[i] += d;
        let got = check_theorem1(&w, &w0, &x);
        assert!(got.is_err(), "weight {i} off by {d:e} passed the check (error {got:?}, unperturbed {ok:e})");
    }
}

#[test]
fn one_layer_cnn_learns_the_centre_tap() {
    let x: Vec<f64> = common::seven().iter().map(|&v| v as f64).collect();
    let eng = Engine::new(2).unwrap();
    for k in [3usize, 5] {
        // The patch matrix P(x̂) [784, k²] must have full column rank: check via its Gram matrix.
        let g = ConvGeom::new(1, 28, 28, k, Padding::Zero);
        let mut cols = vec![0.0; k * k * PIXELS];
        im2col(&eng, &g, &x, &mut cols);
        let kk = k * k;
        let gram: Vec<f64> =
            (0..kk * kk).map(|ij| (0..PIXELS).map(|p| cols[(ij / kk) * PIXELS + p] * cols[(ij % kk) * PIXELS + p]).sum()).collect();
        let lmax = power_iteration(&gram, kk);
        let cfg = ModelConfig { arch: Arch::Cnn, depth: 1, kernel: k, bias: false, act: Activation::Linear, ..Default::default() };
        let mut net = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        net.init(Init::TorchDefault, 1.0, 3);
        let lr = PIXELS as f64 / (2.0 * lmax);
        let tc = TrainConfig { optimizer: OptimizerKind::Gd, lr, momentum: 0.0, steps: 200_000, tol: 1e-26 };
        let out = train(&eng, &mut net, &x, 1, &tc, &mut |_, _| true).unwrap();
        assert_eq!(out.status, Status::Converged, "k={k}: loss {}", out.final_loss);
        let centre = kk / 2;
        for (i, w) in net.params.iter().enumerate() {
            let want = if i == centre { 1.0 } else { 0.0 };
            assert!((w - want).abs() < 1e-6, "k={k}: tap {i} = {w}, expected {want}");
        }
    }
}

fn power_iteration(a: &[f64], n: usize) -> f64 {
    let mut v = vec![1.0; n];
    let mut lambda = 0.0;
    for _ in 0..500 {
        let w: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * v[j]).sum()).collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        lambda = norm / v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = w.iter().map(|x| x / norm).collect();
    }
    lambda
}
