//! Sweeps: crash-safe grids of runs. A sweep is a directory; a cell is a pure function of
//! (plan, index).
//!
//! ```text
//! DIR/sweep.toml        the sweep file as planned
//! DIR/plan.jsonl        one cell per line: {"index", "id", "vary", "config"}
//! DIR/slurm.sbatch      a Slurm job array over the cells
//! DIR/logs/             Slurm task output (`%A_%a.out`); created by `plan`
//! DIR/cells/<id>/       the run directory of cell <id> (as `idcrisis train` writes it)
//! DIR/cells/<id>/DONE   written last: the cell is complete
//! DIR/cells/<id>/error.json   the cell failed (and why)
//! DIR/cells/<id>.lock   held (flock) while a worker runs the cell
//! ```
//!
//! A sweep file is a run config (the keys of `config.toml`) in which any value may be a list:
//! each list is a grid axis, and the grid is their Cartesian product. `rho`, already a list, is
//! an axis only when given as a list of lists. An optional `[zip]` table holds lists of one common
//! length that vary together (one axis). Cells are ordered with the last axis varying fastest.
//!
//! **Resubmitting on Slurm.** Each array task runs `sweep run-cell`, which skips a cell that
//! failed before (its `error.json` stays) unless given `--retry-failed`. `slurm.sbatch` passes
//! `--retry-failed` when the environment variable [`RETRY_ENV`] (`IDCRISIS_RETRY_FAILED`) is `1`,
//! so a plain `sbatch DIR/slurm.sbatch` never reruns failed cells, while the line that
//! [`resubmit_command`] builds (and `sweep status` prints) for a sweep with failed cells,
//! `sbatch --export=ALL,IDCRISIS_RETRY_FAILED=1 --array=3,17 DIR/slurm.sbatch`, reruns exactly
//! the cells that are not done: the failed ones from scratch, the missing ones as usual. Done
//! cells are never touched (a task for a done cell exits at once).

use crate::error::{Error, Result};
use crate::experiment::config::RunConfig;
use crate::experiment::run::{self, RunOptions};
use crate::fsutil::write_atomic;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Environment variable that makes `slurm.sbatch` pass `--retry-failed` to `run-cell` (when `1`).
pub const RETRY_ENV: &str = "IDCRISIS_RETRY_FAILED";

/// Largest grid accepted without `--force`.
pub const MAX_CELLS: usize = 100_000;

/// One cell of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// Position in the plan, 0-based (the Slurm array index).
    pub index: usize,
    /// Stable id: the first 16 hex digits of the SHA-256 of the cell's full config as JSON.
    pub id: String,
    /// The values of the keys that vary across the sweep, by dotted key.
    pub vary: BTreeMap<String, Json>,
    /// The cell's full run config.
    pub config: RunConfig,
}

/// An axis of the grid: one or more dotted keys and their values, varied together.
#[derive(Debug, Clone)]
struct Axis {
    keys: Vec<String>,
    values: Vec<Vec<toml::Value>>, // values[i][j]: key j at position i
}

fn flatten(prefix: &str, t: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(sub) => flatten(&key, sub, out),
            _ => out.push((key, v.clone())),
        }
    }
}

/// Set the dotted `key` (`model.depth`) in `t`, creating tables on the way. Err (a message naming
/// the key) when a segment on the way already holds a value that is not a table.
fn set_path(t: &mut toml::Table, key: &str, v: toml::Value) -> std::result::Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut cur = t;
    for (i, p) in parts.iter().enumerate() {
        let entry = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| format!("key {key}: {} is not a table", parts[..=i].join(".")))?;
    }
    cur.insert(last.to_string(), v);
    Ok(())
}

/// Keys whose plain value is itself a list.
fn list_valued(key: &str) -> bool {
    key == "rho"
}

fn is_axis(key: &str, v: &toml::Value) -> bool {
    match v {
        toml::Value::Array(a) => !list_valued(key) || a.iter().all(|e| e.is_array()),
        _ => false,
    }
}

