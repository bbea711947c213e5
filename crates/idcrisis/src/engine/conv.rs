//! Convolution geometry and the im2col path, for same-padded, stride-1, odd `k×k` kernels.
//!
//! * [`ConvAlgo`]: which algorithm a run computes convolutions with (im2col + GEMM here, or
//!   [`super::winograd`]), and [`WINOGRAD_MIN_CHANNELS`], where `Auto` switches.
//! * [`Padding`] and [`tap_table`]: which input pixel each kernel tap reads at the border.
//! * [`ConvGeom`]: one convolution's geometry, `c` input channels of `h×w` pixels, with its tap
//!   tables.
//! * [`im2col`] / [`col2im`]: an image `[c, h, w]` to its column matrix `[c·k·k, h·w]` (one row
//!   per channel and tap, one column per output pixel) and back, summing (its adjoint). One
//!   GEMM of the weights `[c_out, c·k·k]` by the column matrix then gives the output
//!   `[c_out, h·w]`.
//!
//! Buffers are row-major; sizes are element counts.

use super::Engine;
use crate::float::Float;
use serde::{Deserialize, Serialize};

/// How convolutions are computed. Both give the same convolution up to rounding; a run records
/// which one it used, because the rounding (and so the bits of the trained weights) differ.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConvAlgo {
    /// Winograd for zero-padded layers with at least [`WINOGRAD_MIN_CHANNELS`] input channels and
    /// a 3×3, 5×5 or 7×7 kernel; on CPUs with AVX2 or AVX-512, the direct convolution for f32
    /// zero- or circular-padded layers with fewer than [`WINOGRAD_MIN_CHANNELS`] channels in and
    /// out, and for those with one channel in or out (a net's first and last) up to 16 on the
    /// other side; im2col + GEMM for the rest. Forward passes on an evaluation workspace (probing,
    /// attractor iteration, `predict`) also run the direct convolution up to 16 channels in and
    /// out (on AVX-512 CPUs up to 32), except zero-padded 3×3 and 5×5 layers from 16 input
    /// channels, which keep Winograd (`crate::nn::layers::Conv2d::algo` holds the rule).
    #[default]
    Auto,
    /// im2col + GEMM everywhere (direct convolution as one matrix product).
    Im2col,
    /// Winograd wherever it applies (zero padding, 3×3, 5×5 or 7×7 kernel), whatever the channel
    /// counts.
    Winograd,
    /// The direct convolution ([`super::direct`]) wherever it applies (zero or circular padding;
    /// in training at most 16 channels in and out, in evaluation any count), whatever the CPU
    /// and precision (without AVX2, or in f64, it runs a portable kernel with the same bits,
    /// slowly).
    Direct,
}

/// Channel count from which [`ConvAlgo::Auto`] picks Winograd: below it the transforms (and
/// the channel-vectorised tiles, which leave SIMD lanes empty under 16 channels) cost more than
/// the multiplies they save. Measured per kernel size and thread count in `BENCHMARKS.md`: at 8
/// and 12 channels im2col was faster for 3×3, 5×5 and 7×7 kernels (1.1–3× per step), at 16 Winograd
/// won for 5×5 (1.8×) and tied for 3×3 and 7×7, at 32 it won for all three.
pub const WINOGRAD_MIN_CHANNELS: usize = 16;

/// How a "same" convolution fills the border. Only `Zero` is used by the paper.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// Zeros outside the image (PyTorch `padding_mode="zeros"`).
    #[default]
    Zero,
    /// Wrap around (PyTorch `"circular"`).
    Circular,
    /// Mirror without repeating the edge (PyTorch `"reflect"`); needs k/2 < side.
    Reflect,
}

impl Padding {
    /// Source index along an axis of length `len` for the (possibly out-of-range) index `i`.
    pub fn map(self, i: isize, len: usize) -> Option<usize> {
        let n = len as isize;
        match self {
            Padding::Zero => (0..n).contains(&i).then_some(i as usize),
            Padding::Circular => Some(i.rem_euclid(n) as usize),
            Padding::Reflect => {
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * (n - 1);
                let mut j = i.rem_euclid(period);
                if j >= n {
                    j = period - j;
                }
                Some(j as usize)
            }
        }
    }
}

/// Precomputed source indices for a "same" convolution along one axis: `table[kk·len + o]` is the
/// input index read by kernel tap `kk` at output position `o`, or `None` for a zero.
pub fn tap_table(len: usize, k: usize, pad: Padding) -> Vec<Option<usize>> {
    let p = (k / 2) as isize;
    let mut t = Vec::with_capacity(k * len);
    for kk in 0..k {
        for o in 0..len {
            t.push(pad.map(o as isize + kk as isize - p, len));
        }
    }
    t
}

/// Geometry of one same-padded, stride-1 convolution over `c` channels of `h×w`.
#[derive(Debug, Clone)]
pub struct ConvGeom {
    /// Input channels.
    pub c: usize,
    /// Height in pixels.
    pub h: usize,
    /// Width in pixels.
    pub w: usize,
    /// Odd kernel side.
    pub k: usize,
    /// Row taps, `[k, h]`.
    pub ytab: Vec<Option<usize>>,
    /// Column taps, `[k, w]`.
    pub xtab: Vec<Option<usize>>,
    /// For zero padding: per column tap `kx`, the output columns `lo..hi` that read input
    /// column `x + kx − k/2` (all others read zero). `None` for the other padding modes.
    pub xrange: Option<Vec<(usize, usize)>>,
}

