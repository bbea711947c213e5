//! Compute kernels: the only code that does raw numerics on buffers.
//!
//! Everything the layers and optimizers need goes through these functions, so a second backend
//! (CUDA) can provide the same small set: [`gemm`] and [`gemm_batch`], [`im2col`], [`col2im`],
//! the [`winograd`] convolution, [`transpose`], bias broadcast and reduction, ReLU
//! forward/backward, and the optimizer updates in [`crate::nn::optim`] via [`for_each_chunk`].
//!
//! All kernels work on row-major buffers (contiguous, except the strided views of
//! [`gemm_batch`]). They never allocate. Reductions run in a fixed order, so results are
//! bit-identical for a fixed thread count.

pub mod winograd;

use crate::error::{Error, Result};
use crate::float::Float;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Elementwise work below this many elements runs on the calling thread.
const PAR_MIN: usize = 1 << 15;
/// Chunk size for parallel elementwise work.
const PAR_CHUNK: usize = 1 << 13;

/// How convolutions are computed. Both give the same convolution up to rounding; a run records
/// which one it used, because the rounding (and so the bits of the trained weights) differ.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConvAlgo {
    /// Winograd for zero-padded layers with at least [`WINOGRAD_MIN_CHANNELS`] input channels and
    /// a 3×3, 5×5 or 7×7 kernel; im2col + GEMM for the rest (the 1-channel first layer).
    #[default]
    Auto,
    /// im2col + GEMM everywhere (direct convolution as one matrix product).
    Im2col,
    /// Winograd wherever it applies (zero padding, 3×3, 5×5 or 7×7 kernel), whatever the channel
    /// counts.
    Winograd,
}

/// Channel count from which [`ConvAlgo::Auto`] picks Winograd: below it the transforms cost
/// more than the multiplies they save (measured in `BENCHMARKS.md`).
pub const WINOGRAD_MIN_CHANNELS: usize = 8;

/// A thread pool plus the matching GEMM parallelism setting and convolution algorithm.
pub struct Engine {
    threads: usize,
    pool: rayon::ThreadPool,
    conv: ConvAlgo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("threads", &self.threads).field("conv", &self.conv).finish()
    }
}

impl Engine {
    /// An engine with `threads` compute threads (0 means all cores).
    pub fn new(threads: usize) -> Result<Self> {
        let threads = if threads == 0 { default_threads() } else { threads };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("idcrisis-{i}"))
            .build()
            .map_err(|e| Error::Other(format!("cannot start {threads} compute threads: {e}")))?;
        Ok(Engine { threads, pool, conv: ConvAlgo::Auto })
    }

    /// The same engine computing convolutions with `algo`.
    pub fn with_conv_algo(mut self, algo: ConvAlgo) -> Self {
        self.conv = algo;
        self
    }

    /// The convolution algorithm setting.
    pub fn conv_algo(&self) -> ConvAlgo {
        self.conv
    }

    /// Number of compute threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f` inside this engine's thread pool (all kernels called from `f` use it).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    fn parallelism(&self) -> gemm::Parallelism {
        if self.threads > 1 {
            gemm::Parallelism::Rayon(self.threads)
        } else {
            gemm::Parallelism::None
        }
    }

    fn parallel(&self, len: usize) -> bool {
        self.threads > 1 && len >= PAR_MIN
    }
}

/// All cores the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `C[m×n] = (accumulate ? C : 0) + op(A)·op(B)`, all row-major and contiguous, on the
/// engine's threads.
///
/// `A` is stored `[m, k]`, or `[k, m]` when `a_t`; `B` is stored `[k, n]`, or `[n, k]` when `b_t`.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(eng: &Engine, m: usize, n: usize, k: usize, c: &mut [T], a: &[T], a_t: bool, b: &[T], b_t: bool, accumulate: bool) {
    assert!(c.len() >= m * n, "gemm: C has {} elements, needs {}", c.len(), m * n);
    assert!(a.len() >= m * k, "gemm: A has {} elements, needs {}", a.len(), m * k);
    assert!(b.len() >= k * n, "gemm: B has {} elements, needs {}", b.len(), k * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::zero());
        }
        return;
    }
    let (a_rs, a_cs) = if a_t { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if b_t { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the asserts above guarantee that every index the strides reach lies inside the
    // slices: A's largest offset is (m-1)·a_rs + (k-1)·a_cs < m·k for either layout, likewise B
    // (< k·n) and C ((m-1)·n + (n-1) < m·n). `c` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            eng.parallelism(),
        );
    }
}

