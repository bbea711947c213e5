//! **What it measures:** seconds for the eigenvalues of one attractor Jacobian (D × D, f64):
//! `eval::eigen::eigenvalues` (Hessenberg reduction, then the double-shift QR sweeps on the
//! active window, no Schur vectors) against nalgebra's full `Schur` decomposition, which
//! `attractor::eigen_magnitudes` used before. Also the SVD behind ‖J‖₂, for scale.
//! `BENCHMARKS.md` cites it.
//!
//! **Matrices:** the Jacobian of a depth-5 8-channel CNN (torch-default init) at an MNIST-sized
//! image, by central differences (`attractor::jacobian`, as `analyze` took it when the timings
//! in BENCHMARKS.md were made; it now reports `attractor::exact_jacobian`, a matrix of the same
//! kind); I + 0.05·U and U (U uniform in [-0.5, 0.5)).
//!
//! **Check first:** both give the same sorted |λ| to 1e-9 of the largest.
//!
//! Run: `cargo bench -p idcrisis --bench eigen` (`EIGEN_D=300` for another size; the CNN
//! Jacobian is used at D = 784 only).

mod common;

use common::{cpu, env_counts, values};
use idcrisis::engine::Engine;
use idcrisis::eval::{attractor, eigen};
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::Shape;
use nalgebra::DMatrix;
use std::time::Instant;

/// Median seconds of 3 calls.
fn seconds(f: &mut dyn FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[1]
}

/// |λ| of nalgebra's eigenvalues, largest first (as `attractor::eigen_magnitudes` sorts ours).
fn sorted_magnitudes(z: impl Iterator<Item = nalgebra::Complex<f64>>) -> Vec<f64> {
    let mut m: Vec<f64> = z.map(|z| z.norm()).collect();
    m.sort_by(|a, b| b.total_cmp(a));
    m
}

fn main() {
    let d = env_counts("EIGEN_D", &[784])[0];
    println!("eigen: seconds per D×D eigenvalue problem, D = {d}, 1 thread; {}", cpu());
    let mut cases: Vec<(&str, DMatrix<f64>)> = Vec::new();
    if d == Shape::MNIST.len() {
        let cfg = ModelConfig { arch: Arch::Cnn, depth: 5, channels: 8, kernel: 5, ..Default::default() };
        let mut net = Net::<f32>::new(&cfg, Shape::MNIST).unwrap();
        net.init(Init::TorchDefault, 1.0, 3);
        let eng = Engine::new(1).unwrap();
        let x: Vec<f32> = values(d, 0.3).iter().map(|v| v.abs()).collect();
        cases.push(("CNN d5 c8 Jacobian", attractor::jacobian(attractor::net_map(&net, &eng, 64), &x, 64)));
    }
    let u = values(d * d, 0.9);
    cases.push(("I + 0.05·U", DMatrix::from_fn(d, d, |i, j| (if i == j { 1.0 } else { 0.0 }) + 0.025 * u[i * d + j] as f64)));
    cases.push(("U", DMatrix::from_fn(d, d, |i, j| 0.5 * u[i * d + j] as f64)));
    println!("{:24} {:>10} {:>12} {:>8} {:>8} {:>10}", "matrix", "eigen (s)", "Schur (s)", "ratio", "SVD (s)", "ρ");
    for (name, j) in &cases {
        let new = attractor::eigen_magnitudes(j).unwrap();
        let schur = nalgebra::Schur::try_new(j.clone(), f64::EPSILON, 100 * d).expect("nalgebra's Schur converges on these");
        let old = sorted_magnitudes(schur.complex_eigenvalues().iter().copied());
        let diff = new.iter().zip(&old).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(diff <= 1e-9 * old[0].max(1e-300), "{name}: |λ| differ by {diff:e}");
        // Alternated, so that a noisy machine slows both alike.
        let (mut te, mut ts) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            te.push(seconds(&mut || drop(std::hint::black_box(eigen::eigenvalues(j).unwrap()))));
            ts.push(seconds(&mut || drop(std::hint::black_box(nalgebra::Schur::try_new(j.clone(), f64::EPSILON, 100 * d)))));
        }
        let te = te.into_iter().fold(f64::INFINITY, f64::min);
        let ts = ts.into_iter().fold(f64::INFINITY, f64::min);
        let tv = seconds(&mut || {
            std::hint::black_box(attractor::spectral_norm(j).unwrap());
        });
        println!("{name:24} {te:10.3} {ts:12.3} {:8.2} {tv:8.3} {:10.6}", te / ts, new[0]);
    }
}
