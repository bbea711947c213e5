//! Optimizers over the flat parameter vector, with PyTorch's update rules.

use crate::engine::{for_each_chunk, Engine};
use crate::error::{Error, Result};
use crate::float::Float;
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
    /// State for `n` parameters.
    pub fn new(kind: OptimizerKind, lr: f64, momentum: f64, n: usize) -> Result<Self> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::invalid("lr", format!("{lr} must be a positive number")));
        }
        if !(0.0..1.0).contains(&momentum) {
            return Err(Error::invalid("momentum", format!("{momentum} must be in [0, 1)")));
        }
        let (m, v) = match kind {
            OptimizerKind::Gd => (Vec::new(), Vec::new()),
            OptimizerKind::Momentum => (vec![T::zero(); n], Vec::new()),
            OptimizerKind::Adam => (vec![T::zero(); n], vec![T::zero(); n]),
        };
        Ok(Optimizer { kind, lr: T::from_f64(lr), momentum: T::from_f64(momentum), step: 0, m, v, lr_scale: Vec::new() })
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

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Apply one update to `params` from `grads`.
    pub fn step(&mut self, eng: &Engine, params: &mut [T], grads: &[T]) {
        self.step += 1;
        let lr = self.lr;
        match self.kind {
            OptimizerKind::Gd if !self.lr_scale.is_empty() => {
                let s = &self.lr_scale;
                for_each_chunk(eng, params, |off, p| {
                    for ((p, g), s) in p.iter_mut().zip(&grads[off..]).zip(&s[off..]) {
                        *p = *p - lr * *s * *g;
                    }
                })
            }
            OptimizerKind::Gd => for_each_chunk(eng, params, |off, p| {
                for (p, g) in p.iter_mut().zip(&grads[off..]) {
                    *p = *p - lr * *g;
                }
            }),
            OptimizerKind::Momentum => {
                let (mu, first) = (self.momentum, self.step == 1);
                // The momentum buffer is updated in the same pass: walk it alongside params.
                let m = SyncPtr(self.m.as_mut_ptr());
                for_each_chunk(eng, params, |off, p| {
                    // SAFETY: chunks are disjoint ranges [off, off+p.len()) of a vector with the
                    // same length as `m`, so each thread touches a disjoint part of `m`.
                    let m = unsafe { std::slice::from_raw_parts_mut(m.get().add(off), p.len()) };
                    for ((p, g), b) in p.iter_mut().zip(&grads[off..]).zip(m) {
                        *b = if first { *g } else { mu * *b + *g };
                        *p = *p - lr * *b;
                    }
                });
            }
            OptimizerKind::Adam => {
                let t = self.step as i32;
                let (b1, b2) = (T::from_f64(ADAM_BETA1), T::from_f64(ADAM_BETA2));
                let bc1 = T::one() - b1.powi(t);
                let bc2_sqrt = (T::one() - b2.powi(t)).sqrt();
                let step_size = lr / bc1;
                let eps = T::from_f64(ADAM_EPS);
                let (mp, vp) = (SyncPtr(self.m.as_mut_ptr()), SyncPtr(self.v.as_mut_ptr()));
                for_each_chunk(eng, params, |off, p| {
                    // SAFETY: as above; `m` and `v` have the length of `params` and each chunk
                    // is a disjoint range.
                    let m = unsafe { std::slice::from_raw_parts_mut(mp.get().add(off), p.len()) };
                    let v = unsafe { std::slice::from_raw_parts_mut(vp.get().add(off), p.len()) };
                    for (((p, g), m), v) in p.iter_mut().zip(&grads[off..]).zip(m).zip(v) {
                        *m = b1 * *m + (T::one() - b1) * *g;
                        *v = b2 * *v + (T::one() - b2) * *g * *g;
                        let denom = v.sqrt() / bc2_sqrt + eps;
                        *p = *p - step_size * (*m / denom);
                    }
                });
            }
        }
    }
}

#[derive(Clone, Copy)]
struct SyncPtr<T>(*mut T);
impl<T> SyncPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}
// SAFETY: used only to hand disjoint sub-slices of one vector to the threads of one parallel
// loop (see the SAFETY notes at the use sites); the vector outlives the loop.
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}
