//! Direct convolution: each output row is computed in 32-pixel blocks with the accumulators of
//! up to 16 output channels in registers (wider layers in groups of [`WIDE_GROUP`]), reading a
//! padded copy of the input. Below [`super::WINOGRAD_MIN_CHANNELS`] channels this beats im2col +
//! GEMM (whose GEMM has too few rows to fill its micro-kernel) and Winograd (whose transforms
//! vectorise over channels), and its forward alone beats Winograd's up to 32 channels for 3×3
//! and 7×7 kernels: measured in `BENCHMARKS.md`, `benches/directconv.rs` and `benches/evalalgo.rs`.
//!
//! * [`pad_into`]: an image `[c, h, w]` into its padded copy `[c, h + k − 1, row_len]`, by the
//!   layer's tap tables (any [`super::Padding`]).
//! * [`arrange_weights`]: `W [co, ci, k, k]` into the tap-major `[ci, k, k, co]` the kernel reads,
//!   optionally flipped and transposed (`W'[ci, co, k−1−ky, k−1−kx]`), which turns the same
//!   kernel into the input gradient of a zero- or circular-padded layer (its adjoint).
//! * [`forward`]: `y [co, h, w] = bias + W ⋆ x`.
//! * [`weight_grad`]: `dW [co, ci, k, k] += Σ dy · x` (shifted), from the padded input.
//!
//! The vector kernels run for f32 in the set [`Isa::detect`] chose: AVX-512 (32-pixel blocks, up
//! to 16 output channels per pass) or AVX2 (16-pixel blocks, output channels in even groups of
//! up to 6 forward and 3 for the weight gradient, what 16 registers hold). `IDCRISIS_ISA` can
//! lower the set down to the portable kernels; the bits stay the same.
//!
//! Every output element is `bias` followed by one fused multiply-add per (input channel, tap
//! row, tap column), in that order, in every instruction set: the AVX-512 and AVX2 kernels and
//! the portable one (`f32::mul_add`/`f64::mul_add`) give the same bits (tested). Buffers are row-major; sizes
//! are element counts. Nothing allocates; [`forward_batch`] spreads images over the engine's
//! threads.

use super::conv::ConvGeom;
use super::winograd::Isa;
use crate::float::Float;
use std::any::TypeId;

/// Pixels per block of an output row in the AVX-512 forward kernel (two 16-lane vectors), and
/// lane sums per weight in every weight-gradient kernel; padded rows hold whole blocks.
pub const BLOCK: usize = 32;

/// Largest output channel count the weight gradient takes (the AVX-512 kernel holds them all
/// in registers), so the widest layer the direct convolution trains.
pub const DIRECT_MAX_CHANNELS: usize = 16;

/// Length of one padded row: the image width rounded up to whole blocks, plus the `k − 1` border.
pub fn row_len(w: usize, k: usize) -> usize {
    w.div_ceil(BLOCK) * BLOCK + k - 1
}

/// Elements of the padded copy of a `[c, h, w]` image: `c · (h + k − 1) · row_len(w, k)`.
pub fn padded_len(c: usize, h: usize, w: usize, k: usize) -> usize {
    c * (h + k - 1) * row_len(w, k)
}

/// Write `x [c, g.h, g.w]` into `xp [c, g.h + k − 1, row_len]`: `xp[ci, y + k/2, x + k/2] =
/// x[ci, y, x]` inside, the padding mode's values (by `g`'s tap tables; `g.c` is not used) in the
/// border, and zeros in the columns past the border that only the last block reads.
pub fn pad_into<T: Float>(g: &ConvGeom, c: usize, x: &[T], xp: &mut [T]) {
    let k = g.k;
    let (hp, wp) = (g.h + k - 1, row_len(g.w, k));
    let xp = &mut xp[..padded_len(c, g.h, g.w, k)];
    xp.fill(T::zero());
    for ci in 0..c {
        let src = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for py in 0..hp {
            let sy = padded_source(py, g.h, &g.ytab, k);
            let Some(sy) = sy else { continue };
            let dst = &mut xp[(ci * hp + py) * wp..(ci * hp + py + 1) * wp];
            let srow = &src[sy * g.w..(sy + 1) * g.w];
            let p = k / 2;
            copy_row(&mut dst[p..p + g.w], srow);
            for px in (0..p).chain(p + g.w..g.w + k - 1) {
                if let Some(sx) = padded_source(px, g.w, &g.xtab, k) {
                    dst[px] = srow[sx];
                }
            }
        }
    }
}

