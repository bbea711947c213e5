//! The one-layer CNN: rank of the patch matrix, the predicted kernel `e + Π_N(w0 − e)`, the
//! predicted error on each probe, its bound, and the trained network's error from the same `w0`.

use super::{max_rel_diff, norm, one_channel, train_image_f64};
use crate::data::ImageSpec;
use crate::engine::{self, ConvGeom, Engine, Padding};
use crate::error::{Error, Result};
use crate::eval::probe::{self, Probe};
use crate::nn::layers::Activation;
use crate::nn::model::{Arch, Init, ModelConfig, Net};
use crate::nn::optim::OptimizerKind;
use crate::nn::train::{train, TrainConfig};
use crate::shape::Shape;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;
use std::path::Path;

/// Momentum of the training run that checks the closed form.
pub const TRAIN_MOMENTUM: f64 = 0.99;

/// Relative eigenvalue threshold for the rank.
pub const RANK_TOL: f64 = 1e-10;

/// One kernel size.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Kernel side k.
    pub kernel: usize,
    /// Rank of `P(x̂)` (HW × k²).
    pub rank: usize,
    /// `k² − rank`.
    pub nullity: usize,
    /// `‖Π_N(w0 − e)‖`.
    pub null_component: f64,
    /// Mean over probes of the predicted RMS error `‖f(x) − x‖/√HW`.
    pub predicted_error: f64,
    /// Mean over probes of the bound `‖P(x)‖₂·‖Π_N(w0 − e)‖/√HW`.
    pub bound: f64,
    /// Mean over probes of the trained network's RMS error `‖f(x) − x‖/√HW`.
    pub trained_error: f64,
    /// Largest `max |f_trained − f_predicted| / max |f_predicted|` over probes.
    pub max_rel_diff: f64,
    /// `max |w_trained − w_predicted| / max |w_predicted|`.
    pub weight_max_rel_diff: f64,
    /// Training loss at the end, and GD steps.
    pub final_loss: f64,
    /// GD steps taken.
    pub steps: u64,
    /// Per-probe predicted RMS errors, in probe order.
    pub per_probe_predicted: Vec<f64>,
    /// Per-probe trained RMS errors.
    pub per_probe_trained: Vec<f64>,
}

/// Patch matrix of `x` (one channel of `shape`) as `cols = P(x)ᵀ [k², HW]`.
fn patches(eng: &Engine, x: &[f64], k: usize, shape: Shape) -> Vec<f64> {
    let g = ConvGeom::new(1, shape.height, shape.width, k, Padding::Zero);
    let mut cols = vec![0.0; k * k * shape.hw()];
    engine::im2col(eng, &g, x, &mut cols);
    cols
}

/// `P(x)·w`: `[HW]`.
fn apply(cols: &[f64], w: &[f64]) -> Vec<f64> {
    let n = cols.len() / w.len();
    let mut out = vec![0.0; n];
    for (r, wr) in w.iter().enumerate() {
        for (o, c) in out.iter_mut().zip(&cols[r * n..(r + 1) * n]) {
            *o += wr * c;
        }
    }
    out
}

/// `‖P(x)‖₂` by power iteration on `PᵀP`.
fn spectral_norm(cols: &[f64], kk: usize) -> f64 {
    let px = cols.len() / kk;
    let mut v = vec![1.0; kk];
    let mut s = 0.0f64;
    for _ in 0..300 {
        let pv = apply(cols, &v);
        let ptpv: Vec<f64> = (0..kk).map(|r| cols[r * px..(r + 1) * px].iter().zip(&pv).map(|(a, b)| a * b).sum()).collect();
        let n = norm(&ptpv);
        if n == 0.0 {
            return 0.0;
        }
        let next = (n / norm(&v)).sqrt();
        v = ptpv.iter().map(|a| a / n).collect();
        if (next - s).abs() <= 1e-10 * next {
            return next;
        }
        s = next;
    }
    s
}

/// The projection onto `null(P(x̂))` as a function, its rank, and `λ_max(P(x̂)ᵀP(x̂))`.
struct NullProjector {
    rank: usize,
    lmax: f64,
    /// Orthonormal basis of the null space (k² ≤ HW) or of the row space (k² > HW), columns.
    basis: DMatrix<f64>,
    basis_is_null: bool,
}

impl NullProjector {
    fn new(cols: &[f64], kk: usize) -> Self {
        let px = cols.len() / kk;
        if kk <= px {
            // G = PᵀP [k², k²].
            let g = DMatrix::from_fn(kk, kk, |i, j| {
                cols[i * px..(i + 1) * px].iter().zip(&cols[j * px..(j + 1) * px]).map(|(a, b)| a * b).sum::<f64>()
            });
            let e = SymmetricEigen::new(g);
            let lmax = e.eigenvalues.iter().cloned().fold(0.0, f64::max);
            let null: Vec<usize> = (0..kk).filter(|&i| e.eigenvalues[i] <= RANK_TOL * lmax).collect();
            let basis = DMatrix::from_fn(kk, null.len(), |r, c| e.eigenvectors[(r, null[c])]);
            NullProjector { rank: kk - null.len(), lmax, basis, basis_is_null: true }
        } else {
            // M = PPᵀ [HW, HW]; the row space of P is spanned by Pᵀu/√λ for λ > 0.
            let m = DMatrix::from_fn(px, px, |p, q| (0..kk).map(|r| cols[r * px + p] * cols[r * px + q]).sum::<f64>());
            let e = SymmetricEigen::new(m);
            let lmax = e.eigenvalues.iter().cloned().fold(0.0, f64::max);
            let keep: Vec<usize> = (0..px).filter(|&i| e.eigenvalues[i] > RANK_TOL * lmax).collect();
            let basis = DMatrix::from_fn(kk, keep.len(), |r, c| {
                let i = keep[c];
                let s = e.eigenvalues[i].sqrt();
                (0..px).map(|p| cols[r * px + p] * e.eigenvectors[(p, i)]).sum::<f64>() / s
            });
            NullProjector { rank: keep.len(), lmax, basis, basis_is_null: false }
        }
    }

