//! Attractors of a trained autoencoder (Radhakrishnan, Belkin & Uhler, PNAS 2020): iterate the
//! net on its own output, x_{t+1} = f(x_t), from many starts, and see where each one ends.
//!
//! Independent of configs and data files: everything takes a map and arrays.
//!
//! - **Images.** A start, a training image or a state is a flat `[C·H·W]` vector (`D` values,
//!   the net's input shape = output shape), pixel units (MNIST pixels in [0, 1]). Public
//!   images are `f32`, as the crate's probes are; the map runs in its own dtype `T` and every
//!   statistic is accumulated in `f64`.
//! - **Maps.** [`iterate`] and [`jacobian`] take any `FnMut(&[T], &mut [T])` that maps a batch
//!   `[n, D]` to `[n, D]` (`n` from the slice length); [`net_map`] wraps a [`Net`], so that
//!   constructed maps (tests) and trained nets go through the same code.
//! - **Norms** are Euclidean (L2) over all `D` values.
//!
//! ## Classification ([`classify`], the one rule; the stop rule of [`iterate`] is "the class is
//! no longer undecided")
//!
//! With `r_t = ‖x_{t+1} − x_t‖ / max(‖x_t‖, ‖x_{t+1}‖, s)` (the *relative step*), where the floor
//! `s` = [`NORM_FLOOR`] (1e-3) × the smallest training-image norm keeps the ratio defined at the
//! blank image and lets a trajectory that shrinks to the zero image converge (without it,
//! x ↦ 0.5·x would have r_t = 0.5 for ever), in this order:
//! 1. **diverging**: x_{t+1} has a non-finite value, or ‖x_{t+1}‖ > `diverge_factor` (1e6) ×
//!    the largest training-image norm;
//! 2. **converged** when `r_t < step_tol` (1e-6): to **training image i** when the nearest
//!    training image t_i has ‖x − t_i‖/‖t_i‖ < `train_tol` (1e-2), else to an **other fixed
//!    point** (spurious);
//! 3. **cycling** with period p when x_{t+1} is within `cycle_tol` (1e-6, relative to the larger
//!    norm or `s`) of x_{t+1−p} for some 2 ≤ p ≤ `max_period` (8); the smallest such p is reported.
//!    A ring of the last `max_period` states per start makes this `max_period·D` work per step;
//! 4. **undecided** when `max_steps` (1000) run out first.
//!
//! Other fixed points are grouped by [`cluster_fixed_points`]: two end states are the same point
//! when their distance relative to the larger norm (or `s`) is below `train_tol`.
//!
//! ## Jacobian ([`exact_jacobian`], [`jacobian`], [`jacobian_stats`])
//!
//! J = ∂f/∂x (`D×D`, row i = output i). A net's is exact ([`exact_jacobian`], what
//! [`analyze`] reports): the nets are ReLU or linear, so piecewise linear, and J at x is the
//! linear part of the net with each ReLU replaced by its slope at x (1 where on, 0 where off),
//! applied to the D basis images (one-sided where a ReLU sits exactly at 0, which is counted).
//! Any other map's ([`jacobian`]) is taken by central
//! differences in the map's dtype, in batches:
//! J[:, j] = (f(x + h e_j) − f(x − h e_j)) / 2h with `h = ε^(1/3)` of the dtype (4.9e-3 for f32,
//! 6.1e-6 for f64) in pixel units. For a smooth map the error is O(h²·f''') + O(ε·|f|/h),
//! about ε^(2/3)·|f| (1.5e-5 in f32, 4e-11 in f64) per entry. (On a net the truncation term
//! would vanish, but a column would mix two slopes wherever a ReLU changes sign within ±h of x
//! along e_j, and it would take 2·D passes where the exact Jacobian takes D.)
//! From J: the spectral radius ρ (largest |λ| over all eigenvalues, complex ones included:
//! [`crate::eval::eigen`]) and the spectral norm ‖J‖₂ (largest singular value). A training
//! image is an **attractor** when it is a fixed point (‖f(t) − t‖/‖t‖ < `train_tol`) with
//! ρ < 1 (the PNAS criterion).

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::eval::eigen;
use crate::eval::probe::Probe;
use crate::figures;
use crate::float::Float;
use crate::nn::layers::Activation;
use crate::nn::model::Net;
use crate::rng::{Rng, Stream};
use crate::shape::Shape;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Tolerances and budgets of the iteration and the classification (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Most steps per start (`--iterate`), ≥ 1.
    pub max_steps: usize,
    /// Converged when the relative step is below this.
    pub step_tol: f64,
    /// A state is training image i when ‖x − t_i‖/‖t_i‖ is below this; also the distance under
    /// which two fixed points are one, and the fixed-point residual of an attractor.
    pub train_tol: f64,
    /// A state repeats an earlier one when their relative distance is below this.
    pub cycle_tol: f64,
    /// Longest cycle period looked for (≥ 2); also the ring length per start.
    pub max_period: usize,
    /// Diverging beyond this many times the largest training-image norm.
    pub diverge_factor: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_steps: 1000, step_tol: 1e-6, train_tol: 1e-2, cycle_tol: 1e-6, max_period: 8, diverge_factor: 1e6 }
    }
}

