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
//! is separable (columns, then rows) with its accumulators in registers, and is compiled for
//! AVX-512 or AVX2 when the CPU has them ([`Isa`]). Transformed data are stored tile-major,
//! `[tiles, P, c]`; the per-ξ GEMMs read them through strides ([`gemm_batch`]), each
//! single-threaded and spread over the pool, so results do not depend on the thread count.
//! Consecutive Winograd layers hand each other channel-last activations ([`Layouts`]), so only
//! the boundaries with channel-first layers transpose. The kernel transforms are small dense
//! GEMMs.
//!
//! The transform matrices come from Cook–Toom interpolation at the points 0, ±1, ±½, ±2, … and
//! ∞, computed in f64 (see [`WinoMats::new`]); `tests` checks the convolution and both gradients
//! against the direct definition.

use super::{gemm, gemm_batch, transpose, Engine, Strides};
use crate::float::Float;
use rayon::prelude::*;

/// Target size, in elements, of one transformed-data buffer of a chunk of a batch: bounds the
/// scratch memory (a few such buffers, 2 MB each in f32, so they stay in cache; 16 MB ran 40%
/// slower on the 32-channel probe benchmark) while keeping several images per pass.
const TARGET_ELEMS: usize = 1 << 19;

/// Largest input-tile side `n` supported (F(2×2, 7×7) or F(4×4, 5×5)).
pub const MAX_TILE: usize = 8;

/// Winograd transform matrices for F(m×m, r×r), row-major, in f64.
#[derive(Debug, Clone)]
pub struct WinoMats {
    /// Output tile side.
    pub m: usize,
    /// Kernel side.
    pub r: usize,
    /// Input tile side, `m + r − 1`.
    pub n: usize,
    /// 1-D output transform `Aᵀ [m, n]`.
    pub at: Vec<f64>,
    /// 1-D input transform `Bᵀ [n, n]`.
    pub bt: Vec<f64>,
    /// 2-D kernel transform `[n², r²]`: `U[(a,b)] = Σ gk[(a,b),(y,x)] g[y,x]`.
    pub gk: Vec<f64>,
    /// Transform of the flipped kernel `[n², r²]`: `gf[(a,b),(y,x)] = gk[(a,b),(r−1−y,r−1−x)]`.
    pub gf: Vec<f64>,
}

/// The finite interpolation points, in the usual order of preference (small magnitudes first).
fn points(count: usize) -> Vec<f64> {
    let mut p = vec![0.0];
    let mut mag = 1.0f64;
    while p.len() < count {
        for v in [mag, -mag, 1.0 / (mag + 1.0), -1.0 / (mag + 1.0)] {
            if p.len() < count && !p.contains(&v) {
                p.push(v);
            }
        }
        mag += 1.0;
    }
    p.truncate(count);
    p
}

