//! FCN and CNN models: configuration, flat parameter storage, initialisation, weights files and
//! the forward / backward passes over preallocated workspaces.

use crate::engine::winograd::Layouts;
use crate::engine::{Acc, Engine, Padding, Trans};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::layers::{Activation, Algo, Conv2d, Dense, Layer, Pass};
use crate::rng::{Rng, Stream};
use crate::shape::Shape;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Network family.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Fully connected: D→W, (L−2)×(W→W), W→D with D = C·H·W the input dimension; L = 1 is D→D.
    Fcn,
    /// Convolutional: c→C, (L−2)×(C→C), C→c with k×k same padding and c the image's channels;
    /// L = 1 is c→c.
    #[default]
    Cnn,
}

/// Weight initialisation scheme.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// PyTorch's default: kaiming-uniform with a = √5, i.e. U(±1/√fan_in) for weights, and
    /// U(±1/√fan_in) for biases.
    #[default]
    TorchDefault,
    /// N(0, 2/fan_in); zero biases.
    HeNormal,
    /// U(±√(6/fan_in)); zero biases.
    HeUniform,
    /// N(0, 2/(fan_in+fan_out)); zero biases.
    GlorotNormal,
    /// U(±√(6/(fan_in+fan_out))); zero biases (TensorFlow's default of the paper's time).
    GlorotUniform,
}

/// Coordinate channels (CoordConv, Liu et al. 2018): two extra input channels holding each
/// pixel's x and y in [−1, 1] (`x = −1 + 2·col/(W−1)`, `y = −1 + 2·row/(H−1)`; 0 for a side of 1),
/// padded like the image.
///
/// A layer with coordinates is PyTorch's `Conv2d(c_in + 2, c_out)` applied to
/// `cat([x, xx, yy], dim=1)`; its weight is stored in two tensors, `layers.{i}.weight`
/// `[c_out, c_in, k, k]` and `layers.{i}.coord_weight` `[c_out, 2, k, k]` (channel 0 is x, 1 is
/// y), and `torch.cat([weight, coord_weight], dim=1)` is the PyTorch weight.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Coords {
    /// No coordinate channels.
    #[default]
    None,
    /// On the first layer's input.
    Input,
    /// On every layer's input.
    All,
}

impl Coords {
    /// Whether layer `i` reads coordinate channels.
    pub fn at(self, i: usize) -> bool {
        match self {
            Coords::None => false,
            Coords::Input => i == 0,
            Coords::All => true,
        }
    }

    fn is_none(&self) -> bool {
        *self == Coords::None
    }
}

/// What network to build. The config builds exactly what it describes: see [`Net::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `fcn` or `cnn`.
    pub arch: Arch,
    /// Number of weight layers L ≥ 1.
    pub depth: usize,
    /// FCN hidden width W; unset: the input dimension C·H·W (784 for MNIST). A run writes the
    /// width it used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// CNN hidden channels C.
    pub channels: usize,
    /// CNN kernel side k (odd).
    pub kernel: usize,
    /// Activation between layers.
    pub act: Activation,
    /// Whether every layer has a bias.
    pub bias: bool,
    /// CNN border handling.
    pub padding: Padding,
    /// Residual CNN: an identity skip around every pair of hidden C→C layers (see
    /// [`ModelConfig::skip_source`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub residual: bool,
    /// CNN coordinate channels ([`Coords`]). Omitted from files when `none`, so that configs
    /// and sweep cell ids from before this option stay the same.
    #[serde(skip_serializing_if = "Coords::is_none")]
    pub coords: Coords,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::Cnn,
            depth: 5,
            width: None,
            channels: 128,
            kernel: 5,
            act: Activation::Relu,
            bias: true,
            padding: Padding::Zero,
            residual: false,
            coords: Coords::None,
        }
    }
}

impl ModelConfig {
    /// Check every field that does not depend on the image; the error names the flag. See
    /// [`ModelConfig::validate_for`] for the rest.
    pub fn validate(&self) -> Result<()> {
        if self.depth == 0 {
            return Err(Error::invalid("depth", "must be at least 1"));
        }
        if self.depth > 1000 {
            return Err(Error::invalid("depth", format!("{} is larger than 1000", self.depth)));
        }
        match self.arch {
            Arch::Fcn => {
                if self.residual {
                    return Err(Error::invalid("residual", "skips are implemented for CNNs only"));
                }
                if self.coords != Coords::None {
                    return Err(Error::invalid("coords", "coordinate channels are implemented for CNNs only"));
                }
                if let Some(w) = self.width.filter(|w| *w == 0 || *w > 1 << 16) {
                    return Err(Error::invalid("width", format!("{w} must be in 1..=65536")));
                }
            }
            Arch::Cnn => {
                if self.kernel.is_multiple_of(2) {
                    return Err(Error::invalid("kernel", format!("{} is even; \"same\" padding needs an odd kernel", self.kernel)));
                }
                if self.kernel > 8191 {
                    return Err(Error::invalid("kernel", format!("{} is larger than 8191", self.kernel)));
                }
                if self.residual && self.depth < 4 {
                    return Err(Error::invalid(
                        "residual",
                        format!("a residual CNN needs depth ≥ 4 (one pair of hidden layers), got {}", self.depth),
                    ));
                }
                if self.channels == 0 || self.channels > 1 << 14 {
                    return Err(Error::invalid("channels", format!("{} must be in 1..=16384", self.channels)));
                }
            }
        }
        Ok(())
    }

