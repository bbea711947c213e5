//! The Winograd data transforms, vectorised over channels. All read or write channel-last images
//! `[nc, h, w, c]` and tile-major transformed data `[nc·tiles, P, c]` (`P = n²`; each tile's
//! `P·c` values [`WinoConv::tile_stride`] apart, the rest of the stride padding never touched;
//! sizes in elements):
//!
//! * the input transform `V = Bᵀ d B` of each tile's `n×n` input window ([`Window`]`::Input`),
//! * the output-gradient transform `E = A dY Aᵀ` of each tile's `m×m` gradient (`Window::Grad`),
//! * the output transform `Y = Aᵀ M A` per tile, cropped at the border, plus the bias.
//!
//! Each is separable (columns, then rows) and works on `LANES` = 16 channels at a time.
//! `dispatch!` instantiates them for the plan's tile sizes at compile time, and `isa_call!` runs
//! this portable code compiled for AVX-512 or AVX2 when the CPU has them ([`Isa`];
//! `IDCRISIS_ISA` can lower the choice), with the same arithmetic, so the same bits, in each.
//! In f32 under AVX-512 or AVX2 the explicit kernels of `explicit.rs` run instead, with the same
//! bits on finite data: LLVM left this code's accumulators on the stack (about half the speed).
//! So this code runs for f64 and on CPUs without AVX2 (or with `IDCRISIS_ISA=baseline`).

use super::matrices::{Small, MAX_TILE};
use super::plan::WinoConv;
use crate::engine::Engine;
use crate::float::Float;

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
            // SAFETY: `Isa::detect` returns Avx512 only when `Isa::cpu` does (`Isa::resolve` never
            // raises the level), that is after `is_x86_feature_detected!` said this CPU has
            // AVX-512F and FMA, the features the wrapper is compiled for.
            Isa::Avx512 => unsafe { $self.with_avx512(|| $self.$f::<_, $m, $n>($($arg),*)) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2.
            Isa::Avx2 => unsafe { $self.with_avx2(|| $self.$f::<_, $m, $n>($($arg),*)) },
            _ => $self.$f::<_, $m, $n>($($arg),*),
        }
    };
}

/// The instruction set the transforms run in: the widest this CPU has ([`Isa::cpu`]), unless the
/// environment variable [`Isa::ENV`] (`IDCRISIS_ISA`) asks for a lower one ([`Isa::detect`]).
/// The arithmetic is the same in each (every multiply-add is one correctly rounded `mul_add`, in
/// hardware or not, and nothing is reassociated), so results are bit-identical across them for
/// finite data (the explicit f32 transforms leave out terms `0·x`, which an infinite or NaN `x`
/// would have turned into NaN, so a diverged run's non-finite values may differ); the
/// override exists to test exactly that, and to rule the vector code out when chasing a problem.
/// It applies to these transforms, to the small products of `engine::gemm_small`, to the
/// direct convolution's kernels ([`crate::engine::direct`]) and to the eigenvalue solver of
/// [`crate::eval::eigen`], all with the same bits in every set, never to which algorithm a layer
/// uses; the larger GEMMs (the `gemm` crate) choose their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Whatever the build targets (SSE2 on x86-64).
    Base,
    /// 256-bit vectors.
    Avx2,
    /// 512-bit vectors.
    Avx512,
}

impl Isa {
    /// Environment variable that lowers the instruction set of the Winograd transforms (and of
    /// the other code listed under [`Isa`]): `avx512`, `avx2` or `baseline` (case-insensitive;
    /// empty means unset). Read once per process, at the first [`Isa::detect`]. It can only lower the level: asking for a set
    /// this CPU lacks gives the widest it has (with a warning on stderr), and an unknown value is
    /// ignored the same way (with a warning naming the accepted values).
    pub const ENV: &'static str = "IDCRISIS_ISA";

    /// Every set, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Base, Isa::Avx2, Isa::Avx512];

