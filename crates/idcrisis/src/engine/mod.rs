//! Compute kernels: the only code that does raw numerics on buffers.
//!
//! Everything the layers and optimizers need goes through these functions, so a second backend
//! (CUDA) can provide the same small set: [`gemm()`] and [`gemm_batch`], [`im2col`], [`col2im`],
//! the [`winograd`] convolution, [`transpose()`], bias broadcast and reduction, ReLU
//! forward/backward, and the optimizer updates in [`crate::nn::optim`] via [`for_each_chunk`].
//!
//! All kernels work on row-major buffers (contiguous, except the strided views of
//! [`gemm_batch`]). They never allocate. Reductions run in a fixed order, so results are
//! bit-identical for a fixed thread count.
//!
//! One file per kind of kernel; every public item is re-exported here, so callers name it
//! `engine::X`:
//!
//! * `gemm.rs`: matrix products, [`gemm()`] (`C [m, n] (+)= op(A)·op(B)`, with [`Trans`] and
//!   [`Acc`]) and [`gemm_batch`] (a batch of products laid out by [`Strides`]);
//!   `gemm_small.rs`: the kernel [`gemm_batch`] runs for small f32 products (at most 64
//!   columns), the per-ξ GEMMs of Winograd layers up to 64 channels and the blocks of every
//!   Winograd kernel transform (which skip the transform matrix's structural zeros, the same
//!   bits: `gemm_small::Sparsity`).
//! * `conv.rs`: convolution geometry and the im2col path: [`ConvAlgo`], [`Padding`],
//!   [`ConvGeom`], [`im2col`] / [`col2im`] (`[c, h, w]` ↔ `[c·k·k, h·w]`).
//! * [`direct`]: the direct convolution for small channel counts (padded copy, weights
//!   arranged tap-major, output rows in registers).
//! * [`winograd`]: the Winograd convolution (plan, transform matrices, vectorised transforms).
//! * `transpose.rs`: [`transpose()`] of a batch of matrices (`[count, rows, cols]` →
//!   `[count, cols, rows]`).
//! * `elementwise.rs`: [`for_each_chunk`], ReLU, bias broadcast ([`fill_rows`]) and bias
//!   reductions ([`sum_rows_into`], [`sum_cols_into`]).
//! * `team.rs`: the fork-join team every kernel's parallel region runs on
//!   ([`Engine::run_tasks`], [`Engine::par_chunks`], [`Shards`]).
//!
//! This file holds the [`Engine`] they all run on: its threads and the convolution algorithm
//! setting.

mod conv;
pub mod direct;
mod elementwise;
mod gemm;
mod gemm_small;
mod team;
mod transpose;
pub mod winograd;

pub use self::conv::{col2im, im2col, tap_table, ConvAlgo, ConvGeom, Padding, WINOGRAD_MIN_CHANNELS};
pub use self::elementwise::{fill_rows, for_each_chunk, relu_backward, relu_forward, sum_cols_into, sum_rows_into, widest};
use self::gemm::gemm_batch_skipping;
pub use self::gemm::{gemm, gemm_batch, Acc, Strides, Trans};
use self::gemm_small::Sparsity;
pub use self::team::Shards;
pub use self::transpose::transpose;

use crate::error::{Error, Result};

/// Elementwise work below this many elements runs on the calling thread.
const PAR_MIN: usize = 1 << 15;
/// Chunk size for parallel elementwise work.
pub(crate) const PAR_CHUNK: usize = 1 << 13;

/// The compute threads and the convolution algorithm setting.
///
/// The threads come in two sets: the kernels' parallel regions run on a fork-join team
/// (`team.rs`: the calling thread and `threads − 1` helpers that poll for the next region before
/// they sleep). Work spread over independent jobs of uneven length (the nets of a group, each
/// computing on a one-thread engine, and the NTK's kernel rows) runs on a rayon pool of
/// `threads` threads ([`Engine::install`]), started on first use: training, probing and
/// `predict` never start it.
pub struct Engine {
    threads: usize,
    pool: std::sync::OnceLock<rayon::ThreadPool>,
    team: team::Team,
    conv: ConvAlgo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("threads", &self.threads).field("conv", &self.conv).finish()
    }
}

impl Engine {
    /// An engine with `threads` compute threads (0 means all cores).
    pub fn new(threads: usize) -> Result<Self> {
        let threads = if threads == 0 { default_threads() } else { threads };
        let team = team::Team::new(threads).map_err(|e| Error::Other(format!("cannot start {threads} compute threads: {e}")))?;
        Ok(Engine { threads, pool: std::sync::OnceLock::new(), team, conv: ConvAlgo::Auto })
    }

    /// The same engine computing convolutions with `algo`.
    pub fn with_conv_algo(mut self, algo: ConvAlgo) -> Self {
        self.conv = algo;
        self
    }

    /// The convolution algorithm setting.
    pub fn conv_algo(&self) -> ConvAlgo {
        self.conv
    }

