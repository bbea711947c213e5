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

#[path = "../tests/conv_error/mod.rs"]
mod conv_error;

use idcrisis::engine::ConvAlgo;

fn main() {
    println!("winoacc: f32 convolution error against f64, 28×28, {}", common::cpu());
    for (k, c) in [(5usize, 128usize), (3, 32), (3, 128), (7, 64)] {
        for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd] {
            let (err, max, _) = conv_error::errors(k, c, algo);
            println!("k={k} c={c} {algo}: rms rel err {err:.2e}, max abs err / rms {max:.2e}");
            assert!(err < 3e-5, "k={k} c={c} {algo}: rms relative error {err:e} ≥ 3e-5");
        }
    }
}
