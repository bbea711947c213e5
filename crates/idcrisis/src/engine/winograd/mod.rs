//! Winograd minimal-filtering convolution F(m×m, r×r) for zero-padded, stride-1 "same"
//! convolutions, forward and both backward passes.
//!
//! A `k×k` convolution over `h×w` is cut into `m×m` output tiles, each computed from an
//! `n×n` input tile (`n = m + r − 1`) as `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`. Summed over input
//! channels, the elementwise products become one GEMM per transform point `ξ` (there are
//! `P = n²`): `M_ξ [c_out, tiles] = U_ξ [c_out, c_in] · V_ξ [c_in, tiles]`. For F(2×2, 5×5)
//! a 2×2 output tile costs 36 multiplies per channel pair instead of 4·25 = 100 (2.8× fewer);
//! F(4×4, 5×5) costs 64 instead of 400 (6.25× fewer), with more rounding error.
//!
//! * Input gradient: the same algorithm on the zero-padded `dY` with the flipped,
//!   channel-transposed kernel, whose transform is `G flip(g) Gᵀ`.
//! * Weight gradient: `∂L/∂U_ξ = (A dY Aᵀ)_ξ ⊙ V_ξ` summed over tiles — again one GEMM per ξ —
//!   then `∂L/∂g = Gᵀ (∂L/∂U) G`.
//!
//! The data transforms work on channel-last images (`[h, w, c]`), 16 channels per vector: each
//! is separable (columns, then rows), compiled for AVX-512 or AVX2 when the CPU has them
//! ([`Isa`]), and in f32 under AVX-512 written with explicit intrinsics. Transformed data are
//! stored tile-major, `[tiles, P, c]`, with each tile's `P·c` values padded to an odd number of cache lines
//! ([`WinoConv::tile_stride`]: unpadded, a 16-channel F(4×4, 5×5) tile is exactly 4 KB, and the
//! rows a per-ξ product reads all fell in one L1 set); the per-ξ GEMMs read them through
//! strides ([`gemm_batch`]), each single-threaded and spread over the pool, so results do not
//! depend on the thread count.
//! Consecutive Winograd layers hand each other channel-last activations ([`Layouts`]), so only
//! the boundaries with channel-first layers transpose. The kernel transforms are products too,
//! cut into blocks of [`PAIRS`] channel pairs so that each is small (`gemm_small` in f32: a
//! Winograd layer of up to 64 channels calls no `gemm`-crate product in a step, so it allocates
//! nothing); in f32 they skip the structural zeros of `G ⊗ G` (the rows of `G` for the points 0
//! and ∞ have one nonzero each), which gives the same bits, and the forward's reads the weights
//! in place when the output channels are whole blocks.
//!
//! The transform matrices come from Cook–Toom interpolation at the points 0, ±1, ±½, ±2, … and
//! ∞, computed in f64 (see [`WinoMats::new`]); `tests` checks the convolution and both gradients
//! against the direct definition.
//!
//! Files:
//!
//! * `matrices.rs`: the transform matrices, [`WinoMats`] (f64, built once per plan), their
//!   copies in the working float type for the transforms, and [`MAX_TILE`].
//! * `plan.rs`: the plan [`WinoConv`] (geometry, tiles, images per chunk, scratch layout), the
//!   activation [`Layouts`] and the [`SUPPORTED`] tile/kernel pairs.
//! * `simd.rs`: the data transforms (input, output, output-gradient), vectorised over channels
//!   and dispatched per tile size and instruction set ([`Isa`]).
//! * `explicit.rs`: the same transforms in f32 with explicit AVX-512 or AVX2 intrinsics (the
//!   same bits), which `simd.rs` runs when the CPU has them; they also skip the structural
//!   zeros of `Bᵀ` and `A`.
//! * this file: the forward and backward passes, which chain transposes, transforms and the
//!   per-ξ GEMMs.

#[cfg(target_arch = "x86_64")]
mod explicit;
mod matrices;
mod plan;
mod simd;

pub use self::matrices::{WinoMats, MAX_TILE};
pub use self::plan::{Layouts, WinoConv, SUPPORTED};
pub use self::simd::Isa;

use self::matrices::Small;
use self::plan::Parts;
use self::simd::Window;
use super::{gemm_batch, gemm_batch_skipping, transpose, Acc, Engine, Sparsity, Strides};
use crate::float::Float;

