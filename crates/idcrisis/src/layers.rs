//! Layers with explicit forward and backward passes (no autograd tape).
//!
//! A layer owns no numbers: its parameters live in the model's flat parameter vector at the
//! ranges it records, and its gradients at the same ranges of the flat gradient vector. Backward
//! passes *accumulate* into the gradient vector; the model zeroes it once per step.

use crate::engine::{self, ConvGeom, Engine, Padding};
use crate::float::Float;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Fully connected layer: `y [n, out] = x [n, inp] · Wᵀ + b`, with `W [out, inp]`, `b [out]`.
#[derive(Debug, Clone)]
pub struct Dense {
    /// Input features.
    pub inp: usize,
    /// Output features.
    pub out: usize,
    /// Where `W [out, inp]` sits in the parameter vector.
    pub w: Range<usize>,
    /// Where `b [out]` sits, if the layer has a bias.
    pub b: Option<Range<usize>>,
}

impl Dense {
    /// Forward for a batch of `n`: `x [n, inp]` → `y [n, out]`.
    pub fn forward<T: Float>(&self, eng: &Engine, params: &[T], x: &[T], y: &mut [T], n: usize) {
        let y = &mut y[..n * self.out];
        let acc = match &self.b {
            Some(b) => {
                engine::fill_cols(y, &params[b.clone()]);
                true
            }
            None => false,
        };
        engine::gemm(eng, n, self.out, self.inp, y, &x[..n * self.inp], false, &params[self.w.clone()], true, acc);
    }

    /// Backward for a batch of `n`. Adds `dW = dyᵀ·x` and `db = Σ dy` into `grads`; writes
    /// `dx [n, inp] = dy · W` when `dx` is given.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Float>(
        &self,
        eng: &Engine,
        params: &[T],
        grads: &mut [T],
        x: &[T],
        dy: &[T],
        dx: Option<&mut [T]>,
        n: usize,
    ) {
        let dy = &dy[..n * self.out];
        engine::gemm(eng, self.out, self.inp, n, &mut grads[self.w.clone()], dy, true, &x[..n * self.inp], false, true);
        if let Some(b) = &self.b {
            engine::sum_cols_into(&mut grads[b.clone()], dy);
        }
        if let Some(dx) = dx {
            engine::gemm(eng, n, self.inp, self.out, &mut dx[..n * self.inp], dy, false, &params[self.w.clone()], false, false);
        }
    }
}

/// Same-padded, stride-1 2-D convolution (cross-correlation, as PyTorch's `Conv2d`):
/// `y [n, c_out, h, w]` from `x [n, c_in, h, w]`, `W [c_out, c_in, k, k]`, `b [c_out]`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// Input geometry and tap tables.
    pub geom: ConvGeom,
    /// Output channels.
    pub c_out: usize,
    /// Border handling.
    pub padding: Padding,
    /// Where `W` sits in the parameter vector.
    pub w: Range<usize>,
    /// Where `b` sits, if any.
    pub b: Option<Range<usize>>,
}

impl Conv2d {
    /// Elements of one image's column matrix, `c_in·k·k·h·w`.
    pub fn cols_len(&self) -> usize {
        self.geom.col_rows() * self.geom.hw()
    }

