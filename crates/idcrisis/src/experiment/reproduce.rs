//! Paper experiments as sweeps, and their analysis: figures, CSVs and `summary.md` with the
//! paper's claims beside our numbers.
//!
//! Implemented: `fcn` (Fig. 2), `cnn-depth` (Fig. 3), `hidden`, `linear`, `kernels`, `channels`,
//! `resnet`, `fcn-60k` and `cifar`. Every experiment is a sweep under `OUT/sweep`, so it resumes
//! after a crash and can be sent to Slurm (`--plan-only`).
//!
//! Each experiment is one [`Spec`]: its sweep per [`Scale`] as data ([`SweepSpec`]: fixed keys,
//! grid axes, zipped axes), how cells group into nets, its figures, its summary table and its
//! claims. [`SweepSpec::to_table`] is the one place a spec becomes a sweep file. Each claim in
//! `summary.md` carries a [`Verdict`] computed from our numbers ([`claims`]).

use crate::data;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::eval::metrics;
use crate::experiment::beyond;
use crate::experiment::config::RunConfig;
use crate::experiment::run;
use crate::experiment::sweep::{self, CellState};
use crate::figures;
use crate::fsutil::{self, write_atomic};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A reproducible experiment of the paper. What each one runs, groups, draws and claims is its
/// [`Spec`] ([`Experiment::spec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Experiment {
    /// Fig. 2: FCNs of width 784.
    Fcn,
    /// Fig. 3: ReLU CNNs by depth.
    CnnDepth,
    /// Hidden-layer maps of an untrained 20-layer CNN and trained 7-, 14- and 20-layer CNNs.
    Hidden,
    /// Depth × kernel size.
    Kernels,
    /// Depth × channels.
    Channels,
    /// Linear CNNs and FCNs by depth.
    Linear,
    /// `cnn-depth` with a CIFAR-10 training image.
    Cifar,
    /// FCNs trained on all 60,000 MNIST training images.
    Fcn60k,
    /// Residual against plain CNNs by depth.
    Resnet,
    /// Beyond the paper: padding, bias, canvas and coordinate ablations of the border hypothesis.
    Boundary,
    /// Beyond the paper: nets trained on k images.
    KExamples,
    /// Beyond the paper: trained nets iterated, and their Jacobians at the training images.
    Attractors,
    /// Which init × optimizer × learning rate gives Fig. 3's picture at both ends.
    Protocols,
}

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Tiny nets and a few steps, for tests.
    Micro,
    /// Minutes on 2 cores.
    Quick,
    /// What the paper did.
    Full,
}

impl Scale {
    /// Training steps at this scale for an experiment that runs `full` steps at full scale.
    pub(crate) fn steps(self, full: u64) -> u64 {
        match self {
            Scale::Micro => 8,
            Scale::Quick => full.min(3000),
            Scale::Full => full,
        }
    }

    /// `micro`, `quick` or `full`.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Micro => "micro",
            Scale::Quick => "quick",
            Scale::Full => "full",
        }
    }
}

impl Experiment {
    /// Every experiment, in the order `all` runs them.
    pub const ALL: [Experiment; 13] = [
        Experiment::Fcn,
        Experiment::CnnDepth,
        Experiment::Hidden,
        Experiment::Linear,
        Experiment::Kernels,
        Experiment::Channels,
        Experiment::Resnet,
        Experiment::Fcn60k,
        Experiment::Cifar,
        Experiment::Boundary,
        Experiment::KExamples,
        Experiment::Attractors,
        Experiment::Protocols,
    ];