/// Expand a sweep file into its cells. `path` is used in messages.
pub fn expand(text: &str, path: &Path, force: bool) -> Result<Vec<Cell>> {
    let cfg_err = |msg: String| Error::Config { path: path.to_path_buf(), msg };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| cfg_err(e.to_string().trim().to_string()))?;
    let zip = match table.remove("zip") {
        None => None,
        Some(toml::Value::Table(z)) => Some(z),
        Some(_) => return Err(cfg_err("[zip] must be a table of lists".into())),
    };
    let mut leaves = Vec::new();
    flatten("", &table, &mut leaves);
    let mut base = toml::Table::new();
    let mut axes = Vec::new();
    for (key, v) in leaves {
        if is_axis(&key, &v) {
            let a = v.as_array().unwrap();
            if a.is_empty() {
                return Err(cfg_err(format!("key {key}: empty list (a grid axis needs at least one value)")));
            }
            axes.push(Axis { keys: vec![key], values: a.iter().map(|x| vec![x.clone()]).collect() });
        } else {
            set_path(&mut base, &key, v).map_err(cfg_err)?;
        }
    }
    if let Some(z) = zip {
        let mut zl = Vec::new();
        flatten("", &z, &mut zl);
        let mut len = None;
        let mut keys = Vec::new();
        let mut cols = Vec::new();
        for (key, v) in zl {
            let a = match v {
                toml::Value::Array(a) => a,
                _ => return Err(cfg_err(format!("zip key {key}: must be a list"))),
            };
            if a.is_empty() {
                return Err(cfg_err(format!("zip key {key}: empty list")));
            }
            if *len.get_or_insert(a.len()) != a.len() {
                return Err(cfg_err(format!("zip key {key}: {} values, but other zip keys have {}", a.len(), len.unwrap())));
            }
            keys.push(key);
            cols.push(a);
        }
        if let Some(n) = len {
            axes.push(Axis { keys, values: (0..n).map(|i| cols.iter().map(|c| c[i].clone()).collect()).collect() });
        }
    }
    let total = axes.iter().try_fold(1usize, |acc, a| acc.checked_mul(a.values.len())).ok_or_else(|| {
        cfg_err(format!("the grid has more than {MAX_CELLS} cells (more than 2^64: its size overflows); it cannot be planned"))
    })?;
    if total > MAX_CELLS && !force {
        return Err(cfg_err(format!("the grid has {total} cells, more than {MAX_CELLS}; pass --force to plan it anyway")));
    }
    let mut cells = Vec::with_capacity(total.min(MAX_CELLS));
    let mut pos = vec![0usize; axes.len()];
    for index in 0..total {
        // Mixed-radix position, last axis fastest.
        let mut rem = index;
        for (i, a) in axes.iter().enumerate().rev() {
            pos[i] = rem % a.values.len();
            rem /= a.values.len();
        }
        let mut t = base.clone();
        let mut vary = BTreeMap::new();
        for (a, &p) in axes.iter().zip(&pos) {
            for (k, v) in a.keys.iter().zip(&a.values[p]) {
                set_path(&mut t, k, v.clone()).map_err(cfg_err)?;
                vary.insert(k.clone(), serde_json::to_value(v).unwrap_or(Json::Null));
            }
        }
        let mut config: RunConfig =
            RunConfig::deserialize(toml::Value::Table(t)).map_err(|e| cfg_err(format!("cell {index}: {}", e.to_string().trim())))?;
        config.validate().map_err(|e| cfg_err(format!("cell {index} ({}): {e}", describe(&vary))))?;
        // The FCN width a data set implies, so that the id names what the cell trains.
        config.resolve_static().map_err(|e| cfg_err(format!("cell {index} ({}): {e}", describe(&vary))))?;
        let id = cell_id(&config);
        cells.push(Cell { index, id, vary, config });
    }
    Ok(cells)
}

