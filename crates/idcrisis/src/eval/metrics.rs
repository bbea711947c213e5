//! Scores of an output against the probe itself (identity) and the training image (constant).
//!
//! - Pearson correlation (0 when either image is constant);
//! - MSE, mean over all C·H·W values;
//! - SSIM (Wang et al. 2004): 11×11 Gaussian window, σ = 1.5, "valid" positions only
//!   (18×18 on 28×28), K1 = 0.01, K2 = 0.03, data range 1; per channel, then the mean over
//!   channels. Images with a side below 11 use the largest odd window that fits.
//!
//! Correlation and MSE are over the flat image, whatever its shape. On a canvas
//! ([`crate::experiment::inputs`]) every score is over the whole canvas, and again over the
//! central window where the image sits ([`ProbeScore::window`]).
//!
//! Outcome label, from the correlations: `identity` if corr-to-identity ≥ 0.9 and at least
//! corr-to-constant; `constant` if corr-to-constant ≥ 0.9 and above corr-to-identity; else
//! `other`. [`OUTCOME_THRESHOLD`] is the 0.9.

use crate::eval::probe::{Category, Probe};
use crate::shape::{Shape, Window};
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

/// The largest `|a[i] − b[i]|`; infinite when the lengths differ or any value is NaN or infinite
/// (a fold with `f64::max` alone skips a NaN, so a broken result would compare as close).
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.iter().chain(b).any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Mean squared difference.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64
}

/// Mean SSIM of two images of `shape` (see the module docs): per channel, then averaged.
pub fn ssim(a: &[f32], b: &[f32], shape: Shape) -> f64 {
    let hw = shape.hw();
    (0..shape.channels).map(|c| ssim_plane(&a[c * hw..(c + 1) * hw], &b[c * hw..(c + 1) * hw], shape.height, shape.width)).sum::<f64>()
        / shape.channels as f64
}

