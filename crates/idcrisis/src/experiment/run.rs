//! One training run end to end, and the run directory it writes:
//!
//! | file | content |
//! |---|---|
//! | `config.toml` | the full [`RunConfig`]; `idcrisis train --config` reruns it |
//! | `init.safetensors` | initial weights (PyTorch layout) |
//! | `weights.safetensors` | trained weights |
//! | `loss.csv` | `step,loss`: the loss before each update, then at the final weights |
//! | `result.json` | status, losses, timings, versions, per-probe and per-category metrics |
//! | `predictions.png` | training image and probes (top), the model's outputs (bottom) |
//! | `outputs.png` | the outputs alone, training image first then each probe, side by side, clamped to [0, 1] and quantized to 8 bits: what figures need without the weights ([`read_outputs_png`]) |
//!
//! Every file is written to a temporary name and renamed into place.

use crate::data::{self};
use crate::engine::{ConvAlgo, Engine};
use crate::error::{Error, Result};
use crate::eval::metrics::{self, ProbeScore, Summary};
use crate::eval::probe::Probe;
use crate::experiment::config::{Dtype, RunConfig};
use crate::experiment::inputs::{self, Inputs};
use crate::figures;
use crate::float::Float;
use crate::fsutil::{self, write_atomic};
use crate::nn::group;
use crate::nn::model::Net;
use crate::nn::train::{self, Status, TrainOutcome};
use crate::shape::Shape;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Versions recorded with every result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versions {
    /// idcrisis crate version.
    pub idcrisis: String,
    /// Git commit the binary was built from (`-dirty` if the tree had changes).
    pub git_commit: String,
    /// Compiler.
    pub rustc: String,
    /// GEMM crate.
    pub gemm: String,
}

impl Versions {
    /// The versions of this build.
    pub fn current() -> Self {
        Versions {
            idcrisis: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("IDCRISIS_GIT_COMMIT").to_string(),
            rustc: env!("IDCRISIS_RUSTC").to_string(),
            gemm: "0.19 (x86-v4)".to_string(),
        }
    }
}

/// Evaluation of a model on a probe set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// Training loss of the evaluated weights on the training image.
    pub train_mse: f64,
    /// On a run trained on a list of images (`train_set.indices`): MSE(f(tᵢ), tᵢ) for each, in
    /// list order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub example_mse: Vec<f64>,
    /// One entry per probe, in probe order.
    pub probes: Vec<ProbeScore>,
    /// Averages per category, plus `paper` and `all`.
    pub categories: BTreeMap<String, Summary>,
}

/// `result.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// `converged`, `max-steps` or `diverged`.
    pub status: Status,
    /// Updates made.
    pub steps: u64,
    /// Loss at the final weights.
    pub final_loss: Option<f64>,
    /// Loss at the initial weights.
    pub initial_loss: Option<f64>,
    /// Seed.
    pub seed: u64,
    /// Compute threads actually used.
    pub threads: usize,
    /// Convolution algorithm setting used (`auto` picks per layer; see `engine::ConvAlgo`).
    pub conv_algo: ConvAlgo,
    /// Set when the run trained as one of a group of nets ([`execute_group`]); `threads` is
    /// then 1, the threads its net computed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupInfo>,
    /// Parameter count.
    pub params: usize,
    /// Wall time of training, seconds.
    pub train_seconds: f64,
    /// Mean ms per update.
    pub ms_per_step: f64,
    /// Wall time of the whole run, seconds.
    pub total_seconds: f64,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// Data directory used.
    pub data_dir: PathBuf,
    /// Versions.
    pub versions: Versions,
    /// The full configuration.
    pub config: RunConfig,
    /// What the net was fed: pixel scaling and the training images' norms (they change the
    /// answers: a bias-free net is homogeneous in its input's scale).
    #[serde(default)]
    pub input: InputStats,
    /// Probe metrics (absent when the run diverged).
    pub evaluation: Option<Evaluation>,
}

/// Scaling and size of a run's training input, in `result.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InputStats {
    /// How stored pixels become inputs: `u8 / 255`, so every input value is in [0, 1].
    pub pixel_scaling: String,
    /// ‖training image‖₂ at the model's shape (canvas included), in those units.
    pub train_norm: f64,
    /// Mean pixel of the training image.
    pub train_mean: f64,
    /// ‖tᵢ‖₂ of each image of a training list (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub example_norms: Vec<f64>,
}