/// `dst = src` (equal lengths) by fixed 16-element copies: an image row is too short for a
/// `memcpy` call to pay (it was 13% of an 8-channel probe).
fn copy_row<T: Float>(dst: &mut [T], src: &[T]) {
    const V: usize = 16;
    let mut d = dst.chunks_exact_mut(V);
    let mut s = src.chunks_exact(V);
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [T; V] = d.try_into().expect("16 elements");
        *d = *<&[T; V]>::try_from(s).expect("16 elements");
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Source index of padded position `pp` (image position `pp − k/2`) along an axis of length `len`,
/// read from the tap table `tab [k, len]`: the position some (tap, output) pair reads.
fn padded_source(pp: usize, len: usize, tab: &[Option<usize>], k: usize) -> Option<usize> {
    // Output o with tap kk reads image position o + kk − k/2 = pp − k/2, so kk = pp − o.
    let o = pp.saturating_sub(k - 1).min(len - 1);
    let kk = pp - o;
    debug_assert!(kk < k);
    tab[kk * len + o]
}

/// Arrange `w [co, ci, k, k]` for [`forward`]: `out [ci, k, k, co]`. With `adjoint`, the result
/// is the input gradient's weights instead: `out [co, k, k, ci]` with
/// `out[o, ky, kx, i] = w[o, i, k−1−ky, k−1−kx]` (so [`forward`] over `dy` with `co` and `ci`
/// swapped computes `dx` of a zero- or circular-padded layer).
pub fn arrange_weights<T: Float>(w: &[T], co: usize, ci: usize, k: usize, adjoint: bool, out: &mut [T]) {
    let kk = k * k;
    for o in 0..co {
        for i in 0..ci {
            for t in 0..kk {
                let v = w[(o * ci + i) * kk + t];
                if adjoint {
                    out[(o * kk + (kk - 1 - t)) * ci + i] = v;
                } else {
                    out[(i * kk + t) * co + o] = v;
                }
            }
        }
    }
}

/// The kernel set [`forward`] and [`weight_grad`] run for `T`: for f32 the set [`Isa::detect`]
/// chose (so `IDCRISIS_ISA` can lower it), for f64 always the portable kernels.
fn kernel_isa<T: Float>() -> Isa {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        Isa::detect()
    } else {
        Isa::Base
    }
}

/// `s` as the f32 slice it is; panics unless `T` is f32.
#[cfg(target_arch = "x86_64")]
fn as_f32<T: Float>(s: &[T]) -> &[f32] {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<f32>());
    // SAFETY: T is f32 (same TypeId), so this reinterprets an f32 slice as itself.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) }
}

/// [`as_f32`] for a mutable slice.
#[cfg(target_arch = "x86_64")]
fn as_f32_mut<T: Float>(s: &mut [T]) -> &mut [f32] {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<f32>());
    // SAFETY: as in `as_f32`.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, s.len()) }
}

/// Call the kernel `$isa::$f::<N>` instantiated for the runtime channel count `$n`, one of the
/// listed literals. Unsafe inside: the caller has checked the CPU and the sizes.
#[cfg(target_arch = "x86_64")]
macro_rules! by_channels {
    ($isa:ident :: $f:ident, $n:expr, [$($k:literal)*], $($arg:expr),*) => {
        by_channels!(@ $isa::$f, $n, [$($k)*], ($($arg),*))
    };
    (@ $isa:ident :: $f:ident, $n:expr, [$($k:literal)*], $args:tt) => {
        match $n {
            $($k => unsafe { by_channels!(@call $isa::$f, $k, $args) },)*
            n => unreachable!("no direct kernel for {n} output channels"),
        }
    };
    (@call $isa:ident :: $f:ident, $k:literal, ($($arg:expr),*)) => {
        $isa::$f::<$k>($($arg),*)
    };
}

/// Split `co` output channels into as few groups of at most `max` as it takes, of sizes differing
/// by at most one (larger first): `(first channel, count)` per group. A group's accumulators
/// then fill the registers as evenly as the count allows.
#[cfg(target_arch = "x86_64")]
fn even_groups(co: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let groups = co.div_ceil(max);
    let (base, extra) = (co / groups, co % groups);
    (0..groups).scan(0, move |o0, gi| {
        let n = base + usize::from(gi < extra);
        let start = *o0;
        *o0 += n;
        Some((start, n))
    })
}

/// `y [co, g.h, g.w] = bias + W ⋆ x` from `xp` ([`pad_into`] of `x [ci, g.h, g.w]`) and `wt`
/// ([`arrange_weights`], `[ci, k, k, co]`), any `co` (the vector kernels run groups of output
/// channels whose accumulators fit the registers); `g.c` is not used.
pub fn forward<T: Float>(g: &ConvGeom, ci: usize, co: usize, wt: &[T], bias: Option<&[T]>, xp: &[T], y: &mut [T]) {
    forward_in(kernel_isa::<T>(), g, ci, co, wt, bias, xp, y);
}

