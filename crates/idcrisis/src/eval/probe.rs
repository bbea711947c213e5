//! The probe set: unseen inputs on which a trained network is evaluated.
//!
//! Which probes a run gets depends on the shape of its images (before any canvas, see
//! [`crate::experiment::inputs`]):
//!
//! **1×28×28** (MNIST, Fashion-MNIST, `--gray 28`, 28×28 gray files): the paper's twelve probes,
//! in this order, with fixed indices:
//! 1. `blend`: 0.5·MNIST test #3 (a "0") + 0.5·MNIST test #18 (a "3");
//! 2. `mnist`: MNIST test #1 (a "2") and #4 (a "4");
//! 3. `fashion`: Fashion-MNIST test #0 (ankle boot) and #1 (pullover);
//! 4. `synthetic`: square, stripes, bars, ramp, dots, ring, ellipse (see [`synthetic`]).
//!
//! **Any other shape** (CIFAR-10 at 3×32×32, other files or gray sides):
//! 1. `cifar`, when the training image is from CIFAR-10: the first CIFAR-10 test image of each
//!    class (airplane … truck; test #3, the default training image of the `cifar` experiment,
//!    is skipped if it comes up), in the same view (colour, or `--gray N`);
//! 2. `synthetic`: the seven patterns drawn at H×W (sizes scale with the side; the 1-px stripes
//!    and 4-px dot grid keep their pitch), the same gray pattern on every channel.
//!
//! Then, for every shape, one `random-rho` probe per requested ρ: `x = ρ·x̂/‖x̂‖ + √(1−ρ²)·u`, with `u` a random
//! unit vector orthogonal to the training image `x̂` (Gaussian, projected, normalised, drawn from
//! the fixed seed [`PROBE_SEED`]), rescaled to `‖x̂‖`. Its correlation with `x̂` (as cosine) is ρ.

use crate::data::ImageSpec;
use crate::data::{self, Dataset, Split};
use crate::error::Result;
use crate::rng::{Rng, Stream};
use crate::shape::Shape;
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
    /// CIFAR-10 test images, one per class (probes of colour runs).
    Cifar,
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
            Category::Cifar => "cifar",
        }
    }
    /// True for the fixed (non-random) probes of a run: the paper's twelve at 28×28, the CIFAR-10
    /// and synthetic ones at other shapes. Their mean is the `paper` category.
    pub fn is_paper(self) -> bool {
        matches!(self, Category::Blend | Category::Mnist | Category::Fashion | Category::Synthetic | Category::Cifar)
    }
}

/// One probe input.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Short unique name, e.g. `mnist-test-1`, `stripes`, `rho-0.50`.
    pub name: String,
    /// Its family.
    pub category: Category,
    /// `[C·H·W]` values, the run's image shape (in [0, 1] except random-ρ probes).
    pub image: Vec<f32>,
}

/// The seven synthetic patterns on one `h`×`w` channel, values in {0, 1} (the ramp in [0, 1]).
/// Sizes are given at 28×28 and scale with the side (`h/28`, `w/28`; the ring by the smaller);
/// the stripes (period 2) and dots (every 4 px) keep their pixel pitch. At 28×28 these are the
/// paper's patterns exactly.
pub fn synthetic(h: usize, w: usize) -> Vec<(&'static str, Vec<f32>)> {
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0); // 13.5 at 28
    let (sy, sx) = (h as f64 / 28.0, w as f64 / 28.0);
    let s = sy.min(sx);
    let make = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f32> { (0..h * w).map(|i| f((i / w) as f64, (i % w) as f64) as f32).collect() };
    let ind = |b: bool| if b { 1.0 } else { 0.0 };
    let band = |side: usize| {
        let q = (12 * side + 14) / 28;
        let lo = (side - q.min(side)) / 2;
        lo..lo + q
    };
    vec![
        // Centred filled square, 12×12 at 28 (rows/cols 8..20): a band of round(12·side/28).
        ("square", make(&|y, x| ind(band(h).contains(&(y as usize)) && band(w).contains(&(x as usize))))),
        // Vertical stripes of period 2 (1-px lines on even columns).
        ("stripes", make(&|_, x| ind((x as usize).is_multiple_of(2)))),
        // Three thick vertical bars, 4 px wide, at columns 4..8, 12..16, 20..24 (at 28).
        ("bars", make(&|_, x| ind([4.0, 12.0, 20.0].iter().any(|b| x >= b * sx && x < (b + 4.0) * sx)))),
        // Horizontal ramp, 0 at the left to 1 at the right.
        ("ramp", make(&|_, x| x / (w as f64 - 1.0).max(1.0))),
        // Regular grid of 1-px dots every 4 px, at rows/cols 2, 6, …
        ("dots", make(&|y, x| ind(y as usize % 4 == 2 && x as usize % 4 == 2))),
        // Ring (radii 10..12.5 at 28) with a crescent inside: disk r=6 minus a disk r=5 shifted 3 px right.
        (
            "ring",
            make(&|y, x| {
                let r = ((y - cy).powi(2) + (x - cx).powi(2)).sqrt();
                let r2 = ((y - cy).powi(2) + (x - cx - 3.0 * s).powi(2)).sqrt();
                ind((10.0 * s..=12.5 * s).contains(&r) || (r <= 6.0 * s && r2 > 5.0 * s))
            }),
        ),
        // Filled horizontal ellipse, semi-axes 11 (x) and 6 (y) at 28.
        ("ellipse", make(&|y, x| ind((x - cx).powi(2) / (11.0 * sx).powi(2) + (y - cy).powi(2) / (6.0 * sy).powi(2) <= 1.0))),
    ]
}