impl Options {
    /// Check every field; the error names the flag (`iterate` for `max_steps`).
    pub fn validate(&self) -> Result<()> {
        if self.max_steps == 0 {
            return Err(Error::invalid("iterate", "the number of steps must be at least 1"));
        }
        if self.max_steps > 1_000_000 {
            return Err(Error::invalid("iterate", format!("{} steps is more than 1000000", self.max_steps)));
        }
        for (key, v) in [("step-tol", self.step_tol), ("train-tol", self.train_tol), ("cycle-tol", self.cycle_tol)] {
            if !(v > 0.0 && v < 1.0) {
                return Err(Error::invalid(key, format!("{v} must be in (0, 1)")));
            }
        }
        if !(2..=64).contains(&self.max_period) {
            return Err(Error::invalid("max-period", format!("{} must be in 2..=64", self.max_period)));
        }
        if !(self.diverge_factor > 1.0 && self.diverge_factor.is_finite()) {
            return Err(Error::invalid("diverge-factor", format!("{} must be finite and > 1", self.diverge_factor)));
        }
        Ok(())
    }

    /// The times at which [`iterate`] keeps a snapshot: 0, 1, 2, 4, … ≤ `max_steps`.
    pub fn snapshot_times(&self) -> Vec<usize> {
        std::iter::once(0).chain(std::iter::successors(Some(1usize), |t| t.checked_mul(2)).take_while(|t| *t <= self.max_steps)).collect()
    }
}

/// Where a trajectory went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Class {
    /// Converged to training image `index`.
    TrainingImage {
        /// Which training image.
        index: usize,
    },
    /// Converged to a fixed point that is not a training image.
    OtherFixedPoint,
    /// Returns to a state seen `period` ≥ 2 steps earlier.
    Cycle {
        /// Smallest period found.
        period: usize,
    },
    /// Non-finite, or beyond the norm bound.
    Diverging,
    /// None of the above within the step budget.
    Undecided,
}

impl Class {
    /// Kebab-case name without the payload, e.g. `training-image`.
    pub fn name(self) -> &'static str {
        match self {
            Class::TrainingImage { .. } => "training-image",
            Class::OtherFixedPoint => "other-fixed-point",
            Class::Cycle { .. } => "cycle",
            Class::Diverging => "diverging",
            Class::Undecided => "undecided",
        }
    }

    /// Every class name, in report order.
    pub const NAMES: [&'static str; 5] = ["training-image", "other-fixed-point", "cycle", "diverging", "undecided"];
}

/// What [`classify`] looks at after a step x_t → x_{t+1}: all about x_{t+1}.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndState {
    /// Relative step `r_t` (see the module docs); NaN if a value is not finite.
    pub rel_step: f64,
    /// ‖x_{t+1}‖.
    pub norm: f64,
    /// Every value of x_{t+1} is finite.
    pub finite: bool,
    /// Index of the nearest training image.
    pub nearest: usize,
    /// ‖x_{t+1} − t_nearest‖ / ‖t_nearest‖.
    pub nearest_rel: f64,
    /// Smallest p in 2..=max_period with x_{t+1} ≈ x_{t+1−p}, if any.
    pub period: Option<usize>,
}

/// The classification rule (module docs); `norm_bound` = `diverge_factor` × the largest
/// training-image norm.
pub fn classify(s: &EndState, opts: &Options, norm_bound: f64) -> Class {
    if !s.finite || !s.norm.is_finite() || s.norm > norm_bound || s.rel_step.is_nan() {
        Class::Diverging
    } else if s.rel_step < opts.step_tol {
        if s.nearest_rel < opts.train_tol {
            Class::TrainingImage { index: s.nearest }
        } else {
            Class::OtherFixedPoint
        }
    } else if let Some(period) = s.period {
        Class::Cycle { period }
    } else {
        Class::Undecided
    }
}

/// A starting image.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// Unique short name (probe name, `train-0`, `train-0+noise-0.20`, `uniform`, `blank`).
    pub name: String,
    /// `[D]` values.
    pub image: Vec<f32>,
}

/// Noise scales σ of [`starts`], in pixel units (the pixel range is [0, 1]).
pub const NOISE_SIGMAS: [f64; 3] = [0.05, 0.2, 0.5];

/// The standard starts: every probe; every training image itself (`train-i`) and plus Gaussian
/// noise N(0, σ²) per pixel for each σ in [`NOISE_SIGMAS`], `draws` times each, **not clamped** (zero-mean
/// perturbations; the map is defined on all of R^D); one image of U[0, 1) pixels; and the blank
/// (all-zero) image. Deterministic given `seed` (stream [`Stream::Misc`]; drawn in the order
/// listed, so adding probes does not change the noise).
pub fn starts(probes: &[Probe], train: &[Vec<f32>], seed: u64, draws: usize) -> Vec<Start> {
    let dim = train.first().map(Vec::len).unwrap_or(0);
    let mut rng = Rng::new(seed, Stream::Misc);
    let mut noisy = Vec::new();
    for (i, t) in train.iter().enumerate() {
        noisy.push(Start { name: format!("train-{i}"), image: t.clone() });
        for sigma in NOISE_SIGMAS {
            for d in 0..draws {
                let name = if draws == 1 { format!("train-{i}+noise-{sigma:.2}") } else { format!("train-{i}+noise-{sigma:.2}-{d}") };
                noisy.push(Start { name, image: t.iter().map(|&v| (v as f64 + sigma * rng.normal()) as f32).collect() });
            }
        }
    }
    let uniform = Start { name: "uniform".into(), image: (0..dim).map(|_| rng.uniform() as f32).collect() };
    let mut out: Vec<Start> = probes.iter().map(|p| Start { name: p.name.clone(), image: p.image.clone() }).collect();
    out.extend(noisy);
    out.push(uniform);
    out.push(Start { name: "blank".into(), image: vec![0.0; dim] });
    out
}