    /// The set the transforms run in: [`Isa::cpu`], lowered by [`Isa::ENV`] when that is set
    /// (see [`Isa::resolve`]). Decided once per process.
    pub fn detect() -> Isa {
        static CHOSEN: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let requested = std::env::var(Isa::ENV).ok();
            let (isa, warning) = Isa::resolve(Isa::cpu(), requested.as_deref());
            if let Some(w) = warning {
                eprintln!("warning: {w}");
            }
            isa
        })
    }

    /// The widest set this CPU supports.
    pub fn cpu() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            // AVX-512 implies AVX2 on every CPU that has it, but `IDCRISIS_ISA=avx2` then runs
            // the AVX2 kernels on this answer alone, so it is checked too.
            if fma && std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx512;
            }
            if fma && std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Base
    }

    /// The name [`Isa::ENV`] takes for this set: `baseline`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Base => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The set named `s` ([`Isa::name`], case-insensitive, surrounding spaces ignored).
    pub fn parse(s: &str) -> Option<Isa> {
        let s = s.trim();
        Isa::ALL.into_iter().find(|i| i.name().eq_ignore_ascii_case(s))
    }

    /// The rule of [`Isa::detect`], given the CPU's widest set and the variable's value: unset
    /// or empty → `cpu`; a known name → that set if `cpu` has it, else `cpu` with a warning;
    /// anything else → `cpu` with a warning. Never returns a set wider than `cpu`.
    pub fn resolve(cpu: Isa, requested: Option<&str>) -> (Isa, Option<String>) {
        let Some(r) = requested.filter(|r| !r.trim().is_empty()) else {
            return (cpu, None);
        };
        match Isa::parse(r) {
            Some(want) if want <= cpu => (want, None),
            Some(want) => (
                cpu,
                Some(format!(
                    "{}={r}: this CPU lacks {}; the Winograd transforms and small products use {}",
                    Isa::ENV,
                    want.name(),
                    cpu.name()
                )),
            ),
            None => (
                cpu,
                Some(format!(
                    "{}={r:?} is not one of avx512, avx2, baseline: ignored; the Winograd transforms and small products use {}",
                    Isa::ENV,
                    cpu.name()
                )),
            ),
        }
    }
}

/// The two separable window transforms (see [`WinoConv::window_transform`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Window {
    /// `Bᵀ d B` of each tile's n×n input window.
    Input,
    /// `A dY Aᵀ` of each tile's m×m output gradient.
    Grad,
}

impl WinoConv {
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