    /// Check that the network fits images of `shape`: the kernel at most `2·side − 1`, reflect
    /// padding with `kernel/2 < side`.
    pub fn validate_for(&self, shape: Shape) -> Result<()> {
        self.validate()?;
        shape.validate()?;
        if self.arch == Arch::Cnn {
            let side = shape.height.min(shape.width);
            if self.kernel > 2 * side - 1 {
                return Err(Error::invalid(
                    "kernel",
                    format!("{} is larger than {} (2·side − 1 for {shape} images)", self.kernel, 2 * side - 1),
                ));
            }
            if self.padding == Padding::Reflect && self.kernel / 2 >= side {
                return Err(Error::invalid("padding", format!("reflect padding needs kernel/2 < {side} for {shape} images")));
            }
        }
        Ok(())
    }

    /// The FCN hidden width for inputs of `shape`: `width`, else the input dimension.
    pub fn width_for(&self, shape: Shape) -> usize {
        self.width.unwrap_or(shape.len())
    }

    /// For a residual CNN, the activation index whose value is added to layer `i`'s output.
    ///
    /// The block (ResNet's basic block, v1): the hidden C→C layers 1..=L−2 are grouped in pairs
    /// (1, 2), (3, 4), …; for a pair (a, b) with input `h` (the activation entering layer a),
    /// `out = act(h + conv_b(act(conv_a(h))))`. The first (1→C) and last (C→1) layers, and an
    /// unpaired last hidden layer, have no skip.
    pub fn skip_source(&self, i: usize) -> Option<usize> {
        (self.residual && i >= 2 && i.is_multiple_of(2) && i + 2 <= self.depth).then(|| i - 1)
    }

    /// A short name, e.g. `cnn-d5-c128-k5-relu`.
    pub fn label(&self) -> String {
        let act = match self.act {
            Activation::Relu => "relu",
            Activation::Linear => "linear",
        };
        match self.arch {
            Arch::Fcn => match self.width {
                Some(w) => format!("fcn-d{}-w{w}-{act}", self.depth),
                None => format!("fcn-d{}-{act}", self.depth),
            },
            Arch::Cnn => {
                let coords = match self.coords {
                    Coords::None => "",
                    Coords::Input => "-xy",
                    Coords::All => "-xyall",
                };
                let kind = if self.residual { "rescnn" } else { "cnn" };
                format!("{kind}-d{}-c{}-k{}-{act}{coords}", self.depth, self.channels, self.kernel)
            }
        }
    }
}

/// A network: its layers, flat parameters and flat gradients.
#[derive(Debug, Clone)]
pub struct Net<T: Float> {
    /// What it was built from.
    pub cfg: ModelConfig,
    /// Shape of one input (and output) image.
    pub shape: Shape,
    /// Weight layers, input to output.
    pub layers: Vec<Layer>,
    /// All parameters, layer by layer: weight then bias, each in PyTorch layout.
    pub params: Vec<T>,
    /// Gradients, same layout as `params`.
    pub grads: Vec<T>,
    /// With coordinate channels: their column matrix `[2·k·k, H·W]` ([`crate::engine::im2col`] of
    /// the x and y maps under the net's padding); empty otherwise.
    pub coord_cols: Vec<T>,
}

impl<T: Float> Net<T> {
    /// Build the network `cfg` describes for images of `shape` (input and output), with all
    /// parameters zero (see [`Net::init`]).
    pub fn new(cfg: &ModelConfig, shape: Shape) -> Result<Self> {
        cfg.validate_for(shape)?;
        let (dim, width) = (shape.len(), cfg.width_for(shape));
        let mut layers = Vec::with_capacity(cfg.depth);
        let mut off = 0usize;
        let mut take = |len: usize| {
            let r = off..off + len;
            off += len;
            r
        };
        for i in 0..cfg.depth {
            match cfg.arch {
                Arch::Fcn => {
                    let inp = if i == 0 { dim } else { width };
                    let out = if i + 1 == cfg.depth { dim } else { width };
                    let w = take(inp * out);
                    let b = cfg.bias.then(|| take(out));
                    layers.push(Layer::Dense(Dense { inp, out, w, b }));
                }
                Arch::Cnn => {
                    let cin = if i == 0 { shape.channels } else { cfg.channels };
                    let cout = if i + 1 == cfg.depth { shape.channels } else { cfg.channels };
                    let k = cfg.kernel;
                    let w = take(cout * cin * k * k);
                    let b = cfg.bias.then(|| take(cout));
                    let mut conv = Conv2d::new(cin, cout, shape.height, shape.width, k, cfg.padding, w, b);
                    conv.coord_w = cfg.coords.at(i).then(|| take(cout * 2 * k * k));
                    layers.push(Layer::Conv(conv));
                }
            }
        }
        let coord_cols = if cfg.coords == Coords::None { Vec::new() } else { coord_cols(shape, cfg.kernel, cfg.padding) };
        Ok(Net { cfg: cfg.clone(), shape, layers, params: vec![T::zero(); off], grads: vec![T::zero(); off], coord_cols })
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Forward multiply-accumulates per example.
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(Layer::macs).sum()
    }