    /// Parse a command-line name.
    pub fn parse(s: &str) -> Result<Self> {
        Experiment::ALL.into_iter().find(|e| e.name() == s).ok_or_else(|| {
            Error::invalid(
                "experiment",
                format!("{s:?} is not an experiment; available: {}, all", Experiment::ALL.map(|e| e.name()).join(", ")),
            )
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Everything about it.
    pub fn spec(self) -> &'static Spec {
        match self {
            Experiment::Fcn => &FCN,
            Experiment::CnnDepth => &CNN_DEPTH,
            Experiment::Hidden => &HIDDEN,
            Experiment::Kernels => &KERNELS,
            Experiment::Channels => &CHANNELS,
            Experiment::Linear => &LINEAR,
            Experiment::Cifar => &CIFAR,
            Experiment::Fcn60k => &FCN60K,
            Experiment::Resnet => &RESNET,
            Experiment::Boundary => &beyond::BOUNDARY,
            Experiment::KExamples => &beyond::K_EXAMPLES,
            Experiment::Attractors => &beyond::ATTRACTORS,
            Experiment::Protocols => &crate::experiment::protocols::PROTOCOLS,
        }
    }
}

/// Depths of the paper's Fig. 3.
pub const PAPER_DEPTHS: [usize; 13] = [1, 3, 5, 7, 9, 11, 12, 14, 15, 16, 18, 19, 20];
/// Depths of `cnn-depth --quick`.
pub const QUICK_DEPTHS: [usize; 8] = [1, 3, 5, 7, 9, 12, 15, 20];
/// The CIFAR-10 training image of `cifar` (test #3, a ship).
pub const CIFAR_IMAGE: &str = "cifar-10:test:3";
/// ρ values of the random-ρ probes in every experiment.
const RHOS: [f64; 3] = [0.0, 0.5, 0.9];

/// A sweep as data: keys fixed for every cell, grid axes (their Cartesian product) and zipped
/// axes (lists of one length that vary together, the sweep file's `[zip]`). Keys are dotted run
/// config keys (`model.depth`); each key is in at most one of the three lists (setting a key
/// again moves it). [`SweepSpec::to_table`] turns it into the sweep file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepSpec {
    /// Keys with one value for every cell.
    pub base: Vec<(&'static str, toml::Value)>,
    /// Grid axes, one per key.
    pub grid: Vec<(&'static str, Vec<toml::Value>)>,
    /// Zipped keys: one axis together.
    pub zip: Vec<(&'static str, Vec<toml::Value>)>,
}

impl SweepSpec {
    fn remove(&mut self, key: &str) {
        self.base.retain(|e| e.0 != key);
        self.grid.retain(|e| e.0 != key);
        self.zip.retain(|e| e.0 != key);
    }

    /// `key` is `v` in every cell.
    pub fn set(mut self, key: &'static str, v: impl Into<toml::Value>) -> Self {
        self.remove(key);
        self.base.push((key, v.into()));
        self
    }

    /// `key` is a grid axis over `vs`.
    pub fn axis<V: Into<toml::Value>>(mut self, key: &'static str, vs: impl IntoIterator<Item = V>) -> Self {
        self.remove(key);
        self.grid.push((key, vs.into_iter().map(Into::into).collect()));
        self
    }

    /// `key` varies over `vs` together with the other zipped keys.
    pub fn zip<V: Into<toml::Value>>(mut self, key: &'static str, vs: impl IntoIterator<Item = V>) -> Self {
        self.remove(key);
        self.zip.push((key, vs.into_iter().map(Into::into).collect()));
        self
    }

    /// Every dotted key it sets.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.base.iter().map(|e| e.0).chain(self.grid.iter().map(|e| e.0)).chain(self.zip.iter().map(|e| e.0))
    }

    /// The sweep file as a table (the one place a spec becomes a sweep file). The cells'
    /// order follows from the table: [`sweep::expand`] takes the grid axes in key order, then
    /// the zip axis.
    pub fn to_table(&self) -> Result<toml::Table> {
        fn put(t: &mut toml::Table, key: &str, v: toml::Value) -> Result<()> {
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts.pop().unwrap_or(key);
            let mut cur = t;
            for p in parts {
                let e = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                cur = e.as_table_mut().ok_or_else(|| Error::Other(format!("sweep spec: {key}: {p} is not a table")))?;
            }
            if cur.insert(last.to_string(), v).is_some() {
                return Err(Error::Other(format!("sweep spec: {key} is set twice")));
            }
            Ok(())
        }
        let mut t = toml::Table::new();
        for (k, v) in &self.base {
            put(&mut t, k, v.clone())?;
        }
        for (k, vs) in &self.grid {
            put(&mut t, k, toml::Value::Array(vs.clone()))?;
        }
        if !self.zip.is_empty() {
            let mut z = toml::Table::new();
            for (k, vs) in &self.zip {
                put(&mut z, k, toml::Value::Array(vs.clone()))?;
            }
            put(&mut t, "zip", toml::Value::Table(z))?;
        }
        Ok(t)
    }
}

fn ints(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

/// A ReLU CNN trained with idcrisis's default protocol (Adam 3e-4, MSE < 1e-4), depth as an axis.
fn cnn(scale: Scale, channels: i64, kernel: i64, depths: &[usize]) -> SweepSpec {
    SweepSpec::default()
        .set("model.arch", "cnn")
        .set("model.kernel", kernel)
        .set("model.channels", channels)
        .axis("model.depth", ints(depths))
        .set("train.optimizer", "adam")
        .set("train.lr", 3e-4)
        .set("train.tol", 1e-4)
        .set("train.steps", scale.steps(10000) as i64)
}

/// `cnn-depth` and `cifar`: two training protocols side by side, idcrisis's default (Adam 3e-4)
/// and SGD with momentum 0.9, lr 0.01, which gave the paper's clean constant at depth 20 in the
/// independent PyTorch run.
fn cnn_depth(scale: Scale) -> SweepSpec {
    match scale {
        Scale::Micro => cnn(scale, 4, 3, &[1, 2, 3]),
        Scale::Quick => cnn(scale, 16, 5, &QUICK_DEPTHS),
        Scale::Full => cnn(scale, 128, 5, &PAPER_DEPTHS),
    }
    .zip("train.optimizer", ["adam", "momentum"])
    .zip("train.lr", [3e-4, 0.01])
    .zip("train.momentum", [0.9, 0.9])
}

/// What happens after the sweep: how the cells of one net are labelled, the figures and the
/// summary.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Analysis {
    /// Per-net correlations: `figures` draws from them, `table` is the start of `summary.md`,
    /// `claims` the paper's claims (or pre-registered predictions), each with our numbers and a
    /// verdict. `extra`, when given, analyses the trained nets themselves (weights) and returns
    /// a further summary section and its claims.
    Nets {
        figures: fn(&Spec, &[NetSummary], &Path) -> Result<()>,
        table: fn(&Spec, &[NetSummary]) -> String,
        claims: fn(&[NetSummary]) -> Vec<Claim>,
        extra: Option<ExtraFn>,
    },
    /// Hidden-layer maps ([`crate::experiment::hidden`]), which also write the summary.
    HiddenMaps,
}

/// An `extra` analysis step: a further `summary.md` section and its claims.
pub(crate) type ExtraFn = fn(&Extra) -> Result<(String, Vec<Claim>)>;

/// What an [`Analysis::Nets`] `extra` step sees: the experiment, its output and sweep
/// directories, the planned cells, the data and the engine, and the per-net summaries.
pub(crate) struct Extra<'a> {
    pub spec: &'a Spec,
    pub out: &'a Path,
    pub dir: &'a Path,
    pub plan: &'a [sweep::Cell],
    pub data_dir: &'a Path,
    pub eng: &'a Engine,
    pub nets: &'a [NetSummary],
}

/// One experiment, everything about it in one place.
#[derive(Debug)]
pub struct Spec {
    /// Which.
    pub exp: Experiment,
    /// Command-line name (also the file stem of its outputs).
    pub name: &'static str,
    /// One line on what it does (in the sweep file's header).
    pub about: &'static str,
    /// The heading of `summary.md` (the scale-independent facts: full-scale sizes).
    pub heading: &'static str,
    /// The sweep at a scale, without the `seed` axis and `rho` (added by [`sweep_spec`]).
    pub(crate) sweep: fn(Scale) -> SweepSpec,
    /// Label of the net a cell belongs to: cells that differ only by seed share it.
    pub(crate) label: fn(&RunConfig) -> String,
    /// Title of `<name>-predictions.png`, the outputs of each net's first seed on the probes;
    /// `None`: no such figure.
    pub(crate) predictions: Option<&'static str>,
    pub(crate) analysis: Analysis,
}

fn act_name(c: &RunConfig) -> &'static str {
    if c.model.act == crate::nn::layers::Activation::Relu {
        "ReLU"
    } else {
        "linear"
    }
}

pub(crate) fn no_figures(_: &Spec, _: &[NetSummary], _: &Path) -> Result<()> {
    Ok(())
}

const FCN: Spec = Spec {
    exp: Experiment::Fcn,
    name: "fcn",
    about: "Fig. 2: FCNs, linear and ReLU, 1 to 6 layers",
    heading: "fcn (Fig. 2): FCNs of width 784 trained on one image",
    // The protocol of the independent PyTorch run that matched the paper: plain GD, lr 0.1.
    sweep: |scale| {
        SweepSpec::default()
            .set("model.arch", "fcn")
            .set("model.width", if scale == Scale::Micro { 16 } else { 784 })
            .set("train.optimizer", "gd")
            .set("train.lr", 0.1)
            .set("train.tol", 1e-4)
            .set("train.steps", scale.steps(20000) as i64)
            .zip("model.depth", [1, 2, 2, 6, 6])
            .zip("model.act", ["linear", "linear", "relu", "linear", "relu"])
    },
    label: |c| format!("FCN {}-layer {}", c.model.depth, act_name(c)),
    predictions: Some("Fig. 2: FCNs (width 784) trained on one \"7\"; outputs on unseen probes"),
    analysis: Analysis::Nets { figures: no_figures, table: summary_fcn, claims: claims_fcn, extra: None },
};

const CNN_DEPTH: Spec = Spec {
    exp: Experiment::CnnDepth,
    name: "cnn-depth",
    about: "Fig. 3: ReLU CNNs by depth, under two training protocols",
    heading: "cnn-depth (Fig. 3): ReLU CNNs (5×5) trained on one image, by depth",
    sweep: cnn_depth,
    label: |c| format!("CNN depth {} ({})", c.model.depth, protocol(c)),
    predictions: Some("Fig. 3: ReLU CNNs (5×5) trained on one \"7\", by depth; outputs on unseen probes"),
    analysis: Analysis::Nets { figures: figures_cnn_depth, table: summary_cnn_depth, claims: claims_cnn_depth, extra: None },
};

const CIFAR: Spec = Spec {
    exp: Experiment::Cifar,
    name: "cifar",
    about: "cnn-depth with a CIFAR-10 training image",
    heading: "cifar: ReLU CNNs (5×5) trained on one CIFAR-10 image (cifar-10:test:3, 3×32×32 colour), by depth",
    sweep: |scale| cnn_depth(scale).set("train_image", CIFAR_IMAGE),
    label: CNN_DEPTH.label,
    predictions: Some("ReLU CNNs (5×5) trained on one CIFAR-10 image, by depth; outputs on unseen probes"),
    analysis: CNN_DEPTH.analysis,
};

const HIDDEN: Spec = Spec {
    exp: Experiment::Hidden,
    name: "hidden",
    about: "hidden-layer maps of an untrained and of trained 7-, 14- and 20-layer CNNs",
    heading: "hidden: hidden-layer maps",
    // SGD with momentum: the protocol under which the deep CNN memorizes the clean "7" (see
    // cnn-depth), so the maps show how the constant forms.
    sweep: |scale| {
        match scale {
            Scale::Micro => cnn(scale, 4, 3, &[2, 3]),
            Scale::Quick => cnn(scale, 16, 5, &[7, 14, 20]),
            Scale::Full => cnn(scale, 128, 5, &[7, 14, 20]),
        }
        .set("train.optimizer", "momentum")
        .set("train.lr", 0.01)
        .set("train.momentum", 0.9)
    },
    label: |c| format!("CNN depth {}", c.model.depth),
    predictions: None,
    analysis: Analysis::HiddenMaps,
};

const KERNELS: Spec = Spec {
    exp: Experiment::Kernels,
    name: "kernels",
    about: "ReLU CNNs, depth × kernel size",
    heading: "kernels: depth × kernel",
    sweep: |scale| match scale {
        Scale::Micro => cnn(scale, 4, 3, &[1, 2]).axis("model.kernel", [3, 5]),
        Scale::Quick => cnn(scale, 8, 5, &[1, 3, 5, 9, 13]).axis("model.kernel", [3, 5, 7, 9, 11, 13]),
        Scale::Full => cnn(scale, 128, 5, &PAPER_DEPTHS).axis("model.kernel", [3, 5, 7, 9, 11, 13]),
    },
    label: |c| format!("k={} depth {}", c.model.kernel, c.model.depth),
    predictions: None,
    analysis: Analysis::Nets { figures: figures_grid2d, table: summary_grid2d, claims: claims_kernels, extra: None },
};

const CHANNELS: Spec = Spec {
    exp: Experiment::Channels,
    name: "channels",
    about: "ReLU CNNs, depth × channels",
    heading: "channels: depth × channels",
    sweep: |scale| match scale {
        Scale::Micro => cnn(scale, 4, 3, &[1, 2]).axis("model.channels", [2, 4]),
        Scale::Quick => cnn(scale, 8, 5, &[1, 3, 5, 9, 13]).axis("model.channels", [4, 8, 16, 32]),
        Scale::Full => cnn(scale, 8, 5, &PAPER_DEPTHS).axis("model.channels", [8, 16, 32, 64, 128, 256, 512, 1024]),
    },
    label: |c| format!("C={} depth {}", c.model.channels, c.model.depth),
    predictions: None,
    analysis: Analysis::Nets { figures: figures_grid2d, table: summary_grid2d, claims: claims_channels, extra: None },
};

const LINEAR: Spec = Spec {
    exp: Experiment::Linear,
    name: "linear",
    about: "linear CNNs and FCNs by depth",
    heading: "linear: linear CNNs (5×5) and FCNs (width 784) by depth",
    sweep: |scale| {
        let (ch, depths): (i64, &[usize]) = match scale {
            Scale::Micro => (4, &[1, 2]),
            Scale::Quick => (16, &[1, 3, 5, 9, 15, 20]),
            Scale::Full => (128, &PAPER_DEPTHS),
        };
        let m = scale == Scale::Micro;
        SweepSpec::default()
            .axis("model.arch", ["cnn", "fcn"])
            .set("model.act", "linear")
            .set("model.kernel", if m { 3 } else { 5 })
            .set("model.channels", ch)
            .set("model.width", if m { 16 } else { 784 })
            .axis("model.depth", ints(depths))
            .set("train.optimizer", "adam")
            .set("train.lr", 3e-4)
            .set("train.tol", 1e-4)
            .set("train.steps", scale.steps(10000) as i64)
    },
    label: |c| format!("{} depth {}", if c.model.arch == crate::nn::model::Arch::Cnn { "CNN" } else { "FCN" }, c.model.depth),
    predictions: Some("Linear CNNs and FCNs trained on one \"7\", by depth; outputs on unseen probes"),
    analysis: Analysis::Nets { figures: figures_linear, table: summary_linear, claims: claims_linear, extra: None },
};

const FCN60K: Spec = Spec {
    exp: Experiment::Fcn60k,
    name: "fcn-60k",
    about: "FCNs trained on MNIST training images with minibatches (all 60,000 at full scale)",
    heading: "fcn-60k: FCNs (width 784) trained on all 60,000 MNIST training images",
    // Adam 1e-3, batches of 128, a fixed number of epochs (tol 0: no early stop).
    sweep: |scale| {
        let (width, limit, epochs, batch) = match scale {
            Scale::Micro => (16, 256, 1, 64),
            Scale::Quick => (784, 10000, 2, 128),
            Scale::Full => (784, 0, 10, 128),
        };
        SweepSpec::default()
            .set("model.arch", "fcn")
            .set("model.width", width)
            .axis("model.depth", [1, 2, 4, 6])
            .axis("model.act", ["relu", "linear"])
            .set("train.optimizer", "adam")
            .set("train.lr", 1e-3)
            .set("train.tol", 0.0)
            .set("train.steps", 100_000_000)
            .set("train_set.data", "mnist:train")
            .set("train_set.limit", limit)
            .set("train_set.batch", batch)
            .set("train_set.epochs", epochs)
    },
    label: FCN.label,
    predictions: Some("FCNs (width 784) trained on all 60,000 MNIST training images; outputs on probes"),
    analysis: Analysis::Nets { figures: no_figures, table: summary_fcn60k, claims: claims_fcn60k, extra: None },
};

const RESNET: Spec = Spec {
    exp: Experiment::Resnet,
    name: "resnet",
    about: "residual against plain CNNs by depth",
    heading: "resnet: residual against plain CNNs (5×5), by depth",
    // Residual (skip around every pair of hidden layers) against plain, default protocol.
    sweep: |scale| {
        match scale {
            Scale::Micro => cnn(scale, 4, 3, &[4, 5]),
            Scale::Quick => cnn(scale, 16, 5, &[4, 6, 10, 14, 20]),
            Scale::Full => cnn(scale, 128, 5, &[4, 6, 8, 10, 12, 14, 16, 18, 20]),
        }
        .axis("model.residual", [false, true])
    },
    label: |c| format!("{} CNN depth {}", if c.model.residual { "residual" } else { "plain" }, c.model.depth),
    predictions: Some("Plain and residual CNNs (5×5) trained on one \"7\", by depth; outputs on unseen probes"),
    analysis: Analysis::Nets { figures: figures_resnet, table: summary_resnet, claims: claims_resnet, extra: None },
};

/// The sweep of an experiment at a scale, with `seeds` seeds (at least 1).
pub fn sweep_spec(exp: Experiment, scale: Scale, seeds: usize) -> SweepSpec {
    (exp.spec().sweep)(scale).set("rho", RHOS.to_vec()).axis("seed", (0..seeds.max(1) as i64).collect::<Vec<_>>())
}

/// The sweep file of an experiment at a scale (what `--quick` scales down is in the README).
pub fn sweep_toml(exp: Experiment, scale: Scale, seeds: usize) -> String {
    let spec = sweep_spec(exp, scale, seeds);
    // The specs are built by the code above; a conflict in one is a bug the tests catch.
    let body = spec
        .to_table()
        .and_then(|t| toml::to_string(&t).map_err(|e| Error::Other(e.to_string())))
        .unwrap_or_else(|e| panic!("{} ({}): {e}", exp.name(), scale.name()));
    format!(
        "# `idcrisis reproduce {}`, {} scale, {} seed(s): {}.\n# A list is a grid axis; the lists under [zip] vary together.\n{body}",
        exp.name(),
        scale.name(),
        seeds.max(1),
        exp.spec().about
    )
}

/// Fail early when a training image an experiment names is not in the data directory.
pub fn check_data(exp: Experiment, data_dir: &Path) -> Result<()> {
    for (k, v) in (exp.spec().sweep)(Scale::Micro).base {
        if let (true, Some(s)) = (k == "train_image", v.as_str()) {
            data::load_image(data_dir, &s.parse()?, None)?;
        }
    }
    Ok(())
}

/// Write `OUT/<experiment>.sweep.toml` and plan it into `OUT/sweep`. An existing sweep file
/// with other text but the same cells (one written by an earlier version) is kept as it is.
pub fn plan(
    exp: Experiment,
    out: &Path,
    scale: Scale,
    seeds: usize,
    slurm: &sweep::SlurmOptions,
    exe: &Path,
    data_dir: &Path,
) -> Result<PathBuf> {
    check_data(exp, data_dir)?;
    let file = out.join(format!("{}.sweep.toml", exp.name()));
    let text = sweep_toml(exp, scale, seeds);
    if !file.is_file() {
        write_atomic(&file, text.as_bytes())?;
    } else if fsutil::read(&file)? != text.as_bytes() && !same_cells(&fsutil::read(&file)?, &text, &file) {
        return Err(Error::invalid(
            "out",
            format!("{} holds this experiment with other settings (--quick or --seeds differ); use another --out", out.display()),
        ));
    }
    let dir = out.join("sweep");
    sweep::plan(&file, &dir, false, slurm, exe, data_dir)?;
    Ok(dir)
}

/// Whether the sweep file text `old` plans the same cells, in the same order, as `new`.
fn same_cells(old: &[u8], new: &str, path: &Path) -> bool {
    let ids = |t: &str| sweep::expand(t, path, false).map(|cells| cells.into_iter().map(|c| c.id).collect::<Vec<_>>()).ok();
    std::str::from_utf8(old).ok().and_then(ids).is_some_and(|o| Some(o) == ids(new))
}

/// Short name of a run's training protocol, e.g. `adam 3e-4` or `momentum 0.01`.
pub fn protocol(c: &RunConfig) -> String {
    let name = serde_json::to_value(c.train.optimizer).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    format!("{name} {}", c.train.lr)
}

/// One net (a group of cells that differ only by seed).
#[derive(Debug, Clone, Serialize)]
pub struct NetSummary {
    /// Label, e.g. `FCN 6-layer relu` or `depth 9`.
    pub label: String,
    /// Training protocol (see [`protocol`]).
    pub protocol: String,
    /// `cnn` or `fcn`.
    pub arch: String,
    /// `relu` or `linear`.
    pub act: String,
    /// Residual CNN.
    pub residual: bool,
    /// CNN kernel side.
    pub kernel: usize,
    /// CNN channels.
    pub channels: usize,
    /// Depth.
    pub depth: usize,
    /// Seeds done.
    pub seeds: usize,
    /// Mean over seeds of the paper-probe mean corr-to-identity, and its min and max.
    pub corr_identity: (f64, f64, f64),
    /// Same for corr-to-constant.
    pub corr_constant: (f64, f64, f64),
    /// Mean corr-to-identity per probe category (mean over seeds).
    pub per_category: BTreeMap<String, (f64, f64)>,
    /// Further numbers, each (mean, min, max) over seeds: `window_identity` and
    /// `window_constant` (paper probes, canvas window) on canvas runs; `mnist_identity`,
    /// `mnist_nearest` and `mnist_blend` (MNIST test probes) and `paper_nearest`, `paper_blend`
    /// on runs trained on several images.
    pub extra: BTreeMap<String, (f64, f64, f64)>,
    /// Seeds that stopped at the step cap without reaching the tolerance.
    pub unconverged: usize,
    /// Seeds whose training diverged (loss NaN or infinite; the cell failed). A net whose every
    /// seed diverged is still listed, with no seeds and NaN correlations.
    pub diverged: usize,
    /// Seeds that collapsed in training: stopped at the step cap with one output whatever the
    /// input ([`metrics::input_independent`] on the paper probes), as when every ReLU died.
    /// Their correlations (0 for a flat output) are in the means above; summaries name them.
    pub collapsed: usize,
    /// The config of its first cell (seed aside, every cell of the net has it).
    #[serde(skip)]
    pub config: RunConfig,
}

/// Mean, min and max of one number over seeds (NaN for none).
fn mean_min_max(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (
        v.iter().sum::<f64>() / v.len() as f64,
        v.iter().cloned().fold(f64::INFINITY, f64::min),
        v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// Per probe category, the mean over seeds of (corr to identity, corr to constant).
fn mean_per_category(per_seed: &BTreeMap<String, Vec<(f64, f64)>>) -> BTreeMap<String, (f64, f64)> {
    per_seed
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            (k.clone(), (v.iter().map(|p| p.0).sum::<f64>() / v.len() as f64, v.iter().map(|p| p.1).sum::<f64>() / v.len() as f64))
        })
        .collect()
}

/// Build figures, CSVs and `summary.md` from the done cells. Returns the summary text.
///
/// With `redraw`, nothing needs the weights: prediction grids come from each cell's
/// `outputs.png`, and the parts computed from trained weights (hidden-layer maps, border reach,
/// attractors) are read back from `OUT/<experiment>-extra.json`, which every analysis with the
/// weights writes. Figures and summaries can so be rebuilt from committed per-cell results.
pub fn analyze(
    exp: Experiment,
    out: &Path,
    data_dir: &Path,
    eng: &Engine,
    projection: crate::experiment::hidden::Projection,
    redraw: bool,
) -> Result<String> {
    let spec = exp.spec();
    let dir = out.join("sweep");
    let plan = sweep::load_plan(&dir)?;
    let mut groups: Vec<(String, Vec<&sweep::Cell>)> = Vec::new();
    for c in &plan {
        let label = (spec.label)(&c.config);
        match groups.iter_mut().find(|g| g.0 == label) {
            Some(g) => g.1.push(c),
            None => groups.push((label, vec![c])),
        }
    }
    let mut nets = Vec::new();
    let mut csv = String::from("net,depth,seed,status,steps,final_loss,category,corr_identity,corr_constant,mse_identity,mse_constant,ssim_identity,ssim_constant\n");
    let mut grid_rows: Vec<Vec<Option<Vec<f32>>>> = Vec::new();
    let mut row_labels = vec!["input".to_string()];
    let mut row_unconverged = vec![false];
    let mut col_labels: Vec<Vec<String>> = Vec::new();
    let mut inputs_row: Option<(crate::shape::Shape, Vec<Option<Vec<f32>>>)> = None;
    let mut skipped = 0;
    let mut total_diverged = 0;
    for (label, cells) in &groups {
        let mut ids = Vec::new();
        let mut cons = Vec::new();
        let mut cats: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut first_done: Option<&sweep::Cell> = None;
        let mut first_eval: Option<run::Evaluation> = None;
        let mut extras: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut unconverged = 0;
        let mut diverged = 0;
        let mut collapsed = 0;
        for c in cells {
            let p = sweep::cell_dir(&dir, c).join("result.json");
            let state = sweep::state(&dir, c);
            if state == CellState::Failed && p.is_file() {
                // A run that diverged writes its result before the cell fails.
                let r: run::RunResult = serde_json::from_slice(&fsutil::read(&p)?).map_err(|e| Error::bad_data(&p, e.to_string()))?;
                if r.status == crate::nn::train::Status::Diverged {
                    diverged += 1;
                    total_diverged += 1;
                    let _ = writeln!(
                        csv,
                        "{label},{},{},diverged,{},NaN,none,NaN,NaN,NaN,NaN,NaN,NaN",
                        c.config.model.depth, c.config.seed, r.steps
                    );
                    continue;
                }
            }
            if state != CellState::Done {
                skipped += 1;
                continue;
            }
            let r: run::RunResult = serde_json::from_slice(&fsutil::read(&p)?).map_err(|e| Error::bad_data(&p, e.to_string()))?;
            let Some(ev) = &r.evaluation else { continue };
            let paper = &ev.categories["paper"];
            ids.push(paper.corr_identity);
            cons.push(paper.corr_constant);
            unconverged += usize::from(r.status == crate::nn::train::Status::MaxSteps);
            let paper_probes: Vec<&metrics::ProbeScore> = ev.probes.iter().filter(|s| s.category.is_paper()).collect();
            collapsed += usize::from(r.status == crate::nn::train::Status::MaxSteps && metrics::input_independent(&paper_probes));
            if let Some(w) = &paper.window {
                extras.entry("window_identity".into()).or_default().push(w.corr_identity);
                extras.entry("window_constant".into()).or_default().push(w.corr_constant);
            }
            for (cat, name) in [("paper", "paper"), ("mnist", "mnist")] {
                let Some(s) = ev.categories.get(cat) else { continue };
                if name == "mnist" {
                    extras.entry("mnist_identity".into()).or_default().push(s.corr_identity);
                }
                if let Some(set) = &s.set {
                    extras.entry(format!("{name}_nearest")).or_default().push(set.corr_nearest);
                    extras.entry(format!("{name}_blend")).or_default().push(set.blend);
                }
            }
            for (cat, s) in &ev.categories {
                cats.entry(cat.clone()).or_default().push((s.corr_identity, s.corr_constant));
                let _ = writeln!(
                    csv,
                    "{label},{},{},{},{},{:e},{cat},{},{},{},{},{},{}",
                    c.config.model.depth,
                    c.config.seed,
                    r.status.as_str(),
                    r.steps,
                    r.final_loss.unwrap_or(f64::NAN),
                    s.corr_identity,
                    s.corr_constant,
                    s.mse_identity,
                    s.mse_constant,
                    s.ssim_identity,
                    s.ssim_constant
                );
            }
            if first_done.is_none() {
                first_done = Some(c);
                first_eval = r.evaluation.clone();
            }
        }
        if ids.is_empty() && diverged == 0 {
            continue;
        }
        let per_category = mean_per_category(&cats);
        // Prediction-grid row: outputs of the first seed, from its `outputs.png` (runs written
        // before that file existed: re-evaluated from the saved weights).
        if let Some(c) = first_done.filter(|_| spec.predictions.is_some()) {
            let cd = sweep::cell_dir(&dir, c);
            let saved = cd.join("outputs.png");
            let (eval, outs, inputs) = match first_eval.take() {
                Some(eval) if saved.is_file() => {
                    let inputs = crate::experiment::inputs::load(data_dir, &c.config)?;
                    (eval, run::read_outputs_png(&saved, inputs.shape)?, inputs)
                }
                _ => {
                    let (net, inputs) = run::open::<f32>(data_dir, &c.config, &cd.join("weights.safetensors"))?;
                    let (eval, outs) = run::evaluate(eng, &net, &inputs);
                    (eval, outs, inputs)
                }
            };
            if inputs_row.is_none() {
                let mut row = vec![Some(inputs.train.clone())];
                row.extend(inputs.probes.iter().map(|p| Some(p.image.clone())));
                inputs_row = Some((inputs.shape, row));
                let mut names = vec!["training image".to_string()];
                names.extend(inputs.probes.iter().map(|p| p.name.clone()));
                col_labels.push(names);
            }
            grid_rows.push(outs.into_iter().map(Some).collect());
            row_labels.push(label.clone());
            row_unconverged.push(unconverged > 0);
            let mut l = vec![format!("mse {:.1e}", eval.train_mse)];
            l.extend(eval.probes.iter().map(|s| format!("id {:.2} / const {:.2}", s.corr_identity, s.corr_constant)));
            col_labels.push(l);
        }
        let m = &cells[0].config.model;
        nets.push(NetSummary {
            protocol: protocol(&cells[0].config),
            arch: if m.arch == crate::nn::model::Arch::Cnn { "cnn".into() } else { "fcn".into() },
            act: if m.act == crate::nn::layers::Activation::Relu { "relu".into() } else { "linear".into() },
            residual: m.residual,
            kernel: m.kernel,
            channels: m.channels,
            label: label.clone(),
            depth: cells[0].config.model.depth,
            seeds: ids.len(),
            corr_identity: mean_min_max(&ids),
            corr_constant: mean_min_max(&cons),
            per_category,
            extra: extras.iter().map(|(k, v)| (k.clone(), mean_min_max(v))).collect(),
            unconverged,
            diverged,
            collapsed,
            config: cells[0].config.clone(),
        });
    }
    if nets.is_empty() {
        return Err(Error::Other(format!("no finished cells in {}; run the sweep first", dir.display())));
    }
    // `hidden.csv` holds the maps' numbers (from the weights); its per-cell table is separate.
    let cells_csv = match spec.analysis {
        Analysis::HiddenMaps => format!("{}-cells.csv", exp.name()),
        Analysis::Nets { .. } => format!("{}.csv", exp.name()),
    };
    write_atomic(&out.join(cells_csv), csv.as_bytes())?;
    write_atomic(&out.join(format!("{}.json", exp.name())), &serde_json::to_vec_pretty(&nets).map_err(|e| Error::Other(e.to_string()))?)?;
    if let (Some((shape, inputs)), Some(title)) = (inputs_row, spec.predictions) {
        let mut rows = vec![inputs];
        rows.extend(grid_rows);
        let png = figures::image_grid_marked(title, shape, &row_labels, &row_unconverged, &col_labels, &rows, Some(0))?;
        write_atomic(&out.join(format!("{}-predictions.png", exp.name())), &png)?;
    }
    let cache = out.join(format!("{}-extra.json", exp.name()));
    let weights_part = |f: &dyn Fn() -> Result<(String, Vec<Claim>)>| -> Result<(String, Vec<Claim>)> {
        if redraw {
            let bytes = fsutil::read(&cache).map_err(|_| {
                Error::invalid(
                    "redraw",
                    format!("{} is missing: run `idcrisis reproduce {}` once with the weights to write it", cache.display(), exp.name()),
                )
            })?;
            return serde_json::from_slice(&bytes).map_err(|e| Error::bad_data(&cache, e.to_string()));
        }
        let part = f()?;
        write_atomic(&cache, &serde_json::to_vec_pretty(&part).map_err(|e| Error::Other(e.to_string()))?)?;
        Ok(part)
    };
    let summary = match spec.analysis {
        Analysis::Nets { figures, extra, .. } => {
            figures(spec, &nets, out)?;
            let more = match extra {
                Some(f) => Some(weights_part(&|| f(&Extra { spec, out, dir: &dir, plan: &plan, data_dir, eng, nets: &nets }))?),
                None => None,
            };
            summary_text(spec, &nets, more)
        }
        Analysis::HiddenMaps => {
            weights_part(&|| Ok((crate::experiment::hidden::figures(out, &dir, &plan, data_dir, eng, projection)?, Vec::new())))?.0
        }
    };
    let mut text = summary;
    text += &collapsed_note(&nets);
    if total_diverged > 0 {
        let _ = writeln!(
            text,
            "\n{total_diverged} cells diverged (training loss NaN or infinite; each cell's `error.json` says after how many steps). They are failed runs, listed with NaN correlations where every seed of a net diverged, and rerunning does not change them (cells are deterministic)."
        );
    }
    if skipped > 0 {
        let _ = writeln!(text, "\n{skipped} cells were not done when this summary was written; rerun `idcrisis reproduce` to finish them.");
    }
    write_atomic(&out.join("summary.md"), text.as_bytes())?;
    Ok(text)
}

/// Marks a cnn-depth table row of a net with a collapsed seed (see [`collapsed_note`]).
const COLLAPSED_MARK: &str = "‡";

/// The paragraph naming every net with a collapsed seed ([`NetSummary::collapsed`]), or nothing.
fn collapsed_note(nets: &[NetSummary]) -> String {
    let hit: Vec<String> =
        nets.iter().filter(|n| n.collapsed > 0).map(|n| format!("{} ({} of {} seeds)", n.label, n.collapsed, n.seeds)).collect();
    if hit.is_empty() {
        return String::new();
    }
    format!(
        "\nCollapsed in training: {}. Such a seed stopped at the step cap giving one output whatever its input, the same to the bit on every probe (as when every ReLU has died); a flat output reads 0 in both correlations. These seeds are counted in the means and minima above; they are a failure of training, not evidence for or against the identity or the constant.\n",
        hit.join(", ")
    )
}

fn summary_fcn(spec: &Spec, nets: &[NetSummary]) -> String {
    let reference = [
        ("FCN 1-layer linear", 0.50),
        ("FCN 2-layer linear", 0.69),
        ("FCN 2-layer ReLU", 0.82),
        ("FCN 6-layer linear", 0.98),
        ("FCN 6-layer ReLU", 1.00),
    ];
    let mut s = format!("# {}\n\n", spec.heading);
    s += "Protocol: plain gradient descent, lr 0.1, stop at training MSE < 1e-4 (the independent PyTorch run that matched the paper).\n\n";
    s += "| net | seeds | corr to constant: reference PyTorch run | ours (mean, min–max) | corr to identity (ours) |\n|---|---|---|---|---|\n";
    for n in nets {
        let r = reference.iter().find(|r| r.0 == n.label).map(|r| format!("{:.2}", r.1)).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} ({:.2}–{:.2}) | {:.2} |",
            n.label, n.seeds, r, n.corr_constant.0, n.corr_constant.1, n.corr_constant.2, n.corr_identity.0
        );
    }
    s
}

