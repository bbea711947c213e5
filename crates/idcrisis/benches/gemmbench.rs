//! **What it measures:** the three GEMMs of one 128-channel 5×5 conv layer on 28×28 by im2col
//! (forward W·cols, weight gradient dY·colsᵀ, input gradient Wᵀ·dY), a 1024³ GEMM for the
//! machine's peak, and im2col / col2im themselves. BENCHMARKS.md's per-layer GEMM times.
//!
//! **Check first:** the forward product against a naive f64 GEMM (max relative difference
//! < 1e-5), and col2im as the adjoint of im2col (`⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩` to 1e-4).
//!
//! Run: `cargo bench -p idcrisis --bench gemmbench [-- THREADS]`.

mod common;

use common::{cpu, max_rel, naive, time, values};
use idcrisis::engine::*;

fn main() {
    let threads: usize = std::env::args().skip(1).find_map(|s| s.parse().ok()).unwrap_or(2);
    let eng = Engine::new(threads).unwrap();
    let (co, ckk, hw) = (128, 3200, 784);
    let w: Vec<f32> = values(co * ckk, 0.25).iter().map(|v| v * 0.02).collect();
    let cols = values(ckk * hw, 0.75);
    let mut y = vec![0f32; co * hw];
    let mut dw = vec![0f32; co * ckk];
    let mut dcols = vec![0f32; ckk * hw];
    let g = ConvGeom::new(128, 28, 28, 5, Padding::Zero);
    let x = values(128 * 784, 2.5);
    let mut xo = vec![0f32; 128 * 784];
    let mut c2 = vec![0f32; ckk * hw];
    // Correctness before timing.
    gemm(&eng, co, hw, ckk, &mut y, &w, Trans::No, &cols, Trans::No, Acc::Overwrite);
    let d = max_rel(&y, &naive(co, hw, ckk, &w, &cols));
    assert!(d < 1e-5, "forward GEMM: max relative difference {d:e} from the naive product");
    let c = values(ckk * hw, 3.5);
    im2col(&eng, &g, &x, &mut c2);
    col2im(&eng, &g, &c, &mut xo);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
    let (lhs, rhs) = (dot(&c2, &c), dot(&x, &xo));
    assert!((lhs - rhs).abs() <= 1e-4 * lhs.abs().max(rhs.abs()), "col2im is not im2col's adjoint: {lhs} vs {rhs}");
    println!("gemmbench: conv 128→128, 5×5, 28×28 by im2col, {threads} threads, {}", cpu());
    time("fwd W·cols", 20, &mut || gemm(&eng, co, hw, ckk, &mut y, &w, Trans::No, &cols, Trans::No, Acc::Overwrite));
    time("dW dY·colsT", 20, &mut || gemm(&eng, co, ckk, hw, &mut dw, &y, Trans::No, &cols, Trans::Yes, Acc::Add));
    time("dcols WT·dY", 20, &mut || gemm(&eng, ckk, hw, co, &mut dcols, &w, Trans::Yes, &y, Trans::No, Acc::Overwrite));
    let n = 1024;
    let a = values(n * n, 4.5);
    let mut c = vec![0f32; n * n];
    let ms = time("1024^3", 20, &mut || gemm(&eng, n, n, n, &mut c, &a, Trans::No, &a, Trans::No, Acc::Overwrite));
    println!("1024^3: {:.1} GFLOP/s", 2.0 * (n * n * n) as f64 / 1e6 / ms);
    time("im2col", 20, &mut || im2col(&eng, &g, &x, &mut c2));
    time("col2im", 20, &mut || col2im(&eng, &g, &dcols, &mut xo));
    println!("flops per conv GEMM: {:.3} GF", 2.0 * (co * ckk * hw) as f64 / 1e9);
}
