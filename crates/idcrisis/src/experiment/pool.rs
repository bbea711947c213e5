//! A local worker pool over a planned sweep: `jobs` workers, each running one unit at a time with
//! `threads` compute threads, until no cell is left. A unit is one cell, or up to `group` cells of
//! one architecture trained together ([`sweep::run_cells`], bit-identical to running them one by
//! one). Safe beside other runners on the same directory (each cell is claimed with a file lock).

use crate::engine::default_threads;
use crate::error::Result;
use crate::experiment::sweep::{self, CellOutcome, CellState};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How many workers and threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolOptions {
    /// Workers [default: cores / threads].
    pub jobs: Option<usize>,
    /// Compute threads per worker [default: cores / jobs, or 1].
    pub threads_per_worker: Option<usize>,
    /// Run cells that failed before too.
    pub retry_failed: bool,
    /// Most cells trained together as one group [default: 1, each cell alone].
    pub group: Option<usize>,
}

/// Counts while the pool runs, passed to the progress callback after every cell.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Cells this pool will run.
    pub todo: usize,
    /// Finished (done or failed) so far.
    pub finished: usize,
    /// Done so far.
    pub done: usize,
    /// Failed so far.
    pub failed: usize,
    /// Being run now.
    pub running: usize,
}

/// What the pool did.
#[derive(Debug, Clone, Default)]
pub struct PoolReport {
    /// Cells it set out to run.
    pub todo: usize,
    /// Cells already done before it started.
    pub already_done: usize,
    /// Workers used.
    pub jobs: usize,
    /// Threads per worker.
    pub threads: usize,
    /// Cores of this machine.
    pub cores: usize,
    /// `(index, message)` of every cell that failed (or could not be run).
    pub failed: Vec<(usize, String)>,
}

/// `(jobs, threads)` for `opts` on `cores` cores and `todo` cells.
pub fn workers(opts: &PoolOptions, cores: usize, todo: usize) -> (usize, usize) {
    let (jobs, threads) = match (opts.jobs, opts.threads_per_worker) {
        (Some(j), Some(t)) => (j.max(1), t.max(1)),
        (Some(j), None) => (j.max(1), (cores / j.max(1)).max(1)),
        (None, Some(t)) => ((cores / t.max(1)).max(1), t.max(1)),
        (None, None) => (cores, 1),
    };
    (jobs.min(todo.max(1)), threads)
}

/// Run every cell of the sweep in `dir` that is not done (and the failed ones with
/// `retry_failed`). `start(&report)` is called once the plan is read, before any cell runs;
/// `progress` after every cell.
pub fn run(
    dir: &Path,
    data_dir: &Path,
    opts: &PoolOptions,
    start: &mut dyn FnMut(&PoolReport),
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<PoolReport> {
    let plan = sweep::load_plan(dir)?;
    let mut already_done = 0;
    let todo: Vec<&sweep::Cell> = plan
        .iter()
        .filter(|c| match sweep::state(dir, c) {
            CellState::Done => {
                already_done += 1;
                false
            }
            CellState::Failed => opts.retry_failed,
            CellState::Missing => true,
        })
        .collect();
    let cores = default_threads();
    let units = units(&todo, opts.group.unwrap_or(1));
    let (jobs, threads) = workers(opts, cores, units.len());
    let mut report = PoolReport { todo: todo.len(), already_done, jobs, threads, cores, failed: Vec::new() };
    start(&report);
    let next = AtomicUsize::new(0);
    let counts = Mutex::new(Progress { todo: todo.len(), ..Progress::default() });
    let failed = Mutex::new(Vec::new());
    let lock = |m: &Mutex<Progress>| *m.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(unit) = units.get(k) else { break };
                counts.lock().unwrap_or_else(|e| e.into_inner()).running += unit.len();
                let outs: Vec<Result<CellOutcome>> = match unit.as_slice() {
                    [cell] => vec![sweep::run_cell(dir, cell, data_dir, Some(threads), opts.retry_failed)],
                    cells => sweep::run_cells(dir, cells, data_dir, threads, opts.retry_failed),
                };
                for (cell, out) in unit.iter().zip(outs) {
                    let error = match out {
                        Ok(CellOutcome::Failed(msg)) => Some(msg),
                        Ok(_) => None,
                        Err(e) => Some(e.to_string()),
                    };
                    {
                        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                        c.running -= 1;
                        c.finished += 1;
                        match &error {
                            Some(_) => c.failed += 1,
                            None => c.done += 1,
                        }
                    }
                    if let Some(m) = error {
                        failed.lock().unwrap_or_else(|e| e.into_inner()).push((cell.index, m));
                    }
                    progress(lock(&counts));
                }
            });
        }
    });
    report.failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    report.failed.sort_by_key(|f| f.0);
    Ok(report)
}