impl ConvGeom {
    /// Build the tap tables.
    pub fn new(c: usize, h: usize, w: usize, k: usize, pad: Padding) -> Self {
        let p = k / 2;
        let xrange =
            (pad == Padding::Zero).then(|| (0..k).map(|kx| (p.saturating_sub(kx).min(w), (w + p).saturating_sub(kx).min(w))).collect());
        ConvGeom { c, h, w, k, ytab: tap_table(h, k, pad), xtab: tap_table(w, k, pad), xrange }
    }
    /// Rows of the column matrix: `c·k·k`.
    pub fn col_rows(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Pixels per channel: `h·w`.
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
}

/// Unfold one image `input [c, h, w]` into `cols [c·k·k, h·w]`:
/// `cols[(ci·k + ky)·k + kx, y·w + x] = input[ci, y+ky−k/2, x+kx−k/2]` (padded per `g`).
pub fn im2col<T: Float>(eng: &Engine, g: &ConvGeom, input: &[T], cols: &mut [T]) {
    let (hw, kk) = (g.hw(), g.k * g.k);
    let cols = &mut cols[..g.col_rows() * hw];
    let per_channel = |ci: usize, dst: &mut [T]| {
        let src = &input[ci * hw..(ci + 1) * hw];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &mut dst[(ky * g.k + kx) * hw..(ky * g.k + kx + 1) * hw];
                let xt = &g.xtab[kx * g.w..(kx + 1) * g.w];
                for y in 0..g.h {
                    let out = &mut row[y * g.w..(y + 1) * g.w];
                    match g.ytab[ky * g.h + y] {
                        None => out.fill(T::zero()),
                        Some(sy) => {
                            let srow = &src[sy * g.w..(sy + 1) * g.w];
                            if let Some(xr) = &g.xrange {
                                // Zero padding: one contiguous copy, zeros either side.
                                let (lo, hi) = xr[kx];
                                out[..lo].fill(T::zero());
                                if hi > lo {
                                    // Input column of output column lo (computed only when some
                                    // column is inside: with none, as for an image narrower than
                                    // k/2, it would be negative).
                                    let shift = lo + kx - g.k / 2;
                                    out[lo..hi].copy_from_slice(&srow[shift..shift + hi - lo]);
                                }
                                out[hi.max(lo)..].fill(T::zero());
                            } else {
                                for (o, t) in out.iter_mut().zip(xt) {
                                    *o = match t {
                                        Some(sx) => srow[*sx],
                                        None => T::zero(),
                                    };
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    eng.chunks(cols.len(), cols, kk * hw, per_channel);
}

/// Fold `cols [c·k·k, h·w]` back onto `out [c, h, w]`, summing every tap that reads a pixel
/// (the adjoint of [`im2col`]). `out` is overwritten.
pub fn col2im<T: Float>(eng: &Engine, g: &ConvGeom, cols: &[T], out: &mut [T]) {
    let (hw, kk) = (g.hw(), g.k * g.k);
    let out = &mut out[..g.c * hw];
    let per_channel = |ci: usize, dst: &mut [T]| {
        dst.fill(T::zero());
        let src = &cols[ci * kk * hw..(ci + 1) * kk * hw];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &src[(ky * g.k + kx) * hw..(ky * g.k + kx + 1) * hw];
                let xt = &g.xtab[kx * g.w..(kx + 1) * g.w];
                for y in 0..g.h {
                    if let Some(sy) = g.ytab[ky * g.h + y] {
                        let drow = &mut dst[sy * g.w..(sy + 1) * g.w];
                        let srow = &row[y * g.w..(y + 1) * g.w];
                        if let Some(xr) = &g.xrange {
                            let (lo, hi) = xr[kx];
                            if hi > lo {
                                let shift = lo + kx - g.k / 2;
                                for (d, v) in drow[shift..shift + hi - lo].iter_mut().zip(&srow[lo..hi]) {
                                    *d = *d + *v;
                                }
                            }
                        } else {
                            for (v, t) in srow.iter().zip(xt) {
                                if let Some(sx) = t {
                                    drow[*sx] = drow[*sx] + *v;
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    eng.chunks(cols.len(), out, hw, per_channel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_maps() {
        assert_eq!(Padding::Zero.map(-1, 5), None);
        assert_eq!(Padding::Circular.map(-1, 5), Some(4));
        assert_eq!(Padding::Reflect.map(-1, 5), Some(1));
        assert_eq!(Padding::Reflect.map(5, 5), Some(3));
        assert_eq!(Padding::Reflect.map(2, 5), Some(2));
    }

    #[test]
    fn col2im_is_adjoint_of_im2col() {
        // <im2col(x), c> == <x, col2im(c)> for every padding mode.
        let eng = Engine::new(1).unwrap();
        for pad in [Padding::Zero, Padding::Circular, Padding::Reflect] {
            let g = ConvGeom::new(2, 5, 6, 3, pad);
            let x: Vec<f64> = (0..g.c * g.hw()).map(|i| (i as f64 * 0.3).sin()).collect();
            let c: Vec<f64> = (0..g.col_rows() * g.hw()).map(|i| (i as f64 * 0.7).cos()).collect();
            let mut cols = vec![0.0; c.len()];
            im2col(&eng, &g, &x, &mut cols);
            let mut back = vec![0.0; x.len()];
            col2im(&eng, &g, &c, &mut back);
            let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-10, "{pad:?}: {lhs} vs {rhs}");
        }
    }
}
