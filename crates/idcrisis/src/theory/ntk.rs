//! NNGP and NTK of FCNs and CNNs without readout, in the NTK parameterization
//! `h^{l+1} = (σw/√fan_in)·W φ(h^l) + σb·b` with `W, b ~ N(0, 1)`.
//!
//! **FCN** (width → ∞): scalar kernels, the same for every output unit.
//! `K¹ = σw²·xᵀx′/D + σb²` (D = H·W the input dimension); `K^{l+1} = σw²·E[φ(u)φ(v)] + σb²`;
//! `Θ¹ = K¹`; `Θ^{l+1} = K^{l+1} + σw²·Θ^l·E[φ′(u)φ′(v)]`, with `(u, v) ~ N(0, K^l)`.
//!
//! **CNN** (channels → ∞), k×k, stride 1, zero "same" padding: kernels over pixel pairs
//! `K^l(x, x′)[p, p′]` (HW×HW, 784×784 for MNIST). With `S(A)[p, p′] = Σ_δ A[p+δ, p′+δ]` over the k×k offsets,
//! terms outside the image being zero (the padding),
//! `K¹ = (σw²/k²)·S(x x′ᵀ) + σb²`; `K^{l+1} = (σw²/k²)·S(E) + σb²`;
//! `Θ^{l+1} = K^{l+1} + (σw²/k²)·S(Θ^l ⊙ Ė)`, where `E, Ė` are the ReLU (arc-cosine) or linear
//! expectations of each pixel pair, which need the diagonals `K^l(x, x)[p, p]` — these follow
//! the same recursion restricted to `p = p′`, so only HW numbers per input.
//!
//! Images are one channel of any H×W ([`NtkConfig::height`], [`NtkConfig::width`]). The
//! network's output is the last layer `L` itself (no readout), so `Θ^L(x, x̂)` is HW×HW.
//! After infinite-time gradient descent on the one pair (x̂, x̂) the mean prediction is
//! `Θ(x, x̂)·Θ(x̂, x̂)⁻¹·x̂`; the NNGP posterior mean is the same with `K`.
//! Only kernels against `x̂` are ever formed: one 784×784 pair recursion per probe.

use crate::error::{Error, Result};
use crate::nn::layers::Activation;
use crate::nn::model::Arch;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::Serialize;
use std::f64::consts::PI;

/// Which infinite-width network.
#[derive(Debug, Clone, Serialize)]
pub struct NtkConfig {
    /// `fcn` or `cnn`.
    pub arch: Arch,
    /// Weight layers L.
    pub depth: usize,
    /// Activation between layers.
    pub act: Activation,
    /// CNN kernel side (odd).
    pub kernel: usize,
    /// σw².
    pub weight_var: f64,
    /// σb².
    pub bias_var: f64,
    /// Image rows H.
    pub height: usize,
    /// Image columns W.
    pub width: usize,
}

impl Default for NtkConfig {
    /// A 5-layer ReLU CNN, 5×5, σw² = 2, σb² = 0, on 28×28 images.
    fn default() -> Self {
        NtkConfig { arch: Arch::Cnn, depth: 5, act: Activation::Relu, kernel: 5, weight_var: 2.0, bias_var: 0.0, height: 28, width: 28 }
    }
}

impl NtkConfig {
    /// Check the values; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if self.depth == 0 || self.depth > 100 {
            return Err(Error::invalid("depth", format!("{} must be in 1..=100", self.depth)));
        }
        if self.kernel.is_multiple_of(2) || self.kernel > 55 {
            return Err(Error::invalid("kernel", format!("{} must be odd and at most 55", self.kernel)));
        }
        if !(self.weight_var > 0.0 && self.weight_var.is_finite()) {
            return Err(Error::invalid("weight-var", format!("{} must be positive", self.weight_var)));
        }
        if !(self.bias_var >= 0.0 && self.bias_var.is_finite()) {
            return Err(Error::invalid("bias-var", format!("{} must be non-negative", self.bias_var)));
        }
        if self.height == 0 || self.width == 0 || self.pixels() > 128 * 128 {
            return Err(Error::invalid("train-image", format!("{}×{} images: the kernels need 1..=16384 pixels", self.height, self.width)));
        }
        Ok(())
    }

    /// Pixels per image, H·W.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    fn n(&self) -> usize {
        match self.arch {
            Arch::Fcn => 1,
            Arch::Cnn => self.pixels(),
        }
    }
}

