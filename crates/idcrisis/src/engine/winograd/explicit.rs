//! The Winograd data transforms in f32 with explicit vector intrinsics, AVX-512 (16 channels
//! per register) and AVX2 (8): the same sums as the portable ones in `simd.rs`, term for term in
//! the same order, so the same bits (the tests compare every instruction set). Left to LLVM, the
//! portable array code kept its accumulators on the stack, and once it was given the structural
//! zeros to skip it stopped unrolling (BENCHMARKS.md); here each pass's accumulators are
//! registers and every loop over a tile has a constant trip count.
//!
//! The kernels are written once, generic over [`Vector`] (one register of f32 lanes and the
//! handful of operations they use); `window_tiles_avx512`/`_avx2` and `output_tiles_avx512`/
//! `_avx2` compile them for each set, every operation inlined.
//!
//! * The window transforms ([`Window`]) leave out the terms whose coefficient is a structural
//!   zero ([`nonzero`]; for F(4×4, 5×5) 20 of `Bᵀ`'s 64) at compile time, and read pixels
//!   outside the image as masked loads of zeros where the portable code skips them. Either
//!   term adds ±0 (`0·x` with `x` finite, or `C·0`) to a sum that started at +0 and so is never
//!   −0, which leaves it bit for bit. (Not for `x` infinite or NaN, where the portable `0·x` is
//!   NaN: once a diverged run has non-finite values, the two may differ in them.)
//! * The output transform `Aᵀ M A` (+ bias) pairs `Aᵀ`'s columns by sign, as `simd::apply_at`.

use super::matrices::{Small, MAX_TILE};
use super::plan::WinoConv;
use super::simd::{nonzero, Window};
use std::arch::x86_64::*;

/// One register of f32 lanes in one instruction set, with the operations the transforms use.
///
/// # Safety
/// Every method needs the set's CPU features: call them only from a function compiled for
/// them (`#[target_feature]`), into which they inline.
pub(super) trait Vector: Copy {
    /// Lanes (channels) per register.
    const LANES: usize;
    /// Which lanes a load or store touches.
    type Mask: Copy;
    /// All lanes +0.
    unsafe fn zero() -> Self;
    /// The lanes below `n` (all of them for `n ≥ LANES`).
    unsafe fn first(n: usize) -> Self::Mask;
    /// No lane.
    unsafe fn none() -> Self::Mask;
    /// The `mask`ed lanes from `p`, +0 in the others (which are not read).
    unsafe fn load(mask: Self::Mask, p: *const f32) -> Self;
    /// The `mask`ed lanes of `v` to `p` (the others are not written).
    unsafe fn store(p: *mut f32, mask: Self::Mask, v: Self);
    /// `x` in every lane.
    unsafe fn splat(x: f32) -> Self;
    /// `a·b + c`, rounded once.
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    /// `a + b`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `a − b`.
    unsafe fn sub(a: Self, b: Self) -> Self;
}

/// AVX-512F: 16 lanes, `k`-register masks.
#[derive(Clone, Copy)]
pub(super) struct Avx512(__m512);

