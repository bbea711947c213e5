//! `idcrisis sweep plan|run-cell|run|status|collect`.

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use idcrisis::experiment::pool;
use idcrisis::experiment::sweep::{self, CellOutcome, PlanOutcome, SlurmOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Output format of `status`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StatusFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object.
    Json,
}

/// Output format of `collect`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CollectFormat {
    /// Comma-separated, one header line (pandas.read_csv reads it as is).
    Csv,
    /// A JSON array of objects.
    Json,
    /// An aligned text table.
    Table,
}

/// `idcrisis sweep ...`.
#[derive(Subcommand, Debug)]
pub enum SweepCommand {
    /// Expand a sweep file into DIR/plan.jsonl and DIR/slurm.sbatch.
    Plan(PlanArgs),
    /// Run one cell by index (Slurm: $SLURM_ARRAY_TASK_ID; Kubernetes: $JOB_COMPLETION_INDEX).
    RunCell {
        /// Sweep directory.
        dir: PathBuf,
        /// Cell index [default: $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX].
        #[arg(long)]
        index: Option<usize>,
        /// Compute threads for this cell [default: the cell's config].
        #[arg(long)]
        threads: Option<usize>,
        /// Run the cell again if it failed before.
        #[arg(long)]
        retry_failed: bool,
    },
    /// Run every cell not yet done on a local pool of workers.
    Run {
        /// Sweep directory.
        dir: PathBuf,
        /// Workers [default: cores / threads-per-worker].
        #[arg(short = 'j', long = "jobs")]
        jobs: Option<usize>,
        /// Compute threads per worker [default: cores / jobs, or 1].
        #[arg(long)]
        threads_per_worker: Option<usize>,
        /// Also rerun cells that failed before.
        #[arg(long)]
        retry_failed: bool,
        /// Train up to N cells of one architecture together, spread over the worker's threads,
        /// each net on one thread (bit-identical to running them one by one) [default: 1, each cell alone].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        group: Option<u64>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Count done, failed and missing cells; list the ones to resubmit.
    Status {
        /// Sweep directory.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
        format: StatusFormat,
    },
    /// One row per done cell: the keys that vary, then every metric.
    Collect {
        /// Sweep directory.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CollectFormat::Csv)]
        format: CollectFormat,
    },
}

/// Flags of `sweep plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The sweep file (train config keys; any value may be a list).
    sweep_file: PathBuf,
    /// Sweep directory to create.
    #[arg(long)]
    out: PathBuf,
    /// Re-plan over a different sweep file, or plan more than 100,000 cells.
    #[arg(long)]
    force: bool,
    /// Slurm: most array tasks at once (the %K of --array).
    #[arg(long, default_value_t = 50)]
    max_parallel: usize,
    /// Slurm: --time of each task.
    #[arg(long, default_value = "04:00:00")]
    time: String,
    /// Slurm: --mem of each task.
    #[arg(long, default_value = "4G")]
    mem: String,
    /// Slurm: --cpus-per-task (also the cell's compute threads).
    #[arg(long, default_value_t = 2)]
    cpus_per_task: usize,
    /// Slurm: extra #SBATCH option, e.g. --sbatch=--partition=debug (repeatable).
    #[arg(long = "sbatch", allow_hyphen_values = true)]
    sbatch: Vec<String>,
}

fn cell_index(index: Option<usize>) -> Result<usize> {
    if let Some(i) = index {
        return Ok(i);
    }
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            return v.trim().parse().map_err(|_| idcrisis::Error::invalid("index", format!("${var} = {v:?} is not a cell index")).into());
        }
    }
    Err(idcrisis::Error::invalid("index", "no --index, $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX").into())
}