impl InputStats {
    fn of(inputs: &Inputs) -> Self {
        let norm = |x: &[f32]| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        InputStats {
            pixel_scaling: "u8 / 255 (inputs in [0, 1])".into(),
            train_norm: norm(&inputs.train),
            train_mean: inputs.train.iter().map(|v| *v as f64).sum::<f64>() / inputs.train.len().max(1) as f64,
            example_norms: if inputs.listed { inputs.examples.iter().map(|e| norm(e)).collect() } else { Vec::new() },
        }
    }
}

/// Where and how to run.
pub struct RunOptions<'a> {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Run directory to create.
    pub out: PathBuf,
    /// Called with `(step, loss)` during training; returning `false` stops the run with
    /// [`Error::Interrupted`] (see [`execute`]).
    pub progress: &'a mut (dyn FnMut(u64, f64) -> bool + Send),
}

/// The files a run directory holds (see the module docs).
pub const RUN_FILES: [&str; 6] = ["config.toml", "init.safetensors", "weights.safetensors", "loss.csv", "result.json", "predictions.png"];

/// A fresh directory name under `runs/`: `runs/<label>-<unix seconds>-<pid>`.
pub fn default_out_dir(cfg: &RunConfig) -> PathBuf {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    PathBuf::from("runs").join(format!("{}-s{}-{secs}-{}", cfg.model.label(), cfg.seed, std::process::id()))
}

/// Check the data directory exists, with an error that says how to fix it.
pub fn check_data_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::invalid(
            "data-dir",
            format!(
                "data directory {} does not exist; run `idcrisis data fetch mnist` and `idcrisis data fetch fashion-mnist`, or set --data-dir / {} to a directory that has them",
                dir.display(),
                data::DATA_ENV
            ),
        ))
    }
}

/// Train, evaluate and write the run directory. A diverged run still writes its directory and
/// returns `Ok` with `status = diverged`. A run stopped by its progress callback returns
/// [`Error::Interrupted`] and removes the files it wrote (and the directory, if it created it).
pub fn execute(cfg: &RunConfig, opts: RunOptions) -> Result<RunResult> {
    cfg.validate()?;
    let out = opts.out.clone();
    let fresh = !out.exists();
    let r = match cfg.dtype {
        Dtype::F32 => execute_as::<f32>(cfg, opts),
        Dtype::F64 => execute_as::<f64>(cfg, opts),
    };
    if let Err(Error::Interrupted { .. }) = &r {
        for f in RUN_FILES {
            let _ = std::fs::remove_file(out.join(f));
        }
        if fresh {
            let _ = std::fs::remove_dir(&out);
        }
    }
    r
}

fn execute_as<T: Float>(cfg: &RunConfig, opts: RunOptions) -> Result<RunResult> {
    let mut run = Prepared::<T>::new(cfg, &opts.data_dir, &opts.out, cfg.threads)?;
    let outcome = run.train_alone(opts.progress)?;
    run.finish(outcome, None)
}

/// Run the configs of `runs` (`(config, run directory)`) together: every full-batch run (one
/// training image, or a list trained as one batch) is grouped with the others of the same
/// architecture, image shape and precision and trained with [`crate::nn::group::train_group`]
/// over `threads` threads (each net on one thread, bit-identical to running it alone); the rest
/// run alone, one after another, with `threads` threads. Returns one result per run, in order,
/// exactly as [`execute`] would (a diverged run is `Ok` with `status = diverged`).
pub fn execute_group(runs: &[(RunConfig, PathBuf)], data_dir: &Path, threads: usize) -> Vec<Result<RunResult>> {
    let mut results: Vec<Option<Result<RunResult>>> = runs.iter().map(|_| None).collect();
    for dtype in [Dtype::F32, Dtype::F64] {
        let idx: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].0.dtype == dtype).collect();
        let part: Vec<(usize, Result<RunResult>)> = match dtype {
            Dtype::F32 => execute_group_as::<f32>(runs, &idx, data_dir, threads),
            Dtype::F64 => execute_group_as::<f64>(runs, &idx, data_dir, threads),
        };
        for (i, r) in part {
            results[i] = Some(r);
        }
    }
    results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::Other("run not attempted".into())))).collect()
}