/// The training protocols of `nets`, in order of first appearance.
pub(crate) fn protocols(nets: &[NetSummary]) -> Vec<String> {
    let mut protocols: Vec<String> = Vec::new();
    for n in nets {
        if !protocols.contains(&n.protocol) {
            protocols.push(n.protocol.clone());
        }
    }
    protocols
}

fn figures_cnn_depth(spec: &Spec, nets: &[NetSummary], out: &Path) -> Result<()> {
    let protocols = protocols(nets);
    let multi_seed = nets.iter().any(|n| n.seeds > 1);
    let mut series = Vec::new();
    for p in &protocols {
        let pts = |f: &dyn Fn(&NetSummary) -> f64| curve(nets, &|n| &n.protocol == p, f);
        series.push((format!("{p}: to identity"), pts(&|n| n.corr_identity.0)));
        if multi_seed {
            series.push((format!("{p}: to identity, min over seeds"), pts(&|n| n.corr_identity.1)));
            series.push((format!("{p}: to identity, max over seeds"), pts(&|n| n.corr_identity.2)));
        }
        series.push((format!("{p}: to constant"), pts(&|n| n.corr_constant.0)));
    }
    write_depth_curves(
        out,
        &format!("{}-corr", spec.name),
        "ReLU CNNs trained on one image: mean correlation over the 12 probes, by protocol",
        &series,
    )
}

