//! Matrix products: [`gemm()`], one product `C [m, n] (+)= op(A)·op(B)` threaded over the
//! engine's pool, with [`Trans`] saying how A and B are stored and [`Acc`] whether C is
//! overwritten or added to, and [`gemm_batch`], `count` independent products whose operands sit in shared
//! buffers at the offsets [`Strides`] give, each single-threaded, spread over the pool.
//!
//! Matrices are row-major; sizes are element counts (`m·k` for A, `k·n` for B, `m·n` for C).
//! Both wrap the `gemm` crate (named `::gemm` here, as this module shares its name) with unit
//! scale factors, so C is either overwritten or added to, nothing else.

use super::gemm_small::{self, Geometry, Sparsity, View};
use super::Engine;
use crate::float::Float;
use std::any::TypeId;

/// How [`gemm()`] reads an operand: as stored, or transposed (`op(X) = Xᵀ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trans {
    /// As stored: `A [m, k]`, `B [k, n]`.
    No,
    /// Transposed: `A` stored `[k, m]`, `B` stored `[n, k]`.
    Yes,
}

/// What a product does with the output's previous contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acc {
    /// `C = A·B`; the old values of `C` are never read.
    Overwrite,
    /// `C = C + A·B`.
    Add,
}

/// Products of fewer multiply-adds (`m·n·k`) run on one thread: 2¹⁹ is about 7 µs at the
/// 2-core machine's one-thread rate.
const SPLIT_MIN: usize = 1 << 19;
/// The parts' edges are on multiples of this many rows or columns (whole AVX-512 vectors of f32).
const SPLIT_ALIGN: usize = 16;
/// The `gemm` crate (`gemm-common`'s `gemm_basic_generic`) sums in an order that depends on the
/// shape through three rules: a kernel of its own when `m·n ≤ TINY` (for some layouts), a
/// matrix-vector kernel when m or n is 1, and the sum over k blocked by `min(k, 512)` when
/// `m ≤ SMALL` and `n ≤ SMALL` but by a k-only rule otherwise (`kernel_params`). A part on the
/// same side of all three as the whole product gives the whole's bits.
const SMALL: usize = 64;
/// See [`SMALL`].
const TINY: usize = 256;

/// How [`gemm()`] cuts an `m × n` product with `m·n·k` multiply-adds over `threads` threads:
/// C's rows when `m ≥ n`, else its columns, into the returned number of parts (1: not cut).
/// Every part keeps at least 2 rows (columns), more than [`SMALL`] when the whole has more
/// than `SMALL` on that side and not on the other, and more than `TINY` elements of C when the
/// whole has, so it gets the whole product's bits (see [`SMALL`]): the result does not depend
/// on the thread count.
fn split(threads: usize, m: usize, n: usize, k: usize) -> usize {
    if threads < 2 || m * n * k < SPLIT_MIN {
        return 1;
    }
    let (side, other) = if m >= n { (m, n) } else { (n, m) };
    let small = if side > SMALL && other <= SMALL { SMALL + 1 } else { 2 };
    let tiny = if side * other > TINY { TINY / other + 1 } else { 2 };
    let min_len = small.max(tiny);
    // Each part's edges round down to SPLIT_ALIGN, so it may lose up to SPLIT_ALIGN − 1.
    threads.min(side / (min_len + SPLIT_ALIGN)).max(1)
}

/// The first row (column) of part `i` of `parts` over `side` (for `i = parts`, `side`).
fn part_start(i: usize, parts: usize, side: usize) -> usize {
    if i == parts {
        side
    } else {
        i * side / parts / SPLIT_ALIGN * SPLIT_ALIGN
    }
}

/// C's pointer, shared by the tasks of one region, each of which writes its own elements.
struct COut<T>(*mut T);
// SAFETY: the tasks that share it write disjoint elements through it (argued at each use).
unsafe impl<T> Sync for COut<T> {}

