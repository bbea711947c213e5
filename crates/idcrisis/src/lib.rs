//! # idcrisis
//!
//! Memorization versus generalization under extreme overparameterization, after Zhang, Bengio, Hardt,
//! Mozer & Singer, *Identity Crisis* (ICLR 2020, arXiv 1902.04698).
//!
//! A network is trained on **one** 28×28 image to reproduce its input (MSE loss). Both the identity
//! map and the constant map (always output the training image) fit that example perfectly; probing
//! the trained network on unseen inputs shows which one the architecture prefers.
//!
//! Module map:
//! - [`engine`]: the compute kernels (GEMM, im2col/col2im, elementwise ops). The only place that
//!   touches raw numerics, so another backend can slot in behind the same functions.
//! - [`layers`]: dense, conv2d, ReLU, identity, each with explicit forward and backward.
//! - [`model`]: FCN and CNN configs, parameter storage, init, safetensors I/O, workspaces.
//! - [`optim`], [`train`]: optimizers, MSE loss, the training loop and stopping rules.
//! - [`data`]: IDX, CIFAR-10 binary, PNG inputs, data directory, download and verification.
//! - [`probe`], [`metrics`]: the paper's probe set, and correlation / MSE / SSIM scoring.
//! - [`figures`]: the prediction grid.
//! - [`config`], [`run`]: run configuration (TOML) and the run directory writer.

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
pub use float::Float;
pub use shape::Shape;

/// Side of an MNIST image (28). Being replaced by [`Shape`]; new code takes a shape.
pub const SIDE: usize = Shape::MNIST.height;
/// Pixels of an MNIST image (784). Being replaced by [`Shape`].
pub const PIXELS: usize = SIDE * SIDE;

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