impl WinoMats {
    /// Build F(m×m, r×r). With points `p_0…p_{n−2}` and ∞: the 1-D Vandermonde matrix
    /// `Vm [n×n]` (rows `p_j^t`, last row `e_{n−1}`), and `H [n×m]`, `G [n×r]` (the same rows,
    /// truncated). Polynomial multiplication gives the linear convolution `c = Vm⁻¹ diag(Gg) H h`;
    /// its transpose in `h` is the correlation `y = Hᵀ diag(Gg) Vm⁻ᵀ d`, so `Aᵀ = Hᵀ`, `Bᵀ = Vm⁻ᵀ`.
    pub fn new(m: usize, r: usize) -> Self {
        assert!(m >= 1 && r >= 1 && m + r - 1 <= MAX_TILE, "F({m},{r}) needs tiles of at most {MAX_TILE}");
        let n = m + r - 1;
        let pts = points(n - 1);
        let row = |j: usize, len: usize| -> Vec<f64> {
            if j + 1 == n {
                (0..len).map(|t| if t + 1 == len { 1.0 } else { 0.0 }).collect()
            } else {
                (0..len).map(|t| pts[j].powi(t as i32)).collect()
            }
        };
        let vm = nalgebra::DMatrix::from_fn(n, n, |j, t| row(j, n)[t]);
        let vinv = vm.try_inverse().expect("Cook–Toom points are distinct, so Vm is invertible");
        let at: Vec<f64> = (0..m).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| row(j, m)[i]).collect();
        let bt: Vec<f64> = (0..n).flat_map(|a| (0..n).map(move |u| (a, u))).map(|(a, u)| vinv[(u, a)]).collect();
        let g: Vec<f64> = (0..n).flat_map(|a| row(a, r)).collect();
        let r2 = r * r;
        let mut gk = vec![0.0; n * n * r2];
        let mut gf = vec![0.0; n * n * r2];
        for a in 0..n {
            for b in 0..n {
                let xi = a * n + b;
                for y in 0..r {
                    for x in 0..r {
                        gk[xi * r2 + y * r + x] = g[a * r + y] * g[b * r + x];
                        gf[xi * r2 + (r - 1 - y) * r + (r - 1 - x)] = g[a * r + y] * g[b * r + x];
                    }
                }
            }
        }
        WinoMats { m, r, n, at, bt, gk, gf }
    }

    /// Transform points `P = n²`.
    pub fn p(&self) -> usize {
        self.n * self.n
    }
}

/// Which of a convolution's activations are channel-last (`[n, h, w, c]`) rather than
/// channel-first (`[n, c, h, w]`). Consecutive Winograd layers pass channel-last activations, so
/// no layout transposes run between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layouts {
    /// The input `x` (and so the input gradient `dx`).
    pub x_cl: bool,
    /// The output `y` (and so the output gradient `dy`).
    pub y_cl: bool,
}

/// The (m, r) pairs with specialised transforms: F(2, 3), F(2, 5), F(2, 7), F(4, 3), F(4, 5).
pub const SUPPORTED: [(usize, usize); 5] = [(2, 3), (2, 5), (2, 7), (4, 3), (4, 5)];

/// Call `$self.$f::<T, M, N>(args)` for the plan's tile sizes (compile-time, so the transform
/// loops unroll), in the widest instruction set this CPU has (see [`Isa`]).
macro_rules! dispatch {
    ($self:ident, $f:ident, $($arg:expr),*) => {
        match ($self.mats.m, $self.mats.n) {
            (2, 4) => isa_call!($self, $f, 2, 4, $($arg),*),
            (2, 6) => isa_call!($self, $f, 2, 6, $($arg),*),
            (2, 8) => isa_call!($self, $f, 2, 8, $($arg),*),
            (4, 6) => isa_call!($self, $f, 4, 6, $($arg),*),
            (4, 8) => isa_call!($self, $f, 4, 8, $($arg),*),
            (m, n) => unreachable!("F({m}, {}) has no specialised transforms", n + 1 - m),
        }
    };
}

