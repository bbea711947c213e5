//! Layers with explicit forward and backward passes (no autograd tape).
//!
//! A layer owns no numbers: its parameters live in the model's flat parameter vector at the
//! ranges it records, and its gradients at the same ranges of the flat gradient vector. Backward
//! passes *accumulate* into the gradient vector; the model zeroes it once per step.

use crate::engine::winograd::{self, Layouts, WinoConv};
use crate::engine::{self, Acc, ConvAlgo, ConvGeom, Engine, Padding, Trans};
use crate::float::Float;
use crate::nn::optim;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// What a forward pass is for: training (the backward pass follows, with the same algorithm)
/// or evaluation only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Forward and backward.
    Train,
    /// Forward only (probing, attractor iteration, `predict`).
    Eval,
}

/// A convolution algorithm as [`Conv2d::algo`] resolves it for one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// im2col + GEMM ([`engine::im2col`]).
    Im2col,
    /// Winograd ([`engine::winograd`]).
    Winograd,
    /// The direct convolution ([`engine::direct`]).
    Direct,
}

/// Widest layer (channels in or out) that [`ConvAlgo::Auto`] evaluates with the direct
/// convolution on AVX-512 CPUs, except 3×3 and 5×5 layers Winograd computes
/// ([`DIRECT_EVAL_MAX_CHANNELS_WINOGRAD`]) (`benches/evalalgo.rs`, `BENCHMARKS.md`: at 32 channels
/// the direct forward was 1.1–1.6× Winograd's F(2×2, 7×7) for 7×7 and 1.4–2.8× im2col's for 9×9).
pub const DIRECT_EVAL_MAX_CHANNELS: usize = 32;

/// As [`DIRECT_EVAL_MAX_CHANNELS`], on every CPU, for 3×3 and 5×5 layers with a Winograd plan
/// (zero padding) and more than one channel on each side: below Winograd's 16 channels. Its
/// forward, with explicit transforms and one image per chunk, was 1.8–2.2× the direct one at 16
/// channels and 2.3–2.8× at 32 for 5×5 (F(4×4, 5×5)), 1.6–3.4× at 16 and 1.7–2.0× at 32 for 3×3
/// (F(4×4, 3×3); the direct one won at 12) on the Intel Xeon AVX-512 VM, and 1.6–2.3× at 16 for
/// 5×5 on a Zen 4 running the AVX2 code (`BENCHMARKS.md`).
pub const DIRECT_EVAL_MAX_CHANNELS_WINOGRAD: usize = 15;

/// As [`DIRECT_EVAL_MAX_CHANNELS`], on CPUs with AVX2 but not AVX-512, for the same layers
/// (`benches/evalalgo.rs` on an AMD EPYC (Zen 3), `BENCHMARKS.md`: at 8 channels the direct
/// forward was 1.8–3.1× im2col's; at 32 it lost to Winograd on 2 threads, 0.56× for 3×3 (then
/// F(2×2, 3×3)) and 0.52–0.66× for 5×5).
pub const DIRECT_EVAL_MAX_CHANNELS_AVX2: usize = 16;