fn describe(vary: &BTreeMap<String, Json>) -> String {
    vary.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// The stable id of a config.
pub fn cell_id(c: &RunConfig) -> String {
    let json = serde_json::to_string(c).unwrap_or_default();
    hex::encode(&Sha256::digest(json.as_bytes())[..8])
}

/// Slurm resources for the generated `slurm.sbatch`.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// Most array tasks running at once (`%K`).
    pub max_parallel: usize,
    /// `--time`, e.g. `01:00:00`.
    pub time: String,
    /// `--mem`, e.g. `4G`.
    pub mem: String,
    /// `--cpus-per-task`.
    pub cpus: usize,
    /// Extra `#SBATCH` lines (e.g. `--partition=debug`).
    pub extra: Vec<String>,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions { max_parallel: 50, time: "04:00:00".into(), mem: "4G".into(), cpus: 2, extra: Vec::new() }
    }
}

/// What `plan` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    /// A new plan was written.
    Written(usize),
    /// The same sweep file was already planned there: nothing changed.
    Unchanged(usize),
}

/// Plan `sweep_file` into `dir`: `sweep.toml`, `plan.jsonl`, `slurm.sbatch`. Re-planning the same
/// file is a no-op; a different file is refused unless `force` (which never deletes cells).
pub fn plan(sweep_file: &Path, dir: &Path, force: bool, slurm: &SlurmOptions, exe: &Path, data_dir: &Path) -> Result<PlanOutcome> {
    let text = std::fs::read_to_string(sweep_file).map_err(|e| Error::io(sweep_file, e))?;
    plan_text(&text, sweep_file, dir, force, slurm, exe, data_dir)
}

/// [`plan`] from the sweep file's text; `path` names it in messages.
pub fn plan_text(
    text: &str,
    path: &Path,
    dir: &Path,
    force: bool,
    slurm: &SlurmOptions,
    exe: &Path,
    data_dir: &Path,
) -> Result<PlanOutcome> {
    let text = text.to_string();
    let cells = expand(&text, path, force)?;
    let old = dir.join("sweep.toml");
    if old.is_file() {
        let prev = std::fs::read_to_string(&old).map_err(|e| Error::io(&old, e))?;
        if prev == text && dir.join("plan.jsonl").is_file() {
            // Plans written before logs/ was created by `plan` get it now.
            create_logs(dir)?;
            return Ok(PlanOutcome::Unchanged(cells.len()));
        }
        if !force {
            return Err(Error::invalid(
                "force",
                format!("{} already holds a plan from a different sweep file; use another --out, or --force to re-plan (finished cells are kept)", dir.display()),
            ));
        }
    }
    std::fs::create_dir_all(dir.join("cells")).map_err(|e| Error::io(dir, e))?;
    create_logs(dir)?;
    let mut lines = String::with_capacity(cells.len() * 512);
    for c in &cells {
        lines.push_str(&serde_json::to_string(c).map_err(|e| Error::Other(e.to_string()))?);
        lines.push('\n');
    }
    write_atomic(&dir.join("plan.jsonl"), lines.as_bytes())?;
    write_atomic(&dir.join("slurm.sbatch"), sbatch(dir, cells.len(), slurm, exe, data_dir).as_bytes())?;
    write_atomic(&old, text.as_bytes())?;
    Ok(PlanOutcome::Written(cells.len()))
}

