//! Optimizers over the flat parameter vector, with PyTorch's update rules.

use crate::engine::{for_each_chunk, widest, Engine, Shards, PAR_CHUNK};
use crate::error::{Error, Result};
use crate::float::{written_zeros, Float};
use crate::nn::train::TrainConfig;
use serde::{Deserialize, Serialize};

/// Which optimizer.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Plain gradient descent `p ← p − lr·g` (the paper's).
    Gd,
    /// Heavy-ball momentum as `torch.optim.SGD(momentum=μ)`: `b ← μ·b + g` (b = g on the first
    /// step), `p ← p − lr·b`.
    Momentum,
    /// `torch.optim.Adam` with β = (0.9, 0.999), ε = 1e-8, no weight decay.
    #[default]
    Adam,
}

/// Adam's β₁.
pub const ADAM_BETA1: f64 = 0.9;
/// Adam's β₂.
pub const ADAM_BETA2: f64 = 0.999;
/// Adam's ε.
pub const ADAM_EPS: f64 = 1e-8;

/// Plain gradient descent's rule `p − lr·g`, written once for [`Optimizer::apply`] and the dense
/// layers' fused update ([`crate::nn::layers::Dense::backward_descend`]).
#[inline(always)]
pub fn gd<T: Float>(p: T, lr: T, g: T) -> T {
    p - lr * g
}

/// Optimizer state, allocated once for a parameter count.
#[derive(Debug, Clone)]
pub struct Optimizer<T> {
    kind: OptimizerKind,
    lr: T,
    momentum: T,
    step: u64,
    m: Vec<T>,
    v: Vec<T>,
    lr_scale: Vec<T>,
}

impl<T: Float> Optimizer<T> {
    /// State for `n` parameters, as `cfg` describes (its optimizer, lr and momentum; checked by
    /// [`TrainConfig::validate`]).
    pub fn new(cfg: &TrainConfig, n: usize) -> Self {
        let (kind, lr, momentum) = (cfg.optimizer, cfg.lr, cfg.momentum);
        let (m, v) = match kind {
            OptimizerKind::Gd => (Vec::new(), Vec::new()),
            OptimizerKind::Momentum => (written_zeros(n), Vec::new()),
            OptimizerKind::Adam => (written_zeros(n), written_zeros(n)),
        };
        Optimizer { kind, lr: T::from_f64(lr), momentum: T::from_f64(momentum), step: 0, m, v, lr_scale: Vec::new() }
    }

    /// Per-parameter learning-rate multipliers for `gd` (`p ← p − lr·s·g`), e.g. to train in the
    /// NTK parameterization; `scale.len()` must equal the parameter count.
    pub fn set_lr_scale(&mut self, scale: Vec<T>) -> Result<()> {
        if self.kind != OptimizerKind::Gd {
            return Err(Error::invalid("optimizer", "per-parameter learning rates are only supported for gd"));
        }
        self.lr_scale = scale;
        Ok(())
    }

    /// The learning rate when this is plain `gd` with one rate for every parameter: a
    /// parameter's update then needs only its own gradient, so a layer may apply it as the
    /// gradient is computed ([`crate::nn::model::Net::backward_with`]).
    pub fn plain_gd(&self) -> Option<T> {
        (self.kind == OptimizerKind::Gd && self.lr_scale.is_empty()).then_some(self.lr)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Apply one update to `params` from `grads`.
    pub fn step(&mut self, eng: &Engine, params: &mut [T], grads: &[T]) {
        self.begin_step();
        self.apply(eng, 0, params, grads);
    }

    /// Count a new step. Its update is then applied part by part with [`Optimizer::apply`],
    /// each parameter once (any split gives the same bits: the rules are elementwise).
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// The current step's update of parameters `start..start + params.len()`: `params` and
    /// `grads` are those slices of the parameter and gradient vectors.
    pub fn apply(&mut self, eng: &Engine, start: usize, params: &mut [T], grads: &[T]) {
        let range = start..start + params.len();
        let grads = &grads[..params.len()];
        let lr = self.lr;
        match self.kind {
            OptimizerKind::Gd if !self.lr_scale.is_empty() => {
                let s = &self.lr_scale[range];
                for_each_chunk(eng, params, |off, p| {
                    for ((p, g), s) in p.iter_mut().zip(&grads[off..]).zip(&s[off..]) {
                        *p = gd(*p, lr * *s, *g);
                    }
                })
            }
            OptimizerKind::Gd => for_each_chunk(eng, params, |off, p| {
                for (p, g) in p.iter_mut().zip(&grads[off..]) {
                    *p = gd(*p, lr, *g);
                }
            }),
            OptimizerKind::Momentum => {
                let (mu, first) = (self.momentum, self.step == 1);
                let m = &mut self.m[range];
                // The momentum buffer is updated in the same pass, chunk by chunk beside params.
                let update = |p: &mut [T], b: &mut [T], g: &[T]| {
                    for ((p, b), g) in p.iter_mut().zip(b).zip(g) {
                        *b = if first { *g } else { mu * *b + *g };
                        *p = *p - lr * *b;
                    }
                };
                if eng.parallel(params.len()) {
                    let (ps, ms) = (Shards::new(params, PAR_CHUNK), Shards::new(m, PAR_CHUNK));
                    // SAFETY: run_tasks runs each index once.
                    eng.run_tasks(ps.count(), &|i| unsafe { update(ps.chunk(i), ms.chunk(i), chunk(grads, i)) });
                } else {
                    update(params, m, grads);
                }
            }
            OptimizerKind::Adam => {
                let t = self.step as i32;
                let (b1, b2) = (T::from_f64(ADAM_BETA1), T::from_f64(ADAM_BETA2));
                let bc1 = T::one() - b1.powi(t);
                let bc2_sqrt = (T::one() - b2.powi(t)).sqrt();
                let step_size = lr / bc1;
                let eps = T::from_f64(ADAM_EPS);
                let (m, v) = (&mut self.m[range.clone()], &mut self.v[range]);
                let update = |p: &mut [T], m: &mut [T], v: &mut [T], g: &[T]| {
                    widest(|| {
                        for (((p, m), v), g) in p.iter_mut().zip(m).zip(v).zip(g) {
                            *m = b1 * *m + (T::one() - b1) * *g;
                            *v = b2 * *v + (T::one() - b2) * *g * *g;
                            let denom = v.sqrt() / bc2_sqrt + eps;
                            *p = *p - step_size * (*m / denom);
                        }
                    })
                };
                if eng.parallel(params.len()) {
                    let (ps, ms, vs) = (Shards::new(params, PAR_CHUNK), Shards::new(m, PAR_CHUNK), Shards::new(v, PAR_CHUNK));
                    // SAFETY: run_tasks runs each index once.
                    eng.run_tasks(ps.count(), &|i| unsafe { update(ps.chunk(i), ms.chunk(i), vs.chunk(i), chunk(grads, i)) });
                } else {
                    update(params, m, v, grads);
                }
            }
        }
    }
}

/// Chunk `i` of `x` in chunks of [`PAR_CHUNK`] elements.
fn chunk<T>(x: &[T], i: usize) -> &[T] {
    &x[i * PAR_CHUNK..((i + 1) * PAR_CHUNK).min(x.len())]
}