/// Padded input copies an evaluation-only forward of the direct convolution is guaranteed room
/// for, one per thread (the shared column buffer, sized for the largest layer, often holds more,
/// and [`engine::direct::forward_batch`] uses what it is given).
pub const DIRECT_EVAL_COPIES: usize = 16;

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
    /// Forward for a batch of `n`: `x [n, inp]` → `y [n, out]`. `scratch` holds
    /// [`Dense::scratch_len`]`(n)` elements.
    pub fn forward<T: Float>(&self, eng: &Engine, params: &[T], x: &[T], y: &mut [T], scratch: &mut [T], n: usize) {
        let y = &mut y[..n * self.out];
        let w = &params[self.w.clone()];
        let x = &x[..n * self.inp];
        let bias = self.b.as_ref().map(|b| &params[b.clone()]);
        // With a bias, y starts as the bias and the product is added to it.
        let acc = if bias.is_some() { Acc::Add } else { Acc::Overwrite };
        if n == 1 {
            // One example: y = x·Wᵀ, a matrix-vector product over W's rows.
            if let Some(b) = bias {
                y.copy_from_slice(b);
            }
            engine::gemm(eng, 1, self.out, self.inp, y, x, Trans::No, w, Trans::Yes, acc);
            return;
        }
        // A batch: yᵀ [out, n] = W·xᵀ, then transposed. The `gemm` crate packs the big
        // row-major W fast, but W read as a column-major Wᵀ (y = x·Wᵀ directly) 2.2× slower at
        // 100×2048×2048 (BENCHMARKS.md).
        let yt = &mut scratch[..n * self.out];
        if let Some(b) = bias {
            for (row, bv) in yt.chunks_mut(n).zip(b) {
                row.fill(*bv);
            }
        }
        engine::gemm(eng, self.out, n, self.inp, yt, w, Trans::No, x, Trans::Yes, acc);
        engine::transpose(eng, yt, 1, self.out, n, y);
    }

    /// Scratch elements [`Dense::forward`] needs for a batch of `n`.
    pub fn scratch_len(&self, n: usize) -> usize {
        if n > 1 {
            n * self.out
        } else {
            0
        }
    }

    /// Backward for a batch of `n`. Writes `dW = dyᵀ·x` into `grads` (its old values are never
    /// read) and adds `db = Σ dy` to it; writes `dx [n, inp] = dy · W` when `dx` is given.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Float>(&self, eng: &Engine, params: &[T], grads: &mut [T], x: &[T], dy: &[T], dx: Option<&mut [T]>, n: usize) {
        let dy = &dy[..n * self.out];
        engine::gemm(eng, self.out, self.inp, n, &mut grads[self.w.clone()], dy, Trans::Yes, &x[..n * self.inp], Trans::No, Acc::Overwrite);
        self.bias_and_input_grads(eng, params, grads, dy, dx, n);
    }

    /// Backward for one example under plain gradient descent at rate `lr`: adds `db` to `grads`
    /// and writes `dx` (from the old weights) as [`Dense::backward`] does, then descends the
    /// weights in place, `W[i, j] ← W[i, j] − lr·(dy[i]·x[j])` ([`optim::gd`] with the gradient
    /// [`Dense::backward`] would write, so the same bits), without writing `dW`: for a big FCN
    /// that saves writing and reading back a weight-sized gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_descend<T: Float>(
        &self,
        eng: &Engine,
        params: &mut [T],
        grads: &mut [T],
        x: &[T],
        dy: &[T],
        dx: Option<&mut [T]>,
        lr: T,
    ) {
        let (x, dy) = (&x[..self.inp], &dy[..self.out]);
        self.bias_and_input_grads(eng, params, grads, dy, dx, 1);
        let row = |i: usize, w: &mut [T]| {
            for (w, xv) in w.iter_mut().zip(x) {
                *w = optim::gd(*w, lr, dy[i] * *xv);
            }
        };
        let w = &mut params[self.w.clone()];
        eng.chunks(w.len(), w, self.inp, row);
    }

    /// The parts of the backward pass shared by [`Dense::backward`] and
    /// [`Dense::backward_descend`]: `db` added to `grads`, `dx` written when given.
    fn bias_and_input_grads<T: Float>(&self, eng: &Engine, params: &[T], grads: &mut [T], dy: &[T], dx: Option<&mut [T]>, n: usize) {
        if let Some(b) = &self.b {
            engine::sum_cols_into(&mut grads[b.clone()], dy);
        }
        if let Some(dx) = dx {
            engine::gemm(
                eng,
                n,
                self.inp,
                self.out,
                &mut dx[..n * self.inp],
                dy,
                Trans::No,
                &params[self.w.clone()],
                Trans::No,
                Acc::Overwrite,
            );
        }
    }
}

