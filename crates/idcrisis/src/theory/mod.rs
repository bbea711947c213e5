//! Closed forms for one-layer networks, and infinite-width (NNGP / NTK) predictions.
//!
//! - [`fcn1`]: Theorem 1. Gradient descent on a one-layer linear FCN from `W0`, trained on `x̂`,
//!   converges to `W = W0 + (x̂ − W0 x̂) x̂ᵀ / ‖x̂‖²`, so `f(x) = Π∥x + W0 Π⊥x`.
//! - [`cnn1`]: the one-layer, one-channel k×k CNN with zero padding, `f(x) = P(x)·w` with the
//!   patch matrix `P(x) [784, k²]`. GD from `w0` converges to `w = e + Π_N(w0 − e)`, where `e` is
//!   the centre tap and `Π_N` projects onto `null(P(x̂))`: GD on a least-squares problem moves `w`
//!   only inside the row space of `P(x̂)` and converges to the solution nearest `w0`; `e` is a
//!   solution (`P(x)e = x` for every `x`), so the limit is `e` plus the null-space part of
//!   `w0 − e`. Hence `f(x) = x + P(x)·Π_N(w0 − e)` and `‖f(x) − x‖ ≤ ‖P(x)‖₂·‖Π_N(w0 − e)‖`.
//! - [`ntk`]: NNGP and NTK recursions for FCNs and CNNs without readout (the output is the 28×28
//!   map itself), and their predictions after training on the one pair (x̂, x̂).

pub mod cnn1;
pub mod fcn1;
pub mod ntk;

use crate::data::{self, Dataset};
use crate::error::Result;
use std::path::Path;

/// The training image in float64 exactly as `u8 / 255`.
pub fn train_image_f64(data_dir: &Path, spec: &data::ImageSpec) -> Result<Vec<f64>> {
    match spec {
        data::ImageSpec::Dataset { dataset: d @ (Dataset::Mnist | Dataset::FashionMnist), split, index } => {
            let imgs = data::load_images(data_dir, *d, *split)?;
            if *index >= imgs.count {
                return Err(crate::Error::invalid("train-image", format!("{spec}: index out of range")));
            }
            let n = imgs.rows * imgs.cols;
            Ok(imgs.pixels[index * n..(index + 1) * n].iter().map(|&p| p as f64 / 255.0).collect())
        }
        _ => Ok(data::load_image(data_dir, spec, None)?.1.into_iter().map(|v| v as f64).collect()),
    }
}

/// `max |a − b| / max |b|`.
pub fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// Euclidean norm.
pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}