/// One start's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartResult {
    /// The start's name.
    pub name: String,
    /// The class, with its payload.
    pub class: Class,
    /// Steps taken (maps applied).
    pub steps: usize,
    /// Relative step of the last step (JSON `null` when not finite, as for every float here).
    #[serde(deserialize_with = "f64_or_nan")]
    pub final_rel_step: f64,
    /// ‖x_final‖.
    #[serde(deserialize_with = "f64_or_nan")]
    pub final_norm: f64,
    /// Index of the training image nearest the final state.
    pub nearest_train: usize,
    /// ‖x_final − t_nearest‖ / ‖t_nearest‖.
    #[serde(deserialize_with = "f64_or_nan")]
    pub nearest_rel_distance: f64,
    /// For an other fixed point: its cluster in [`Report::fixed_points`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_point: Option<usize>,
}

/// What [`iterate`] returns besides the table: the images, as `f32`.
#[derive(Debug, Clone)]
pub struct Trajectories {
    /// One row per start.
    pub results: Vec<StartResult>,
    /// Final state per start, `[D]`.
    pub finals: Vec<Vec<f32>>,
    /// Per start, `(t, x_t)` at t in [`Options::snapshot_times`] reached (t ≤ steps).
    pub snapshots: Vec<Vec<(usize, Vec<f32>)>>,
    /// The floor `s` of relative distances: [`NORM_FLOOR`] × the smallest training-image norm.
    pub norm_floor: f64,
}

/// JSON writes a non-finite float as `null`; read `null` back as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn norm<T: Float>(x: &[T]) -> f64 {
    x.iter().map(|v| Float::to_f64(*v).powi(2)).sum::<f64>().sqrt()
}

fn dist<T: Float>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (Float::to_f64(*x) - Float::to_f64(*y)).powi(2)).sum::<f64>().sqrt()
}

/// The floor of the norms that relative steps and distances divide by, as a fraction of the
/// smallest training-image norm (see the module docs).
pub const NORM_FLOOR: f64 = 1e-3;

/// `d = ‖a − b‖` relative to `max(‖a‖, ‖b‖, floor)`.
fn rel_dist(d: f64, na: f64, nb: f64, floor: f64) -> f64 {
    d / na.max(nb).max(floor)
}

/// The nearest training image and the distance relative to its norm.
fn nearest<T: Float>(x: &[T], train: &[T], train_norms: &[f64]) -> (usize, f64) {
    let dim = x.len();
    let mut best = (0, f64::INFINITY);
    for (i, (t, tn)) in train.chunks_exact(dim).zip(train_norms).enumerate() {
        let r = dist(x, t) / tn;
        if r < best.1 {
            best = (i, r);
        }
    }
    best
}

/// Refuse training images that are not the net's input size.
fn check_fits<T: Float>(net: &Net<T>, train: &[Vec<f32>]) -> Result<()> {
    let dim = net.shape.len();
    match train.iter().find(|t| t.len() != dim) {
        Some(t) => {
            Err(Error::invalid("train-image", format!("a training image has {} values, the net takes {dim} ({})", t.len(), net.shape)))
        }
        None => Ok(()),
    }
}

/// Check the images: at least one training image, none all zero, every image `[D]` and finite.
fn check_images(starts: &[Start], train: &[Vec<f32>]) -> Result<usize> {
    let dim = train.first().map(Vec::len).ok_or_else(|| Error::invalid("train-image", "no training image to compare with"))?;
    if dim == 0 {
        return Err(Error::invalid("train-image", "the training image is empty"));
    }
    for (i, t) in train.iter().enumerate() {
        if t.len() != dim {
            return Err(Error::invalid("train-image", format!("training image {i} has {} values, the first has {dim}", t.len())));
        }
        if t.iter().all(|v| *v == 0.0) || !t.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid("train-image", format!("training image {i} is all zero or not finite")));
        }
    }
    for s in starts {
        if s.image.len() != dim || !s.image.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid(
                "starts",
                format!("start {} has {} values (expected {dim}) or a non-finite one", s.name, s.image.len()),
            ));
        }
    }
    Ok(dim)
}