/// The cells in units of at most `group` cells that may train together: cells whose configs
/// agree on everything that fixes the network (model, precision, convolution algorithm, image
/// view and canvas), units in the plan order of their first cell. With `group` ≤ 1, one unit per
/// cell in plan order. A unit that still mixes architectures (e.g. two data sets of different
/// shapes) is split correctly by [`crate::experiment::run::execute_group`].
pub fn units<'a>(cells: &[&'a sweep::Cell], group: usize) -> Vec<Vec<&'a sweep::Cell>> {
    if group <= 1 {
        return cells.iter().map(|&c| vec![c]).collect();
    }
    let key = |c: &sweep::Cell| {
        let k = &c.config;
        serde_json::json!([k.model, k.dtype, k.conv_algo, k.gray, k.canvas, k.canvas_at, k.train_set.is_some()]).to_string()
    };
    let mut order: Vec<String> = Vec::new();
    let mut by_key: std::collections::HashMap<String, Vec<&'a sweep::Cell>> = std::collections::HashMap::new();
    for &c in cells {
        let k = key(c);
        if !by_key.contains_key(&k) {
            order.push(k.clone());
        }
        by_key.entry(k).or_default().push(c);
    }
    let mut out = Vec::new();
    for k in order {
        for chunk in by_key[&k].chunks(group) {
            out.push(chunk.to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_split_the_cores() {
        let o = |j, t| PoolOptions { jobs: j, threads_per_worker: t, retry_failed: false, group: None };
        assert_eq!(workers(&o(None, None), 8, 100), (8, 1));
        assert_eq!(workers(&o(Some(2), None), 8, 100), (2, 4));
        assert_eq!(workers(&o(None, Some(4)), 8, 100), (2, 4));
        assert_eq!(workers(&o(Some(3), Some(3)), 8, 100), (3, 3));
        // Never more workers than cells.
        assert_eq!(workers(&o(None, None), 8, 3), (3, 1));
        assert_eq!(workers(&o(None, None), 8, 0), (1, 1));
    }

    #[test]
    fn units_keep_plan_order_alone_and_gather_one_architecture_in_groups() {
        // Plan: depth 1 seed 0, depth 2 seed 0, depth 1 seed 1, depth 2 seed 1, depth 1 seed 2.
        let cells: Vec<sweep::Cell> = [(1, 0), (2, 0), (1, 1), (2, 1), (1, 2)]
            .iter()
            .enumerate()
            .map(|(index, &(depth, seed))| {
                let mut config = crate::RunConfig::default();
                config.model.depth = depth;
                config.seed = seed;
                sweep::Cell { index, id: format!("c{index}"), vary: Default::default(), config }
            })
            .collect();
        let refs: Vec<&sweep::Cell> = cells.iter().collect();
        let idx = |u: Vec<Vec<&sweep::Cell>>| u.iter().map(|g| g.iter().map(|c| c.index).collect::<Vec<_>>()).collect::<Vec<_>>();
        assert_eq!(idx(units(&refs, 1)), vec![vec![0], vec![1], vec![2], vec![3], vec![4]]);
        assert_eq!(idx(units(&refs, 0)), vec![vec![0], vec![1], vec![2], vec![3], vec![4]]);
        assert_eq!(idx(units(&refs, 2)), vec![vec![0, 2], vec![4], vec![1, 3]]);
        assert_eq!(idx(units(&refs, 8)), vec![vec![0, 2, 4], vec![1, 3]]);
    }
}