/// [`forward`] in the kernel set `isa` (`Base` runs the portable kernel; the tests run every
/// set the CPU has). Each output element is computed the same way whatever its group and
/// set, so neither changes the bits.
#[allow(clippy::too_many_arguments)]
fn forward_in<T: Float>(isa: Isa, g: &ConvGeom, ci: usize, co: usize, wt: &[T], bias: Option<&[T]>, xp: &[T], y: &mut [T]) {
    assert!(wt.len() >= ci * g.k * g.k * co && xp.len() >= padded_len(ci, g.h, g.w, g.k) && y.len() >= co * g.hw());
    if let Some(b) = bias {
        assert!(b.len() >= co);
    }
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Base {
        assert!(vector_ok::<T>(isa), "direct convolution: no {} kernel for this CPU and precision", isa.name());
        let (wt, xp, bias, y) = (as_f32(wt), as_f32(xp), bias.map(as_f32), as_f32_mut(y));
        if isa == Isa::Avx512 {
            let group = out_group(co);
            for o0 in (0..co).step_by(group) {
                let n = group.min(co - o0);
                let (wt, bias, y) = (&wt[o0..], bias.map(|b| &b[o0..]), &mut y[o0 * g.hw()..]);
                // SAFETY: `vector_ok` said the CPU has AVX-512F and FMA; the sizes were checked
                // above (the group reads weights `o0 + (tap · co) + o < ci·k·k·co` and writes
                // its rows of y).
                by_channels!(avx512::forward, n, [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16], g, ci, co, wt, bias, xp, y);
            }
        } else {
            for (o0, n) in even_groups(co, avx2::FORWARD_GROUP) {
                let (wt, bias, y) = (&wt[o0..], bias.map(|b| &b[o0..]), &mut y[o0 * g.hw()..]);
                // SAFETY: `vector_ok` said the CPU has AVX2 and FMA; the sizes were checked
                // above (the group reads weights `o0 + (tap · co) + o < ci·k·k·co` and writes
                // its `n` rows of y).
                by_channels!(avx2::forward, n, [1 2 3 4 5 6], g, ci, co, wt, bias, xp, y);
            }
        }
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa; // Only x86-64 has vector kernels.
    portable(g, ci, co, wt, bias, xp, y);
}

/// Whether the vector kernels of `isa` can run for `T` here: f32, and the CPU has the set.
#[cfg(target_arch = "x86_64")]
fn vector_ok<T: Float>(isa: Isa) -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>() && isa != Isa::Base && isa <= Isa::cpu()
}

/// Output channels the AVX-512 forward kernel computes per pass over the input: all of them up
/// to [`DIRECT_MAX_CHANNELS`], else groups of [`WIDE_GROUP`] (the AVX2 kernel uses
/// [`even_groups`] of at most 6).
fn out_group(co: usize) -> usize {
    if co <= DIRECT_MAX_CHANNELS {
        co
    } else {
        WIDE_GROUP
    }
}

/// Output channels per pass of the AVX-512 forward kernel over layers wider than
/// [`DIRECT_MAX_CHANNELS`] (`2 · WIDE_GROUP` accumulators).
pub const WIDE_GROUP: usize = 8;

/// [`forward`] of `n` images `x [n, ci, g.h, g.w]` into `y [n, co, g.h, g.w]`, spread over the
/// engine's threads. Each image is computed exactly as
/// [`forward`] computes it alone, so the bits do not depend on the thread count.
///
/// `pads` holds padded copies of `stride ≥` [`padded_len`]`(ci, g.h, g.w, g.k)` elements each:
/// with `keep`, one per image (image `i`'s copy at `i·stride`, kept for [`weight_grad`]);
/// otherwise at least one, used as per-thread scratch (the images are split into as many
/// contiguous groups as there are copies and threads, at most).
#[allow(clippy::too_many_arguments)]
pub fn forward_batch<T: Float>(
    eng: &super::Engine,
    g: &ConvGeom,
    ci: usize,
    co: usize,
    wt: &[T],
    bias: Option<&[T]>,
    x: &[T],
    y: &mut [T],
    pads: &mut [T],
    stride: usize,
    keep: bool,
    n: usize,
) {
    use super::Shards;
    let (xl, yl) = (ci * g.hw(), co * g.hw());
    assert!(stride >= padded_len(ci, g.h, g.w, g.k) && x.len() >= n * xl && y.len() >= n * yl);
    let copies = pads.len() / stride;
    assert!(if keep { copies >= n } else { copies >= 1 }, "direct convolution: {copies} padded copies for {n} images");
    if n == 0 {
        return;
    }
    // Images per group: one group per thread (and per scratch copy without `keep`).
    let groups = if keep { n } else { copies.min(n) }.min(eng.threads()).max(1);
    let per = n.div_ceil(groups);
    let run = |x: &[T], y: &mut [T], pads: &mut [T]| {
        for (j, (xi, yi)) in x.chunks(xl).zip(y.chunks_mut(yl)).enumerate() {
            let xp = if keep { &mut pads[j * stride..(j + 1) * stride] } else { &mut pads[..stride] };
            pad_into(g, ci, xi, xp);
            forward(g, ci, co, wt, bias, xp, yi);
        }
    };
    let (x, y) = (&x[..n * xl], &mut y[..n * yl]);
    if groups == 1 {
        run(x, y, pads);
        return;
    }
    let pad_chunk = if keep { per * stride } else { stride };
    let (ys, ps) = (Shards::new(y, per * yl), Shards::new(pads, pad_chunk));
    // SAFETY: run_tasks runs each index once; there are at least ⌈n / per⌉ chunks of `pads`
    // (with `keep`, n copies in chunks of `per`; without, ⌈n / per⌉ ≤ groups ≤ copies).
    eng.run_tasks(n.div_ceil(per), &|i| unsafe { run(&x[i * per * xl..((i + 1) * per).min(n) * xl], ys.chunk(i), ps.chunk(i)) });
}