/// Iterate `map` from every start at once until each is classified or `opts.max_steps` run out.
///
/// `map(xs, ys)` gets the active states `xs [n, D]` (n ≤ starts, shrinking as starts finish)
/// and writes `ys [n, D]`; it is called once per step. All buffers (states, the ring of the
/// last `max_period` states, the snapshots) are allocated before the loop; the loop allocates
/// nothing. `train` holds the training images, `[D]` each.
pub fn iterate<T: Float, F: FnMut(&[T], &mut [T])>(
    mut map: F,
    starts: &[Start],
    train: &[Vec<f32>],
    opts: &Options,
) -> Result<Trajectories> {
    opts.validate()?;
    let dim = check_images(starts, train)?;
    let n = starts.len();
    let train_t: Vec<T> = train.iter().flatten().map(|&v| T::from_f64(v as f64)).collect();
    let train_norms: Vec<f64> = train_t.chunks_exact(dim).map(norm).collect();
    let bound = opts.diverge_factor * train_norms.iter().cloned().fold(0.0, f64::max);
    let floor = NORM_FLOOR * train_norms.iter().cloned().fold(f64::INFINITY, f64::min);
    let k = opts.max_period;
    let times = opts.snapshot_times();

    let mut state: Vec<T> = starts.iter().flat_map(|s| s.image.iter().map(|&v| T::from_f64(v as f64))).collect();
    let mut ring = vec![T::zero(); n * k * dim];
    let mut snaps = vec![0f32; n * times.len() * dim];
    for i in 0..n {
        let x = &state[i * dim..(i + 1) * dim];
        ring[i * k * dim..i * k * dim + dim].copy_from_slice(x);
        for (s, v) in snaps[i * times.len() * dim..][..dim].iter_mut().zip(x) {
            *s = Float::to_f64(*v) as f32;
        }
    }
    let mut input = vec![T::zero(); n * dim];
    let mut output = vec![T::zero(); n * dim];
    let mut active: Vec<usize> = (0..n).collect();
    let mut ends: Vec<(usize, EndState, Class)> = starts
        .iter()
        .zip(state.chunks_exact(dim))
        .map(|(_, x)| {
            let (nearest, nearest_rel) = nearest(x, &train_t, &train_norms);
            let e = EndState { rel_step: f64::INFINITY, norm: norm(x), finite: true, nearest, nearest_rel, period: None };
            (0, e, Class::Undecided)
        })
        .collect();

    for t in 0..opts.max_steps {
        if active.is_empty() {
            break;
        }
        let m = active.len();
        for (slot, &i) in active.iter().enumerate() {
            input[slot * dim..(slot + 1) * dim].copy_from_slice(&state[i * dim..(i + 1) * dim]);
        }
        map(&input[..m * dim], &mut output[..m * dim]);
        let next = t + 1;
        for (slot, &i) in active.iter().enumerate() {
            let y = &output[slot * dim..(slot + 1) * dim];
            let x = &state[i * dim..(i + 1) * dim];
            let finite = y.iter().all(|v| v.is_finite());
            let ny = norm(y);
            let rel_step = if finite { rel_dist(dist(y, x), ny, norm(x), floor) } else { f64::NAN };
            let ring_i = &ring[i * k * dim..(i + 1) * k * dim];
            let mut period = None;
            if finite && rel_step >= opts.step_tol {
                for p in 2..=k.min(next) {
                    let old = &ring_i[((next - p) % k) * dim..][..dim];
                    if rel_dist(dist(y, old), ny, norm(old), floor) < opts.cycle_tol {
                        period = Some(p);
                        break;
                    }
                }
            }
            let (nearest, nearest_rel) = if finite { nearest(y, &train_t, &train_norms) } else { (0, f64::NAN) };
            let e = EndState { rel_step, norm: ny, finite, nearest, nearest_rel, period };
            ends[i] = (next, e, classify(&e, opts, bound));
            state[i * dim..(i + 1) * dim].copy_from_slice(y);
            ring[(i * k + next % k) * dim..][..dim].copy_from_slice(y);
            if let Some(s) = times.iter().position(|&tt| tt == next) {
                for (d, v) in snaps[(i * times.len() + s) * dim..][..dim].iter_mut().zip(y) {
                    *d = Float::to_f64(*v) as f32;
                }
            }
        }
        active.retain(|&i| ends[i].2 == Class::Undecided);
    }

    let mut out =
        Trajectories { results: Vec::with_capacity(n), finals: Vec::with_capacity(n), snapshots: Vec::with_capacity(n), norm_floor: floor };
    for (i, (s, (steps, e, class))) in starts.iter().zip(&ends).enumerate() {
        out.results.push(StartResult {
            name: s.name.clone(),
            class: *class,
            steps: *steps,
            final_rel_step: e.rel_step,
            final_norm: e.norm,
            nearest_train: e.nearest,
            nearest_rel_distance: e.nearest_rel,
            fixed_point: None,
        });
        out.finals.push(state[i * dim..(i + 1) * dim].iter().map(|v| Float::to_f64(*v) as f32).collect());
        out.snapshots.push(
            times
                .iter()
                .enumerate()
                .take_while(|(_, tt)| **tt <= *steps)
                .map(|(si, &tt)| (tt, snaps[(i * times.len() + si) * dim..][..dim].to_vec()))
                .collect(),
        );
    }
    Ok(out)
}

/// A trained net as a batch map for [`iterate`] and [`jacobian`]: a batch of any size is
/// evaluated as [`Net::predict`] evaluates it with batches of `batch`, bits included (a net
/// without dense layers split over the engine's threads in cache-sized batches).
pub fn net_map<'a, T: Float>(net: &'a Net<T>, eng: &'a Engine, batch: usize) -> impl FnMut(&[T], &mut [T]) + 'a {
    let dim = net.shape.len();
    move |xs: &[T], ys: &mut [T]| net.predict_to(eng, xs, xs.len() / dim, batch.max(1), ys)
}

/// The central-difference step of [`jacobian`] for dtype `T`: ε^(1/3) (module docs).
pub fn fd_step<T: Float>() -> f64 {
    Float::to_f64(T::epsilon()).cbrt()
}