fn summary_cnn_depth(spec: &Spec, nets: &[NetSummary]) -> String {
    let protocols = protocols(nets);
    let mut ordered: Vec<&NetSummary> = nets.iter().collect();
    ordered.sort_by_key(|n| (protocols.iter().position(|p| p == &n.protocol), n.depth));
    let mut s = format!("# {}\n\n", spec.heading);
    s += "Two protocols, both from PyTorch's default init and stopping at training MSE < 1e-4: `adam 0.0003` (idcrisis's default) and `momentum 0.01` (SGD, momentum 0.9, lr 0.01).\n\n";
    s += "| protocol | depth | seeds | corr to identity (mean, min–max) | corr to constant | synthetic | mnist | fashion |\n|---|---|---|---|---|---|---|---|\n";
    for n in ordered {
        let cat = |k: &str| n.per_category.get(k).map(|v| format!("{:.2}", v.0)).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "| {} | {}{}{} | {} | {:.2} ({:.2}–{:.2}) | {:.2} | {} | {} | {} |",
            n.protocol,
            n.depth,
            if n.unconverged > 0 { " †" } else { "" },
            if n.collapsed > 0 { format!(" {COLLAPSED_MARK}") } else { String::new() },
            n.seeds,
            n.corr_identity.0,
            n.corr_identity.1,
            n.corr_identity.2,
            n.corr_constant.0,
            cat("synthetic"),
            cat("mnist"),
            cat("fashion")
        );
    }
    if nets.iter().any(|n| n.unconverged > 0) {
        s += "\n† at least one seed stopped at the step cap before the training MSE reached the tolerance: that net did not fit the training image, so its row is not a statement about the trained function.\n";
    }
    if nets.iter().any(|n| n.collapsed > 0) {
        let _ = writeln!(s, "\n{COLLAPSED_MARK} at least one seed collapsed in training (named at the end).");
    }
    s += "\nNear-identity depth per probe category (the deepest depth up to which every net's mean corr to identity in that category is ≥ 0.9; the paper's reading of Fig. 3 is visual and centred on the digits):\n\n| protocol | all 12 | mnist | fashion | synthetic |\n|---|---|---|---|---|\n";
    for p in &protocols {
        let sub = by_depth(nets.iter().filter(|n| &n.protocol == p));
        let upto = |f: &dyn Fn(&NetSummary) -> Option<f64>| {
            let d = sub.iter().take_while(|n| f(n).is_some_and(|v| v >= CLEAR)).last().map(|n| n.depth);
            d.map(|d| d.to_string()).unwrap_or_else(|| "none".into())
        };
        let cat = |k: &'static str| move |n: &NetSummary| n.per_category.get(k).map(|v| v.0);
        let _ = writeln!(
            s,
            "| {p} | {} | {} | {} | {} |",
            upto(&|n| Some(n.corr_identity.0)),
            upto(&cat("mnist")),
            upto(&cat("fashion")),
            upto(&cat("synthetic"))
        );
    }
    s += "\nThe deep end depends on the training protocol; see docs/defaults.md.\n";
    s
}

