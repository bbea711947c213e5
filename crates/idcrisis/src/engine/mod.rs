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
const PAR_CHUNK: usize = 1 << 13;

/// The compute threads and the convolution algorithm setting.
///
/// The threads come in two sets: the kernels' parallel regions run on a fork-join team
/// (`team.rs`: the calling thread and `threads − 1` helpers that poll for the next region before
/// they sleep), and work spread over independent jobs (nets of a group, batches of `predict`,
/// each computing on a one-thread engine) runs on a rayon pool of `threads` threads
/// ([`Engine::install`]).
pub struct Engine {
    threads: usize,
    pool: rayon::ThreadPool,
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
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("idcrisis-{i}"))
            .build()
            .map_err(|e| Error::Other(format!("cannot start {threads} compute threads: {e}")))?;
        let team = team::Team::new(threads).map_err(|e| Error::Other(format!("cannot start {threads} compute threads: {e}")))?;
        Ok(Engine { threads, pool, team, conv: ConvAlgo::Auto })
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
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
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

    /// Whether elementwise work on `len` elements is worth spreading over the pool.
    pub(crate) fn parallel(&self, len: usize) -> bool {
        self.threads > 1 && len >= PAR_MIN
    }
}

/// All cores the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
