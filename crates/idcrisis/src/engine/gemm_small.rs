//! Small f32 matrix products for [`super::gemm_batch`]: the per-transform-point GEMMs of a
//! Winograd layer with at most [`MAX_N`] channels (`[tiles, c_in] · [c_in, c_out]`, and the
//! weight gradient's `[c_out, tiles] · [tiles, c_in]`), and the blocks of its kernel transforms
//! (`[P, r²] · [r², 64]` and `[64, P] · [P, r²]`). At 16 channels each such product is about
//! 25 thousand multiply-adds, so the `gemm` crate's per-call costs (its dispatch, a packing
//! buffer and a flag vector allocated per call) were a third of a 16-channel training step;
//! this kernel has none of them: B is read in place (or packed on the stack when its columns
//! are strided, with AVX-512 gathers where the CPU has them), C's rows are kept in registers in
//! blocks, and nothing is allocated. [`product`] can run the same kernels over only the
//! nonzero terms of a fixed A with structural zeros (a kernel transform's `G ⊗ G`, 36% zeros for
//! F(4×4, 5×5)), listed once per plan in a [`Sparsity`].
//!
//! **Bits.** Every element is `C = Σ_kk A[r, kk]·B[kk, j]` accumulated from zero in ascending
//! `kk` with one fused multiply-add per term, then stored (or added to C once), so the result
//! is the same in every instruction set ([`Isa`]: explicit AVX-512 and AVX2 kernels, and the
//! portable one, blocked to fit each set's registers, which changes no sum) and on any thread
//! count.

use super::winograd::Isa;

/// Widest product (columns of B and C) this kernel takes: four 16-lane blocks.
pub(super) const MAX_N: usize = 64;
/// Largest B (`k` rows padded to whole blocks) [`product`] takes, in elements: 16 KB of f32.
const MAX_PACK: usize = 64 * 64;
/// Lanes per block of columns.
const LANES: usize = 16;

/// Matrix layout by element strides: `X[i, j]` at `i·row + j·col`.
#[derive(Debug, Clone, Copy)]
pub(super) struct View {
    pub(super) row: usize,
    pub(super) col: usize,
}

/// Whether [`product`] takes a product with `n` columns, `k` inner terms and B's layout `b`: at
/// most [`MAX_N`] columns and B, padded to whole 16-lane blocks, within [`MAX_PACK`] elements
/// (16 KB, so it stays in L1 while every block of rows streams it; in place when its rows are
/// contiguous whole blocks, else packed on the stack). Past that the `gemm` crate, which blocks
/// for the caches, was faster (`benches/winogemm.rs`: 1.3× faster on 32 to 64 channels with
/// 490 tiles in the weight-gradient shape).
pub(super) fn fits(n: usize, k: usize) -> bool {
    (1..=MAX_N).contains(&n) && k * padded(n) <= MAX_PACK
}

/// Whether B is read in place (no packing). (Packing B also when its rows lie far apart, with
/// A when its terms do, measured slower: BENCHMARKS.md.)
fn in_place(n: usize, b: View) -> bool {
    b.col == 1 && n.is_multiple_of(LANES)
}

/// `n` rounded up to whole blocks of [`LANES`].
fn padded(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// The inner indices a block of rows sums over, in ascending order: every one ([`All`]), or the
/// nonzero columns of a [`Class`] of A's rows.
trait Terms: Copy {
    fn len(self) -> usize;
    /// The `i`-th index (`i < len`).
    fn at(self, i: usize) -> usize;
}

/// All inner indices `0..k`.
#[derive(Clone, Copy)]
struct All(usize);

impl Terms for All {
    #[inline(always)]
    fn len(self) -> usize {
        self.0
    }
    #[inline(always)]
    fn at(self, i: usize) -> usize {
        i
    }
}

impl Terms for &[u16] {
    #[inline(always)]
    fn len(self) -> usize {
        <[u16]>::len(self)
    }
    #[inline(always)]
    fn at(self, i: usize) -> usize {
        self[i] as usize
    }
}

/// Rows of A that share their nonzero columns: `rows` read only `terms` (both ascending).
#[derive(Debug, Clone, PartialEq)]
struct Class {
    rows: Vec<u16>,
    terms: Vec<u16>,
}

/// The structural zeros of a fixed A (`m × k`; a Winograd kernel transform `[P, r²]`, whose
/// rows for the points 0 and ∞ have one nonzero factor): its rows in classes by nonzero
/// columns, so that [`product`] skips the zeros. Built once per plan from the f64 matrix
/// the working one is rounded from (a zero stays zero, a nonzero stays nonzero).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sparsity {
    m: usize,
    k: usize,
    classes: Vec<Class>,
}

