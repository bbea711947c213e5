//! `idcrisis reproduce EXPERIMENT`: plan the experiment's sweep, run it, analyze it.

use anyhow::Result;
use clap::Args;
use idcrisis::engine::Engine;
use idcrisis::reproduce::{self, Experiment};
use idcrisis::sweep::SlurmOptions;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `idcrisis reproduce`.
#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// fcn (Fig. 2) or cnn-depth (Fig. 3).
    experiment: String,
    /// Output directory [default: runs/reproduce-<experiment>[-quick]].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scaled down to finish in minutes on 2 cores (cnn-depth: 16 channels, 8 depths, ≤3000 steps;
    /// fcn: ≤3000 steps).
    #[arg(long)]
    quick: bool,
    /// Seeds per net.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Only write the sweep (OUT/sweep/slurm.sbatch), for a cluster.
    #[arg(long)]
    plan_only: bool,
    /// Local workers [default: cores / threads-per-worker].
    #[arg(short = 'j', long = "jobs")]
    jobs: Option<usize>,
    /// Compute threads per worker [default: 1 per worker, all cores in use].
    #[arg(long)]
    threads_per_worker: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// Run it.
pub fn run(a: ReproduceArgs, data_dir: PathBuf) -> Result<ExitCode> {
    let exp = Experiment::parse(&a.experiment)?;
    idcrisis::run::check_data_dir(&data_dir)?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("reproduce-{}{}", exp.name(), if a.quick { "-quick" } else { "" })));
    let exe = std::env::current_exe()?;
    let dir = reproduce::plan(exp, &out, a.quick, a.seeds, &SlurmOptions::default(), &exe, &data_dir)?;
    if a.plan_only {
        println!("planned {} in {}", exp.name(), dir.display());
        println!("submit:  sbatch {}", dir.join("slurm.sbatch").display());
        println!("then:    idcrisis reproduce {} --out {}{}   (runs what is missing, then analyzes)", exp.name(), out.display(), if a.quick { " --quick" } else { "" });
        return Ok(ExitCode::SUCCESS);
    }
    let code = crate::sweep::run_local(&dir, &data_dir, a.jobs, a.threads_per_worker, false, a.quiet)?;
    let eng = Engine::new(0)?;
    let summary = reproduce::analyze(exp, &out, &data_dir, &eng)?;
    println!("\n{summary}");
    println!("wrote {}: summary.md, {name}.csv, {name}.json, {name}-predictions.png{}", out.display(), if exp == Experiment::CnnDepth { ", cnn-depth-corr.{png,svg}" } else { "" }, name = exp.name());
    Ok(code)
}
