//! The Winograd transform matrices for F(m×m, r×r), with input-tile side `n = m + r − 1` at most
//! [`MAX_TILE`]:
//!
//! * [`WinoMats`]: built once per plan in f64 by Cook–Toom interpolation, row-major: the 1-D
//!   output transform `Aᵀ [m, n]`, the 1-D input transform `Bᵀ [n, n]`, and the 2-D kernel
//!   transforms `[n², r²]` of the kernel and of its flip (for the input gradient).
//! * `Small`: the 1-D matrices rounded to the working float type, in fixed
//!   `[MAX_TILE, MAX_TILE]` arrays on the stack, as the transforms in `simd.rs` and
//!   `explicit.rs` read them.

use super::super::Sparsity;
use crate::float::Float;

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
    /// The structural zeros of `gk` and `gf` (the rows of `G` for the points 0 and ∞ have one
    /// nonzero each, so 36% of F(4×4, 5×5)'s entries are zero), which the kernel transforms skip.
    pub(crate) gk_zeros: Sparsity,
    pub(crate) gf_zeros: Sparsity,
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
        let gk_zeros = Sparsity::of(&gk, n * n, r2);
        let gf_zeros = Sparsity::of(&gf, n * n, r2);
        WinoMats { m, r, n, at, bt, gk, gf, gk_zeros, gf_zeros }
    }

    /// Transform points `P = n²`.
    pub fn p(&self) -> usize {
        self.n * self.n
    }

    /// Whether `Aᵀ` pairs up by sign, as it does when the finite points are 0 and pairs ±p
    /// (points 2q−1 and 2q, q ≥ 1): `Aᵀ[i][2q] = (−1)ⁱ Aᵀ[i][2q−1]`, column 0 (point 0) zero
    /// below row 0 and column n−1 (∞) zero above row m−1, each to 1e-12 of the largest entry.
    /// Then `Aᵀx` needs `x[2q−1] ± x[2q]` once and `m(n/2 − 1) + 2` multiply-adds instead of
    /// `mn`. (`Bᵀ` has the same pairs by rows, but a paired input transform measured slower than
    /// the dense one: BENCHMARKS.md.)
    pub fn paired(&self) -> bool {
        let (m, n) = (self.m, self.n);
        if !n.is_multiple_of(2) {
            return false;
        }
        let at = |i: usize, a: usize| self.at[i * n + a];
        let scale = self.at.iter().fold(0.0f64, |s, y| s.max(y.abs()));
        let tiny = |x: f64| x.abs() <= 1e-12 * scale;
        let sign = |k: usize| if k.is_multiple_of(2) { 1.0 } else { -1.0 };
        (0..m).all(|i| {
            (i == 0 || tiny(at(i, 0)))
                && (i + 1 == m || tiny(at(i, n - 1)))
                && (1..n / 2).all(|q| tiny(at(i, 2 * q) - sign(i) * at(i, 2 * q - 1)))
        })
    }
}

/// The 1-D matrices in `T`, on the stack.
pub(super) struct Small<T> {
    /// `Aᵀ [m, n]`.
    pub(super) at: [[T; MAX_TILE]; MAX_TILE],
    /// `A [n, m]`.
    pub(super) a: [[T; MAX_TILE]; MAX_TILE],
    /// `Bᵀ [n, n]`.
    pub(super) bt: [[T; MAX_TILE]; MAX_TILE],
    /// Whether `Aᵀ` has the sign pairs of symmetric points ([`WinoMats::paired`]), which the
    /// output transform then uses to do under half the multiply-adds.
    pub(super) paired: bool,
}

impl<T: Float> Small<T> {
    /// The matrices of `mats` rounded to `T`, zero beyond their sides.
    pub(super) fn new(mats: &WinoMats) -> Self {
        let (m, n) = (mats.m, mats.n);
        let z = [[T::zero(); MAX_TILE]; MAX_TILE];
        let mut s = Small { at: z, a: z, bt: z, paired: mats.paired() };
        for a in 0..n {
            for u in 0..n {
                s.bt[a][u] = T::from_f64(mats.bt[a * n + u]);
            }
            for i in 0..m {
                s.at[i][a] = T::from_f64(mats.at[i * n + a]);
                s.a[a][i] = s.at[i][a];
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paired output transform is the one every supported tile size runs, so the Winograd
    /// tests exercise it; and an `Aᵀ` without the pairs is not taken for a paired one.
    #[test]
    fn every_supported_tile_size_pairs_by_sign() {
        for (m, r) in crate::engine::winograd::SUPPORTED {
            assert!(WinoMats::new(m, r).paired(), "F({m}, {r})");
        }
        let broken: [fn(&mut WinoMats); 3] = [|w| w.at[w.n] = 0.5, |w| w.at[2 * w.n - 1] = 0.5, |w| w.at[w.n + 2] += 1e-3];
        for (k, brk) in broken.iter().enumerate() {
            let mut w = WinoMats::new(4, 5);
            brk(&mut w);
            assert!(!w.paired(), "change {k} went unnoticed");
        }
    }

    #[test]
    fn points_are_distinct() {
        let p = points(9);
        assert_eq!(p, vec![0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1.0 / 3.0, -1.0 / 3.0]);
    }
}