/// Mean SSIM of two `h`×`w` planes.
fn ssim_plane(a: &[f32], b: &[f32], h: usize, w: usize) -> f64 {
    let win = 11.min(h).min(w);
    let win = if win % 2 == 0 { win - 1 } else { win };
    let mid = (win / 2) as f64;
    let sigma = 1.5f64;
    let g: Vec<f64> = (0..win).map(|i| (-((i as f64 - mid).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let gs: f64 = g.iter().sum();
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let (ny, nx) = (h - win + 1, w - win + 1);
    let mut total = 0.0;
    for oy in 0..ny {
        for ox in 0..nx {
            let (mut ma, mut mb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for dy in 0..win {
                for dx in 0..win {
                    let wt = g[dy] * g[dx] / (gs * gs);
                    let i = (oy + dy) * w + ox + dx;
                    let (x, y) = (a[i] as f64, b[i] as f64);
                    ma += wt * x;
                    mb += wt * y;
                    saa += wt * x * x;
                    sbb += wt * y * y;
                    sab += wt * x * y;
                }
            }
            let (va, vb, cov) = (saa - ma * ma, sbb - mb * mb, sab - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        }
    }
    total / (ny * nx) as f64
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
    /// The same scores over the central window where the image sits, on a canvas run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowScore>,
    /// Against the set of training images, on a run trained on a list of images ([`set_score`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<SetScore>,
}

/// How an output relates to a set of k training images `t₁ … t_k` (memorization of a set).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SetScore {
    /// Index (into the run's training list) of the training image nearest to the output in
    /// Euclidean distance.
    pub nearest: usize,
    /// Pearson(output, nearest training image).
    pub corr_nearest: f64,
    /// Largest Pearson(output, tᵢ) over the training images.
    pub corr_best: f64,
    /// ‖output − nearest tᵢ‖₂, in pixel units (values in [0, 1]).
    pub dist_nearest: f64,
    /// ‖output − P(output)‖₂, with P the orthogonal projection onto span{t₁ … t_k}.
    pub dist_span: f64,
    /// Blend index `1 − dist_span / dist_nearest` (0 when `dist_nearest` = 0): near 1 when the
    /// output is a combination of training images far from each one (a blend), near 0 when it
    /// is one training image, or when it is as far from the span as from the nearest image.
    pub blend: f64,
}

/// [`SetScore`] of `output` against `examples` (each of the output's length). For one example
/// the span is a line, so the blend index measures a rescaled copy.
pub fn set_score(output: &[f32], examples: &[Vec<f32>]) -> SetScore {
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt();
    let (nearest, dist_nearest) =
        examples
            .iter()
            .enumerate()
            .map(|(i, e)| (i, dist(output, e)))
            .fold((0, f64::INFINITY), |best, c| if c.1 < best.1 { c } else { best });
    let corr_best = examples.iter().map(|e| pearson(output, e)).fold(f64::NEG_INFINITY, f64::max);
    let a = nalgebra::DMatrix::from_fn(output.len(), examples.len(), |r, c| examples[c][r] as f64);
    let y = nalgebra::DVector::from_iterator(output.len(), output.iter().map(|v| *v as f64));
    // Least squares by SVD (the training images may be nearly dependent): coefficients of the
    // projection, with singular values below 1e-10·σ_max treated as zero.
    let svd = a.clone().svd(true, true);
    let eps = 1e-10 * svd.singular_values.max();
    let dist_span = match svd.solve(&y, eps) {
        Ok(coef) => (&y - &a * coef).norm(),
        Err(_) => dist_nearest,
    };
    let blend = if dist_nearest > 0.0 { (1.0 - dist_span / dist_nearest).clamp(0.0, 1.0) } else { 0.0 };
    SetScore { nearest, corr_nearest: pearson(output, &examples[nearest]), corr_best, dist_nearest, dist_span, blend }
}

/// The six scores of one output: over the whole image, or the central window of a canvas (see
/// [`ProbeScore::window`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowScore {
    /// Pearson(output, probe) in the window.
    pub corr_identity: f64,
    /// Pearson(output, training image) in the window.
    pub corr_constant: f64,
    /// MSE(output, probe) in the window.
    pub mse_identity: f64,
    /// MSE(output, training image) in the window.
    pub mse_constant: f64,
    /// SSIM(output, probe) in the window.
    pub ssim_identity: f64,
    /// SSIM(output, training image) in the window.
    pub ssim_constant: f64,
}

/// The six scores of `output` against `probe` (identity) and `train` (constant), all of `shape`.
fn scores(output: &[f32], probe: &[f32], train: &[f32], shape: Shape) -> WindowScore {
    WindowScore {
        corr_identity: pearson(output, probe),
        corr_constant: pearson(output, train),
        mse_identity: mse(output, probe),
        mse_constant: mse(output, train),
        ssim_identity: ssim(output, probe, shape),
        ssim_constant: ssim(output, train, shape),
    }
}

/// Score `output` (shape `shape`) on `probe` given the training image; with `window`, also
/// over that part of the canvas.
pub fn score(probe: &Probe, output: &[f32], train: &[f32], shape: Shape, window: Option<&Window>) -> ProbeScore {
    let s = scores(output, &probe.image, train, shape);
    ProbeScore {
        probe: probe.name.clone(),
        category: probe.category,
        corr_identity: s.corr_identity,
        corr_constant: s.corr_constant,
        mse_identity: s.mse_identity,
        mse_constant: s.mse_constant,
        ssim_identity: s.ssim_identity,
        ssim_constant: s.ssim_constant,
        outcome: outcome(s.corr_identity, s.corr_constant),
        window: window.map(|w| scores(&w.crop(output), &w.crop(&probe.image), &w.crop(train), w.shape)),
        set: None,
    }
}

/// Whether the net gave one output whatever its input: the MSE to the training image, computed
/// from each probe's output, is the same to the bit on every one of `scores` (at least two).
/// Different outputs agree to the bit in that mean of 784 or more squared differences only by
/// accident; a net whose ReLUs all died returns its last layer's bias (a flat image for a CNN,
/// the bias image for an FCN) for every input exactly. A net that fitted the training image
/// and memorized it may also be input-independent, so callers combine this with the run's
/// status ([`crate::experiment::reproduce::NetSummary::collapsed`]).
pub fn input_independent(scores: &[&ProbeScore]) -> bool {
    scores.len() >= 2 && scores.iter().all(|s| s.mse_constant.to_bits() == scores[0].mse_constant.to_bits())
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
    /// Mean scores over the central window, on a canvas run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowScore>,
    /// Mean set scores, on a run trained on a list of images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<SetSummary>,
}

/// Means of [`SetScore`] over a group of probes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SetSummary {
    /// Mean Pearson(output, nearest training image).
    pub corr_nearest: f64,
    /// Mean blend index.
    pub blend: f64,
    /// Mean ‖output − nearest tᵢ‖₂.
    pub dist_nearest: f64,
    /// Mean ‖output − P(output)‖₂.
    pub dist_span: f64,
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
        window: v
            .iter()
            .all(|s| s.window.is_some())
            .then(|| {
                let w = |f: &dyn Fn(&WindowScore) -> f64| mean(&|s| s.window.as_ref().map_or(0.0, f));
                WindowScore {
                    corr_identity: w(&|s| s.corr_identity),
                    corr_constant: w(&|s| s.corr_constant),
                    mse_identity: w(&|s| s.mse_identity),
                    mse_constant: w(&|s| s.mse_constant),
                    ssim_identity: w(&|s| s.ssim_identity),
                    ssim_constant: w(&|s| s.ssim_constant),
                }
            })
            .filter(|_| !v.is_empty()),
        set: (!v.is_empty() && v.iter().all(|s| s.set.is_some())).then(|| {
            let m = |f: &dyn Fn(&SetScore) -> f64| mean(&|s| s.set.as_ref().map_or(0.0, f));
            SetSummary {
                corr_nearest: m(&|s| s.corr_nearest),
                blend: m(&|s| s.blend),
                dist_nearest: m(&|s| s.dist_nearest),
                dist_span: m(&|s| s.dist_span),
            }
        }),
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
    fn max_abs_diff_is_infinite_for_nan_infinity_or_a_length_mismatch() {
        assert_eq!(max_abs_diff(&[1.0, -2.0, 3.0], &[1.5, -2.0, 0.0]), 3.0);
        assert_eq!(max_abs_diff(&[], &[]), 0.0);
        assert_eq!(max_abs_diff(&[f64::NAN, 1.0], &[0.0, 1.0]), f64::INFINITY);
        assert_eq!(max_abs_diff(&[0.0, 1.0], &[0.0, f64::NEG_INFINITY]), f64::INFINITY);
        assert_eq!(max_abs_diff(&[0.0, 1.0], &[0.0]), f64::INFINITY);
    }

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
        let m = Shape::MNIST;
        let x: Vec<f32> = (0..784).map(|i| ((i * 31) % 17) as f32 / 17.0).collect();
        assert!((ssim(&x, &x, m) - 1.0).abs() < 1e-12);
        let inv: Vec<f32> = x.iter().map(|v| 1.0 - v).collect();
        assert!(ssim(&x, &inv, m) < 0.0);
        // Constant images: SSIM reduces to the luminance term (2·0.2·0.6 + c1)/(0.04 + 0.36 + c1).
        let (p, q) = (vec![0.2f32; 784], vec![0.6f32; 784]);
        let c1 = 1e-4;
        assert!((ssim(&p, &q, m) - (0.24 + c1) / (0.40 + c1)).abs() < 1e-6);
    }

    #[test]
    fn ssim_is_the_mean_over_channels() {
        let m = Shape::MNIST;
        let x: Vec<f32> = (0..784).map(|i| ((i * 31) % 17) as f32 / 17.0).collect();
        let y: Vec<f32> = (0..784).map(|i| ((i * 7) % 11) as f32 / 11.0).collect();
        let (a, b) = (ssim(&x, &y, m), ssim(&x, &x, m));
        // Channel planes [x, x] against [y, x]: the mean of the two plane SSIMs.
        let two = Shape::new(2, 28, 28);
        let got = ssim(&[x.clone(), x.clone()].concat(), &[y, x].concat(), two);
        assert!((got - (a + b) / 2.0).abs() < 1e-12, "{got} vs {}", (a + b) / 2.0);
        // A 5×5 image still scores (window 5): identical gives 1.
        let small: Vec<f32> = (0..25).map(|i| i as f32 / 25.0).collect();
        assert!((ssim(&small, &small, Shape::new(1, 5, 5)) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_input_independent_net_is_told_from_one_that_merely_disagrees() {
        let shape = Shape::new(1, 28, 28);
        let train: Vec<f32> = (0..784).map(|i| ((i * 13) % 17) as f32 / 17.0).collect();
        let probes: Vec<Probe> = (1..4)
            .map(|k| Probe {
                name: format!("p{k}"),
                category: Category::Synthetic,
                image: (0..784).map(|i| ((i * k) % 28) as f32 / 28.0).collect(),
            })
            .collect();
        let scores = |out: &dyn Fn(&Probe) -> Vec<f32>| -> Vec<ProbeScore> {
            probes.iter().map(|p| score(p, &out(p), &train, shape, None)).collect()
        };
        let refs = |v: &[ProbeScore]| -> bool { input_independent(&v.iter().collect::<Vec<_>>()) };
        // A dead CNN (its bias everywhere) and a dead FCN (a bias image, not flat).
        assert!(refs(&scores(&|_| vec![0.37f32; 784])));
        assert!(refs(&scores(&|_| (0..784).map(|i| (i % 5) as f32 * 0.1).collect())));
        // An output that follows its input, even by one pixel, is not; nor is one probe alone.
        assert!(!refs(&scores(&|p| p.image.clone())));
        assert!(!refs(&scores(&|p| {
            let mut o = vec![0.37f32; 784];
            o[400] += p.image[1] * 0.01;
            o
        })));
        let one = scores(&|_| vec![0.37f32; 784]);
        assert!(!input_independent(&[&one[0]]));
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(outcome(0.99, 0.2), Outcome::Identity);
        assert_eq!(outcome(0.3, 0.95), Outcome::Constant);
        assert_eq!(outcome(0.6, 0.6), Outcome::Other);
    }

    #[test]
    fn set_scores_tell_a_copy_from_a_blend() {
        // Three images with disjoint supports, so distances and spans are known exactly.
        let mut t = vec![vec![0.0f32; 12]; 3];
        for (i, img) in t.iter_mut().enumerate() {
            for j in 0..4 {
                img[i * 4 + j] = 0.25 + 0.25 * j as f32;
            }
        }
        // A copy of image 1: nearest 1, distance 0, blend 0.
        let s = set_score(&t[1], &t);
        assert_eq!(s.nearest, 1);
        assert!((s.corr_nearest - 1.0).abs() < 1e-9 && s.dist_nearest == 0.0 && s.blend == 0.0, "{s:?}");
        // The mean of images 0 and 2: in the span (distance 0), far from both: blend 1.
        let mid: Vec<f32> = t[0].iter().zip(&t[2]).map(|(a, b)| 0.5 * (a + b)).collect();
        let s = set_score(&mid, &t);
        assert!(s.dist_span < 1e-6 && (s.blend - 1.0).abs() < 1e-6, "{s:?}");
        // ‖mid − t0‖ = ‖t2‖/√2·… computed directly.
        let want = mid.iter().zip(&t[0]).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
        assert!((s.dist_nearest - want).abs() < 1e-9);
        // A vector orthogonal to every image: the span is no closer than the nearest image's
        // projection; its distance to the span is its own norm.
        let mut off = vec![0.0f32; 12];
        off[0] = 1.0;
        off[1] = -1.0;
        let s = set_score(&off, &t[1..]);
        assert!((s.dist_span - 2f64.sqrt()).abs() < 1e-6, "{s:?}");
    }
}