/// Layout of a batch of matrices in one buffer: element `(i, j)` of matrix `b` sits at
/// `b·batch + i·row + j·col`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strides {
    /// Distance between consecutive matrices of the batch.
    pub batch: usize,
    /// Distance between rows.
    pub row: usize,
    /// Distance between columns.
    pub col: usize,
}

impl Strides {
    /// Largest offset touched by `count` matrices of `rows × cols` (callers ensure non-empty).
    fn max_offset(&self, count: usize, rows: usize, cols: usize) -> usize {
        (count - 1) * self.batch + (rows - 1) * self.row + (cols - 1) * self.col
    }
}

/// `count` independent products `C_b = (accumulate ? C_b : 0) + A_b·B_b` with `A_b [m×k]`,
/// `B_b [k×n]` and `C_b [m×n]` laid out in `a`, `b`, `c` as `al`, `bl`, `cl` say. Each product
/// runs single-threaded and the products are spread over the engine's threads, so the result
/// does not depend on the thread count.
///
/// `C`'s layout must keep the products apart: unit column stride and either the matrices
/// interleaved row by row (`n ≤ batch`, `count·batch ≤ row`) or stored one after another
/// (`n ≤ row`, `m·row ≤ batch`). Panics otherwise, or if any index would fall outside a slice.
#[allow(clippy::too_many_arguments)]
pub fn gemm_batch<T: Float>(
    eng: &Engine,
    count: usize,
    m: usize,
    n: usize,
    k: usize,
    c: &mut [T],
    cl: Strides,
    a: &[T],
    al: Strides,
    b: &[T],
    bl: Strides,
    accumulate: bool,
) {
    if count == 0 || m == 0 || n == 0 {
        return;
    }
    let interleaved = n <= cl.batch && count * cl.batch <= cl.row;
    let stacked = n <= cl.row && m * cl.row <= cl.batch;
    assert!(cl.col == 1 && (interleaved || stacked), "gemm_batch: products would overlap in C ({cl:?}, {m}×{n})");
    assert!(cl.max_offset(count, m, n) < c.len(), "gemm_batch: C too short");
    if k > 0 {
        assert!(al.max_offset(count, m, k) < a.len(), "gemm_batch: A too short");
        assert!(bl.max_offset(count, k, n) < b.len(), "gemm_batch: B too short");
    }
    struct Out<T>(*mut T);
    // SAFETY: the pointer is only used to form the disjoint per-product views below.
    unsafe impl<T> Sync for Out<T> {}
    let out = Out(c.as_mut_ptr());
    let one = |i: usize| {
        let out = &out;
        if k == 0 {
            if !accumulate {
                for r in 0..m {
                    for j in 0..n {
                        // SAFETY: in bounds (max_offset asserted) and only product i's elements.
                        unsafe { *out.0.add(i * cl.batch + r * cl.row + j) = T::zero() };
                    }
                }
            }
            return;
        }
        // SAFETY: every offset the strides reach is in bounds (the max_offset asserts above);
        // product i writes only the elements i·batch + r·row + j (r < m, j < n), and the layout
        // assert makes these sets disjoint for distinct i: interleaved, j < n ≤ batch and
        // i·batch + j < count·batch ≤ row, so (r, i, j) is a mixed-radix decomposition; stacked,
        // j < n ≤ row and r·row + j < m·row ≤ batch, likewise. So no two threads write the same
        // element, and nothing writes what A or B (borrowed shared, hence not aliasing `c`) read.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.0.add(i * cl.batch),
                1,
                cl.row as isize,
                accumulate,
                a.as_ptr().add(i * al.batch),
                al.col as isize,
                al.row as isize,
                b.as_ptr().add(i * bl.batch),
                bl.col as isize,
                bl.row as isize,
                T::one(),
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    if eng.threads > 1 {
        (0..count).into_par_iter().for_each(one);
    } else {
        (0..count).for_each(one);
    }
}

/// How a "same" convolution fills the border. Only `Zero` is used by the paper.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// Zeros outside the image (PyTorch `padding_mode="zeros"`).
    #[default]
    Zero,
    /// Wrap around (PyTorch `"circular"`).
    Circular,
    /// Mirror without repeating the edge (PyTorch `"reflect"`); needs k/2 < side.
    Reflect,
}

