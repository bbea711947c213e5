//! Elementwise kernels and bias sums on row-major buffers (sizes in elements):
//!
//! * [`for_each_chunk`]: runs a closure over fixed chunks of a buffer, on the pool when the
//!   buffer is large; ReLU here and the optimizer updates in [`crate::nn::optim`] use it.
//! * [`widest`]: runs a closure compiled for the CPU's widest vectors, for the same loops.
//! * [`relu_forward`] / [`relu_backward`]: ReLU and its gradient, in place.
//! * [`fill_rows`]: the conv bias broadcast, one value per row of `y [rows, cols]`.
//! * [`sum_rows_into`] / [`sum_cols_into`]: the bias gradients, summed over the columns of
//!   `dy [rows, cols]` (channel-first) or its rows (channel-last), in a fixed order on the
//!   calling thread.

use super::winograd::Isa;
use super::{Engine, PAR_CHUNK};
use crate::float::Float;

/// Run `f` compiled for the widest vectors of [`Isa::detect`] (AVX-512, AVX2, else the build's
/// baseline, SSE2 on x86-64; so `IDCRISIS_ISA` lowers it too): for elementwise loops, which the
/// generic code otherwise vectorizes 4 lanes wide. The same bits in every set: each lane does
/// the same IEEE operations, only more lanes at a time. Rust never lets LLVM fuse `a·b + c`
/// into an FMA (the FMA these features imply is used only where code asks for `mul_add`),
/// `sqrt` and `/` stay correctly rounded (approximate reciprocals need fast-math flags, which
/// Rust does not set), and a select such as ReLU's gives the same lane results at any width.
/// `f` is meant to inline into the wrappers below, where the wider set applies to it; if the
/// compiler does not inline it, it runs at the baseline width, with the same bits.
/// (`tests/winograd.rs` compares these loops' bits across the sets in child processes.)
#[inline(always)]
pub fn widest<R>(f: impl FnOnce() -> R) -> R {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::detect` returns Avx512 only when the CPU has AVX-512F.
        Isa::Avx512 => unsafe { wide_avx512(f) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::detect` returns Avx2 only when the CPU has AVX2.
        Isa::Avx2 => unsafe { wide_avx2(f) },
        _ => f(),
    }
}

/// [`widest`] under AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wide_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// [`widest`] under AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn wide_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Run `f(offset, chunk)` over `x` in fixed chunks, in parallel when large. For elementwise work
/// whose result does not depend on the chunking.
pub fn for_each_chunk<T: Float>(eng: &Engine, x: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if eng.parallel(x.len()) {
        eng.par_chunks(x, PAR_CHUNK, |i, c| f(i * PAR_CHUNK, c));
    } else {
        f(0, x);
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

/// In place `x = max(x, 0)`; NaN becomes 0 too.
// An unconditional select (`v > 0 ? v : 0`) rather than a conditional store: it vectorizes
// (the conditional store compiled to scalar compares and stores, 13% of an 8-channel probe).
pub fn relu_forward<T: Float>(eng: &Engine, x: &mut [T]) {
    for_each_chunk(eng, x, |_, c| {
        widest(|| {
            for v in c {
                *v = if *v > T::zero() { *v } else { T::zero() };
            }
        })
    });
}

/// In place `dz = dz · [a > 0]`, where `a = relu(z)` is the forward output (a NaN activation
/// passes no gradient). A select, as in [`relu_forward`].
pub fn relu_backward<T: Float>(eng: &Engine, dz: &mut [T], a: &[T]) {
    for_each_chunk(eng, dz, |off, c| {
        widest(|| {
            for (d, v) in c.iter_mut().zip(&a[off..]) {
                *d = if *v > T::zero() { *d } else { T::zero() };
            }
        })
    });
}
