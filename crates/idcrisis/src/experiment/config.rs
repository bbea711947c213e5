//! The run configuration, as written to and read from `config.toml`.
//!
//! Every field has a default; a file may set any subset. Unknown keys and wrong types are
//! rejected with the key named. Command-line flags override the file.

use crate::data::{Dataset, ImageSpec};
use crate::engine::ConvAlgo;
use crate::error::{Error, Result};
use crate::nn::model::{Init, ModelConfig};
use crate::nn::train::TrainConfig;
use crate::shape::{Shape, Window};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Engine precision.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Dtype {
    /// 32-bit floats (default).
    #[default]
    F32,
    /// 64-bit floats (slower; for checks).
    F64,
}

/// Initialisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    /// Scheme for fresh weights.
    pub scheme: Init,
    /// Factor applied to freshly drawn weights (not biases).
    pub scale: f64,
    /// Start from these weights instead (safetensors, PyTorch layout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig { scheme: Init::TorchDefault, scale: 1.0, from: None }
    }
}

/// Train on many images instead of one, targets = inputs: minibatch training over a data set
/// split, or full-batch training on a list of its images (`indices`). The `train_image` then
/// serves only as the reference "constant" of the metrics and of the random-ρ probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSet {
    /// `DATASET:SPLIT`, e.g. `mnist:train`.
    pub data: String,
    /// Use only the first `limit` images (0 = all).
    #[serde(default)]
    pub limit: usize,
    /// Train on exactly these images of the split, in this order (distinct indices; `limit`
    /// must then be 0). The run trains full batch on them when they fit in one `batch`, else in
    /// minibatches. The set-memorization scores (nearest training image, blend index) are
    /// computed against them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indices: Vec<usize>,
    /// Minibatch size.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Passes over the data (the run stops earlier if `train.steps` updates are reached or an
    /// epoch's mean loss falls below `train.tol`).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
}

fn default_batch() -> usize {
    128
}

fn default_epochs() -> usize {
    5
}

impl TrainSet {
    /// The data set and split.
    pub fn source(&self) -> Result<(crate::data::Dataset, crate::data::Split)> {
        let (d, sp) = self
            .data
            .split_once(':')
            .ok_or_else(|| Error::invalid("train-set", format!("{:?}: expected DATASET:SPLIT, e.g. mnist:train", self.data)))?;
        Ok((
            d.parse().map_err(|e: Error| Error::invalid("train-set", e.to_string()))?,
            sp.parse().map_err(|e: Error| Error::invalid("train-set", e.to_string()))?,
        ))
    }
}

fn is_auto(a: &ConvAlgo) -> bool {
    *a == ConvAlgo::Auto
}

/// Everything needed to rerun a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Seed of the ChaCha stream for the initial weights.
    pub seed: u64,
    /// Compute threads (0 = all cores). Results are bit-identical for a fixed value.
    pub threads: usize,
    /// Engine precision.
    pub dtype: Dtype,
    /// How convolutions are computed (`auto`, `im2col` or `winograd`). Omitted from the file
    /// when `auto`, so that sweep cell ids planned before this option existed stay the same.
    #[serde(skip_serializing_if = "is_auto")]
    pub conv_algo: ConvAlgo,
    /// The one training image.
    pub train_image: ImageSpec,
    /// Gray view (`--gray N`): luma of a colour image, then its central N×N crop. Unset: the
    /// image as stored (CIFAR-10 3×32×32, MNIST 1×28×28, a file at its own size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gray: Option<usize>,
    /// Canvas (`--canvas N`): the training image and every probe are placed at the centre of an
    /// N×N zero canvas; the loss and the metrics cover the whole canvas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canvas: Option<usize>,
    /// Where on the canvas the image sits (`--canvas-at TOP,LEFT`: its top-left pixel, in
    /// pixels); unset: centred. Needs `canvas`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canvas_at: Option<[usize; 2]>,
    /// The model's input and output shape `[C, H, W]`, written by the run once the data are
    /// read. Given in a file, it must match what the data give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    /// ρ values of the random-ρ probes.
    pub rho: Vec<f64>,
    /// The network.
    pub model: ModelConfig,
    /// Initial weights.
    pub init: InitConfig,
    /// Optimizer and stopping rule.
    pub train: TrainConfig,
    /// Train on a data set with minibatches instead of the one image (e.g. `fcn-60k`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_set: Option<TrainSet>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 0,
            threads: 0,
            dtype: Dtype::F32,
            conv_algo: ConvAlgo::Auto,
            train_image: ImageSpec::default(),
            gray: None,
            canvas: None,
            canvas_at: None,
            shape: None,
            rho: crate::eval::probe::DEFAULT_RHOS.to_vec(),
            model: ModelConfig::default(),
            init: InitConfig::default(),
            train: TrainConfig::default(),
            train_set: None,
        }
    }
}

impl RunConfig {
    /// The shape of the stored image `spec` names when it is known without reading a file: data
    /// sets only (an image file's size is known once it is read).
    pub fn stored_shape(&self) -> Option<Shape> {
        match self.train_image {
            ImageSpec::Dataset { dataset: Dataset::Cifar10, .. } => Some(Shape::CIFAR),
            ImageSpec::Dataset { .. } => Some(Shape::MNIST),
            ImageSpec::File(_) => None,
        }
    }

