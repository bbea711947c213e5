//! **What it measures:** the forward of one small-channel convolution layer, one image, one
//! thread: im2col + GEMM against [`idcrisis::engine::direct`] (padded copy + direct kernel; the
//! weight arrangement, done once per step in training, is outside the timing). BENCHMARKS.md
//! cites it for `auto`'s choice of the direct convolution under 16 channels.
//!
//! **Check first:** both give the same output (max relative difference < 1e-5).
//!
//! Run: `cargo bench -p idcrisis --bench directconv`.

mod common;

use common::{cpu, time, values};
use idcrisis::engine::*;

fn main() {
    let eng = Engine::new(1).unwrap();
    println!("directconv: one image, 1 thread, {}; direct kernel ISA {:?}", cpu(), winograd::Isa::detect());
    for (hw, k) in [(28, 3), (28, 5), (28, 7), (56, 5)] {
        for c in [4usize, 8, 12, 16] {
            let co = c;
            let g = ConvGeom::new(c, hw, hw, k, Padding::Zero);
            let x = values(c * hw * hw, 0.3);
            let wt: Vec<f32> = values(co * c * k * k, 1.1).iter().map(|v| v * 0.1).collect();
            let mut cols = vec![0f32; g.col_rows() * g.hw()];
            let mut y1 = vec![0f32; co * hw * hw];
            let mut y2 = vec![0f32; co * hw * hw];
            let mut xp = vec![0f32; direct::padded_len(c, hw, hw, k)];
            let mut wtt = vec![0f32; wt.len()];
            direct::arrange_weights(&wt, co, c, k, false, &mut wtt);
            let mut run_im2col = |y: &mut [f32]| {
                im2col(&eng, &g, &x, &mut cols);
                gemm(&eng, co, hw * hw, g.col_rows(), y, &wt, Trans::No, &cols, Trans::No, Acc::Overwrite);
            };
            let mut run_direct = |y: &mut [f32]| {
                direct::pad_into(&g, c, &x, &mut xp);
                direct::forward(&g, c, co, &wtt, None, &xp, y);
            };
            run_im2col(&mut y1);
            run_direct(&mut y2);
            let scale = y1.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
            let d = y1.iter().zip(&y2).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) / scale;
            assert!(d < 1e-5, "c={c} k={k}: direct differs from im2col by {d:e}");
            println!("{hw}x{hw} k={k} c={c}->{co}");
            let reps = 4000 / c;
            time("  im2col + gemm", reps, &mut || run_im2col(&mut y1));
            time("  direct", reps, &mut || run_direct(&mut y2));
        }
    }
}