/// Dispatch `idcrisis sweep ...`.
pub fn run(cmd: SweepCommand, data_dir: PathBuf) -> Result<ExitCode> {
    match cmd {
        SweepCommand::Plan(a) => {
            let slurm = SlurmOptions { max_parallel: a.max_parallel, time: a.time, mem: a.mem, cpus: a.cpus_per_task, extra: a.sbatch };
            let exe = std::env::current_exe()?;
            match sweep::plan(&a.sweep_file, &a.out, a.force, &slurm, &exe, &data_dir)? {
                PlanOutcome::Written(n) => println!("planned {n} cells in {}", a.out.display()),
                PlanOutcome::Unchanged(n) => println!("{} already holds this plan ({n} cells): nothing to do", a.out.display()),
            }
            println!("run locally:    idcrisis sweep run {}", a.out.display());
            println!("or on Slurm:    sbatch {}", a.out.join("slurm.sbatch").display());
            Ok(ExitCode::SUCCESS)
        }
        SweepCommand::RunCell { dir, index, threads, retry_failed } => {
            let i = cell_index(index)?;
            let plan = sweep::load_plan(&dir)?;
            let cell = plan.get(i).ok_or_else(|| {
                idcrisis::Error::invalid(
                    "index",
                    format!("{i} is out of range: the plan has {} cells (0..={})", plan.len(), plan.len().saturating_sub(1)),
                )
            })?;
            idcrisis::experiment::run::check_data_dir(&data_dir)?;
            let out = sweep::run_cell(&dir, cell, &data_dir, threads, retry_failed)?;
            let what = sweep::cell_dir(&dir, cell);
            Ok(match out {
                CellOutcome::Done => {
                    println!("cell {i} done: {}", what.display());
                    ExitCode::SUCCESS
                }
                CellOutcome::AlreadyDone => {
                    println!("cell {i} was already done: {}", what.display());
                    ExitCode::SUCCESS
                }
                CellOutcome::Busy => {
                    println!("cell {i} is being run by another worker");
                    ExitCode::SUCCESS
                }
                CellOutcome::SkippedFailed => {
                    eprintln!(
                        "error: cell {i} failed before (see {}); pass --retry-failed to run it again (on Slurm: sbatch --export=ALL,{}=1 --array={i} {})",
                        what.join("error.json").display(),
                        sweep::RETRY_ENV,
                        dir.join("slurm.sbatch").display()
                    );
                    ExitCode::from(1)
                }
                CellOutcome::Failed(msg) => {
                    eprintln!("error: cell {i} failed: {msg}");
                    ExitCode::from(1)
                }
            })
        }
        SweepCommand::Run { dir, jobs, threads_per_worker, retry_failed, group, quiet } => {
            let group = group.map(|g| g as usize);
            run_local(&dir, &data_dir, pool::PoolOptions { jobs, threads_per_worker, retry_failed, group }, quiet)
        }
        SweepCommand::Status { dir, format } => {
            let s = sweep::status(&dir)?;
            match format {
                StatusFormat::Json => {
                    let mut j = serde_json::to_value(&s)?;
                    j["array"] = sweep::array_spec(&s.not_done).into();
                    j["resubmit"] = sweep::resubmit_command(&dir, &s).into();
                    println!("{}", serde_json::to_string_pretty(&j)?);
                }
                StatusFormat::Text => {
                    println!("{} cells: {} done, {} failed, {} missing", s.total, s.done, s.failed, s.missing);
                    if !s.failed_indices.is_empty() {
                        println!("failed: {}", s.failed_indices.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","));
                    }
                    if let Some(line) = sweep::resubmit_command(&dir, &s) {
                        println!("resubmit: {line}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SweepCommand::Collect { dir, format } => {
            let (cols, rows, skipped) = sweep::collect(&dir)?;
            match format {
                CollectFormat::Csv => print!("{}", sweep::to_csv(&cols, &rows)),
                CollectFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                CollectFormat::Table => print_table(&cols, &rows),
            }
            if skipped > 0 {
                eprintln!("skipped {skipped} cells that are not done");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_table(cols: &[String], rows: &[sweep::Row]) {
    let text = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() != 0.0) => format!("{:.4}", n.as_f64().unwrap()),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let cells: Vec<Vec<String>> = rows.iter().map(|r| cols.iter().map(|c| text(r.get(c))).collect()).collect();
    let widths: Vec<usize> =
        cols.iter().enumerate().map(|(i, c)| cells.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0)).collect();
    println!("{}", cols.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect::<Vec<_>>().join("  "));
    for r in cells {
        println!("{}", r.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect::<Vec<_>>().join("  "));
    }
}

pub(crate) fn run_local(dir: &Path, data_dir: &Path, opts: pool::PoolOptions, quiet: bool) -> Result<ExitCode> {
    idcrisis::experiment::run::check_data_dir(data_dir)?;
    let pb = ProgressBar::hidden();
    let mut start = |r: &pool::PoolReport| {
        if r.jobs * r.threads > r.cores {
            eprintln!("warning: {} workers × {} threads is more than the {} cores", r.jobs, r.threads, r.cores);
        }
        let grouped = match opts.group {
            Some(g) if g > 1 => format!(", up to {g} cells of one architecture trained together"),
            _ => String::new(),
        };
        eprintln!("{} cells to run ({} already done), {} workers × {} threads{grouped}", r.todo, r.already_done, r.jobs, r.threads);
        if !quiet && std::io::stderr().is_terminal() {
            pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            pb.set_length(r.todo as u64);
        }
    };
    pb.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} cells, ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |p: pool::Progress| {
        pb.set_position(p.finished as u64);
        pb.set_message(format!("(done {}, failed {}, running {})", p.done, p.failed, p.running));
    };
    let report = pool::run(dir, data_dir, &opts, &mut start, &progress)?;
    pb.finish_and_clear();
    for (i, m) in &report.failed {
        eprintln!("cell {i} failed: {m}");
    }
    let s = sweep::status(dir)?;
    println!("{} cells: {} done, {} failed, {} missing", s.total, s.done, s.failed, s.missing);
    Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