    /// FLOPs of one training step on a batch of `n` (forward + weight grads + input grads,
    /// 2 FLOPs per MAC; the first layer has no input gradient).
    pub fn train_flops(&self, n: usize) -> f64 {
        let f: u64 = self.macs();
        let first = self.layers.first().map(Layer::macs).unwrap_or(0);
        2.0 * n as f64 * (3 * f - first) as f64
    }

    /// Draw fresh parameters: `scheme` for weights (multiplied by `scale`) and biases, from the
    /// seeded ChaCha stream [`Stream::Init`]. Layers are drawn in order, weight before bias (then
    /// the coordinate weights, if any), each in PyTorch's row-major layout.
    pub fn init(&mut self, scheme: Init, scale: f64, seed: u64) {
        let mut rng = Rng::new(seed, Stream::Init);
        for layer in &self.layers {
            let (fan_in, fan_out) = layer.fans();
            let (fi, fo) = (fan_in as f64, fan_out as f64);
            let draw = |rng: &mut Rng| match scheme {
                Init::TorchDefault => rng.uniform_in(-1.0, 1.0) / fi.sqrt(),
                Init::HeNormal => rng.normal() * (2.0 / fi).sqrt(),
                Init::HeUniform => rng.uniform_in(-1.0, 1.0) * (6.0 / fi).sqrt(),
                Init::GlorotNormal => rng.normal() * (2.0 / (fi + fo)).sqrt(),
                Init::GlorotUniform => rng.uniform_in(-1.0, 1.0) * (6.0 / (fi + fo)).sqrt(),
            };
            for v in self.params[layer.weight_range()].iter_mut() {
                *v = T::from_f64(draw(&mut rng) * scale);
            }
            if let Some(b) = layer.bias_range() {
                for v in self.params[b].iter_mut() {
                    *v = match scheme {
                        Init::TorchDefault => T::from_f64(rng.uniform_in(-1.0, 1.0) / fi.sqrt()),
                        _ => T::zero(),
                    };
                }
            }
            // Coordinate weights last, drawn like the weights (the fans count the 2 channels).
            if let Layer::Conv(Conv2d { coord_w: Some(r), .. }) = layer {
                for v in self.params[r.clone()].iter_mut() {
                    *v = T::from_f64(draw(&mut rng) * scale);
                }
            }
        }
    }