/// Add the weight gradient `dw [co, ci, k, k] += Σ_{y < h, x < w} dy[o, y, x] · xp[i, y + ky, x + kx]`
/// from `xp` ([`pad_into`] of the layer input `x [ci, g.h, g.w]`) and `dy [co, g.h, g.w]`. `co ≤`
/// [`DIRECT_MAX_CHANNELS`]; `g.c` is not used.
///
/// Order of operations (the same in every instruction set): for each weight, 32 lane sums, lane
/// `j` collecting pixels `x ≡ j (mod 32)` by fused multiply-adds, rows in order, then blocks in
/// order; then the 32 lanes added in lane order, and that sum added to `dw`.
pub fn weight_grad<T: Float>(g: &ConvGeom, ci: usize, co: usize, xp: &[T], dy: &[T], dw: &mut [T]) {
    weight_grad_in(kernel_isa::<T>(), g, ci, co, xp, dy, dw);
}

/// [`weight_grad`] in the kernel set `isa`, as [`forward_in`].
fn weight_grad_in<T: Float>(isa: Isa, g: &ConvGeom, ci: usize, co: usize, xp: &[T], dy: &[T], dw: &mut [T]) {
    assert!(co <= DIRECT_MAX_CHANNELS, "direct convolution supports at most {DIRECT_MAX_CHANNELS} output channels, got {co}");
    assert!(dw.len() >= co * ci * g.k * g.k && xp.len() >= padded_len(ci, g.h, g.w, g.k) && dy.len() >= co * g.hw());
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Base {
        assert!(vector_ok::<T>(isa), "direct convolution: no {} kernel for this CPU and precision", isa.name());
        let (xp, dy, dw) = (as_f32(xp), as_f32(dy), as_f32_mut(dw));
        if isa == Isa::Avx512 {
            // SAFETY: `vector_ok` said the CPU has AVX-512F and FMA; the sizes were checked above.
            by_channels!(avx512::weight_grad, co, [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16], g, ci, xp, dy, dw);
        } else {
            let per = ci * g.k * g.k;
            for (o0, n) in even_groups(co, avx2::GRAD_GROUP) {
                let (dy, dw) = (&dy[o0 * g.hw()..], &mut dw[o0 * per..]);
                // SAFETY: `vector_ok` said the CPU has AVX2 and FMA; the group's rows of `dy`
                // and `dw` lie inside the checked sizes.
                by_channels!(avx2::weight_grad, n, [1 2 3], g, ci, xp, dy, dw);
            }
        }
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa; // Only x86-64 has vector kernels.
    portable_weight_grad(g, ci, co, xp, dy, dw);
}

/// [`weight_grad`] one element at a time, in the vector kernel's order.
fn portable_weight_grad<T: Float>(g: &ConvGeom, c: usize, co: usize, xp: &[T], dy: &[T], dw: &mut [T]) {
    let (h, w, k) = (g.h, g.w, g.k);
    let (hp, wp, hw) = (h + k - 1, row_len(w, k), g.hw());
    for o in 0..co {
        for i in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    let mut lanes = [T::zero(); BLOCK];
                    for y in 0..h {
                        let xr = &xp[(i * hp + y + ky) * wp + kx..];
                        let dr = &dy[o * hw + y * w..o * hw + (y + 1) * w];
                        for (x, d) in dr.iter().enumerate() {
                            lanes[x % BLOCK] = d.mul_add(xr[x], lanes[x % BLOCK]);
                        }
                    }
                    let sum = lane_sum(&lanes);
                    let at = ((o * c + i) * k + ky) * k + kx;
                    dw[at] = dw[at] + sum;
                }
            }
        }
    }
}

/// The sum of a weight's [`BLOCK`] lane sums, in lane order: the last step of every
/// weight-gradient kernel.
#[inline(always)]
fn lane_sum<T: Float>(lanes: &[T; BLOCK]) -> T {
    let mut sum = T::zero();
    for &l in lanes {
        sum = sum + l;
    }
    sum
}