/// Same-padded, stride-1 2-D convolution (cross-correlation, as PyTorch's `Conv2d`):
/// `y [n, c_out, h, w]` from `x [n, c_in, h, w]`, `W [c_out, c_in, k, k]`, `b [c_out]`.
///
/// Computed by im2col + GEMM, by Winograd ([`engine::winograd`], zero padding) or by the direct
/// convolution ([`engine::direct`], zero or circular padding), as [`Conv2d::algo`] decides from
/// the engine's [`ConvAlgo`].
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
    /// The Winograd plan, for zero padding and `3 ≤ k ≤ 7` (larger kernels need more
    /// interpolation points than f32 can take).
    pub wino: Option<WinoConv>,
    /// Where the coordinate channels' weight `[c_out, 2, k, k]` sits, when the layer reads them
    /// ([`crate::nn::model::Coords`]; the model adds their contribution).
    pub coord_w: Option<Range<usize>>,
}

/// Winograd output-tile side for a `k×k` kernel: F(4×4, k×k) for 3×3 and 5×5 kernels (4× and
/// 6.25× fewer multiplies than direct convolution; f32 rounding error 0.9e-6 and 3.4e-6 RMS
/// relative on 32- and 128-channel layers, 3–8× im2col's, `benches/winoacc.rs`), F(2×2, 7×7) for
/// 7×7 (F(4×4, 7×7) would need 10×10 tiles, past [`winograd::MAX_TILE`]). F(4×4, 3×3) was slower
/// than F(2×2, 3×3) on the 32-channel benchmark before the transforms were written with
/// explicit intrinsics; since then it trains that net 26% and probes it 45% faster. Measured in
/// `BENCHMARKS.md`.
pub fn winograd_tile(k: usize) -> usize {
    if k == 3 || k == 5 {
        4
    } else {
        2
    }
}

