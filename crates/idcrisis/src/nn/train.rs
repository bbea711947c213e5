//! The MSE loss and the training loop with its stopping rules.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::model::{Net, Workspace};
use crate::nn::optim::{Optimizer, OptimizerKind};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// `torch.nn.MSELoss()`: `L = mean((y − t)²)` over all `y.len()` elements. Writes
/// `∂L/∂y = 2(y − t)/len` into `dy` and returns `L` (accumulated in f64, in order).
pub fn mse_loss<T: Float>(y: &[T], t: &[T], dy: &mut [T]) -> f64 {
    let len = y.len();
    let scale = T::from_f64(2.0 / len as f64);
    let mut sum = 0.0f64;
    for ((d, &a), &b) in dy[..len].iter_mut().zip(y).zip(t) {
        let e = a - b;
        sum += (e * e).to_f64();
        *d = scale * e;
    }
    sum / len as f64
}

/// First half of a training step: forward `x [n, C·H·W]` and the MSE against itself. Leaves
/// `∂L/∂output` in the workspace for [`update`] and returns the loss.
pub fn forward_loss<T: Float>(eng: &Engine, net: &Net<T>, ws: &mut Workspace<T>, x: &[T], n: usize) -> f64 {
    net.forward(eng, ws, x, n);
    let len = n * net.shape.len();
    let (out, dout) = ws.output_and_dout(n);
    mse_loss(&out[..len], &x[..len], dout)
}

/// Second half of a training step: backward pass after [`forward_loss`] and one update, each
/// layer updated as soon as its gradients are final, a dense layer's weights under plain GD as
/// their gradient is computed ([`Net::backward_with`]). The same bits as [`Net::backward`]
/// followed by [`Optimizer::step`].
pub fn update<T: Float>(eng: &Engine, net: &mut Net<T>, ws: &mut Workspace<T>, opt: &mut Optimizer<T>, n: usize) {
    opt.begin_step();
    let gd = opt.plain_gd();
    net.backward_with(eng, ws, n, gd, |start, p, g| opt.apply(eng, start, p, g));
}

/// Optimizer and stopping settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// `gd`, `momentum` or `adam`.
    pub optimizer: OptimizerKind,
    /// Learning rate (PyTorch's meaning, with the mean-reduced MSE loss).
    pub lr: f64,
    /// Momentum μ for `momentum`.
    pub momentum: f64,
    /// Maximum number of updates.
    pub steps: u64,
    /// Stop once the training loss is below this.
    pub tol: f64,
}

impl TrainConfig {
    /// Check every field; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid("lr", format!("{} must be a positive number", self.lr)));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::invalid("momentum", format!("{} must be in [0, 1)", self.momentum)));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(Error::invalid("tol", format!("{} must be a non-negative number", self.tol)));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { optimizer: OptimizerKind::Adam, lr: 3e-4, momentum: 0.9, steps: 10000, tol: 1e-4 }
    }
}

/// How a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Loss fell below `tol`.
    Converged,
    /// `steps` updates were made without reaching `tol`.
    MaxSteps,
    /// The loss became NaN or infinite.
    Diverged,
}

impl Status {
    /// Lower-case name as written to `result.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Converged => "converged",
            Status::MaxSteps => "max-steps",
            Status::Diverged => "diverged",
        }
    }
}

/// What a training run produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// How it ended.
    pub status: Status,
    /// Updates made.
    pub steps: u64,
    /// Loss at the final weights (NaN / inf when diverged).
    pub final_loss: f64,
    /// Loss before each update, then at the final weights: `steps + 1` values.
    #[serde(skip)]
    pub losses: Vec<f64>,
    /// Wall time of the loop in seconds.
    pub wall_s: f64,
    /// Mean milliseconds per update (forward + backward + optimizer).
    pub ms_per_step: f64,
}

impl TrainOutcome {
    fn new(status: Status, steps: u64, final_loss: f64, losses: Vec<f64>, wall_s: f64) -> Self {
        let ms_per_step = if steps > 0 { wall_s * 1e3 / steps as f64 } else { 0.0 };
        TrainOutcome { status, steps, final_loss, losses, wall_s, ms_per_step }
    }
}

/// Train `net` to reproduce `x [n, C·H·W]` (targets = inputs). `progress(step, loss)` is called
/// after every loss evaluation and returns whether to go on: `false` stops training with
/// [`Error::Interrupted`]. Nothing is allocated per step.
pub fn train<T: Float>(
    eng: &Engine,
    net: &mut Net<T>,
    x: &[T],
    n: usize,
    cfg: &TrainConfig,
    progress: &mut (dyn FnMut(u64, f64) -> bool + Send),
) -> Result<TrainOutcome> {
    let opt = Optimizer::<T>::new(cfg, net.num_params());
    train_with(eng, net, x, n, cfg, opt, progress)
}

/// [`train`] with a prepared optimizer (e.g. with per-parameter learning rates).
pub fn train_with<T: Float>(
    eng: &Engine,
    net: &mut Net<T>,
    x: &[T],
    n: usize,
    cfg: &TrainConfig,
    opt: Optimizer<T>,
    progress: &mut (dyn FnMut(u64, f64) -> bool + Send),
) -> Result<TrainOutcome> {
    let mut t = Trainer::new(net, x, n, cfg, opt);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = t.advance(eng, progress)? {
            break s;
        }
    };
    Ok(t.outcome(status, t0.elapsed().as_secs_f64()))
}