/// `(E[φ(u)φ(v)], E[φ′(u)φ′(v)])` for `(u, v) ~ N(0, [[k11, k12], [k12, k22]])`.
pub fn expectations(act: Activation, k11: f64, k22: f64, k12: f64) -> (f64, f64) {
    match act {
        Activation::Linear => (k12, 1.0),
        Activation::Relu => {
            let s = (k11 * k22).sqrt();
            if s <= 0.0 {
                return (0.0, 0.0);
            }
            let c = (k12 / s).clamp(-1.0, 1.0);
            let t = c.acos();
            (s / (2.0 * PI) * (t.sin() + (PI - t) * c), (PI - t) / (2.0 * PI))
        }
    }
}

/// `S(A)` for `A [HW, HW]` over `h`×`w` images: sum over the k×k offsets of the pair-shifted
/// matrix, zero outside.
pub fn shift_sum(a: &[f64], k: usize, h: usize, w: usize) -> Vec<f64> {
    let r = (k / 2) as isize;
    let (sh, s) = (h as isize, w as isize);
    let n = h * w;
    let mut out = vec![0.0; n * n];
    out.par_chunks_mut(n).enumerate().for_each(|(p, row)| {
        let (py, px) = ((p / w) as isize, (p % w) as isize);
        for dy in -r..=r {
            let y = py + dy;
            if !(0..sh).contains(&y) {
                continue;
            }
            for dx in -r..=r {
                let x = px + dx;
                if !(0..s).contains(&x) {
                    continue;
                }
                let src = &a[((y * s + x) as usize) * n..((y * s + x) as usize + 1) * n];
                // Column p′ = (qy, qx) reads src at (qy+dy, qx+dx).
                let (qy0, qy1) = ((-dy).max(0), (sh - dy).min(sh));
                let (qx0, qx1) = ((-dx).max(0), (s - dx).min(s));
                for qy in qy0..qy1 {
                    let o = &mut row[(qy * s) as usize..((qy + 1) * s) as usize];
                    let srow = &src[((qy + dy) * s) as usize..((qy + dy + 1) * s) as usize];
                    for qx in qx0..qx1 {
                        o[qx as usize] += srow[(qx + dx) as usize];
                    }
                }
            }
        }
    });
    out
}

/// `S` restricted to the diagonal: `out[p] = Σ_δ d[p+δ]` over `h`×`w` images.
pub fn shift_sum_diag(d: &[f64], k: usize, h: usize, w: usize) -> Vec<f64> {
    let r = (k / 2) as isize;
    let (sh, s) = (h as isize, w as isize);
    (0..h * w)
        .map(|p| {
            let (py, px) = ((p / w) as isize, (p % w) as isize);
            let mut acc = 0.0;
            for y in (py - r).max(0)..(py + r + 1).min(sh) {
                for x in (px - r).max(0)..(px + r + 1).min(s) {
                    acc += d[(y * s + x) as usize];
                }
            }
            acc
        })
        .collect()
}

/// Kernels of one pair of inputs after some layer.
#[derive(Debug, Clone)]
pub struct PairKernels {
    /// NNGP `K(x, x′)`, `[n, n]` (n = H·W for CNNs, 1 for FCNs).
    pub k: Vec<f64>,
    /// NTK `Θ(x, x′)`, same shape.
    pub theta: Vec<f64>,
    /// `K(x, x)` diagonal, `[n]`.
    pub dx: Vec<f64>,
    /// `K(x′, x′)` diagonal, `[n]`.
    pub dxp: Vec<f64>,
}

