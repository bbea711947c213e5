//! `train`, `probe` and `data`: argument structs and their thin handlers.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use idcrisis::data::{self, fetch, Dataset, ImageSpec, Split};
use idcrisis::engine::Engine;
use idcrisis::engine::{ConvAlgo, Padding};
use idcrisis::eval::metrics::Summary;
use idcrisis::eval::{attractor, probe};
use idcrisis::experiment::config::Dtype;
use idcrisis::experiment::config::{RunConfig, TrainSet};
use idcrisis::experiment::run::{self, RunOptions};
use idcrisis::fsutil::write_atomic;
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, Coords, Init};
use idcrisis::nn::optim::OptimizerKind;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// `DATASET:SPLIT:I,J,...` → (`DATASET:SPLIT`, indices).
fn train_images(s: &str) -> Result<(String, Vec<usize>), String> {
    let (data, list) = s.rsplit_once(':').ok_or_else(|| format!("{s:?}: expected DATASET:SPLIT:I,J,... (e.g. mnist:train:15,0,1)"))?;
    let indices = list
        .split(',')
        .map(|i| i.trim().parse::<usize>().map_err(|_| format!("{i:?} in {s:?} is not an image index")))
        .collect::<Result<Vec<_>, _>>()?;
    if !data.contains(':') {
        return Err(format!("{s:?}: expected DATASET:SPLIT:I,J,... (e.g. mnist:train:15,0,1)"));
    }
    Ok((data.to_string(), indices))
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
    /// Network family [default: cnn].
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// Number of weight layers L (≥ 1) [default: 5].
    #[arg(long)]
    depth: Option<usize>,
    /// FCN hidden width [default: the input dimension C·H·W, 784 for MNIST].
    #[arg(long)]
    width: Option<usize>,
    /// CNN hidden channels [default: 128].
    #[arg(long)]
    channels: Option<usize>,
    /// CNN kernel side, odd [default: 5].
    #[arg(long)]
    kernel: Option<usize>,
    /// Activation between layers [default: relu].
    #[arg(long, value_enum)]
    act: Option<Activation>,
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
    #[arg(long, value_enum)]
    padding: Option<Padding>,
    /// CNN coordinate channels (CoordConv): x and y in [−1, 1] added to the first layer's
    /// input or to every layer's [default: none].
    #[arg(long, value_enum)]
    coords: Option<Coords>,
    /// Weight initialisation [default: torch-default].
    #[arg(long, value_enum)]
    init: Option<Init>,
    /// Multiply the freshly drawn initial weights by this [default: 1].
    #[arg(long, allow_negative_numbers = true)]
    init_scale: Option<f64>,
    /// Start from these weights (safetensors, PyTorch layout) instead of drawing them.
    #[arg(long, value_name = "FILE.safetensors")]
    init_from: Option<PathBuf>,
    /// Seed of the initial weights [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Optimizer [default: adam].
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Learning rate [default: 3e-4].
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Momentum for `--optimizer momentum` [default: 0.9].
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// Maximum number of updates [default: 10000].
    #[arg(long)]
    steps: Option<u64>,
    /// Stop once the training MSE is below this [default: 1e-4].
    #[arg(long, allow_negative_numbers = true)]
    tol: Option<f64>,
    /// Compute threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Engine precision [default: f32].
    #[arg(long, value_enum)]
    dtype: Option<Dtype>,
    /// Convolution algorithm [default: auto = Winograd for zero-padded 3×3, 5×5 and 7×7 layers
    /// with ≥ 16 input channels; direct for f32 zero/circular-padded layers under 16 channels (or
    /// with 1 channel on one side and up to 16 on the other) on AVX2 and AVX-512 CPUs (in evaluation-only passes up to 16, on AVX-512 up to 32 except
    /// 5×5); im2col otherwise].
    #[arg(long, value_enum)]
    conv_algo: Option<ConvAlgo>,
    /// The training image: DATASET:SPLIT:INDEX or an image file [default: mnist:train:15].
    /// CIFAR-10 images are 3×32×32, files keep their size and colour.
    #[arg(long, value_parser = image_spec)]
    train_image: Option<ImageSpec>,
    /// Gray N×N view of the image: luma, then the central N×N crop (`--gray 28` gives CIFAR-10
    /// the MNIST shape).
    #[arg(long, value_name = "N")]
    gray: Option<usize>,
    /// Place the training image and every probe at the centre of an N×N zero canvas; loss and
    /// metrics cover the whole canvas, and are also reported on the central window.
    #[arg(long, value_name = "N")]
    canvas: Option<usize>,
    /// Put the image's top-left pixel at row TOP, column LEFT of the canvas instead of centring
    /// it (e.g. `--canvas 56 --canvas-at 0,0`: the top-left corner).
    #[arg(long, value_name = "TOP,LEFT", value_delimiter = ',', num_args = 2)]
    canvas_at: Option<Vec<usize>>,
    /// Train on several images of one split, full batch: DATASET:SPLIT:I,J,K (e.g.
    /// `mnist:train:15,0,1`). The first is also the reference image of the metrics (the
    /// training image); the scores then include the nearest training image and a blend index.
    #[arg(long, value_name = "DATASET:SPLIT:I,J,...", value_parser = train_images)]
    train_images: Option<(String, Vec<usize>)>,
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
            c.model.arch = *v;
        }
        if let Some(v) = self.depth {
            c.model.depth = v;
        }
        if let Some(v) = self.width {
            c.model.width = Some(v);
        }
        if let Some(v) = self.channels {
            c.model.channels = v;
        }
        if let Some(v) = self.kernel {
            c.model.kernel = v;
        }
        if let Some(v) = &self.act {
            c.model.act = *v;
        }
        if self.bias {
            c.model.bias = true;
        }
        if self.no_bias {
            c.model.bias = false;
        }
        if let Some(v) = &self.padding {
            c.model.padding = *v;
        }
        if self.residual {
            c.model.residual = true;
        }
        if let Some(v) = &self.init {
            c.init.scheme = *v;
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
            c.train.optimizer = *v;
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
            c.threads = v;
        }
        if let Some(v) = &self.dtype {
            c.dtype = *v;
        }
        if let Some(v) = &self.conv_algo {
            c.conv_algo = *v;
        }
        if let Some(v) = &self.train_image {
            c.train_image = v.clone();
        }
        if let Some(v) = &self.rho {
            c.rho = v.clone();
        }
        if let Some(v) = self.gray {
            c.gray = Some(v);
        }
        if let Some(v) = self.canvas {
            c.canvas = Some(v);
        }
        if let Some(v) = &self.canvas_at {
            c.canvas_at = Some([v[0], v[1]]);
        }
        if let Some(v) = &self.coords {
            c.model.coords = *v;
        }
        if let Some((data, indices)) = &self.train_images {
            c.train_image = format!("{data}:{}", indices[0]).parse()?;
            let ts = c.train_set.get_or_insert_with(|| TrainSet { data: data.clone(), limit: 0, indices: vec![], batch: 128, epochs: 5 });
            ts.data = data.clone();
            ts.indices = indices.clone();
        }
        // Checked once, by `run::execute` (RunConfig::validate), before anything is written.
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
    let total = cfg.planned_steps();
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
        true
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
    /// Also iterate x ↦ f(x) for at most T steps from the probes, noisy copies of the training
    /// image, uniform noise and a blank image; classify where each start ends, take the
    /// Jacobian's spectrum at the training image, and write attractors.json, attractors.csv
    /// and trajectories.png.
    #[arg(long, value_name = "T")]
    iterate: Option<usize>,
}

