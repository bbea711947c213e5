//! **What it measures:** the rounding error of f32 convolutions against an f64 reference, im2col
//! against Winograd tiles, at the layer shapes the paper's CNNs use (k5/128, k3/32, k3/128,
//! k7/64 channels on 28×28): RMS error relative to the output's RMS, and the largest error.
//! BENCHMARKS.md cites it for the F(4×4, 5×5) tile choice; speed is measured by `idcrisis bench`.
//!
//! **Check:** every error must be below 3e-5 RMS relative (the bound the project's tests use);
//! the program fails otherwise. It times nothing, so it runs in a second.
//!
//! Run: `cargo bench -p idcrisis --bench winoacc`.

mod common;

use idcrisis::engine::winograd::Layouts;
use idcrisis::engine::{ConvAlgo, Engine, Padding};
use idcrisis::nn::layers::Conv2d;

fn conv<T: idcrisis::float::Float>(eng: &Engine, l: &Conv2d, p: &[T], x: &[T], y: &mut [T]) {
    let mut cols = vec![T::zero(); l.eval_cols_len()];
    let mut s = vec![T::zero(); l.scratch_len(1)];
    eng.install(|| l.forward(eng, p, x, y, Layouts::default(), &mut cols, &mut s, false, 1));
}

fn main() {
    println!("winoacc: f32 convolution error against f64, 28×28, {}", common::cpu());
    for (k, c) in [(5usize, 128usize), (3, 32), (3, 128), (7, 64)] {
        let wl = c * c * k * k;
        let l = Conv2d::new(c, c, 28, 28, k, Padding::Zero, 0..wl, None);
        let sd = (2.0 / (c * k * k) as f64).sqrt();
        let p64: Vec<f64> = (0..wl).map(|i| ((i as f64 * 12.9898).sin() * 43758.5453).fract() * sd * 1.7).collect();
        let x64: Vec<f64> = (0..c * 784).map(|i| ((i as f64 * 78.233).sin() * 12345.678).fract().abs()).collect();
        let p32: Vec<f32> = p64.iter().map(|v| *v as f32).collect();
        let x32: Vec<f32> = x64.iter().map(|v| *v as f32).collect();
        let e64 = Engine::new(2).unwrap().with_conv_algo(ConvAlgo::Im2col);
        let mut yref = vec![0f64; c * 784];
        conv(&e64, &l, &p64, &x64, &mut yref);
        let rms = (yref.iter().map(|v| v * v).sum::<f64>() / yref.len() as f64).sqrt();
        for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd] {
            let e = Engine::new(2).unwrap().with_conv_algo(algo);
            let mut y = vec![0f32; c * 784];
            conv(&e, &l, &p32, &x32, &mut y);
            let err = (y.iter().zip(&yref).map(|(a, b)| (*a as f64 - b).powi(2)).sum::<f64>() / y.len() as f64).sqrt() / rms;
            let mx = y.iter().zip(&yref).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            println!("k={k} c={c} {algo}: rms rel err {err:.2e}, max abs err / rms {:.2e}", mx / rms);
            assert!(err < 3e-5, "k={k} c={c} {algo}: rms relative error {err:e} ≥ 3e-5");
        }
    }
}