impl WinoConv {
    /// Forward of `n` images `x [n, c_in, h, w]` → `y [n, c_out, h, w]` with weights
    /// `wt [c_out, c_in, r, r]` and optional bias `[c_out]`. `io.x_cl` / `io.y_cl` say that `x` /
    /// `y` are channel-last (`[n, h, w, c]`) instead. When `store` is given, the transformed
    /// input is kept there for [`WinoConv::backward`] (`n·store_len()` elements).
    #[allow(clippy::too_many_arguments)]
    pub fn forward<T: Float>(
        &self,
        eng: &Engine,
        wt: &[T],
        bias: Option<&[T]>,
        x: &[T],
        y: &mut [T],
        io: Layouts,
        mut store: Option<&mut [T]>,
        scratch: &mut [T],
        n: usize,
    ) {
        let p = self.mats.p();
        let (ci, co, hw, t) = (self.c_in, self.c_out, self.h * self.w, self.tiles());
        let ps = self.pair_stride();
        let sm = Small::<T>::new(&self.mats);
        let Parts { gk, u, u2: ut, sa, sb, sc, sd, .. } = self.parts(scratch);
        self.forward_kernels(eng, wt, gk, u, ut, co.is_multiple_of(PAIRS));
        let chunk = if store.is_some() { self.chunk() } else { self.eval_chunk() };
        for i0 in (0..n).step_by(chunk) {
            let nc = chunk.min(n - i0);
            let nt = nc * t;
            // Channel-last input, then V [nt, P, c_in] (kept for the backward pass when training).
            let xc = &x[i0 * ci * hw..(i0 + nc) * ci * hw];
            let xt: &[T] = if io.x_cl {
                xc
            } else {
                transpose(eng, xc, nc, ci, hw, &mut sc[..nc * hw * ci]);
                &sc[..nc * hw * ci]
            };
            let v: &mut [T] = match store.as_deref_mut() {
                Some(st) => &mut st[i0 * self.store_len()..(i0 + nc) * self.store_len()],
                None => &mut sa[..self.tile_stride(ci) * nt],
            };
            self.window_transform(eng, &sm, Window::Input, xt, ci, nc, v);
            // M_ξᵀ [nt, c_out] = V_ξ [nt, c_in] · U_ξᵀ, into M [nt, P, c_out].
            let mm = &mut sb[..self.tile_stride(co) * nt];
            let utl = Strides { batch: ps, row: co, col: 1 };
            gemm_batch(eng, p, nt, co, ci, mm, self.tm(co), v, self.tm(ci), ut, utl, Acc::Overwrite);
            let yc = &mut y[i0 * co * hw..(i0 + nc) * co * hw];
            if io.y_cl {
                self.output_transform(eng, &sm, mm, co, nc, bias, yc);
            } else {
                let yt = &mut sd[..nc * hw * co];
                self.output_transform(eng, &sm, mm, co, nc, bias, yt);
                transpose(eng, yt, nc, hw, co, yc);
            }
        }
    }