/// Run the recursion for inputs `x`, `xp` (`[H·W]` each) and call `each(l, kernels)` with the
/// output kernels of the depth-`l` network, for `l = 1..=cfg.depth`.
pub fn pair_recursion(cfg: &NtkConfig, x: &[f64], xp: &[f64], mut each: impl FnMut(usize, &PairKernels)) {
    let (sw, sb) = (cfg.weight_var, cfg.bias_var);
    let n = cfg.n();
    let (h, w, pixels) = (cfg.height, cfg.width, cfg.pixels());
    let mut st = match cfg.arch {
        Arch::Fcn => {
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>() / pixels as f64;
            let k = sw * dot(x, xp) + sb;
            PairKernels { k: vec![k], theta: vec![k], dx: vec![sw * dot(x, x) + sb], dxp: vec![sw * dot(xp, xp) + sb] }
        }
        Arch::Cnn => {
            let c = sw / (cfg.kernel * cfg.kernel) as f64;
            let outer: Vec<f64> = (0..pixels * pixels).map(|i| x[i / pixels] * xp[i % pixels]).collect();
            let k: Vec<f64> = shift_sum(&outer, cfg.kernel, h, w).into_iter().map(|v| c * v + sb).collect();
            let sq = |v: &[f64]| -> Vec<f64> {
                shift_sum_diag(&v.iter().map(|a| a * a).collect::<Vec<_>>(), cfg.kernel, h, w).into_iter().map(|v| c * v + sb).collect()
            };
            PairKernels { theta: k.clone(), k, dx: sq(x), dxp: sq(xp) }
        }
    };
    each(1, &st);
    for l in 2..=cfg.depth {
        let mut e = vec![0.0; n * n];
        let mut ed = vec![0.0; n * n];
        e.par_chunks_mut(n).zip(ed.par_chunks_mut(n)).enumerate().for_each(|(p, (er, edr))| {
            for q in 0..n {
                let (a, b) = expectations(cfg.act, st.dx[p], st.dxp[q], st.k[p * n + q]);
                er[q] = a;
                edr[q] = b * st.theta[p * n + q];
            }
        });
        let diag = |d: &[f64]| -> Vec<f64> { d.iter().map(|&v| expectations(cfg.act, v, v, v).0).collect() };
        let (ex, exp) = (diag(&st.dx), diag(&st.dxp));
        st = match cfg.arch {
            Arch::Fcn => {
                let k = sw * e[0] + sb;
                PairKernels { k: vec![k], theta: vec![k + sw * ed[0]], dx: vec![sw * ex[0] + sb], dxp: vec![sw * exp[0] + sb] }
            }
            Arch::Cnn => {
                let c = sw / (cfg.kernel * cfg.kernel) as f64;
                let k: Vec<f64> = shift_sum(&e, cfg.kernel, h, w).into_iter().map(|v| c * v + sb).collect();
                let theta: Vec<f64> = shift_sum(&ed, cfg.kernel, h, w).into_iter().zip(&k).map(|(v, kk)| kk + c * v).collect();
                let dx = shift_sum_diag(&ex, cfg.kernel, h, w).into_iter().map(|v| c * v + sb).collect();
                let dxp = shift_sum_diag(&exp, cfg.kernel, h, w).into_iter().map(|v| c * v + sb).collect();
                PairKernels { k, theta, dx, dxp }
            }
        };
        each(l, &st);
    }
}

/// Solve `A z = b` for symmetric positive semi-definite `A [n, n]`, adding the smallest jitter
/// (relative to the mean diagonal, from 1e-12 up) that makes Cholesky succeed.
pub fn solve_psd(a: &[f64], n: usize, b: &[f64]) -> Result<(Vec<f64>, f64)> {
    let mean_diag = (0..n).map(|i| a[i * n + i]).sum::<f64>() / n as f64;
    let mut jitter = 0.0;
    for step in 0..12 {
        let m = DMatrix::from_fn(n, n, |i, j| a[i * n + j] + if i == j { jitter } else { 0.0 });
        if let Some(ch) = m.cholesky() {
            let z = ch.solve(&DVector::from_column_slice(b));
            return Ok((z.iter().cloned().collect(), jitter));
        }
        jitter = mean_diag.abs().max(1e-300) * 10f64.powi(step - 12);
    }
    Err(Error::Other("kernel matrix is not positive definite even with jitter".into()))
}

/// Predictions of the depth-`l` networks, for `l = 1..=cfg.depth`.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// `ntk[l−1][i]`: NTK mean prediction for probe `i`, `[784]`.
    pub ntk: Vec<Vec<Vec<f64>>>,
    /// `nngp[l−1][i]`: NNGP posterior mean for probe `i`.
    pub nngp: Vec<Vec<Vec<f64>>>,
    /// Jitter added to `Θ(x̂, x̂)` per depth.
    pub jitter: Vec<f64>,
    /// Peak bytes of kernel matrices held at once (estimate).
    pub memory_bytes: usize,
}

/// `K·z` for an output kernel `m`: a 784×784 matrix for CNNs, a scalar times the identity for
/// FCNs.
fn apply_kernel(cfg: &NtkConfig, m: &[f64], z: &[f64]) -> Vec<f64> {
    let n = cfg.n();
    match cfg.arch {
        Arch::Fcn => z.iter().map(|v| v * m[0]).collect(),
        Arch::Cnn => (0..n).map(|p| m[p * n..(p + 1) * n].iter().zip(z).map(|(a, b)| a * b).sum()).collect(),
    }
}

/// `K(x̂, x̂)⁻¹·x̂` for an output kernel of the training image, and the jitter it needed.
fn solve_train(cfg: &NtkConfig, k_hat: &[f64], train: &[f64]) -> Result<(Vec<f64>, f64)> {
    match cfg.arch {
        Arch::Fcn => Ok((train.iter().map(|v| v / k_hat[0]).collect(), 0.0)),
        Arch::Cnn => solve_psd(k_hat, cfg.n(), train),
    }
}

