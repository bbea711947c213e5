//! Eigenvalues of a real square matrix (not necessarily symmetric), for the attractor Jacobians.
//!
//! Only the eigenvalues are needed there (ρ, the largest magnitudes, how many lie outside the
//! unit circle), so the Schur vectors and the full Schur form are never built:
//!
//! 1. scale by the largest |entry| (undone on the eigenvalues), so nothing overflows;
//! 2. reduce to upper Hessenberg form H by Householder similarity (nalgebra's
//!    [`Hessenberg`](nalgebra::Hessenberg));
//! 3. the Francis implicit double-shift QR iteration on H, restricted to the active window
//!    `l..=hi` (a reflector touches rows and columns of the window only, which is all the
//!    eigenvalues depend on), deflating a 1×1 or 2×2 block when a subdiagonal entry is
//!    negligible: |h[k, k−1]| ≤ ε·(|h[k−1, k−1]| + |h[k, k]|).
//!
//! Shifts are the trailing 2×2 block's eigenvalues, except every 10th sweep on one window, which
//! uses an exceptional pair (as EISPACK's `hqr` and LAPACK's `dlahqr` do). Without it the
//! iteration stalls on matrices such as a cyclic permutation; nalgebra's `Schur`, used here
//! before, has no exceptional shift and does not converge on the 4×4 one.
//!
//! Cost for D = 784 (one MNIST Jacobian): about 10/3·D³ flops for the reduction and a few D³ for
//! the sweeps; see BENCHMARKS.md for the measured time against the full Schur decomposition.

use crate::error::{Error, Result};
use nalgebra::{Complex, DMatrix};

/// Sweeps allowed per eigenvalue on average before giving up (LAPACK's `dlahqr` allows 30).
const SWEEPS_PER_EIGENVALUE: usize = 30;
/// A window's sweeps between exceptional shifts.
const EXCEPTIONAL_EVERY: usize = 10;

/// Every eigenvalue of the square matrix `m` (`[n, n]`), complex pairs as conjugates, in the
/// order they deflate (no particular order). Errors on a non-square matrix, a non-finite entry,
/// or when the QR iteration has not deflated every eigenvalue after 30·max(n, 10) sweeps.
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
    let h = match n {
        // nalgebra's Hessenberg needs n ≥ 2; 1×1 and 2×2 are already Hessenberg.
        0..=2 => m / scale,
        _ => nalgebra::Hessenberg::new(m / scale).unpack_h(),
    };
    let mut out = hessenberg_eigenvalues(h, SWEEPS_PER_EIGENVALUE * n.max(10)).ok_or_else(|| {
        Error::Other(format!(
            "the QR iteration for the eigenvalues of the {n}×{n} matrix did not converge in {} sweeps",
            SWEEPS_PER_EIGENVALUE * n.max(10)
        ))
    })?;
    for z in &mut out {
        *z *= scale;
    }
    Ok(out)
}

/// Eigenvalues of the upper Hessenberg `h` (entries below the first subdiagonal are ignored),
/// or None if `max_sweeps` double-shift sweeps do not deflate them all. See the module docs.
fn hessenberg_eigenvalues(mut h: DMatrix<f64>, max_sweeps: usize) -> Option<Vec<Complex<f64>>> {
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
    loop {
        // l: the top of the active window, the first row below a negligible subdiagonal entry.
        let mut l = hi;
        while l > 0 {
            let mut s = d[at(l - 1, l - 1)].abs() + d[at(l, l)].abs();
            if s == 0.0 {
                s = norm;
            }
            if d[at(l, l - 1)].abs() <= f64::EPSILON * s {
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
        // The shifts enter only through their sum and product.
        let (tr, det) = if its % EXCEPTIONAL_EVERY == 0 {
            let s = d[at(hi, hi - 1)].abs() + d[at(hi - 1, hi - 2)].abs();
            let a = 0.75 * s + d[at(hi, hi)];
            (2.0 * a, a * a + 0.4375 * s * s)
        } else {
            let (a, b, c, e) = (d[at(hi - 1, hi - 1)], d[at(hi - 1, hi)], d[at(hi, hi - 1)], d[at(hi, hi)]);
            (a + e, a * e - b * c)
        };
        // The first column of (H − σ₁)(H − σ₂) = H² − tr·H + det, rows l..l+2.
        let (h00, h01, h10, h11, h21) = (d[at(l, l)], d[at(l, l + 1)], d[at(l + 1, l)], d[at(l + 1, l + 1)], d[at(l + 2, l + 1)]);
        let mut v = [h00 * h00 + h01 * h10 - tr * h00 + det, h10 * (h00 + h11 - tr), h10 * h21];
        // Chase the bulge down: a 3-row reflector at k = l..hi−2, a 2-row one at hi−1.
        for k in l..hi {
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
            // From the left on columns k..=hi, from the right on rows l..=min(k+3, hi).
            let rows_right = l..(k + 4).min(hi + 1);
            if rows == 3 {
                reflect::<3>(d, n, k, k..hi + 1, rows_right, tau, u);
            } else {
                reflect::<2>(d, n, k, k..hi + 1, rows_right, tau, [u[0], u[1]]);
            }
        }
    }
}

/// Applies `I − τ·u·uᵀ` to the column-major `n × n` matrix `d` on both sides of rows/columns
/// `k..k+R`: from the left on columns `cols`, from the right on rows `rows`.
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
fn eig2(a: f64, b: f64, c: f64, d: f64) -> (Complex<f64>, Complex<f64>) {
    let p = 0.5 * (a - d);
    let disc = p * p + b * c;
    if disc >= 0.0 {
        // λ = d + p ± √disc; μ takes the sign that adds, the other root is d − bc/μ.
        let mu = p + disc.sqrt().copysign(p);
        let other = if mu == 0.0 { d } else { d - b * c / mu };
        (Complex::new(d + mu, 0.0), Complex::new(other, 0.0))
    } else {
        let im = (-disc).sqrt();
        (Complex::new(d + p, im), Complex::new(d + p, -im))
    }
}