impl Vector for Avx512 {
    const LANES: usize = 16;
    type Mask = __mmask16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx512(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn first(n: usize) -> __mmask16 {
        if n >= 16 {
            !0
        } else {
            (1u16 << n) - 1
        }
    }
    #[inline(always)]
    unsafe fn none() -> __mmask16 {
        0
    }
    #[inline(always)]
    unsafe fn load(mask: __mmask16, p: *const f32) -> Self {
        Avx512(unsafe { _mm512_maskz_loadu_ps(mask, p) })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, mask: __mmask16, v: Self) {
        unsafe { _mm512_mask_storeu_ps(p, mask, v.0) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Avx512(unsafe { _mm512_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_add_ps(a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        Avx512(unsafe { _mm512_sub_ps(a.0, b.0) })
    }
}

/// AVX2: 8 lanes. Whole registers load and store plainly; a partial one through
/// `vmaskmovps` (slow for stores on some CPUs, so only where it must).
#[derive(Clone, Copy)]
pub(super) struct Avx2(__m256);

/// An AVX2 mask: the lanes' sign bits, and whether it holds them all.
#[derive(Clone, Copy)]
pub(super) struct Avx2Mask {
    bits: __m256i,
    full: bool,
}

impl Vector for Avx2 {
    const LANES: usize = 8;
    type Mask = Avx2Mask;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx2(unsafe { _mm256_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn first(n: usize) -> Avx2Mask {
        let n = n.min(8) as i32;
        // Lane l is kept when n > l.
        let bits = unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) };
        Avx2Mask { bits, full: n == 8 }
    }
    #[inline(always)]
    unsafe fn none() -> Avx2Mask {
        Avx2Mask { bits: unsafe { _mm256_setzero_si256() }, full: false }
    }
    #[inline(always)]
    unsafe fn load(mask: Avx2Mask, p: *const f32) -> Self {
        Avx2(unsafe {
            if mask.full {
                _mm256_loadu_ps(p)
            } else {
                _mm256_maskload_ps(p, mask.bits)
            }
        })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, mask: Avx2Mask, v: Self) {
        unsafe {
            if mask.full {
                _mm256_storeu_ps(p, v.0)
            } else {
                _mm256_maskstore_ps(p, mask.bits, v.0)
            }
        }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Avx2(unsafe { _mm256_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        Avx2(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        Avx2(unsafe { _mm256_add_ps(a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        Avx2(unsafe { _mm256_sub_ps(a.0, b.0) })
    }
}

impl WinoConv {
    /// One row `r` of tiles of [`WinoConv::window_transform`] in f32 with AVX-512 (see
    /// [`WinoConv::explicit_window_tiles`]).
    ///
    /// # Safety
    /// The CPU has AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn window_tiles_avx512(&self, coef: &Small<f32>, kind: Window, src: &[f32], c: usize, r: usize, dst: &mut [f32]) {
        // SAFETY: the caller's contract; this function has the features.
        unsafe { self.explicit_window_tiles::<Avx512>(coef, kind, src, c, r, dst) }
    }

    /// [`WinoConv::window_tiles_avx512`] with AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn window_tiles_avx2(&self, coef: &Small<f32>, kind: Window, src: &[f32], c: usize, r: usize, dst: &mut [f32]) {
        // SAFETY: the caller's contract; this function has the features.
        unsafe { self.explicit_window_tiles::<Avx2>(coef, kind, src, c, r, dst) }
    }

    /// One row `r` of tiles of [`WinoConv::window_transform`] in f32: `src [h, w, c]` →
    /// `dst [tx, P, c]` (tiles [`WinoConv::tile_stride`] apart), for the plan's tile size.
    ///
    /// # Safety
    /// Called only from a function compiled for `V`'s set, on a CPU that has it.
    #[inline(always)]
    unsafe fn explicit_window_tiles<V: Vector>(&self, coef: &Small<f32>, kind: Window, src: &[f32], c: usize, r: usize, dst: &mut [f32]) {
        macro_rules! sizes {
            ($($m:literal, $n:literal);*) => {
                match (self.mats.m, self.mats.n, kind) {
                    $(
                        // SAFETY (both arms): the caller's contract.
                        ($m, $n, Window::Input) => unsafe { self.explicit_window_row::<V, $m, $n, $n, true>(&coef.bt, self.mats.r / 2, src, c, r, dst) },
                        ($m, $n, Window::Grad) => unsafe { self.explicit_window_row::<V, $m, $n, $m, false>(&coef.a, 0, src, c, r, dst) },
                    )*
                    (m, n, _) => unreachable!("F({m}, {}) has no specialised transforms", n + 1 - m),
                }
            };
        }
        sizes!(2, 4; 2, 6; 2, 8; 4, 6; 4, 8)
    }

    /// `dst [tx, P, c]` for one row `r` of tiles: `C d Cᵀ` of the K×K window of `src [h, w, c]`
    /// at `(r·M − off, tile·M − off)` (zero outside the image), for the coefficients `C [N, K]`
    /// (`Bᵀ` when `IN`, else `A`): along columns, then along rows, `V::LANES` channels at a time.
    ///
    /// # Safety
    /// As [`WinoConv::explicit_window_tiles`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    unsafe fn explicit_window_row<V: Vector, const M: usize, const N: usize, const K: usize, const IN: bool>(
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
        // SAFETY (every V operation below): the caller's contract.
        let zero = unsafe { V::zero() };
        // The column pass's results, every row written before the row pass reads it.
        let mut wv = [[zero; N]; K];
        for tx in 0..self.tx {
            let cols = (0..K).filter(|&v| (tx * M + v).wrapping_sub(off) < w).fold(0u32, |b, v| b | 1 << v);
            // SAFETY: tile tx's P·c values start at tx·ts, inside dst (asserted).
            let out = unsafe { dst.as_mut_ptr().add(tx * ts) };
            for c0 in (0..c).step_by(V::LANES) {
                let lanes = unsafe { V::first(c - c0) };
                // Along columns: wv[u][b] = Σ_v C[b][v] d[u][v] (zero for rows outside).
                for u in 0..K {
                    if rows >> u & 1 == 0 {
                        wv[u] = [zero; N];
                        continue;
                    }
                    let iy = r * M + u - off;
                    let mut acc = [zero; N];
                    for v in 0..K {
                        // Outside the image: no lanes, at a pointer inside src.
                        let (mask, at) =
                            if cols >> v & 1 != 0 { (lanes, (iy * w + tx * M + v - off) * c + c0) } else { (unsafe { V::none() }, 0) };
                        // SAFETY: `at` is a pixel's channel c0 < c, inside src; the mask keeps
                        // the load to channels below c (masked lanes are not read).
                        let d = unsafe { V::load(mask, src.as_ptr().add(at)) };
                        for b in 0..N {
                            if nonzero::<IN, N, K>(b, v) {
                                acc[b] = unsafe { V::fma(V::splat(coef[b][v]), d, acc[b]) };
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
                                acc[a] = unsafe { V::fma(V::splat(coef[a][u]), wv[u][b], acc[a]) };
                            }
                        }
                    }
                    for a in 0..N {
                        // SAFETY: (a·N + b)·c + c0 < P·c inside the tile; lanes below c.
                        unsafe { V::store(out.add((a * N + b) * c + c0), lanes, acc[a]) };
                    }
                }
            }
        }
    }

    /// One row `r` of tiles of [`WinoConv::output_transform`] in f32 with AVX-512 (see
    /// [`WinoConv::explicit_output_tiles`]).
    ///
    /// # Safety
    /// The CPU has AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn output_tiles_avx512(
        &self,
        sm: &Small<f32>,
        src: &[f32],
        c: usize,
        bias: Option<&[f32]>,
        r: usize,
        dst: &mut [f32],
    ) {
        // SAFETY: the caller's contract; this function has the features.
        unsafe { self.explicit_output_tiles::<Avx512>(sm, src, c, bias, r, dst) }
    }

    /// [`WinoConv::output_tiles_avx512`] with AVX2.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn output_tiles_avx2(&self, sm: &Small<f32>, src: &[f32], c: usize, bias: Option<&[f32]>, r: usize, dst: &mut [f32]) {
        // SAFETY: the caller's contract; this function has the features.
        unsafe { self.explicit_output_tiles::<Avx2>(sm, src, c, bias, r, dst) }
    }

    /// One row `r` of tiles of [`WinoConv::output_transform`] in f32: `src [tx, P, c]` (tiles
    /// [`WinoConv::tile_stride`] apart) → output rows `r·M..` of `dst [·, w, c]` (+ `bias [c]`),
    /// cropped at the border. `sm` must pair by sign ([`Small::paired`]).
    ///
    /// # Safety
    /// Called only from a function compiled for `V`'s set, on a CPU that has it.
    #[inline(always)]
    unsafe fn explicit_output_tiles<V: Vector>(
        &self,
        sm: &Small<f32>,
        src: &[f32],
        c: usize,
        bias: Option<&[f32]>,
        r: usize,
        dst: &mut [f32],
    ) {
        assert!(sm.paired, "the explicit output transform pairs Aᵀ's columns");
        match (self.mats.m, self.mats.n) {
            // SAFETY (every arm): the caller's contract.
            (2, 4) => unsafe { self.explicit_output_row::<V, 2, 4>(&sm.at, src, c, bias, r, dst) },
            (2, 6) => unsafe { self.explicit_output_row::<V, 2, 6>(&sm.at, src, c, bias, r, dst) },
            (2, 8) => unsafe { self.explicit_output_row::<V, 2, 8>(&sm.at, src, c, bias, r, dst) },
            (4, 6) => unsafe { self.explicit_output_row::<V, 4, 6>(&sm.at, src, c, bias, r, dst) },
            (4, 8) => unsafe { self.explicit_output_row::<V, 4, 8>(&sm.at, src, c, bias, r, dst) },
            (m, n) => unreachable!("F({m}, {}) has no specialised transforms", n + 1 - m),
        }
    }

    /// [`WinoConv::explicit_output_tiles`] for `Aᵀ [M, N]`: along rows, `t1[i][b] = Σ_a Aᵀ[i][a]
    /// M[(a, b)]`; then along columns, `y[r·M + i][tx·M + j] = bias + Σ_b Aᵀ[j][b] t1[i][b]`.
    ///
    /// # Safety
    /// As [`WinoConv::explicit_output_tiles`].
    #[inline(always)]
    #[allow(clippy::needless_range_loop)]
    unsafe fn explicit_output_row<V: Vector, const M: usize, const N: usize>(
        &self,
        at: &[[f32; MAX_TILE]; MAX_TILE],
        src: &[f32],
        c: usize,
        bias: Option<&[f32]>,
        r: usize,
        dst: &mut [f32],
    ) {
        let (rows, ts, w) = (M.min(self.h.saturating_sub(r * M)), self.tile_stride(c), self.w);
        assert!(
            src.len() >= (self.tx - 1) * ts + N * N * c && dst.len() >= rows * w * c && bias.is_none_or(|b| b.len() >= c),
            "output row: buffers too short"
        );
        // SAFETY (every V operation below): the caller's contract.
        let zero = unsafe { V::zero() };
        // The row pass's results, all written before the column pass reads them.
        let mut t1 = [[zero; N]; M];
        for tx in 0..self.tx {
            // SAFETY: tile tx's P·c values start at tx·ts, inside src (asserted).
            let tile = unsafe { src.as_ptr().add(tx * ts) };
            let cols = M.min(w.saturating_sub(tx * M));
            for c0 in (0..c).step_by(V::LANES) {
                let lanes = unsafe { V::first(c - c0) };
                for b in 0..N {
                    let mut x = [zero; N];
                    for a in 0..N {
                        // SAFETY: (a·N + b)·c + c0 inside the tile; lanes below c.
                        x[a] = unsafe { V::load(lanes, tile.add((a * N + b) * c + c0)) };
                    }
                    let y = unsafe { apply_at::<V, M, N>(at, &x, zero) };
                    for i in 0..M {
                        t1[i][b] = y[i];
                    }
                }
                let b0 = match bias {
                    // SAFETY: c0 < c ≤ bias.len() (asserted); lanes below c.
                    Some(bv) => unsafe { V::load(lanes, bv.as_ptr().add(c0)) },
                    None => zero,
                };
                for (i, t1i) in t1.iter().enumerate().take(rows) {
                    let y = unsafe { apply_at::<V, M, N>(at, t1i, b0) };
                    for (j, yj) in y.iter().enumerate().take(cols) {
                        // SAFETY: row i < rows and column tx·M + j < w: inside dst (asserted).
                        unsafe { V::store(dst.as_mut_ptr().add((i * w + tx * M + j) * c + c0), lanes, *yj) };
                    }
                }
            }
        }
    }
}

/// `init + Aᵀ x` by `Aᵀ`'s sign pairs, term for term as `simd::apply_at` (paired): `x[0]`, then
/// for each pair q the sum or difference of `x[2q−1]` and `x[2q]`, then `x[N−1]`.
///
/// # Safety
/// As [`WinoConv::explicit_output_tiles`].
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn apply_at<V: Vector, const M: usize, const N: usize>(at: &[[f32; MAX_TILE]; MAX_TILE], x: &[V; N], init: V) -> [V; M] {
    // SAFETY (every V operation): the caller's contract.
    unsafe {
        let mut y = [init; M];
        y[0] = V::fma(V::splat(at[0][0]), x[0], y[0]);
        for q in 1..N / 2 {
            let (sum, dif) = (V::add(x[2 * q - 1], x[2 * q]), V::sub(x[2 * q - 1], x[2 * q]));
            for i in 0..M {
                y[i] = V::fma(V::splat(at[i][2 * q - 1]), if i % 2 == 0 { sum } else { dif }, y[i]);
            }
        }
        y[M - 1] = V::fma(V::splat(at[M - 1][N - 1]), x[N - 1], y[M - 1]);
        y
    }
}