    /// The model's shape for images stored at `stored`: the gray view, then the canvas. Err
    /// when the gray view or the canvas does not fit (naming the flag).
    pub fn model_shape(&self, stored: Shape) -> Result<Shape> {
        let image = match self.gray {
            None => stored,
            Some(g) => stored.gray(g)?,
        };
        self.canvas_shape(image)
    }

    /// The model's shape for an image of shape `image` (after any gray view): the N×N canvas,
    /// or the image's own. Err when the canvas is smaller than the image.
    pub fn canvas_shape(&self, image: Shape) -> Result<Shape> {
        Ok(match self.window(image)? {
            None => image,
            Some(w) => w.canvas,
        })
    }

    /// Where an image of shape `image` (after any gray view) sits on the canvas: centred, or at
    /// `canvas_at`. `None` without a canvas; Err when it does not fit (naming the flag).
    pub fn window(&self, image: Shape) -> Result<Option<Window>> {
        let Some(n) = self.canvas else {
            return match self.canvas_at {
                None => Ok(None),
                Some(_) => Err(Error::invalid("canvas-at", "needs --canvas")),
            };
        };
        if n < image.height || n < image.width {
            return Err(Error::invalid("canvas", format!("{n} is smaller than the image ({image}); the canvas must hold it")));
        }
        let centred = Window::centred(image, n);
        Ok(Some(match self.canvas_at {
            None => centred,
            Some([top, left]) if top + image.height <= n && left + image.width <= n => Window { top, left, ..centred },
            Some([top, left]) => {
                return Err(Error::invalid(
                    "canvas-at",
                    format!("the image ({image}) at row {top}, column {left} does not fit on the {n}×{n} canvas"),
                ))
            }
        }))
    }

    /// Fill what the data set alone determines: the FCN width (the input dimension by default)
    /// when the image's shape is known from its spec. Sweep cells are resolved this way, so a
    /// cell's id (a hash of its config) names the width it trains.
    pub fn resolve_static(&mut self) -> Result<()> {
        if self.model.width.is_none() {
            if let Some(stored) = self.stored_shape() {
                self.model.width = Some(self.model_shape(stored)?.len());
            }
        }
        Ok(())
    }

    /// Most updates the run can make: `train.steps`, or with a training set the minibatches of
    /// all its epochs if fewer (for progress bars).
    pub fn planned_steps(&self) -> u64 {
        match self.train_set.as_ref().and_then(|ts| ts.source().ok().map(|(d, s)| (ts, d.count(s)))) {
            Some((ts, n)) => {
                let n = if ts.limit == 0 { n } else { ts.limit.min(n) };
                self.train.steps.min((ts.epochs * (n / ts.batch.max(1)).max(1)) as u64)
            }
            None => self.train.steps,
        }
    }

    /// Parse TOML text; `path` is used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::Config { path: path.to_path_buf(), msg: e.to_string().trim().to_string() })
    }

    /// Read and parse a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, path)
    }

    /// Serialize to TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Other(format!("writing config: {e}")))
    }

    /// Check every value; the error names the flag.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        if !(self.init.scale.is_finite() && self.init.scale >= 0.0) {
            return Err(Error::invalid("init-scale", format!("{} must be a non-negative number", self.init.scale)));
        }
        if let Some(r) = self.rho.iter().find(|r| !(-1.0..=1.0).contains(*r)) {
            return Err(Error::invalid("rho", format!("{r} is not in [-1, 1]")));
        }
        if let Some(ts) = &self.train_set {
            ts.source()?;
            if ts.batch == 0 || ts.batch > 65536 {
                return Err(Error::invalid("train-set", format!("batch {} must be in 1..=65536", ts.batch)));
            }
            if ts.epochs == 0 {
                return Err(Error::invalid("train-set", "epochs must be at least 1"));
            }
            if !ts.indices.is_empty() {
                let (d, split) = ts.source()?;
                let count = d.count(split);
                if ts.limit != 0 {
                    return Err(Error::invalid("train-indices", "give either a list of indices or a limit, not both"));
                }
                if ts.indices.len() > count {
                    return Err(Error::invalid(
                        "train-indices",
                        format!("{} images asked, but {} has only {count}", ts.indices.len(), ts.data),
                    ));
                }
                if let Some(i) = ts.indices.iter().find(|i| **i >= count) {
                    return Err(Error::invalid("train-indices", format!("index {i} is out of range: {} has {count} images", ts.data)));
                }
                let mut seen = std::collections::BTreeSet::new();
                if let Some(i) = ts.indices.iter().find(|i| !seen.insert(**i)) {
                    return Err(Error::invalid("train-indices", format!("index {i} is given twice")));
                }
            }
        }
        if let Some(g) = self.gray {
            if !(1..=4096).contains(&g) {
                return Err(Error::invalid("gray", format!("{g} must be in 1..=4096")));
            }
        }
        if let Some(n) = self.canvas {
            if !(1..=4096).contains(&n) {
                return Err(Error::invalid("canvas", format!("{n} must be in 1..=4096")));
            }
        }
        if let Some(s) = self.shape {
            s.validate()?;
        }
        if self.threads > 1024 {
            return Err(Error::invalid("threads", format!("{} is more than 1024", self.threads)));
        }
        Ok(())
    }
}
