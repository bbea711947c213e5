//! The probe set: unseen inputs on which a trained network is evaluated.
//!
//! The paper's twelve probes, in this order, with fixed indices:
//! 1. `blend`: 0.5·MNIST test #3 (a "0") + 0.5·MNIST test #18 (a "3");
//! 2. `mnist`: MNIST test #1 (a "2") and #4 (a "4");
//! 3. `fashion`: Fashion-MNIST test #0 (ankle boot) and #1 (pullover);
//! 4. `synthetic`: square, stripes, bars, ramp, dots, ring, ellipse (see [`synthetic`]).
//!
//! Then one `random-rho` probe per requested ρ: `x = ρ·x̂/‖x̂‖ + √(1−ρ²)·u`, with `u` a random
//! unit vector orthogonal to the training image `x̂` (Gaussian, projected, normalised, drawn from
//! the fixed seed [`PROBE_SEED`]), rescaled to `‖x̂‖`. Its correlation with `x̂` (as cosine) is ρ.

use crate::data::{self, Dataset, Split};
use crate::error::Result;
use crate::rng::{Rng, Stream};
use crate::{PIXELS, SIDE};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Seed of the random-ρ probes; fixed so that every run sees the same probes.
pub const PROBE_SEED: u64 = 190_204_698;
/// Default ρ values of the random probes.
pub const DEFAULT_RHOS: [f64; 3] = [0.0, 0.5, 0.9];

/// Which family a probe belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Blend of two MNIST digits.
    Blend,
    /// MNIST test digits.
    Mnist,
    /// Fashion-MNIST test images.
    Fashion,
    /// Synthetic patterns.
    Synthetic,
    /// Random inputs at a set correlation with the training image.
    RandomRho,
    /// Images from a data set named with `probe --dataset`.
    Dataset,
}

impl Category {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Category::Blend => "blend",
            Category::Mnist => "mnist",
            Category::Fashion => "fashion",
            Category::Synthetic => "synthetic",
            Category::RandomRho => "random-rho",
            Category::Dataset => "dataset",
        }
    }
    /// True for the paper's twelve probes.
    pub fn is_paper(self) -> bool {
        matches!(self, Category::Blend | Category::Mnist | Category::Fashion | Category::Synthetic)
    }
}

/// One probe input.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Short unique name, e.g. `mnist-test-1`, `stripes`, `rho-0.50`.
    pub name: String,
    /// Its family.
    pub category: Category,
    /// `[784]` pixels (in [0, 1] except random-ρ probes).
    pub image: Vec<f32>,
}

/// The seven synthetic 28×28 patterns, values in {0, 1} (the ramp in [0, 1]).
pub fn synthetic() -> Vec<(&'static str, Vec<f32>)> {
    let c = (SIDE as f64 - 1.0) / 2.0; // 13.5, the image centre
    let make = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f32> { (0..PIXELS).map(|i| f((i / SIDE) as f64, (i % SIDE) as f64) as f32).collect() };
    let ind = |b: bool| if b { 1.0 } else { 0.0 };
    vec![
        // Centred filled square, 12×12 (rows/cols 8..20).
        ("square", make(&|y, x| ind((8.0..20.0).contains(&y) && (8.0..20.0).contains(&x)))),
        // Vertical stripes of period 2 (1-px lines on even columns).
        ("stripes", make(&|_, x| ind(x as usize % 2 == 0))),
        // Three thick vertical bars, 4 px wide, at columns 4..8, 12..16, 20..24.
        ("bars", make(&|_, x| ind([4.0, 12.0, 20.0].iter().any(|s| x >= *s && x < s + 4.0)))),
        // Horizontal ramp, 0 at the left to 1 at the right.
        ("ramp", make(&|_, x| x / (SIDE as f64 - 1.0))),
        // Regular grid of 1-px dots every 4 px, at rows/cols 2, 6, …, 26.
        ("dots", make(&|y, x| ind(y as usize % 4 == 2 && x as usize % 4 == 2))),
        // Ring (radii 10..12.5) with a crescent inside: disk r=6 minus a disk r=5 shifted 3 px right.
        (
            "ring",
            make(&|y, x| {
                let r = ((y - c).powi(2) + (x - c).powi(2)).sqrt();
                let r2 = ((y - c).powi(2) + (x - c - 3.0).powi(2)).sqrt();
                ind((10.0..=12.5).contains(&r) || (r <= 6.0 && r2 > 5.0))
            }),
        ),
        // Filled horizontal ellipse, semi-axes 11 (x) and 6 (y).
        ("ellipse", make(&|y, x| ind((x - c).powi(2) / 121.0 + (y - c).powi(2) / 36.0 <= 1.0))),
    ]
}