/// One product of the `gemm` crate on the calling thread: `C[m×n] (+)= A·B`, element `(r, j)` of
/// C at `c[r·c_row + j]`, of A at `a[r·a_row + t·a_col]`, of B at `b[t·b_row + j·b_col]`
/// (strides in elements); `add` keeps C's values and adds to them.
///
/// # Safety
/// Every element these sizes and strides reach lies inside its buffer, and C's elements are
/// not read or written by anything else meanwhile (they alias neither A nor B).
unsafe fn one_thread<T: Float>(
    (m, n, k): (usize, usize, usize),
    c: *mut T,
    c_row: isize,
    add: bool,
    (a, a_row, a_col): (*const T, isize, isize),
    (b, b_row, b_col): (*const T, isize, isize),
) {
    // SAFETY: the caller's contract.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            c_row,
            add,
            a,
            a_col,
            a_row,
            b,
            b_col,
            b_row,
            T::one(),
            T::one(),
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        );
    }
}

/// `C[m×n] = op(A)·op(B)` ([`Acc::Overwrite`]) or `C + op(A)·op(B)` ([`Acc::Add`]), all
/// row-major and contiguous, on the engine's threads: C's rows (or, when it has more columns than
/// rows, its columns) are cut into one part per thread, each a one-thread product of the `gemm`
/// crate, cut so that the bits are those of the whole product on one thread ([`split`]).
///
/// `A` is stored `[m, k]`, or `[k, m]` when `ta` is [`Trans::Yes`]; `B` is stored `[k, n]`, or
/// `[n, k]` when `tb` is [`Trans::Yes`].
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(eng: &Engine, m: usize, n: usize, k: usize, c: &mut [T], a: &[T], ta: Trans, b: &[T], tb: Trans, acc: Acc) {
    assert!(c.len() >= m * n, "gemm: C has {} elements, needs {}", c.len(), m * n);
    assert!(a.len() >= m * k, "gemm: A has {} elements, needs {}", a.len(), m * k);
    assert!(b.len() >= k * n, "gemm: B has {} elements, needs {}", b.len(), k * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if acc == Acc::Overwrite {
            c[..m * n].fill(T::zero());
        }
        return;
    }
    let (a_rs, a_cs) = match ta {
        Trans::No => (k as isize, 1),
        Trans::Yes => (1, m as isize),
    };
    let (b_rs, b_cs) = match tb {
        Trans::No => (n as isize, 1),
        Trans::Yes => (1, k as isize),
    };
    let rows = m >= n;
    let side = if rows { m } else { n };
    let parts = split(eng.threads(), m, n, k);
    let out = COut(c.as_mut_ptr());
    let part = |i: usize| {
        let out = &out;
        let lo = part_start(i, parts, side);
        let len = part_start(i + 1, parts, side) - lo;
        let (pm, pn) = if rows { (len, n) } else { (m, len) };
        // SAFETY: the asserts above guarantee that every index the strides reach lies inside the
        // slices: A's largest offset is (m-1)·a_rs + (k-1)·a_cs < m·k for either layout, likewise B
        // (< k·n) and C ((m-1)·n + (n-1) < m·n). A part of rows `lo..lo + len` starts A and C
        // at row `lo` (offsets lo·a_rs and lo·n) and reaches no further than those rows; a part
        // of columns starts B and C at column `lo` (lo·b_cs and lo) likewise. The parts'
        // elements of C are disjoint, and `c` is borrowed mutably, so it aliases neither `a`
        // nor `b`.
        unsafe {
            let (co, ao, bo) = if rows { (lo * n, lo as isize * a_rs, 0) } else { (lo, 0, lo as isize * b_cs) };
            let add = acc == Acc::Add;
            one_thread(
                (pm, pn, k),
                out.0.add(co),
                n as isize,
                add,
                (a.as_ptr().offset(ao), a_rs, a_cs),
                (b.as_ptr().offset(bo), b_rs, b_cs),
            );
        }
    };
    eng.run_tasks(parts, &part);
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

/// `count` independent products `C_b = A_b·B_b` or `C_b + A_b·B_b` (per `acc`) with `A_b [m×k]`,
/// `B_b [k×n]` and `C_b [m×n]` laid out in `a`, `b`, `c` as `al`, `bl`, `cl` say. Each product
/// runs single-threaded and the products are spread over the engine's threads, so the result
/// does not depend on the thread count. Small f32 products (at most 64 columns, B within 16 KB:
/// `gemm_small`) run our own kernel, the same bits in every instruction set; the rest the `gemm`
/// crate.
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
    acc: Acc,
) {
    gemm_batch_skipping(eng, count, m, n, k, c, cl, a, al, b, bl, acc, None);
}