fn execute_group_as<T: Float>(
    runs: &[(RunConfig, PathBuf)],
    idx: &[usize],
    data_dir: &Path,
    threads: usize,
) -> Vec<(usize, Result<RunResult>)> {
    let mut done = Vec::with_capacity(idx.len());
    // Set every run up; the full-batch ones wait for their group, the others run alone now.
    let mut waiting: Vec<(usize, Prepared<T>)> = Vec::new();
    for &i in idx {
        let (cfg, out) = &runs[i];
        let prepared = cfg.validate().and_then(|_| Prepared::<T>::new(cfg, data_dir, out, 1));
        match prepared {
            Err(e) => done.push((i, Err(e))),
            Ok(p) if p.full_batch() => waiting.push((i, p)),
            Ok(mut p) => {
                let r = p.rethread(threads).and_then(|_| p.train_alone(&mut |_, _| true)).and_then(|o| p.finish(o, None));
                done.push((i, r));
            }
        }
    }
    // One group per architecture, shape and convolution algorithm, in the order the runs came.
    while let Some((_, first)) = waiting.first() {
        let key = (first.net.cfg.clone(), first.net.shape, first.cfg.conv_algo);
        let (group, rest): (Vec<_>, Vec<_>) =
            waiting.into_iter().partition(|(_, p)| p.net.cfg == key.0 && p.net.shape == key.1 && p.cfg.conv_algo == key.2);
        waiting = rest;
        done.extend(train_prepared_group(group, threads));
    }
    done
}

/// Train one group of prepared full-batch runs of one architecture together over `threads`
/// threads and finish each; an error that stops the whole group is every member's result.
fn train_prepared_group<T: Float>(mut group: Vec<(usize, Prepared<T>)>, threads: usize) -> Vec<(usize, Result<RunResult>)> {
    let xs: Vec<Vec<T>> = group.iter().map(|(_, p)| p.batch()).collect();
    let size = group.len();
    let trained = Engine::new(threads).map(|e| e.with_conv_algo(group[0].1.cfg.conv_algo)).and_then(|eng| {
        let members: Vec<group::Member<'_, T>> = group
            .iter_mut()
            .zip(&xs)
            .map(|((_, p), x)| group::Member { net: &mut p.net, x, n: p.inputs.examples.len(), cfg: &p.cfg.train })
            .collect();
        group::train_group(&eng, members, &|_, _, _| true).map(|outcomes| (outcomes, eng.threads()))
    });
    match trained {
        Ok((outcomes, threads)) => {
            group.into_iter().zip(outcomes).map(|((i, p), o)| (i, o.and_then(|o| p.finish(o, Some(GroupInfo { size, threads }))))).collect()
        }
        Err(e) => {
            let msg = e.to_string();
            group.into_iter().map(|(i, _)| (i, Err(Error::Other(msg.clone())))).collect()
        }
    }
}

/// How a run trained as one of a group ([`execute_group`]), in `result.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Nets trained together.
    pub size: usize,
    /// Threads the group was spread over (each net computes on one).
    pub threads: usize,
}

/// A run set up to train: its config as run, inputs, initialised net and engine; the run
/// directory holds `config.toml` and `init.safetensors`.
struct Prepared<T: Float> {
    cfg: RunConfig,
    inputs: Inputs,
    train_images: Option<data::Images>,
    net: Net<T>,
    eng: Engine,
    out: PathBuf,
    data_dir: PathBuf,
    t0: Instant,
    started: String,
}

impl<T: Float> Prepared<T> {
    /// Read the data, build and initialise the net for `cfg` on an engine of `threads` threads
    /// (recorded as the config's `threads`), and write the run directory's first two files.
    fn new(cfg: &RunConfig, data_dir: &Path, out: &Path, threads: usize) -> Result<Self> {
        let t0 = Instant::now();
        let started = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        check_data_dir(data_dir)?;
        let inputs = inputs::load(data_dir, cfg)?;
        let shape = inputs.shape;
        // The config as run: with the shape the data gave and the FCN width it implies.
        let mut cfg = cfg.clone();
        cfg.threads = threads;
        cfg.shape = Some(shape);
        cfg.model.width = Some(cfg.model.width_for(shape));
        cfg.model.validate_for(shape)?;
        let train_images = match &cfg.train_set {
            Some(ts) if ts.indices.is_empty() => {
                let (d, split) = ts.source()?;
                let imgs = data::load_images(data_dir, d, split)?.view(cfg.gray)?;
                if imgs.shape() != shape {
                    return Err(Error::invalid(
                        "train-set",
                        format!(
                            "{} gives {} images, but the model takes {shape} (a canvas with a training set is not supported)",
                            ts.data,
                            imgs.shape()
                        ),
                    ));
                }
                Some(imgs)
            }
            _ => None,
        };
        if out.join("result.json").exists() {
            return Err(Error::invalid("out", format!("{} already holds a finished run; choose another --out", out.display())));
        }
        let eng = Engine::new(cfg.threads)?.with_conv_algo(cfg.conv_algo);
        let mut net = Net::<T>::new(&cfg.model, shape)?;
        match &cfg.init.from {
            Some(p) => net.load_safetensors(&fsutil::read(p)?, p)?,
            None => net.init(cfg.init.scheme, cfg.init.scale, cfg.seed),
        }
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        write_atomic(&out.join("config.toml"), cfg.to_toml()?.as_bytes())?;
        write_atomic(&out.join("init.safetensors"), &net.to_safetensors(Some(weight_metadata(&cfg)))?)?;
        Ok(Prepared { cfg, inputs, train_images, net, eng, out: out.to_path_buf(), data_dir: data_dir.to_path_buf(), t0, started })
    }