    /// `[nc·tiles, P, c]` from channel-last `src [nc, h, w, c]`, `LANES` channels at a time:
    /// for [`Window::Input`] `V = Bᵀ d B` of every n×n input tile (zero outside the image), for
    /// [`Window::Grad`] `E = A dY Aᵀ` of every m×m output tile, the weight gradient's view of
    /// the output gradient.
    ///
    /// f32 and f64 run the one copy of this code compiled in this crate ([`is`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn window_transform<T: Float>(
        &self,
        eng: &Engine,
        sm: &Small<T>,
        kind: Window,
        src: &[T],
        c: usize,
        nc: usize,
        out: &mut [T],
    ) {
        if is::<T, f32>() {
            // SAFETY: T is f32.
            let (sm, src, out) = unsafe { (retype(sm), retype_slice(src), retype_mut(out)) };
            return self.window_f32(eng, sm, kind, src, c, nc, out);
        }
        if is::<T, f64>() {
            // SAFETY: T is f64.
            let (sm, src, out) = unsafe { (retype(sm), retype_slice(src), retype_mut(out)) };
            return self.window_f64(eng, sm, kind, src, c, nc, out);
        }
        self.window_any(eng, sm, kind, src, c, nc, out)
    }

    /// [`WinoConv::window_transform`] in f32, compiled here once (see [`is`]).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn window_f32(&self, eng: &Engine, sm: &Small<f32>, kind: Window, src: &[f32], c: usize, nc: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match Isa::detect() {
            Isa::Avx512 => {
                // SAFETY: `Isa::detect` returns Avx512 only after `is_x86_feature_detected!`
                // found AVX-512F and FMA on this CPU.
                let row = |src: &[f32], r: usize, dst: &mut [f32]| unsafe { self.window_tiles_avx512(sm, kind, src, c, r, dst) };
                return self.window_rows(eng, src, c, nc, out, row);
            }
            Isa::Avx2 => {
                // SAFETY: as above, for AVX2 and FMA.
                let row = |src: &[f32], r: usize, dst: &mut [f32]| unsafe { self.window_tiles_avx2(sm, kind, src, c, r, dst) };
                return self.window_rows(eng, src, c, nc, out, row);
            }
            Isa::Base => {}
        }
        self.window_any(eng, sm, kind, src, c, nc, out)
    }

    /// [`WinoConv::window_transform`] in f64, compiled here once.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn window_f64(&self, eng: &Engine, sm: &Small<f64>, kind: Window, src: &[f64], c: usize, nc: usize, out: &mut [f64]) {
        self.window_any(eng, sm, kind, src, c, nc, out)
    }

    /// The body of [`WinoConv::window_transform`], for any float type.
    #[allow(clippy::too_many_arguments)]
    fn window_any<T: Float>(&self, eng: &Engine, sm: &Small<T>, kind: Window, src: &[T], c: usize, nc: usize, out: &mut [T]) {
        let row = |src: &[T], r: usize, dst: &mut [T]| dispatch!(self, window_tiles, sm, kind, src, c, r, dst);
        self.window_rows(eng, src, c, nc, out, row)
    }

    /// Run `row(image [h, w, c], r, dst [tx, P, c])` for every row `r` of tiles of every image
    /// of `src [nc, h, w, c]`, each into its block of `out [nc·tiles, P, c]`, over the pool.
    #[inline(always)]
    fn window_rows<T: Float>(
        &self,
        eng: &Engine,
        src: &[T],
        c: usize,
        nc: usize,
        out: &mut [T],
        row: impl Fn(&[T], usize, &mut [T]) + Sync + Send,
    ) {
        let (ts, t, hwc) = (self.tile_stride(c), self.tiles(), self.h * self.w * c);
        let per = |i: usize, dst: &mut [T]| {
            let (img, r) = (i / self.ty, i % self.ty);
            row(&src[img * hwc..(img + 1) * hwc], r, dst);
        };
        eng.par_chunks(&mut out[..nc * t * ts], self.tx * ts, per);
    }

    /// One row of tiles of [`WinoConv::window_transform`]: `src [h, w, c]` → `dst [tx, P, c]`
    /// (tiles [`WinoConv::tile_stride`] apart).
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

    /// `dst [tx, P, c]` (tiles [`WinoConv::tile_stride`] apart) for one row of tiles: `C d Cᵀ`
    /// of the K×K window of `src [h, w, c]` at
    /// `(r·M − off, tile·M − off)` (zero outside the image), for the coefficients `C [N, K]`.
    /// Separable: along columns, then along rows, on `LANES` channels at a time.
    #[inline(always)]
    // The window column `vv` both indexes `coef` and places the pixel, so it stays a counter.
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
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
        for (tx, dst) in dst.chunks_mut(self.tile_stride(c)).enumerate() {
            for c0 in (0..c).step_by(LANES) {
                let cnt = LANES.min(c - c0);
                // Along columns: wv[u][b] = Σ_v C[b][v] d[u][v], with d[u][v] the window pixel
                // (u, v) of channels c0.. (zero outside); N accumulators for window row u, each
                // d[u][v] loaded once.
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
    /// f32 and f64 run the one copy of this code compiled in this crate ([`is`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn output_transform<T: Float>(
        &self,
        eng: &Engine,
        sm: &Small<T>,
        mm: &[T],
        c: usize,
        nc: usize,
        bias: Option<&[T]>,
        yt: &mut [T],
    ) {
        if is::<T, f32>() {
            // SAFETY: T is f32.
            let (sm, mm, bias, yt) = unsafe { (retype(sm), retype_slice(mm), bias.map(|b| retype_slice(b)), retype_mut(yt)) };
            return self.output_f32(eng, sm, mm, c, nc, bias, yt);
        }
        if is::<T, f64>() {
            // SAFETY: T is f64.
            let (sm, mm, bias, yt) = unsafe { (retype(sm), retype_slice(mm), bias.map(|b| retype_slice(b)), retype_mut(yt)) };
            return self.output_f64(eng, sm, mm, c, nc, bias, yt);
        }
        self.output_any(eng, sm, mm, c, nc, bias, yt)
    }

    /// [`WinoConv::output_transform`] in f32, compiled here once (see [`is`]).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn output_f32(&self, eng: &Engine, sm: &Small<f32>, mm: &[f32], c: usize, nc: usize, bias: Option<&[f32]>, yt: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match Isa::detect() {
            Isa::Avx512 if sm.paired => {
                // SAFETY: `Isa::detect` returns Avx512 only after `is_x86_feature_detected!`
                // found AVX-512F and FMA on this CPU.
                let row = |src: &[f32], r: usize, dst: &mut [f32]| unsafe { self.output_tiles_avx512(sm, src, c, bias, r, dst) };
                return self.output_rows(eng, mm, c, nc, yt, row);
            }
            Isa::Avx2 if sm.paired => {
                // SAFETY: as above, for AVX2 and FMA.
                let row = |src: &[f32], r: usize, dst: &mut [f32]| unsafe { self.output_tiles_avx2(sm, src, c, bias, r, dst) };
                return self.output_rows(eng, mm, c, nc, yt, row);
            }
            _ => {}
        }
        self.output_any(eng, sm, mm, c, nc, bias, yt)
    }

    /// [`WinoConv::output_transform`] in f64, compiled here once.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn output_f64(&self, eng: &Engine, sm: &Small<f64>, mm: &[f64], c: usize, nc: usize, bias: Option<&[f64]>, yt: &mut [f64]) {
        self.output_any(eng, sm, mm, c, nc, bias, yt)
    }

    /// The body of [`WinoConv::output_transform`], for any float type.
    #[allow(clippy::too_many_arguments)]
    fn output_any<T: Float>(&self, eng: &Engine, sm: &Small<T>, mm: &[T], c: usize, nc: usize, bias: Option<&[T]>, yt: &mut [T]) {
        let row = |src: &[T], r: usize, dst: &mut [T]| dispatch!(self, output_row, sm, src, c, bias, r, dst);
        self.output_rows(eng, mm, c, nc, yt, row)
    }

    /// Run `row(src [tx, P, c], r, dst)` for every row `r` of tiles of every image: `src` that
    /// row's tiles in `mm [nc·tiles, P, c]`, `dst` its output rows `r·m..` of `yt [nc, h, w, c]`,
    /// over the pool.
    #[inline(always)]
    fn output_rows<T: Float>(
        &self,
        eng: &Engine,
        mm: &[T],
        c: usize,
        nc: usize,
        yt: &mut [T],
        row: impl Fn(&[T], usize, &mut [T]) + Sync + Send,
    ) {
        let (ts, hw, m) = (self.tile_stride(c), self.h * self.w, self.mats.m);
        for img in 0..nc {
            let per = |r: usize, dst: &mut [T]| {
                let src = &mm[(img * self.ty + r) * self.tx * ts..(img * self.ty + r + 1) * self.tx * ts];
                row(src, r, dst);
            };
            eng.par_chunks(&mut yt[img * hw * c..(img + 1) * hw * c], m * self.w * c, per);
        }
    }

    /// One row of tiles: `src [tx, P, c]` (tiles [`WinoConv::tile_stride`] apart) → output rows
    /// `r·M..` of `dst [·, w, c]` (+ `bias`).
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
        let (rows, ts) = (M.min(self.h - r * M), self.tile_stride(c));
        for tx in 0..self.tx {
            let src = &src[tx * ts..tx * ts + N * N * c];
            for c0 in (0..c).step_by(LANES) {
                let cnt = LANES.min(c - c0);
                // Along rows: t1[i][b] = Σ_a Aᵀ[i][a] M[(a,b)], column b's N values loaded
                // once for its M sums.
                for b in 0..N {
                    let mut x = [[T::zero(); LANES]; N];
                    for (a, xa) in x.iter_mut().enumerate() {
                        load(xa, &src[(a * N + b) * c + c0..], cnt);
                    }
                    let y = apply_at::<T, M, N>(sm, &x, [T::zero(); LANES]);
                    for (i, yi) in y.iter().enumerate() {
                        t1[i][b] = *yi;
                    }
                }
                // Along columns: y[r·M + i][tx·M + j] = bias + Σ_b Aᵀ[j][b] t1[i][b], the M
                // outputs of row i together (columns past the image are dropped).
                let mut b0 = [T::zero(); LANES];
                if let Some(bv) = bias {
                    load(&mut b0, &bv[c0..], cnt);
                }
                for (i, t1i) in t1.iter().enumerate().take(rows) {
                    let acc = apply_at::<T, M, N>(sm, t1i, b0);
                    for (j, acc) in acc.iter().enumerate().take(self.w.saturating_sub(tx * M)) {
                        save(&mut dst[(i * self.w + tx * M + j) * c + c0..], acc, cnt);
                    }
                }
            }
        }
    }
}

