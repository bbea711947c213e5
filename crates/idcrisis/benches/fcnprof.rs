//! **What it measures:** the GEMM shapes of a batched FCN forward pass (100 images, 2048→2048):
//! how the `gemm` crate's packing and threading treat `y = x·Wᵀ` against `yᵀ = W·xᵀ`, and the
//! two row halves of `yᵀ` on separate threads. BENCHMARKS.md cites it for the choice of the
//! batched dense forward (W·xᵀ, then transpose).
//!
//! **Check first:** all three layouts give the same product as a naive f64 GEMM (max relative
//! difference < 1e-5) before anything is timed.
//!
//! Run: `cargo bench -p idcrisis --bench fcnprof [-- THREADS]`.

mod common;

use common::{cpu, max_rel, naive, time, values};
use idcrisis::engine::*;

fn main() {
    let threads: usize = std::env::args().skip(1).find_map(|s| s.parse().ok()).unwrap_or(2);
    let eng = Engine::new(threads).unwrap();
    let (n, inp, out) = (100, 2048, 2048);
    let x = values(n * inp, 0.5);
    let w: Vec<f32> = values(out * inp, 1.5).iter().map(|v| v * 0.02).collect();
    let mut y = vec![0f32; n * out];
    let mut yt = vec![0f32; n * out];
    let mut yh = vec![0f32; n * out];
    let h = out / 2;
    let al = Strides { batch: h * inp, row: inp, col: 1 };
    let bl = Strides { batch: 0, row: 1, col: inp };
    let cl = Strides { batch: h * n, row: n, col: 1 };
    // Correctness: y = x·Wᵀ against a naive product (Wᵀ built explicitly).
    let wt: Vec<f32> = (0..inp * out).map(|i| w[(i % out) * inp + i / out]).collect();
    let want = naive(n, out, inp, &x, &wt);
    let want_t: Vec<f64> = (0..out * n).map(|i| want[(i % n) * out + i / n]).collect();
    gemm(&eng, n, out, inp, &mut y, &x, Trans::No, &w, Trans::Yes, Acc::Overwrite);
    gemm(&eng, out, n, inp, &mut yt, &w, Trans::No, &x, Trans::Yes, Acc::Overwrite);
    gemm_batch(&eng, 2, h, n, inp, &mut yh, cl, &w, al, &x, bl, Acc::Overwrite);
    for (name, got, want) in [("x·Wᵀ", &y, &want), ("W·xᵀ", &yt, &want_t), ("W·xᵀ halves", &yh, &want_t)] {
        let d = max_rel(got, want);
        assert!(d < 1e-5, "{name}: max relative difference {d:e} from the naive product");
    }
    println!("fcnprof: batched FCN forward GEMMs, {n}×{inp}→{out}, {threads} threads, {}", cpu());
    time("y = x W^T (b transposed)", 50, &mut || gemm(&eng, n, out, inp, &mut y, &x, Trans::No, &w, Trans::Yes, Acc::Overwrite));
    time("y^T = W x^T (b transposed)", 50, &mut || gemm(&eng, out, n, inp, &mut yt, &w, Trans::No, &x, Trans::Yes, Acc::Overwrite));
    time("y^T halves on 2 threads", 50, &mut || gemm_batch(&eng, 2, h, n, inp, &mut yh, cl, &w, al, &x, bl, Acc::Overwrite));
    println!("flops per product {:.1} MF", 2.0 * (n * inp * out) as f64 / 1e6);
}
