//! Many nets of one architecture trained together: one lockstep step over S weight sets.
//!
//! A sweep's cells often differ only in seed, training image, learning rate or optimizer on one
//! architecture. [`train_group_with`] takes S such nets (each with its own inputs, [`TrainConfig`]
//! and optimizer state) and trains them together, each net computed by a one-thread engine, the
//! nets spread over the engine's threads, in one of two orders ([`Schedule`]): group steps
//! (one [`Trainer::advance`] of each net still training, then the next: the batched step) or each
//! net to its end. A net stops when its own stopping rule fires (converged, max-steps, diverged,
//! interrupted); the others go on.
//!
//! **Bit-identity.** Each net runs exactly the step of [`crate::nn::train::train`] with a
//! one-thread engine, so its weights, losses, step count and status are bit-identical to training
//! it alone with one thread (and the kernels' results do not depend on the thread count: see the
//! `group` tests).
//!
//! **What it is for.** The group is the unit a batched backend works on: the step loop here does
//! not look inside the kernels, only at [`Trainer`]; a GPU backend would replace the lockstep's
//! per-net steps by one batched launch per layer. On a CPU, where S different weight sets share
//! no operand, lockstep only adds cache traffic (see [`Schedule`] and BENCHMARKS.md), so runs
//! use [`Schedule::PerNet`].

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

/// In what order a group's steps run. Both give every net the same bits (each net's steps are
/// the same computation, in the same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Group steps: one step of every net still training, then the next. The order a batched
    /// backend computes in (one launch per layer for all S nets). On a CPU it makes every step
    /// stream all S nets' weights through the cache: measured 1.8× slower than `PerNet` for
    /// 784-wide FCNs (memory-bound), the same for 16-channel CNNs.
    Lockstep,
    /// Each net runs all its steps on one thread; the nets are spread over the engine's threads.
    #[default]
    PerNet,
}

/// Train every member together (see the module docs) in [`Schedule::PerNet`] order.
pub fn train_group<T: Float>(
    eng: &Engine,
    members: Vec<Member<'_, T>>,
    progress: &(dyn Fn(usize, u64, f64) -> bool + Sync),
) -> Result<Vec<Result<TrainOutcome>>> {
    train_group_with(eng, members, Schedule::PerNet, progress)
}

/// Train every member together (see the module docs) in `schedule`'s order. `eng` supplies the threads the members
/// are spread over and the convolution algorithm; each member computes on one thread.
/// `progress(member, step, loss)` is called after every loss evaluation; returning `false` stops
/// that member with [`Error::Interrupted`]. Returns one outcome per member, in order; each
/// outcome's `wall_s` runs from that member's first step to its stop (in lockstep, shared with
/// the others).
pub fn train_group_with<T: Float>(
    eng: &Engine,
    members: Vec<Member<'_, T>>,
    schedule: Schedule,
    progress: &(dyn Fn(usize, u64, f64) -> bool + Sync),
) -> Result<Vec<Result<TrainOutcome>>> {
    check(&members)?;
    let serial = Engine::new(1)?.with_conv_algo(eng.conv_algo());
    /// A member's trainer and, once it stopped, how and when.
    struct Slot<'a, T: Float> {
        index: usize,
        trainer: Option<Trainer<'a, T>>,
        started: Option<Instant>,
        end: Option<(Result<Status>, f64)>,
    }
    let mut slots: Vec<Slot<'_, T>> = members
        .into_iter()
        .enumerate()
        .map(|(index, m)| {
            let opt = Optimizer::<T>::new(m.cfg, m.net.num_params());
            Slot { index, trainer: Some(Trainer::new(m.net, m.x, m.n, m.cfg, opt)), started: None, end: None }
        })
        .collect();
    // One step of one member; records how it stopped and its time since its first step.
    let step = |s: &mut Slot<'_, T>| {
        let index = s.index;
        let t0 = *s.started.get_or_insert_with(Instant::now);
        let t = s.trainer.as_mut().expect("a running member has its trainer");
        match t.advance(&serial, &mut |step, loss| progress(index, step, loss)) {
            Ok(None) => {}
            Ok(Some(status)) => s.end = Some((Ok(status), t0.elapsed().as_secs_f64())),
            Err(e) => s.end = Some((Err(e), t0.elapsed().as_secs_f64())),
        }
    };
    eng.install(|| match schedule {
        Schedule::Lockstep => {
            while slots.iter().any(|s| s.end.is_none()) {
                slots.par_iter_mut().filter(|s| s.end.is_none()).for_each(step);
            }
        }
        Schedule::PerNet => slots.par_iter_mut().with_max_len(1).for_each(|s| {
            while s.end.is_none() {
                step(s);
            }
        }),
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
