//! Scores of an output against the probe itself (identity) and the training image (constant).
//!
//! - Pearson correlation (0 when either image is constant);
//! - MSE, mean over the 784 pixels;
//! - SSIM (Wang et al. 2004): 11×11 Gaussian window, σ = 1.5, "valid" positions only
//!   (18×18 on 28×28), K1 = 0.01, K2 = 0.03, data range 1.
//!
//! Outcome label, from the correlations: `identity` if corr-to-identity ≥ 0.9 and at least
//! corr-to-constant; `constant` if corr-to-constant ≥ 0.9 and above corr-to-identity; else
//! `other`. [`OUTCOME_THRESHOLD`] is the 0.9.

use crate::eval::probe::{Category, Probe};
use crate::SIDE;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Correlation a probe needs to count as identity or constant.
pub const OUTCOME_THRESHOLD: f64 = 0.9;

/// Pearson correlation of two equally long vectors; 0 if either has zero variance.
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Mean squared difference.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64
}

/// Mean SSIM of two 28×28 images (see the module docs).
pub fn ssim(a: &[f32], b: &[f32]) -> f64 {
    const WIN: usize = 11;
    let sigma = 1.5f64;
    let g: Vec<f64> = (0..WIN).map(|i| (-((i as f64 - 5.0).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let gs: f64 = g.iter().sum();
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let n = SIDE - WIN + 1;
    let mut total = 0.0;
    for oy in 0..n {
        for ox in 0..n {
            let (mut ma, mut mb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for dy in 0..WIN {
                for dx in 0..WIN {
                    let w = g[dy] * g[dx] / (gs * gs);
                    let i = (oy + dy) * SIDE + ox + dx;
                    let (x, y) = (a[i] as f64, b[i] as f64);
                    ma += w * x;
                    mb += w * y;
                    saa += w * x * x;
                    sbb += w * y * y;
                    sab += w * x * y;
                }
            }
            let (va, vb, cov) = (saa - ma * ma, sbb - mb * mb, sab - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        }
    }
    total / (n * n) as f64
}

/// Which function the net computed on a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Output ≈ input.
    Identity,
    /// Output ≈ training image.
    Constant,
    /// Neither.
    Other,
}

/// Label from the two correlations (see the module docs).
pub fn outcome(corr_id: f64, corr_const: f64) -> Outcome {
    if corr_id >= OUTCOME_THRESHOLD && corr_id >= corr_const {
        Outcome::Identity
    } else if corr_const >= OUTCOME_THRESHOLD && corr_const > corr_id {
        Outcome::Constant
    } else {
        Outcome::Other
    }
}

/// Scores of one probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeScore {
    /// Probe name.
    pub probe: String,
    /// Probe family.
    pub category: Category,
    /// Pearson(output, probe).
    pub corr_identity: f64,
    /// Pearson(output, training image).
    pub corr_constant: f64,
    /// MSE(output, probe).
    pub mse_identity: f64,
    /// MSE(output, training image).
    pub mse_constant: f64,
    /// SSIM(output, probe).
    pub ssim_identity: f64,
    /// SSIM(output, training image).
    pub ssim_constant: f64,
    /// Label.
    pub outcome: Outcome,
}

/// Score `output [784]` on `probe` given the training image.
pub fn score(probe: &Probe, output: &[f32], train: &[f32]) -> ProbeScore {
    let (ci, cc) = (pearson(output, &probe.image), pearson(output, train));
    ProbeScore {
        probe: probe.name.clone(),
        category: probe.category,
        corr_identity: ci,
        corr_constant: cc,
        mse_identity: mse(output, &probe.image),
        mse_constant: mse(output, train),
        ssim_identity: ssim(output, &probe.image),
        ssim_constant: ssim(output, train),
        outcome: outcome(ci, cc),
    }
}

/// Averages over a group of probes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Probes averaged.
    pub count: usize,
    /// Mean corr-to-identity.
    pub corr_identity: f64,
    /// Mean corr-to-constant.
    pub corr_constant: f64,
    /// Mean MSE to identity.
    pub mse_identity: f64,
    /// Mean MSE to constant.
    pub mse_constant: f64,
    /// Mean SSIM to identity.
    pub ssim_identity: f64,
    /// Mean SSIM to constant.
    pub ssim_constant: f64,
    /// Probes labelled identity.
    pub n_identity: usize,
    /// Probes labelled constant.
    pub n_constant: usize,
}

/// Mean of each score over `scores`.
pub fn summarize<'a>(scores: impl IntoIterator<Item = &'a ProbeScore>) -> Summary {
    let v: Vec<&ProbeScore> = scores.into_iter().collect();
    let n = v.len().max(1) as f64;
    let mean = |f: &dyn Fn(&ProbeScore) -> f64| v.iter().map(|s| f(s)).sum::<f64>() / n;
    Summary {
        count: v.len(),
        corr_identity: mean(&|s| s.corr_identity),
        corr_constant: mean(&|s| s.corr_constant),
        mse_identity: mean(&|s| s.mse_identity),
        mse_constant: mean(&|s| s.mse_constant),
        ssim_identity: mean(&|s| s.ssim_identity),
        ssim_constant: mean(&|s| s.ssim_constant),
        n_identity: v.iter().filter(|s| s.outcome == Outcome::Identity).count(),
        n_constant: v.iter().filter(|s| s.outcome == Outcome::Constant).count(),
    }
}

/// Averages per category, plus `paper` (the twelve paper probes) and `all`.
pub fn by_category(scores: &[ProbeScore]) -> BTreeMap<String, Summary> {
    let mut out = BTreeMap::new();
    let mut cats: Vec<Category> = scores.iter().map(|s| s.category).collect();
    cats.sort();
    cats.dedup();
    for c in cats {
        out.insert(c.name().to_string(), summarize(scores.iter().filter(|s| s.category == c)));
    }
    if scores.iter().any(|s| s.category.is_paper()) {
        out.insert("paper".into(), summarize(scores.iter().filter(|s| s.category.is_paper())));
    }
    out.insert("all".into(), summarize(scores));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_values() {
        // Values worked out by hand.
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [2.0f32, 4.0, 6.0, 8.0];
        assert!((pearson(&a, &b) - 1.0).abs() < 1e-12);
        let c = [4.0f32, 3.0, 2.0, 1.0];
        assert!((pearson(&a, &c) + 1.0).abs() < 1e-12);
        // a vs [1,3,2,4]: cov = 4, var = 5 → r = 0.8.
        assert!((pearson(&a, &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        assert_eq!(pearson(&a, &[1.0; 4]), 0.0);
        assert!((mse(&a, &b) - 7.5).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_identical_is_one_and_of_inverted_is_low() {
        let x: Vec<f32> = (0..784).map(|i| ((i * 31) % 17) as f32 / 17.0).collect();
        assert!((ssim(&x, &x) - 1.0).abs() < 1e-12);
        let inv: Vec<f32> = x.iter().map(|v| 1.0 - v).collect();
        assert!(ssim(&x, &inv) < 0.0);
        // Constant images: SSIM reduces to the luminance term (2·0.2·0.6 + c1)/(0.04 + 0.36 + c1).
        let (p, q) = (vec![0.2f32; 784], vec![0.6f32; 784]);
        let c1 = 1e-4;
        assert!((ssim(&p, &q) - (0.24 + c1) / (0.40 + c1)).abs() < 1e-6);
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(outcome(0.99, 0.2), Outcome::Identity);
        assert_eq!(outcome(0.3, 0.95), Outcome::Constant);
        assert_eq!(outcome(0.6, 0.6), Outcome::Other);
    }
}