    /// Whether this run trains full batch (the one training image, or a list of them no larger
    /// than a batch), not in minibatches.
    fn full_batch(&self) -> bool {
        match (&self.cfg.train_set, &self.train_images) {
            (Some(_), Some(_)) => false,
            (Some(ts), None) => self.inputs.examples.len() <= ts.batch,
            (None, _) => true,
        }
    }

    /// The full batch `[n, C·H·W]`: every training example, in order.
    fn batch(&self) -> Vec<T> {
        self.inputs.examples.iter().flatten().map(|&v| T::from_f64(v as f64)).collect()
    }

    /// Compute on `threads` threads instead (rewrites `config.toml`, which records them).
    fn rethread(&mut self, threads: usize) -> Result<()> {
        self.cfg.threads = threads;
        self.eng = Engine::new(threads)?.with_conv_algo(self.cfg.conv_algo);
        write_atomic(&self.out.join("config.toml"), self.cfg.to_toml()?.as_bytes())
    }

    /// Train on this run's own engine.
    fn train_alone(&mut self, progress: &mut (dyn FnMut(u64, f64) -> bool + Send)) -> Result<TrainOutcome> {
        let (cfg, eng, shape) = (&self.cfg, &self.eng, self.inputs.shape);
        if self.full_batch() {
            let x = self.batch();
            return train::train(eng, &mut self.net, &x, self.inputs.examples.len(), &cfg.train, progress);
        }
        match (&cfg.train_set, &self.train_images) {
            (Some(ts), Some(imgs)) => {
                let count = if ts.limit == 0 { imgs.count } else { ts.limit.min(imgs.count) };
                let pixels = &imgs.pixels[..count * shape.len()];
                train::train_minibatch(eng, &mut self.net, pixels, count, ts.batch, ts.epochs, cfg.seed, &cfg.train, progress)
            }
            (Some(ts), _) => {
                // A list of images larger than a batch: minibatches over the list (its pixels are
                // k/255 values, so the u8 round trip is exact).
                let ex = &self.inputs.examples;
                let pixels: Vec<u8> = ex.iter().flatten().map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
                train::train_minibatch(eng, &mut self.net, &pixels, ex.len(), ts.batch, ts.epochs, cfg.seed, &cfg.train, progress)
            }
            (None, _) => unreachable!("a run without a training set trains full batch"),
        }
    }