    /// `(name, shape, range)` for every tensor, in the safetensors naming `layers.{i}.weight` /
    /// `layers.{i}.bias`.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.push((format!("layers.{i}.weight"), l.weight_shape(), l.weight_range()));
            if let Some(b) = l.bias_range() {
                out.push((format!("layers.{i}.bias"), vec![b.len()], b));
            }
            if let Layer::Conv(Conv2d { coord_w: Some(r), c_out, geom, .. }) = l {
                out.push((format!("layers.{i}.coord_weight"), vec![*c_out, 2, geom.k, geom.k], r.clone()));
            }
        }
        out
    }

    /// The parameters as a safetensors file image, in the engine's dtype.
    pub fn to_safetensors(&self, metadata: Option<std::collections::HashMap<String, String>>) -> Result<Vec<u8>> {
        let tensors = self.tensors();
        let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, r)| T::slice_to_le_bytes(&self.params[r.clone()])).collect();
        let views = tensors
            .iter()
            .zip(&bytes)
            .map(|((name, shape, _), b)| {
                safetensors::tensor::TensorView::new(T::DTYPE, shape.clone(), b)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Other(format!("safetensors: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, metadata).map_err(|e| Error::Other(format!("safetensors: {e}")))
    }

    /// Load parameters from a safetensors image (F32 or F64). Every tensor must be present with
    /// the right shape and no others may be; `path` is only used in messages.
    pub fn load_safetensors(&mut self, bytes: &[u8], path: &Path) -> Result<()> {
        let err = |msg: String| Error::Weights { path: path.to_path_buf(), msg };
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| err(format!("not a safetensors file: {e}")))?;
        let tensors = self.tensors();
        let mut names = st.names();
        names.sort();
        for name in names {
            if !tensors.iter().any(|(n, _, _)| n == name) {
                return Err(err(format!("unexpected tensor {name} for a {} network (bias {})", self.cfg.label(), self.cfg.bias)));
            }
        }
        // Check every tensor before copying any, so that a failed load leaves the net unchanged.
        let mut checked = Vec::with_capacity(tensors.len());
        for (name, shape, range) in tensors {
            let t = st.tensor(&name).map_err(|_| err(format!("missing tensor {name} (expected shape {shape:?})")))?;
            if t.shape() != shape.as_slice() {
                return Err(err(format!("tensor {name} has shape {:?}, expected {shape:?}", t.shape())));
            }
            match t.dtype() {
                safetensors::Dtype::F32 | safetensors::Dtype::F64 => checked.push((t, range)),
                other => return Err(err(format!("tensor {name} has dtype {other:?}; expected F32 or F64"))),
            }
        }
        for (t, range) in checked {
            let dst = &mut self.params[range];
            let data = t.data();
            if t.dtype() == safetensors::Dtype::F32 {
                for (d, c) in dst.iter_mut().zip(data.chunks_exact(4)) {
                    *d = T::from_f64(f32::from_le_bytes(c.try_into().unwrap()) as f64);
                }
            } else {
                for (d, c) in dst.iter_mut().zip(data.chunks_exact(8)) {
                    *d = T::from_f64(f64::from_le_bytes(c.try_into().unwrap()));
                }
            }
        }
        Ok(())
    }

    /// Buffers for batches of up to `n` examples. `train` keeps every activation and column
    /// matrix for [`Net::backward`]; otherwise only two ping-pong buffers and one column buffer.
    pub fn workspace(&self, n: usize, train: bool) -> Workspace<T> {
        let n = n.max(1);
        let dim = self.shape.len();
        let max_act = self.layers.iter().map(|l| l.out_len().max(l.in_len())).max().unwrap_or(dim);
        let z = T::zero();
        if train {
            let mut acts = vec![vec![z; n * dim]];
            acts.extend(self.layers.iter().map(|l| vec![z; n * l.out_len()]));
            let cols = self.layers.iter().map(|l| vec![z; l.store_len(n)]).collect();
            let scratch = self.layers.iter().map(|l| l.scratch_len(n)).max().unwrap_or(0);
            Workspace {
                n,
                dim,
                train,
                acts,
                cols,
                dbuf: [vec![z; n * max_act], vec![z; n * max_act]],
                scratch: vec![z; scratch],
                skip_grad: if self.cfg.residual { vec![z; n * max_act] } else { Vec::new() },
                coord: vec![z; self.coord_buf_len()],
            }
        } else {
            let max_cols = self.layers.iter().map(|l| l.eval_cols_len(n)).max().unwrap_or(0);
            let scratch = self.layers.iter().map(|l| l.scratch_len(n)).max().unwrap_or(0);
            Workspace {
                n,
                dim,
                train,
                acts: vec![vec![z; n * max_act], vec![z; n * max_act], vec![z; n * max_act]],
                cols: vec![vec![z; max_cols]],
                dbuf: [Vec::new(), Vec::new()],
                scratch: vec![z; scratch],
                skip_grad: Vec::new(),
                coord: vec![z; self.coord_buf_len()],
            }
        }
    }

    /// Forward pass of `n ≤ ws.n` examples `x [n, C, H, W]` (`self.shape`); returns the output
    /// `[n, C·H·W]`.
    pub fn forward<'w>(&self, eng: &Engine, ws: &'w mut Workspace<T>, x: &[T], n: usize) -> &'w [T] {
        self.forward_with(eng, ws, x, n, &mut |eng, _, z| self.cfg.act.forward(eng, z))
    }

    /// [`Net::forward`] with `act(eng, i, z)` in place of the activation after layer `i` (every
    /// layer but the last): `z [n, out]` is layer `i`'s output (its skip connection added), in
    /// the layout the engine keeps it in for `ws`'s pass ([`Net::layouts`]), to be turned into
    /// the next layer's input in place. [Exact Jacobians](crate::eval::attractor::exact_jacobian)
    /// put the activation's backward pass at a given input here. A hook other than the
    /// activation leaves `ws` inconsistent with the net for [`Net::backward`].
    pub fn forward_with<'w>(
        &self,
        eng: &Engine,
        ws: &'w mut Workspace<T>,
        x: &[T],
        n: usize,
        act: &mut impl FnMut(&Engine, usize, &mut [T]),
    ) -> &'w [T] {
        assert!(n <= ws.n, "batch {n} larger than workspace {}", ws.n);
        let dim = self.shape.len();
        ws.acts[0][..n * dim].copy_from_slice(&x[..n * dim]);
        let depth = self.layers.len();
        let pass = if ws.train { Pass::Train } else { Pass::Eval };
        for (i, layer) in self.layers.iter().enumerate() {
            let (src, dst) = if ws.train { (i, i + 1) } else { (i % 3, (i + 1) % 3) };
            let skip = self.cfg.skip_source(i).map(|j| if ws.train { j } else { j % 3 });
            let (input, output, skip_src) = three_mut(&mut ws.acts, src, dst, skip);
            match layer {
                Layer::Dense(d) => d.forward(eng, &self.params, input, output, &mut ws.scratch, n),
                Layer::Conv(c) => {
                    let cols = &mut ws.cols[if ws.train { i } else { 0 }];
                    c.forward(eng, &self.params, input, output, self.layouts(eng, i, pass), cols, &mut ws.scratch, ws.train, n);
                }
            }
            if let Layer::Conv(c @ Conv2d { coord_w: Some(_), .. }) = layer {
                self.add_coord_map(eng, c, self.layouts(eng, i, pass).y_cl, output, &mut ws.coord, n);
            }
            if let Some(h) = skip_src {
                debug_assert_eq!(
                    self.layouts(eng, i, pass).y_cl,
                    self.cfg.skip_source(i).is_some_and(|j| j > 0 && self.layouts(eng, j - 1, pass).y_cl)
                );
                let len = n * layer.out_len();
                crate::engine::for_each_chunk(eng, &mut output[..len], |off, o| {
                    for (o, v) in o.iter_mut().zip(&h[off..]) {
                        *o = *o + *v;
                    }
                });
            }
            if i + 1 < depth {
                act(eng, i, &mut output[..n * layer.out_len()]);
            }
        }
        let last = if ws.train { depth } else { depth % 3 };
        &ws.acts[last][..n * dim]
    }

    /// Backward pass after a training-mode [`Net::forward`] of `n` examples. Reads the loss
    /// gradient from [`Workspace::dout`] and overwrites `self.grads`.
    pub fn backward(&mut self, eng: &Engine, ws: &mut Workspace<T>, n: usize) {
        self.backward_with(eng, ws, n, None, |_, _, _| {});
    }

    /// [`Net::backward`] fused with an update: `done(start, params, grads)` is called as soon as
    /// a layer's gradients are final, with that layer's slices `start..` of the parameter and
    /// gradient vectors (last layer first). Nothing later in the pass reads a layer's
    /// parameters, so `done` may update them. With `gd = Some(lr)` (plain gradient descent)
    /// and one example, a dense layer descends its weights itself
    /// ([`Dense::backward_descend`]), leaves its weight gradient in `self.grads` as it was, and
    /// `done` gets the rest of its parameters (its bias).
    pub fn backward_with(
        &mut self,
        eng: &Engine,
        ws: &mut Workspace<T>,
        n: usize,
        gd: Option<T>,
        mut done: impl FnMut(usize, &mut [T], &[T]),
    ) {
        assert!(ws.train, "backward needs a training workspace");
        let depth = self.layers.len();
        let mut cur = 0usize;
        for i in (0..depth).rev() {
            let layer = &self.layers[i];
            // The layer's parameters: its weights, bias and coordinate weights, which `Net::new`
            // lays out one after another, before the next layer's.
            let own = layer.weight_range().start..self.layers.get(i + 1).map_or(self.params.len(), |l| l.weight_range().start);
            // Gradients are added into zeros, except a dense layer's weights and a Winograd
            // convolution's, which their backward overwrites: zeroing them first streams the
            // weight size once more (an FCN's whole weights; 1.6 MB per 128-channel layer).
            // On the pool: a 128-channel layer's 1.6 MB filled on one thread left the other idle
            // long enough to sleep.
            let zero = |g: &mut [T]| crate::engine::for_each_chunk(eng, g, |_, c| c.fill(T::zero()));
            let written = match layer {
                Layer::Dense(d) => Some(d.w.clone()),
                Layer::Conv(c) if c.overwrites_weight_grad::<T>(eng, n) => Some(c.w.clone()),
                Layer::Conv(_) => None,
            };
            match written {
                Some(w) => {
                    zero(&mut self.grads[own.start..w.start]);
                    zero(&mut self.grads[w.end..own.end]);
                }
                None => zero(&mut self.grads[own.clone()]),
            }
            let (dy_buf, dx_buf, _) = three_mut(&mut ws.dbuf, cur, 1 - cur, None);
            let dy = &mut dy_buf[..n * layer.out_len()];
            if i + 1 < depth {
                self.cfg.act.backward(eng, dy, &ws.acts[i + 1][..n * layer.out_len()]);
            }
            let want_dx = i > 0;
            if self.cfg.skip_source(i).is_some() {
                // dz of the block's last layer also flows straight to the block input.
                ws.skip_grad[..n * layer.out_len()].copy_from_slice(dy);
            }
            let io = self.layouts(eng, i, Pass::Train);
            if let Layer::Conv(c @ Conv2d { coord_w: Some(_), .. }) = layer {
                coord_grad(eng, c, &self.coord_cols, io.y_cl, dy, &mut self.grads, &mut ws.coord, n);
            }
            let mut own = own;
            match (layer, gd.filter(|_| n == 1)) {
                (Layer::Dense(d), Some(lr)) => {
                    d.backward_descend(eng, &mut self.params, &mut self.grads, &ws.acts[i], dy, want_dx.then_some(&mut dx_buf[..]), lr);
                    debug_assert_eq!(own.start, d.w.start);
                    own.start = d.w.end;
                }
                (Layer::Dense(d), None) => {
                    d.backward(eng, &self.params, &mut self.grads, &ws.acts[i], dy, want_dx.then_some(&mut dx_buf[..]), n)
                }
                (Layer::Conv(c), _) => c.backward(
                    eng,
                    &self.params,
                    &mut self.grads,
                    &ws.cols[i],
                    dy,
                    want_dx.then_some(&mut dx_buf[..]),
                    io,
                    &mut ws.scratch,
                    n,
                ),
            }
            done(own.start, &mut self.params[own.clone()], &self.grads[own]);
            if i >= 1 && self.cfg.skip_source(i + 1).is_some() {
                // Layer i is a block's first layer: add the skip gradient to ∂L/∂(its input).
                let len = n * layer.in_len();
                let g = &ws.skip_grad;
                crate::engine::for_each_chunk(eng, &mut dx_buf[..len], |off, d| {
                    for (d, v) in d.iter_mut().zip(&g[off..]) {
                        *d = *d + *v;
                    }
                });
            }
            cur = 1 - cur;
        }
    }

    /// Elements of the workspace's coordinate buffer: the largest `c_out·H·W` of a layer with
    /// coordinate channels.
    fn coord_buf_len(&self) -> usize {
        self.layers.iter().filter(|l| matches!(l, Layer::Conv(Conv2d { coord_w: Some(_), .. }))).map(Layer::out_len).max().unwrap_or(0)
    }

    /// Add the coordinate channels' contribution `Wc [c_out, 2·k·k] · coord_cols` (the same for
    /// every example) to each of the `n` outputs `y` (channel-last `[n, H·W, c_out]` when `y_cl`,
    /// else `[n, c_out, H·W]`). `buf` holds `c_out·H·W` elements.
    fn add_coord_map(&self, eng: &Engine, c: &Conv2d, y_cl: bool, y: &mut [T], buf: &mut [T], n: usize) {
        let Some(r) = &c.coord_w else { return };
        let (hw, taps) = (c.geom.hw(), 2 * c.geom.k * c.geom.k);
        let (wc, map) = (&self.params[r.clone()], &mut buf[..c.c_out * hw]);
        if y_cl {
            crate::engine::gemm(eng, hw, c.c_out, taps, map, &self.coord_cols, Trans::Yes, wc, Trans::Yes, Acc::Overwrite);
        } else {
            crate::engine::gemm(eng, c.c_out, hw, taps, map, wc, Trans::No, &self.coord_cols, Trans::No, Acc::Overwrite);
        }
        let map = &*map;
        for yi in y[..n * map.len()].chunks_mut(map.len()) {
            crate::engine::for_each_chunk(eng, yi, |off, o| {
                for (o, v) in o.iter_mut().zip(&map[off..]) {
                    *o = *o + *v;
                }
            });
        }
    }

    /// Activation layouts of layer `i` as `eng` runs this net for `pass`: a Winograd layer reads its input
    /// channel-last, and a layer writes its output channel-last when the next layer is a
    /// Winograd one, so consecutive Winograd layers exchange channel-last activations with no
    /// transposes between them. Everything else is channel-first, as PyTorch lays it out.
    pub fn layouts(&self, eng: &Engine, i: usize, pass: Pass) -> Layouts {
        let wino = |j: usize| matches!(self.layers.get(j), Some(Layer::Conv(c)) if c.algo::<T>(eng, pass) == Algo::Winograd);
        Layouts { x_cl: wino(i), y_cl: wino(i + 1) }
    }

    /// Activation `i` (0 is the input) of the last training-mode forward with `eng`, channel-first
    /// `[n, c, h, w]` whatever layout the engine kept it in.
    pub fn activation_chw(&self, eng: &Engine, ws: &Workspace<T>, i: usize) -> Vec<T> {
        let a = ws.activation(i);
        match i.checked_sub(1).map(|l| (&self.layers[l], self.layouts(eng, l, Pass::Train).y_cl)) {
            Some((Layer::Conv(c), true)) if c.c_out > 1 => {
                let mut out = vec![T::zero(); a.len()];
                let hw = c.geom.hw();
                let count = a.len() / (c.c_out * hw);
                crate::engine::transpose(eng, a, count, hw, c.c_out, &mut out);
                out
            }
            _ => a.to_vec(),
        }
    }

    /// Outputs `[count, C·H·W]` for `count` inputs `xs [count, C·H·W]`, evaluated in batches of
    /// at most `batch`.
    ///
    /// With several threads the inputs are split into one contiguous run per thread, each
    /// evaluated on one thread (a one-thread engine with `eng`'s convolution algorithm): one
    /// parallel region per call instead of several per layer.
    /// - A net with dense layers is evaluated in batches of `batch`, the caller's, since a dense
    ///   product rounds differently for different batch sizes. Each thread gets whole batches,
    ///   and with a single batch the call runs on `eng`. Its bits do not depend on the thread
    ///   count (the `gemm` crate's products do not).
    /// - Any other net is split when there are at least [`PREDICT_MIN_PER_THREAD`] inputs per
    ///   thread. Its batches are `⌈batch/threads⌉`, at most [`PREDICT_MAX_BATCH`], so that
    ///   activations stay in cache from layer to layer. The bits do not change, since an input's
    ///   output depends neither on which inputs share its batch nor on the thread count.
    ///
    /// `tests/determinism.rs` checks both, for every convolution algorithm.
    pub fn predict(&self, eng: &Engine, xs: &[T], count: usize, batch: usize) -> Vec<T> {
        let mut out = vec![T::zero(); count * self.shape.len()];
        self.predict_to(eng, xs, count, batch, &mut out);
        out
    }

    /// [`Net::predict`] into `out [count, C·H·W]` (its first `count·C·H·W` elements), with the
    /// same bits.
    pub fn predict_to(&self, eng: &Engine, xs: &[T], count: usize, batch: usize, out: &mut [T]) {
        self.predict_with(eng, xs, count, batch, out, &|eng, _, z| self.cfg.act.forward(eng, z));
    }

    /// [`Net::predict_to`] with `act` in place of the activations, as [`Net::forward_with`]
    /// takes it: called on every thread that evaluates a batch, with that thread's engine.
    pub fn predict_with(
        &self,
        eng: &Engine,
        xs: &[T],
        count: usize,
        batch: usize,
        out: &mut [T],
        act: &(impl Fn(&Engine, usize, &mut [T]) + Sync),
    ) {
        let batch = batch.clamp(1, count.max(1));
        let dim = self.shape.len();
        let xs = &xs[..count * dim];
        let out = &mut out[..count * dim];
        // A dense layer's product rounds differently for different batch sizes (the `gemm`
        // crate's kernels depend on the row count), so nets with one keep the caller's batches.
        // Run on one thread each, whole batches outpace each batch's products on all threads:
        // FCN 3×2048 at batch 100, 2 threads, 13.8–14.9 k against 19.3–19.4 k img/s
        // (`bench --probe`, BENCHMARKS.md).
        let dense = self.layers.iter().any(|l| matches!(l, Layer::Dense(_)));
        let batches = count.div_ceil(batch);
        let lanes = if dense { eng.threads().min(batches) } else { eng.threads().min(count / PREDICT_MIN_PER_THREAD) }.max(1);
        let lane_batch = if dense { batch } else { batch.div_ceil(lanes).min(PREDICT_MAX_BATCH) };
        // Inputs per lane: whole batches of `batch` for a net with dense layers, so that each
        // batch is the one a single lane would evaluate.
        let per = if dense { batches.div_ceil(lanes) * batch } else { count.div_ceil(lanes) };
        // Without a thread for the one-thread engine, the whole call runs on `eng` instead.
        let serial = (lanes > 1).then(|| Engine::new(1).ok()).flatten();
        match serial {
            // One lane per task, so one per thread of the team.
            Some(serial) => {
                let serial = serial.with_conv_algo(eng.conv_algo());
                eng.par_chunks(out, per * dim, |i, y| {
                    let mut ws = self.workspace(lane_batch.min(per), false);
                    self.predict_into(&serial, &mut ws, &xs[i * per * dim..][..y.len()], y, act);
                });
            }
            None => {
                let mut ws = self.workspace(lane_batch, false);
                self.predict_into(eng, &mut ws, xs, out, act);
            }
        }
    }

    /// Evaluates `xs [count, C·H·W]` into `ys` (the same length) in batches of `ws.n`.
    fn predict_into(&self, eng: &Engine, ws: &mut Workspace<T>, xs: &[T], ys: &mut [T], act: &impl Fn(&Engine, usize, &mut [T])) {
        let dim = self.shape.len();
        for (x, y) in xs.chunks(ws.n * dim).zip(ys.chunks_mut(ws.n * dim)) {
            y.copy_from_slice(self.forward_with(eng, ws, x, x.len() / dim, &mut |e, i, z| act(e, i, z)));
        }
    }

    /// The net's linear part: a copy whose biases and coordinate-channel weights are zero. A
    /// ReLU or linear net is piecewise linear, and within the region of an input `x` (the same
    /// units active) its map is `f(v) = A·v + c`, where `A·v` is what the linear part computes
    /// when each ReLU is replaced by the mask of the units active at `x`.
    ///
    /// It is for forward passes: its gradient vector is empty.
    pub fn linear_part(&self) -> Net<T> {
        let mut params = self.params.clone();
        for layer in &self.layers {
            let coord = match layer {
                Layer::Conv(c) => c.coord_w.clone(),
                Layer::Dense(_) => None,
            };
            for r in layer.bias_range().into_iter().chain(coord) {
                params[r].fill(T::zero());
            }
        }
        Net {
            cfg: self.cfg.clone(),
            shape: self.shape,
            layers: self.layers.clone(),
            params,
            grads: Vec::new(),
            coord_cols: self.coord_cols.clone(),
        }
    }
}