    /// Backward of `n` images after [`WinoConv::forward`] stored `stored`. Writes `dW` into
    /// `dw [c_out, c_in, r, r]` when `n > 0` (overwriting it: adding into zeros gave the same
    /// bits, and the zeroing streamed a weight-sized buffer once more per step); writes
    /// `dx [n, c_in, h, w]` when given. `dy` is channel-last
    /// when `io.y_cl`, and `dx` is written channel-last when `io.x_cl` (the layouts of the
    /// forward's output and input). (The bias gradient is the caller's: it does not involve the
    /// transforms.)
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Float>(
        &self,
        eng: &Engine,
        wt: &[T],
        dw: &mut [T],
        stored: &[T],
        dy: &[T],
        mut dx: Option<&mut [T]>,
        io: Layouts,
        scratch: &mut [T],
        n: usize,
    ) {
        let (p, r2) = (self.mats.p(), self.mats.r * self.mats.r);
        let (ci, co, hw, t) = (self.c_in, self.c_out, self.h * self.w, self.tiles());
        let ps = self.pair_stride();
        let sm = Small::<T>::new(&self.mats);
        let Parts { gk, gf, u: du, u2, sa, sb, sc, sd } = self.parts(scratch);
        if dx.is_some() {
            // U' [P, c_out·c_in] (rows `ps` apart): transform of the flipped kernel.
            kernel_transform(eng, p, co * ci, ps, r2, u2, gf, &self.mats.gf_zeros, wt);
        }
        let chunk = self.chunk();
        let ul = Strides { batch: ps, row: ci, col: 1 };
        for (ck, i0) in (0..n).step_by(chunk).enumerate() {
            let nc = chunk.min(n - i0);
            let nt = nc * t;
            let dyc = &dy[i0 * co * hw..(i0 + nc) * co * hw];
            let dyt: &[T] = if io.y_cl {
                dyc
            } else {
                transpose(eng, dyc, nc, co, hw, &mut sc[..nc * hw * co]);
                &sc[..nc * hw * co]
            };
            let v = &stored[i0 * self.store_len()..(i0 + nc) * self.store_len()];
            // Weight gradient: E = A dY Aᵀ per tile, [nt, P, c_out]; then
            // dU_ξ [c_out, c_in] (+)= E_ξᵀ · V_ξ, summed over chunks.
            let e = &mut sa[..self.tile_stride(co) * nt];
            self.window_transform(eng, &sm, Window::Grad, dyt, co, nc, e);
            let et = Strides { batch: co, row: 1, col: self.tile_stride(co) };
            let acc = if ck > 0 { Acc::Add } else { Acc::Overwrite };
            gemm_batch(eng, p, co, ci, nt, du, ul, e, et, v, self.tm(ci), acc);
            if let Some(dx) = dx.as_deref_mut() {
                // Input gradient: Winograd forward of dY with the flipped, transposed kernel:
                // M'_ξᵀ [nt, c_in] = V'_ξ [nt, c_out] · U'_ξ [c_out, c_in].
                let vv = &mut sa[..self.tile_stride(co) * nt];
                self.window_transform(eng, &sm, Window::Input, dyt, co, nc, vv);
                let mm = &mut sb[..self.tile_stride(ci) * nt];
                gemm_batch(eng, p, nt, ci, co, mm, self.tm(ci), vv, self.tm(co), u2, ul, Acc::Overwrite);
                let dxc = &mut dx[i0 * ci * hw..(i0 + nc) * ci * hw];
                if io.x_cl {
                    self.output_transform(eng, &sm, mm, ci, nc, None, dxc);
                } else {
                    let xt = &mut sd[..nc * hw * ci];
                    self.output_transform(eng, &sm, mm, ci, nc, None, xt);
                    transpose(eng, xt, nc, hw, ci, dxc);
                }
            }
        }
        if n > 0 {
            // dW [c_out·c_in, r²] = dUᵀ · Gk.
            kernel_gradient(eng, p, co * ci, ps, r2, dw, du, gk);
        }
    }

    /// The forward's kernel transform: `Uᵀ [P, c_in·c_out]` (rows [`WinoConv::pair_stride`]
    /// apart, in `ut`) = `Gk [P, r²] · W'ᵀ`, with `W' [c_in·c_out, r²]` the weights
    /// `wt [c_out, c_in, r²]` with their kernels in (c_in, c_out) order, so that the per-ξ
    /// products read rows of c_out contiguous. Each element is the sum it would be in U's order
    /// (the products sum each column alone), so this is U transposed, bit for bit, without a
    /// transpose of U (P/r² times larger than the weights).
    ///
    /// `in_place` (c_out a multiple of [`PAIRS`]; the caller's choice, the same bits either way):
    /// each block of PAIRS output channels of one input channel reads its kernels where they
    /// are, `c_in·r²` apart (gathered into the products' pack). Otherwise the kernels are first
    /// copied into (c_in, c_out) order in `u` (which holds P ≥ r² per pair) and transformed from
    /// there.
    #[allow(clippy::too_many_arguments)]
    fn forward_kernels<T: Float>(&self, eng: &Engine, wt: &[T], gk: &[T], u: &mut [T], ut: &mut [T], in_place: bool) {
        let (p, r2, ci, co) = (self.mats.p(), self.mats.r * self.mats.r, self.c_in, self.c_out);
        let (ps, zeros) = (self.pair_stride(), Some(&self.mats.gk_zeros));
        if in_place {
            assert!(co.is_multiple_of(PAIRS), "forward_kernels: {co} output channels are not whole blocks of {PAIRS}");
            let (gl, wl) = (Strides { batch: 0, row: r2, col: 1 }, Strides { batch: r2, row: 1, col: ci * r2 });
            let ul = Strides { batch: co, row: ps, col: 1 };
            for ob in (0..co).step_by(PAIRS) {
                let (ub, wb) = (&mut ut[ob..], &wt[ob * ci * r2..]);
                gemm_batch_skipping(eng, ci, p, PAIRS, r2, ub, ul, gk, gl, wb, wl, Acc::Overwrite, zeros);
            }
            return;
        }
        let wp = &mut u[..co * ci * r2];
        // One input channel's kernels per task, on the pool when the copy is large (on one
        // thread, 16384 kernels left the other thread idle long enough to sleep).
        let copy = |i: usize, dst: &mut [T]| match r2 {
            9 => copy_kernels::<T, 9>(dst, wt, i, ci),
            25 => copy_kernels::<T, 25>(dst, wt, i, ci),
            49 => copy_kernels::<T, 49>(dst, wt, i, ci),
            _ => unreachable!("no Winograd plan has a {r2}-value kernel"),
        };
        eng.chunks(wp.len(), wp, co * r2, copy);
        kernel_transform(eng, p, co * ci, ps, r2, ut, gk, &self.mats.gk_zeros, wp);
    }
}

