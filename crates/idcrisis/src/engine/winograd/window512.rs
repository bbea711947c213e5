//! The Winograd window transforms ([`Window`]) in f32 with explicit AVX-512: the same sums as
//! the portable `WinoConv::window_row` in `simd.rs`, term for term in the same order, less the
//! terms whose coefficient is a structural zero ([`nonzero`]; for F(4×4, 5×5) 20 of `Bᵀ`'s 64),
//! which are left out at compile time. Left to LLVM, the portable array code kept its
//! accumulators on the stack and, once the zero tests were added, stopped unrolling
//! (BENCHMARKS.md); here each pass's accumulators are registers and every loop over the window
//! has a constant trip count.
//!
//! Pixels outside the image are masked loads of zeros instead of skipped terms: a term `C·0`
//! adds ±0 to a sum that started at +0 and so is never −0, which leaves it bit for bit. The
//! same holds for each structural zero `0·x` with `x` finite, so results are the portable
//! transform's bits (the tests compare every instruction set).

use super::matrices::MAX_TILE;
use super::plan::WinoConv;
use super::simd::{nonzero, Window};
use std::arch::x86_64::*;

/// Channels per register.
const LANES: usize = 16;

impl WinoConv {
    /// One row `r` of tiles of [`WinoConv::window_transform`] in f32: `src [h, w, c]` →
    /// `dst [tx, P, c]` (tiles [`WinoConv::tile_stride`] apart), for the plan's tile size.
    ///
    /// # Safety
    /// The CPU has AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn window_tiles_avx512(
        &self,
        coef: &super::matrices::Small<f32>,
        kind: Window,
        src: &[f32],
        c: usize,
        r: usize,
        dst: &mut [f32],
    ) {
        macro_rules! sizes {
            ($($m:literal, $n:literal);*) => {
                match (self.mats.m, self.mats.n, kind) {
                    $(
                        // SAFETY (both arms): the caller's contract.
                        ($m, $n, Window::Input) => unsafe { self.window_row_avx512::<$m, $n, $n, true>(&coef.bt, self.mats.r / 2, src, c, r, dst) },
                        ($m, $n, Window::Grad) => unsafe { self.window_row_avx512::<$m, $n, $m, false>(&coef.a, 0, src, c, r, dst) },
                    )*
                    (m, n, _) => unreachable!("F({m}, {}) has no specialised transforms", n + 1 - m),
                }
            };
        }
        sizes!(2, 4; 2, 6; 2, 8; 4, 6; 4, 8)
    }

    /// `dst [tx, P, c]` for one row `r` of tiles: `C d Cᵀ` of the K×K window of `src [h, w, c]`
    /// at `(r·M − off, tile·M − off)` (zero outside the image), for the coefficients `C [N, K]`
    /// (`Bᵀ` when `IN`, else `A`): along columns, then along rows, 16 channels at a time.
    ///
    /// # Safety
    /// The CPU has AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    unsafe fn window_row_avx512<const M: usize, const N: usize, const K: usize, const IN: bool>(
        &self,
        coef: &[[f32; MAX_TILE]; MAX_TILE],
        off: usize,
        src: &[f32],
        c: usize,
        r: usize,
        dst: &mut [f32],
    ) {
        let (ts, w) = (self.tile_stride(c), self.w);
        assert!(src.len() >= self.h * w * c && dst.len() >= (self.tx - 1) * ts + N * N * c, "window row: buffers too short");
        // Bit u: window row u lies in the image.
        let rows = (0..K).filter(|&u| (r * M + u).wrapping_sub(off) < self.h).fold(0u32, |b, u| b | 1 << u);
        let zero = _mm512_setzero_ps();
        for tx in 0..self.tx {
            let cols = (0..K).filter(|&v| (tx * M + v).wrapping_sub(off) < w).fold(0u32, |b, v| b | 1 << v);
            // SAFETY: tile tx's P·c values start at tx·ts, inside dst (asserted).
            let out = unsafe { dst.as_mut_ptr().add(tx * ts) };
            for c0 in (0..c).step_by(LANES) {
                let lanes: __mmask16 = if c - c0 >= LANES { !0 } else { (1u16 << (c - c0)) - 1 };
                // Along columns: wv[u][b] = Σ_v C[b][v] d[u][v].
                let mut wv = [[zero; N]; K];
                for u in 0..K {
                    if rows >> u & 1 == 0 {
                        continue;
                    }
                    let iy = r * M + u - off;
                    let mut acc = [zero; N];
                    for v in 0..K {
                        // Outside the image: no lanes, at a pointer inside src.
                        let (mask, at) = if cols >> v & 1 != 0 { (lanes, (iy * w + tx * M + v - off) * c + c0) } else { (0, 0) };
                        // SAFETY: `at` is a pixel's channel c0 < c, inside src; the mask keeps
                        // the load to channels below c (masked lanes are not read).
                        let d = unsafe { _mm512_maskz_loadu_ps(mask, src.as_ptr().add(at)) };
                        for b in 0..N {
                            if nonzero::<IN, N, K>(b, v) {
                                acc[b] = _mm512_fmadd_ps(_mm512_set1_ps(coef[b][v]), d, acc[b]);
                            }
                        }
                    }
                    wv[u] = acc;
                }
                // Along rows: out[(a, b)] = Σ_u C[a][u] wv[u][b].
                for b in 0..N {
                    let mut acc = [zero; N];
                    for u in 0..K {
                        for a in 0..N {
                            if nonzero::<IN, N, K>(a, u) {
                                acc[a] = _mm512_fmadd_ps(_mm512_set1_ps(coef[a][u]), wv[u][b], acc[a]);
                            }
                        }
                    }
                    for a in 0..N {
                        // SAFETY: (a·N + b)·c + c0 < P·c inside the tile; lanes below c.
                        unsafe { _mm512_mask_storeu_ps(out.add((a * N + b) * c + c0), lanes, acc[a]) };
                    }
                }
            }
        }
    }
}