/// Inputs per thread from which [`Net::predict`] splits a call over the engine's threads.
pub const PREDICT_MIN_PER_THREAD: usize = 2;

/// Most inputs [`Net::predict`] evaluates together on one thread in a net without dense
/// layers, whatever the caller's batch: a 32-channel 28×28 activation is 100 KB in f32, so 8
/// images' pass from layer to layer in L2 where 50 did not (`bench --probe`, 2 threads, Intel
/// Xeon AVX-512 VM, batch 100: 5-layer 32-channel 3×3 CNN 4425–4834 img/s in lanes of 50,
/// 5213–5644 in lanes of 1–8; the 128-channel 5×5 one 259 in lanes of 1, whose kernel
/// transforms then run per image, 338–372 in lanes of 2–8, 350–355 of 50).
pub const PREDICT_MAX_BATCH: usize = 8;

/// Preallocated buffers for one batch size; see [`Net::workspace`].
#[derive(Debug, Clone)]
pub struct Workspace<T> {
    /// Largest batch the buffers hold.
    pub n: usize,
    /// Values per example, `C·H·W`.
    dim: usize,
    train: bool,
    acts: Vec<Vec<T>>,
    cols: Vec<Vec<T>>,
    dbuf: [Vec<T>; 2],
    /// Convolution scratch, shared by all layers.
    scratch: Vec<T>,
    skip_grad: Vec<T>,
    /// One layer's coordinate map `[c_out, H·W]` (forward) or batch-summed output gradient
    /// (backward); empty without coordinate channels.
    coord: Vec<T>,
}