/// `(depth, f(net), unconverged)` for the nets `keep` selects, in depth order as stored.
fn curve(nets: &[NetSummary], keep: &dyn Fn(&NetSummary) -> bool, f: &dyn Fn(&NetSummary) -> f64) -> Vec<(f64, f64, bool)> {
    nets.iter().filter(|n| keep(n)).map(|n| depth_point(n, f(n))).collect()
}

/// The point of `net` at its depth with value `y`, hollow in the figure when a seed did not
/// reach the tolerance.
pub(crate) fn depth_point(net: &NetSummary, y: f64) -> (f64, f64, bool) {
    (net.depth as f64, y, net.unconverged > 0)
}

/// Draw correlation-against-depth curves to `OUT/<stem>.png` and `.svg`; unconverged nets'
/// points are hollow.
pub(crate) fn write_depth_curves(out: &Path, stem: &str, title: &str, series: &[figures::MarkedSeries]) -> Result<()> {
    write_depth_curves_y(out, stem, title, "correlation", series)
}

/// [`write_depth_curves`] with another y axis label.
pub(crate) fn write_depth_curves_y(out: &Path, stem: &str, title: &str, ylabel: &str, series: &[figures::MarkedSeries]) -> Result<()> {
    let (png, svg) = figures::line_plot_marked(title, "depth (layers)", ylabel, series, false)?;
    write_atomic(&out.join(format!("{stem}.png")), &png)?;
    write_atomic(&out.join(format!("{stem}.svg")), svg.as_bytes())
}

/// Depth where the mean corr-to-constant first exceeds the mean corr-to-identity.
pub(crate) fn transition<'a>(nets: impl IntoIterator<Item = &'a NetSummary>) -> Option<usize> {
    let mut v: Vec<&NetSummary> = nets.into_iter().collect();
    v.sort_by_key(|n| n.depth);
    v.into_iter().find(|n| n.corr_constant.0 > n.corr_identity.0).map(|n| n.depth)
}

fn figures_linear(_: &Spec, nets: &[NetSummary], out: &Path) -> Result<()> {
    let mut series = Vec::new();
    for arch in ["cnn", "fcn"] {
        let pts = |f: &dyn Fn(&NetSummary) -> f64| curve(nets, &|n| n.arch == arch, f);
        series.push((format!("{}: to identity", arch.to_uppercase()), pts(&|n| n.corr_identity.0)));
        series.push((format!("{}: to constant", arch.to_uppercase()), pts(&|n| n.corr_constant.0)));
    }
    write_depth_curves(out, "linear-corr", "Linear networks trained on one image: mean correlation over the 12 probes", &series)
}

fn summary_linear(spec: &Spec, nets: &[NetSummary]) -> String {
    let mut s = format!("# {}\n\nProtocol: PyTorch default init, Adam lr 3e-4, MSE < 1e-4.\n\n", spec.heading);
    s += "| net | seeds | corr to identity | corr to constant |\n|---|---|---|---|\n";
    for n in nets {
        let _ = writeln!(s, "| {} | {} | {:.2} | {:.2} |", n.label, n.seeds, n.corr_identity.0, n.corr_constant.0);
    }
    s
}

/// `kernels` and `channels`: what the second axis is, its row names, and a net's value on it.
struct GridAxis {
    /// `kernel` or `channels`.
    what: &'static str,
    /// Its values, increasing.
    keys: Vec<usize>,
    /// Their row names.
    rows: Vec<String>,
    /// A net's value.
    key: fn(&NetSummary) -> usize,
}

fn grid_axis(spec: &Spec, nets: &[NetSummary]) -> GridAxis {
    let kernels = spec.exp == Experiment::Kernels;
    let key: fn(&NetSummary) -> usize = if kernels { |n| n.kernel } else { |n| n.channels };
    let mut keys: Vec<usize> = nets.iter().map(key).collect();
    keys.sort_unstable();
    keys.dedup();
    let rows = keys.iter().map(|k| if kernels { format!("{k}×{k}") } else { format!("{k} ch") }).collect();
    GridAxis { what: if kernels { "kernel" } else { "channels" }, keys, rows, key }
}

fn figures_grid2d(spec: &Spec, nets: &[NetSummary], out: &Path) -> Result<()> {
    let GridAxis { what, keys, rows, key } = grid_axis(spec, nets);
    let mut depths: Vec<usize> = nets.iter().map(|n| n.depth).collect();
    depths.sort_unstable();
    depths.dedup();
    let cols: Vec<String> = depths.iter().map(|d| d.to_string()).collect();
    let mut csv = format!("{what},depth,corr_identity,corr_constant\n");
    for (name, f) in [("identity", 0usize), ("constant", 1)] {
        let net = |k: usize, d: usize| nets.iter().find(|n| key(n) == k && n.depth == d);
        let cells = |v: &dyn Fn(&NetSummary) -> f64| -> Vec<Vec<f64>> {
            keys.iter().map(|k| depths.iter().map(|d| net(*k, *d).map_or(f64::NAN, v)).collect()).collect()
        };
        let values = cells(&|n| if f == 0 { n.corr_identity.0 } else { n.corr_constant.0 });
        let unconverged: Vec<Vec<bool>> =
            keys.iter().map(|k| depths.iter().map(|d| net(*k, *d).is_some_and(|n| n.unconverged > 0)).collect()).collect();
        let (png, svg) =
            figures::heatmap_marked(&format!("Mean corr to {name} (12 probes) by {what} and depth"), &rows, &cols, &values, &unconverged)?;
        write_atomic(&out.join(format!("{}-corr-{name}.png", spec.name)), &png)?;
        write_atomic(&out.join(format!("{}-corr-{name}.svg", spec.name)), svg.as_bytes())?;
    }
    for n in nets {
        let _ = writeln!(csv, "{},{},{},{}", key(n), n.depth, n.corr_identity.0, n.corr_constant.0);
    }
    write_atomic(&out.join(format!("{}-grid.csv", spec.name)), csv.as_bytes())
}

fn summary_grid2d(spec: &Spec, nets: &[NetSummary]) -> String {
    let GridAxis { what, keys, rows, key } = grid_axis(spec, nets);
    let mut s = format!(
        "# {}\n\nProtocol: PyTorch default init, Adam lr 3e-4, MSE < 1e-4.\n\n| {what} | transition depth |\n|---|---|\n",
        spec.heading
    );
    for (k, r) in keys.iter().zip(&rows) {
        let t =
            transition(nets.iter().filter(|n| key(n) == *k)).map(|d| d.to_string()).unwrap_or_else(|| "none within the depths run".into());
        let _ = writeln!(s, "| {r} | {t} |");
    }
    s
}

fn summary_fcn60k(spec: &Spec, nets: &[NetSummary]) -> String {
    let mut s = format!("# {}\n\n", spec.heading);
    s += "Protocol: Adam lr 1e-3, minibatches of 128, a fixed number of epochs (see `fcn-60k.sweep.toml`); the \"constant\" reference is MNIST train #15.\n\n";
    s += "Mean corr to identity per probe category:\n\n| net | mnist | fashion | synthetic | random-rho | weakest category |\n|---|---|---|---|---|---|\n";
    for n in nets {
        let cat = |k: &str| n.per_category.get(k).map(|v| v.0);
        let f = |k: &str| cat(k).map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into());
        let weakest = ["mnist", "fashion", "synthetic", "random-rho"]
            .into_iter()
            .filter_map(|k| cat(k).map(|v| (k, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, v)| format!("{k} ({v:.2})"))
            .unwrap_or_default();
        let _ = writeln!(s, "| {} | {} | {} | {} | {} | {} |", n.label, f("mnist"), f("fashion"), f("synthetic"), f("random-rho"), weakest);
    }
    s
}

fn figures_resnet(_: &Spec, nets: &[NetSummary], out: &Path) -> Result<()> {
    let mut series = Vec::new();
    for (res, name) in [(false, "plain"), (true, "residual")] {
        let pts = |f: &dyn Fn(&NetSummary) -> f64| curve(nets, &|n| n.residual == res, f);
        series.push((format!("{name}: to identity"), pts(&|n| n.corr_identity.0)));
        series.push((format!("{name}: to constant"), pts(&|n| n.corr_constant.0)));
    }
    write_depth_curves(out, "resnet-corr", "Plain and residual CNNs trained on one image: mean correlation over the 12 probes", &series)
}

fn summary_resnet(spec: &Spec, nets: &[NetSummary]) -> String {
    let mut s = format!("# {}\n\n", spec.heading);
    s += "Block: the hidden C→C layers are paired, (1, 2), (3, 4), …; a pair with input h computes relu(h + conv_b(relu(conv_a(h)))) (ResNet's basic block). The first (1→C) and last (C→1) layers and an unpaired hidden layer have no skip. Protocol: PyTorch default init, Adam lr 3e-4, MSE < 1e-4.\n\n";
    s += "| net | seeds | corr to identity | corr to constant | synthetic | mnist |\n|---|---|---|---|---|---|\n";
    let mut ordered: Vec<&NetSummary> = nets.iter().collect();
    ordered.sort_by_key(|n| (n.residual, n.depth));
    for n in &ordered {
        let cat = |k: &str| n.per_category.get(k).map(|v| format!("{:.2}", v.0)).unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.2} | {} | {} |",
            n.label,
            n.seeds,
            n.corr_identity.0,
            n.corr_constant.0,
            cat("synthetic"),
            cat("mnist")
        );
    }
    s
}