/// The portable kernel: the same order of operations as the vector one, one element at a time.
fn portable<T: Float>(g: &ConvGeom, c: usize, co: usize, wt: &[T], bias: Option<&[T]>, xp: &[T], y: &mut [T]) {
    let (k, hp, wp, hw) = (g.k, g.h + g.k - 1, row_len(g.w, g.k), g.hw());
    for o in 0..co {
        let b = bias.map_or(T::zero(), |b| b[o]);
        for row in 0..g.h {
            for x in 0..g.w {
                let mut acc = b;
                for ci in 0..c {
                    for ky in 0..k {
                        let xr = &xp[(ci * hp + row + ky) * wp + x..];
                        let wr = &wt[(ci * k + ky) * k * co..];
                        for kx in 0..k {
                            acc = wr[kx * co + o].mul_add(xr[kx], acc);
                        }
                    }
                }
                y[o * hw + row * g.w + x] = acc;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{row_len, ConvGeom, BLOCK};
    use std::arch::x86_64::*;

    /// Lane masks of a block's two vectors when `left` pixels of the row remain from its start.
    fn block_masks(left: usize) -> (__mmask16, __mmask16) {
        let mask = |n: usize| if n >= 16 { 0xffff } else { (1u16 << n) - 1 };
        (mask(left), mask(left.saturating_sub(16)))
    }

    /// [`super::forward`] for f32 with `CO` output channels: per output row and 32-pixel block,
    /// `2·CO` accumulators stay in registers over all input channels and taps.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and FMA; the slices must have the sizes `super::forward`
    /// checks.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn forward<const CO: usize>(g: &ConvGeom, c: usize, ld: usize, wt: &[f32], bias: Option<&[f32]>, xp: &[f32], y: &mut [f32]) {
        let (h, w, k) = (g.h, g.w, g.k);
        let (hp, wp, hw) = (h + k - 1, row_len(w, k), h * w);
        let mut init = [_mm512_setzero_ps(); CO];
        if let Some(b) = bias {
            for (o, v) in init.iter_mut().enumerate() {
                *v = _mm512_set1_ps(b[o]);
            }
        }
        for row in 0..h {
            for x0 in (0..w).step_by(BLOCK) {
                let (mut a0, mut a1) = (init, init);
                for ci in 0..c {
                    for ky in 0..k {
                        let xr = xp.as_ptr().add((ci * hp + row + ky) * wp + x0);
                        let wr = wt.as_ptr().add((ci * k + ky) * k * ld);
                        for kx in 0..k {
                            let x0v = _mm512_loadu_ps(xr.add(kx));
                            let x1v = _mm512_loadu_ps(xr.add(kx + 16));
                            let wv = wr.add(kx * ld);
                            for o in 0..CO {
                                let b = _mm512_set1_ps(*wv.add(o));
                                a0[o] = _mm512_fmadd_ps(b, x0v, a0[o]);
                                a1[o] = _mm512_fmadd_ps(b, x1v, a1[o]);
                            }
                        }
                    }
                }
                // Masked stores for the pixels of the image (a row is rarely whole blocks: 28
                // pixels are one partial block, and a `memcpy` per row cost 10% of a probe).
                let (m0, m1) = block_masks(w - x0);
                for o in 0..CO {
                    let yo = y.as_mut_ptr().add(o * hw + row * w + x0);
                    _mm512_mask_storeu_ps(yo, m0, a0[o]);
                    // Only when the block has pixels there: `yo + 16` can pass the end of `y`
                    // on the last row, and forming such a pointer is undefined behaviour.
                    if m1 != 0 {
                        _mm512_mask_storeu_ps(yo.add(16), m1, a1[o]);
                    }
                }
            }
        }
    }

    /// [`super::weight_grad`] for f32 with `CO` output channels: per weight column `(i, ky, kx)`,
    /// `2·CO` lane accumulators over all rows and blocks (the last block's `dy` loads masked to the
    /// image), then each reduced in lane order.
    ///
    /// # Safety
    /// As [`forward`].
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn weight_grad<const CO: usize>(g: &ConvGeom, c: usize, xp: &[f32], dy: &[f32], dw: &mut [f32]) {
        let (h, w, k) = (g.h, g.w, g.k);
        let (hp, wp, hw) = (h + k - 1, row_len(w, k), h * w);
        let mut tmp = [0f32; BLOCK];
        for i in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    let mut a0 = [_mm512_setzero_ps(); CO];
                    let mut a1 = [_mm512_setzero_ps(); CO];
                    for y in 0..h {
                        let xr = xp.as_ptr().add((i * hp + y + ky) * wp + kx);
                        let dr = dy.as_ptr().add(y * w);
                        for x0 in (0..w).step_by(BLOCK) {
                            let (m0, m1) = block_masks(w - x0);
                            let x0v = _mm512_loadu_ps(xr.add(x0));
                            let x1v = _mm512_loadu_ps(xr.add(x0 + 16));
                            // Masked multiply-adds: lanes past the image keep their sum untouched
                            // (an unmasked 0 · x would turn an infinite x into NaN).
                            for o in 0..CO {
                                let d = dr.add(o * hw + x0);
                                a0[o] = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m0, d), x0v, a0[o], m0);
                                if m1 != 0 {
                                    a1[o] = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m1, d.add(16)), x1v, a1[o], m1);
                                }
                            }
                        }
                    }
                    for o in 0..CO {
                        _mm512_storeu_ps(tmp.as_mut_ptr(), a0[o]);
                        _mm512_storeu_ps(tmp.as_mut_ptr().add(16), a1[o]);
                        let sum = super::lane_sum(&tmp);
                        let at = ((o * c + i) * k + ky) * k + kx;
                        dw[at] += sum;
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{row_len, ConvGeom, BLOCK};
    use std::arch::x86_64::*;

    /// Output channels per pass of [`forward`]: `2 · FORWARD_GROUP` accumulators, two pixel
    /// vectors and a broadcast weight fill 15 of the 16 registers.
    pub const FORWARD_GROUP: usize = 6;
    /// Output channels per pass of [`weight_grad`]: `4 · GRAD_GROUP` lane accumulators (a whole
    /// 32-lane block per channel), a pixel vector, a gradient vector and a mask.
    pub const GRAD_GROUP: usize = 3;
    /// Pixels per block of [`forward`]: two 8-lane vectors.
    const PIXELS: usize = 16;

    /// Lane mask of an 8-lane vector whose first `n` (at most 8) lanes are set.
    #[target_feature(enable = "avx2")]
    unsafe fn first_lanes(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    /// [`super::forward`] for f32 with `G` output channels (`wt`, `bias` and `y` start at the
    /// group's first channel; `ld` is the layer's output channel count, the weights' row length):
    /// per output row and 16-pixel block, `2·G` accumulators stay in registers over all input
    /// channels and taps. Every element gets the bias, then one fused multiply-add per (input
    /// channel, tap row, tap column) in that order: the portable kernel's operations.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `G ≤ ld`, `wt.len() ≥ (c·k·k − 1)·ld + G`, `xp` holds
    /// [`super::padded_len`]`(c, h, w, k)`, `y.len() ≥ G·h·w` and a bias `≥ G` (what
    /// `super::forward_in` checks for the whole layer, sliced at the group).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward<const G: usize>(g: &ConvGeom, c: usize, ld: usize, wt: &[f32], bias: Option<&[f32]>, xp: &[f32], y: &mut [f32]) {
        let (h, w, k) = (g.h, g.w, g.k);
        let (hp, wp, hw) = (h + k - 1, row_len(w, k), h * w);
        let mut init = [_mm256_setzero_ps(); G];
        if let Some(b) = bias {
            for (o, v) in init.iter_mut().enumerate() {
                *v = _mm256_set1_ps(b[o]);
            }
        }
        for row in 0..h {
            // Blocks of 16 inside the padded row, whose length is whole 32-pixel blocks plus
            // the border: the loads past the image read its zeros.
            for x0 in (0..w).step_by(PIXELS) {
                let (mut a0, mut a1) = (init, init);
                for ci in 0..c {
                    for ky in 0..k {
                        let xr = xp.as_ptr().add((ci * hp + row + ky) * wp + x0);
                        let wr = wt.as_ptr().add((ci * k + ky) * k * ld);
                        for kx in 0..k {
                            let x0v = _mm256_loadu_ps(xr.add(kx));
                            let x1v = _mm256_loadu_ps(xr.add(kx + 8));
                            let wv = wr.add(kx * ld);
                            for o in 0..G {
                                let b = _mm256_set1_ps(*wv.add(o));
                                a0[o] = _mm256_fmadd_ps(b, x0v, a0[o]);
                                a1[o] = _mm256_fmadd_ps(b, x1v, a1[o]);
                            }
                        }
                    }
                }
                let left = w - x0;
                for o in 0..G {
                    let yo = y.as_mut_ptr().add(o * hw + row * w + x0);
                    if left >= PIXELS {
                        _mm256_storeu_ps(yo, a0[o]);
                        _mm256_storeu_ps(yo.add(8), a1[o]);
                    } else if left > 8 {
                        _mm256_storeu_ps(yo, a0[o]);
                        _mm256_maskstore_ps(yo.add(8), first_lanes(left - 8), a1[o]);
                    } else {
                        // `yo + 8` is not formed: past the end of `y` on the last row.
                        _mm256_maskstore_ps(yo, first_lanes(left), a0[o]);
                    }
                }
            }
        }
    }

    /// [`super::weight_grad`] for f32 with `G` output channels (`dy` and `dw` start at the
    /// group's first channel): per weight column `(i, ky, kx)`, each channel's 32 lane sums in
    /// four 8-lane vectors over all rows and blocks, then reduced in lane order, the portable
    /// kernel's order. Vectors past the image are skipped and the last partial one is blended,
    /// so lanes without a pixel keep their sum untouched, as the portable kernel leaves them.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `xp` holds [`super::padded_len`]`(c, h, w, k)`,
    /// `dy.len() ≥ G·h·w` and `dw.len() ≥ G·c·k·k` (what `super::weight_grad_in` checks for the
    /// whole layer, sliced at the group).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad<const G: usize>(g: &ConvGeom, c: usize, xp: &[f32], dy: &[f32], dw: &mut [f32]) {
        let (h, w, k) = (g.h, g.w, g.k);
        let (hp, wp, hw) = (h + k - 1, row_len(w, k), h * w);
        let mut tmp = [0f32; BLOCK];
        for i in 0..c {
            for ky in 0..k {
                for kx in 0..k {
                    let mut acc = [[_mm256_setzero_ps(); 4]; G];
                    for y in 0..h {
                        let xr = xp.as_ptr().add((i * hp + y + ky) * wp + kx);
                        let dr = dy.as_ptr().add(y * w);
                        for x0 in (0..w).step_by(BLOCK) {
                            for v in 0..4 {
                                let at = x0 + 8 * v;
                                if at >= w {
                                    break;
                                }
                                let xv = _mm256_loadu_ps(xr.add(at));
                                if w - at >= 8 {
                                    for (o, a) in acc.iter_mut().enumerate() {
                                        a[v] = _mm256_fmadd_ps(_mm256_loadu_ps(dr.add(o * hw + at)), xv, a[v]);
                                    }
                                } else {
                                    let m = first_lanes(w - at);
                                    for (o, a) in acc.iter_mut().enumerate() {
                                        let d = _mm256_maskload_ps(dr.add(o * hw + at), m);
                                        a[v] = _mm256_blendv_ps(a[v], _mm256_fmadd_ps(d, xv, a[v]), _mm256_castsi256_ps(m));
                                    }
                                }
                            }
                        }
                    }
                    for (o, a) in acc.iter().enumerate() {
                        for (v, part) in a.iter().enumerate() {
                            _mm256_storeu_ps(tmp.as_mut_ptr().add(8 * v), *part);
                        }
                        let sum = super::lane_sum(&tmp);
                        let at = ((o * c + i) * k + ky) * k + kx;
                        dw[at] += sum;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gemm, im2col, Acc, Engine, Padding, Trans};

    fn vals(n: usize, s: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + s) * 0.731).sin()).collect()
    }

    #[test]
    fn forward_matches_im2col_gemm_for_every_padding() {
        let eng = Engine::new(1).unwrap();
        for pad in [Padding::Zero, Padding::Circular, Padding::Reflect] {
            // 20 and 32 output channels run in groups of `WIDE_GROUP` (the last one partial at 20).
            for (c, co, h, w, k) in
                [(3, 5, 7, 9, 3), (2, 4, 5, 40, 5), (1, 16, 6, 6, 7), (4, 1, 3, 33, 3), (3, 20, 5, 35, 3), (5, 32, 4, 17, 5)]
            {
                let g = ConvGeom::new(c, h, w, k, pad);
                let x = vals(c * h * w, 0.5);
                let wts = vals(co * c * k * k, 2.0);
                let bias = vals(co, 7.0);
                let mut cols = vec![0.0; g.col_rows() * g.hw()];
                let mut want = vec![0.0; co * h * w];
                for o in 0..co {
                    want[o * h * w..(o + 1) * h * w].fill(bias[o]);
                }
                im2col(&eng, &g, &x, &mut cols);
                gemm(&eng, co, h * w, g.col_rows(), &mut want, &wts, Trans::No, &cols, Trans::No, Acc::Add);
                let mut xp = vec![f64::NAN; padded_len(c, h, w, k)];
                pad_into(&g, c, &x, &mut xp);
                let mut wt = vec![0.0; wts.len()];
                arrange_weights(&wts, co, c, k, false, &mut wt);
                let mut got = vec![0.0; co * h * w];
                forward(&g, c, co, &wt, Some(&bias), &xp, &mut got);
                let worst = crate::eval::metrics::max_abs_diff(&got, &want);
                assert!(worst < 1e-12, "{pad:?} c={c} co={co} {h}x{w} k={k}: {worst}");
            }
        }
    }

    /// The vector kernel sets this CPU can run (AVX2, AVX-512), whichever [`forward`] and
    /// [`weight_grad`] dispatch to: on a CPU with neither, none, and the tests below check the
    /// portable kernels alone.
    fn vector_sets() -> Vec<Isa> {
        #[cfg(target_arch = "x86_64")]
        return Isa::ALL.into_iter().filter(|&isa| vector_ok::<f32>(isa)).collect();
        #[cfg(not(target_arch = "x86_64"))]
        Vec::new()
    }

    /// NaN in every padded column past `w + k − 1`, which only the vector kernels' partial
    /// blocks read and must not let into a result (an unmasked `0 · NaN` would).
    fn poison_tail(xp: &mut [f32], w: usize, k: usize) {
        for row in xp.chunks_exact_mut(row_len(w, k)) {
            row[w + k - 1..].fill(f32::NAN);
        }
    }

    #[test]
    fn every_vector_kernel_gives_the_portable_kernels_bits() {
        // Widths with whole and partial 16- and 32-pixel blocks (8, 9, 16, 28, 30, 31, 32, 70),
        // output channel counts that split into even and uneven groups (1, 5, 6, 7, 8, 13, 20,
        // 32), with and without a bias.
        for (c, co, h, w, k, pad) in [
            (8, 8, 28, 28, 5, Padding::Zero),
            (3, 13, 9, 70, 3, Padding::Circular),
            (12, 1, 5, 31, 7, Padding::Reflect),
            (2, 5, 3, 16, 3, Padding::Zero),
            (2, 5, 3, 32, 1, Padding::Circular),
            (4, 20, 6, 28, 3, Padding::Zero),
            (3, 32, 5, 30, 5, Padding::Circular),
            (2, 6, 4, 8, 3, Padding::Zero),
            (3, 7, 3, 9, 5, Padding::Circular),
        ] {
            let g = ConvGeom::new(c, h, w, k, pad);
            let x: Vec<f32> = vals(c * h * w, 0.1).iter().map(|v| *v as f32).collect();
            let wts: Vec<f32> = vals(co * c * k * k, 3.0).iter().map(|v| *v as f32 * 0.1).collect();
            let bias: Vec<f32> = vals(co, 9.0).iter().map(|v| *v as f32).collect();
            let mut xp = vec![0f32; padded_len(c, h, w, k)];
            pad_into(&g, c, &x, &mut xp);
            poison_tail(&mut xp, w, k);
            let mut wt = vec![0f32; wts.len()];
            arrange_weights(&wts, co, c, k, false, &mut wt);
            for bias in [Some(&bias[..]), None] {
                let mut want = vec![0f32; co * h * w];
                portable(&g, c, co, &wt, bias, &xp, &mut want);
                assert!(want.iter().all(|v| v.is_finite()), "the portable kernel read the poisoned tail");
                for isa in vector_sets() {
                    // Sentinels past the image: a kernel must not write there.
                    let mut got = vec![1234.5f32; co * h * w + 40];
                    forward_in(isa, &g, c, co, &wt, bias, &xp, &mut got);
                    let same = got.iter().zip(&want).all(|(p, q)| p.to_bits() == q.to_bits());
                    let b = bias.is_some();
                    assert!(same, "{pad:?} c={c} co={co} {h}x{w} k={k} bias={b}: the {} and portable kernels differ", isa.name());
                    assert!(got[co * h * w..].iter().all(|&v| v == 1234.5), "{}: wrote past y", isa.name());
                }
            }
        }
    }

    #[test]
    fn weight_grad_matches_im2col_gemm_and_its_portable_bits() {
        let eng = Engine::new(1).unwrap();
        for pad in [Padding::Zero, Padding::Circular, Padding::Reflect] {
            for (c, co, h, w, k) in [
                (3, 5, 7, 9, 3),
                (2, 4, 5, 40, 5),
                (1, 16, 6, 6, 7),
                (4, 1, 3, 33, 3),
                (8, 8, 28, 28, 5),
                (2, 3, 4, 16, 3),
                (2, 3, 4, 32, 1),
                (3, 7, 3, 9, 5),
                (2, 13, 2, 6, 3),
                (2, 2, 3, 33, 3),
            ] {
                let g = ConvGeom::new(c, h, w, k, pad);
                let x = vals(c * h * w, 0.5);
                let dy = vals(co * h * w, 3.0);
                let start = vals(co * c * k * k, 8.0);
                let mut cols = vec![0.0; g.col_rows() * g.hw()];
                let mut want = start.clone();
                im2col(&eng, &g, &x, &mut cols);
                gemm(&eng, co, g.col_rows(), h * w, &mut want, &dy, Trans::No, &cols, Trans::Yes, Acc::Add);
                let mut xp = vec![0.0; padded_len(c, h, w, k)];
                pad_into(&g, c, &x, &mut xp);
                let mut got = start.clone();
                weight_grad(&g, c, co, &xp, &dy, &mut got);
                let worst = crate::eval::metrics::max_abs_diff(&got, &want);
                assert!(worst < 1e-11, "{pad:?} c={c} co={co} {h}x{w} k={k}: {worst}");
                // f32: the vector kernel (where the CPU has it) and the portable one agree bitwise.
                let f = |v: &[f64]| v.iter().map(|a| *a as f32).collect::<Vec<f32>>();
                let (mut xp32, dy32) = (f(&xp), f(&dy));
                poison_tail(&mut xp32, w, k);
                let mut b = f(&start);
                portable_weight_grad(&g, c, co, &xp32, &dy32, &mut b);
                for isa in vector_sets() {
                    let mut a = f(&start);
                    weight_grad_in(isa, &g, c, co, &xp32, &dy32, &mut a);
                    let same = a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits());
                    assert!(same, "{pad:?} c={c} co={co} {h}x{w} k={k}: the {} and portable kernels differ", isa.name());
                }
            }
        }
    }

    #[test]
    fn the_adjoint_weights_give_the_input_gradient() {
        // <W ⋆ x, d> == <x, W' ⋆ d> for zero and circular padding (no bias).
        for pad in [Padding::Zero, Padding::Circular] {
            let (c, co, h, w, k) = (3, 4, 6, 7, 5);
            let g = ConvGeom::new(c, h, w, k, pad);
            let x = vals(c * h * w, 1.0);
            let d = vals(co * h * w, 4.0);
            let wts = vals(co * c * k * k, 5.0);
            let (mut xp, mut dp) = (vec![0.0; padded_len(c, h, w, k)], vec![0.0; padded_len(co, h, w, k)]);
            pad_into(&g, c, &x, &mut xp);
            pad_into(&g, co, &d, &mut dp);
            let (mut wt, mut wa) = (vec![0.0; wts.len()], vec![0.0; wts.len()]);
            arrange_weights(&wts, co, c, k, false, &mut wt);
            arrange_weights(&wts, co, c, k, true, &mut wa);
            let (mut y, mut dx) = (vec![0.0; co * h * w], vec![0.0; c * h * w]);
            forward(&g, c, co, &wt, None, &xp, &mut y);
            forward(&g, co, c, &wa, None, &dp, &mut dx);
            let lhs: f64 = y.iter().zip(&d).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{pad:?}: {lhs} vs {rhs}");
        }
    }
}
