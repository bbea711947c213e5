//! Eigenvalues of a real square matrix (not necessarily symmetric), for the attractor Jacobians.
//!
//! Only the eigenvalues are needed there (ρ, the largest magnitudes, how many lie outside the
//! unit circle), so the Schur vectors and the full Schur form are never built:
//!
//! 1. scale by the largest |entry| (undone on the eigenvalues), so nothing overflows;
//! 2. reduce to upper Hessenberg form H = Qᵀ·A·Q by Householder reflectors, one column at a
//!    time ([`hessenberg`]): the reflector of column k is applied from the right and from the
//!    left to each later column while it is in cache, and that column's share of the next
//!    reflector's product A·v is added at once, so each step passes over the matrix once;
//! 3. the Francis implicit double-shift QR iteration on H, restricted to the active window
//!    `l..=hi` (a reflector touches rows and columns of the window only, which is all the
//!    eigenvalues depend on), deflating a 1×1 or 2×2 block when a subdiagonal entry is
//!    negligible: |h[k, k−1]| ≤ ε·(|h[k−1, k−1]| + |h[k, k]|) (ε·max|h| when both are 0), or
//!    below LAPACK's underflow floor, n/ε times the smallest normal number. A sweep's reflectors go in
//!    blocks of [`SWEEP_BLOCK`]; the columns right of a block get its left updates together
//!    afterwards (same operations, same order, same bits).
//!
//! Shifts are the trailing 2×2 block's eigenvalues, except every 10th sweep since the last
//! deflation, which uses an exceptional pair (as EISPACK's `hqr` and LAPACK's `dlahqr` do). Without it the
//! iteration stalls on matrices such as a cyclic permutation; nalgebra's `Schur`, used here
//! before, has no exceptional shift and does not converge on the 4×4 one.
//!
//! Both phases run compiled for the CPU's widest vectors ([`widest`], which `IDCRISIS_ISA`
//! can lower) with the same arithmetic in each: no multiply-add is fused and no sum
//! reassociated, so the eigenvalues are the same bits in every set (`tests/winograd.rs`
//! compares them across the sets in child processes).
//!
//! Cost for D = 784 (one MNIST Jacobian): about 10/3·D³ flops for the reduction and a few D³ for
//! the sweeps; see BENCHMARKS.md for the measured time against the full Schur decomposition.

use crate::engine::widest;
use crate::error::{Error, Result};
use nalgebra::{Complex, DMatrix};

/// Sweeps allowed per eigenvalue on average before giving up (LAPACK's `dlahqr` allows 30).
const SWEEPS_PER_EIGENVALUE: usize = 30;
/// Reflectors per block of a sweep whose left updates reach the far columns together.
const SWEEP_BLOCK: usize = 16;
/// Columns right of a block updated together, one reflector at a time.
const FAR_COLUMNS: usize = 32;
/// A window's sweeps between exceptional shifts.
const EXCEPTIONAL_EVERY: usize = 10;

/// Every eigenvalue of the square matrix `m` (`[n, n]`), complex pairs as conjugates, in the
/// order they deflate (no particular order). Errors on a non-square matrix, a non-finite entry,
/// or when the QR iteration has not deflated every eigenvalue after 30·max(n, 10) sweeps.
/// Eigenvalues beyond f64's range (|λ| ≤ n·max|entry|, so only for entries near 1e308) come
/// back infinite.
pub fn eigenvalues(m: &DMatrix<f64>) -> Result<Vec<Complex<f64>>> {
    let n = m.nrows();
    if m.ncols() != n {
        return Err(Error::Other(format!("eigenvalues of a non-square {}×{} matrix", n, m.ncols())));
    }
    if let Some(i) = m.iter().position(|v| !v.is_finite()) {
        return Err(Error::Other(format!(
            "the {n}×{n} matrix has a non-finite entry ({} at row {}, column {}); its eigenvalues are undefined",
            m[i],
            i % n,
            i / n
        )));
    }
    let scale = m.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if scale == 0.0 {
        return Ok(vec![Complex::new(0.0, 0.0); n]);
    }
    let a = m / scale;
    let max_sweeps = SWEEPS_PER_EIGENVALUE * n.max(10);
    // Compiled for the CPU's widest vectors, the same bits in each (`engine::widest`).
    let out = widest(
        #[inline(always)]
        || reduce_and_sweep(a, max_sweeps),
    );
    let mut out = out.ok_or_else(|| {
        Error::Other(format!("the QR iteration for the eigenvalues of the {n}×{n} matrix did not converge in {max_sweeps} sweeps"))
    })?;
    for z in &mut out {
        *z *= scale;
    }
    Ok(out)
}