impl Sparsity {
    /// The classes of the rows of `a` (`m × k`, row-major), in order of their first row.
    pub(crate) fn of(a: &[f64], m: usize, k: usize) -> Self {
        assert!(a.len() == m * k && m <= u16::MAX as usize && k <= u16::MAX as usize, "Sparsity::of: not a {m}×{k} matrix");
        let mut classes: Vec<Class> = Vec::new();
        for (r, row) in a.chunks_exact(k.max(1)).take(m).enumerate() {
            let terms: Vec<u16> = (0..k).filter(|&t| row[t] != 0.0).map(|t| t as u16).collect();
            match classes.iter_mut().find(|c| c.terms == terms) {
                Some(c) => c.rows.push(r as u16),
                None => classes.push(Class { rows: vec![r as u16], terms }),
            }
        }
        Sparsity { m, k, classes }
    }

    /// Whether this lists the zeros of an `m × k` A whose element `(r, t)` is zero when
    /// `is_zero(r, t)`: the shape matches and A is zero outside each class's terms.
    /// (The classes partition the rows, as [`Sparsity::of`] builds them.) Allocates nothing.
    pub(crate) fn holds(&self, m: usize, k: usize, is_zero: impl Fn(usize, usize) -> bool) -> bool {
        (m, k) == (self.m, self.k)
            && self.classes.iter().map(|c| c.rows.len()).sum::<usize>() == m
            && self
                .classes
                .iter()
                .all(|c| c.rows.iter().all(|&r| (0..k).all(|t| is_zero(r as usize, t) || c.terms.binary_search(&(t as u16)).is_ok())))
    }

    /// Multiply-adds per column of C that [`product`] does with these zeros (without: `m·k`).
    #[cfg(test)]
    pub(crate) fn terms(&self) -> usize {
        self.classes.iter().map(|c| c.rows.len() * c.terms.len()).sum()
    }
}

/// Run one product (see [`Geometry`]): B is read in place when its rows are contiguous whole
/// blocks of columns, else packed on the stack first. The caller has checked [`fits`], `m, k >
/// 0`, that every element the strides reach lies in its buffer, and that C aliases neither A nor
/// B.
///
/// With `zeros` (A's structural zeros, A's shape must be theirs), each row of A sums only its
/// class's terms. The same bits as without when B is finite: a skipped term is
/// `fma(0, b, acc) = acc` (the accumulator starts at +0 and is never −0), and the other terms
/// are summed in the same order. (An infinite or NaN `b` would have made it NaN.)
///
/// # Safety
/// `g.c`, `g.a` and `g.b` must be valid for the offsets `(m−1)·c_row + n − 1`, `(m−1)·av.row +
/// (k−1)·av.col` and `(k−1)·bv.row + (n−1)·bv.col`; C's elements must not overlap A's or B's;
/// A must be zero wherever `zeros` says.
pub(super) unsafe fn product(mut g: Geometry, zeros: Option<&Sparsity>) {
    let (m, n, k) = (g.m, g.n, g.k);
    // The register blocking indexes by `n` and the stack buffer holds `fits`' B: cheap to check.
    assert!(fits(n, k) && m > 0 && k > 0, "gemm_small::product: {m}×{n}×{k} is not a product it takes");
    if let Some(sp) = zeros {
        assert!((m, k) == (sp.m, sp.k), "gemm_small::product: a {m}×{k} A against zeros of a {}×{} one", sp.m, sp.k);
    }
    let mut pack = Pack::new();
    if g.packed {
        assert!(g.bv.col == 1 && g.bv.row >= padded(n), "gemm_small::product: B is not in packed rows");
    } else {
        // SAFETY: B's elements as the caller's contract says; `fits` was checked.
        (g.b, g.bv, _) = unsafe { pack.arrange(g.b, g.bv, n, k) };
    }
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::detect` returns Avx512 only after `is_x86_feature_detected!` found
        // AVX-512F and FMA on this CPU, the features `avx512::run` is compiled for; B's rows
        // hold whole blocks (in place or packed), as it reads; the classes' rows and terms lie
        // within A (the shape checked above).
        Isa::Avx512 => unsafe { avx512::run(&g, zeros) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::detect` returns Avx2 only when `Isa::cpu` found AVX2 and FMA (it
        // checks AVX2 also for its Avx512 answer, which `IDCRISIS_ISA` can lower), the
        // features `avx2::run` is compiled for; B's rows and the classes as above.
        Isa::Avx2 => unsafe { avx2::run(&g, zeros) },
        // SAFETY: the portable kernel needs no CPU feature; B's rows and the classes as above.
        _ => unsafe { g.run(zeros) },
    }
}

/// A stack buffer for B packed into whole 16-lane blocks per row (zero past column `n`), as the
/// kernels read it: [`MAX_PACK`] f32, 16 KB.
pub(super) struct Pack([std::mem::MaybeUninit<f32>; MAX_PACK]);

impl Pack {
    pub(super) fn new() -> Self {
        Pack([std::mem::MaybeUninit::uninit(); MAX_PACK])
    }

