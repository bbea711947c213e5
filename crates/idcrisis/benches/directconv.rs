//! **What it measures:** a direct same-padded convolution for small channel counts (output rows
//! of 16 pixels × all output channels held in registers, AVX-512 + FMA) against im2col + GEMM,
//! forward only, one image, one thread. Prototype for the throughput issue's "direct convolution
//! for small channel counts".
//!
//! **Check first:** the direct result matches im2col + GEMM (max relative difference < 1e-5).
//!
//! Run: `cargo bench -p idcrisis --bench directconv`.

mod common;

use common::{cpu, time, values};
use idcrisis::engine::*;

const LANE: usize = 16;

/// `y [co, h, w] = W ⋆ x` with `wtt [c, k, k, co]` (weights tap-major, output channel last) and
/// `xp [c, h + k − 1, wp]` the zero-padded input; two 16-pixel chunks per pass, explicit AVX-512.
#[target_feature(enable = "avx512f,fma")]
unsafe fn direct512<const CO: usize>(c: usize, h: usize, w: usize, k: usize, wtt: &[f32], xp: &[f32], wp: usize, y: &mut [f32]) {
    use std::arch::x86_64::*;
    let hp = h + k - 1;
    assert!(xp.len() >= c * hp * wp && wtt.len() >= c * k * k * CO && wp >= w.div_ceil(2 * LANE) * 2 * LANE + k - 1);
    let mut tmp = [0f32; 2 * LANE];
    for row in 0..h {
        let mut x0 = 0;
        while x0 < w {
            let mut a0 = [_mm512_setzero_ps(); CO];
            let mut a1 = [_mm512_setzero_ps(); CO];
            for ci in 0..c {
                for ky in 0..k {
                    let xr = xp.as_ptr().add((ci * hp + row + ky) * wp + x0);
                    for kx in 0..k {
                        let x_0 = _mm512_loadu_ps(xr.add(kx));
                        let x_1 = _mm512_loadu_ps(xr.add(kx + LANE));
                        let wv = wtt.as_ptr().add(((ci * k + ky) * k + kx) * CO);
                        for co in 0..CO {
                            let b = _mm512_set1_ps(*wv.add(co));
                            a0[co] = _mm512_fmadd_ps(b, x_0, a0[co]);
                            a1[co] = _mm512_fmadd_ps(b, x_1, a1[co]);
                        }
                    }
                }
            }
            for co in 0..CO {
                _mm512_storeu_ps(tmp.as_mut_ptr(), a0[co]);
                _mm512_storeu_ps(tmp.as_mut_ptr().add(LANE), a1[co]);
                let out = &mut y[(co * h + row) * w + x0..(co * h + row + 1) * w];
                let n = out.len().min(2 * LANE);
                out[..n].copy_from_slice(&tmp[..n]);
            }
            x0 += 2 * LANE;
        }
    }
}

fn pad(c: usize, h: usize, w: usize, k: usize, x: &[f32], xp: &mut [f32], wp: usize) {
    let (p, hp) = (k / 2, h + k - 1);
    for ci in 0..c {
        for r in 0..h {
            xp[(ci * hp + r + p) * wp + p..][..w].copy_from_slice(&x[(ci * h + r) * w..][..w]);
        }
    }
}

fn main() {
    let eng = Engine::new(1).unwrap();
    println!("directconv: one image, 1 thread, {}", cpu());
    for (hw, k) in [(28, 3), (28, 5), (56, 5)] {
        for c in [4usize, 8, 12, 16] {
            let co = c;
            let g = ConvGeom::new(c, hw, hw, k, Padding::Zero);
            let x = values(c * hw * hw, 0.3);
            let wt: Vec<f32> = values(co * c * k * k, 1.1).iter().map(|v| v * 0.1).collect();
            let mut cols = vec![0f32; g.col_rows() * g.hw()];
            let mut y1 = vec![0f32; co * hw * hw];
            let mut y2 = vec![0f32; co * hw * hw];
            let wp = hw.div_ceil(2 * LANE) * 2 * LANE + k - 1;
            let mut wtt = vec![0f32; wt.len()];
            for o in 0..co {
                for t in 0..c * k * k {
                    wtt[t * co + o] = wt[o * c * k * k + t];
                }
            }
            let mut xp = vec![0f32; c * (hw + k - 1) * wp];
            let run_direct = |y: &mut [f32], xp: &mut [f32]| {
                pad(c, hw, hw, k, &x, xp, wp);
                unsafe {
                    match co {
                        4 => direct512::<4>(c, hw, hw, k, &wtt, xp, wp, y),
                        8 => direct512::<8>(c, hw, hw, k, &wtt, xp, wp, y),
                        12 => direct512::<12>(c, hw, hw, k, &wtt, xp, wp, y),
                        16 => direct512::<16>(c, hw, hw, k, &wtt, xp, wp, y),
                        _ => unreachable!(),
                    }
                }
            };
            eng.install(|| {
                im2col(&eng, &g, &x, &mut cols);
                gemm(&eng, co, hw * hw, g.col_rows(), &mut y1, &wt, Trans::No, &cols, Trans::No, Acc::Overwrite);
            });
            run_direct(&mut y2, &mut xp);
            let scale = y1.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
            let d = y1.iter().zip(&y2).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) / scale;
            assert!(d < 1e-5, "c={c} k={k}: direct differs from im2col by {d:e}");
            println!("{hw}x{hw} k={k} c={c}->{co}");
            let reps = 2000 / c;
            eng.install(|| {
                time("  im2col + gemm", reps, &mut || {
                    im2col(&eng, &g, &x, &mut cols);
                    gemm(&eng, co, hw * hw, g.col_rows(), &mut y1, &wt, Trans::No, &cols, Trans::No, Acc::Overwrite);
                })
            });
            time("  direct", reps, &mut || run_direct(&mut y2, &mut xp));
        }
    }
}