/// `DIR/logs`, where Slurm writes each task's output: Slurm does not create it, and a task whose
/// `--output` directory is missing dies before running anything.
fn create_logs(dir: &Path) -> Result<()> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The job-array script. Paths are absolute, so it runs the same wherever it is submitted from.
pub fn sbatch(dir: &Path, n: usize, s: &SlurmOptions, exe: &Path, data_dir: &Path) -> String {
    let dir = abs(dir);
    let mut out = String::from("#!/bin/bash\n");
    out += &format!("#SBATCH --job-name=idcrisis-{}\n", dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
    out += &format!("#SBATCH --array=0-{}%{}\n", n.saturating_sub(1), s.max_parallel.max(1));
    out += &format!("#SBATCH --time={}\n#SBATCH --mem={}\n#SBATCH --cpus-per-task={}\n", s.time, s.mem, s.cpus);
    out += &format!("#SBATCH --chdir={}\n#SBATCH --output={}/logs/%A_%a.out\n", dir.display(), dir.display());
    for e in &s.extra {
        out += &format!("#SBATCH {e}\n");
    }
    out += &format!(
        "# Generated by `idcrisis sweep plan`. Resubmit only some cells with: sbatch --array=3,17 {d}/slurm.sbatch\n\
         # and rerun failed cells too with: sbatch --export=ALL,{RETRY_ENV}=1 --array=3,17 {d}/slurm.sbatch\n",
        d = dir.display()
    );
    out += &format!("retry=()\nif [ \"${{{RETRY_ENV}:-}}\" = 1 ]; then retry=(--retry-failed); fi\n");
    out += &format!(
        "exec '{}' --data-dir '{}' sweep run-cell '{}' --index \"$SLURM_ARRAY_TASK_ID\" --threads \"${{SLURM_CPUS_PER_TASK:-1}}\" \"${{retry[@]}}\"\n",
        abs(exe).display(),
        abs(data_dir).display(),
        dir.display()
    );
    out
}

/// Read `plan.jsonl`.
pub fn load_plan(dir: &Path) -> Result<Vec<Cell>> {
    let p = dir.join("plan.jsonl");
    let text = std::fs::read_to_string(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::invalid("dir", format!("{} has no plan.jsonl; run `idcrisis sweep plan` first", dir.display()))
        } else {
            Error::io(&p, e)
        }
    })?;
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::bad_data(&p, format!("line {}: {e}", i + 1))))
        .collect()
}

/// State of a cell on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellState {
    /// `DONE` present.
    Done,
    /// `error.json` present (and no `DONE`).
    Failed,
    /// Neither (never run, running, or killed).
    Missing,
}

/// The cell directory.
pub fn cell_dir(dir: &Path, c: &Cell) -> PathBuf {
    dir.join("cells").join(&c.id)
}

/// State of one cell.
pub fn state(dir: &Path, c: &Cell) -> CellState {
    let d = cell_dir(dir, c);
    if d.join("DONE").is_file() {
        CellState::Done
    } else if d.join("error.json").is_file() {
        CellState::Failed
    } else {
        CellState::Missing
    }
}

/// What `run_cell` did.
#[derive(Debug, Clone, PartialEq)]
pub enum CellOutcome {
    /// The cell was already done.
    AlreadyDone,
    /// Another worker holds the cell's lock.
    Busy,
    /// The cell had failed before and `retry_failed` was off.
    SkippedFailed,
    /// The cell ran and is now done.
    Done,
    /// The cell ran and failed; the message is also in `error.json`.
    Failed(String),
}

/// Run one cell: take its lock, clear any partial attempt, train, write `DONE` last. On failure,
/// write `error.json`. Never touches anything outside `DIR/cells/`.
pub fn run_cell(dir: &Path, c: &Cell, data_dir: &Path, threads: Option<usize>, retry_failed: bool) -> Result<CellOutcome> {
    let claim = match claim(dir, c, retry_failed)? {
        Claim::Taken(claim) => claim,
        Claim::Not(outcome) => return Ok(outcome),
    };
    let mut cfg = c.config.clone();
    if let Some(t) = threads {
        cfg.threads = t;
    }
    let result = run::execute(&cfg, RunOptions { data_dir: data_dir.to_path_buf(), out: claim.dir.clone(), progress: &mut |_, _| true });
    settle(c, &claim, result)
}