    /// Pack B (`k × n` as `bv` lays it out from `b`) unless the kernels can read it in place;
    /// returns where the kernels read it then (this buffer, or `b` itself), its layout, and
    /// whether it was packed ([`Geometry::packed`] for the products that read it). [`product`]
    /// arranges each B so; [`super::gemm_batch`] arranges a B that all its products share once,
    /// for all of them.
    ///
    /// # Safety
    /// `b` must be valid for the offsets `(k−1)·bv.row + (n−1)·bv.col`, and `fits(n, k)` hold.
    pub(super) unsafe fn arrange(&mut self, b: *const f32, bv: View, n: usize, k: usize) -> (*const f32, View, bool) {
        if in_place(n, bv) {
            (b, bv, false)
        } else {
            // SAFETY: the caller's contract.
            let (p, v) = unsafe { self.fill(b, bv, n, k) };
            (p, v, true)
        }
    }

    /// Copy B into whole blocks; returns the packed copy and its layout.
    ///
    /// # Safety
    /// As [`Pack::arrange`].
    unsafe fn fill(&mut self, b: *const f32, bv: View, n: usize, k: usize) -> (*const f32, View) {
        assert!(fits(n, k), "gemm_small: a {k}×{n} B does not fit the pack");
        let np = padded(n);
        #[cfg(target_arch = "x86_64")]
        if bv.col != 1 && Isa::detect() == Isa::Avx512 && (n - 1) * bv.col <= i32::MAX as usize / 2 {
            // SAFETY: `Isa::detect` said AVX-512F; the pack holds k·np ≤ MAX_PACK elements
            // (`fits`), and B's offsets are the caller's contract; the offsets fit i32 (above).
            unsafe { avx512::gather(b, bv, n, k, self.0.as_mut_ptr() as *mut f32, np) };
            return (self.0.as_ptr() as *const f32, View { row: np, col: 1 });
        }
        for (kk, row) in self.0[..k * np].chunks_exact_mut(np).enumerate() {
            let (vals, pad) = row.split_at_mut(n);
            // SAFETY: kk < k, j < n: inside B by the caller's contract.
            let src = unsafe { b.add(kk * bv.row) };
            if bv.col == 1 {
                // SAFETY: B's row kk holds n contiguous columns (the caller's contract).
                let src = unsafe { std::slice::from_raw_parts(src, n) };
                for (x, v) in vals.iter_mut().zip(src) {
                    x.write(*v);
                }
            } else {
                for (j, x) in vals.iter_mut().enumerate() {
                    // SAFETY: as above, column j < n.
                    x.write(unsafe { *src.add(j * bv.col) });
                }
            }
            for x in pad {
                x.write(0.0);
            }
        }
        (self.0.as_ptr() as *const f32, View { row: np, col: 1 })
    }
}

/// One product `C [m, n] = A [m, k] · B [k, n]`, or `C + A·B` when `add`, with C's columns
/// contiguous (row stride `c_row`) and A and B laid out as `av` and `bv` say. The kernels
/// ([`Geometry::run`], `avx512::run`, `avx2::run`) read B's rows as whole 16-lane blocks (`bv.col = 1`, zero
/// past column `n`), which [`product`] arranges.
pub(super) struct Geometry {
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) c: *mut f32,
    pub(super) c_row: usize,
    pub(super) a: *const f32,
    pub(super) av: View,
    pub(super) b: *const f32,
    pub(super) bv: View,
    pub(super) add: bool,
    /// B is already in whole 16-lane blocks per row, zero past column `n` (a [`Pack`] made it),
    /// so [`product`] reads it as it is, whatever `n`.
    pub(super) packed: bool,
}

/// Rows per block for 1 to 4 blocks of columns, so that the `NB·RB` accumulators fit the
/// registers beside A's broadcast and B's row: AVX-512 has 32 registers of 16 lanes, one per
/// accumulator (8 to 16 of them). The portable kernel uses the same.
const ROWS: [usize; 4] = [8, 6, 4, 4];
/// AVX2 has 16 registers of 8 lanes, two per accumulator: 8 accumulator registers for one to
/// two blocks of columns (6 for three), beside B's row (2 to 6 registers) and A's broadcast; at
/// four blocks (8 + 8 + 1) the compiler reads B from memory into the multiply-adds instead of
/// registers. (AVX-512's blocking, compiled for AVX2, spilled: these
/// products were 42% of a 16-channel training step on an AMD EPYC; BENCHMARKS.md.)
const AVX2_ROWS: [usize; 4] = [4, 2, 1, 1];

/// Call `$f::<NB, RB>($arg)` for `n` columns: `NB` blocks of [`LANES`] columns, rows in blocks of
/// `RB = $rows[NB − 1]`. The blocking changes no bits (each element's sum is the same).
macro_rules! by_width {
    ($n:expr, $($f:ident)::+, ($($arg:expr),+), $rows:ident) => {
        match $n.div_ceil(LANES) {
            1 => $($f)::+::<1, { $rows[0] }>($($arg),+),
            2 => $($f)::+::<2, { $rows[1] }>($($arg),+),
            3 => $($f)::+::<3, { $rows[2] }>($($arg),+),
            _ => $($f)::+::<4, { $rows[3] }>($($arg),+),
        }
    };
}