    /// Write the trained weights, `loss.csv`, the evaluation and its figures, and `result.json`.
    fn finish(self, outcome: TrainOutcome, group: Option<GroupInfo>) -> Result<RunResult> {
        let Prepared { cfg, inputs, net, eng, out, data_dir, t0, started, .. } = self;
        let (cfg, out, shape) = (&cfg, &out, inputs.shape);
        write_atomic(&out.join("weights.safetensors"), &net.to_safetensors(Some(weight_metadata(cfg)))?)?;
        let mut csv = String::with_capacity(outcome.losses.len() * 24);
        csv.push_str("step,loss\n");
        for (i, l) in outcome.losses.iter().enumerate() {
            csv.push_str(&format!("{i},{l:e}\n"));
        }
        write_atomic(&out.join("loss.csv"), csv.as_bytes())?;

        let evaluation = if outcome.status == Status::Diverged {
            None
        } else {
            let (eval, outputs) = evaluate(&eng, &net, &inputs);
            write_atomic(&out.join("predictions.png"), &predictions_png(&cfg.model.label(), &inputs, &outputs, &eval)?)?;
            write_atomic(&out.join("outputs.png"), &outputs_png(shape, &outputs)?)?;
            Some(eval)
        };
        let finite = |v: f64| v.is_finite().then_some(v);
        let result = RunResult {
            status: outcome.status,
            steps: outcome.steps,
            final_loss: finite(outcome.final_loss),
            initial_loss: outcome.losses.first().copied().and_then(finite),
            seed: cfg.seed,
            threads: eng.threads(),
            conv_algo: eng.conv_algo(),
            group,
            params: net.num_params(),
            train_seconds: outcome.wall_s,
            ms_per_step: outcome.ms_per_step,
            total_seconds: t0.elapsed().as_secs_f64(),
            started,
            data_dir,
            versions: Versions::current(),
            config: cfg.clone(),
            input: InputStats::of(&inputs),
            evaluation,
        };
        let json = serde_json::to_vec_pretty(&result).map_err(|e| Error::Other(format!("result.json: {e}")))?;
        write_atomic(&out.join("result.json"), &json)?;
        Ok(result)
    }
}

fn weight_metadata(cfg: &RunConfig) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    m.insert("idcrisis_model".to_string(), serde_json::to_string(&cfg.model).unwrap_or_default());
    m
}

/// Outputs of `net` on the training image followed by every probe, `[1 + probes, C·H·W]` as f32.
pub fn outputs<T: Float>(eng: &Engine, net: &Net<T>, train: &[f32], probes: &[Probe]) -> Vec<Vec<f32>> {
    let mut xs: Vec<f32> = Vec::with_capacity((probes.len() + 1) * train.len());
    xs.extend_from_slice(train);
    for p in probes {
        xs.extend_from_slice(&p.image);
    }
    predict_f32(eng, net, &xs, probes.len() + 1)
}

/// Outputs of `net` on `count` images `xs [count, C·H·W]` given as f32, in batches of 16.
pub fn predict_f32<T: Float>(eng: &Engine, net: &Net<T>, xs: &[f32], count: usize) -> Vec<Vec<f32>> {
    let dim = net.shape.len();
    let xs: Vec<T> = xs.iter().map(|&v| T::from_f64(v as f64)).collect();
    let ys = net.predict(eng, &xs, count, 16);
    ys.chunks(dim).map(|c| c.iter().map(|v| Float::to_f64(*v) as f32).collect()).collect()
}

/// Score `net` on the probes of `inputs`; also returns the raw outputs (training image first).
pub fn evaluate<T: Float>(eng: &Engine, net: &Net<T>, inputs: &Inputs) -> (Evaluation, Vec<Vec<f32>>) {
    let outs = outputs(eng, net, &inputs.train, &inputs.probes);
    let set = inputs.listed;
    let scores: Vec<ProbeScore> = inputs
        .probes
        .iter()
        .zip(&outs[1..])
        .map(|(p, o)| {
            let s = metrics::score(p, o, &inputs.train, inputs.shape, inputs.window.as_ref());
            ProbeScore { set: set.then(|| metrics::set_score(o, &inputs.examples)), ..s }
        })
        .collect();
    let example_mse = if set {
        let ex: Vec<f32> = inputs.examples.iter().flatten().copied().collect();
        let ys = predict_f32(eng, net, &ex, inputs.examples.len());
        ys.iter().zip(&inputs.examples).map(|(y, e)| metrics::mse(y, e)).collect()
    } else {
        Vec::new()
    };
    let eval = Evaluation {
        train_mse: metrics::mse(&outs[0], &inputs.train),
        example_mse,
        categories: metrics::by_category(&scores),
        probes: scores,
    };
    (eval, outs)
}

/// `outs` (each of `shape`, 1 or 3 channels) side by side in one 8-bit PNG, values clamped to
/// [0, 1]: gray for one channel, RGB for three.
pub fn outputs_png(shape: Shape, outs: &[Vec<f32>]) -> Result<Vec<u8>> {
    let (h, w, c) = (shape.height, shape.width, shape.channels);
    let total_w = w * outs.len();
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut buf = vec![0u8; h * total_w * if c == 3 { 3 } else { 1 }];
    for (i, o) in outs.iter().enumerate() {
        for y in 0..h {
            for x in 0..w {
                let px = y * total_w + i * w + x;
                if c == 3 {
                    for ch in 0..3 {
                        buf[px * 3 + ch] = q(o[(ch * h + y) * w + x]);
                    }
                } else {
                    buf[px] = q(o[y * w + x]);
                }
            }
        }
    }
    let color = if c == 3 { image::ExtendedColorType::Rgb8 } else { image::ExtendedColorType::L8 };
    let mut png = Vec::new();
    image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut png), &buf, total_w as u32, h as u32, color)
        .map_err(|e| Error::Other(format!("outputs.png: {e}")))?;
    Ok(png)
}