/// The Jacobian `J [D, D]` (J[(i, j)] = ∂f_i/∂x_j) of `map` at `x [D]` by central differences
/// with step [`fd_step`], `batch` columns (2·batch map inputs) per call.
pub fn jacobian<T: Float, F: FnMut(&[T], &mut [T])>(mut map: F, x: &[T], batch: usize) -> DMatrix<f64> {
    let dim = x.len();
    let h = T::from_f64(fd_step::<T>());
    let batch = batch.clamp(1, dim.max(1));
    let mut input = vec![T::zero(); 2 * batch * dim];
    let mut output = vec![T::zero(); 2 * batch * dim];
    let mut j = DMatrix::<f64>::zeros(dim, dim);
    let mut col0 = 0;
    while col0 < dim {
        let cols = batch.min(dim - col0);
        for c in 0..cols {
            for (s, sign) in [(0, h), (1, -h)] {
                let row = &mut input[(2 * c + s) * dim..(2 * c + s + 1) * dim];
                row.copy_from_slice(x);
                row[col0 + c] = x[col0 + c] + sign;
            }
        }
        map(&input[..2 * cols * dim], &mut output[..2 * cols * dim]);
        for c in 0..cols {
            // The step actually taken, after rounding x ± h to T.
            let width = Float::to_f64(input[2 * c * dim + col0 + c] - input[(2 * c + 1) * dim + col0 + c]);
            let (plus, minus) = output[2 * c * dim..(2 * c + 2) * dim].split_at(dim);
            for i in 0..dim {
                j[(i, col0 + c)] = (Float::to_f64(plus[i]) - Float::to_f64(minus[i])) / width;
            }
        }
        col0 += cols;
    }
    j
}

/// The exact Jacobian `J [D, D]` of a ReLU or linear net at `x [D]` (J[(i, j)] = ∂f_i/∂x_j),
/// from the net's linearization at `x`: one forward pass of `x` records every activation's
/// output, then the net's [`Net::linear_part`] maps the basis images `e_j` with each
/// activation replaced by its backward pass at `x` ([`Activation::backward`]: a ReLU passes
/// where its output at `x` is positive, else blocks), in batches of `batch` as
/// [`net_map`]`(net, eng, batch)` evaluates, at most [`JACOBIAN_CHUNK_VALUES`] / D columns
/// (rounded up to whole batches) per [`Net::predict_with`] call. Half the passes of
/// [`jacobian`]'s central differences and no step: each entry is the sum over the active paths
/// of the products of their weights, rounded only by the dtype's arithmetic. The bits do not
/// depend on the thread count.
///
/// Where a ReLU's input is exactly 0 at `x` (common without biases: a convolution over an
/// all-zero patch), `f` has no derivative; J is then the one-sided Jacobian of the piece with
/// those units off, for perturbations that keep them at or below 0. [`net_jacobian_stats`]
/// counts them ([`JacobianStats::tied_relus`]).
pub fn exact_jacobian<T: Float>(net: &Net<T>, eng: &Engine, x: &[T], batch: usize) -> DMatrix<f64> {
    exact_jacobian_of(net, &net.linear_part(), eng, x, batch).0
}

/// [`exact_jacobian`] with the net's linear part `lin` built once by the caller; also returns
/// how many ReLUs are exactly at 0 at `x`.
fn exact_jacobian_of<T: Float>(net: &Net<T>, lin: &Net<T>, eng: &Engine, x: &[T], batch: usize) -> (DMatrix<f64>, usize) {
    let dim = net.shape.len();
    assert_eq!(x.len(), dim, "x has {} values, the net takes {dim}", x.len());
    let act = net.cfg.act;
    // Each hidden layer's activation at x, in the layout its layer keeps it in.
    let mut at_x: Vec<Vec<T>> = vec![Vec::new(); net.layers.len()];
    let mut tied = 0;
    let mut ws = net.workspace(1, false);
    net.forward_with(eng, &mut ws, x, 1, &mut |e, i, z| {
        if act == Activation::Relu {
            tied += z.iter().filter(|v| **v == T::zero()).count();
        }
        act.forward(e, z);
        at_x[i] = z.to_vec();
    });
    let linearized = |e: &Engine, i: usize, z: &mut [T]| {
        let a = &at_x[i];
        assert_eq!(z.len() % a.len(), 0, "layer {i}: a batch of {} values for activations of {}", z.len(), a.len());
        for img in z.chunks_exact_mut(a.len()) {
            act.backward(e, img, a);
        }
    };
    let batch = batch.max(1);
    let chunk = dim.min((JACOBIAN_CHUNK_VALUES / dim).max(1).div_ceil(batch) * batch);
    let mut basis = vec![T::zero(); chunk * dim];
    let mut out = vec![T::zero(); chunk * dim];
    let mut j = DMatrix::<f64>::zeros(dim, dim);
    let mut col0 = 0;
    while col0 < dim {
        let cols = chunk.min(dim - col0);
        basis.fill(T::zero());
        for c in 0..cols {
            basis[c * dim + col0 + c] = T::one();
        }
        lin.predict_with(eng, &basis[..cols * dim], cols, batch, &mut out, &linearized);
        for c in 0..cols {
            for (i, v) in out[c * dim..(c + 1) * dim].iter().enumerate() {
                j[(i, col0 + c)] = Float::to_f64(*v);
            }
        }
        col0 += cols;
    }
    (j, tied)
}

/// Most values (columns × D) in each of [`exact_jacobian`]'s basis and output buffers: all 784
/// columns of an MNIST image at once (2.5 MB each in f32, 4.9 MB in f64).
pub const JACOBIAN_CHUNK_VALUES: usize = 784 * 784;

/// Largest |λ| over the (complex) eigenvalues of the square matrix `j` (0 when `j` is 0×0).
/// Errors as [`eigen::eigenvalues`] does.
pub fn spectral_radius(j: &DMatrix<f64>) -> Result<f64> {
    Ok(eigen_magnitudes(j)?.first().copied().unwrap_or(0.0))
}