/// The one row loop of every kernel: `full(rows)` for each whole block of `RB` rows
/// `r0..r0 + RB`, then `one([r])` for each of the `m mod RB` remaining rows. Inlined into each
/// kernel's `rows`, so the blocks compile under that kernel's instruction set.
#[inline(always)]
fn row_blocks<const RB: usize>(m: usize, mut full: impl FnMut([usize; RB]), mut one: impl FnMut([usize; 1])) {
    let end = m / RB * RB;
    for r0 in (0..end).step_by(RB) {
        full(std::array::from_fn(|r| r0 + r));
    }
    for r in end..m {
        one([r]);
    }
}

/// [`row_blocks`] over A's classes of rows ([`Sparsity`]): each class's rows in blocks of `RB`, then one at a
/// time, each with the class's terms.
#[inline(always)]
fn class_blocks<const RB: usize>(sp: &Sparsity, mut full: impl FnMut([usize; RB], &[u16]), mut one: impl FnMut([usize; 1], &[u16])) {
    for c in &sp.classes {
        let end = c.rows.len() / RB * RB;
        for b in c.rows[..end].chunks_exact(RB) {
            full(std::array::from_fn(|r| b[r] as usize), &c.terms);
        }
        for &r in &c.rows[end..] {
            one([r as usize], &c.terms);
        }
    }
}

impl Geometry {
    /// The portable kernel (the same bits as [`avx512::run`] and [`avx2::run`]).
    #[inline(always)]
    unsafe fn run(&self, zeros: Option<&Sparsity>) {
        unsafe { by_width!(self.n, Geometry::rows, (self, zeros), ROWS) }
    }

    /// Rows in blocks of `RB`, then the remaining rows one at a time ([`row_blocks`]); with
    /// `zeros`, each class of rows so, over its terms ([`class_blocks`]).
    #[inline(always)]
    unsafe fn rows<const NB: usize, const RB: usize>(&self, zeros: Option<&Sparsity>) {
        // SAFETY: `row_blocks` passes rows < m; the classes hold rows < m and terms < k
        // (`product` checked their shape).
        match zeros {
            None => row_blocks::<RB>(
                self.m,
                |rs| unsafe { self.block::<NB, RB>(rs, All(self.k)) },
                |rs| unsafe { self.block::<NB, 1>(rs, All(self.k)) },
            ),
            Some(sp) => {
                class_blocks::<RB>(sp, |rs, t| unsafe { self.block::<NB, RB>(rs, t) }, |rs, t| unsafe { self.block::<NB, 1>(rs, t) })
            }
        }
    }

    /// Rows `rows` of C, all `n` columns (`NB` blocks of [`LANES`], the last one partial), summed
    /// over the inner indices `terms`.
    #[inline(always)]
    unsafe fn block<const NB: usize, const RB: usize>(&self, rows: [usize; RB], terms: impl Terms) {
        let mut acc = [[[0f32; LANES]; NB]; RB];
        for i in 0..terms.len() {
            let kk = terms.at(i);
            // SAFETY: kk < k; B's rows hold NB whole blocks; rows < m: inside A.
            let brow = unsafe { self.b.add(kk * self.bv.row) };
            let bv: [[f32; LANES]; NB] =
                std::array::from_fn(|nb| unsafe { std::ptr::read_unaligned(brow.add(nb * LANES) as *const [f32; LANES]) });
            for (r, accr) in acc.iter_mut().enumerate() {
                let s = unsafe { *self.a.add(rows[r] * self.av.row + kk * self.av.col) };
                for (accb, v) in accr.iter_mut().zip(&bv) {
                    for (x, y) in accb.iter_mut().zip(v) {
                        *x = s.mul_add(*y, *x);
                    }
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            // SAFETY: row rows[r] < m, columns < n: inside C.
            let crow = unsafe { self.c.add(rows[r] * self.c_row) };
            for (nb, v) in accr.iter().enumerate() {
                let cnt = LANES.min(self.n - nb * LANES);
                for (l, x) in v.iter().enumerate().take(cnt) {
                    unsafe {
                        let p = crow.add(nb * LANES + l);
                        *p = if self.add { *p + *x } else { *x };
                    }
                }
            }
        }
    }
}

/// The AVX-512 kernel: the portable kernel's arithmetic with explicit 16-lane registers and
/// masked stores for the last, partial block of columns.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{class_blocks, row_blocks, All, Geometry, Sparsity, Terms, LANES, ROWS};
    use std::arch::x86_64::*;

    /// [`Geometry::run`] in AVX-512.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn run(g: &Geometry, zeros: Option<&Sparsity>) {
        unsafe { by_width!(g.n, rows, (g, zeros), ROWS) }
    }