/// [`hessenberg`], then [`hessenberg_eigenvalues`]; inlined into [`widest`]'s wrappers.
#[inline(always)]
fn reduce_and_sweep(mut a: DMatrix<f64>, max_sweeps: usize) -> Option<Vec<Complex<f64>>> {
    let n = a.nrows();
    hessenberg(a.as_mut_slice(), n);
    hessenberg_eigenvalues(a, max_sweeps, SWEEP_BLOCK)
}

/// Reduces the column-major `n × n` matrix `a` in place to upper Hessenberg form H = Qᵀ·A·Q
/// (zeros below the first subdiagonal written), Q the product of Householder reflectors
/// `I − τ·v·vᵀ` for columns 0..=n−3.
///
/// Step k applies reflector k as A ← A − τ·w·vᵀ (right, w = A·v) then A ← A − τ·v·(vᵀA)
/// (left), column by column over columns k+1..n; while column k+1 is fresh it yields reflector
/// k+1, and each later column, once updated, adds its term to the next w.
#[inline(always)]
fn hessenberg(a: &mut [f64], n: usize) {
    if n < 3 {
        return;
    }
    let (mut v, mut v2, mut w, mut w2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut tau = column_reflector(&mut a[..n], 0, &mut v);
    if tau != 0.0 {
        for (j, col) in a.chunks_exact(n).enumerate().skip(1) {
            axpy(&mut w, v[j], col);
        }
    }
    for k in 0..n - 2 {
        // Column k+1 has a reflector when at least 2 rows lie below its subdiagonal entry.
        let next = k + 3 < n;
        let mut tau2 = 0.0;
        w2.fill(0.0);
        for (j, col) in a.chunks_exact_mut(n).enumerate().skip(k + 1) {
            if tau != 0.0 {
                axpy(col, -tau * v[j], &w);
                let d = tau * dot(&col[k + 1..], &v[k + 1..]);
                axpy(&mut col[k + 1..], -d, &v[k + 1..]);
            }
            if next {
                if j == k + 1 {
                    tau2 = column_reflector(col, k + 1, &mut v2);
                } else if tau2 != 0.0 {
                    axpy(&mut w2, v2[j], col);
                }
            }
        }
        tau = tau2;
        std::mem::swap(&mut v, &mut v2);
        std::mem::swap(&mut w, &mut w2);
    }
}

/// The reflector `I − τ·v·vᵀ` of column `c` (`col`, the column's `n` entries): it maps
/// col[c+1..] to (β, 0, …). Writes v (v[c+1] = 1, zero above), β and the zeros into `col`;
/// returns τ, 0 when col[c+2..] is already zero (nothing to do).
#[inline(always)]
fn column_reflector(col: &mut [f64], c: usize, v: &mut [f64]) -> f64 {
    v.fill(0.0);
    let alpha = col[c + 1];
    let sigma = dot(&col[c + 2..], &col[c + 2..]);
    if sigma == 0.0 {
        return 0.0;
    }
    let beta = -(alpha * alpha + sigma).sqrt().copysign(alpha);
    let s = 1.0 / (alpha - beta);
    v[c + 1] = 1.0;
    for (vi, x) in v[c + 2..].iter_mut().zip(&mut col[c + 2..]) {
        *vi = *x * s;
        *x = 0.0;
    }
    col[c + 1] = beta;
    (beta - alpha) / beta
}

/// y += a·x.
#[inline(always)]
fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// x·y in 8 partial sums (sum l takes the terms i ≡ l mod 8), added pairwise at the end: the
/// same order, so the same bits, at any vector width.
#[inline(always)]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    for (l, (a, b)) in xr.iter().zip(yr).enumerate() {
        acc[l] += a * b;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Eigenvalues of the upper Hessenberg `h` (entries below the first subdiagonal are ignored),
/// or None if `max_sweeps` double-shift sweeps do not deflate them all. See the module docs.
#[inline(always)]
fn hessenberg_eigenvalues(mut h: DMatrix<f64>, max_sweeps: usize, block: usize) -> Option<Vec<Complex<f64>>> {
    let n = h.nrows();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Some(out);
    }
    let norm = h.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    // Column-major: h[(i, j)] = d[i + j·n].
    let d = h.as_mut_slice();
    let at = |i: usize, j: usize| i + j * n;
    let mut hi = n - 1;
    let mut its = 0;
    let mut sweeps = 0;
    let block = block.max(1);
    // Below this a subdiagonal entry is negligible whatever its neighbours (LAPACK's smlnum),
    // so that ε·s cannot underflow past it.
    let tiny = f64::MIN_POSITIVE * (n as f64 / f64::EPSILON);
    // (k, rows, τ, u) of a block's reflectors, for the columns right of the block.
    let mut deferred: Vec<(usize, usize, f64, [f64; 3])> = Vec::with_capacity(block);
    loop {
        // l: the top of the active window, the first row below a negligible subdiagonal entry.
        let mut l = hi;
        while l > 0 {
            let mut s = d[at(l - 1, l - 1)].abs() + d[at(l, l)].abs();
            if s == 0.0 {
                s = norm;
            }
            if d[at(l, l - 1)].abs() <= (f64::EPSILON * s).max(tiny) {
                d[at(l, l - 1)] = 0.0;
                break;
            }
            l -= 1;
        }
        if l + 1 >= hi {
            // A 1×1 or 2×2 block has deflated.
            if l == hi {
                out.push(Complex::new(d[at(hi, hi)], 0.0));
            } else {
                let (a, b) = eig2(d[at(l, l)], d[at(l, hi)], d[at(hi, l)], d[at(hi, hi)]);
                out.push(a);
                out.push(b);
            }
            if l == 0 {
                return Some(out);
            }
            hi = l - 1;
            its = 0;
            continue;
        }
        if sweeps == max_sweeps {
            return None;
        }
        sweeps += 1;
        its += 1;
        // The shifts σ₁, σ₂: the trailing 2×2 block's eigenvalues, or an exceptional pair
        // a ± i·√0.4375·s.
        let (s1, s2) = if its % EXCEPTIONAL_EVERY == 0 {
            let s = d[at(hi, hi - 1)].abs() + d[at(hi - 1, hi - 2)].abs();
            let a = 0.75 * s + d[at(hi, hi)];
            let q = 0.4375f64.sqrt() * s;
            (Complex::new(a, q), Complex::new(a, -q))
        } else {
            eig2(d[at(hi - 1, hi - 1)], d[at(hi - 1, hi)], d[at(hi, hi - 1)], d[at(hi, hi)])
        };
        // The first column of (H − σ₁)(H − σ₂), rows l..l+2, divided by
        // s = |h00 − σ₂| (1-norm) + |h10| as LAPACK's `dlahqr` forms it: no entry is squared, so
        // a window of tiny entries does not underflow to a zero column.
        let (h00, h01, h10, h11, h21) = (d[at(l, l)], d[at(l, l + 1)], d[at(l + 1, l)], d[at(l + 1, l + 1)], d[at(l + 2, l + 1)]);
        let s = (h00 - s2.re).abs() + s2.im.abs() + h10.abs();
        let h10s = h10 / s;
        let mut v =
            [h10s * h01 + (h00 - s1.re) * ((h00 - s2.re) / s) - s1.im * (s2.im / s), h10s * (h00 + h11 - s1.re - s2.re), h10s * h21];
        // Chase the bulge down: a 3-row reflector at k = l..hi−2, a 2-row one at hi−1, in
        // blocks of `block` reflectors. Within a block, reflector k goes at once to the rows
        // l..=min(k+3, hi) of its 3 columns (right) and to its rows in the columns up to 2 past
        // the block's end (left), which is all the next reflectors read; the columns further
        // right get the block's left updates afterwards, each column's rows k0..k1+2 once
        // loaded for all of them. Those columns see the same operations in the same order, so
        // the result does not depend on `block`.
        let mut k0 = l;
        while k0 < hi {
            let k1 = (k0 + block).min(hi);
            let near_end = (k1 + 3).min(hi + 1);
            deferred.clear();
            for k in k0..k1 {
                let rows = if k + 1 < hi { 3 } else { 2 };
                if k > l {
                    v = [d[at(k, k - 1)], d[at(k + 1, k - 1)], if rows == 3 { d[at(k + 2, k - 1)] } else { 0.0 }];
                }
                let Some((beta, tau, u)) = reflector(v) else { continue };
                if k > l {
                    d[at(k, k - 1)] = beta;
                    d[at(k + 1, k - 1)] = 0.0;
                    if rows == 3 {
                        d[at(k + 2, k - 1)] = 0.0;
                    }
                }
                let rows_right = l..(k + 4).min(hi + 1);
                if rows == 3 {
                    reflect::<3>(d, n, k, k..near_end, rows_right, tau, u);
                } else {
                    reflect::<2>(d, n, k, k..near_end, rows_right, tau, [u[0], u[1]]);
                }
                deferred.push((k, rows, tau, u));
            }
            if near_end <= hi {
                // FAR_COLUMNS columns at a time, each reflector across all of them: the
                // columns are independent, a reflector's rows in one column are not.
                for cols in d[at(0, near_end)..at(0, hi + 1)].chunks_mut(FAR_COLUMNS * n) {
                    for &(k, rows, tau, u) in &deferred {
                        for col in cols.chunks_exact_mut(n) {
                            if rows == 3 {
                                left::<3>(col, k, tau, u);
                            } else {
                                left::<2>(col, k, tau, [u[0], u[1]]);
                            }
                        }
                    }
                }
            }
            k0 = k1;
        }
    }
}

