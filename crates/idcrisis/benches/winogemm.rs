//! **What it measures:** the per-transform-point products of one Winograd layer, as
//! [`gemm_batch`] runs them (f32, one thread), against the same products through the `gemm`
//! crate one call each, for 8 to 64 channels: the forward/input-gradient shape
//! (`P × [tiles, c] · [c, c]`) and the weight-gradient shape (`P × [c, tiles] · [tiles, c]`),
//! F(4×4, 5×5) (P = 64) on one 28×28 image (49 tiles) and on a chunk of 10 images. This sets
//! `gemm_small::MAX_N`, the widest product `gemm_batch` computes itself.
//!
//! **Check first:** both agree with a naive f64 product to 1e-5 relative.
//!
//! Run: `cargo bench -p idcrisis --bench winogemm`.

mod common;

use common::{cpu, max_rel, micros, naive, values};
use idcrisis::engine::*;

/// The `gemm` crate, one call per product, `C_b = A_b · B_b` with all three stacked row-major.
#[allow(clippy::too_many_arguments)]
fn by_crate(count: usize, m: usize, n: usize, k: usize, c: &mut [f32], a: &[f32], b: &[f32]) {
    for i in 0..count {
        // SAFETY: the three buffers hold `count` stacked row-major products of these sizes.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr().add(i * m * n),
                1,
                n as isize,
                false,
                a.as_ptr().add(i * m * k),
                1,
                k as isize,
                b.as_ptr().add(i * k * n),
                1,
                n as isize,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }
}

fn main() {
    let eng = Engine::new(1).unwrap();
    let p = 64;
    println!("winogemm: {p} products per call (F(4x4,5x5)), f32, 1 thread, {}", cpu());
    println!("{:>8} {:>5} {:>6} {:>6} {:>12} {:>12} {:>7}", "shape", "c", "m", "k", "ours µs", "crate µs", "ratio");
    for c in [8, 16, 20, 32, 48, 64] {
        for (shape, m, n, k) in [("fwd", 49, c, c), ("fwd", 490, c, c), ("dW", c, c, 49), ("dW", c, c, 490)] {
            let a = values(p * m * k, 0.25);
            let b = values(p * k * n, 0.75);
            let mut ours = vec![0f32; p * m * n];
            let mut theirs = vec![0f32; p * m * n];
            let st = |rows: usize, cols: usize| Strides { batch: rows * cols, row: cols, col: 1 };
            let mut run_ours = || gemm_batch(&eng, p, m, n, k, &mut ours, st(m, n), &a, st(m, k), &b, st(k, n), Acc::Overwrite);
            run_ours();
            by_crate(p, m, n, k, &mut theirs, &a, &b);
            for i in [0, p - 1] {
                let want = naive(m, n, k, &a[i * m * k..(i + 1) * m * k], &b[i * k * n..(i + 1) * k * n]);
                for (name, got) in [("ours", &ours), ("crate", &theirs)] {
                    let d = max_rel(&got[i * m * n..(i + 1) * m * n], &want);
                    assert!(d < 1e-5, "{name} {shape} c={c} product {i}: max relative difference {d:e}");
                }
            }
            let t_ours = micros(&mut || gemm_batch(&eng, p, m, n, k, &mut ours, st(m, n), &a, st(m, k), &b, st(k, n), Acc::Overwrite));
            let t_crate = micros(&mut || by_crate(p, m, n, k, &mut theirs, &a, &b));
            println!("{shape:>8} {c:>5} {m:>6} {k:>6} {t_ours:>12.1} {t_crate:>12.1} {:>7.2}", t_ours / t_crate);
        }
    }
}