/// Run several cells as one group ([`run::execute_group`]): the ones of one architecture train
/// together over `threads` threads, each net on one thread, bit-identical to [`run_cell`] with one
/// thread; the rest run alone. Each cell is claimed, settled and written exactly as [`run_cell`]
/// does it, on its own: an error with one cell (a lock it cannot take, a write that fails) is that
/// cell's result and the others go on. One result per cell, in order.
pub fn run_cells(dir: &Path, cells: &[&Cell], data_dir: &Path, threads: usize, retry_failed: bool) -> Vec<Result<CellOutcome>> {
    let mut outcomes: Vec<Option<Result<CellOutcome>>> = cells.iter().map(|_| None).collect();
    let mut claimed = Vec::new();
    for (k, c) in cells.iter().enumerate() {
        match claim(dir, c, retry_failed) {
            Ok(Claim::Taken(claim)) => claimed.push((k, claim)),
            Ok(Claim::Not(o)) => outcomes[k] = Some(Ok(o)),
            Err(e) => outcomes[k] = Some(Err(e)),
        }
    }
    let runs: Vec<(RunConfig, PathBuf)> = claimed.iter().map(|(k, cl)| (cells[*k].config.clone(), cl.dir.clone())).collect();
    let results = run::execute_group(&runs, data_dir, threads);
    for ((k, claim), result) in claimed.iter().zip(results) {
        outcomes[*k] = Some(settle(cells[*k], claim, result));
    }
    outcomes.into_iter().map(|o| o.unwrap_or(Ok(CellOutcome::Busy))).collect()
}

/// A cell this process holds: its lock (released when dropped, also on kill -9) and its
/// directory, cleared of any partial attempt.
struct Claimed {
    _lock: File,
    dir: PathBuf,
}

enum Claim {
    Taken(Claimed),
    Not(CellOutcome),
}

/// Take the cell's lock unless another worker holds it or the cell needs no run.
fn claim(dir: &Path, c: &Cell, retry_failed: bool) -> Result<Claim> {
    let cells = dir.join("cells");
    std::fs::create_dir_all(&cells).map_err(|e| Error::io(&cells, e))?;
    let lock_path = cells.join(format!("{}.lock", c.id));
    let lock = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Claim::Not(CellOutcome::Busy)),
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
    }
    match state(dir, c) {
        CellState::Done => return Ok(Claim::Not(CellOutcome::AlreadyDone)),
        CellState::Failed if !retry_failed => return Ok(Claim::Not(CellOutcome::SkippedFailed)),
        _ => {}
    }
    let cd = cell_dir(dir, c);
    if cd.exists() {
        // A partial attempt (killed or failed): start it over.
        std::fs::remove_dir_all(&cd).map_err(|e| Error::io(&cd, e))?;
    }
    Ok(Claim::Taken(Claimed { _lock: lock, dir: cd }))
}

/// Mark a claimed cell from its run's result: `DONE` last, or `error.json` (a diverged run is a
/// failed cell).
fn settle(c: &Cell, claim: &Claimed, result: Result<run::RunResult>) -> Result<CellOutcome> {
    let outcome = match result {
        Ok(r) if r.status == crate::nn::train::Status::Diverged => {
            Err(format!("training diverged after {} steps (loss NaN or infinite)", r.steps))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    let cd = &claim.dir;
    match outcome {
        Ok(()) => {
            write_atomic(&cd.join("DONE"), b"")?;
            Ok(CellOutcome::Done)
        }
        Err(msg) => {
            let j = serde_json::json!({"index": c.index, "id": c.id, "error": msg, "vary": c.vary});
            write_atomic(&cd.join("error.json"), serde_json::to_string_pretty(&j).unwrap_or_default().as_bytes())?;
            Ok(CellOutcome::Failed(msg))
        }
    }
}

/// Counts and the not-done indices.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Cells in the plan.
    pub total: usize,
    /// Done cells.
    pub done: usize,
    /// Failed cells.
    pub failed: usize,
    /// Neither done nor failed.
    pub missing: usize,
    /// Indices of failed cells.
    pub failed_indices: Vec<usize>,
    /// Indices of not-done cells (failed and missing), ascending.
    pub not_done: Vec<usize>,
}

/// Status of every cell.
pub fn status(dir: &Path) -> Result<Status> {
    let plan = load_plan(dir)?;
    let mut s = Status { total: plan.len(), done: 0, failed: 0, missing: 0, failed_indices: Vec::new(), not_done: Vec::new() };
    for c in &plan {
        match state(dir, c) {
            CellState::Done => s.done += 1,
            CellState::Failed => {
                s.failed += 1;
                s.failed_indices.push(c.index);
                s.not_done.push(c.index);
            }
            CellState::Missing => {
                s.missing += 1;
                s.not_done.push(c.index);
            }
        }
    }
    Ok(s)
}

/// `--array=3,17,42`, with runs compressed (`0-9`).
pub fn array_spec(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if j > i { format!("{}-{}", indices[i], indices[j]) } else { indices[i].to_string() });
        i = j + 1;
    }
    format!("--array={}", parts.join(","))
}