/// Whether the window transform's coefficient `C[b][v]` can be nonzero: `Bᵀ [N, N]` (`IN`) or
/// `A [N, K]` (`K = M`), for every supported tile size. Row 0 (the point 0) of `Bᵀ` is zero
/// but in its even columns below `N − 1`, row `N − 1` (∞) but in its odd columns, and the other
/// rows in columns 0 and `N − 1`; `A`'s row 0 is `e₀` and its row `N − 1` is `e_{K−1}`. Terms
/// where it is false are exact zeros and are skipped: with every sum starting at +0, adding
/// `0·x` (±0) for finite `x` leaves it bit for bit. Constant in the unrolled loops, so the
/// skipped multiply-adds are not compiled at all; `tests` checks it against the matrices.
#[inline(always)]
pub(super) const fn nonzero<const IN: bool, const N: usize, const K: usize>(b: usize, v: usize) -> bool {
    if IN {
        if b == 0 {
            v.is_multiple_of(2) && v + 1 < N
        } else if b + 1 == N {
            !v.is_multiple_of(2)
        } else {
            v > 0 && v + 1 < N
        }
    } else if b == 0 {
        v == 0
    } else if b + 1 == N {
        v + 1 == K
    } else {
        true
    }
}

/// `y[i] = init + Σ_a Aᵀ[i][a] x[a]` for i < M, on LANES channels. With `sm.paired` by the
/// point pairs (`Aᵀ[i][a] = p_aⁱ`, so columns 2q−1 and 2q, points ±p, differ by `(−1)ⁱ`, and
/// the columns of 0 and ∞ are unit vectors): `init + [i = 0]·x[0] + Σ_q Aᵀ[i][2q−1]·(x[2q−1] ±
/// x[2q]) + [i = M−1]·x[N−1]`, `M(N/2 − 1) + 2` multiply-adds instead of `MN`; else the
/// dense sum in ascending a.
#[inline(always)]
fn apply_at<T: Float, const M: usize, const N: usize>(sm: &Small<T>, x: &[[T; LANES]; N], init: [T; LANES]) -> [[T; LANES]; M] {
    let mut y = [init; M];
    if !sm.paired {
        for (a, xa) in x.iter().enumerate() {
            for (i, yi) in y.iter_mut().enumerate() {
                axpy(yi, sm.at[i][a], xa);
            }
        }
        return y;
    }
    axpy(&mut y[0], sm.at[0][0], &x[0]);
    for q in 1..N / 2 {
        let (mut sum, mut dif) = ([T::zero(); LANES], [T::zero(); LANES]);
        for l in 0..LANES {
            sum[l] = x[2 * q - 1][l] + x[2 * q][l];
            dif[l] = x[2 * q - 1][l] - x[2 * q][l];
        }
        for (i, yi) in y.iter_mut().enumerate() {
            axpy(yi, sm.at[i][2 * q - 1], if i.is_multiple_of(2) { &sum } else { &dif });
        }
    }
    axpy(&mut y[M - 1], sm.at[M - 1][N - 1], &x[N - 1]);
    y
}

