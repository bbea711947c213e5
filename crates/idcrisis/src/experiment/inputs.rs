//! What a run sees: its training image and its probes, at the model's shape.
//!
//! The one place where a [`RunConfig`]'s image settings become pixels:
//! 1. the training image as stored (`train_image`: MNIST 1×28×28, CIFAR-10 3×32×32, a file at
//!    its own size), or its gray N×N view (`gray`);
//! 2. the probes for that shape ([`probe::probes_for`]);
//! 3. with `canvas = N`, every image placed at the centre of an N×N zero canvas, and the
//!    [`Window`] where it sits, for the central-window scores.

use crate::data;
use crate::error::{Error, Result};
use crate::eval::probe::{self, Probe};
use crate::experiment::config::RunConfig;
use crate::shape::{Shape, Window};
use std::path::Path;

/// A run's inputs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The image's shape before any canvas.
    pub image: Shape,
    /// The model's input and output shape (the canvas, if any).
    pub shape: Shape,
    /// Where the image sits on the canvas (`None` without one).
    pub window: Option<Window>,
    /// The training image, `[C·H·W]` of `shape`.
    pub train: Vec<f32>,
    /// The probes, each `[C·H·W]` of `shape`.
    pub probes: Vec<Probe>,
    /// What the net is trained on, each `[C·H·W]` of `shape`: the images of
    /// `train_set.indices`, in order, when the run trains on such a list; else the training
    /// image alone. (A minibatch run over a whole split reads its data in [`crate::experiment::run`].)
    pub examples: Vec<Vec<f32>>,
    /// Whether the run trains on a list of images (`train_set.indices`, even of one): its
    /// scores then include the set scores against `examples`.
    pub listed: bool,
}

/// Load everything `cfg` describes. Errors name the flag: a canvas smaller than the image, a
/// gray view larger than it, or a `shape` in the config that the data do not give.
pub fn load(data_dir: &Path, cfg: &RunConfig) -> Result<Inputs> {
    let (image, train) = data::load_image(data_dir, &cfg.train_image, cfg.gray)?;
    let (shape, window) = place(cfg, image)?;
    let probes = probe::probes_for(data_dir, &cfg.train_image, image, cfg.gray, &train, &cfg.rho)?;
    let mut examples = Vec::new();
    let listed = cfg.train_set.as_ref().is_some_and(|ts| !ts.indices.is_empty());
    if let Some(ts) = cfg.train_set.as_ref().filter(|ts| !ts.indices.is_empty()) {
        let (d, split) = ts.source()?;
        let imgs = data::load_images(data_dir, d, split)?.view(cfg.gray)?;
        if imgs.shape() != image {
            return Err(Error::invalid(
                "train-set",
                format!("{} gives {} images, but the training image is {image}", ts.data, imgs.shape()),
            ));
        }
        examples = ts.indices.iter().map(|&i| imgs.image_f32(i)).collect();
    }
    if examples.is_empty() {
        examples.push(train.clone());
    }
    Ok(match window {
        None => Inputs { image, shape, window, train, probes, examples, listed },
        Some(w) => Inputs {
            image,
            shape,
            window,
            train: w.place(&train),
            probes: probes.into_iter().map(|p| Probe { image: w.place(&p.image), ..p }).collect(),
            examples: examples.iter().map(|e| w.place(e)).collect(),
            listed,
        },
    })
}

/// The model's shape and the window for an image of shape `image`, checked against `cfg.shape`.
fn place(cfg: &RunConfig, image: Shape) -> Result<(Shape, Option<Window>)> {
    let window = cfg.window(image)?;
    let shape = window.map_or(image, |w| w.canvas);
    shape.validate()?;
    if let Some(want) = cfg.shape.filter(|s| *s != shape) {
        return Err(Error::invalid(
            "shape",
            format!(
                "the config records shape {want}, but {} {}gives {shape}",
                cfg.train_image,
                if cfg.canvas.is_some() || cfg.gray.is_some() { "with its gray view and canvas " } else { "" }
            ),
        ));
    }
    Ok((shape, window))
}