/// A mean correlation at least this high counts as "the output is the identity" (to identity) or
/// "the output is the constant" (to constant, and above the corr to identity).
pub const CLEAR: f64 = 0.9;
/// Seed noise allowed when a claim says a number grows with depth.
pub const NOISE: f64 = 0.02;
/// The deepest net the paper trained.
const PAPER_DEEPEST: usize = 20;

/// How our numbers stand to one of the paper's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Our numbers show what the paper claims.
    Agrees,
    /// Our numbers show otherwise.
    Disagrees,
    /// The nets run cannot decide it (not run, or not deep enough).
    Undecided,
    /// Part of it holds and part does not (pre-registered predictions with several parts).
    Mixed,
}

impl Verdict {
    /// `agrees`, `disagrees` or `undecided`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Agrees => "agrees",
            Verdict::Disagrees => "disagrees",
            Verdict::Undecided => "undecided",
            Verdict::Mixed => "mixed",
        }
    }

    /// For a pre-registered prediction: `supports`, `contradicts`, `mixed` or `undecided`.
    pub fn prediction_word(self) -> &'static str {
        match self {
            Verdict::Agrees => "supports",
            Verdict::Disagrees => "contradicts",
            Verdict::Undecided => "undecided",
            Verdict::Mixed => "mixed",
        }
    }

    /// Of a prediction with two parts: both hold, neither, or one.
    pub(crate) fn both(a: bool, b: bool) -> Self {
        match (a, b) {
            (true, true) => Verdict::Agrees,
            (false, false) => Verdict::Disagrees,
            _ => Verdict::Mixed,
        }
    }

    pub(crate) fn of(agrees: bool) -> Self {
        if agrees {
            Verdict::Agrees
        } else {
            Verdict::Disagrees
        }
    }
}

/// One of the paper's claims beside our numbers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Claim {
    /// What it is about when an experiment makes it more than once (e.g. a protocol).
    pub scope: Option<String>,
    /// The paper's claim.
    pub paper: String,
    /// Our numbers.
    pub ours: String,
    /// Computed from our numbers.
    pub verdict: Verdict,
    /// For a pre-registered prediction, its id in `docs/preregistration.md` (`paper` then holds
    /// the prediction).
    pub prereg: Option<String>,
}

impl Claim {
    /// A claim without a scope.
    pub fn new(paper: impl Into<String>, ours: impl Into<String>, verdict: Verdict) -> Self {
        Claim { scope: None, paper: paper.into(), ours: ours.into(), verdict, prereg: None }
    }

    /// A pre-registered prediction `id` of `docs/preregistration.md`, our measurement and the
    /// verdict (`Agrees` = supports, `Disagrees` = contradicts).
    pub fn prediction(id: &'static str, prediction: impl Into<String>, measured: impl Into<String>, verdict: Verdict) -> Self {
        Claim { scope: None, paper: prediction.into(), ours: measured.into(), verdict, prereg: Some(id.to_string()) }
    }

    /// One `summary.md` line: `- Paper: …. Ours: … → agrees`, or for a prediction
    /// `- Prediction B1: …. Measured: … → supports`.
    pub fn line(&self) -> String {
        let scope = self.scope.as_ref().map(|s| format!("`{s}`: ")).unwrap_or_default();
        match &self.prereg {
            None => format!("- {scope}Paper: {}. Ours: {} → {}", self.paper, self.ours, self.verdict.word()),
            Some(id) => format!("- {scope}Prediction {id}: {}. Measured: {} → {}", self.paper, self.ours, self.verdict.prediction_word()),
        }
    }
}

/// The claims of an experiment that summarizes per-net correlations (empty for `hidden`).
pub fn claims(exp: Experiment, nets: &[NetSummary]) -> Vec<Claim> {
    match exp.spec().analysis {
        Analysis::Nets { claims, .. } => claims(nets),
        Analysis::HiddenMaps => Vec::new(),
    }
}

/// `summary.md` of an experiment that summarizes per-net correlations: its table, then each claim
/// with its verdict; with `more` (an `extra` step's section and claims), that section before the
/// claims and its claims after them.
fn summary_text(spec: &Spec, nets: &[NetSummary], more: Option<(String, Vec<Claim>)>) -> String {
    let Analysis::Nets { table, claims, .. } = spec.analysis else { return String::new() };
    let mut s = table(spec, nets);
    let (section, more_claims) = more.unwrap_or_default();
    s += &section;
    let mut all = claims(nets);
    all.extend(more_claims);
    if all.iter().any(|c| c.prereg.is_some()) {
        let _ = write!(
            s,
            "\nPredictions, pre-registered in `{}` before the full runs (each verdict is computed from the numbers: a mean corr ≥ {CLEAR} to the constant and above the identity's counts as outputting the constant; the transition depth is the first depth where the corr to the constant exceeds the corr to the identity):\n\n",
            if spec.exp == Experiment::Protocols { "docs/results/protocols.md" } else { "docs/preregistration.md" }
        );
    } else {
        let _ = write!(
            s,
            "\nClaims (each verdict is computed from the numbers: a mean corr ≥ {CLEAR} to the identity, or to the constant and above the identity's, counts as outputting it):\n\n"
        );
    }
    for c in all {
        s += &c.line();
        s.push('\n');
    }
    s
}

pub(crate) fn f2(x: f64) -> String {
    format!("{x:.2}")
}

pub(crate) fn outputs_constant(n: &NetSummary) -> bool {
    n.corr_constant.0 >= CLEAR && n.corr_constant.0 > n.corr_identity.0
}

pub(crate) fn by_depth<'a>(nets: impl IntoIterator<Item = &'a NetSummary>) -> Vec<&'a NetSummary> {
    let mut v: Vec<&NetSummary> = nets.into_iter().collect();
    v.sort_by_key(|n| n.depth);
    v
}

pub(crate) fn transition_text(t: Option<usize>) -> String {
    t.map(|d| d.to_string()).unwrap_or_else(|| "none within the depths run".into())
}

/// Whether a transition depth `t` lies in `lo..=hi`; no transition up to `deepest` decides only
/// when the paper's range was run.
fn transition_in(t: Option<usize>, deepest: usize, lo: usize, hi: usize) -> Verdict {
    match t {
        Some(d) => Verdict::of((lo..=hi).contains(&d)),
        None if deepest >= hi => Verdict::Disagrees,
        None => Verdict::Undecided,
    }
}

fn claims_fcn(nets: &[NetSummary]) -> Vec<Claim> {
    let paper = "FCNs do not learn the identity; a 6-layer ReLU FCN outputs the training \"7\" for every probe";
    let six = nets.iter().find(|n| n.act == "relu" && n.depth == 6 && n.arch == "fcn");
    let first = match six {
        Some(n) => Claim::new(
            paper,
            format!("6-layer ReLU corr to constant {}, to identity {}", f2(n.corr_constant.0), f2(n.corr_identity.0)),
            Verdict::of(outputs_constant(n)),
        ),
        None => Claim::new(paper, "6-layer ReLU FCN not run", Verdict::Undecided),
    };
    let mut parts = Vec::new();
    let mut decided = false;
    let mut grows = true;
    for act in ["linear", "relu"] {
        let v = by_depth(nets.iter().filter(|n| n.act == act));
        if v.is_empty() {
            continue;
        }
        decided |= v.len() > 1;
        grows &= v.windows(2).all(|w| w[1].corr_constant.0 >= w[0].corr_constant.0 - NOISE);
        let name = if act == "relu" { "ReLU" } else { "linear" };
        parts.push(format!(
            "{name} {}",
            v.iter().map(|n| format!("{} ({}-layer)", f2(n.corr_constant.0), n.depth)).collect::<Vec<_>>().join(" → ")
        ));
    }
    let second = Claim::new(
        "corr to constant grows with depth down the rows",
        if parts.is_empty() { "no nets".into() } else { parts.join("; ") },
        if decided { Verdict::of(grows) } else { Verdict::Undecided },
    );
    vec![first, second]
}

fn claims_cnn_depth(nets: &[NetSummary]) -> Vec<Claim> {
    let mut out = Vec::new();
    for p in protocols(nets) {
        let sub = by_depth(nets.iter().filter(|n| n.protocol == p));
        let deepest = sub.last().map(|n| n.depth).unwrap_or(0);
        let t = transition(sub.iter().copied());
        let mut claims = vec![Claim::new(
            "the transition depth (where the constant's correlation overtakes the identity's) is ≈ 10–19 (\"CNNs of up to 10 layers generalize\"; the constant \"7\" at 19–20)",
            format!("transition depth {}", transition_text(t)),
            transition_in(t, deepest, 10, 19),
        )];
        let near: Vec<&&NetSummary> = sub.iter().take_while(|n| n.corr_identity.0 >= CLEAR).collect();
        let up_to = near.last().map(|n| n.depth);
        let verdict = match up_to {
            Some(d) if d == deepest && d < 9 => Verdict::Undecided,
            Some(d) => Verdict::of((5..=9).contains(&d)),
            None => Verdict::Disagrees,
        };
        claims.push(Claim::new(
            format!("near-identity (mean corr to identity ≥ {CLEAR}) up to about 7 layers"),
            up_to.map(|d| format!("up to {d} layers")).unwrap_or_else(|| "at no depth".into()),
            verdict,
        ));
        let last = sub.last();
        claims.push(Claim::new(
            "the deepest net outputs the constant \"7\" (yes at 19–20)",
            match last {
                Some(n) => format!("depth {} corr to constant {}, to identity {}", n.depth, f2(n.corr_constant.0), f2(n.corr_identity.0)),
                None => "no nets".into(),
            },
            match last {
                Some(n) if n.depth >= 19 => Verdict::of(outputs_constant(n)),
                _ => Verdict::Undecided,
            },
        ));
        for mut c in claims {
            c.scope = Some(p.clone());
            out.push(c);
        }
    }
    out
}

fn claims_linear(nets: &[NetSummary]) -> Vec<Claim> {
    let fcn = by_depth(nets.iter().filter(|n| n.arch == "fcn"));
    let cnn = by_depth(nets.iter().filter(|n| n.arch == "cnn"));
    let best = fcn.iter().map(|n| n.corr_identity.0).fold(f64::NEG_INFINITY, f64::max);
    let first = Claim::new(
        "linear FCNs output the constant (a linear FCN at any depth does not learn the identity)",
        if fcn.is_empty() {
            "no FCN run".into()
        } else {
            format!("FCN transition depth {}; highest FCN corr to identity {}", transition_text(transition(fcn.iter().copied())), f2(best))
        },
        if fcn.is_empty() { Verdict::Undecided } else { Verdict::of(best < CLEAR) },
    );
    let t = transition(cnn.iter().copied());
    let deepest = cnn.last().map(|n| n.depth).unwrap_or(0);
    let verdict = match (cnn.first(), t) {
        (None, _) => Verdict::Undecided,
        (Some(n), _) if n.corr_identity.0 <= n.corr_constant.0 => Verdict::Disagrees,
        (Some(_), Some(_)) => Verdict::Agrees,
        (Some(_), None) if deepest >= PAPER_DEEPEST => Verdict::Disagrees,
        (Some(_), None) => Verdict::Undecided,
    };
    let second = Claim::new(
        "linear CNNs, like ReLU CNNs, move from identity to the constant with depth",
        match cnn.first() {
            Some(n) => format!(
                "CNN depth {} corr to identity {} vs constant {}; CNN transition depth {}",
                n.depth,
                f2(n.corr_identity.0),
                f2(n.corr_constant.0),
                transition_text(t)
            ),
            None => "no CNN run".into(),
        },
        verdict,
    );
    vec![first, second]
}

