//! Many nets of one architecture trained together: one lockstep step over S weight sets.
//!
//! A sweep's cells often differ only in seed, training image, learning rate or optimizer on one
//! architecture. [`train_group`] takes S such nets (each with its own inputs, [`TrainConfig`] and
//! optimizer state) and advances them together: every group step runs one [`Trainer::advance`] of
//! each net still training, the nets spread over the engine's threads, each net computed by a
//! one-thread engine. A net leaves the group when its own stopping rule fires (converged,
//! max-steps, diverged, interrupted); the others go on.
//!
//! **Bit-identity.** Each net runs exactly the step of [`crate::nn::train::train`] with a
//! one-thread engine, so its weights, losses, step count and status are bit-identical to training
//! it alone with one thread (and the kernels' results do not depend on the thread count: see the
//! `group` tests).
//!
//! **What it is for.** The group is the unit a batched backend works on: the step loop here does
//! not look inside the kernels, only at [`Trainer`]. On a CPU the gain over a pool of one-thread
//! workers is only in scheduling (see BENCHMARKS.md); a GPU backend would replace the per-net
//! steps by one batched launch per layer.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::model::Net;
use crate::nn::optim::Optimizer;
use crate::nn::train::{Status, TrainConfig, TrainOutcome, Trainer};
use rayon::prelude::*;
use std::time::Instant;

/// One member of a group: a net, what it trains on and how.
pub struct Member<'a, T: Float> {
    /// The net; trained in place.
    pub net: &'a mut Net<T>,
    /// Its inputs `[n, C·H·W]` (targets = inputs), in `net.shape`.
    pub x: &'a [T],
    /// Images in `x`.
    pub n: usize,
    /// Optimizer and stopping settings.
    pub cfg: &'a TrainConfig,
}

/// Refuse a group whose nets are not one architecture (same [`crate::nn::model::ModelConfig`] and
/// image shape), naming the first member that differs, or whose inputs do not match their nets.
pub fn check<T: Float>(members: &[Member<'_, T>]) -> Result<()> {
    let Some(first) = members.first() else { return Ok(()) };
    for (i, m) in members.iter().enumerate() {
        if m.net.cfg != first.net.cfg || m.net.shape != first.net.shape {
            return Err(Error::invalid(
                "group",
                format!(
                    "member {i} is a {} net on {} images but member 0 is a {} net on {} images; a group trains one architecture (run them in separate groups)",
                    m.net.cfg.label(),
                    m.net.shape,
                    first.net.cfg.label(),
                    first.net.shape
                ),
            ));
        }
        if m.n == 0 || m.x.len() != m.n * m.net.shape.len() {
            return Err(Error::invalid(
                "group",
                format!(
                    "member {i} has {} input values for {} images of {} ({} expected)",
                    m.x.len(),
                    m.n,
                    m.net.shape,
                    m.n * m.net.shape.len()
                ),
            ));
        }
        m.cfg.validate()?;
    }
    Ok(())
}

/// Train every member together (see the module docs). `eng` supplies the threads the members
/// are spread over and the convolution algorithm; each member computes on one thread.
/// `progress(member, step, loss)` is called after every loss evaluation; returning `false` stops
/// that member with [`Error::Interrupted`]. Returns one outcome per member, in order; each
/// outcome's `wall_s` is the group's time until that member stopped.
pub fn train_group<T: Float>(
    eng: &Engine,
    members: Vec<Member<'_, T>>,
    progress: &(dyn Fn(usize, u64, f64) -> bool + Sync),
) -> Result<Vec<Result<TrainOutcome>>> {
    check(&members)?;
    let serial = Engine::new(1)?.with_conv_algo(eng.conv_algo());
    /// A member's trainer and, once it stopped, how and when.
    struct Slot<'a, T: Float> {
        index: usize,
        trainer: Option<Trainer<'a, T>>,
        end: Option<(Result<Status>, f64)>,
    }
    let mut slots: Vec<Slot<'_, T>> = members
        .into_iter()
        .enumerate()
        .map(|(index, m)| {
            let opt = Optimizer::<T>::new(m.cfg, m.net.num_params());
            Slot { index, trainer: Some(Trainer::new(m.net, m.x, m.n, m.cfg, opt)), end: None }
        })
        .collect();
    let t0 = Instant::now();
    eng.install(|| {
        while slots.iter().any(|s| s.end.is_none()) {
            slots.par_iter_mut().filter(|s| s.end.is_none()).for_each(|s| {
                let index = s.index;
                let t = s.trainer.as_mut().expect("a running member has its trainer");
                let r = t.advance(&serial, &mut |step, loss| progress(index, step, loss));
                match r {
                    Ok(None) => {}
                    Ok(Some(status)) => s.end = Some((Ok(status), t0.elapsed().as_secs_f64())),
                    Err(e) => s.end = Some((Err(e), t0.elapsed().as_secs_f64())),
                }
            });
        }
    });
    Ok(slots
        .into_iter()
        .map(|s| {
            let (end, wall) = s.end.expect("every member stopped");
            let trainer = s.trainer.expect("every member has its trainer");
            end.map(|status| trainer.outcome(status, wall))
        })
        .collect())
}