/// Whether `T` is `U`. The transforms' generic entry points use it to run, for f32 and f64, the
/// one copy of their code compiled in this crate. Generic code is compiled again in every crate
/// that uses it, and LLVM vectorizes these array loops differently from one crate to the next:
/// the `evalalgo` bench binary's own copy came out as 256-bit multiply-adds with gathers and
/// scatters, 5–10× slower than the library's (BENCHMARKS.md). Non-generic, `#[inline(never)]`
/// functions are compiled only here, so the CLI, the Python module, the tests and the benches
/// all run the same machine code.
fn is<T: 'static, U: 'static>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>()
}

/// `x` as a `&U`.
///
/// # Safety
/// `T` must be `U` ([`is`]).
unsafe fn retype<T, U>(x: &T) -> &U {
    // SAFETY: T is U, by the caller's contract.
    unsafe { &*(x as *const T).cast::<U>() }
}

/// `x` as a `&[U]`.
///
/// # Safety
/// `T` must be `U` ([`is`]).
unsafe fn retype_slice<T, U>(x: &[T]) -> &[U] {
    // SAFETY: T is U, by the caller's contract: same layout, same length.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<U>(), x.len()) }
}

/// `x` as a `&mut [U]`.
///
/// # Safety
/// `T` must be `U` ([`is`]).
unsafe fn retype_mut<T, U>(x: &mut [T]) -> &mut [U] {
    // SAFETY: T is U, by the caller's contract: same layout, same length, the one borrow moved.
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<U>(), x.len()) }
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

