//! The f32 rounding error of one convolution layer against an f64 im2col reference, shared by
//! `tests/winograd.rs` (the bound as a test) and `benches/winoacc.rs` (the table).
#![allow(dead_code)]

use idcrisis::engine::winograd::Layouts;
use idcrisis::engine::{ConvAlgo, Engine, Padding};
use idcrisis::float::Float;
use idcrisis::nn::layers::{Conv2d, Pass};

fn conv<T: Float>(eng: &Engine, l: &Conv2d, p: &[T], x: &[T], y: &mut [T]) {
    let mut cols = vec![T::zero(); l.eval_cols_len(1)];
    let mut s = vec![T::zero(); l.scratch_len(1)];
    l.forward(eng, p, x, y, Layouts::default(), &mut cols, &mut s, false, 1);
}

/// Errors of the f32 convolution by `algo` (k×k, `c` channels in and out, one 28×28 image of
/// fixed pseudo-random data), relative to the RMS of the f64 im2col output: `(rms error, max
/// error)`, and whether the layer actually ran Winograd.
pub fn errors(k: usize, c: usize, algo: ConvAlgo) -> (f64, f64, bool) {
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
    let e = Engine::new(2).unwrap().with_conv_algo(algo);
    // `conv` runs an evaluation-only forward.
    let winograd = l.winograd::<f32>(&e, Pass::Eval).is_some();
    let mut y = vec![0f32; c * 784];
    conv(&e, &l, &p32, &x32, &mut y);
    let err = (y.iter().zip(&yref).map(|(a, b)| (*a as f64 - b).powi(2)).sum::<f64>() / y.len() as f64).sqrt() / rms;
    let max = y.iter().zip(&yref).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max) / rms;
    (err, max, winograd)
}