impl Conv2d {
    /// A `c_in → c_out` convolution over `h×w` with a `k×k` kernel, its weight at `w` and bias
    /// at `b` in the parameter vector.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        h: usize,
        w_px: usize,
        k: usize,
        padding: Padding,
        w: Range<usize>,
        b: Option<Range<usize>>,
    ) -> Self {
        let fits = winograd_tile(k) + k - 1 <= winograd::MAX_TILE;
        let wino = (padding == Padding::Zero && k >= 3 && fits).then(|| WinoConv::new(winograd_tile(k), k, c_in, c_out, h, w_px));
        Conv2d { geom: ConvGeom::new(c_in, h, w_px, k, padding), c_out, padding, w, b, wino, coord_w: None }
    }

    /// Elements of one image's column matrix, `c_in·k·k·h·w`.
    pub fn cols_len(&self) -> usize {
        self.geom.col_rows() * self.geom.hw()
    }

    /// The algorithm `eng` computes this layer with, for `pass` (the one rule; every other
    /// choice reads it):
    ///
    /// * forced [`ConvAlgo::Winograd`]: where a plan exists (zero padding, `3 ≤ k ≤ 7`), else
    ///   im2col; forced [`ConvAlgo::Direct`]: where the direct convolution applies (zero or
    ///   circular padding; in training at most [`engine::direct::DIRECT_MAX_CHANNELS`] channels
    ///   in and out, in evaluation any count), else im2col.
    /// * [`ConvAlgo::Auto`], measured in `BENCHMARKS.md`: in training, direct for f32 layers
    ///   under [`engine::WINOGRAD_MIN_CHANNELS`] channels in and out on CPUs with AVX2 or
    ///   AVX-512, and for layers with one channel in or out (a net's first and last) up to
    ///   [`engine::direct::DIRECT_MAX_CHANNELS`] on the other side; Winograd from [`engine::WINOGRAD_MIN_CHANNELS`] input channels, im2col for the
    ///   rest. In evaluation the direct convolution also takes f32 layers of up to
    ///   [`DIRECT_EVAL_MAX_CHANNELS`] channels in and out on AVX-512 CPUs,
    ///   [`DIRECT_EVAL_MAX_CHANNELS_AVX2`] on AVX2 ones, except 3×3 and 5×5 layers with a
    ///   Winograd plan, at least [`engine::WINOGRAD_MIN_CHANNELS`] input channels and more than
    ///   one output channel: up to [`DIRECT_EVAL_MAX_CHANNELS_WINOGRAD`] on both. No backward pass follows,
    ///   and the direct forward beats Winograd's there at batch 1 and 100 on 1 and 2 threads;
    ///   its weight gradient does not. So an AVX2 and an AVX-512 CPU pick the same algorithm
    ///   for every layer in training, and in evaluation for every layer of at most 16 channels.
    ///
    /// Auto decides from the CPU's own instruction set, not `IDCRISIS_ISA`'s: lowering it must
    /// not change the algorithm (and so the bits), only which kernel computes them.
    pub fn algo<T: Float>(&self, eng: &Engine, pass: Pass) -> Algo {
        let wino = if self.wino.is_some() { Algo::Winograd } else { Algo::Im2col };
        let widest = self.geom.c.max(self.c_out);
        let padding_ok = matches!(self.padding, Padding::Zero | Padding::Circular);
        let direct_fits = padding_ok && (pass == Pass::Eval || widest <= engine::direct::DIRECT_MAX_CHANNELS);
        match eng.conv_algo() {
            ConvAlgo::Im2col => Algo::Im2col,
            ConvAlgo::Winograd => wino,
            ConvAlgo::Direct => {
                if direct_fits {
                    Algo::Direct
                } else {
                    Algo::Im2col
                }
            }
            ConvAlgo::Auto => {
                let isa = engine::winograd::Isa::cpu();
                let fast_direct = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && isa >= engine::winograd::Isa::Avx2;
                // A net's first and last layers (one channel on one side): their Winograd or
                // im2col fixed costs outweigh a direct convolution of 16 channels.
                let edge = self.geom.c.min(self.c_out) == 1;
                // A layer Winograd would compute (with a plan, from 16 input channels).
                let planned = !edge && self.wino.is_some() && self.geom.c >= engine::WINOGRAD_MIN_CHANNELS;
                let direct_max = match pass {
                    Pass::Train if edge => engine::direct::DIRECT_MAX_CHANNELS,
                    Pass::Train => engine::WINOGRAD_MIN_CHANNELS - 1,
                    Pass::Eval if planned && matches!(self.geom.k, 3 | 5) => DIRECT_EVAL_MAX_CHANNELS_WINOGRAD,
                    Pass::Eval if isa < engine::winograd::Isa::Avx512 => DIRECT_EVAL_MAX_CHANNELS_AVX2,
                    Pass::Eval => DIRECT_EVAL_MAX_CHANNELS,
                };
                if direct_fits && fast_direct && widest <= direct_max {
                    Algo::Direct
                } else if self.geom.c >= engine::WINOGRAD_MIN_CHANNELS {
                    wino
                } else {
                    Algo::Im2col
                }
            }
        }
    }

    /// The Winograd plan when `eng` computes this layer with it for `pass`.
    pub fn winograd<T: Float>(&self, eng: &Engine, pass: Pass) -> Option<&WinoConv> {
        self.wino.as_ref().filter(|_| self.algo::<T>(eng, pass) == Algo::Winograd)
    }

    /// Scratch of the direct convolution: the padded copy of the input or of the output gradient
    /// (the larger), then the arranged weights.
    fn direct_len(&self) -> usize {
        let g = &self.geom;
        engine::direct::padded_len(g.c.max(self.c_out), g.h, g.w, g.k) + g.c * self.c_out * g.k * g.k
    }

    /// The direct convolution's buffers at the head of `scratch`: (padded image, arranged weights).
    fn direct_buffers<'a, T>(&self, scratch: &'a mut [T]) -> (&'a mut [T], &'a mut [T]) {
        let len = self.direct_len();
        scratch[..len].split_at_mut(len - self.geom.c * self.c_out * self.geom.k * self.geom.k)
    }

    /// Elements at the head of `scratch` that the per-image work uses (im2col's column gradient
    /// or the direct convolution's buffers); the layout transposes use what follows.
    fn scratch_head(&self) -> usize {
        self.cols_len().max(self.direct_len())
    }

    /// Elements of `cols` needed to keep the data of `n` images for the backward pass (any
    /// algorithm).
    pub fn store_len(&self, n: usize) -> usize {
        n * self.store_stride()
    }

    /// Elements kept per image for the backward pass: the column matrix (im2col), the Winograd
    /// transform (its tiles padded to [`WinoConv::tile_stride`], which on thin images makes it
    /// larger than the column matrix), or the padded input (direct); the largest of these.
    fn store_stride(&self) -> usize {
        let g = &self.geom;
        let wino = self.wino.as_ref().map_or(0, WinoConv::store_len);
        self.cols_len().max(wino).max(engine::direct::padded_len(g.c, g.h, g.w, g.k))
    }

    /// Elements of the padded copy of one input image (the direct convolution).
    fn direct_pad_len(&self) -> usize {
        let g = &self.geom;
        engine::direct::padded_len(g.c, g.h, g.w, g.k)
    }

    /// Elements of `cols` needed as scratch by an evaluation-only forward of up to `n` images
    /// (any algorithm; the direct convolution keeps up to [`DIRECT_EVAL_COPIES`] padded copies,
    /// one per thread).
    pub fn eval_cols_len(&self, n: usize) -> usize {
        let w = self.wino.as_ref().map_or(0, |w| w.chunk() * w.store_len());
        let direct = n.min(DIRECT_EVAL_COPIES) * self.direct_pad_len();
        self.cols_len().max(w).max(direct)
    }

    /// Elements of scratch needed by forward and backward of up to `n` images (any algorithm and
    /// layout).
    pub fn scratch_len(&self, n: usize) -> usize {
        let im2col = self.scratch_head() + n * self.c_out * self.geom.hw();
        im2col.max(self.wino.as_ref().map_or(0, WinoConv::scratch_len))
    }

    /// Forward for a batch of `n`. When `store` is true, what the backward pass needs is kept in
    /// `cols` ([`Conv2d::store_len`]`(n)` elements); otherwise `cols` is scratch
    /// ([`Conv2d::eval_cols_len`]). `scratch` holds [`Conv2d::scratch_len`]`(n)` elements. `io`
    /// gives the activation layouts; only a Winograd layer (or a 1-channel input) may read
    /// channel-last input.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<T: Float>(
        &self,
        eng: &Engine,
        params: &[T],
        x: &[T],
        y: &mut [T],
        io: Layouts,
        cols: &mut [T],
        scratch: &mut [T],
        store: bool,
        n: usize,
    ) {
        let w = &params[self.w.clone()];
        let algo = self.algo::<T>(eng, if store { Pass::Train } else { Pass::Eval });
        if let (Algo::Winograd, Some(wc)) = (algo, &self.wino) {
            let bias = self.b.as_ref().map(|b| &params[b.clone()]);
            let st = if store { Some(&mut cols[..n * wc.store_len()]) } else { None };
            wc.forward(eng, w, bias, x, y, io, st, scratch, n);
            return;
        }
        assert!(!io.x_cl || self.geom.c == 1, "im2col reads channel-first input");
        let (hw, cl, ckk) = (self.geom.hw(), self.cols_len(), self.geom.col_rows());
        if io.y_cl && self.c_out > 1 {
            // Channel-first into scratch, then transposed for the Winograd layer that follows.
            let (head, tmp) = scratch.split_at_mut(self.scratch_head());
            let tmp = &mut tmp[..n * self.c_out * hw];
            self.forward(eng, params, x, tmp, Layouts::default(), cols, head, store, n);
            engine::transpose(eng, tmp, n, self.c_out, hw, y);
            return;
        }
        if algo == Algo::Direct {
            let (xp, wt) = self.direct_buffers(scratch);
            engine::direct::arrange_weights(w, self.c_out, self.geom.c, self.geom.k, false, wt);
            let bias = self.b.as_ref().map(|b| &params[b.clone()]);
            let (g, c) = (&self.geom, self.geom.c);
            if store {
                // Training keeps each image's padded input for the weight gradient.
                engine::direct::forward_batch(eng, g, c, self.c_out, wt, bias, x, y, cols, self.store_stride(), true, n);
            } else if cols.len() >= self.direct_pad_len() {
                // Evaluation: one padded copy per thread, in the evaluation columns.
                engine::direct::forward_batch(eng, g, c, self.c_out, wt, bias, x, y, cols, self.direct_pad_len(), false, n);
            } else {
                let len = self.direct_pad_len();
                engine::direct::forward_batch(eng, g, c, self.c_out, wt, bias, x, y, &mut xp[..len], len, false, n);
            }
            return;
        }
        for i in 0..n {
            let xi = &x[i * self.geom.c * hw..(i + 1) * self.geom.c * hw];
            let yi = &mut y[i * self.c_out * hw..(i + 1) * self.c_out * hw];
            let ci = if store { &mut cols[i * cl..(i + 1) * cl] } else { &mut cols[..cl] };
            engine::im2col(eng, &self.geom, xi, ci);
            let acc = match &self.b {
                Some(b) => {
                    engine::fill_rows(yi, &params[b.clone()], hw);
                    Acc::Add
                }
                None => Acc::Overwrite,
            };
            engine::gemm(eng, self.c_out, hw, ckk, yi, w, Trans::No, ci, Trans::No, acc);
        }
    }

    /// Whether [`Conv2d::backward`] of `n` examples on `eng` writes the weight gradient instead
    /// of adding it (Winograd with `n > 0`), so the caller need not zero it first.
    pub fn overwrites_weight_grad<T: Float>(&self, eng: &Engine, n: usize) -> bool {
        n > 0 && self.wino.is_some() && self.algo::<T>(eng, Pass::Train) == Algo::Winograd
    }

    /// Backward for a batch of `n`, using what [`Conv2d::forward`] stored in `cols` (with the
    /// same engine and layouts `io`: `dy` has the output's layout, `dx` gets the input's). Adds
    /// `db` into `grads`, and `dW` too, except where [`Conv2d::overwrites_weight_grad`] says it
    /// writes `dW` instead; when `dx` is given, writes `dx [n, c_in, h, w]`. `scratch` holds
    /// [`Conv2d::scratch_len`]`(n)` elements.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Float>(
        &self,
        eng: &Engine,
        params: &[T],
        grads: &mut [T],
        cols: &[T],
        dy: &[T],
        mut dx: Option<&mut [T]>,
        io: Layouts,
        scratch: &mut [T],
        n: usize,
    ) {
        let (hw, cl, ckk) = (self.geom.hw(), self.cols_len(), self.geom.col_rows());
        if let Some(b) = &self.b {
            for i in 0..n {
                let dyi = &dy[i * self.c_out * hw..(i + 1) * self.c_out * hw];
                if io.y_cl {
                    engine::sum_cols_into(&mut grads[b.clone()], dyi);
                } else {
                    engine::sum_rows_into(&mut grads[b.clone()], dyi, hw);
                }
            }
        }
        let w = &params[self.w.clone()];
        let algo = self.algo::<T>(eng, Pass::Train);
        if let (Algo::Winograd, Some(wc)) = (algo, &self.wino) {
            wc.backward(eng, w, &mut grads[self.w.clone()], &cols[..n * wc.store_len()], dy, dx, io, scratch, n);
            return;
        }
        assert!(!io.x_cl || self.geom.c == 1, "im2col writes a channel-first input gradient");
        let (scratch, dy) = if io.y_cl && self.c_out > 1 {
            // The gradient arrives channel-last from a Winograd layer: back to channel-first.
            let (head, tmp) = scratch.split_at_mut(self.scratch_head());
            let tmp = &mut tmp[..n * self.c_out * hw];
            engine::transpose(eng, &dy[..n * self.c_out * hw], n, hw, self.c_out, tmp);
            (head, &*tmp)
        } else {
            (scratch, dy)
        };
        if algo == Algo::Direct {
            // dW from the padded input forward kept; dx by the direct kernel over dy with the
            // adjoint weights.
            let (ci_n, co_n, k, stride) = (self.geom.c, self.c_out, self.geom.k, self.store_stride());
            let (dyp, wt) = self.direct_buffers(scratch);
            if dx.is_some() {
                engine::direct::arrange_weights(w, co_n, ci_n, k, true, wt);
            }
            for i in 0..n {
                let dyi = &dy[i * co_n * hw..(i + 1) * co_n * hw];
                let xp = &cols[i * stride..(i + 1) * stride];
                engine::direct::weight_grad(&self.geom, ci_n, co_n, xp, dyi, &mut grads[self.w.clone()]);
                if let Some(dx) = dx.as_deref_mut() {
                    engine::direct::pad_into(&self.geom, co_n, dyi, dyp);
                    engine::direct::forward(&self.geom, co_n, ci_n, wt, None, dyp, &mut dx[i * ci_n * hw..(i + 1) * ci_n * hw]);
                }
            }
            return;
        }
        for i in 0..n {
            let dyi = &dy[i * self.c_out * hw..(i + 1) * self.c_out * hw];
            let ci = &cols[i * cl..(i + 1) * cl];
            engine::gemm(eng, self.c_out, ckk, hw, &mut grads[self.w.clone()], dyi, Trans::No, ci, Trans::Yes, Acc::Add);
            if let Some(dx) = dx.as_deref_mut() {
                let dcols = &mut scratch[..cl];
                engine::gemm(eng, ckk, hw, self.c_out, dcols, w, Trans::Yes, dyi, Trans::No, Acc::Overwrite);
                let in_len = self.geom.c * hw;
                engine::col2im(eng, &self.geom, dcols, &mut dx[i * in_len..(i + 1) * in_len]);
            }
        }
    }
}