/// Transition depth per value of `key`, in increasing order of the value, and the deepest depth.
fn transitions_by(nets: &[NetSummary], key: fn(&NetSummary) -> usize) -> (Vec<(usize, Option<usize>)>, usize) {
    let mut keys: Vec<usize> = nets.iter().map(key).collect();
    keys.sort_unstable();
    keys.dedup();
    let deepest = nets.iter().map(|n| n.depth).max().unwrap_or(0);
    (keys.into_iter().map(|k| (k, transition(nets.iter().filter(|n| key(n) == k)))).collect(), deepest)
}

fn claims_kernels(nets: &[NetSummary]) -> Vec<Claim> {
    let (ts, _) = transitions_by(nets, |n| n.kernel);
    // No transition = beyond the depths run.
    let depth = |t: Option<usize>| t.unwrap_or(usize::MAX);
    let verdict = if ts.len() < 2 || ts.iter().all(|t| t.1.is_none()) {
        Verdict::Undecided
    } else {
        Verdict::of(ts.windows(2).all(|w| depth(w[1].1) <= depth(w[0].1)) && depth(ts[ts.len() - 1].1) < depth(ts[0].1))
    };
    vec![Claim::new(
        "larger kernels memorize at smaller depths (the transition depth falls as the kernel grows)",
        format!("transition depth {}", ts.iter().map(|(k, t)| format!("{} ({k}×{k})", transition_text(*t))).collect::<Vec<_>>().join(", ")),
        verdict,
    )]
}

fn claims_channels(nets: &[NetSummary]) -> Vec<Claim> {
    let paper = "adding channels is far less prone to memorization than adding depth; a 5-layer, 1024-channel CNN learns the identity";
    let first = match nets.iter().filter(|n| n.depth == 5).max_by_key(|n| n.channels) {
        Some(n) => Claim::new(
            paper,
            format!("the 5-layer CNN with the most channels run ({}) has corr to identity {}", n.channels, f2(n.corr_identity.0)),
            Verdict::of(n.corr_identity.0 >= CLEAR),
        ),
        None => Claim::new(paper, "no 5-layer CNN run", Verdict::Undecided),
    };
    let (ts, deepest) = transitions_by(nets, |n| n.channels);
    let found: Vec<usize> = ts.iter().filter_map(|t| t.1).collect();
    let (lo, hi) = (found.iter().copied().min().unwrap_or(0), found.iter().copied().max().unwrap_or(0));
    let verdict = if ts.len() < 2 || found.is_empty() {
        Verdict::Undecided
    } else if found.len() == ts.len() {
        Verdict::of(hi - lo <= 4)
    } else if deepest + 1 - lo > 4 {
        // Some channel counts have no transition up to `deepest`: it moved by more than 4 layers.
        Verdict::Disagrees
    } else {
        Verdict::Undecided
    };
    let second = Claim::new(
        "the transition depth barely moves with channels (here: by at most 4 layers)",
        format!("transition depth {}", ts.iter().map(|(c, t)| format!("{} ({c} ch)", transition_text(*t))).collect::<Vec<_>>().join(", ")),
        verdict,
    );
    vec![first, second]
}

fn claims_fcn60k(nets: &[NetSummary]) -> Vec<Claim> {
    let worst = nets.iter().filter_map(|n| n.per_category.get("synthetic").map(|v| (n, v.0))).min_by(|a, b| a.1.total_cmp(&b.1));
    vec![Claim::new(
        "FCNs do not learn the identity reliably even from 60k examples",
        match worst {
            Some((n, v)) => format!(
                "the lowest synthetic-pattern corr to identity over the nets is {} ({}); the table shows where each net fails",
                f2(v),
                n.label
            ),
            None => "no synthetic-pattern probes scored".into(),
        },
        worst.map(|w| Verdict::of(w.1 < CLEAR)).unwrap_or(Verdict::Undecided),
    )]
}