/// |λ| of every eigenvalue of `j`, largest first ([`eigen::eigenvalues`]).
pub fn eigen_magnitudes(j: &DMatrix<f64>) -> Result<Vec<f64>> {
    let mut mags: Vec<f64> = eigen::eigenvalues(j)?.iter().map(|z| z.norm()).collect();
    mags.sort_by(|a, b| b.total_cmp(a));
    Ok(mags)
}

/// ‖j‖₂, the largest singular value.
pub fn spectral_norm(j: &DMatrix<f64>) -> Result<f64> {
    if j.nrows() == 0 {
        return Ok(0.0);
    }
    let svd = nalgebra::SVD::try_new(j.clone(), false, false, f64::EPSILON, 0)
        .ok_or_else(|| Error::Other(format!("the SVD of the {0}×{0} Jacobian did not converge", j.nrows())))?;
    Ok(svd.singular_values.iter().cloned().fold(0.0, f64::max))
}

/// Local stability of one training image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JacobianStats {
    /// Which training image.
    pub train_index: usize,
    /// D.
    pub dim: usize,
    /// The central-difference step h in pixel units, or `None` (JSON `null`) for the exact
    /// Jacobian of a net ([`exact_jacobian`]).
    pub fd_step: Option<f64>,
    /// For a net's exact Jacobian, how many ReLUs are exactly at 0 at the image (where any are,
    /// J is one-sided: see [`exact_jacobian`]); `None` (JSON `null`, or absent in reports
    /// written before it was counted) for central differences.
    #[serde(default)]
    pub tied_relus: Option<usize>,
    /// ‖f(t) − t‖ / ‖t‖.
    pub fixed_point_residual: f64,
    /// ρ(J), the largest |λ|.
    pub spectral_radius: f64,
    /// ‖J‖₂, the largest singular value.
    pub spectral_norm: f64,
    /// The five largest |λ|.
    pub top_eigen_magnitudes: Vec<f64>,
    /// How many eigenvalues have |λ| ≥ 1.
    pub unstable_directions: usize,
    /// A fixed point (residual < `train_tol`) with ρ < 1.
    pub attractor: bool,
    /// Seconds spent on this image: its Jacobian's wall time plus the run time of both its
    /// decompositions (which run beside other images' on several threads, so the sum over
    /// images can exceed the elapsed time).
    pub seconds: f64,
}

/// [`JacobianStats`] of `map` at every training image (`[D]` each), `batch` columns per map call.
///
/// The Jacobians are taken one after another (the map has the engine's threads to itself); the
/// two decompositions of each (eigenvalues, SVD) are sequential, so those of `eng.threads()`
/// images at a time, 2 jobs per image, run side by side on `eng`'s pool. Every number is the
/// same whatever the thread count. Memory: about 3 copies of a `D × D` f64 matrix per thread
/// (the Jacobians and the decompositions' working copies; 15 MB per thread at D = 784).
pub fn jacobian_stats<T: Float, F: FnMut(&[T], &mut [T])>(
    eng: &Engine,
    map: F,
    train: &[Vec<f32>],
    opts: &Options,
    batch: usize,
) -> Result<Vec<JacobianStats>> {
    stats_with(eng, map, |map: &mut F, x: &[T]| (jacobian(map, x, batch), None), Some(fd_step::<T>()), train, opts)
}

/// [`jacobian_stats`] of a ReLU or linear net with its [`exact_jacobian`] (evaluated in batches
/// of `batch`, as is the residual ‖f(t) − t‖, through [`net_map`]).
pub fn net_jacobian_stats<T: Float>(
    eng: &Engine,
    net: &Net<T>,
    train: &[Vec<f32>],
    opts: &Options,
    batch: usize,
) -> Result<Vec<JacobianStats>> {
    check_fits(net, train)?;
    let lin = net.linear_part();
    stats_with(
        eng,
        net_map(net, eng, batch),
        |_: &mut _, x: &[T]| {
            let (j, tied) = exact_jacobian_of(net, &lin, eng, x, batch);
            (j, Some(tied))
        },
        None,
        train,
        opts,
    )
}