/// Applies `I − τ·u·uᵀ` to the column-major `n × n` matrix `d` on both sides of rows/columns
/// `k..k+R`: from the left on columns `cols`, from the right on rows `rows`.
#[inline(always)]
fn reflect<const R: usize>(
    d: &mut [f64],
    n: usize,
    k: usize,
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
    tau: f64,
    u: [f64; R],
) {
    // From the left: each column's rows k..k+R are contiguous.
    for col in d[cols.start * n..cols.end * n].chunks_exact_mut(n) {
        left::<R>(col, k, tau, u);
    }
    // From the right: columns k..k+R, over `rows`.
    let block = &mut d[k * n..(k + R) * n];
    for i in rows {
        let mut w = 0.0;
        for c in 0..R {
            w += block[i + c * n] * u[c];
        }
        w *= tau;
        for c in 0..R {
            block[i + c * n] -= w * u[c];
        }
    }
}

/// `I − τ·u·uᵀ` from the left on rows `k..k+R` of one column.
#[inline(always)]
fn left<const R: usize>(col: &mut [f64], k: usize, tau: f64, u: [f64; R]) {
    let r: &mut [f64; R] = (&mut col[k..k + R]).try_into().expect("R rows");
    let mut w = 0.0;
    for c in 0..R {
        w += r[c] * u[c];
    }
    w *= tau;
    for c in 0..R {
        r[c] -= w * u[c];
    }
}

