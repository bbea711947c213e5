//! `idcrisis reproduce EXPERIMENT`: plan the experiment's sweep, run it, analyze it.

use anyhow::Result;
use clap::Args;
use idcrisis::engine::Engine;
use idcrisis::experiment::hidden::Projection;
use idcrisis::experiment::pool;
use idcrisis::experiment::reproduce::{self, Experiment, Scale};
use idcrisis::experiment::sweep::SlurmOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Flags of `idcrisis reproduce`.
#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// fcn, cnn-depth, hidden, linear, kernels, channels, resnet, fcn-60k, cifar, boundary, k-examples,
    /// attractors, protocols, or all (each into OUT/<experiment>).
    experiment: String,
    /// Output directory [default: runs/reproduce-<experiment>[-quick]].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scaled down to finish in minutes on 2 cores (see the README for what each one drops).
    #[arg(long)]
    quick: bool,
    /// Tiny nets and a few steps (for tests; the numbers mean nothing).
    #[arg(long, hide = true)]
    micro: bool,
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
    /// Train up to N cells of one architecture together, spread over the worker's threads,
    /// each net on one thread (bit-identical to running them one by one) [default: 1, each cell alone].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    group: Option<u64>,
    /// Rebuild figures, CSVs and summary.md from the finished cells in OUT alone (their
    /// result.json and outputs.png; no weights needed, nothing trained or planned).
    #[arg(long, conflicts_with_all = ["plan_only", "micro", "quick"])]
    redraw: bool,
    /// hidden: how channels collapse to one map.
    #[arg(long, value_enum, default_value_t = Projection::Pca)]
    projection: Projection,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn one(exp: Experiment, a: &ReproduceArgs, out: &Path, data_dir: &Path) -> Result<ExitCode> {
    if a.redraw {
        let eng = Engine::new(a.threads_per_worker.unwrap_or(0))?;
        let summary = reproduce::analyze(exp, out, data_dir, &eng, a.projection, true)?;
        println!("{summary}");
        return Ok(ExitCode::SUCCESS);
    }
    let scale = if a.micro {
        Scale::Micro
    } else if a.quick {
        Scale::Quick
    } else {
        Scale::Full
    };
    let exe = std::env::current_exe()?;
    let dir = reproduce::plan(exp, out, scale, a.seeds, &SlurmOptions::default(), &exe, data_dir)?;
    if a.plan_only {
        println!("planned {} in {}", exp.name(), dir.display());
        println!("submit:  sbatch {}", dir.join("slurm.sbatch").display());
        println!(
            "then:    idcrisis reproduce {} --out {}{}   (runs what is missing, then analyzes)",
            exp.name(),
            out.display(),
            if a.quick { " --quick" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("== {}", exp.name());
    let opts = pool::PoolOptions {
        jobs: a.jobs,
        threads_per_worker: a.threads_per_worker,
        retry_failed: false,
        group: a.group.map(|g| g as usize),
    };
    let code = crate::sweep::run_local(&dir, data_dir, opts, a.quiet)?;
    let eng = Engine::new(0)?;
    let summary = reproduce::analyze(exp, out, data_dir, &eng, a.projection, false)?;
    println!("\n{summary}");
    let mut files: Vec<String> = std::fs::read_dir(out)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "sweep")
        .collect();
    files.sort();
    println!("wrote {}: {}", out.display(), files.join(", "));
    Ok(code)
}

/// Run it.
pub fn run(a: ReproduceArgs, data_dir: PathBuf) -> Result<ExitCode> {
    idcrisis::experiment::run::check_data_dir(&data_dir)?;
    let suffix = if a.quick { "-quick" } else { "" };
    if a.experiment == "all" {
        let base = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("reproduce-all{suffix}")));
        let mut worst = ExitCode::SUCCESS;
        for exp in Experiment::ALL {
            if a.redraw && !base.join(exp.name()).join("sweep").is_dir() {
                continue;
            }
            if let Err(e) = reproduce::check_data(exp, &data_dir) {
                eprintln!("== {}: skipped, its training image is not in {} ({e}; see idcrisis data fetch)", exp.name(), data_dir.display());
                continue;
            }
            let code = one(exp, &a, &base.join(exp.name()), &data_dir)?;
            if code != ExitCode::SUCCESS {
                worst = code;
            }
        }
        return Ok(worst);
    }
    let exp = Experiment::parse(&a.experiment)?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(format!("reproduce-{}{suffix}", exp.name())));
    one(exp, &a, &out, &data_dir)
}

/// `idcrisis report DIR [--open]`.
pub fn report(dir: &Path, open: bool) -> Result<ExitCode> {
    let (path, images) = idcrisis::experiment::report::write(dir)?;
    println!("wrote {} ({images} figures embedded)", path.display());
    if open {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        if std::process::Command::new(opener).arg(&path).status().map(|s| !s.success()).unwrap_or(true) {
            eprintln!("could not open a browser with {opener}; open {} yourself", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
