//! # idcrisis
//!
//! Memorization versus generalization under extreme overparameterization, after Zhang, Bengio, Hardt,
//! Mozer & Singer, *Identity Crisis* (ICLR 2020, arXiv 1902.04698).
//!
//! A network is trained on **one** image to reproduce its input (MSE loss). Both the identity
//! map and the constant map (always output the training image) fit that example perfectly;
//! probing the trained network on unseen inputs shows which one the architecture prefers.
//!
//! Data flows down this map; each concern has one home:
//! - [`data`]: IDX, CIFAR-10 binary, image files, the data directory, download and verification.
//! - [`shape`]: an image's [`Shape`] (C×H×W) and the canvas [`shape::Window`].
//! - [`engine`]: the compute kernels (GEMM, im2col/col2im, Winograd, elementwise), the only place
//!   that touches raw numerics, so another backend can slot in behind the same functions.
//! - [`nn`]: layers with explicit forward and backward, models ([`nn::model::Net`]), optimizers,
//!   the training loop.
//! - [`eval`]: probe sets (by image shape), correlation / MSE / SSIM scoring, the set scores of
//!   runs trained on several images, and attractors ([`eval::attractor`]: iterate x ↦ f(x),
//!   classify the ends, Jacobian spectra).
//! - [`experiment`]: the run configuration ([`experiment::config::RunConfig`], whose `validate`
//!   is the one rule book), config → pixels ([`experiment::inputs`]), the run directory, sweeps,
//!   the local worker pool, the paper's experiments as data ([`experiment::reproduce`]) and those
//!   beyond it with their pre-registered predictions ([`experiment::beyond`]), hidden-layer maps,
//!   the HTML report.
//! - [`theory`]: Theorem 1, the one-layer CNN, NTK/NNGP predictions.
//! - [`figures`]: prediction grids (colour for RGB), line plots, heat maps.
//! - [`bench`]: the benchmark workloads; [`rng`], [`float`], [`fsutil`], [`error`]: plumbing.

pub mod bench;
pub mod data;
pub mod engine;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod figures;
pub mod float;
pub mod fsutil;
pub mod nn;
pub mod rng;
pub mod shape;
pub mod theory;

pub use error::{Error, Result};
pub use experiment::config::RunConfig;
pub use experiment::run::{execute, RunOptions, RunResult};
pub use float::Float;
pub use nn::model::{ModelConfig, Net};
pub use shape::Shape;

/// `Display` as the serde (kebab-case) name: the text that config files and flags use.
macro_rules! display_as_serde {
    ($($t:ty),* $(,)?) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(s)) => f.write_str(&s),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
    )*};
}

display_as_serde!(
    engine::ConvAlgo,
    engine::Padding,
    nn::layers::Activation,
    nn::model::Arch,
    nn::model::Init,
    nn::optim::OptimizerKind,
    experiment::config::Dtype,
);