/// The Householder reflector `I − τ·u·uᵀ` (u[0] = 1; u[2] = 0 when v[2] = 0) that maps `v` to
/// `(β, 0, 0)`: returns (β, τ, u), or None when v = 0.
fn reflector(v: [f64; 3]) -> Option<(f64, f64, [f64; 3])> {
    let s = v[0].abs() + v[1].abs() + v[2].abs();
    if s == 0.0 {
        return None;
    }
    let [x, y, z] = v.map(|e| e / s);
    let beta = -(x * x + y * y + z * z).sqrt().copysign(x);
    Some((beta * s, (beta - x) / beta, [1.0, y / (x - beta), z / (x - beta)]))
}

/// The eigenvalues of the 2×2 matrix [[a, b], [c, d]], without cancellation in the real case.
/// Computed on the matrix scaled by a power of two near 1/max|entry| (exact, so the same bits
/// as unscaled for ordinary entries), so that p² + bc neither underflows nor overflows.
fn eig2(a: f64, b: f64, c: f64, d: f64) -> (Complex<f64>, Complex<f64>) {
    let m = a.abs().max(b.abs()).max(c.abs()).max(d.abs());
    if m == 0.0 || !m.is_finite() {
        return (Complex::new(a, 0.0), Complex::new(d, 0.0));
    }
    let e = (m.log2().floor() as i32).clamp(-1000, 1000);
    let (up, down) = (2f64.powi(e), 2f64.powi(-e));
    let (a, b, c, d) = (a * down, b * down, c * down, d * down);
    let p = 0.5 * (a - d);
    let disc = p * p + b * c;
    if disc >= 0.0 {
        // λ = d + p ± √disc; μ takes the sign that adds, the other root is d − bc/μ.
        let mu = p + disc.sqrt().copysign(p);
        let other = if mu == 0.0 { d } else { d - b * c / mu };
        (Complex::new((d + mu) * up, 0.0), Complex::new(other * up, 0.0))
    } else {
        let im = (-disc).sqrt();
        (Complex::new((d + p) * up, im * up), Complex::new((d + p) * up, -im * up))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(n: usize, seed: u64) -> DMatrix<f64> {
        let mut r = crate::rng::Rng::new(seed, crate::rng::Stream::Misc);
        DMatrix::from_fn(n, n, |_, _| r.uniform() - 0.5)
    }

    /// H is upper Hessenberg, similar to A by an orthogonal Q (same trace, same Frobenius norm),
    /// and equal to nalgebra's reduction up to the signs of Q's columns (|entries| agree).
    #[test]
    fn the_reduction_is_an_orthogonal_similarity_to_hessenberg_form() {
        for (n, seed) in [(3, 1), (4, 2), (9, 3), (40, 4), (130, 5)] {
            let a = matrix(n, seed);
            let mut h = a.clone();
            hessenberg(h.as_mut_slice(), n);
            for j in 0..n {
                for i in j + 2..n {
                    assert_eq!(h[(i, j)], 0.0, "n = {n}: ({i}, {j})");
                }
            }
            assert!((h.trace() - a.trace()).abs() < 1e-12 * n as f64, "n = {n}");
            assert!((h.norm() - a.norm()).abs() < 1e-12 * a.norm(), "n = {n}");
            let theirs = nalgebra::Hessenberg::new(a.clone()).unpack_h();
            let d = h.iter().zip(theirs.iter()).map(|(x, y)| (x.abs() - y.abs()).abs()).fold(0.0, f64::max);
            assert!(d < 1e-12, "n = {n}: {d:e}");
        }
    }

    /// Deferring a block's left updates of the far columns changes nothing: the same bits for
    /// blocks of 1, 3, 16 and more than the matrix.
    #[test]
    fn the_sweep_block_does_not_change_the_bits() {
        for (n, seed) in [(6, 9), (57, 10), (160, 11)] {
            let mut h = matrix(n, seed);
            hessenberg(h.as_mut_slice(), n);
            let one = hessenberg_eigenvalues(h.clone(), 30 * n, 1).unwrap();
            for block in [3, SWEEP_BLOCK, 2 * n] {
                let got = hessenberg_eigenvalues(h.clone(), 30 * n, block).unwrap();
                assert!(
                    got.iter().zip(&one).all(|(x, y)| x.re.to_bits() == y.re.to_bits() && x.im.to_bits() == y.im.to_bits()),
                    "block {block}, n = {n}"
                );
            }
        }
    }

    /// The 2×2 formula: real roots from either sign of p, a double root (μ = 0), bc < 0 with
    /// real roots, and a complex pair.
    #[test]
    fn two_by_two_eigenvalues() {
        let real = |z: (Complex<f64>, Complex<f64>)| {
            assert!(z.0.im == 0.0 && z.1.im == 0.0, "{z:?}");
            let (a, b) = (z.0.re.max(z.1.re), z.0.re.min(z.1.re));
            (a, b)
        };
        assert_eq!(real(eig2(2.0, 1.0, 1.0, 2.0)), (3.0, 1.0));
        assert_eq!(real(eig2(1.0, 2.0, 0.0, 5.0)), (5.0, 1.0));
        assert_eq!(real(eig2(1.0, 0.0, 0.0, 1.0)), (1.0, 1.0));
        let (a, b) = real(eig2(4.0, 1.0, -1.0, 0.0));
        assert!((a - (2.0 + 3f64.sqrt())).abs() < 1e-15 && (b - (2.0 - 3f64.sqrt())).abs() < 1e-15, "{a} {b}");
        // Cancellation-free: the small root of [[1e8, 1], [1, 0]] is −1e-8 to full precision.
        let (_, small) = real(eig2(1e8, 1.0, 1.0, 0.0));
        assert!((small + 1e-8).abs() < 1e-22, "{small:e}");
        let (p, q) = eig2(0.5, -2.0, 2.0, 0.5);
        assert_eq!((p, q), (Complex::new(0.5, 2.0), Complex::new(0.5, -2.0)));
    }
}