impl<T: Float> Workspace<T> {
    /// Where the loss writes `∂L/∂output [n, C·H·W]` before [`Net::backward`].
    pub fn dout(&mut self) -> &mut [T] {
        &mut self.dbuf[0]
    }
    /// The last training-mode output `[n, C·H·W]` and the loss-gradient buffer, borrowed together.
    pub fn output_and_dout(&mut self, n: usize) -> (&[T], &mut [T]) {
        let last = self.acts.len() - 1;
        (&self.acts[last][..n * self.dim], &mut self.dbuf[0])
    }
    /// Output of the last training-mode forward, `[n, C·H·W]`.
    pub fn output(&self, n: usize) -> &[T] {
        &self.acts[self.acts.len() - 1][..n * self.dim]
    }
    /// Activation after layer `i` (0 is the input) of the last training-mode forward.
    pub fn activation(&self, i: usize) -> &[T] {
        assert!(self.train, "activations are kept only in training workspaces");
        &self.acts[i]
    }
}

/// The coordinate weights' gradient: `dWc [c_out, 2·k·k] += (Σₙ dyₙ) · coord_colsᵀ`, with `dy`
/// the output gradient of `n` examples in the layer's output layout (see [`Net::add_coord_map`]),
/// summed in example order into `buf`.
#[allow(clippy::too_many_arguments)]
fn coord_grad<T: Float>(eng: &Engine, c: &Conv2d, cols: &[T], y_cl: bool, dy: &[T], grads: &mut [T], buf: &mut [T], n: usize) {
    let Some(r) = &c.coord_w else { return };
    let (hw, taps) = (c.geom.hw(), 2 * c.geom.k * c.geom.k);
    let len = c.c_out * hw;
    let sum: &[T] = if n == 1 {
        &dy[..len]
    } else {
        let s = &mut buf[..len];
        s.copy_from_slice(&dy[..len]);
        for d in dy[len..n * len].chunks(len) {
            for (a, b) in s.iter_mut().zip(d) {
                *a = *a + *b;
            }
        }
        s
    };
    let ta = if y_cl { Trans::Yes } else { Trans::No };
    crate::engine::gemm(eng, c.c_out, taps, hw, &mut grads[r.clone()], sum, ta, cols, Trans::Yes, Acc::Add);
}

