//! **What it measures:** the per-transform-point products of one Winograd layer (F(4×4, 5×5),
//! one 28×28 image, 49 tiles, f32, one thread) as `WinoConv` lays out its transformed data:
//! tile-major, one row per tile, at the unpadded stride `P·c` against the padded
//! [`WinoConv::tile_stride`] (and, for scale, contiguous `[tiles, c]` matrices). Then one layer's
//! forward and backward as they run, and its kernel-transform products. BENCHMARKS.md cites it
//! for the tile stride.
//!
//! **Check first:** the three layouts give bit-identical products (the padding, NaN, unread).
//!
//! Run: `cargo bench -p idcrisis --bench winostride`.

mod common;

use common::{cpu, micros, values};
use idcrisis::engine::winograd::*;
use idcrisis::engine::*;

fn main() {
    let eng = Engine::new(1).unwrap();
    let (r, hw) = (5, 28);
    println!("winostride: F(4x4,5x5), one {hw}x{hw} image, f32, 1 thread, {}; µs", cpu());
    println!(
        "{:>4} {:>7} {:>7} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>8} {:>8}",
        "c", "P·c", "padded", "fwd P·c", "padded", "contig", "dW P·c", "padded", "contig", "layer fw", "bw"
    );
    for c in [16usize, 32, 48, 64] {
        let wc = WinoConv::new(4, r, c, c, hw, hw);
        let (p, t, cc) = (wc.mats.p(), wc.tiles(), c * c);
        let u = values(p * cc, 0.9);
        let ul = Strides { batch: cc, row: c, col: 1 };
        let mut du = vec![0f32; p * cc];
        // The forward's M = V·Uᵀ and the weight gradient's dU = Mᵀ·V per ξ, with the same
        // logical V [P, tiles, c] placed at tile rows `row` apart and ξ blocks `batch` apart;
        // returns both times and the products read back in logical order.
        let logical = values(p * t * c, 0.2);
        let mut products = |row: usize, batch: usize| -> (f64, f64, Vec<f32>) {
            let len = (t - 1) * row + (p - 1) * batch + c;
            let at = |xi: usize, i: usize, j: usize| xi * batch + i * row + j;
            let mut v = vec![f32::NAN; len];
            for xi in 0..p {
                for i in 0..t {
                    for j in 0..c {
                        v[at(xi, i, j)] = logical[(xi * t + i) * c + j];
                    }
                }
            }
            let mut mm = vec![f32::NAN; len];
            let tl = Strides { batch, row, col: 1 };
            let et = Strides { batch, row: 1, col: row };
            let fwd = micros(&mut || gemm_batch(&eng, p, t, c, c, &mut mm, tl, &v, tl, &u, ul, Acc::Overwrite));
            let dw = micros(&mut || gemm_batch(&eng, p, c, c, t, &mut du, ul, &mm, et, &v, tl, Acc::Overwrite));
            let mut out: Vec<f32> = (0..p)
                .flat_map(|xi| (0..t).flat_map(move |i| (0..c).map(move |j| (xi, i, j))))
                .map(|(xi, i, j)| mm[at(xi, i, j)])
                .collect();
            out.extend_from_slice(&du);
            (fwd, dw, out)
        };
        let (f0, d0, o0) = products(p * c, c);
        let (f1, d1, o1) = products(wc.tile_stride(c), c);
        let (f2, d2, o2) = products(c, t * c);
        let bits = |o: &[f32]| o.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(o0.iter().all(|x| x.is_finite()), "c={c}: a product read outside its matrices");
        assert_eq!(bits(&o0), bits(&o1), "c={c}: padded tile rows changed the products");
        assert_eq!(bits(&o0), bits(&o2), "c={c}: contiguous matrices changed the products");
        let x = values(c * hw * hw, 0.3);
        let wt: Vec<f32> = values(cc * r * r, 1.1).iter().map(|v| v * 0.1).collect();
        let dy = values(c * hw * hw, 0.7);
        let (mut y, mut dx, mut dwt) = (vec![0f32; c * hw * hw], vec![0f32; c * hw * hw], vec![0f32; wt.len()]);
        let mut scratch = vec![0f32; wc.scratch_len()];
        let mut store = vec![0f32; wc.store_len()];
        let io = Layouts { x_cl: true, y_cl: true };
        let fw = micros(&mut || wc.forward(&eng, &wt, None, &x, &mut y, io, Some(&mut store), &mut scratch, 1));
        let bw = micros(&mut || wc.backward(&eng, &wt, &mut dwt, &store, &dy, Some(&mut dx), io, &mut scratch, 1));
        println!(
            "{c:>4} {:>7} {:>7} | {f0:>9.1} {f1:>9.1} {f2:>9.1} | {d0:>9.1} {d1:>9.1} {d2:>9.1} | {fw:>8.1} {bw:>8.1}",
            p * c,
            wc.tile_stride(c)
        );
    }
}