/// Activation between layers (never after the last one).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
// A net holds a handful of layers, built once: boxing the conv variant would only add an
// indirection to every forward and backward call.
#[allow(clippy::large_enum_variant)]
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
    /// `(fan_in, fan_out)` as PyTorch computes them (coordinate channels count as inputs).
    pub fn fans(&self) -> (usize, usize) {
        match self {
            Layer::Dense(d) => (d.inp, d.out),
            Layer::Conv(c) => {
                let cin = c.geom.c + if c.coord_w.is_some() { 2 } else { 0 };
                (cin * c.geom.k * c.geom.k, c.c_out * c.geom.k * c.geom.k)
            }
        }
    }
    /// Elements kept for the backward pass of `n` examples (0 for dense).
    pub fn store_len(&self, n: usize) -> usize {
        match self {
            Layer::Dense(_) => 0,
            Layer::Conv(c) => c.store_len(n),
        }
    }
    /// Column scratch of an evaluation-only forward of up to `n` examples (0 for dense).
    pub fn eval_cols_len(&self, n: usize) -> usize {
        match self {
            Layer::Dense(_) => 0,
            Layer::Conv(c) => c.eval_cols_len(n),
        }
    }
    /// Scratch of forward and backward for batches of up to `n`.
    pub fn scratch_len(&self, n: usize) -> usize {
        match self {
            Layer::Dense(d) => d.scratch_len(n),
            Layer::Conv(c) => c.scratch_len(n),
        }
    }
    /// Multiply-accumulates of one forward pass per example (the coordinate map, the same for
    /// every example, not counted).
    pub fn macs(&self) -> u64 {
        match self {
            Layer::Dense(d) => (d.inp * d.out) as u64,
            Layer::Conv(c) => (c.c_out * c.geom.col_rows() * c.geom.hw()) as u64,
        }
    }
}
