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
//! - [`ntk`]: NNGP and NTK recursions for FCNs and CNNs without readout (the output is the H×W
//!   map itself), and their predictions after training on the one pair (x̂, x̂); [`ntk_run`]
//!   writes them for the probes of a training image.
//!
//! All take one-channel images of any H×W (`fcn1` any shape); `--gray N` gives a colour image's
//! gray view.

pub mod cnn1;
pub mod fcn1;
pub mod ntk;
pub mod ntk_run;

use crate::data;
use crate::error::Result;
use crate::shape::Shape;
use std::path::Path;

/// The training image (its gray N×N view with `gray`) in float64 exactly as `u8 / 255`, with
/// its shape.
pub fn train_image_f64(data_dir: &Path, spec: &data::ImageSpec, gray: Option<usize>) -> Result<(Shape, Vec<f64>)> {
    let imgs = data::load_spec(data_dir, spec)?.view(gray)?;
    let n = imgs.shape().len();
    Ok((imgs.shape(), imgs.pixels[..n].iter().map(|&p| p as f64 / 255.0).collect()))
}

/// Err unless `shape` has one channel: the closed forms here are for gray images.
pub fn one_channel(shape: Shape, spec: &data::ImageSpec) -> Result<()> {
    if shape.channels == 1 {
        Ok(())
    } else {
        Err(crate::Error::invalid("gray", format!("{spec} is {shape}; the theory commands analyse one-channel images: pass --gray N")))
    }
}

/// `max |a − b| / max |b|`; infinite when any value is not finite (see
/// [`crate::eval::metrics::max_abs_diff`]).
pub fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    crate::eval::metrics::max_abs_diff(a, b) / scale
}

/// Euclidean norm.
pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}