/// [`jacobian_stats`] with the Jacobian at `x` and its tied ReLUs from `jac(&mut map, x)`;
/// `fd_step` is recorded.
fn stats_with<T: Float, F: FnMut(&[T], &mut [T]), J: FnMut(&mut F, &[T]) -> (DMatrix<f64>, Option<usize>)>(
    eng: &Engine,
    mut map: F,
    mut jac: J,
    fd_step: Option<f64>,
    train: &[Vec<f32>],
    opts: &Options,
) -> Result<Vec<JacobianStats>> {
    use rayon::prelude::*;
    check_images(&[], train)?;
    let mut out = Vec::with_capacity(train.len());
    for (g, group) in train.chunks(eng.threads()).enumerate() {
        // (residual, J, tied ReLUs, seconds of the Jacobian) per image of the group.
        let mut taken = Vec::with_capacity(group.len());
        for t in group {
            let clock = std::time::Instant::now();
            let x: Vec<T> = t.iter().map(|&v| T::from_f64(v as f64)).collect();
            let mut fx = vec![T::zero(); x.len()];
            map(&x, &mut fx);
            let residual = dist(&fx, &x) / norm(&x);
            let (j, tied_relus) = jac(&mut map, &x);
            taken.push((residual, j, tied_relus, clock.elapsed().as_secs_f64()));
        }
        // Job 2i: the |λ| of image i, largest first; job 2i + 1: [‖J‖₂]. With their seconds.
        let jobs: Vec<(Result<Vec<f64>>, f64)> = eng.install(|| {
            (0..2 * taken.len())
                .into_par_iter()
                .map(|job| {
                    let clock = std::time::Instant::now();
                    let j = &taken[job / 2].1;
                    let r = if job % 2 == 0 { eigen_magnitudes(j) } else { spectral_norm(j).map(|s| vec![s]) };
                    (r, clock.elapsed().as_secs_f64())
                })
                .collect()
        });
        let mut jobs = jobs.into_iter();
        for (i, (residual, j, tied_relus, secs)) in taken.into_iter().enumerate() {
            let (mags, eig_secs) = jobs.next().expect("two jobs per image");
            let (norm2, svd_secs) = jobs.next().expect("two jobs per image");
            let index = g * eng.threads() + i;
            let context = |e: Error| Error::Other(format!("the Jacobian at training image {index}: {e}"));
            let mags = mags.map_err(context)?;
            let rho = mags.first().copied().unwrap_or(0.0);
            out.push(JacobianStats {
                train_index: index,
                dim: j.nrows(),
                fd_step,
                tied_relus,
                fixed_point_residual: residual,
                spectral_radius: rho,
                spectral_norm: norm2.map_err(context)?[0],
                top_eigen_magnitudes: mags.iter().take(5).copied().collect(),
                unstable_directions: mags.iter().filter(|m| **m >= 1.0).count(),
                attractor: residual < opts.train_tol && rho < 1.0,
                seconds: secs + eig_secs + svd_secs,
            });
        }
    }
    Ok(out)
}

/// One spurious fixed point: a cluster of "other fixed point" end states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedPoint {
    /// The starts that ended here, by name.
    pub starts: Vec<String>,
    /// Their fraction of all starts (the basin share).
    pub share: f64,
    /// ‖x‖ of the first member's end state (the representative).
    pub norm: f64,
    /// The representative's nearest training image.
    pub nearest_train: usize,
    /// ‖x − t_nearest‖ / ‖t_nearest‖ of the representative.
    pub nearest_rel_distance: f64,
}

/// Group the "other fixed point" ends of `traj` greedily in start order: an end state joins the
/// first cluster whose representative (its first member) is within `train_tol` relative to the
/// larger norm (or [`Trajectories::norm_floor`]), else it founds a new one. Sets each result's `fixed_point`.
pub fn cluster_fixed_points(traj: &mut Trajectories, opts: &Options) -> Vec<FixedPoint> {
    let total = traj.results.len().max(1) as f64;
    let mut reps: Vec<usize> = Vec::new();
    let mut clusters: Vec<FixedPoint> = Vec::new();
    for i in 0..traj.results.len() {
        if traj.results[i].class != Class::OtherFixedPoint {
            continue;
        }
        let x = &traj.finals[i];
        let nx = norm(x);
        let hit = reps.iter().position(|&r| {
            let y = &traj.finals[r];
            rel_dist(dist(x, y), nx, norm(y), traj.norm_floor) < opts.train_tol
        });
        let c = match hit {
            Some(c) => c,
            None => {
                reps.push(i);
                let r = &traj.results[i];
                clusters.push(FixedPoint {
                    starts: Vec::new(),
                    share: 0.0,
                    norm: nx,
                    nearest_train: r.nearest_train,
                    nearest_rel_distance: r.nearest_rel_distance,
                });
                clusters.len() - 1
            }
        };
        clusters[c].starts.push(traj.results[i].name.clone());
        clusters[c].share = clusters[c].starts.len() as f64 / total;
        traj.results[i].fixed_point = Some(c);
    }
    clusters
}

/// Fractions and basins over all starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of starts.
    pub starts: usize,
    /// Fraction of starts per class name (every name of [`Class::NAMES`], zeros included).
    pub fractions: std::collections::BTreeMap<String, f64>,
    /// Per training image, the fraction of starts that converged to it.
    pub basin_shares: Vec<f64>,
    /// Number of distinct spurious fixed points.
    pub spurious_fixed_points: usize,
    /// Their basin shares, in cluster order.
    pub spurious_shares: Vec<f64>,
    /// Periods of the cycles found (sorted, with repeats).
    pub cycle_periods: Vec<usize>,
    /// Mean steps taken.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_steps: f64,
    /// Median steps (mean of the middle two for an even count).
    #[serde(deserialize_with = "f64_or_nan")]
    pub median_steps: f64,
    /// Mean of the final ‖x − t_nearest‖/‖t_nearest‖ over finite end states.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_final_distance: f64,
    /// Median of the same.
    #[serde(deserialize_with = "f64_or_nan")]
    pub median_final_distance: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Summarize `results` (with `fixed_point` set by [`cluster_fixed_points`]) for `n_train`