/// `idcrisis probe`.
pub fn probe(args: ProbeArgs, data_dir: PathBuf) -> Result<ExitCode> {
    let attractor_opts = args.iterate.map(|max_steps| attractor::Options { max_steps, ..attractor::Options::default() });
    if let Some(o) = &attractor_opts {
        o.validate()?;
    }
    let (cfg, weights) = run::load_run(&args.run_dir)?;
    run::check_data_dir(&data_dir)?;
    let (net, mut inputs) = run::open::<f32>(&data_dir, &cfg, &weights)?;
    let tag = match &args.dataset {
        None => "paper".to_string(),
        Some(spec) => {
            let (d, s) = spec.split_once(':').unwrap_or((spec.as_str(), "test"));
            let dataset: Dataset = d.parse().map_err(|e: idcrisis::Error| idcrisis::Error::invalid("dataset", e.to_string()))?;
            let split: Split = s.parse().map_err(|e: idcrisis::Error| idcrisis::Error::invalid("dataset", e.to_string()))?;
            inputs.probes = probe::dataset_probes(&data_dir, dataset, split, cfg.gray, args.limit)?;
            if let Some(w) = &inputs.window {
                inputs.probes.iter_mut().for_each(|p| p.image = w.place(&p.image));
            }
            if let Some(p) = inputs.probes.first().filter(|p| p.image.len() != inputs.shape.len()) {
                return Err(idcrisis::Error::invalid(
                    "dataset",
                    format!(
                        "{spec} images have {} values, but the run's model takes {} ({})",
                        p.image.len(),
                        inputs.shape.len(),
                        inputs.shape
                    ),
                )
                .into());
            }
            format!("{}-{}", dataset.name(), split.name())
        }
    };
    // The run's convolution algorithm, so the re-evaluation rounds as the run did.
    let eng = Engine::new(args.threads)?.with_conv_algo(cfg.conv_algo);
    let (eval, _) = run::evaluate(&eng, &net, &inputs);
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
    if let Some(opts) = attractor_opts {
        attractors(&args.run_dir, &cfg, &eng, &net, &inputs, &opts)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `probe --iterate`: the attractor analysis of one run, written into its directory.
fn attractors(
    dir: &std::path::Path,
    cfg: &RunConfig,
    eng: &Engine,
    net: &idcrisis::Net<f32>,
    inputs: &idcrisis::experiment::inputs::Inputs,
    opts: &attractor::Options,
) -> Result<()> {
    // Every image the run was trained on (its list, or the one training image).
    let train = &inputs.examples;
    let starts = attractor::starts(&inputs.probes, train, cfg.seed, 1);
    let clock = Instant::now();
    let (report, traj) = attractor::analyze(net, eng, &starts, train, opts, true, 32)?;
    println!("\n{:<24} {:>18} {:>6} {:>10} {:>10}", "start", "class", "steps", "rel-step", "to-train");
    for r in &report.starts {
        println!(
            "{:<24} {:>18} {:>6} {:>10.2e} {:>10.2e}",
            r.name,
            attractor::class_label(r),
            r.steps,
            r.final_rel_step,
            r.nearest_rel_distance
        );
    }
    let f = &report.summary.fractions;
    println!(
        "{} starts: training image {:.2}, other fixed point {:.2} ({} distinct), cycle {:.2}, diverging {:.2}, undecided {:.2}",
        report.summary.starts,
        f["training-image"],
        f["other-fixed-point"],
        report.summary.spurious_fixed_points,
        f["cycle"],
        f["diverging"],
        f["undecided"]
    );
    for j in &report.jacobians {
        println!(
            "training image {}: ‖f(t)−t‖/‖t‖ {:.2e}, spectral radius {:.4}, ‖J‖₂ {:.4}, {} ({:.1} s)",
            j.train_index,
            j.fixed_point_residual,
            j.spectral_radius,
            j.spectral_norm,
            if j.attractor { "an attractor" } else { "not an attractor" },
            j.seconds
        );
    }
    write_atomic(&dir.join("attractors.json"), &serde_json::to_vec_pretty(&report)?)?;
    write_atomic(&dir.join("attractors.csv"), attractor::csv(&report.starts).as_bytes())?;
    let title = format!("{}: x ↦ f(x) from {} starts", cfg.model.label(), starts.len());
    write_atomic(&dir.join("trajectories.png"), &attractor::trajectories_png(&title, inputs.shape, &traj, opts)?)?;
    println!("wrote attractors.json, attractors.csv, trajectories.png in {} ({:.1} s)", dir.display(), clock.elapsed().as_secs_f64());
    Ok(())
}

/// `idcrisis data ...`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download a data set from its canonical mirrors, verifying SHA-256.
    Fetch {
        /// mnist, fashion-mnist or cifar-10.
        #[arg(value_enum)]
        dataset: Dataset,
        /// Use these base URLs instead of the canonical mirrors (repeatable; BASE/<dataset>/FILE).
        #[arg(long, value_name = "URL")]
        mirror: Vec<String>,
    },
    /// Check the SHA-256 of every data file on disk.
    Verify {
        /// Data sets to check [default: all].
        #[arg(value_enum)]
        datasets: Vec<Dataset>,
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
            let d = dataset;
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
            let ds: Vec<Dataset> = if datasets.is_empty() { Dataset::ALL.to_vec() } else { datasets };
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