/// `dst [c_out, R2]` = input channel `i`'s kernels of `wt [c_out, c_in, R2]`, by fixed-size copies
/// (a `memcpy` call per 25-value kernel was 2% of a 20-layer 128-channel step).
fn copy_kernels<T: Float, const R2: usize>(dst: &mut [T], wt: &[T], i: usize, ci: usize) {
    for (o, d) in dst.chunks_exact_mut(R2).enumerate() {
        let s = (o * ci + i) * R2;
        let d: &mut [T; R2] = d.try_into().expect("R2 values");
        *d = *<&[T; R2]>::try_from(&wt[s..s + R2]).expect("R2 values");
    }
}

/// Kernel-transform products are cut into blocks of this many channel pairs, each one small
/// product ([`gemm_batch`], so `gemm_small` for f32), the blocks spread over the pool.
const PAIRS: usize = 64;

/// `U [P, cc] = G [P, r²] · Wᵀ` for weights `wt [cc, r²]` (`cc = c_out·c_in` channel pairs; U's
/// rows `ps ≥ cc` apart, [`WinoConv::pair_stride`]): the kernel transform, in column blocks of
/// [`PAIRS`], skipping `G`'s structural zeros `zeros` (the same bits).
#[allow(clippy::too_many_arguments)]
fn kernel_transform<T: Float>(eng: &Engine, p: usize, cc: usize, ps: usize, r2: usize, u: &mut [T], g: &[T], zeros: &Sparsity, wt: &[T]) {
    let (full, rest) = (cc / PAIRS, cc % PAIRS);
    let gl = Strides { batch: 0, row: r2, col: 1 };
    // Block b: columns b·PAIRS.. of U, from rows b·PAIRS.. of W read transposed.
    let wl = Strides { batch: PAIRS * r2, row: 1, col: r2 };
    let z = Some(zeros);
    gemm_batch_skipping(eng, full, p, PAIRS, r2, u, Strides { batch: PAIRS, row: ps, col: 1 }, g, gl, wt, wl, Acc::Overwrite, z);
    if rest > 0 {
        let (u, wt) = (&mut u[full * PAIRS..], &wt[full * PAIRS * r2..]);
        gemm_batch_skipping(eng, 1, p, rest, r2, u, Strides { batch: rest, row: ps, col: 1 }, g, gl, wt, wl, Acc::Overwrite, z);
    }
}