/// The outputs saved by [`outputs_png`] for a run of `shape` (1 or 3 channels), as `[C·H·W]`
/// vectors in [0, 1] (8-bit precision).
pub fn read_outputs_png(path: &Path, shape: Shape) -> Result<Vec<Vec<f32>>> {
    let img = image::open(path).map_err(|e| Error::bad_data(path, e.to_string()))?;
    let (h, w) = (shape.height, shape.width);
    if img.height() as usize != h || !(img.width() as usize).is_multiple_of(w) {
        return Err(Error::bad_data(path, format!("{}×{} is not a row of {shape} images", img.width(), img.height())));
    }
    let n = img.width() as usize / w;
    let rgb = img.to_rgb8();
    Ok((0..n)
        .map(|i| {
            let mut o = vec![0.0f32; shape.len()];
            for ch in 0..shape.channels {
                for y in 0..h {
                    for x in 0..w {
                        let p = rgb.get_pixel((i * w + x) as u32, y as u32);
                        o[(ch * h + y) * w + x] = p.0[if shape.channels == 3 { ch } else { 0 }] as f32 / 255.0;
                    }
                }
            }
            o
        })
        .collect())
}

/// The paper's prediction figure for one model.
pub fn predictions_png(label: &str, inputs: &Inputs, outs: &[Vec<f32>], eval: &Evaluation) -> Result<Vec<u8>> {
    let mut images = vec![Some(inputs.train.clone())];
    images.extend(inputs.probes.iter().map(|p| Some(p.image.clone())));
    let outputs: Vec<Option<Vec<f32>>> = outs.iter().cloned().map(Some).collect();
    let mut in_labels = vec!["training image".to_string()];
    in_labels.extend(inputs.probes.iter().map(|p| p.name.clone()));
    let mut out_labels = vec![format!("mse {:.1e}", eval.train_mse)];
    out_labels.extend(eval.probes.iter().map(|s| format!("id {:.2} / const {:.2}", s.corr_identity, s.corr_constant)));
    let paper = &eval.categories.get("paper");
    let title = match paper {
        Some(s) => {
            format!("{label}: mean corr to identity {:.2}, to constant {:.2} ({} fixed probes)", s.corr_identity, s.corr_constant, s.count)
        }
        None => label.to_string(),
    };
    figures::image_grid(&title, inputs.shape, &["input".into(), "output".into()], &[in_labels, out_labels], &[images, outputs], Some(0))
}

/// A net rebuilt from `cfg` with the weights in `weights`, and the inputs `cfg` describes: how a
/// finished run (or sweep cell) is opened for probing and figures.
pub fn open<T: Float>(data_dir: &Path, cfg: &RunConfig, weights: &Path) -> Result<(Net<T>, Inputs)> {
    let inputs = inputs::load(data_dir, cfg)?;
    Ok((load_net(cfg, inputs.shape, weights)?, inputs))
}

/// The net of `cfg` for images of `shape`, with the weights in `weights`.
pub fn load_net<T: Float>(cfg: &RunConfig, shape: Shape, weights: &Path) -> Result<Net<T>> {
    let mut net = Net::<T>::new(&cfg.model, shape)?;
    net.load_safetensors(&fsutil::read(weights)?, weights)?;
    Ok(net)
}

/// Load a finished run's config and trained weights.
pub fn load_run(dir: &Path) -> Result<(RunConfig, PathBuf)> {
    if !dir.join("config.toml").is_file() {
        return Err(Error::invalid("run-dir", format!("{} is not a run directory: it has no config.toml", dir.display())));
    }
    let cfg = RunConfig::load(&dir.join("config.toml"))?;
    let w = dir.join("weights.safetensors");
    if !w.is_file() {
        return Err(Error::invalid("run-dir", format!("{} has no weights.safetensors; is it a finished run directory?", dir.display())));
    }
    Ok((cfg, w))
}