/// A random input at correlation `rho` with `train` (see the module docs).
pub fn random_rho(train: &[f32], rho: f64, rng: &mut Rng) -> Vec<f32> {
    let t: Vec<f64> = train.iter().map(|&v| v as f64).collect();
    let norm = t.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    let that: Vec<f64> = t.iter().map(|v| v / norm).collect();
    let mut u: Vec<f64> = (0..t.len()).map(|_| rng.normal()).collect();
    let dot: f64 = u.iter().zip(&that).map(|(a, b)| a * b).sum();
    u.iter_mut().zip(&that).for_each(|(a, b)| *a -= dot * b);
    let un = u.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    let s = (1.0 - rho * rho).max(0.0).sqrt();
    that.iter().zip(&u).map(|(a, b)| ((rho * a + s * b / un) * norm) as f32).collect()
}

/// The paper's twelve probes plus one random-ρ probe per entry of `rhos`.
pub fn paper_probes(data_dir: &Path, train: &[f32], rhos: &[f64]) -> Result<Vec<Probe>> {
    let mnist = data::load_images(data_dir, Dataset::Mnist, Split::Test)?;
    let fashion = data::load_images(data_dir, Dataset::FashionMnist, Split::Test)?;
    let mut out = Vec::new();
    let (a, b) = (mnist.image_f32(3), mnist.image_f32(18));
    out.push(Probe {
        name: "blend-mnist-3-18".into(),
        category: Category::Blend,
        image: a.iter().zip(&b).map(|(x, y)| 0.5 * x + 0.5 * y).collect(),
    });
    for i in [1, 4] {
        out.push(Probe { name: format!("mnist-test-{i}"), category: Category::Mnist, image: mnist.image_f32(i) });
    }
    for i in [0, 1] {
        out.push(Probe { name: format!("fashion-test-{i}"), category: Category::Fashion, image: fashion.image_f32(i) });
    }
    for (name, image) in synthetic() {
        out.push(Probe { name: name.into(), category: Category::Synthetic, image });
    }
    let mut rng = Rng::new(PROBE_SEED, Stream::Probes);
    for &rho in rhos {
        out.push(Probe { name: format!("rho-{rho:.2}"), category: Category::RandomRho, image: random_rho(train, rho, &mut rng) });
    }
    Ok(out)
}

/// Probes from a data set split: the first `limit` images.
pub fn dataset_probes(data_dir: &Path, dataset: Dataset, split: Split, limit: usize) -> Result<Vec<Probe>> {
    let imgs = data::load_images(data_dir, dataset, split)?;
    Ok((0..limit.min(imgs.count))
        .map(|i| Probe { name: format!("{}-{}-{i}", dataset.name(), split.name()), category: Category::Dataset, image: imgs.image_f32(i) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_rho_has_the_requested_cosine_and_norm() {
        let train: Vec<f32> = (0..PIXELS).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
        let n0 = train.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let mut rng = Rng::new(PROBE_SEED, Stream::Probes);
        for rho in [0.0, 0.3, 0.9, 1.0] {
            let x = random_rho(&train, rho, &mut rng);
            let n = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            let cos = x.iter().zip(&train).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() / (n * n0);
            assert!((cos - rho).abs() < 1e-5, "rho {rho}: cos {cos}");
            assert!((n - n0).abs() / n0 < 1e-5);
        }
    }

    #[test]
    fn synthetic_patterns_are_distinct_and_in_range() {
        let s = synthetic();
        assert_eq!(s.len(), 7);
        for (i, (n, a)) in s.iter().enumerate() {
            assert!(a.iter().all(|v| (0.0..=1.0).contains(v)), "{n}");
            assert!(a.iter().any(|v| *v > 0.0), "{n} is empty");
            for (m, b) in &s[i + 1..] {
                assert_ne!(a, b, "{n} == {m}");
            }
        }
    }
}