/// One net's full-batch training state: the net, its inputs `x [n, C·H·W]` (targets = inputs),
/// workspace, optimizer and the losses so far. [`Trainer::advance`] is the one place the training
/// step and its stopping rules live; [`train_with`] loops it, and [`crate::nn::group`] steps many
/// trainers in lockstep.
pub struct Trainer<'a, T: Float> {
    net: &'a mut Net<T>,
    x: &'a [T],
    n: usize,
    cfg: &'a TrainConfig,
    opt: Optimizer<T>,
    ws: Workspace<T>,
    losses: Vec<f64>,
    step: u64,
}

impl<'a, T: Float> Trainer<'a, T> {
    /// Allocate the workspace and the loss record (`cfg.steps + 1` values, capped at 2²⁰).
    pub fn new(net: &'a mut Net<T>, x: &'a [T], n: usize, cfg: &'a TrainConfig, opt: Optimizer<T>) -> Self {
        let ws = net.workspace(n, true);
        let losses = Vec::with_capacity((cfg.steps as usize).saturating_add(1).min(1 << 20));
        Trainer { net, x, n, cfg, opt, ws, losses, step: 0 }
    }

    /// The net being trained.
    pub fn net(&self) -> &Net<T> {
        self.net
    }

    /// One iteration: the loss at the current weights, reported to `progress(step, loss)`; then
    /// either the status that stops training (diverged: loss not finite; converged: loss <
    /// `tol`; max-steps: `steps` updates made) or one update. `progress` returning `false` gives
    /// [`Error::Interrupted`]. Allocates nothing (until a run passes 2²⁰ steps, the loss
    /// record's initial capacity).
    pub fn advance(&mut self, eng: &Engine, progress: &mut (dyn FnMut(u64, f64) -> bool + Send)) -> Result<Option<Status>> {
        let loss = forward_loss(eng, self.net, &mut self.ws, self.x, self.n);
        self.losses.push(loss);
        if !progress(self.step, loss) {
            return Err(Error::Interrupted { step: self.step });
        }
        if !loss.is_finite() {
            return Ok(Some(Status::Diverged));
        }
        if loss < self.cfg.tol {
            return Ok(Some(Status::Converged));
        }
        if self.step >= self.cfg.steps {
            return Ok(Some(Status::MaxSteps));
        }
        update(eng, self.net, &mut self.ws, &mut self.opt, self.n);
        self.step += 1;
        Ok(None)
    }

    /// The outcome once [`Trainer::advance`] returned `status`, after `wall_s` seconds.
    pub fn outcome(self, status: Status, wall_s: f64) -> TrainOutcome {
        let final_loss = *self.losses.last().unwrap_or(&f64::NAN);
        TrainOutcome::new(status, self.opt.steps(), final_loss, self.losses, wall_s)
    }
}

/// Minibatch training on many images (targets = inputs): `images [count, C·H·W]` (`net.shape`) as `u8`, scaled
/// by 1/255 into a preallocated batch buffer. Each epoch visits the images in a fresh order drawn
/// from the ChaCha stream of `shuffle_seed`; the last, smaller batch of an epoch is dropped.
/// `losses` holds the loss of every update; `final_loss` is the mean over the last epoch. Stops at
/// `epochs`, at `cfg.steps` updates, when an epoch's mean loss is below `cfg.tol`, or on NaN.
#[allow(clippy::too_many_arguments)]
pub fn train_minibatch<T: Float>(
    eng: &Engine,
    net: &mut Net<T>,
    pixels: &[u8],
    count: usize,
    batch: usize,
    epochs: usize,
    shuffle_seed: u64,
    cfg: &TrainConfig,
    progress: &mut (dyn FnMut(u64, f64) -> bool + Send),
) -> Result<TrainOutcome> {
    let batch = batch.min(count).max(1);
    let mut opt = Optimizer::<T>::new(cfg, net.num_params());
    let mut ws = net.workspace(batch, true);
    let dim = net.shape.len();
    let mut x = vec![T::zero(); batch * dim];
    let mut order: Vec<usize> = (0..count).collect();
    let mut rng = crate::rng::Rng::new(shuffle_seed, crate::rng::Stream::Misc);
    let per_epoch = count / batch;
    let mut losses = Vec::with_capacity((per_epoch * epochs).min(1 << 22));
    let t0 = Instant::now();
    let scale = T::from_f64(1.0 / 255.0);
    // A closure called at once, so that its `return`s end the epochs, not the function.
    let (status, epoch_loss) = (|| {
        let mut last_epoch = f64::NAN;
        for _ in 0..epochs {
            for i in (1..count).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            let mut sum = 0.0;
            for b in 0..per_epoch {
                for (k, &idx) in order[b * batch..(b + 1) * batch].iter().enumerate() {
                    let src = &pixels[idx * dim..(idx + 1) * dim];
                    for (d, &p) in x[k * dim..(k + 1) * dim].iter_mut().zip(src) {
                        *d = T::from_f64(p as f64) * scale;
                    }
                }
                let loss = forward_loss(eng, net, &mut ws, &x, batch);
                losses.push(loss);
                if !progress(opt.steps(), loss) {
                    return Err(Error::Interrupted { step: opt.steps() });
                }
                if !loss.is_finite() {
                    return Ok((Status::Diverged, loss));
                }
                sum += loss;
                update(eng, net, &mut ws, &mut opt, batch);
                if opt.steps() >= cfg.steps {
                    return Ok((Status::MaxSteps, sum / (b + 1) as f64));
                }
            }
            last_epoch = sum / per_epoch.max(1) as f64;
            if last_epoch < cfg.tol {
                return Ok((Status::Converged, last_epoch));
            }
        }
        Ok((Status::MaxSteps, last_epoch))
    })()?;
    Ok(TrainOutcome::new(status, opt.steps(), epoch_loss, losses, t0.elapsed().as_secs_f64()))
}