/// The `sbatch` line that runs every cell of `s` not yet done, or `None` when all are done. With
/// failed cells it sets [`RETRY_ENV`], so that they run again instead of being skipped.
pub fn resubmit_command(dir: &Path, s: &Status) -> Option<String> {
    if s.not_done.is_empty() {
        return None;
    }
    let export = if s.failed > 0 { format!("--export=ALL,{RETRY_ENV}=1 ") } else { String::new() };
    Some(format!("sbatch {export}{} {}", array_spec(&s.not_done), dir.join("slurm.sbatch").display()))
}

/// One row of `collect`: the varying keys, then every metric, flattened.
pub type Row = BTreeMap<String, Json>;

/// Rows of every done cell (in plan order), the column order, and how many cells were skipped.
pub fn collect(dir: &Path) -> Result<(Vec<String>, Vec<Row>, usize)> {
    let plan = load_plan(dir)?;
    let mut vary_keys: Vec<String> = plan.iter().flat_map(|c| c.vary.keys().cloned()).collect();
    vary_keys.sort();
    vary_keys.dedup();
    let mut rows = Vec::new();
    let mut metric_keys: Vec<String> = Vec::new();
    let mut skipped = 0;
    for c in &plan {
        if state(dir, c) != CellState::Done {
            skipped += 1;
            continue;
        }
        let p = cell_dir(dir, c).join("result.json");
        let j: Json = serde_json::from_slice(&crate::fsutil::read(&p)?).map_err(|e| Error::bad_data(&p, e.to_string()))?;
        let mut row = Row::new();
        row.insert("index".into(), c.index.into());
        row.insert("id".into(), c.id.clone().into());
        for (k, v) in &c.vary {
            row.insert(k.clone(), v.clone());
        }
        let mut metrics = BTreeMap::new();
        for k in ["status", "steps", "initial_loss", "final_loss", "train_seconds", "ms_per_step", "seed", "threads", "params"] {
            metrics.insert(k.to_string(), j[k].clone());
        }
        if let Some(cats) = j["evaluation"]["categories"].as_object() {
            for (cat, s) in cats {
                if let Some(o) = s.as_object() {
                    for (m, v) in o {
                        metrics.insert(format!("{cat}.{m}"), v.clone());
                    }
                }
            }
        }
        metrics.insert("train_mse".into(), j["evaluation"]["train_mse"].clone());
        if metric_keys.is_empty() {
            metric_keys = metrics.keys().cloned().collect();
        }
        row.extend(metrics);
        rows.push(row);
    }
    let mut cols = vec!["index".to_string(), "id".to_string()];
    cols.extend(vary_keys);
    cols.extend(metric_keys);
    Ok((cols, rows, skipped))
}

/// Render rows as CSV (RFC 4180 quoting).
pub fn to_csv(cols: &[String], rows: &[Row]) -> String {
    let cell = |v: Option<&Json>| -> String {
        let s = match v {
            None | Some(Json::Null) => String::new(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = cols.join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&cols.iter().map(|c| cell(r.get(c))).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}