/// Channels handled together by the transforms: one AVX-512 register of f32.
const LANES: usize = 16;

/// `acc += c · v` on one block of lanes.
#[inline(always)]
fn axpy<T: Float>(acc: &mut [T; LANES], c: T, v: &[T; LANES]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a = c.mul_add(*x, *a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::winograd::{WinoMats, SUPPORTED};

    /// `apply_at`, by the pairs and dense (the fallback no supported tile size takes), against
    /// `init + Aᵀx` in f64, for every supported tile size.
    #[test]
    fn output_transform_paired_and_dense_match_f64() {
        for (m, r) in SUPPORTED {
            let mats = WinoMats::new(m, r);
            match (m, mats.n) {
                (2, 4) => check::<2, 4>(&mats),
                (2, 6) => check::<2, 6>(&mats),
                (2, 8) => check::<2, 8>(&mats),
                (4, 6) => check::<4, 6>(&mats),
                (4, 8) => check::<4, 8>(&mats),
                other => panic!("no check for {other:?}"),
            }
        }
    }

    /// `nonzero` is false only where `Bᵀ` and `A` are exactly zero, for every supported tile
    /// size (a nonzero term skipped would change results; a zero kept only costs time), and it
    /// does skip zeros (44 of `Bᵀ`'s 64 terms kept at n = 8, and all but `A`'s first and last
    /// rows' zeros).
    #[test]
    fn skipped_terms_are_exact_zeros() {
        fn check_mask<const M: usize, const N: usize>(mats: &WinoMats) -> usize {
            let (mut kept, mut kept_a) = (0, 0);
            for b in 0..N {
                for v in 0..N {
                    let nz = nonzero::<true, N, N>(b, v);
                    assert!(nz || mats.bt[b * N + v] == 0.0, "F({M}, {}): Bᵀ[{b}][{v}] skipped", N + 1 - M);
                    kept += nz as usize;
                }
                for i in 0..M {
                    let nz = nonzero::<false, N, M>(b, i);
                    assert!(nz || mats.at[i * N + b] == 0.0, "F({M}, {}): A[{b}][{i}] skipped", N + 1 - M);
                    kept_a += nz as usize;
                }
            }
            assert_eq!(kept_a, (N - 2) * M + 2, "F({M}, {}): A's kept terms", N + 1 - M);
            kept
        }
        for (m, r) in SUPPORTED {
            let mats = WinoMats::new(m, r);
            let kept = match (m, mats.n) {
                (2, 4) => check_mask::<2, 4>(&mats),
                (2, 6) => check_mask::<2, 6>(&mats),
                (2, 8) => check_mask::<2, 8>(&mats),
                (4, 6) => check_mask::<4, 6>(&mats),
                (4, 8) => check_mask::<4, 8>(&mats),
                other => panic!("no check for {other:?}"),
            };
            let n = mats.n;
            assert_eq!(kept, (n - 2) * (n - 2) + n, "F({m}, {r})");
        }
    }

    fn check<const M: usize, const N: usize>(mats: &WinoMats) {
        let x: [[f64; LANES]; N] = std::array::from_fn(|a| std::array::from_fn(|l| ((a * LANES + l) as f64 * 0.37).sin()));
        let init: [f64; LANES] = std::array::from_fn(|l| l as f64 * 0.01 - 0.05);
        for paired in [true, false] {
            let mut sm = Small::<f64>::new(mats);
            sm.paired = paired;
            let y = apply_at::<f64, M, N>(&sm, &x, init);
            for (i, yi) in y.iter().enumerate() {
                for (l, &got) in yi.iter().enumerate() {
                    let want = init[l] + (0..N).map(|a| mats.at[i * N + a] * x[a][l]).sum::<f64>();
                    assert!((got - want).abs() < 1e-12 * 100.0, "F({M}, {}) paired={paired} ({i}, {l}): {got} vs {want}", N + 1 - M);
                }
            }
        }
    }
}