impl Padding {
    /// Source index along an axis of length `len` for the (possibly out-of-range) index `i`.
    pub fn map(self, i: isize, len: usize) -> Option<usize> {
        let n = len as isize;
        match self {
            Padding::Zero => (0..n).contains(&i).then_some(i as usize),
            Padding::Circular => Some(i.rem_euclid(n) as usize),
            Padding::Reflect => {
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * (n - 1);
                let mut j = i.rem_euclid(period);
                if j >= n {
                    j = period - j;
                }
                Some(j as usize)
            }
        }
    }
}

/// Precomputed source indices for a "same" convolution along one axis: `table[kk·len + o]` is the
/// input index read by kernel tap `kk` at output position `o`, or `None` for a zero.
pub fn tap_table(len: usize, k: usize, pad: Padding) -> Vec<Option<usize>> {
    let p = (k / 2) as isize;
    let mut t = Vec::with_capacity(k * len);
    for kk in 0..k {
        for o in 0..len {
            t.push(pad.map(o as isize + kk as isize - p, len));
        }
    }
    t
}

/// Geometry of one same-padded, stride-1 convolution over `c` channels of `h×w`.
#[derive(Debug, Clone)]
pub struct ConvGeom {
    /// Input channels.
    pub c: usize,
    /// Height in pixels.
    pub h: usize,
    /// Width in pixels.
    pub w: usize,
    /// Odd kernel side.
    pub k: usize,
    /// Row taps, `[k, h]`.
    pub ytab: Vec<Option<usize>>,
    /// Column taps, `[k, w]`.
    pub xtab: Vec<Option<usize>>,
    /// For zero padding: per column tap `kx`, the output columns `lo..hi` that read input
    /// column `x + kx − k/2` (all others read zero). `None` for the other padding modes.
    pub xrange: Option<Vec<(usize, usize)>>,
}