macro_rules! isa_call {
    ($self:ident, $f:ident, $m:literal, $n:literal, $($arg:expr),*) => {
        match Isa::detect() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` returned Avx512 only after `is_x86_feature_detected!("avx512f")`
            // said this CPU has AVX-512F, the one feature the wrapper is compiled for.
            Isa::Avx512 => unsafe { $self.with_avx512(|| $self.$f::<_, $m, $n>($($arg),*)) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2.
            Isa::Avx2 => unsafe { $self.with_avx2(|| $self.$f::<_, $m, $n>($($arg),*)) },
            _ => $self.$f::<_, $m, $n>($($arg),*),
        }
    };
}

/// The instruction set the transforms run in, detected once per call site (the standard
/// library caches the CPUID answer). The arithmetic is the same in each (no fused
/// multiply-adds, no reassociation), so results are bit-identical across them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Whatever the build targets (SSE2 on x86-64).
    Base,
    /// 256-bit vectors.
    Avx2,
    /// 512-bit vectors.
    Avx512,
}

impl Isa {
    /// The widest set this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            if fma && std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if fma && std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Base
    }
}

/// A Winograd convolution plan for `c_in → c_out` channels over `h×w` with a `r×r` kernel.
#[derive(Debug, Clone)]
pub struct WinoConv {
    /// Transform matrices.
    pub mats: WinoMats,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Tile rows, `⌈h/m⌉`.
    pub ty: usize,
    /// Tile columns, `⌈w/m⌉`.
    pub tx: usize,
    /// Bound on the elements of one transformed-data buffer, which sets how many images of a
    /// batch go through together ([`WinoConv::chunk`]); tests lower it to exercise chunking.
    pub target_elems: usize,
}

/// The scratch buffer of one call, split: kernel transforms `gk`, `gf` `[P, r²]`, transformed
/// weights `u`, `u2` `[P, c_out·c_in]`, and four work arrays.
struct Parts<'a, T> {
    gk: &'a mut [T],
    gf: &'a mut [T],
    u: &'a mut [T],
    u2: &'a mut [T],
    sa: &'a mut [T],
    sb: &'a mut [T],
    sc: &'a mut [T],
    sd: &'a mut [T],
}

/// Offsets into the scratch buffer of one call.
struct Scratch {
    gf: usize,
    u: usize,
    u2: usize,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    end: usize,
}

/// The two separable window transforms (see [`WinoConv::window_transform`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// `Bᵀ d B` of each tile's n×n input window.
    Input,
    /// `A dY Aᵀ` of each tile's m×m output gradient.
    Grad,
}

/// The 1-D matrices in `T`, on the stack.
struct Small<T> {
    /// `Aᵀ [m, n]`.
    at: [[T; MAX_TILE]; MAX_TILE],
    /// `A [n, m]`.
    a: [[T; MAX_TILE]; MAX_TILE],
    /// `Bᵀ [n, n]`.
    bt: [[T; MAX_TILE]; MAX_TILE],
}

impl WinoConv {
    /// Plan F(m×m, r×r) for this geometry. Panics unless `(m, r)` is in [`SUPPORTED`].
    pub fn new(m: usize, r: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> Self {
        assert!(SUPPORTED.contains(&(m, r)), "F({m}, {r}) is not supported");
        WinoConv { mats: WinoMats::new(m, r), c_in, c_out, h, w, ty: h.div_ceil(m), tx: w.div_ceil(m), target_elems: TARGET_ELEMS }
    }

    /// Tiles per image.
    pub fn tiles(&self) -> usize {
        self.ty * self.tx
    }

    /// Images processed together (bounded so the scratch stays small).
    pub fn chunk(&self) -> usize {
        let per_image = self.mats.p() * self.c_in.max(self.c_out) * self.tiles();
        (self.target_elems / per_image).max(1)
    }

    /// Elements of the transformed input `V` kept per image for the backward pass: `P·c_in·tiles`.
    pub fn store_len(&self) -> usize {
        self.mats.p() * self.c_in * self.tiles()
    }

    fn layout(&self) -> Scratch {
        let mt = &self.mats;
        let (p, r2) = (mt.p(), mt.r * mt.r);
        let chunk = self.chunk();
        let cols = chunk * self.tiles();
        let cmax = self.c_in.max(self.c_out);
        let pix = chunk * self.h * self.w * cmax;
        let mut off = 0;
        let mut take = |len: usize| {
            let o = off;
            off += len;
            o
        };
        take(p * r2); // gk, at 0
        let gf = take(p * r2);
        let u = take(p * self.c_out * self.c_in);
        let u2 = take(p * self.c_out * self.c_in);
        let a = take(p * cmax * cols);
        let b = take(p * cmax * cols);
        let c = take(pix);
        let d = take(pix);
        Scratch { gf, u, u2, a, b, c, d, end: off }
    }

    /// Scratch elements needed by [`WinoConv::forward`] and [`WinoConv::backward`].
    pub fn scratch_len(&self) -> usize {
        self.layout().end
    }

    fn small<T: Float>(&self) -> Small<T> {
        let (m, n) = (self.mats.m, self.mats.n);
        let z = [[T::zero(); MAX_TILE]; MAX_TILE];
        let mut s = Small { at: z, a: z, bt: z };
        for a in 0..n {
            for u in 0..n {
                s.bt[a][u] = T::from_f64(self.mats.bt[a * n + u]);
            }
            for i in 0..m {
                s.at[i][a] = T::from_f64(self.mats.at[i * n + a]);
                s.a[a][i] = s.at[i][a];
            }
        }
        s
    }

    /// Run `f` (whose body is inlined here) compiled for AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    fn with_avx512(&self, f: impl FnOnce()) {
        f()
    }

    /// Run `f` (whose body is inlined here) compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn with_avx2(&self, f: impl FnOnce()) {
        f()
    }

    /// Split the scratch buffer into its parts, with the kernel transforms written in `T`.
    fn parts<'a, T: Float>(&self, scratch: &'a mut [T]) -> Parts<'a, T> {
        let l = self.layout();
        let (mats, rest) = scratch[..l.end].split_at_mut(l.u);
        let (gk, gf) = mats.split_at_mut(l.gf);
        for (d, v) in gk.iter_mut().zip(&self.mats.gk).chain(gf.iter_mut().zip(&self.mats.gf)) {
            *d = T::from_f64(*v);
        }
        let (u, rest) = rest.split_at_mut(l.u2 - l.u);
        let (u2, rest) = rest.split_at_mut(l.a - l.u2);
        let (sa, rest) = rest.split_at_mut(l.b - l.a);
        let (sb, rest) = rest.split_at_mut(l.c - l.b);
        let (sc, sd) = rest.split_at_mut(l.d - l.c);
        Parts { gk, gf, u, u2, sa, sb, sc, sd }
    }

    /// Per-ξ layout of a tile-major `[nt, P, c]` buffer: the ξ-th matrix is `[nt, c]`.
    fn tm(&self, c: usize) -> Strides {
        Strides { batch: c, row: self.mats.p() * c, col: 1 }
    }

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
        let (p, r2) = (self.mats.p(), self.mats.r * self.mats.r);
        let (ci, co, hw, t) = (self.c_in, self.c_out, self.h * self.w, self.tiles());
        let sm = self.small::<T>();
        let Parts { gk, u, sa, sb, sc, sd, .. } = self.parts(scratch);
        // U [P, c_out·c_in] = Gk [P, r²] · Wᵀ, W stored [c_out·c_in, r²].
        gemm(eng, p, co * ci, r2, u, gk, false, wt, true, false);
        let chunk = self.chunk();
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
                None => &mut sa[..p * ci * nt],
            };
            self.window_transform(eng, &sm, Window::Input, xt, ci, nc, v);
            // M_ξᵀ [nt, c_out] = V_ξ [nt, c_in] · U_ξᵀ, into M [nt, P, c_out].
            let mm = &mut sb[..p * co * nt];
            let ut = Strides { batch: co * ci, row: 1, col: ci };
            gemm_batch(eng, p, nt, co, ci, mm, self.tm(co), v, self.tm(ci), u, ut, false);
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

    /// Backward of `n` images after [`WinoConv::forward`] stored `stored`. Adds `dW` into
    /// `dw [c_out, c_in, r, r]`; writes `dx [n, c_in, h, w]` when given. `dy` is channel-last
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
        let sm = self.small::<T>();
        let Parts { gk, gf, u: du, u2, sa, sb, sc, sd } = self.parts(scratch);
        if dx.is_some() {
            // U' [P, c_out·c_in]: transform of the flipped kernel.
            gemm(eng, p, co * ci, r2, u2, gf, false, wt, true, false);
        }
        let chunk = self.chunk();
        let ul = Strides { batch: co * ci, row: ci, col: 1 };
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
            let e = &mut sa[..p * co * nt];
            self.window_transform(eng, &sm, Window::Grad, dyt, co, nc, e);
            let et = Strides { batch: co, row: 1, col: p * co };
            gemm_batch(eng, p, co, ci, nt, du, ul, e, et, v, self.tm(ci), ck > 0);
            if let Some(dx) = dx.as_deref_mut() {
                // Input gradient: Winograd forward of dY with the flipped, transposed kernel:
                // M'_ξᵀ [nt, c_in] = V'_ξ [nt, c_out] · U'_ξ [c_out, c_in].
                let vv = &mut sa[..p * co * nt];
                self.window_transform(eng, &sm, Window::Input, dyt, co, nc, vv);
                let mm = &mut sb[..p * ci * nt];
                gemm_batch(eng, p, nt, ci, co, mm, self.tm(ci), vv, self.tm(co), u2, ul, false);
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
            // dW [c_out·c_in, r²] += dUᵀ · Gk.
            gemm(eng, co * ci, r2, p, dw, du, true, gk, false, true);
        }
    }

    /// The three data transforms on one image, for profiling: input (`x [h, w, c_in]` →
    /// `v [tiles, P, c_in]`), output (`v` read as `M` → `x`) and output-gradient (`x` → `v`).
    #[doc(hidden)]
    pub fn profile_transforms<T: Float>(&self, eng: &Engine, which: usize, x: &mut [T], v: &mut [T]) {
        let sm = self.small::<T>();
        match which {
            0 => self.window_transform(eng, &sm, Window::Input, x, self.c_in, 1, v),
            1 => self.output_transform(eng, &sm, v, self.c_in, 1, None, x),
            _ => self.window_transform(eng, &sm, Window::Grad, x, self.c_in, 1, v),
        }
    }

    /// `[nc·tiles, P, c]` from channel-last `src [nc, h, w, c]`, `LANES` channels at a time:
    /// for [`Window::Input`] `V = Bᵀ d B` of every n×n input tile (zero outside the image), for
    /// [`Window::Grad`] `E = A dY Aᵀ` of every m×m output tile, the weight gradient's view of
    /// the output gradient.
    #[allow(clippy::too_many_arguments)]
    fn window_transform<T: Float>(&self, eng: &Engine, sm: &Small<T>, kind: Window, src: &[T], c: usize, nc: usize, out: &mut [T]) {
        let (p, t, hwc) = (self.mats.p(), self.tiles(), self.h * self.w * c);
        let per = |(row, dst): (usize, &mut [T])| {
            let (img, r) = (row / self.ty, row % self.ty);
            let src = &src[img * hwc..(img + 1) * hwc];
            dispatch!(self, window_tiles, sm, kind, src, c, r, dst);
        };
        par_blocks(eng, &mut out[..nc * t * p * c], self.tx * p * c, per);
    }

    /// One row of tiles of [`WinoConv::window_transform`]: `src [h, w, c]` → `dst [tx, P, c]`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn window_tiles<T: Float, const M: usize, const N: usize>(
        &self,
        sm: &Small<T>,
        kind: Window,
        src: &[T],
        c: usize,
        r: usize,
        dst: &mut [T],
    ) {
        match kind {
            // The n×n window starting r/2 pixels before the tile, with Bᵀ.
            Window::Input => self.window_row::<T, M, N, N>(&sm.bt, self.mats.r / 2, src, c, r, dst),
            // The tile's own m×m pixels, with A.
            Window::Grad => self.window_row::<T, M, N, M>(&sm.a, 0, src, c, r, dst),
        }
    }

    /// `dst [tx, P, c]` for one row of tiles: `C d Cᵀ` of the K×K window of `src [h, w, c]` at
    /// `(r·M − off, tile·M − off)` (zero outside the image), for the coefficients `C [N, K]`.
    /// Separable: along columns, then along rows, on `LANES` channels at a time.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn window_row<T: Float, const M: usize, const N: usize, const K: usize>(
        &self,
        coef: &[[T; MAX_TILE]; MAX_TILE],
        off: usize,
        src: &[T],
        c: usize,
        r: usize,
        dst: &mut [T],
    ) {
        let mut wv = [[[T::zero(); LANES]; N]; K];
        for (tx, dst) in dst.chunks_mut(N * N * c).enumerate() {
            for c0 in (0..c).step_by(LANES) {
                let cnt = LANES.min(c - c0);
                // Along columns: wv[u][b] = Σ_v C[b][v] d[u][v], with d[u][v] the window pixel
                // (u, v) of channels c0.. (zero outside); the N accumulators of window row u in
                // registers, each d[u][v] loaded once.
                for (u, wvu) in wv.iter_mut().enumerate() {
                    let iy = (r * M + u).wrapping_sub(off);
                    let mut acc = [[T::zero(); LANES]; N];
                    if iy < self.h {
                        for vv in 0..K {
                            let ix = (tx * M + vv).wrapping_sub(off);
                            if ix < self.w {
                                let mut d = [T::zero(); LANES];
                                load(&mut d, &src[(iy * self.w + ix) * c + c0..], cnt);
                                for (b, acc) in acc.iter_mut().enumerate() {
                                    axpy(acc, coef[b][vv], &d);
                                }
                            }
                        }
                    }
                    *wvu = acc;
                }
                // Along rows: out[(a,b)] = Σ_u C[a][u] wv[u][b].
                for b in 0..N {
                    let mut acc = [[T::zero(); LANES]; N];
                    for (u, wvu) in wv.iter().enumerate() {
                        for (a, acc) in acc.iter_mut().enumerate() {
                            axpy(acc, coef[a][u], &wvu[b]);
                        }
                    }
                    for (a, acc) in acc.iter().enumerate() {
                        save(&mut dst[(a * N + b) * c + c0..], acc, cnt);
                    }
                }
            }
        }
    }

    /// Channel-last `yt [nc, h, w, c]` from `M [nc·tiles, P, c]`: `Aᵀ M A` per tile (cropped at
    /// the border), plus `bias [c]` when given.
    #[allow(clippy::too_many_arguments)]
    fn output_transform<T: Float>(&self, eng: &Engine, sm: &Small<T>, mm: &[T], c: usize, nc: usize, bias: Option<&[T]>, yt: &mut [T]) {
        let (p, hw, m) = (self.mats.p(), self.h * self.w, self.mats.m);
        for img in 0..nc {
            let per = |(r, dst): (usize, &mut [T])| {
                let src = &mm[(img * self.ty + r) * self.tx * p * c..(img * self.ty + r + 1) * self.tx * p * c];
                dispatch!(self, output_row, sm, src, c, bias, r, dst);
            };
            par_blocks(eng, &mut yt[img * hw * c..(img + 1) * hw * c], m * self.w * c, per);
        }
    }

    /// One row of tiles: `src [tx, P, c]` → output rows `r·M..` of `dst [·, w, c]` (+ `bias`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn output_row<T: Float, const M: usize, const N: usize>(
        &self,
        sm: &Small<T>,
        src: &[T],
        c: usize,
        bias: Option<&[T]>,
        r: usize,
        dst: &mut [T],
    ) {
        let mut t1 = [[[T::zero(); LANES]; N]; M];
        let rows = M.min(self.h - r * M);
        for tx in 0..self.tx {
            let src = &src[tx * N * N * c..(tx + 1) * N * N * c];
            for c0 in (0..c).step_by(LANES) {
                let cnt = LANES.min(c - c0);
                // Along rows: t1[i][b] = Σ_a Aᵀ[i][a] M[(a,b)], the M accumulators of one
                // column b in registers, each M[(a,b)] loaded once.
                for b in 0..N {
                    let mut acc = [[T::zero(); LANES]; M];
                    for a in 0..N {
                        let mut v = [T::zero(); LANES];
                        load(&mut v, &src[(a * N + b) * c + c0..], cnt);
                        for (i, acc) in acc.iter_mut().enumerate() {
                            axpy(acc, sm.at[i][a], &v);
                        }
                    }
                    for (i, acc) in acc.iter().enumerate() {
                        t1[i][b] = *acc;
                    }
                }
                // Along columns: y[r·M + i][tx·M + j] = Σ_b Aᵀ[j][b] t1[i][b].
                for (i, t1i) in t1.iter().enumerate().take(rows) {
                    for j in 0..M {
                        let ox = tx * M + j;
                        if ox >= self.w {
                            break;
                        }
                        let mut acc = [T::zero(); LANES];
                        if let Some(bv) = bias {
                            load(&mut acc, &bv[c0..], cnt);
                        }
                        for (b, tv) in t1i.iter().enumerate() {
                            axpy(&mut acc, sm.at[j][b], tv);
                        }
                        save(&mut dst[(i * self.w + ox) * c + c0..], &acc, cnt);
                    }
                }
            }
        }
    }
}

/// `dst[..LANES] = src[..cnt]`, zero beyond `cnt`.
#[inline(always)]
fn load<T: Float>(dst: &mut [T; LANES], src: &[T], cnt: usize) {
    if cnt == LANES {
        dst.copy_from_slice(&src[..LANES]);
    } else {
        *dst = [T::zero(); LANES];
        for (d, s) in dst.iter_mut().zip(&src[..cnt]) {
            *d = *s;
        }
    }
}

/// `dst[..cnt] = acc[..cnt]`.
#[inline(always)]
fn save<T: Float>(dst: &mut [T], acc: &[T; LANES], cnt: usize) {
    if cnt == LANES {
        dst[..LANES].copy_from_slice(acc);
    } else {
        for (d, s) in dst[..cnt].iter_mut().zip(acc) {
            *d = *s;
        }
    }
}

/// Tiles handled together by the transforms: one AVX-512 register of f32.
const LANES: usize = 16;

/// `acc += c · v` on one block of lanes.
#[inline(always)]
fn axpy<T: Float>(acc: &mut [T; LANES], c: T, v: &[T; LANES]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a = c.mul_add(*x, *a);
    }
}

/// Run `f((index, block))` over `buf` cut into blocks of `block` elements, in parallel when the
/// engine has more than one thread.
fn par_blocks<T: Float>(eng: &Engine, buf: &mut [T], block: usize, f: impl Fn((usize, &mut [T])) + Sync + Send) {
    if eng.threads() > 1 {
        buf.par_chunks_mut(block).enumerate().for_each(f);
    } else {
        buf.chunks_mut(block).enumerate().for_each(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct same-padded correlation, the definition.
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

    #[test]
    fn points_are_distinct() {
        let p = points(9);
        assert_eq!(p, vec![0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1.0 / 3.0, -1.0 / 3.0]);
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
        ] {
            // Channel counts below, at and above one 16-lane block.
            let (ci, co) = if h == 12 {
                (20, 17)
            } else if h == 28 {
                (16, 16)
            } else {
                (3, 2)
            };
            let mut wc = WinoConv::new(m, r, ci, co, h, w);
            wc.target_elems = 1; // one image per chunk: two chunks
            let x: Vec<f64> = (0..2 * ci * h * w).map(|i| (i as f64 * 0.37).sin()).collect();
            let wt: Vec<f64> = (0..co * ci * r * r).map(|i| (i as f64 * 0.71).cos()).collect();
            let bias: Vec<f64> = (0..co).map(|i| 0.25 - 0.125 * i as f64).collect();
            let mut y = vec![0.0; 2 * co * h * w];
            let mut scratch = vec![0.0; wc.scratch_len()];
            let mut store = vec![0.0; 2 * wc.store_len()];
            eng.install(|| wc.forward(&eng, &wt, Some(&bias), &x, &mut y, Layouts::default(), Some(&mut store), &mut scratch, 2));
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
            let mut scratch = vec![0.0; wc.scratch_len()];
            let mut store = vec![0.0; n * wc.store_len()];
            let mut dw = vec![1.0; wt.len()];
            let mut dx = vec![0.0; x.len()];
            eng.install(|| {
                wc.forward(&eng, &wt, None, &x, &mut y, Layouts::default(), Some(&mut store), &mut scratch, n);
                wc.backward(&eng, &wt, &mut dw, &store, &dy, Some(&mut dx), Layouts::default(), &mut scratch, n);
            });
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
                let want = obj(&x, &e) + 1.0; // dw started at 1: backward accumulates
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
