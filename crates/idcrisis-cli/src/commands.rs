//! `train`, `probe` and `data`: argument structs and their thin handlers.

use anyhow::{Context, Result};
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use idcrisis::data::{self, fetch, Dataset, ImageSpec, Split};
use idcrisis::engine::Engine;
use idcrisis::eval::metrics::Summary;
use idcrisis::eval::probe;
use idcrisis::experiment::config::RunConfig;
use idcrisis::experiment::run::{self, RunOptions};
use idcrisis::fsutil::write_atomic;
use idcrisis::nn::model::Net;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Parse a kebab-case enum name through its serde representation.
pub(crate) fn kebab<T: DeserializeOwned>(s: &str) -> T {
    serde_json::from_value(serde_json::Value::String(s.to_string())).expect("value checked by clap")
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} must be a positive number")),
        Err(e) => Err(e.to_string()),
    }
}

fn nonneg_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} must be a non-negative number")),
        Err(e) => Err(e.to_string()),
    }
}

fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} must be in [0, 1)")),
        Err(e) => Err(e.to_string()),
    }
}

fn odd_kernel(s: &str) -> Result<usize, String> {
    let k: usize = s.parse().map_err(|e| format!("{e}"))?;
    if k % 2 == 0 {
        Err(format!("{k} is even; \"same\" padding needs an odd kernel"))
    } else if k > 55 {
        Err(format!("{k} is larger than 55"))
    } else {
        Ok(k)
    }
}

fn image_spec(s: &str) -> Result<ImageSpec, String> {
    s.parse().map_err(|e: idcrisis::Error| e.to_string())
}

/// Flags of `idcrisis train`. Every flag overrides the same key of `--config`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// TOML config (the `config.toml` of a run reruns it). Flags override its values.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Network family.
    #[arg(long, value_parser = PossibleValuesParser::new(["cnn", "fcn"]))]
    arch: Option<String>,
    /// Number of weight layers L (≥ 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    depth: Option<u64>,
    /// FCN hidden width [default: 784].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65536))]
    width: Option<u64>,
    /// CNN hidden channels [default: 128].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=16384))]
    channels: Option<u64>,
    /// CNN kernel side, odd [default: 5].
    #[arg(long, value_parser = odd_kernel)]
    kernel: Option<usize>,
    /// Activation between layers [default: relu].
    #[arg(long, value_parser = PossibleValuesParser::new(["relu", "linear"]))]
    act: Option<String>,
    /// Give every layer a bias (default).
    #[arg(long, overrides_with = "no_bias")]
    bias: bool,
    /// No biases.
    #[arg(long, overrides_with = "bias")]
    no_bias: bool,
    /// Residual CNN: an identity skip around every pair of hidden layers.
    #[arg(long)]
    residual: bool,
    /// CNN border handling [default: zero].
    #[arg(long, value_parser = PossibleValuesParser::new(["zero", "circular", "reflect"]))]
    padding: Option<String>,
    /// Weight initialisation [default: torch-default].
    #[arg(long, value_parser = PossibleValuesParser::new(["torch-default", "he-normal", "he-uniform", "glorot-normal", "glorot-uniform"]))]
    init: Option<String>,
    /// Multiply the freshly drawn initial weights by this [default: 1].
    #[arg(long, value_parser = nonneg_f64, allow_negative_numbers = true)]
    init_scale: Option<f64>,
    /// Start from these weights (safetensors, PyTorch layout) instead of drawing them.
    #[arg(long, value_name = "FILE.safetensors")]
    init_from: Option<PathBuf>,
    /// Seed of the initial weights [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Optimizer [default: adam].
    #[arg(long, value_parser = PossibleValuesParser::new(["gd", "momentum", "adam"]))]
    optimizer: Option<String>,
    /// Learning rate [default: 3e-4].
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Momentum for `--optimizer momentum` [default: 0.9].
    #[arg(long, value_parser = unit_interval, allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// Maximum number of updates [default: 10000].
    #[arg(long)]
    steps: Option<u64>,
    /// Stop once the training MSE is below this [default: 1e-4].
    #[arg(long, value_parser = nonneg_f64, allow_negative_numbers = true)]
    tol: Option<f64>,
    /// Compute threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// Engine precision [default: f32].
    #[arg(long, value_parser = PossibleValuesParser::new(["f32", "f64"]))]
    dtype: Option<String>,
    /// Convolution algorithm [default: auto = Winograd for zero-padded 3×3, 5×5 and 7×7 layers
    /// with ≥ 8 input channels, im2col otherwise].
    #[arg(long, value_parser = PossibleValuesParser::new(["auto", "im2col", "winograd"]))]
    conv_algo: Option<String>,
    /// The training image: DATASET:SPLIT:INDEX or an image file [default: mnist:train:15].
    #[arg(long, value_parser = image_spec)]
    train_image: Option<ImageSpec>,
    /// Correlations of the random-ρ probes, comma-separated [default: 0,0.5,0.9].
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    rho: Option<Vec<f64>>,
    /// Run directory [default: a fresh one under runs/].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