/// [`gemm_batch`] with an A that every product shares (`al.batch = 0`) and whose structural
/// zeros `a_zeros` lists (a Winograd kernel transform's `G`): small f32 products skip them
/// (`gemm_small::product` with the list, the same bits as the dense product); the `gemm` crate's
/// products ignore the list. The list must hold for A (`Sparsity::holds`, checked in debug
/// builds), or the products drop A's unlisted terms.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_batch_skipping<T: Float>(
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
    acc: Acc,
    a_zeros: Option<&Sparsity>,
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
    if let Some(z) = a_zeros {
        assert!(al.batch == 0, "gemm_batch: a list of A's zeros needs one A for every product");
        // Checked in debug builds only: over every element of A, it cost as much as a
        // 16-channel layer's kernel transform. The Winograd callers hold it by construction
        // (A is rounded from the f64 matrix the list was built from, and rounding keeps zeros).
        debug_assert!(
            z.holds(m, k, |r, t| a[r * al.row + t * al.col] == T::zero()),
            "gemm_batch: A ({m}×{k}) has a nonzero where its list of zeros has none"
        );
    }
    /// A B every product shares, arranged once for all of them ([`gemm_small::Pack::arrange`]).
    struct Shared {
        b: *const f32,
        view: View,
        packed: bool,
    }
    // SAFETY: the products only read through `b`. It points into `pack` (or at `b`), which this
    // function neither moves nor drops until the products below have returned.
    unsafe impl Sync for Shared {}
    let out = COut(c.as_mut_ptr());
    // Small f32 products skip the `gemm` crate's per-call costs (see `gemm_small`); the choice
    // depends only on the shapes, never on the thread count.
    let bv = View { row: bl.row, col: bl.col };
    let small = TypeId::of::<T>() == TypeId::of::<f32>() && gemm_small::fits(n, k);
    // A B that every product shares (batch stride 0, as the kernel gradient's `G`) is packed
    // once here, not once per product.
    let mut pack = gemm_small::Pack::new();
    let shared = (small && bl.batch == 0 && k > 0).then(|| {
        // SAFETY: T is f32 (`small`); B's offsets are in bounds (asserted above) and `fits` held.
        let (b, view, packed) = unsafe { pack.arrange(b.as_ptr() as *const f32, bv, n, k) };
        Shared { b, view, packed }
    });
    let one = |i: usize| {
        let out = &out;
        if k == 0 {
            if acc == Acc::Overwrite {
                for r in 0..m {
                    for j in 0..n {
                        // SAFETY: in bounds (max_offset asserted) and only product i's elements.
                        unsafe { *out.0.add(i * cl.batch + r * cl.row + j) = T::zero() };
                    }
                }
            }
            return;
        }
        if small {
            // SAFETY: T is f32 (`small` checked its TypeId), so the casts reinterpret f32 buffers
            // as themselves; the bounds and disjointness are those argued below for the `gemm`
            // crate's call (the same pointers, strides and sizes), and `fits` held.
            unsafe {
                let g = Geometry {
                    m,
                    n,
                    k,
                    c: out.0.add(i * cl.batch) as *mut f32,
                    c_row: cl.row,
                    a: a.as_ptr().add(i * al.batch) as *const f32,
                    av: View { row: al.row, col: al.col },
                    b: shared.as_ref().map_or(b.as_ptr().add(i * bl.batch) as *const f32, |s| s.b),
                    bv: shared.as_ref().map_or(bv, |s| s.view),
                    add: acc == Acc::Add,
                    packed: shared.as_ref().is_some_and(|s| s.packed),
                };
                // A is zero where the list says (the caller's contract, checked above in debug builds).
                gemm_small::product(g, a_zeros);
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
            let (a, b) = (
                (a.as_ptr().add(i * al.batch), al.row as isize, al.col as isize),
                (b.as_ptr().add(i * bl.batch), bl.row as isize, bl.col as isize),
            );
            one_thread((m, n, k), out.0.add(i * cl.batch), cl.row as isize, acc == Acc::Add, a, b);
        }
    };
    eng.run_tasks(count, &one);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], ta: Trans, b: &[f64], tb: Trans) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let av = if ta == Trans::Yes { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb == Trans::Yes { b[j * k + p] } else { b[p * n + j] };
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
        for ta in [Trans::No, Trans::Yes] {
            for tb in [Trans::No, Trans::Yes] {
                let want = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                gemm(&eng, m, n, k, &mut c, &a, ta, &b, tb, Acc::Add);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - (y + 1.0)).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn gemm_cut_over_threads_has_the_bits_of_one_thread_and_matches_naive() {
        // Shapes around the `gemm` crate's rules (TINY, SMALL on either side, matrix-vector at 1)
        // that are large enough to be cut: each must give one thread's bits on 2–4 threads (3
        // threads cut 1×784×784 into 256, 256 and 272 columns without the TINY rule).
        let shapes = [
            (1, 784, 784),
            (784, 784, 1),
            (1, 1100, 600),
            (4, 300, 500),
            (96, 7, 784),
            (7, 96, 784),
            (130, 64, 100),
            (65, 300, 40),
            (1, 2048, 300),
            (2048, 1, 300),
            (64, 64, 130),
            (300, 200, 20),
        ];
        let engines: Vec<Engine> = (1..=4).map(|t| Engine::new(t).unwrap()).collect();
        for (m, n, k) in shapes {
            assert!(split(2, m, n, k) > 1 || (m.max(n) <= 2 * (SMALL + SPLIT_ALIGN) && m.min(n) <= SMALL), "{m}×{n}×{k} is not cut");
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 1.7).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729 % 997) as f32 / 997.0 - 0.5) * 0.3).collect();
            for (ta, tb) in [(Trans::No, Trans::No), (Trans::Yes, Trans::No), (Trans::No, Trans::Yes)] {
                let c0: Vec<f32> = (0..m * n).map(|i| (i % 13) as f32 * 0.01).collect();
                let run = |eng: &Engine| {
                    let mut c = c0.clone();
                    gemm(eng, m, n, k, &mut c, &a, ta, &b, tb, Acc::Add);
                    c
                };
                let want = run(&engines[0]);
                for eng in &engines[1..] {
                    let got = run(eng);
                    let same = got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{m}×{n}×{k} {ta:?} {tb:?}: {} threads differ from one", eng.threads());
                }
                // And the product is right (so equal bits are not two copies of one wrong answer).
                let (a64, b64): (Vec<f64>, Vec<f64>) = (a.iter().map(|&v| v as f64).collect(), b.iter().map(|&v| v as f64).collect());
                let exact = naive(m, n, k, &a64, ta, &b64, tb);
                for ((x, e), c) in want.iter().zip(&exact).zip(&c0) {
                    assert!((*x as f64 - (e + *c as f64)).abs() < 1e-3, "{m}×{n}×{k}: {x} vs {}", e + *c as f64);
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
            for acc in [Acc::Overwrite, Acc::Add] {
                let mut c = vec![1.0; len];
                gemm_batch(&eng, count, m, n, k, &mut c, cl, &a, al, &b, bl, acc);
                let mut touched = vec![false; len];
                for p in 0..count {
                    let ap: Vec<f64> = a[p * m * k..(p + 1) * m * k].to_vec();
                    let bp: Vec<f64> = (0..k * n).map(|e| b[p * n + (e / n) * count * n + e % n]).collect();
                    let want = naive(m, n, k, &ap, Trans::No, &bp, Trans::No);
                    for i in 0..m {
                        for j in 0..n {
                            let off = p * cl.batch + i * cl.row + j;
                            touched[off] = true;
                            let w = want[i * n + j] + if acc == Acc::Add { 1.0 } else { 0.0 };
                            assert!((c[off] - w).abs() < 1e-12, "{cl:?} {acc:?} product {p} ({i},{j})");
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
        gemm_batch(&eng, 2, 2, 3, 1, &mut c, l, &[1.0; 8], l, &[1.0; 8], l, Acc::Overwrite);
    }
}