/// training images.
pub fn summarize(results: &[StartResult], fixed_points: &[FixedPoint], n_train: usize) -> Summary {
    let total = results.len().max(1) as f64;
    let fractions = Class::NAMES
        .iter()
        .map(|name| (name.to_string(), results.iter().filter(|r| r.class.name() == *name).count() as f64 / total))
        .collect();
    let basin_shares =
        (0..n_train).map(|i| results.iter().filter(|r| r.class == Class::TrainingImage { index: i }).count() as f64 / total).collect();
    let mut cycle_periods: Vec<usize> = results
        .iter()
        .filter_map(|r| match r.class {
            Class::Cycle { period } => Some(period),
            _ => None,
        })
        .collect();
    cycle_periods.sort_unstable();
    let steps: Vec<f64> = results.iter().map(|r| r.steps as f64).collect();
    let dists: Vec<f64> = results.iter().map(|r| r.nearest_rel_distance).filter(|d| d.is_finite()).collect();
    Summary {
        starts: results.len(),
        fractions,
        basin_shares,
        spurious_fixed_points: fixed_points.len(),
        spurious_shares: fixed_points.iter().map(|f| f.share).collect(),
        cycle_periods,
        mean_steps: mean(&steps),
        median_steps: median(steps),
        mean_final_distance: mean(&dists),
        median_final_distance: median(dists),
    }
}

/// Everything `attractors.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The tolerances used.
    pub options: Options,
    /// D = C·H·W.
    pub dim: usize,
    /// Number of training images.
    pub train_images: usize,
    /// One row per start.
    pub starts: Vec<StartResult>,
    /// The spurious fixed points.
    pub fixed_points: Vec<FixedPoint>,
    /// Fractions and basins.
    pub summary: Summary,
    /// Local stability of each training image (empty if not computed).
    pub jacobians: Vec<JacobianStats>,
}

/// The whole analysis of a net: [`iterate`] from `starts` (batched through one workspace),
/// [`cluster_fixed_points`], [`summarize`] and, with `with_jacobian`, [`net_jacobian_stats`] at
/// every training image (the exact Jacobian, in batches of `2·batch`). Returns the report and
/// the images.
pub fn analyze<T: Float>(
    net: &Net<T>,
    eng: &Engine,
    starts: &[Start],
    train: &[Vec<f32>],
    opts: &Options,
    with_jacobian: bool,
    batch: usize,
) -> Result<(Report, Trajectories)> {
    let dim = net.shape.len();
    check_fits(net, train)?;
    let mut traj = iterate(net_map(net, eng, starts.len().max(1)), starts, train, opts)?;
    let fixed_points = cluster_fixed_points(&mut traj, opts);
    let summary = summarize(&traj.results, &fixed_points, train.len());
    let jacobians = if with_jacobian { net_jacobian_stats(eng, net, train, opts, 2 * batch.max(1))? } else { Vec::new() };
    let report = Report { options: *opts, dim, train_images: train.len(), starts: traj.results.clone(), fixed_points, summary, jacobians };
    Ok((report, traj))
}

/// The per-start table as CSV:
/// `start,class,train_index,period,fixed_point,steps,final_rel_step,final_norm,nearest_train,nearest_rel_distance`
/// (empty cells where a field does not apply).
pub fn csv(results: &[StartResult]) -> String {
    let mut s =
        String::from("start,class,train_index,period,fixed_point,steps,final_rel_step,final_norm,nearest_train,nearest_rel_distance\n");
    for r in results {
        let (ti, period) = match r.class {
            Class::TrainingImage { index } => (index.to_string(), String::new()),
            Class::Cycle { period } => (String::new(), period.to_string()),
            _ => (String::new(), String::new()),
        };
        let fp = r.fixed_point.map(|f| f.to_string()).unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{ti},{period},{fp},{},{:e},{:e},{},{:e}",
            r.name.replace(',', ";"),
            r.class.name(),
            r.steps,
            r.final_rel_step,
            r.final_norm,
            r.nearest_train,
            r.nearest_rel_distance
        );
    }
    s
}

/// Short label of a class for tables and figures, e.g. `train 0`, `cycle 2`, `fixed #1`.
pub fn class_label(r: &StartResult) -> String {
    match r.class {
        Class::TrainingImage { index } => format!("train {index}"),
        Class::OtherFixedPoint => match r.fixed_point {
            Some(c) => format!("fixed #{c}"),
            None => "other fixed".into(),
        },
        Class::Cycle { period } => format!("cycle {period}"),
        Class::Diverging => "diverging".into(),
        Class::Undecided => "undecided".into(),
    }
}

/// The trajectory figure: one row per start, columns t = 0, 1, 2, 4, … and the final state;
/// a cell past a start's last step is empty, and columns past every start's last step are left
/// out. Images of `shape`, gray [0, 1] (clamped).
pub fn trajectories_png(title: &str, shape: Shape, traj: &Trajectories, opts: &Options) -> Result<Vec<u8>> {
    let longest = traj.results.iter().map(|r| r.steps).max().unwrap_or(0);
    let times: Vec<usize> = opts.snapshot_times().into_iter().filter(|t| *t <= longest).collect();
    let mut row_labels = Vec::with_capacity(traj.results.len());
    let mut col_labels = Vec::with_capacity(traj.results.len());
    let mut rows = Vec::with_capacity(traj.results.len());
    for ((r, snaps), fin) in traj.results.iter().zip(&traj.snapshots).zip(&traj.finals) {
        row_labels.push(r.name.clone());
        let mut labels: Vec<String> = times.iter().map(|&t| if t <= r.steps { format!("t={t}") } else { String::new() }).collect();
        labels.push(format!("t={}: {}", r.steps, class_label(r)));
        col_labels.push(labels);
        let mut row: Vec<Option<Vec<f32>>> = times.iter().map(|t| snaps.iter().find(|(s, _)| s == t).map(|(_, x)| x.clone())).collect();
        row.push(Some(fin.clone()));
        rows.push(row);
    }
    figures::image_grid(title, shape, &row_labels, &col_labels, &rows, Some(times.len() - 1))
}