fn claims_resnet(nets: &[NetSummary]) -> Vec<Claim> {
    let res = by_depth(nets.iter().filter(|n| n.residual));
    let (ours, verdict) = match (res.first(), res.last()) {
        (Some(a), Some(b)) if a.depth != b.depth => (
            format!(
                "(residual) corr to identity {} at depth {} → {} at depth {}",
                f2(a.corr_identity.0),
                a.depth,
                f2(b.corr_identity.0),
                b.depth
            ),
            Verdict::of(b.corr_identity.0 < a.corr_identity.0),
        ),
        _ => ("(residual) not enough depths run".into(), Verdict::Undecided),
    };
    vec![Claim::new("prediction noise still grows with depth, even with skips (corr to identity falls)", ours, verdict)]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const SCALES: [Scale; 3] = [Scale::Micro, Scale::Quick, Scale::Full];

    /// Every dotted key a run config file can hold: a default config with every optional part
    /// present, serialized and flattened.
    fn known_keys() -> BTreeSet<String> {
        fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeSet<String>) {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                match v {
                    toml::Value::Table(sub) => walk(&key, sub, out),
                    _ => {
                        out.insert(key);
                    }
                }
            }
        }
        let mut c = RunConfig {
            conv_algo: crate::engine::ConvAlgo::Im2col,
            train_set: Some(crate::experiment::config::TrainSet {
                data: "mnist:train".into(),
                limit: 0,
                indices: vec![1],
                batch: 1,
                epochs: 1,
            }),
            canvas_at: Some([0, 0]),
            ..Default::default()
        };
        c.init.from = Some("w.safetensors".into());
        c.model.residual = true;
        c.model.coords = crate::nn::model::Coords::All;
        c.model.width = Some(784);
        (c.gray, c.canvas, c.shape) = (Some(28), Some(56), Some(crate::Shape::MNIST));
        let t: toml::Table = toml::from_str(&c.to_toml().unwrap()).unwrap();
        let mut out = BTreeSet::new();
        walk("", &t, &mut out);
        out
    }

    fn unknown_keys(s: &SweepSpec, known: &BTreeSet<String>) -> Vec<&'static str> {
        s.keys().filter(|k| !known.contains(*k)).collect()
    }

    #[test]
    fn every_spec_sets_only_run_config_keys() {
        let known = known_keys();
        assert!(known.contains("model.depth") && known.contains("train_set.epochs") && known.contains("seed"), "{known:?}");
        for exp in Experiment::ALL {
            for scale in SCALES {
                let s = sweep_spec(exp, scale, 2);
                assert_eq!(unknown_keys(&s, &known), Vec::<&str>::new(), "{} {}", exp.name(), scale.name());
                // And every cell deserializes with unknown fields denied (RunConfig's serde).
                let cells = sweep::expand(&sweep_toml(exp, scale, 2), Path::new("t.toml"), false).unwrap();
                assert!(!cells.is_empty());
            }
        }
        // A typo is caught by both.
        let typo = sweep_spec(Experiment::Fcn, Scale::Micro, 1).set("model.dept", 3);
        assert_eq!(unknown_keys(&typo, &known), vec!["model.dept"]);
        let text = toml::to_string(&typo.to_table().unwrap()).unwrap();
        assert!(sweep::expand(&text, Path::new("t.toml"), false).is_err());
    }

    #[test]
    fn headings_start_with_the_name_and_cifar_names_its_image() {
        for exp in Experiment::ALL {
            assert!(exp.spec().heading.starts_with(exp.name()), "{}", exp.spec().heading);
            assert_eq!(exp.spec().exp, exp);
        }
        assert!(CIFAR.heading.contains(CIFAR_IMAGE));
    }

    #[test]
    fn a_key_lives_in_one_place_and_the_table_nests_dotted_keys() {
        let s = SweepSpec::default().set("model.depth", 3).axis("model.depth", [1, 2]).zip("train.lr", [0.1, 0.2]).set("train.lr", 0.3);
        assert_eq!(s.keys().collect::<Vec<_>>(), vec!["train.lr", "model.depth"]);
        let t = s.to_table().unwrap();
        assert_eq!(t["model"]["depth"].as_array().unwrap().len(), 2);
        assert_eq!(t["train"]["lr"].as_float(), Some(0.3));
        assert!(!t.contains_key("zip"));
        let z = SweepSpec::default().zip("model.depth", [1, 2]).zip("model.act", ["relu", "linear"]).to_table().unwrap();
        assert_eq!(z["zip"]["model"]["act"][1].as_str(), Some("linear"));
        // A key under a plain value cannot be built.
        assert!(SweepSpec::default().set("model", 1).set("model.depth", 2).to_table().is_err());
    }

    #[test]
    fn the_sweep_text_names_the_experiment_and_zips_the_protocols() {
        let t = sweep_toml(Experiment::CnnDepth, Scale::Quick, 3);
        assert!(t.starts_with("# `idcrisis reproduce cnn-depth`, quick scale, 3 seed(s)"), "{t}");
        let table: toml::Table = toml::from_str(&t).unwrap();
        assert_eq!(table["seed"].as_array().unwrap().len(), 3);
        assert_eq!(table["zip"]["train"]["optimizer"].as_array().unwrap().len(), 2);
        assert!(table["train"].get("optimizer").is_none(), "optimizer is zipped, not fixed");
        assert_eq!(table["rho"].as_array().unwrap().len(), 3);
    }

    /// A sweep file an earlier version wrote (other text, same cells) is accepted and kept.
    #[test]
    fn plan_keeps_an_equivalent_older_sweep_file() {
        let tmp = tempfile::Builder::new().prefix("idcrisis-reproduce-plan-").tempdir().unwrap();
        let out = tmp.path().to_path_buf();
        let old = "seed = [0]\nrho = [0.0, 0.5, 0.9]\n[model]\narch = \"fcn\"\nwidth = 16\n[train]\noptimizer = \"gd\"\nlr = 0.1\ntol = 1e-4\nsteps = 8\n[zip]\nmodel.depth = [1, 2, 2, 6, 6]\nmodel.act = [\"linear\", \"linear\", \"relu\", \"linear\", \"relu\"]\n";
        let file = out.join("fcn.sweep.toml");
        std::fs::write(&file, old).unwrap();
        let slurm = sweep::SlurmOptions::default();
        let dir = plan(Experiment::Fcn, &out, Scale::Micro, 1, &slurm, Path::new("idcrisis"), Path::new("data")).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), old);
        assert_eq!(sweep::load_plan(&dir).unwrap().len(), 5);
        // Other settings are refused.
        assert!(plan(Experiment::Fcn, &out, Scale::Quick, 1, &slurm, Path::new("idcrisis"), Path::new("data")).is_err());
    }

    /// A one-seed net with these correlations over the 12 probes (other tests build on it).
    pub(crate) fn net(arch: &str, act: &str, depth: usize, id: f64, con: f64) -> NetSummary {
        NetSummary {
            label: format!("{arch} {act} {depth}"),
            protocol: "adam 0.0003".into(),
            arch: arch.into(),
            act: act.into(),
            residual: false,
            kernel: 5,
            channels: 16,
            depth,
            seeds: 1,
            corr_identity: (id, id, id),
            corr_constant: (con, con, con),
            per_category: BTreeMap::new(),
            extra: BTreeMap::new(),
            unconverged: 0,
            diverged: 0,
            collapsed: 0,
            config: RunConfig::default(),
        }
    }

    fn cnn_net(depth: usize, id: f64, con: f64) -> NetSummary {
        net("cnn", "relu", depth, id, con)
    }

    /// The verdict word ending each claim line of the summary the experiment writes.
    fn verdicts(exp: Experiment, nets: &[NetSummary]) -> Vec<String> {
        let text = summary_text(exp.spec(), nets, None);
        let v: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("- ") && l.contains("Paper: "))
            .map(|l| l.rsplit(" → ").next().unwrap().to_string())
            .collect();
        assert_eq!(v, claims(exp, nets).iter().map(|c| c.verdict.word()).collect::<Vec<_>>(), "{text}");
        v
    }

    fn all(word: &str, n: usize) -> Vec<String> {
        vec![word.to_string(); n]
    }

    #[test]
    fn transition_is_the_shallowest_depth_where_the_constant_wins() {
        // Out of depth order on purpose; a tie is not a transition.
        let nets = [cnn_net(9, 0.2, 0.9), cnn_net(1, 0.95, 0.1), cnn_net(7, 0.5, 0.5), cnn_net(5, 0.4, 0.6), cnn_net(3, 0.9, 0.2)];
        assert_eq!(transition(&nets), Some(5));
        assert_eq!(transition(nets.iter().filter(|n| n.depth != 5)), Some(9));
        assert_eq!(transition(nets.iter().filter(|n| n.depth <= 3)), None);
        assert_eq!(transition(&[]), None);
    }

    #[test]
    fn seeds_average_to_mean_min_max_and_per_category_means() {
        assert_eq!(mean_min_max(&[0.2, 0.9, 0.4]), (0.5, 0.2, 0.9));
        assert_eq!(mean_min_max(&[0.7]), (0.7, 0.7, 0.7));
        assert!(mean_min_max(&[]).0.is_nan());
        let mut per_seed = BTreeMap::new();
        per_seed.insert("mnist".to_string(), vec![(0.5, 0.25), (1.0, 0.75)]);
        per_seed.insert("synthetic".to_string(), vec![(0.25, 0.5)]);
        per_seed.insert("empty".to_string(), vec![]);
        let m = mean_per_category(&per_seed);
        assert_eq!(m.len(), 2);
        assert_eq!(m["mnist"], (0.75, 0.5));
        assert_eq!(m["synthetic"], (0.25, 0.5));
    }

    #[test]
    fn fcn_claims_agree_and_disagree() {
        let grows = [
            net("fcn", "linear", 1, 0.3, 0.5),
            net("fcn", "linear", 2, 0.2, 0.69),
            net("fcn", "relu", 2, 0.2, 0.82),
            net("fcn", "linear", 6, 0.1, 0.98),
            net("fcn", "relu", 6, 0.05, 0.99),
        ];
        assert_eq!(verdicts(Experiment::Fcn, &grows), all("agrees", 2));
        let mut shrinks = grows.clone();
        shrinks[4].corr_constant = (0.5, 0.5, 0.5);
        shrinks[4].corr_identity = (0.8, 0.8, 0.8);
        assert_eq!(verdicts(Experiment::Fcn, &shrinks), all("disagrees", 2));
        assert_eq!(verdicts(Experiment::Fcn, &grows[..1]), all("undecided", 2));
        let text = summary_text(&FCN, &grows, None);
        assert!(text.contains("6-layer ReLU corr to constant 0.99, to identity 0.05 → agrees"), "{text}");
    }

    #[test]
    fn cnn_depth_claims_agree_and_disagree() {
        let paper_like: Vec<NetSummary> =
            [(1, 0.99, 0.1), (3, 0.97, 0.2), (5, 0.95, 0.3), (7, 0.92, 0.4), (9, 0.8, 0.5), (12, 0.5, 0.7), (20, 0.1, 0.97)]
                .iter()
                .map(|&(d, i, c)| cnn_net(d, i, c))
                .collect();
        assert_eq!(verdicts(Experiment::CnnDepth, &paper_like), all("agrees", 3));
        let always_identity: Vec<NetSummary> = [1, 3, 5, 7, 9, 12, 20].iter().map(|&d| cnn_net(d, 0.95, 0.3)).collect();
        assert_eq!(verdicts(Experiment::CnnDepth, &always_identity), all("disagrees", 3));
        // Too early a transition; never near the identity.
        let early: Vec<NetSummary> = [1, 3, 20].iter().map(|&d| cnn_net(d, 0.5, if d > 1 { 0.6 } else { 0.4 })).collect();
        assert_eq!(verdicts(Experiment::CnnDepth, &early)[..2], all("disagrees", 2));
        // Micro depths cannot decide.
        let shallow: Vec<NetSummary> = [1, 2, 3].iter().map(|&d| cnn_net(d, 0.95, 0.1)).collect();
        assert_eq!(verdicts(Experiment::CnnDepth, &shallow), all("undecided", 3));
        // One set of claims per protocol, scoped.
        let mut two = paper_like.clone();
        two.extend(always_identity.iter().cloned().map(|mut n| {
            n.protocol = "momentum 0.01".into();
            n
        }));
        let v = verdicts(Experiment::CnnDepth, &two);
        assert_eq!(v, [all("agrees", 3), all("disagrees", 3)].concat());
        assert!(summary_text(&CNN_DEPTH, &two, None).contains("- `momentum 0.01`: Paper: the transition depth"));
    }

    #[test]
    fn linear_claims_agree_and_disagree() {
        let mut agree: Vec<NetSummary> = [1, 5, 20].iter().map(|&d| net("fcn", "linear", d, 0.3, 0.8)).collect();
        agree.extend([(1, 0.95, 0.2), (5, 0.7, 0.5), (20, 0.2, 0.9)].iter().map(|&(d, i, c)| net("cnn", "linear", d, i, c)));
        assert_eq!(verdicts(Experiment::Linear, &agree), all("agrees", 2));
        let mut disagree: Vec<NetSummary> = [1, 5, 20].iter().map(|&d| net("fcn", "linear", d, 0.95, 0.3)).collect();
        disagree.extend([1, 5, 20].iter().map(|&d| net("cnn", "linear", d, 0.3, 0.9)));
        assert_eq!(verdicts(Experiment::Linear, &disagree), all("disagrees", 2));
    }

    #[test]
    fn kernel_and_channel_claims_agree_and_disagree() {
        let grid = |key: fn(&mut NetSummary, usize), rows: &[(usize, usize)], id5: f64| -> Vec<NetSummary> {
            let mut v = Vec::new();
            for &(k, t) in rows {
                for d in [1, 3, 5, 7, 9, 11, 13] {
                    let mut n = if d >= t { cnn_net(d, 0.3, 0.8) } else { cnn_net(d, if d == 5 { id5 } else { 0.95 }, 0.2) };
                    key(&mut n, k);
                    v.push(n);
                }
            }
            v
        };
        let kernel: fn(&mut NetSummary, usize) = |n, k| n.kernel = k;
        let channels: fn(&mut NetSummary, usize) = |n, c| n.channels = c;
        assert_eq!(verdicts(Experiment::Kernels, &grid(kernel, &[(3, 11), (5, 9), (7, 7)], 0.95)), all("agrees", 1));
        assert_eq!(verdicts(Experiment::Kernels, &grid(kernel, &[(3, 7), (5, 11)], 0.95)), all("disagrees", 1));
        assert_eq!(verdicts(Experiment::Kernels, &grid(kernel, &[(3, 99), (5, 99)], 0.95)), all("undecided", 1));
        assert_eq!(verdicts(Experiment::Channels, &grid(channels, &[(8, 9), (16, 11), (32, 9)], 0.95)), all("agrees", 2));
        assert_eq!(verdicts(Experiment::Channels, &grid(channels, &[(8, 3), (16, 13)], 0.5)), all("disagrees", 2));
        // A channel count with no transition up to 13, beside one at 3: moved by more than 4.
        assert_eq!(verdicts(Experiment::Channels, &grid(channels, &[(8, 3), (16, 99)], 0.95)), vec!["agrees", "disagrees"]);
    }

    #[test]
    fn fcn60k_and_resnet_claims_agree_and_disagree() {
        let with_synthetic = |v: f64| {
            let mut n = net("fcn", "relu", 6, 0.8, 0.3);
            n.per_category.insert("synthetic".into(), (v, 0.1));
            vec![n, net("fcn", "relu", 1, 0.9, 0.1)]
        };
        assert_eq!(verdicts(Experiment::Fcn60k, &with_synthetic(0.4)), all("agrees", 1));
        assert_eq!(verdicts(Experiment::Fcn60k, &with_synthetic(0.95)), all("disagrees", 1));
        assert_eq!(verdicts(Experiment::Fcn60k, &[net("fcn", "relu", 1, 0.9, 0.1)]), all("undecided", 1));
        let resnet = |shallow: f64, deep: f64| {
            let mut v = vec![cnn_net(4, 0.9, 0.1), cnn_net(20, 0.1, 0.9)];
            for (d, i) in [(4, shallow), (20, deep)] {
                let mut n = cnn_net(d, i, 0.2);
                n.residual = true;
                v.push(n);
            }
            v
        };
        assert_eq!(verdicts(Experiment::Resnet, &resnet(0.9, 0.6)), all("agrees", 1));
        assert_eq!(verdicts(Experiment::Resnet, &resnet(0.6, 0.9)), all("disagrees", 1));
        assert_eq!(verdicts(Experiment::Resnet, &resnet(0.9, 0.6)[..3]), all("undecided", 1));
    }
}