/// `dW [cc, r²] = dUᵀ · G` for `du [P, cc]` (rows `ps ≥ cc` apart) and `g [P, r²]`: the kernel
/// transform's adjoint, in row blocks of [`PAIRS`].
#[allow(clippy::too_many_arguments)]
fn kernel_gradient<T: Float>(eng: &Engine, p: usize, cc: usize, ps: usize, r2: usize, dw: &mut [T], du: &[T], g: &[T]) {
    let (full, rest) = (cc / PAIRS, cc % PAIRS);
    let gl = Strides { batch: 0, row: r2, col: 1 };
    // Block b: rows b·PAIRS.. of dW, from columns b·PAIRS.. of dU read transposed.
    let dl = Strides { batch: PAIRS, row: 1, col: ps };
    let wl = Strides { batch: PAIRS * r2, row: r2, col: 1 };
    gemm_batch(eng, full, PAIRS, r2, p, dw, wl, du, dl, g, gl, Acc::Overwrite);
    if rest > 0 {
        let (dw, du) = (&mut dw[full * PAIRS * r2..], &du[full * PAIRS..]);
        gemm_batch(eng, 1, rest, r2, p, dw, wl, du, dl, g, gl, Acc::Overwrite);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(x: &[f64], wt: &[f64], ci: usize, co: usize, h: usize, w: usize, r: usize) -> Vec<f64> {
        let p = (r / 2) as isize;
        let mut y = vec![0.0; co * h * w];
        for o in 0..co {
            for i in 0..ci {
                for yy in 0..h {
                    for xx in 0..w {
                        for ky in 0..r {
                            for kx in 0..r {
                                let (sy, sx) = (yy as isize + ky as isize - p, xx as isize + kx as isize - p);
                                if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                                    y[(o * h + yy) * w + xx] +=
                                        wt[((o * ci + i) * r + ky) * r + kx] * x[(i * h + sy as usize) * w + sx as usize];
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    /// The kernel transform and its adjoint against naive f64 products, for channel-pair counts
    /// under one block, one block exactly, and whole blocks plus a remainder, on 1 and 2
    /// threads, in f32 (`gemm_small`, skipping G's zeros) and f64 (the `gemm` crate). `G` has
    /// the zeros of a real one (rows with one nonzero, as for the points 0 and ∞) and more; in
    /// f32 the transform gives the dense product's bits.
    #[test]
    fn kernel_transforms_match_naive_products_in_every_blocking() {
        check_kernel_transforms::<f32>(1e-5);
        check_kernel_transforms::<f64>(1e-12);
    }

    fn check_kernel_transforms<T: Float>(tol: f64) {
        let (p, r2) = (36, 9);
        let vals = |len: usize, f: f64| -> Vec<T> { (0..len).map(|i| T::from_f64((i as f64 * f).sin())).collect() };
        let f = |x: T| <T as Float>::to_f64(x);
        // Zeros: rows 0 and 35 keep one term (as the points 0 and ∞ do), rows 7..10 four, and
        // a scattering elsewhere; so the rows fall into several classes of different sizes.
        let g: Vec<T> = vals(p * r2, 0.61)
            .into_iter()
            .enumerate()
            .map(|(e, v)| {
                let (row, t) = (e / r2, e % r2);
                let zero = match row {
                    0 => t != 0,
                    35 => t != r2 - 1,
                    7..=10 => t % 2 == 1,
                    _ => (row * 7 + t * 3).is_multiple_of(11),
                };
                if zero {
                    T::zero()
                } else {
                    v
                }
            })
            .collect();
        let zeros = Sparsity::of(&g.iter().map(|&v| f(v)).collect::<Vec<_>>(), p, r2);
        for threads in [1, 2] {
            let eng = Engine::new(threads).unwrap();
            for cc in [6, PAIRS, PAIRS + 8, 4 * PAIRS + 5] {
                // U's rows back to back and padded (the padding NaN: never written, never read).
                for ps in [cc, cc + 16] {
                    let wt = vals(cc * r2, 0.23);
                    let mut u = vec![T::nan(); p * ps];
                    kernel_transform(&eng, p, cc, ps, r2, &mut u, &g, &zeros, &wt);
                    // The dense product (no zeros skipped) gives the same bits.
                    let mut dense = vec![T::nan(); p * ps];
                    let (full, rest) = (cc / PAIRS, cc % PAIRS);
                    let (gl, wl) = (Strides { batch: 0, row: r2, col: 1 }, Strides { batch: PAIRS * r2, row: 1, col: r2 });
                    let ul = |b| Strides { batch: b, row: ps, col: 1 };
                    gemm_batch(&eng, full, p, PAIRS, r2, &mut dense, ul(PAIRS), &g, gl, &wt, wl, Acc::Overwrite);
                    if rest > 0 {
                        let (d, w) = (&mut dense[full * PAIRS..], &wt[full * PAIRS * r2..]);
                        gemm_batch(&eng, 1, p, rest, r2, d, ul(rest), &g, gl, w, wl, Acc::Overwrite);
                    }
                    let bits = |v: &[T]| v.iter().map(|x| f(*x).to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&u), bits(&dense), "cc={cc} ps={ps}: skipping G's zeros changed U");
                    for (xi, row) in u.chunks(ps).enumerate() {
                        for (j, got) in row.iter().enumerate() {
                            if j >= cc {
                                assert!(got.is_nan(), "cc={cc} ps={ps}: the padding U[{xi},{j}] was written");
                                continue;
                            }
                            let want: f64 = (0..r2).map(|t| f(g[xi * r2 + t]) * f(wt[j * r2 + t])).sum();
                            assert!((f(*got) - want).abs() < tol, "cc={cc} ps={ps} U[{xi},{j}]: {got} vs {want}");
                        }
                    }
                    let mut du = vals(p * ps, 0.17);
                    for row in du.chunks_mut(ps) {
                        row[cc..].fill(T::nan());
                    }
                    // dW starts at 0.5: the adjoint overwrites it.
                    let mut dw = vec![T::from_f64(0.5); cc * r2];
                    kernel_gradient(&eng, p, cc, ps, r2, &mut dw, &du, &g);
                    for j in 0..cc {
                        for t in 0..r2 {
                            let want = (0..p).map(|xi| f(du[xi * ps + j]) * f(g[xi * r2 + t])).sum::<f64>();
                            let got = f(dw[j * r2 + t]);
                            assert!((got - want).abs() < tol * p as f64, "cc={cc} ps={ps} dW[{j},{t}]: {got} vs {want}");
                        }
                    }
                }
            }
        }
    }

    /// The forward's kernel transform reading the weights in place (output channels whole
    /// blocks of PAIRS) and through the copy give the same bits, both the naive product's values,
    /// in f32 and f64, for F(4×4, 5×5) and F(4×4, 3×3); the padding of U's rows stays unwritten.
    #[test]
    fn forward_kernels_in_place_and_copied_agree() {
        check_forward_kernels::<f32>(1e-5);
        check_forward_kernels::<f64>(1e-12);
    }

    fn check_forward_kernels<T: Float>(tol: f64) {
        let f = |x: T| <T as Float>::to_f64(x);
        for threads in [1, 2] {
            let eng = Engine::new(threads).unwrap();
            for (r, ci, co) in [(5, 3, PAIRS), (3, 2, 2 * PAIRS)] {
                let wc = WinoConv::new(4, r, ci, co, 8, 8);
                let (p, r2, ps) = (wc.mats.p(), r * r, wc.pair_stride());
                let wt: Vec<T> = (0..co * ci * r2).map(|i| T::from_f64((i as f64 * 0.37).sin())).collect();
                let mut outs = Vec::new();
                for in_place in [true, false] {
                    let mut scratch = vec![T::nan(); wc.scratch_len()];
                    let Parts { gk, u, u2, .. } = wc.parts(&mut scratch);
                    wc.forward_kernels(&eng, &wt, gk, u, u2, in_place);
                    for xi in 0..p {
                        for i in 0..ci {
                            for o in 0..co {
                                let want: f64 = (0..r2).map(|t| wc.mats.gk[xi * r2 + t] * f(wt[(o * ci + i) * r2 + t])).sum();
                                let got = f(u2[xi * ps + i * co + o]);
                                let tol = tol * (1.0 + want.abs());
                                assert!((got - want).abs() < tol, "r={r} in_place={in_place} U[{xi}][{i},{o}]: {got} vs {want}");
                            }
                        }
                        assert!(u2[xi * ps + ci * co..(xi + 1) * ps].iter().all(|v| v.is_nan()), "r={r}: U's padding was written");
                    }
                    outs.push(u2[..p * ps].iter().map(|v| f(*v).to_bits()).collect::<Vec<_>>());
                }
                assert_eq!(outs[0], outs[1], "r={r} c_out={co}: in place and copied differ");
            }
        }
    }

    #[test]
    fn forward_matches_direct_for_every_tile_and_kernel() {
        let eng = Engine::new(2).unwrap();
        for (m, r, h, w) in [
            (2, 3, 6, 6),
            (4, 3, 7, 9),
            (2, 5, 8, 5),
            (4, 5, 9, 12),
            (2, 7, 7, 7),
            (2, 5, 28, 28),
            (4, 3, 5, 37),
            (2, 5, 5, 37),
            (4, 5, 12, 12),
            (4, 5, 6, 7),
        ] {
            // Channel counts below, at and above one 16-lane block, and output channels in a
            // whole block of kernel-transform pairs (the weights read in place).
            let (ci, co) = if h == 12 {
                (20, 17)
            } else if h == 28 {
                (16, 16)
            } else if (h, w) == (6, 7) {
                (2, PAIRS)
            } else {
                (3, 2)
            };
            let mut wc = WinoConv::new(m, r, ci, co, h, w);
            wc.target_elems = 1; // one image per chunk: two chunks
            let x: Vec<f64> = (0..2 * ci * h * w).map(|i| (i as f64 * 0.37).sin()).collect();
            let wt: Vec<f64> = (0..co * ci * r * r).map(|i| (i as f64 * 0.71).cos()).collect();
            let bias: Vec<f64> = (0..co).map(|i| 0.25 - 0.125 * i as f64).collect();
            let mut y = vec![0.0; 2 * co * h * w];
            // NaN everywhere the forward must write before it reads (the padding of each tile's
            // stride included), so a read of anything unwritten shows in y.
            let mut scratch = vec![f64::NAN; wc.scratch_len()];
            let mut store = vec![f64::NAN; 2 * wc.store_len()];
            wc.forward(&eng, &wt, Some(&bias), &x, &mut y, Layouts::default(), Some(&mut store), &mut scratch, 2);
            for img in 0..2 {
                let want = direct(&x[img * ci * h * w..(img + 1) * ci * h * w], &wt, ci, co, h, w, r);
                for (k, (a, b)) in y[img * co * h * w..].iter().zip(&want).enumerate() {
                    let b = b + bias[k / (h * w)];
                    assert!((a - b).abs() < 1e-10, "F({m},{r}) {h}x{w} img {img} [{k}]: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn backward_is_the_adjoint_of_forward() {
        // <dy, conv(x; w)> is bilinear: its gradient in w is dW and in x is dX. Check both
        // against the direct definition through directional derivatives.
        let eng = Engine::new(2).unwrap();
        for (m, r, h, w) in [(2, 3, 5, 6), (4, 3, 8, 8), (2, 5, 7, 7), (4, 5, 8, 9), (2, 7, 6, 9)] {
            let (ci, co, n) = (2, 3, 3);
            let mut wc = WinoConv::new(m, r, ci, co, h, w);
            // Two images per chunk: a full chunk and a partial one, dU summed across them.
            wc.target_elems = 2 * wc.mats.p() * ci.max(co) * wc.tiles();
            let x: Vec<f64> = (0..n * ci * h * w).map(|i| (i as f64 * 0.13).sin()).collect();
            let wt: Vec<f64> = (0..co * ci * r * r).map(|i| (i as f64 * 0.29).cos()).collect();
            let dy: Vec<f64> = (0..n * co * h * w).map(|i| (i as f64 * 0.53).sin()).collect();
            let mut y = vec![0.0; n * co * h * w];
            let mut scratch = vec![f64::NAN; wc.scratch_len()];
            let mut store = vec![f64::NAN; n * wc.store_len()];
            let mut dw = vec![1.0; wt.len()];
            let mut dx = vec![0.0; x.len()];
            wc.forward(&eng, &wt, None, &x, &mut y, Layouts::default(), Some(&mut store), &mut scratch, n);
            wc.backward(&eng, &wt, &mut dw, &store, &dy, Some(&mut dx), Layouts::default(), &mut scratch, n);
            let obj = |x: &[f64], wt: &[f64]| -> f64 {
                (0..n)
                    .map(|i| {
                        let yy = direct(&x[i * ci * h * w..(i + 1) * ci * h * w], wt, ci, co, h, w, r);
                        yy.iter().zip(&dy[i * co * h * w..]).map(|(a, b)| a * b).sum::<f64>()
                    })
                    .sum()
            };
            // The objective is linear in each argument, so <grad, e_k> = obj(e_k) exactly.
            for k in 0..wt.len() {
                let mut e = vec![0.0; wt.len()];
                e[k] = 1.0;
                let want = obj(&x, &e); // dw started at 1: backward overwrites it
                assert!((dw[k] - want).abs() < 1e-9, "F({m},{r}) dW[{k}]: {} vs {want}", dw[k]);
            }
            for k in (0..x.len()).step_by(3) {
                let mut e = vec![0.0; x.len()];
                e[k] = 1.0;
                let want = obj(&e, &wt);
                assert!((dx[k] - want).abs() < 1e-9, "F({m},{r}) dX[{k}]: {} vs {want}", dx[k]);
            }
        }
    }
}