/// The column matrix `[2·k·k, H·W]` of the coordinate maps of `shape` (x then y, each in
/// [−1, 1]; see [`Coords`]) under `padding`, as [`crate::engine::im2col`] unfolds an image.
pub fn coord_cols<T: Float>(shape: Shape, k: usize, padding: Padding) -> Vec<T> {
    let (h, w) = (shape.height, shape.width);
    let at = |i: usize, len: usize| if len > 1 { -1.0 + 2.0 * i as f64 / (len - 1) as f64 } else { 0.0 };
    let g = crate::engine::ConvGeom::new(2, h, w, k, padding);
    let mut cols = vec![T::zero(); 2 * k * k * h * w];
    for ch in 0..2 {
        for ky in 0..k {
            for kx in 0..k {
                let row = &mut cols[((ch * k + ky) * k + kx) * h * w..][..h * w];
                for y in 0..h {
                    for x in 0..w {
                        if let (Some(sy), Some(sx)) = (g.ytab[ky * h + y], g.xtab[kx * w + x]) {
                            row[y * w + x] = T::from_f64(if ch == 0 { at(sx, w) } else { at(sy, h) });
                        }
                    }
                }
            }
        }
    }
    cols
}

/// Disjoint borrows of `v[a]` and `v[b]`, and a shared borrow of `v[c]` when given
/// (`c` ∉ {a, b}, which the residual layout guarantees).
fn three_mut<V>(v: &mut [V], a: usize, b: usize, c: Option<usize>) -> (&mut V, &mut V, Option<&V>) {
    let distinct = "three_mut needs distinct in-bounds indices";
    match c {
        None => {
            let [x, y] = v.get_disjoint_mut([a, b]).expect(distinct);
            (x, y, None)
        }
        Some(c) => {
            let [x, y, z] = v.get_disjoint_mut([a, b, c]).expect(distinct);
            (x, y, Some(&*z))
        }
    }
}