    /// Number of compute threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f` inside this engine's rayon pool, for work spread over independent jobs with
    /// rayon's parallel iterators. Kernels do not need it: they run on the team.
    ///
    /// # Panics
    /// If the operating system refuses the pool's threads on this first use (as
    /// `std::thread::spawn` panics).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let threads = self.threads;
        let pool = self.pool.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("idcrisis-{i}"))
                .build()
                .unwrap_or_else(|e| panic!("cannot start {threads} compute threads: {e}"))
        });
        pool.install(f)
    }

    /// Run `f(i)` for every `i < tasks` on the engine's threads (the caller's included); returns
    /// when all have run. Which thread runs a task varies, so `f(i)` must not depend on it. On one
    /// thread, or called from inside a task, the tasks run in order on the calling thread.
    pub fn run_tasks(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        self.team.run(tasks, f)
    }

    /// Run `f(i, chunk)` for every chunk of `x` cut into `chunk` elements (the last may be
    /// shorter), on the engine's threads ([`Engine::run_tasks`]).
    pub fn par_chunks<T: Send>(&self, x: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
        let s = Shards::new(x, chunk);
        // SAFETY: run_tasks runs each index once.
        self.run_tasks(s.count(), &|i| f(i, unsafe { s.chunk(i) }));
    }

    /// [`Engine::par_chunks`] when `work` (the elements the whole call touches) is worth
    /// spreading over the threads (at least 2¹⁵ elements, and more than one thread); otherwise
    /// the same chunks, in order, on the calling thread.
    pub fn chunks<T: Send>(&self, work: usize, x: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
        if self.parallel(work) {
            self.par_chunks(x, chunk, f);
        } else {
            x.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
        }
    }

    /// Whether elementwise work on `len` elements is worth spreading over the threads: the rule
    /// of [`Engine::chunks`], [`for_each_chunk`] and the optimizers' updates. (`gemm` and the
    /// direct convolution cut their work by rules of their own.)
    pub(crate) fn parallel(&self, len: usize) -> bool {
        self.threads > 1 && len >= PAR_MIN
    }
}

/// All cores the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::model::{Arch, Init, ModelConfig, Net};
    use crate::nn::train::{train, TrainConfig};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `chunks` gives every chunk, once and with its index, on the team (`work` at the threshold,
    /// more than one thread) and on the calling thread alone; below the threshold every chunk
    /// runs on the calling thread, whatever the length of `x`.
    #[test]
    fn chunks_visit_each_chunk_once_with_its_index() {
        let caller = std::thread::current().id();
        for threads in [1, 2, 3] {
            let eng = Engine::new(threads).unwrap();
            for (len, chunk) in [(0, 4), (10, 3), (PAR_MIN + 5, 7), (2 * PAR_MIN, PAR_CHUNK)] {
                for work in [len, PAR_MIN - 1, PAR_MIN] {
                    let mut x = vec![0usize; len];
                    let elsewhere = AtomicBool::new(false);
                    eng.chunks(work, &mut x, chunk, |i, c| {
                        c.iter_mut().for_each(|v| *v += i + 1);
                        elsewhere.fetch_or(std::thread::current().id() != caller, Ordering::Relaxed);
                    });
                    let at = format!("threads {threads}, len {len}, chunk {chunk}, work {work}");
                    for (j, v) in x.iter().enumerate() {
                        assert_eq!(*v, j / chunk + 1, "{at}: element {j}");
                    }
                    if !eng.parallel(work) {
                        assert!(!elsewhere.load(Ordering::Relaxed), "{at}: a chunk ran on another thread");
                    }
                }
            }
        }
    }

    /// Above the threshold, with two threads, the helper takes part: within a few seconds of
    /// repeated calls some chunk runs on a thread other than the caller's.
    #[test]
    fn chunks_above_the_threshold_run_on_the_team() {
        let caller = std::thread::current().id();
        let eng = Engine::new(2).unwrap();
        let mut x = vec![0u64; 4 * PAR_MIN];
        let start = std::time::Instant::now();
        let shared = loop {
            let elsewhere = AtomicBool::new(false);
            eng.chunks(x.len(), &mut x, 64, |i, c| {
                c.iter_mut().for_each(|v| *v = v.wrapping_mul(31).wrapping_add(i as u64));
                elsewhere.fetch_or(std::thread::current().id() != caller, Ordering::Relaxed);
            });
            if elsewhere.into_inner() || start.elapsed().as_secs() >= 5 {
                break start.elapsed().as_secs() < 5;
            }
        };
        assert!(shared, "5 s of calls above the threshold ran every chunk on the calling thread");
    }

    /// Training and `predict` (its one-lane-per-thread split included) run on the team alone:
    /// the rayon pool starts on the first `install`, not before.
    #[test]
    fn rayon_pool_starts_only_on_install() {
        let eng = Engine::new(2).unwrap();
        let x = vec![0.5f32; crate::Shape::MNIST.len()];
        for cfg in [
            ModelConfig { arch: Arch::Cnn, depth: 3, channels: 16, kernel: 3, ..Default::default() },
            ModelConfig { arch: Arch::Fcn, depth: 2, width: Some(64), ..Default::default() },
        ] {
            let mut net = Net::<f32>::new(&cfg, crate::Shape::MNIST).unwrap();
            net.init(Init::TorchDefault, 1.0, 1);
            let tc = TrainConfig { steps: 2, tol: 0.0, ..Default::default() };
            train(&eng, &mut net, &x, 1, &tc, &mut |_, _| true).unwrap();
            // Six inputs split over both threads, then one input on `eng` itself.
            assert_eq!(net.predict(&eng, &x.repeat(6), 6, 2).len(), 6 * x.len());
            assert_eq!(net.predict(&eng, &x, 1, 1).len(), x.len());
        }
        assert!(eng.pool.get().is_none(), "training or predict started the rayon pool");
        assert_eq!(eng.install(rayon::current_num_threads), 2);
        assert!(eng.pool.get().is_some());
    }
}