    /// [`Geometry::rows`] with this set's blocks.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn rows<const NB: usize, const RB: usize>(g: &Geometry, zeros: Option<&Sparsity>) {
        // SAFETY: as in `Geometry::rows`.
        match zeros {
            None => {
                row_blocks::<RB>(g.m, |rs| unsafe { block::<NB, RB>(g, rs, All(g.k)) }, |rs| unsafe { block::<NB, 1>(g, rs, All(g.k)) })
            }
            Some(sp) => class_blocks::<RB>(sp, |rs, t| unsafe { block::<NB, RB>(g, rs, t) }, |rs, t| unsafe { block::<NB, 1>(g, rs, t) }),
        }
    }

    /// Rows `rows` of C over the inner indices `terms` (see [`Geometry::block`]).
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn block<const NB: usize, const RB: usize>(g: &Geometry, rows: [usize; RB], terms: impl Terms) {
        let mut acc = [[_mm512_setzero_ps(); NB]; RB];
        for i in 0..terms.len() {
            let kk = terms.at(i);
            // SAFETY: kk < k; B's rows hold NB whole blocks; rows < m: inside A.
            let brow = unsafe { g.b.add(kk * g.bv.row) };
            let bv: [__m512; NB] = std::array::from_fn(|nb| unsafe { _mm512_loadu_ps(brow.add(nb * LANES)) });
            let acol = unsafe { g.a.add(kk * g.av.col) };
            for (r, accr) in acc.iter_mut().enumerate() {
                let s = _mm512_set1_ps(unsafe { *acol.add(rows[r] * g.av.row) });
                for (x, v) in accr.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(s, *v, *x);
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            // SAFETY: row rows[r] < m; the mask keeps the stores (and loads) to columns < n, and
            // the block's first column nb·LANES < n, so the pointer stays inside C's row.
            let crow = unsafe { g.c.add(rows[r] * g.c_row) };
            for (nb, x) in accr.iter().enumerate() {
                let cnt = LANES.min(g.n - nb * LANES);
                let mask: __mmask16 = if cnt == LANES { !0 } else { (1u16 << cnt) - 1 };
                unsafe {
                    let p = crow.add(nb * LANES);
                    let v = if g.add { _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), *x) } else { *x };
                    _mm512_mask_storeu_ps(p, mask, v);
                }
            }
        }
    }

    /// [`super::Pack::fill`] for a B whose columns are strided (`bv.col`, e.g. the kernel
    /// transform's weights read transposed): each packed row's 16-lane blocks are gathered, the
    /// columns past `n` zero (masked gathers), into `dst`'s rows `np` apart. The same values as
    /// the scalar copy: it only moves them. (Scalar, this strided copy was 6–7.5% of a 20-layer
    /// 128-channel step.)
    ///
    /// # Safety
    /// As [`super::Pack::fill`]; `dst` holds `k·np` elements, `np` = `n` padded to whole blocks,
    /// and `(n − 1)·bv.col` fits an `i32`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gather(b: *const f32, bv: super::View, n: usize, k: usize, dst: *mut f32, np: usize) {
        let lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(bv.col as i32));
        // Every block starts at a column j0 < n (np is n padded to whole blocks).
        for j0 in (0..np).step_by(LANES) {
            let cnt = LANES.min(n - j0);
            let mask: __mmask16 = if cnt == LANES { !0 } else { (1u16 << cnt) - 1 };
            // SAFETY: column j0 < n is inside B; masked-off lanes read nothing.
            let base = unsafe { b.add(j0 * bv.col) };
            for kk in 0..k {
                unsafe {
                    let src = base.add(kk * bv.row);
                    let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, src);
                    _mm512_storeu_ps(dst.add(kk * np + j0), v);
                }
            }
        }
    }
}

