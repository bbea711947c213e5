//! `idcrisis`: the command line over the idcrisis library.
//!
//! Exit codes: 0 success; 1 runtime failure (I/O, download); 2 bad input (flag, config, missing
//! data); 3 the training run diverged (NaN/inf loss; its directory is still written).

mod bench;
mod commands;
mod reproduce;
mod sweep;
mod theory;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "idcrisis", version, about = "Memorization vs generalization: train a network on one image, probe what it learned")]
struct Cli {
    /// Data directory (default: $IDCRISIS_DATA, else the user's cache dir + /idcrisis).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a network on one image, probe it, and write a run directory.
    Train(Box<commands::TrainArgs>),
    /// Re-evaluate a finished run's weights on the probes or on a data set.
    Probe(commands::ProbeArgs),
    /// Download or verify data sets.
    #[command(subcommand)]
    Data(commands::DataCommand),
    /// Median ms per training step on the benchmark workloads, with PyTorch beside it.
    Bench(bench::BenchArgs),
    /// Crash-safe grids of runs: plan, run locally or on Slurm, status, collect.
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
    /// Re-run an experiment of the paper: sweep, figures, numbers, summary.md.
    Reproduce(reproduce::ReproduceArgs),
    /// One self-contained HTML page of every experiment in DIR.
    Report {
        /// A `reproduce` output directory (or a directory of them).
        dir: std::path::PathBuf,
        /// Open it in the default browser.
        #[arg(long)]
        open: bool,
    },
    /// Closed forms (Theorem 1, the one-layer CNN) and infinite-width NNGP/NTK predictions.
    #[command(subcommand)]
    Theory(theory::TheoryCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = idcrisis::data::resolve_data_dir(cli.data_dir.as_deref());
    // Download on first use, as torchvision does, but only into the default cache directory:
    // a directory the user named is used as it is, and a missing one is an error.
    let chosen = cli.data_dir.is_some() || std::env::var_os(idcrisis::data::DATA_ENV).is_some_and(|v| !v.is_empty());
    let needs_data = matches!(
        cli.command,
        Command::Train(_)
            | Command::Probe(_)
            | Command::Bench(_)
            | Command::Theory(_)
            | Command::Reproduce(_)
            | Command::Sweep(sweep::SweepCommand::Run { .. } | sweep::SweepCommand::RunCell { .. })
    );
    let result = if needs_data && !chosen { commands::ensure_data(&data_dir) } else { Ok(()) };
    let result = result.and_then(|()| match cli.command {
        Command::Train(a) => commands::train(*a, data_dir),
        Command::Probe(a) => commands::probe(a, data_dir),
        Command::Data(c) => commands::data(c, data_dir),
        Command::Bench(a) => bench::run(a, data_dir),
        Command::Sweep(c) => sweep::run(c, data_dir),
        Command::Theory(c) => theory::run(c, data_dir),
        Command::Reproduce(a) => reproduce::run(a, data_dir),
        Command::Report { dir, open } => reproduce::report(&dir, open),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = match e.downcast_ref::<idcrisis::Error>() {
                Some(ie) => {
                    // The library's messages already carry their cause.
                    eprintln!("error: {ie}");
                    match ie {
                        idcrisis::Error::InvalidValue { .. } | idcrisis::Error::Config { .. } | idcrisis::Error::MissingData { .. } => 2,
                        _ => 1,
                    }
                }
                None => {
                    eprintln!("error: {e:#}");
                    1
                }
            };
            ExitCode::from(code)
        }
    }
}