impl TrainArgs {
    /// The config file (or defaults) with every given flag applied.
    fn resolve(&self) -> Result<RunConfig> {
        let mut c = match &self.config {
            Some(p) => RunConfig::load(p)?,
            None => RunConfig::default(),
        };
        if let Some(v) = &self.arch {
            c.model.arch = kebab(v);
        }
        if let Some(v) = self.depth {
            c.model.depth = v as usize;
        }
        if let Some(v) = self.width {
            c.model.width = v as usize;
        }
        if let Some(v) = self.channels {
            c.model.channels = v as usize;
        }
        if let Some(v) = self.kernel {
            c.model.kernel = v;
        }
        if let Some(v) = &self.act {
            c.model.act = kebab(v);
        }
        if self.bias {
            c.model.bias = true;
        }
        if self.no_bias {
            c.model.bias = false;
        }
        if let Some(v) = &self.padding {
            c.model.padding = kebab(v);
        }
        if self.residual {
            c.model.residual = true;
        }
        if let Some(v) = &self.init {
            c.init.scheme = kebab(v);
        }
        if let Some(v) = self.init_scale {
            c.init.scale = v;
        }
        if let Some(v) = &self.init_from {
            c.init.from = Some(std::path::absolute(v).unwrap_or_else(|_| v.clone()));
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = &self.optimizer {
            c.train.optimizer = kebab(v);
        }
        if let Some(v) = self.lr {
            c.train.lr = v;
        }
        if let Some(v) = self.momentum {
            c.train.momentum = v;
        }
        if let Some(v) = self.steps {
            c.train.steps = v;
        }
        if let Some(v) = self.tol {
            c.train.tol = v;
        }
        if let Some(v) = self.threads {
            c.threads = v as usize;
        }
        if let Some(v) = &self.dtype {
            c.dtype = kebab(v);
        }
        if let Some(v) = &self.conv_algo {
            c.conv_algo = kebab(v);
        }
        if let Some(v) = &self.train_image {
            c.train_image = v.clone();
        }
        if let Some(v) = &self.rho {
            c.rho = v.clone();
        }
        c.validate()?;
        Ok(c)
    }
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} step {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// `idcrisis train`.
pub fn train(args: TrainArgs, data_dir: PathBuf) -> Result<ExitCode> {
    let cfg = args.resolve()?;
    let out = args.out.clone().unwrap_or_else(|| run::default_out_dir(&cfg));
    // With a training set the bar counts minibatch updates over all epochs.
    let total = match &cfg.train_set {
        Some(ts) => {
            let n = match ts.source()? {
                (Dataset::Cifar10, Split::Train) => 50000,
                (_, Split::Train) => 60000,
                (_, Split::Test) => 10000,
            };
            let n = if ts.limit == 0 { n } else { ts.limit.min(n) };
            cfg.train.steps.min((ts.epochs * (n / ts.batch.max(1)).max(1)) as u64)
        }
        None => cfg.train.steps,
    };
    let pb = progress_bar(total, args.quiet);
    let start = Instant::now();
    let mut last = Instant::now();
    let mut last_step = 0u64;
    let pb2 = pb.clone();
    let mut progress = move |step: u64, loss: f64| {
        if last.elapsed().as_millis() >= 100 || step == 0 {
            let ms = last.elapsed().as_secs_f64() * 1e3 / (step - last_step).max(1) as f64;
            pb2.set_position(step);
            pb2.set_message(format!("loss {loss:.3e}  {ms:.1} ms/step"));
            last = Instant::now();
            last_step = step;
        }
    };
    let result = run::execute(&cfg, RunOptions { data_dir, out: out.clone(), progress: &mut progress })?;
    pb.finish_and_clear();
    println!("run directory: {}", out.display());
    println!(
        "{}: {} after {} steps, final loss {}, {:.2} ms/step, {:.1} s total",
        cfg.model.label(),
        result.status.as_str(),
        result.steps,
        result.final_loss.map(|l| format!("{l:.3e}")).unwrap_or_else(|| "NaN".into()),
        result.ms_per_step,
        start.elapsed().as_secs_f64()
    );
    if let Some(ev) = &result.evaluation {
        print_summary(&ev.categories);
        println!("figure: {}", out.join("predictions.png").display());
    }
    if result.status == idcrisis::nn::train::Status::Diverged {
        eprintln!(
            "error: training diverged (loss became NaN or infinite at step {}); lower --lr (now {}) or change --init. The run directory records it.",
            result.steps, cfg.train.lr
        );
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(cats: &std::collections::BTreeMap<String, Summary>) {
    println!("{:<12} {:>5} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6}", "probes", "n", "corr-id", "corr-con", "mse-id", "mse-con", "#id", "#con");
    for (name, s) in cats {
        println!(
            "{:<12} {:>5} {:>9.3} {:>9.3} {:>9.2e} {:>9.2e} {:>6} {:>6}",
            name, s.count, s.corr_identity, s.corr_constant, s.mse_identity, s.mse_constant, s.n_identity, s.n_constant
        );
    }
}

/// Flags of `idcrisis probe`.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// A finished run directory.
    run_dir: PathBuf,
    /// Probe with the first --limit images of DATASET:SPLIT (e.g. fashion-mnist:test) instead of
    /// the paper's probes.
    #[arg(long, value_name = "DATASET:SPLIT")]
    dataset: Option<String>,
    /// How many images of --dataset.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Compute threads [default: all cores].
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// `idcrisis probe`.
pub fn probe(args: ProbeArgs, data_dir: PathBuf) -> Result<ExitCode> {
    let (cfg, weights) = run::load_run(&args.run_dir)?;
    run::check_data_dir(&data_dir)?;
    let train_img = data::load_image(&data_dir, &cfg.train_image)?;
    let (probes, tag) = match &args.dataset {
        None => (probe::paper_probes(&data_dir, &train_img, &cfg.rho)?, "paper".to_string()),
        Some(spec) => {
            let (d, s) = spec.split_once(':').unwrap_or((spec.as_str(), "test"));
            let dataset: Dataset = d.parse().map_err(|e: idcrisis::Error| idcrisis::Error::invalid("dataset", e.to_string()))?;
            let split: Split = s.parse().map_err(|e: idcrisis::Error| idcrisis::Error::invalid("dataset", e.to_string()))?;
            (probe::dataset_probes(&data_dir, dataset, split, args.limit)?, format!("{}-{}", dataset.name(), split.name()))
        }
    };
    // The run's convolution algorithm, so the re-evaluation rounds as the run did.
    let eng = Engine::new(args.threads)?.with_conv_algo(cfg.conv_algo);
    let mut net = Net::<f32>::new(&cfg.model)?;
    net.load_safetensors(&std::fs::read(&weights).with_context(|| format!("reading {}", weights.display()))?, &weights)?;
    let (eval, _) = run::evaluate(&eng, &net, &train_img, &probes);
    let path = args.run_dir.join(format!("probe-{tag}.json"));
    write_atomic(&path, &serde_json::to_vec_pretty(&eval)?)?;
    if args.dataset.is_none() {
        println!("{:<20} {:>9} {:>9} {:>9}", "probe", "corr-id", "corr-con", "outcome");
        for s in &eval.probes {
            println!("{:<20} {:>9.3} {:>9.3} {:>9}", s.probe, s.corr_identity, s.corr_constant, format!("{:?}", s.outcome).to_lowercase());
        }
    }
    print_summary(&eval.categories);
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `idcrisis data ...`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download a data set from its canonical mirrors, verifying SHA-256.
    Fetch {
        /// mnist, fashion-mnist or cifar-10.
        #[arg(value_parser = PossibleValuesParser::new(["mnist", "fashion-mnist", "cifar-10"]))]
        dataset: String,
        /// Use these base URLs instead of the canonical mirrors (repeatable; BASE/<dataset>/FILE).
        #[arg(long, value_name = "URL")]
        mirror: Vec<String>,
    },
    /// Check the SHA-256 of every data file on disk.
    Verify {
        /// Data sets to check [default: all].
        #[arg(value_parser = PossibleValuesParser::new(["mnist", "fashion-mnist", "cifar-10"]))]
        datasets: Vec<String>,
    },
}

/// Fetch MNIST and Fashion-MNIST into `dir` if they are not there yet.
pub fn ensure_data(dir: &std::path::Path) -> Result<()> {
    let pb = progress_bar(0, false);
    let mut progress = |name: &str, done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
        pb.set_message(name.to_string());
    };
    let log = fetch::ensure(dir, &[Dataset::Mnist, Dataset::FashionMnist], &mut progress)
        .with_context(|| format!("fetching data into {} (or set {} to a directory that has it)", dir.display(), data::DATA_ENV))?;
    pb.finish_and_clear();
    for l in log {
        eprintln!("{l}");
    }
    Ok(())
}

/// `idcrisis data fetch|verify`.
pub fn data(cmd: DataCommand, data_dir: PathBuf) -> Result<ExitCode> {
    match cmd {
        DataCommand::Fetch { dataset, mirror } => {
            let d: Dataset = dataset.parse()?;
            let pb = progress_bar(0, false);
            pb.set_style(
                ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {bar:30}").unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let mut progress = |name: &str, done: u64, total: u64| {
                pb.set_length(total);
                pb.set_position(done);
                pb.set_message(name.to_string());
            };
            let log = fetch::fetch(d, &data_dir, &mirror, &mut progress)?;
            pb.finish_and_clear();
            for l in log {
                println!("{l}");
            }
            println!("{} is ready in {}", d, data_dir.join(d.name()).display());
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Verify { datasets } => {
            let ds: Vec<Dataset> =
                if datasets.is_empty() { Dataset::ALL.to_vec() } else { datasets.iter().map(|s| s.parse()).collect::<Result<_, _>>()? };
            let mut bad = 0;
            let mut present = 0;
            for line in fetch::verify(&data_dir, &ds)? {
                let state = match &line.state {
                    fetch::FileState::Ok => {
                        present += 1;
                        "ok".to_string()
                    }
                    fetch::FileState::Missing => "missing".to_string(),
                    fetch::FileState::Mismatch { actual } => {
                        bad += 1;
                        format!("MISMATCH ({actual})")
                    }
                };
                println!("{:<14} {:<10} {}", line.dataset.name(), state, line.path.display());
            }
            println!("{present} ok, {bad} bad, in {}", data_dir.display());
            Ok(if bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
    }
}