/// The AVX2 kernel: the portable kernel's arithmetic with explicit 8-lane registers, two per
/// 16-lane block of columns, in blocks of [`AVX2_ROWS`] rows.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{class_blocks, row_blocks, All, Geometry, Sparsity, Terms, AVX2_ROWS, LANES};
    use std::arch::x86_64::*;

    /// Lanes per register.
    const HALF: usize = LANES / 2;

    /// [`Geometry::run`] in AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run(g: &Geometry, zeros: Option<&Sparsity>) {
        unsafe { by_width!(g.n, rows, (g, zeros), AVX2_ROWS) }
    }

    /// [`Geometry::rows`] with this set's blocks.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows<const NB: usize, const RB: usize>(g: &Geometry, zeros: Option<&Sparsity>) {
        // SAFETY: as in `Geometry::rows`.
        match zeros {
            None => {
                row_blocks::<RB>(g.m, |rs| unsafe { block::<NB, RB>(g, rs, All(g.k)) }, |rs| unsafe { block::<NB, 1>(g, rs, All(g.k)) })
            }
            Some(sp) => class_blocks::<RB>(sp, |rs, t| unsafe { block::<NB, RB>(g, rs, t) }, |rs, t| unsafe { block::<NB, 1>(g, rs, t) }),
        }
    }

    /// Rows `rows` of C over the inner indices `terms` (see [`Geometry::block`]).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const NB: usize, const RB: usize>(g: &Geometry, rows: [usize; RB], terms: impl Terms) {
        let mut acc = [[[_mm256_setzero_ps(); 2]; NB]; RB];
        for i in 0..terms.len() {
            let kk = terms.at(i);
            // SAFETY: kk < k; B's rows hold NB whole blocks; rows < m: inside A.
            let brow = unsafe { g.b.add(kk * g.bv.row) };
            let bv: [[__m256; 2]; NB] =
                std::array::from_fn(|nb| unsafe { [_mm256_loadu_ps(brow.add(nb * LANES)), _mm256_loadu_ps(brow.add(nb * LANES + HALF))] });
            let acol = unsafe { g.a.add(kk * g.av.col) };
            for (r, accr) in acc.iter_mut().enumerate() {
                let s = _mm256_set1_ps(unsafe { *acol.add(rows[r] * g.av.row) });
                for (x, v) in accr.iter_mut().zip(&bv) {
                    x[0] = _mm256_fmadd_ps(s, v[0], x[0]);
                    x[1] = _mm256_fmadd_ps(s, v[1], x[1]);
                }
            }
        }
        for (r, accr) in acc.iter().enumerate() {
            // SAFETY: row rows[r] < m; whole blocks write columns nb·LANES.. < n, the partial
            // one only its cnt columns < n.
            let crow = unsafe { g.c.add(rows[r] * g.c_row) };
            for (nb, x) in accr.iter().enumerate() {
                let cnt = LANES.min(g.n - nb * LANES);
                unsafe {
                    let p = crow.add(nb * LANES);
                    if cnt == LANES {
                        for (h, x) in x.iter().enumerate() {
                            let q = p.add(h * HALF);
                            let v = if g.add { _mm256_add_ps(_mm256_loadu_ps(q), *x) } else { *x };
                            _mm256_storeu_ps(q, v);
                        }
                    } else {
                        let mut t = [0f32; LANES];
                        _mm256_storeu_ps(t.as_mut_ptr(), x[0]);
                        _mm256_storeu_ps(t.as_mut_ptr().add(HALF), x[1]);
                        for (l, t) in t.iter().enumerate().take(cnt) {
                            *p.add(l) = if g.add { *p.add(l) + *t } else { *t };
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel's entry point, as the tests call them directly.
    type Kernel = unsafe fn(&Geometry, Option<&Sparsity>);

    /// The explicit kernels this CPU can run, by name (none off x86-64).
    fn explicit_kernels() -> Vec<(&'static str, Kernel)> {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = is_x86_feature_detected!("fma");
            let kernels: [(&str, bool, Kernel); 2] = [
                ("avx2", fma && is_x86_feature_detected!("avx2"), avx2::run),
                ("avx512", fma && is_x86_feature_detected!("avx512f"), avx512::run),
            ];
            kernels.into_iter().filter(|k| k.1).map(|(name, _, kernel)| (name, kernel)).collect()
        }
        #[cfg(not(target_arch = "x86_64"))]
        Vec::new()
    }

    /// Deterministic values in [-1, 1).
    fn vals(len: usize, salt: f64) -> Vec<f32> {
        (0..len).map(|i| (((i as f64 + salt) * 12.9898).sin() * 43758.5453).fract() as f32).collect()
    }

    /// Every width from 1 to 64 columns (whole and partial blocks, each register blocking),
    /// row counts with and without a remainder, A and B contiguous or strided, overwrite and
    /// add: against an f64 product, and the portable kernel's bits against the dispatched one and
    /// against every explicit kernel (AVX2, AVX-512) the CPU running the test has.
    #[test]
    fn products_match_f64_and_every_isa_gives_the_same_bits() {
        for n in 1..=MAX_N {
            for (m, k) in [(1, 1), (7, 3), (13, 16), (16, 49)] {
                if !fits(n, k) {
                    continue;
                }
                // A and B contiguous, stored transposed (A [k, m], B [n, k]), or with rows
                // wider than the matrix (B then read in place when n is whole blocks).
                // Or, as in the weight gradient, A's terms and B's rows 1024 apart.
                for layout in ["contiguous", "transposed", "wide", "far"] {
                    let (av, bv) = match layout {
                        "contiguous" => (View { row: k, col: 1 }, View { row: n, col: 1 }),
                        "transposed" => (View { row: 1, col: m }, View { row: 1, col: k }),
                        "wide" => (View { row: k + 3, col: 1 }, View { row: n + LANES, col: 1 }),
                        _ => (View { row: 1, col: 1024 }, View { row: 1024, col: 1 }),
                    };
                    let a = vals((m - 1) * av.row + (k - 1) * av.col + 1, 0.5);
                    let b = vals((k - 1) * bv.row + (n - 1) * bv.col + 1, 7.25);
                    for add in [false, true] {
                        // C's rows are 3 wider than n, the padding a sentinel no product writes.
                        let c_row = n + 3;
                        let c0: Vec<f32> =
                            vals(m * c_row, 3.5).into_iter().enumerate().map(|(i, x)| if i % c_row < n { x } else { 1234.5 }).collect();
                        let mut c = c0.clone();
                        // SAFETY: the buffers hold every element the views and `c_row` reach.
                        unsafe {
                            product(
                                Geometry { m, n, k, c: c.as_mut_ptr(), c_row, a: a.as_ptr(), av, b: b.as_ptr(), bv, add, packed: false },
                                None,
                            )
                        };
                        for r in 0..m {
                            for j in 0..n {
                                let want: f64 =
                                    (0..k).map(|p| a[r * av.row + p * av.col] as f64 * b[p * bv.row + j * bv.col] as f64).sum::<f64>()
                                        + if add { c0[r * c_row + j] as f64 } else { 0.0 };
                                let got = c[r * c_row + j] as f64;
                                assert!(
                                    (got - want).abs() < 1e-5 * (k as f64 + 1.0),
                                    "m={m} n={n} k={k} {layout} add={add} ({r},{j}): {got} vs {want}"
                                );
                            }
                            assert!(
                                c[r * c_row + n..(r + 1) * c_row].iter().all(|&x| x == 1234.5),
                                "m={m} n={n} k={k} {layout}: wrote past row {r}"
                            );
                        }
                        // The portable kernel on B packed the same way gives the same bits.
                        let np = padded(n);
                        let mut bp = vec![0f32; k * np];
                        for p in 0..k {
                            for j in 0..n {
                                bp[p * np + j] = b[p * bv.row + j * bv.col];
                            }
                        }
                        let packed = |c: &mut Vec<f32>| Geometry {
                            m,
                            n,
                            k,
                            c: c.as_mut_ptr(),
                            c_row,
                            a: a.as_ptr(),
                            av,
                            b: bp.as_ptr(),
                            bv: View { row: np, col: 1 },
                            add,
                            packed: true,
                        };
                        let mut cp = c0.clone();
                        // SAFETY: as above; `bp` holds k rows of whole blocks.
                        unsafe { packed(&mut cp).run(None) };
                        assert!(c.iter().zip(&cp).all(|(x, y)| x.to_bits() == y.to_bits()), "m={m} n={n} k={k}: portable bits differ");
                        // `product` reads an already packed B as it is (no second pack), with
                        // the same bits.
                        let mut cq = c0.clone();
                        // SAFETY: as above.
                        unsafe { product(packed(&mut cq), None) };
                        assert!(c.iter().zip(&cq).all(|(x, y)| x.to_bits() == y.to_bits()), "m={m} n={n} k={k}: packed B bits differ");
                        // And every explicit kernel this CPU can run, whichever `product` chose.
                        for (name, kernel) in explicit_kernels() {
                            let mut ck = c0.clone();
                            // SAFETY: as above, on a CPU with the kernel's features.
                            unsafe { kernel(&packed(&mut ck), None) };
                            assert!(
                                ck.iter().zip(&cp).all(|(x, y)| x.to_bits() == y.to_bits()),
                                "m={m} n={n} k={k} {layout}: {name} bits differ from the portable kernel's"
                            );
                        }
                    }
                }
            }
        }
    }

    /// `product` with A's zeros gives the dense product's bits on an A with structural zeros (rows with one
    /// term, a class of rows sharing a pattern, dense rows, a zero row), in every width, with B
    /// contiguous and strided (packed; on AVX-512 by gathers), overwrite and add, in the
    /// dispatched kernel and every explicit one this CPU has; the skipped terms are really
    /// skipped (a NaN in B where A is zero stays out of C).
    #[test]
    fn products_skipping_zeros_give_the_dense_bits() {
        let (m, k) = (23, 25);
        let zero = |r: usize, t: usize| match r {
            0 => t != 0,
            1 => true,
            2..=9 => t % 5 != 2,
            22 => t != k - 1,
            _ => (r * 5 + t).is_multiple_of(7),
        };
        let a: Vec<f32> = vals(m * k, 0.5).iter().enumerate().map(|(e, &v)| if zero(e / k, e % k) { 0.0 } else { v }).collect();
        let sp = Sparsity::of(&a.iter().map(|&v| v as f64).collect::<Vec<_>>(), m, k);
        assert!(sp.classes.len() < m && sp.classes.iter().any(|c| c.rows.len() == 8), "rows 2..=9 share one class");
        assert_eq!(sp.terms(), (0..m).map(|r| (0..k).filter(|&t| !zero(r, t)).count()).sum::<usize>());
        for n in [1, 5, 16, 17, 33, 48, 64] {
            for bv in [View { row: n, col: 1 }, View { row: 1, col: k }] {
                let b = vals((k - 1) * bv.row + (n - 1) * bv.col + 1, 7.25);
                for add in [false, true] {
                    let c0 = vals(m * n, 3.5);
                    let geometry = |c: &mut Vec<f32>| Geometry {
                        m,
                        n,
                        k,
                        c: c.as_mut_ptr(),
                        c_row: n,
                        a: a.as_ptr(),
                        av: View { row: k, col: 1 },
                        b: b.as_ptr(),
                        bv,
                        add,
                        packed: false,
                    };
                    let (mut dense, mut sparse) = (c0.clone(), c0.clone());
                    // SAFETY: the buffers hold every element the views reach.
                    unsafe {
                        product(geometry(&mut dense), None);
                        product(geometry(&mut sparse), Some(&sp));
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&dense), bits(&sparse), "n={n} {bv:?} add={add}: sparse bits differ");
                    // Every explicit kernel on B packed by hand.
                    let np = padded(n);
                    let mut bp = vec![0f32; k * np];
                    for p in 0..k {
                        for j in 0..n {
                            bp[p * np + j] = b[p * bv.row + j * bv.col];
                        }
                    }
                    let packed = |c: &mut Vec<f32>| Geometry { b: bp.as_ptr(), bv: View { row: np, col: 1 }, packed: true, ..geometry(c) };
                    let mut portable = c0.clone();
                    // SAFETY: as above; `bp` holds k rows of whole blocks.
                    unsafe { packed(&mut portable).run(Some(&sp)) };
                    assert_eq!(bits(&portable), bits(&dense), "n={n}: the portable sparse kernel differs");
                    for (name, kernel) in explicit_kernels() {
                        let mut ck = c0.clone();
                        // SAFETY: as above, on a CPU with the kernel's features.
                        unsafe { kernel(&packed(&mut ck), Some(&sp)) };
                        assert_eq!(bits(&ck), bits(&dense), "n={n} {bv:?}: {name} sparse bits differ");
                    }
                }
            }
        }
        // A NaN in B's row 1 (A's zero column 1 in rows 0, 1 and 2..=9) reaches only the rows
        // that read it.
        let n = 16;
        let mut b = vals(k * n, 1.5);
        b[n..2 * n].fill(f32::NAN);
        let mut c = vec![0f32; m * n];
        // SAFETY: as above.
        unsafe {
            product(
                Geometry {
                    m,
                    n,
                    k,
                    c: c.as_mut_ptr(),
                    c_row: n,
                    a: a.as_ptr(),
                    av: View { row: k, col: 1 },
                    b: b.as_ptr(),
                    bv: View { row: n, col: 1 },
                    add: false,
                    packed: false,
                },
                Some(&sp),
            )
        };
        for r in 0..m {
            assert_eq!(c[r * n..(r + 1) * n].iter().any(|x| x.is_nan()), !zero(r, 1), "row {r}");
        }
        assert!(c[n..2 * n].iter().all(|&x| x == 0.0), "an all-zero row of A gives zeros");
    }

    /// The zeros of F(4×4, 5×5)'s kernel transform: G has six dense rows of 5 and two (the
    /// points 0 and ∞) with one nonzero, so G⊗G keeps 32² = 1024 of 1600 terms in 3² = 9
    /// classes; F(4×4, 3×3): (4·3 + 2)² = 196 of 324. `holds` accepts the matrix it was built
    /// from and refuses one with a nonzero where a zero was listed, or another shape.
    #[test]
    fn winograd_kernel_transforms_have_the_zeros_of_their_points() {
        use crate::engine::winograd::WinoMats;
        for (r, terms) in [(5, 1024), (3, 196)] {
            let wm = WinoMats::new(4, r);
            let (p, r2) = (wm.p(), r * r);
            for (g, z) in [(&wm.gk, &wm.gk_zeros), (&wm.gf, &wm.gf_zeros)] {
                assert_eq!(*z, Sparsity::of(g, p, r2));
                assert_eq!(z.terms(), terms, "F(4x4, {r}x{r})");
                assert_eq!(z.classes.len(), 9, "F(4x4, {r}x{r})");
                assert!(z.holds(p, r2, |i, t| g[i * r2 + t] == 0.0));
                let zero_at = g.iter().position(|&v| v == 0.0).unwrap();
                assert!(!z.holds(p, r2, |i, t| i * r2 + t != zero_at && g[i * r2 + t] == 0.0), "a nonzero in a listed zero");
                assert!(!z.holds(p - 1, r2, |i, t| g[i * r2 + t] == 0.0), "another shape");
            }
        }
    }

    #[test]
    fn the_size_rule_bounds_the_stacked_b() {
        assert!(fits(16, 49) && fits(64, 64) && fits(20, 128) && fits(1, 1));
        assert!(!fits(0, 1), "no columns: nothing to block");
        assert!(!fits(65, 1), "more than four blocks of columns");
        assert!(!fits(16, 490), "B of 490×16 is past 16 KB");
        assert!(!fits(20, 129), "20 columns pad to 32: 129×32 > 4096");
    }
}
