//! **What it measures:** one 128-channel 5×5 Winograd layer (F(4×4, 5×5), one 28×28 image,
//! f32, channel-last in and out) as a training step runs it: its forward (keeping the
//! transformed input) and its backward (weight and input gradients), on 1 and 2 threads, in
//! microseconds. Before each call the weights are rewritten, as Adam rewrites them between
//! steps, so the kernel transforms read them from memory, not from a warm cache. BENCHMARKS.md
//! cites it for the kernel-transform changes.
//!
//! **Check first:** the outputs and gradients are finite and the same bits on 1 and 2 threads.
//!
//! Run: `cargo bench -p idcrisis --bench winolayer` (`WL_C=128` and `WL_T=2` pick one channel
//! count and one thread count; each takes a comma-separated list).

mod common;

use common::{cpu, env_counts, micros, values};
use idcrisis::engine::winograd::*;
use idcrisis::engine::*;

fn main() {
    let (r, hw) = (5, 28);
    println!("winolayer: F(4x4,5x5), one {hw}x{hw} image, f32, {}; µs per call (weights rewritten before each)", cpu());
    println!("{:>4} {:>7} {:>9} {:>9}", "c", "threads", "forward", "backward");
    for c in env_counts("WL_C", &[64, 128]) {
        let wc = WinoConv::new(4, r, c, c, hw, hw);
        let x = values(c * hw * hw, 0.3);
        let w0: Vec<f32> = values(c * c * r * r, 1.1).iter().map(|v| v * 0.1).collect();
        let dy = values(c * hw * hw, 0.7);
        let io = Layouts { x_cl: true, y_cl: true };
        let mut results: Vec<Vec<u32>> = Vec::new();
        for threads in env_counts("WL_T", &[1, 2]) {
            let eng = Engine::new(threads).unwrap();
            let mut wt = w0.clone();
            let (mut y, mut dx, mut dw) = (vec![0f32; c * hw * hw], vec![0f32; c * hw * hw], vec![0f32; wt.len()]);
            let mut scratch = vec![0f32; wc.scratch_len()];
            let mut store = vec![0f32; wc.store_len()];
            // Rewrite the weights with their own values (what Adam's pass does to the cache).
            let touch = |wt: &mut [f32]| wt.iter_mut().for_each(|v| *v = std::hint::black_box(*v));
            let fw = micros(&mut || {
                touch(&mut wt);
                wc.forward(&eng, &wt, None, &x, &mut y, io, Some(&mut store), &mut scratch, 1)
            });
            let bw = micros(&mut || {
                touch(&mut wt);
                wc.backward(&eng, &wt, &mut dw, &store, &dy, Some(&mut dx), io, &mut scratch, 1)
            });
            println!("{c:>4} {threads:>7} {fw:>9.1} {bw:>9.1}");
            let out: Vec<u32> = y.iter().chain(&dx).chain(&dw).map(|v| v.to_bits()).collect();
            assert!(y.iter().chain(&dx).chain(&dw).all(|v| v.is_finite()), "c={c}: a non-finite output");
            results.push(out);
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "c={c}: 1 and 2 threads differ");
    }
}