    /// Forward for a batch of `n`. When `store` is true, image `i`'s column matrix is kept at
    /// `cols[i·cols_len ..]` for the backward pass; otherwise `cols` is scratch of one image.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<T: Float>(
        &self,
        eng: &Engine,
        params: &[T],
        x: &[T],
        y: &mut [T],
        cols: &mut [T],
        store: bool,
        n: usize,
    ) {
        let (hw, cl, ckk) = (self.geom.hw(), self.cols_len(), self.geom.col_rows());
        let w = &params[self.w.clone()];
        for i in 0..n {
            let xi = &x[i * self.geom.c * hw..(i + 1) * self.geom.c * hw];
            let yi = &mut y[i * self.c_out * hw..(i + 1) * self.c_out * hw];
            let ci = if store { &mut cols[i * cl..(i + 1) * cl] } else { &mut cols[..cl] };
            engine::im2col(eng, &self.geom, xi, ci);
            let acc = match &self.b {
                Some(b) => {
                    engine::fill_rows(yi, &params[b.clone()], hw);
                    true
                }
                None => false,
            };
            engine::gemm(eng, self.c_out, hw, ckk, yi, w, false, ci, false, acc);
        }
    }

    /// Backward for a batch of `n`, using the column matrices stored by [`Conv2d::forward`].
    /// Adds `dW` and `db` into `grads`; when `dx` is given, writes `dx [n, c_in, h, w]` using
    /// `dcols` (one image's column matrix) as scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Float>(
        &self,
        eng: &Engine,
        params: &[T],
        grads: &mut [T],
        cols: &[T],
        dy: &[T],
        mut dx: Option<(&mut [T], &mut [T])>,
        n: usize,
    ) {
        let (hw, cl, ckk) = (self.geom.hw(), self.cols_len(), self.geom.col_rows());
        for i in 0..n {
            let dyi = &dy[i * self.c_out * hw..(i + 1) * self.c_out * hw];
            let ci = &cols[i * cl..(i + 1) * cl];
            engine::gemm(eng, self.c_out, ckk, hw, &mut grads[self.w.clone()], dyi, false, ci, true, true);
            if let Some(b) = &self.b {
                engine::sum_rows_into(&mut grads[b.clone()], dyi, hw);
            }
            if let Some((dx, dcols)) = dx.as_mut() {
                let w = &params[self.w.clone()];
                engine::gemm(eng, ckk, hw, self.c_out, &mut dcols[..cl], w, true, dyi, false, false);
                let in_len = self.geom.c * hw;
                engine::col2im(eng, &self.geom, &dcols[..cl], &mut dx[i * in_len..(i + 1) * in_len]);
            }
        }
    }
}

/// Activation between layers (never after the last one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// The identity, for linear networks.
    Linear,
}

impl Activation {
    /// In place on the layer output `z`, turning it into the activation `a`.
    pub fn forward<T: Float>(self, eng: &Engine, z: &mut [T]) {
        if self == Activation::Relu {
            engine::relu_forward(eng, z);
        }
    }
    /// In place: `da` (gradient w.r.t. `a`) becomes the gradient w.r.t. `z`, given `a`.
    pub fn backward<T: Float>(self, eng: &Engine, da: &mut [T], a: &[T]) {
        if self == Activation::Relu {
            engine::relu_backward(eng, da, a);
        }
    }
}

/// One weight layer of a model.
#[derive(Debug, Clone)]
pub enum Layer {
    /// Fully connected.
    Dense(Dense),
    /// Convolution.
    Conv(Conv2d),
}

impl Layer {
    /// Input elements per example.
    pub fn in_len(&self) -> usize {
        match self {
            Layer::Dense(d) => d.inp,
            Layer::Conv(c) => c.geom.c * c.geom.hw(),
        }
    }
    /// Output elements per example.
    pub fn out_len(&self) -> usize {
        match self {
            Layer::Dense(d) => d.out,
            Layer::Conv(c) => c.c_out * c.geom.hw(),
        }
    }
    /// Weight range in the parameter vector.
    pub fn weight_range(&self) -> Range<usize> {
        match self {
            Layer::Dense(d) => d.w.clone(),
            Layer::Conv(c) => c.w.clone(),
        }
    }
    /// Bias range, if any.
    pub fn bias_range(&self) -> Option<Range<usize>> {
        match self {
            Layer::Dense(d) => d.b.clone(),
            Layer::Conv(c) => c.b.clone(),
        }
    }
    /// PyTorch-layout weight shape: `[out, in]` or `[c_out, c_in, k, k]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        match self {
            Layer::Dense(d) => vec![d.out, d.inp],
            Layer::Conv(c) => vec![c.c_out, c.geom.c, c.geom.k, c.geom.k],
        }
    }
    /// `(fan_in, fan_out)` as PyTorch computes them.
    pub fn fans(&self) -> (usize, usize) {
        match self {
            Layer::Dense(d) => (d.inp, d.out),
            Layer::Conv(c) => (c.geom.c * c.geom.k * c.geom.k, c.c_out * c.geom.k * c.geom.k),
        }
    }
    /// Column-matrix elements per example (0 for dense).
    pub fn cols_len(&self) -> usize {
        match self {
            Layer::Dense(_) => 0,
            Layer::Conv(c) => c.cols_len(),
        }
    }
    /// Multiply-accumulates of one forward pass per example.
    pub fn macs(&self) -> u64 {
        match self {
            Layer::Dense(d) => (d.inp * d.out) as u64,
            Layer::Conv(c) => (c.c_out * c.geom.col_rows() * c.geom.hw()) as u64,
        }
    }
}