impl ConvGeom {
    /// Build the tap tables.
    pub fn new(c: usize, h: usize, w: usize, k: usize, pad: Padding) -> Self {
        let p = k / 2;
        let xrange =
            (pad == Padding::Zero).then(|| (0..k).map(|kx| (p.saturating_sub(kx).min(w), (w + p).saturating_sub(kx).min(w))).collect());
        ConvGeom { c, h, w, k, ytab: tap_table(h, k, pad), xtab: tap_table(w, k, pad), xrange }
    }
    /// Rows of the column matrix: `c·k·k`.
    pub fn col_rows(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Pixels per channel: `h·w`.
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
}

/// Unfold one image `input [c, h, w]` into `cols [c·k·k, h·w]`:
/// `cols[(ci·k + ky)·k + kx, y·w + x] = input[ci, y+ky−k/2, x+kx−k/2]` (padded per `g`).
pub fn im2col<T: Float>(eng: &Engine, g: &ConvGeom, input: &[T], cols: &mut [T]) {
    let (hw, kk) = (g.hw(), g.k * g.k);
    let cols = &mut cols[..g.col_rows() * hw];
    let per_channel = |(ci, dst): (usize, &mut [T])| {
        let src = &input[ci * hw..(ci + 1) * hw];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &mut dst[(ky * g.k + kx) * hw..(ky * g.k + kx + 1) * hw];
                let xt = &g.xtab[kx * g.w..(kx + 1) * g.w];
                for y in 0..g.h {
                    let out = &mut row[y * g.w..(y + 1) * g.w];
                    match g.ytab[ky * g.h + y] {
                        None => out.fill(T::zero()),
                        Some(sy) => {
                            let srow = &src[sy * g.w..(sy + 1) * g.w];
                            if let Some(xr) = &g.xrange {
                                // Zero padding: one contiguous copy, zeros either side.
                                let (lo, hi) = xr[kx];
                                let shift = lo + kx - g.k / 2; // input column of output column lo
                                out[..lo].fill(T::zero());
                                if hi > lo {
                                    out[lo..hi].copy_from_slice(&srow[shift..shift + hi - lo]);
                                }
                                out[hi.max(lo)..].fill(T::zero());
                            } else {
                                for (o, t) in out.iter_mut().zip(xt) {
                                    *o = match t {
                                        Some(sx) => srow[*sx],
                                        None => T::zero(),
                                    };
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    if eng.parallel(cols.len()) {
        cols.par_chunks_mut(kk * hw).enumerate().for_each(per_channel);
    } else {
        cols.chunks_mut(kk * hw).enumerate().for_each(per_channel);
    }
}

/// Fold `cols [c·k·k, h·w]` back onto `out [c, h, w]`, summing every tap that reads a pixel
/// (the adjoint of [`im2col`]). `out` is overwritten.
pub fn col2im<T: Float>(eng: &Engine, g: &ConvGeom, cols: &[T], out: &mut [T]) {
    let (hw, kk) = (g.hw(), g.k * g.k);
    let out = &mut out[..g.c * hw];
    let per_channel = |(ci, dst): (usize, &mut [T])| {
        dst.fill(T::zero());
        let src = &cols[ci * kk * hw..(ci + 1) * kk * hw];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &src[(ky * g.k + kx) * hw..(ky * g.k + kx + 1) * hw];
                let xt = &g.xtab[kx * g.w..(kx + 1) * g.w];
                for y in 0..g.h {
                    if let Some(sy) = g.ytab[ky * g.h + y] {
                        let drow = &mut dst[sy * g.w..(sy + 1) * g.w];
                        let srow = &row[y * g.w..(y + 1) * g.w];
                        if let Some(xr) = &g.xrange {
                            let (lo, hi) = xr[kx];
                            if hi > lo {
                                let shift = lo + kx - g.k / 2;
                                for (d, v) in drow[shift..shift + hi - lo].iter_mut().zip(&srow[lo..hi]) {
                                    *d = *d + *v;
                                }
                            }
                        } else {
                            for (v, t) in srow.iter().zip(xt) {
                                if let Some(sx) = t {
                                    drow[*sx] = drow[*sx] + *v;
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    if eng.parallel(cols.len()) {
        out.par_chunks_mut(hw).enumerate().for_each(per_channel);
    } else {
        out.chunks_mut(hw).enumerate().for_each(per_channel);
    }
}

/// Run `f(offset, chunk)` over `x` in fixed chunks, in parallel when large. For elementwise work
/// whose result does not depend on the chunking.
pub fn for_each_chunk<T: Float>(eng: &Engine, x: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if eng.parallel(x.len()) {
        x.par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(i, c)| f(i * PAR_CHUNK, c));
    } else {
        f(0, x);
    }
}

/// Side of the square blocks [`transpose`] moves at a time (they stay in L1).
const TB: usize = 16;

/// `dst [count, cols, rows]` = each `src [count, rows, cols]` matrix transposed, in TB×TB
/// blocks: contiguous reads of TB source columns per row, then contiguous writes of TB
/// destination columns per row. Tasks are blocks of TB destination rows of one matrix, spread
/// over the pool. Serves the batched dense forward and the Winograd layout changes
/// (`[c, hw]` ↔ `[hw, c]` per image).
pub fn transpose<T: Float>(eng: &Engine, src: &[T], count: usize, rows: usize, cols: usize, dst: &mut [T]) {
    let len = rows * cols;
    for m in 0..count {
        let s = &src[m * len..(m + 1) * len];
        let per = |(jb, d): (usize, &mut [T])| {
            let (j0, nj) = (jb * TB, d.len() / rows);
            let mut tile = [[T::zero(); TB]; TB];
            for i0 in (0..rows).step_by(TB) {
                let ni = TB.min(rows - i0);
                for (ii, t) in tile.iter_mut().enumerate().take(ni) {
                    copy_block(t, &s[(i0 + ii) * cols + j0..], nj);
                }
                for jj in 0..nj {
                    let out = &mut d[jj * rows + i0..jj * rows + i0 + ni];
                    for (ii, o) in out.iter_mut().enumerate() {
                        *o = tile[ii][jj];
                    }
                }
            }
        };
        let d = &mut dst[m * len..(m + 1) * len];
        if eng.threads > 1 {
            d.par_chunks_mut(TB * rows).enumerate().for_each(per);
        } else {
            d.chunks_mut(TB * rows).enumerate().for_each(per);
        }
    }
}

/// `dst[..len] = src[..len]` for one row of a transpose block: a fixed-size (vector) copy when
/// the row is full, instead of a `memcpy` call.
#[inline(always)]
fn copy_block<T: Float>(dst: &mut [T; TB], src: &[T], len: usize) {
    if len == TB {
        dst.copy_from_slice(&src[..TB]);
    } else {
        dst[..len].copy_from_slice(&src[..len]);
    }
}

/// `y[r, :] = bias[r]` for `y [rows, cols]` (conv bias: one value per channel row).
pub fn fill_rows<T: Float>(y: &mut [T], bias: &[T], cols: usize) {
    for (row, b) in y.chunks_mut(cols).zip(bias) {
        row.fill(*b);
    }
}

/// `db[r] += Σ_j dy[r, j]` for `dy [rows, cols]`, each row summed left to right.
pub fn sum_rows_into<T: Float>(db: &mut [T], dy: &[T], cols: usize) {
    for (d, row) in db.iter_mut().zip(dy.chunks(cols)) {
        *d = *d + row.iter().fold(T::zero(), |a, &v| a + v);
    }
}

/// `db[j] += Σ_r dy[r, j]` for `dy [rows, db.len()]`, rows in order.
pub fn sum_cols_into<T: Float>(db: &mut [T], dy: &[T]) {
    for row in dy.chunks(db.len()) {
        for (d, v) in db.iter_mut().zip(row) {
            *d = *d + *v;
        }
    }
}

/// In place `x = max(x, 0)`.
pub fn relu_forward<T: Float>(eng: &Engine, x: &mut [T]) {
    for_each_chunk(eng, x, |_, c| {
        for v in c {
            if !(*v > T::zero()) {
                *v = T::zero();
            }
        }
    });
}

/// In place `dz = dz · [a > 0]`, where `a = relu(z)` is the forward output.
pub fn relu_backward<T: Float>(eng: &Engine, dz: &mut [T], a: &[T]) {
    for_each_chunk(eng, dz, |off, c| {
        for (d, v) in c.iter_mut().zip(&a[off..]) {
            if !(*v > T::zero()) {
                *d = T::zero();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], a_t: bool, b: &[f64], b_t: bool) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let av = if a_t { a[p * m + i] } else { a[i * k + p] };
                    let bv = if b_t { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += av * bv;
                }
            }
        }
        c
    }

    #[test]
    fn gemm_all_transposes_match_naive() {
        let eng = Engine::new(2).unwrap();
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        for a_t in [false, true] {
            for b_t in [false, true] {
                let want = naive(m, n, k, &a, a_t, &b, b_t);
                let mut c = vec![1.0; m * n];
                eng.install(|| gemm(&eng, m, n, k, &mut c, &a, a_t, &b, b_t, true));
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - (y + 1.0)).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn gemm_batch_matches_naive_for_both_layouts() {
        let eng = Engine::new(2).unwrap();
        let (count, m, n, k) = (5, 3, 4, 6);
        let a: Vec<f64> = (0..count * m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..count * k * n + 7).map(|i| (i as f64 * 0.11).cos()).collect();
        // A stacked row-major; B interleaved [k][count][n]; C either interleaved or stacked.
        let al = Strides { batch: m * k, row: k, col: 1 };
        let bl = Strides { batch: n, row: count * n, col: 1 };
        for (cl, len) in [
            (Strides { batch: n, row: count * n, col: 1 }, count * m * n),
            (Strides { batch: m * n + 2, row: n, col: 1 }, count * (m * n + 2)),
        ] {
            for acc in [false, true] {
                let mut c = vec![1.0; len];
                eng.install(|| gemm_batch(&eng, count, m, n, k, &mut c, cl, &a, al, &b, bl, acc));
                let mut touched = vec![false; len];
                for p in 0..count {
                    let ap: Vec<f64> = a[p * m * k..(p + 1) * m * k].to_vec();
                    let bp: Vec<f64> = (0..k * n).map(|e| b[p * n + (e / n) * count * n + e % n]).collect();
                    let want = naive(m, n, k, &ap, false, &bp, false);
                    for i in 0..m {
                        for j in 0..n {
                            let off = p * cl.batch + i * cl.row + j;
                            touched[off] = true;
                            let w = want[i * n + j] + if acc { 1.0 } else { 0.0 };
                            assert!((c[off] - w).abs() < 1e-12, "{cl:?} acc={acc} product {p} ({i},{j})");
                        }
                    }
                }
                // Nothing outside the products was written.
                assert!(c.iter().zip(&touched).all(|(v, t)| *t || *v == 1.0));
            }
        }
    }

    #[test]
    #[should_panic(expected = "would overlap")]
    fn gemm_batch_rejects_overlapping_outputs() {
        let eng = Engine::new(1).unwrap();
        let mut c = vec![0.0f64; 64];
        let l = Strides { batch: 2, row: 4, col: 1 }; // 3 columns per product but batch stride 2
        gemm_batch(&eng, 2, 2, 3, 1, &mut c, l, &[1.0; 8], l, &[1.0; 8], l, false);
    }

    #[test]
    fn transpose_of_a_batch_of_matrices() {
        let eng = Engine::new(2).unwrap();
        // Sizes below, at and above one 16×16 block, and not multiples of it.
        for (count, rows, cols) in [(1, 3, 5), (2, 16, 16), (3, 37, 20), (2, 128, 49)] {
            let src: Vec<f64> = (0..count * rows * cols).map(|i| i as f64).collect();
            let mut dst = vec![-1.0; count * rows * cols];
            eng.install(|| transpose(&eng, &src, count, rows, cols, &mut dst));
            for m in 0..count {
                for i in 0..rows {
                    for j in 0..cols {
                        assert_eq!(dst[m * rows * cols + j * rows + i], src[m * rows * cols + i * cols + j]);
                    }
                }
            }
        }
    }

    #[test]
    fn padding_maps() {
        assert_eq!(Padding::Zero.map(-1, 5), None);
        assert_eq!(Padding::Circular.map(-1, 5), Some(4));
        assert_eq!(Padding::Reflect.map(-1, 5), Some(1));
        assert_eq!(Padding::Reflect.map(5, 5), Some(3));
        assert_eq!(Padding::Reflect.map(2, 5), Some(2));
    }

    #[test]
    fn col2im_is_adjoint_of_im2col() {
        // <im2col(x), c> == <x, col2im(c)> for every padding mode.
        let eng = Engine::new(1).unwrap();
        for pad in [Padding::Zero, Padding::Circular, Padding::Reflect] {
            let g = ConvGeom::new(2, 5, 6, 3, pad);
            let x: Vec<f64> = (0..g.c * g.hw()).map(|i| (i as f64 * 0.3).sin()).collect();
            let c: Vec<f64> = (0..g.col_rows() * g.hw()).map(|i| (i as f64 * 0.7).cos()).collect();
            let mut cols = vec![0.0; c.len()];
            im2col(&eng, &g, &x, &mut cols);
            let mut back = vec![0.0; x.len()];
            col2im(&eng, &g, &c, &mut back);
            let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-10, "{pad:?}: {lhs} vs {rhs}");
        }
    }
}