/// Predict, for every depth up to `cfg.depth`, the outputs on `probes` after training on `train`.
pub fn predict(cfg: &NtkConfig, train: &[f64], probes: &[Vec<f64>]) -> Result<Predictions> {
    cfg.validate()?;
    let n = cfg.n();
    // Θ(x̂, x̂)⁻¹x̂ and K(x̂, x̂)⁻¹x̂ per depth.
    let mut a_ntk = Vec::new();
    let mut a_nngp = Vec::new();
    let mut jitter = Vec::new();
    let mut err = None;
    pair_recursion(cfg, train, train, |_, st| {
        if err.is_some() {
            return;
        }
        match (solve_train(cfg, &st.theta, train), solve_train(cfg, &st.k, train)) {
            (Ok((z, j)), Ok((y, _))) => {
                a_ntk.push(z);
                a_nngp.push(y);
                jitter.push(j);
            }
            (Err(e), _) | (_, Err(e)) => err = Some(e),
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let mut ntk = vec![Vec::with_capacity(probes.len()); cfg.depth];
    let mut nngp = vec![Vec::with_capacity(probes.len()); cfg.depth];
    for x in probes {
        pair_recursion(cfg, x, train, |l, st| {
            ntk[l - 1].push(apply_kernel(cfg, &st.theta, &a_ntk[l - 1]));
            nngp[l - 1].push(apply_kernel(cfg, &st.k, &a_nngp[l - 1]));
        });
    }
    // Held at once in the pair recursion: K, Θ, E, Θ⊙Ė, the outer product / S outputs (≈ 6 n²),
    // plus the Cholesky copy (n²) and per-depth solution vectors.
    let memory_bytes = 8 * (7 * n * n + 2 * cfg.depth * cfg.pixels());
    Ok(Predictions { ntk, nngp, jitter, memory_bytes })
}

/// One finite network compared with the infinite-width predictions.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    /// Hidden width (FCN) or channels (CNN).
    pub width: usize,
    /// Seed of the initial weights.
    pub seed: u64,
    /// Mean over probes of `‖f_trained − f_lin‖ / ‖f_lin‖`, where `f_lin` is the analytic-NTK
    /// linearization from the same initial outputs after the same number of GD steps.
    pub rel_err_linearized: f64,
    /// Mean over probes of `‖f_trained − f_ntk‖ / ‖f_ntk‖` against the infinite-time mean NTK
    /// prediction `Θ(x, x̂)Θ(x̂, x̂)⁻¹x̂` (which ignores the random initial function).
    pub rel_err_mean: f64,
    /// Training loss at the end.
    pub final_loss: f64,
}

/// Train finite networks of each width in NTK parameterization (weights `N(0, σw²/fan_in)`,
/// biases `N(0, σb²)`, gradient descent with per-parameter rates `η·σw²/fan_in` and `η·σb²`,
/// i.e. plain GD on the NTK parameters) and compare them with the NTK. `η = 0.5·HW/λ_max(Θ̂)`.
#[allow(clippy::too_many_arguments)]
pub fn compare(
    eng: &crate::engine::Engine,
    cfg: &NtkConfig,
    widths: &[usize],
    seeds: u64,
    steps: u64,
    train: &[f64],
    probes: &[Vec<f64>],
) -> Result<Vec<CompareRow>> {
    use crate::nn::model::{ModelConfig, Net};
    use crate::nn::optim::{Optimizer, OptimizerKind};
    use crate::nn::train::{train_with, TrainConfig};
    use crate::rng::{Rng, Stream};
    cfg.validate()?;
    let n = cfg.n();
    // Analytic kernels of the full depth: Θ̂ = Θ(x̂, x̂) and Θ(x, x̂) for every probe, on the
    // engine's pool (outside it, rayon's global pool would take every core).
    let (th_hat, th_x) = eng.install(|| {
        let mut th_hat = Vec::new();
        pair_recursion(cfg, train, train, |l, st| {
            if l == cfg.depth {
                th_hat = st.theta.clone();
            }
        });
        let mut th_x = Vec::new();
        for x in probes {
            pair_recursion(cfg, x, train, |l, st| {
                if l == cfg.depth {
                    th_x.push(st.theta.clone());
                }
            });
        }
        (th_hat, th_x)
    });
    // Eigen-decomposition of Θ̂ (n×n; FCN: the scalar θ̂ times the 784×784 identity).
    let (evals, evecs): (Vec<f64>, DMatrix<f64>) = match cfg.arch {
        Arch::Fcn => (vec![th_hat[0]], DMatrix::identity(1, 1)),
        Arch::Cnn => {
            let e = nalgebra::SymmetricEigen::new(DMatrix::from_row_slice(n, n, &th_hat));
            (e.eigenvalues.iter().cloned().collect(), e.eigenvectors)
        }
    };
    let lmax = evals.iter().cloned().fold(0.0, f64::max);
    let pixels = cfg.pixels();
    let eta = 0.5 * pixels as f64 / lmax;
    let c = eta * 2.0 / pixels as f64;
    // g(λ) = (1 − (1 − cλ)^t)/λ, the finite-time GD factor (→ c·t as λ → 0).
    let g: Vec<f64> = evals
        .iter()
        .map(|&l| if l.abs() < 1e-14 * lmax { c * steps as f64 } else { (1.0 - (1.0 - c * l).powi(steps as i32)) / l })
        .collect();
    let apply_g = |r: &[f64]| -> Vec<f64> {
        match cfg.arch {
            Arch::Fcn => r.iter().map(|v| v * g[0]).collect(),
            Arch::Cnn => {
                let rv = DVector::from_column_slice(r);
                let coef = evecs.transpose() * rv;
                let scaled = DVector::from_iterator(n, coef.iter().zip(&g).map(|(a, b)| a * b));
                (&evecs * scaled).iter().cloned().collect()
            }
        }
    };
    // The infinite-time mean prediction Θ(x, x̂)Θ̂⁻¹x̂, from the kernels already computed.
    let a_mean = solve_train(cfg, &th_hat, train)?.0;
    let mean_pred: Vec<Vec<f64>> = th_x.iter().map(|th| apply_kernel(cfg, th, &a_mean)).collect();
    let mut all = train.to_vec();
    for p in probes {
        all.extend_from_slice(p);
    }
    let rel = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt() / b.iter().map(|q| q * q).sum::<f64>().sqrt().max(1e-300)
    };
    let mut rows = Vec::new();
    for &w in widths {
        for seed in 0..seeds {
            let mcfg = ModelConfig {
                arch: cfg.arch,
                depth: cfg.depth,
                width: Some(w),
                channels: w,
                kernel: cfg.kernel,
                act: cfg.act,
                bias: cfg.bias_var > 0.0,
                ..Default::default()
            };
            let mut net = Net::<f64>::new(&mcfg, crate::Shape::new(1, cfg.height, cfg.width))?;
            let mut rng = Rng::new(seed, Stream::Init);
            let mut scale = vec![0.0; net.num_params()];
            for l in net.layers.clone() {
                let fan_in = l.fans().0 as f64;
                for i in l.weight_range() {
                    net.params[i] = rng.normal() * (cfg.weight_var / fan_in).sqrt();
                    scale[i] = cfg.weight_var / fan_in;
                }
                if let Some(b) = l.bias_range() {
                    for i in b {
                        net.params[i] = rng.normal() * cfg.bias_var.sqrt();
                        scale[i] = cfg.bias_var;
                    }
                }
            }
            let f0 = net.predict(eng, &all, probes.len() + 1, 16);
            let r0: Vec<f64> = f0[..pixels].iter().zip(train).map(|(a, b)| a - b).collect();
            let z = apply_g(&r0);
            let tc = TrainConfig { optimizer: OptimizerKind::Gd, lr: eta, momentum: 0.0, steps, tol: 0.0 };
            let mut opt = Optimizer::<f64>::new(&tc, net.num_params());
            opt.set_lr_scale(scale)?;
            let out = train_with(eng, &mut net, train, 1, &tc, opt, &mut |_, _| true)?;
            let ft = net.predict(eng, &all, probes.len() + 1, 16);
            let (mut e_lin, mut e_mean) = (0.0, 0.0);
            for (i, th) in th_x.iter().enumerate() {
                let f0i = &f0[(i + 1) * pixels..(i + 2) * pixels];
                let fti = &ft[(i + 1) * pixels..(i + 2) * pixels];
                let corr = apply_kernel(cfg, th, &z);
                let lin: Vec<f64> = f0i.iter().zip(&corr).map(|(a, b)| a - b).collect();
                e_lin += rel(fti, &lin);
                e_mean += rel(fti, &mean_pred[i]);
            }
            let k = th_x.len().max(1) as f64;
            rows.push(CompareRow { width: w, seed, rel_err_linearized: e_lin / k, rel_err_mean: e_mean / k, final_loss: out.final_loss });
        }
    }
    Ok(rows)
}