/// The synthetic patterns at `shape`: the one-channel pattern repeated on every channel.
pub fn synthetic_at(shape: Shape) -> Vec<(&'static str, Vec<f32>)> {
    synthetic(shape.height, shape.width).into_iter().map(|(n, p)| (n, p.repeat(shape.channels))).collect()
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

/// The paper's twelve probes plus one random-ρ probe per entry of `rhos` (1×28×28).
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
    for (name, image) in synthetic(28, 28) {
        out.push(Probe { name: name.into(), category: Category::Synthetic, image });
    }
    out.extend(random_probes(train, rhos));
    Ok(out)
}

/// One random-ρ probe per entry of `rhos`, around `train` (any shape), from [`PROBE_SEED`].
pub fn random_probes(train: &[f32], rhos: &[f64]) -> Vec<Probe> {
    let mut rng = Rng::new(PROBE_SEED, Stream::Probes);
    rhos.iter()
        .map(|&rho| Probe { name: format!("rho-{rho:.2}"), category: Category::RandomRho, image: random_rho(train, rho, &mut rng) })
        .collect()
}

/// CIFAR-10 test index never used as a probe: the `cifar` experiment's training image.
pub const CIFAR_TRAIN_INDEX: usize = 3;

/// The probes of a run whose images have `shape` (before any canvas; see the module docs).
/// `spec` is the training image (CIFAR-10 probes come with a CIFAR-10 training image), `gray`
/// the run's gray view, `train` the training image at `shape`.
pub fn probes_for(data_dir: &Path, spec: &ImageSpec, shape: Shape, gray: Option<usize>, train: &[f32], rhos: &[f64]) -> Result<Vec<Probe>> {
    if shape == Shape::MNIST {
        return paper_probes(data_dir, train, rhos);
    }
    let mut out = Vec::new();
    if let ImageSpec::Dataset { dataset: Dataset::Cifar10, split, index } = spec {
        let test = data::load_images(data_dir, Dataset::Cifar10, Split::Test)?;
        let labels = data::load_labels(data_dir, Dataset::Cifar10, Split::Test)?;
        let test = test.view(gray)?;
        let skip = (*split == Split::Test).then_some(*index);
        for class in 0..10u8 {
            let first = (0..test.count.min(labels.len())).find(|&i| labels[i] == class && Some(i) != skip && i != CIFAR_TRAIN_INDEX);
            if let Some(i) = first {
                out.push(Probe {
                    name: format!("cifar-test-{i}-{}", CIFAR_CLASSES[class as usize]),
                    category: Category::Cifar,
                    image: test.image_f32(i),
                });
            }
        }
    }
    for (name, image) in synthetic_at(shape) {
        out.push(Probe { name: name.into(), category: Category::Synthetic, image });
    }
    out.extend(random_probes(train, rhos));
    Ok(out)
}

/// CIFAR-10 class names, by label.
pub const CIFAR_CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Probes from a data set split: the first `limit` images, in the gray view if `gray` is set.
pub fn dataset_probes(data_dir: &Path, dataset: Dataset, split: Split, gray: Option<usize>, limit: usize) -> Result<Vec<Probe>> {
    let imgs = data::load_images(data_dir, dataset, split)?.view(gray)?;
    Ok((0..limit.min(imgs.count))
        .map(|i| Probe { name: format!("{}-{}-{i}", dataset.name(), split.name()), category: Category::Dataset, image: imgs.image_f32(i) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_rho_has_the_requested_cosine_and_norm() {
        let train: Vec<f32> = (0..784).map(|i| ((i * 7) % 13) as f32 / 13.0).collect();
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
        for (h, w) in [(28, 28), (32, 32), (56, 40)] {
            let s = synthetic(h, w);
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

    /// At 28×28 the patterns are the paper's, as first written (fixed coordinates).
    #[test]
    fn synthetic_at_28_is_the_original_set() {
        let c = 13.5f64;
        let make = |f: &dyn Fn(f64, f64) -> bool| -> Vec<f32> {
            (0..784).map(|i| if f((i / 28) as f64, (i % 28) as f64) { 1.0 } else { 0.0 }).collect()
        };
        let want: Vec<Vec<f32>> = vec![
            make(&|y, x| (8.0..20.0).contains(&y) && (8.0..20.0).contains(&x)),
            make(&|_, x| (x as usize).is_multiple_of(2)),
            make(&|_, x| [4.0, 12.0, 20.0].iter().any(|s| x >= *s && x < s + 4.0)),
            (0..784).map(|i| ((i % 28) as f64 / 27.0) as f32).collect(),
            make(&|y, x| y as usize % 4 == 2 && x as usize % 4 == 2),
            make(&|y, x| {
                let r = ((y - c).powi(2) + (x - c).powi(2)).sqrt();
                let r2 = ((y - c).powi(2) + (x - c - 3.0).powi(2)).sqrt();
                (10.0..=12.5).contains(&r) || (r <= 6.0 && r2 > 5.0)
            }),
            make(&|y, x| (x - c).powi(2) / 121.0 + (y - c).powi(2) / 36.0 <= 1.0),
        ];
        for ((name, got), want) in synthetic(28, 28).iter().zip(&want) {
            assert_eq!(got, want, "{name}");
        }
        // Three channels repeat the gray pattern.
        let rgb = synthetic_at(Shape::new(3, 28, 28));
        assert_eq!(rgb[0].1, [want[0].clone(), want[0].clone(), want[0].clone()].concat());
    }
}