    fn project(&self, v: &[f64]) -> Vec<f64> {
        let v = DMatrix::from_column_slice(v.len(), 1, v);
        let along = &self.basis * (self.basis.transpose() * &v);
        if self.basis_is_null {
            along.iter().cloned().collect()
        } else {
            (v - along).iter().cloned().collect()
        }
    }
}

/// Everything `theory cnn1` computes.
pub struct Outcome {
    /// One row per kernel size.
    pub rows: Vec<Row>,
    /// The probes.
    pub probes: Vec<Probe>,
}

/// Run the one-layer CNN analysis for each kernel size in `kernels` (odd).
#[allow(clippy::too_many_arguments)]
pub fn run(
    eng: &Engine,
    data_dir: &Path,
    spec: &ImageSpec,
    gray: Option<usize>,
    kernels: &[usize],
    scheme: Init,
    scale: f64,
    seed: u64,
    steps: u64,
    rhos: &[f64],
) -> Result<Outcome> {
    if let Some(k) = kernels.iter().find(|k| **k % 2 == 0 || **k > 55 || **k == 0) {
        return Err(Error::invalid("kernels", format!("{k}: kernel sizes must be odd, 1..=55")));
    }
    let (shape, x) = train_image_f64(data_dir, spec, gray)?;
    one_channel(shape, spec)?;
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let probes = probe::probes_for(data_dir, spec, shape, gray, &x32, rhos)?;
    let px = shape.hw();
    let inputs: Vec<Vec<f64>> = probes.iter().map(|p| p.image.iter().map(|&v| v as f64).collect()).collect();
    let mut rows = Vec::new();
    for &k in kernels {
        let kk = k * k;
        let cols = patches(eng, &x, k, shape);
        let proj = NullProjector::new(&cols, kk);
        let cfg = ModelConfig { arch: Arch::Cnn, depth: 1, kernel: k, act: Activation::Linear, bias: false, ..Default::default() };
        let mut net = Net::<f64>::new(&cfg, shape)?;
        net.init(scheme, scale, seed);
        let w0 = net.params.clone();
        let mut e = vec![0.0; kk];
        e[kk / 2] = 1.0;
        let d: Vec<f64> = w0.iter().zip(&e).map(|(a, b)| a - b).collect();
        let pn = proj.project(&d);
        let w_pred: Vec<f64> = e.iter().zip(&pn).map(|(a, b)| a + b).collect();
        let pn_norm = norm(&pn);

        // Heavy-ball momentum (PyTorch's SGD with momentum) keeps every iterate in
        // w0 + rowspace(P(x̂)) exactly as plain GD does, so it has the same limit; it only gets
        // there in ~√κ instead of ~κ steps on these ill-conditioned patch matrices.
        let lr = 0.5 * px as f64 / proj.lmax;
        let tc = TrainConfig { optimizer: OptimizerKind::Momentum, lr, momentum: TRAIN_MOMENTUM, steps, tol: 1e-28 };
        let out = train(eng, &mut net, &x, 1, &tc, &mut |_, _| true)?;
        let flat: Vec<f64> = inputs.concat();
        let trained = net.predict(eng, &flat, inputs.len(), 16);

        let rms = |a: &[f64], b: &[f64]| (a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum::<f64>() / px as f64).sqrt();
        let (mut pe, mut te, mut bd, mut worst) = (Vec::new(), Vec::new(), 0.0, 0.0f64);
        for (i, xin) in inputs.iter().enumerate() {
            let c = patches(eng, xin, k, shape);
            let fp = apply(&c, &w_pred);
            let ft = &trained[i * px..(i + 1) * px];
            pe.push(rms(&fp, xin));
            te.push(rms(ft, xin));
            bd += spectral_norm(&c, kk) * pn_norm / (px as f64).sqrt();
            worst = worst.max(max_rel_diff(ft, &fp));
        }
        let n = inputs.len() as f64;
        rows.push(Row {
            kernel: k,
            rank: proj.rank,
            nullity: kk - proj.rank,
            null_component: pn_norm,
            predicted_error: pe.iter().sum::<f64>() / n,
            bound: bd / n,
            trained_error: te.iter().sum::<f64>() / n,
            max_rel_diff: worst,
            weight_max_rel_diff: max_rel_diff(&net.params, &w_pred),
            final_loss: out.final_loss,
            steps: out.steps,
            per_probe_predicted: pe,
            per_probe_trained: te,
        });
    }
    Ok(Outcome { rows, probes })
}
