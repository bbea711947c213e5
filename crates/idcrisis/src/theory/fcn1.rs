//! Theorem 1: the one-layer linear FCN, predicted from `W0` alone and checked against training.

use super::{max_rel_diff, norm, train_image_f64};
use crate::data::ImageSpec;
use crate::engine::Engine;
use crate::error::Result;
use crate::eval::probe::{self, Probe};
use crate::nn::layers::Activation;
use crate::nn::model::{Arch, Init, ModelConfig, Net};
use crate::nn::optim::OptimizerKind;
use crate::nn::train::{train, TrainConfig};
use serde::Serialize;
use std::path::Path;

/// Per-probe comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeRow {
    /// Probe name.
    pub probe: String,
    /// `max |trained − predicted| / max |predicted|` on the output.
    pub max_rel_diff: f64,
    /// Correlation of the predicted output with the probe.
    pub corr_identity: f64,
    /// Correlation of the predicted output with the training image.
    pub corr_constant: f64,
}

/// Result of `theory fcn1`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One row per probe.
    pub probes: Vec<ProbeRow>,
    /// `max |W_trained − W_predicted| / max |W_predicted|`.
    pub weights_max_rel_diff: f64,
    /// Largest per-probe difference.
    pub worst_probe_max_rel_diff: f64,
    /// Training loss at the end.
    pub final_loss: f64,
    /// GD steps.
    pub steps: u64,
    /// Learning rate used (contraction 0.5 per step on the residual).
    pub lr: f64,
    /// Predicted per-pixel standard deviation of `f(x) = W0 x` for an input orthogonal to `x̂`
    /// with `‖x‖ = ‖x̂‖`: `‖x̂‖·σ_w`, with `σ_w²` the variance of the init scheme.
    pub noise_std_predicted: f64,
    /// The same from the actual `W0` (root mean square entry).
    pub noise_std_empirical: f64,
    /// Mean pixel value of `x̂`, for scale.
    pub train_image_mean: f64,
}

/// Variance of one weight under `scheme` (times `scale²`) for a dense layer `fan_in → fan_out`.
pub fn weight_variance(scheme: Init, scale: f64, fan_in: f64, fan_out: f64) -> f64 {
    scale
        * scale
        * match scheme {
            Init::TorchDefault => 1.0 / (3.0 * fan_in),
            Init::HeNormal | Init::HeUniform => 2.0 / fan_in,
            Init::GlorotNormal | Init::GlorotUniform => 2.0 / (fan_in + fan_out),
        }
}

/// Everything `theory fcn1` computes: the report, and for the figure the probes with their
/// predicted and trained outputs.
pub struct Outcome {
    /// Numbers.
    pub report: Report,
    /// Probes (paper set plus random-ρ).
    pub probes: Vec<Probe>,
    /// Predicted outputs, one per probe.
    pub predicted: Vec<Vec<f64>>,
    /// Trained outputs, one per probe.
    pub trained: Vec<Vec<f64>>,
    /// Shape of the images.
    pub shape: crate::shape::Shape,
}

/// Run Theorem 1 from the seeded `W0` (`scheme`, `scale`, `seed`).
#[allow(clippy::too_many_arguments)]
pub fn run(
    eng: &Engine,
    data_dir: &Path,
    spec: &ImageSpec,
    gray: Option<usize>,
    scheme: Init,
    scale: f64,
    seed: u64,
    steps: u64,
    rhos: &[f64],
) -> Result<Outcome> {
    // Theorem 1 holds for inputs of any dimension D = C·H·W: W is D×D.
    let (shape, x) = train_image_f64(data_dir, spec, gray)?;
    let d = shape.len();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let probes = probe::probes_for(data_dir, spec, shape, gray, &x32, rhos)?;
    let cfg = ModelConfig { arch: Arch::Fcn, depth: 1, act: Activation::Linear, bias: false, ..Default::default() };
    let mut net = Net::<f64>::new(&cfg, shape)?;
    net.init(scheme, scale, seed);
    let w0 = net.params.clone();
    let nx2: f64 = x.iter().map(|v| v * v).sum();
    // W* = W0 + (x̂ − W0 x̂) x̂ᵀ / ‖x̂‖².
    let mut w = w0.clone();
    for i in 0..d {
        let row = &w0[i * d..(i + 1) * d];
        let r = x[i] - row.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>();
        for (j, xj) in x.iter().enumerate() {
            w[i * d + j] += r * xj / nx2;
        }
    }
    let matvec =
        |m: &[f64], v: &[f64]| -> Vec<f64> { (0..d).map(|i| m[i * d..(i + 1) * d].iter().zip(v).map(|(a, b)| a * b).sum()).collect() };
    let inputs: Vec<Vec<f64>> = probes.iter().map(|p| p.image.iter().map(|&v| v as f64).collect()).collect();
    let predicted: Vec<Vec<f64>> = inputs.iter().map(|v| matvec(&w, v)).collect();

    let lr = 0.5 * d as f64 / (2.0 * nx2);
    let tc = TrainConfig { optimizer: OptimizerKind::Gd, lr, momentum: 0.0, steps, tol: 1e-30 };
    let out = train(eng, &mut net, &x, 1, &tc, &mut |_, _| true)?;
    let flat: Vec<f64> = inputs.concat();
    let trained: Vec<Vec<f64>> = net.predict(eng, &flat, inputs.len(), 16).chunks(d).map(|c| c.to_vec()).collect();

    let rows: Vec<ProbeRow> = probes
        .iter()
        .zip(predicted.iter().zip(&trained))
        .map(|(p, (pr, tr))| {
            let pr32: Vec<f32> = pr.iter().map(|&v| v as f32).collect();
            ProbeRow {
                probe: p.name.clone(),
                max_rel_diff: max_rel_diff(tr, pr),
                corr_identity: crate::eval::metrics::pearson(&pr32, &p.image),
                corr_constant: crate::eval::metrics::pearson(&pr32, &x32),
            }
        })
        .collect();
    let rms_w0 = (w0.iter().map(|v| v * v).sum::<f64>() / w0.len() as f64).sqrt();
    let report = Report {
        worst_probe_max_rel_diff: rows.iter().map(|r| r.max_rel_diff).fold(0.0, f64::max),
        probes: rows,
        weights_max_rel_diff: max_rel_diff(&net.params, &w),
        final_loss: out.final_loss,
        steps: out.steps,
        lr,
        noise_std_predicted: nx2.sqrt() * weight_variance(scheme, scale, d as f64, d as f64).sqrt(),
        noise_std_empirical: norm(&x) * rms_w0,
        train_image_mean: x.iter().sum::<f64>() / x.len() as f64,
    };
    Ok(Outcome { report, probes, predicted, trained, shape })
}
