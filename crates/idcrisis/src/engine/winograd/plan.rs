//! The Winograd plan: [`WinoConv`], one convolution `c_in → c_out` over `h×w` cut into
//! `ty×tx` output tiles of `m×m`, processed `chunk()` images at a time; the layout of the
//! scratch buffer one call splits into parts (sizes in elements, `P = n²` transform points):
//! kernel transforms `[P, r²]`, transformed weights `[P, c_out·c_in]` (rows
//! [`WinoConv::pair_stride`] apart), transformed data `[chunk·tiles, P, c]` (tile-major, tiles
//! [`WinoConv::tile_stride`] apart) and channel-last images `[chunk, h, w, c]`; the strides
//! through which the per-ξ GEMMs read tile-major data; the activation [`Layouts`] consecutive
//! layers agree on; and the [`SUPPORTED`] (m, r) pairs.

use super::matrices::WinoMats;
use crate::engine::Strides;
use crate::float::Float;

/// Target size, in elements, of one transformed-data buffer of a chunk of a batch: bounds the
/// scratch memory (a few such buffers, 2 MB each in f32, so they stay in cache; 16 MB ran 40%
/// slower on the 32-channel probe benchmark) while keeping several images per pass.
const TARGET_ELEMS: usize = 1 << 19;

/// As [`TARGET_ELEMS`], for evaluation ([`WinoConv::eval_chunk`]): 64 KB in f32, so at 16 channels
/// and more one 28×28 image per chunk, whose transformed data stay in L2 through the per-ξ
/// products. Measured (`benches/evalalgo.rs`, depth-6 CNNs, 1 thread, batch 100, Intel Xeon
/// AVX-512 VM, 2 MB L2, `BENCHMARKS.md`): Winograd 1083–1128 → 1500–1679 img/s at 32 channels
/// 5×5, 1121–1287 → 1543–2217 at 32 channels 3×3, 2102–2377 → 3348–4250 at 16 channels 5×5,
/// for 2¹⁹ → 2¹⁶ or 2¹⁴.
const EVAL_TARGET_ELEMS: usize = 1 << 14;

/// Which of a convolution's activations are channel-last (`[n, h, w, c]`) rather than
/// channel-first (`[n, c, h, w]`). Consecutive Winograd layers pass channel-last activations, so
/// no layout transposes run between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layouts {
    /// The input `x` (and so the input gradient `dx`).
    pub x_cl: bool,
    /// The output `y` (and so the output gradient `dy`).
    pub y_cl: bool,
}

/// The (m, r) pairs with specialised transforms: F(2, 3), F(2, 5), F(2, 7), F(4, 3), F(4, 5).
pub const SUPPORTED: [(usize, usize); 5] = [(2, 3), (2, 5), (2, 7), (4, 3), (4, 5)];

/// `len` elements rounded up to whole 16-element (64-byte in f32) lines, plus one line when that
/// makes an even count, so that f32 rows this far apart never sit a multiple of 4 KB apart and
/// spread over every L1 cache set (f64 rows, twice the bytes, over half of them).
fn odd_lines(len: usize) -> usize {
    16 * (len.div_ceil(16) | 1)
}

/// A Winograd convolution plan for `c_in → c_out` channels over `h×w` with a `r×r` kernel.
#[derive(Debug, Clone)]
pub struct WinoConv {
    /// Transform matrices.
    pub mats: WinoMats,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Tile rows, `⌈h/m⌉`.
    pub ty: usize,
    /// Tile columns, `⌈w/m⌉`.
    pub tx: usize,
    /// Bound on the elements of one transformed-data buffer, which sets how many images of a
    /// batch go through together ([`WinoConv::chunk`]); tests lower it to exercise chunking.
    pub target_elems: usize,
}

/// The scratch buffer of one call, split: kernel transforms `gk`, `gf` `[P, r²]`, transformed
/// weights `u`, `u2` `[P, c_out·c_in]` with rows [`WinoConv::pair_stride`] apart (the forward
/// first copies the reordered weights `[c_in·c_out, r²]` into `u`, then writes `Uᵀ` into `u2`),
/// and four work arrays.
pub(super) struct Parts<'a, T> {
    pub(super) gk: &'a mut [T],
    pub(super) gf: &'a mut [T],
    pub(super) u: &'a mut [T],
    pub(super) u2: &'a mut [T],
    pub(super) sa: &'a mut [T],
    pub(super) sb: &'a mut [T],
    pub(super) sc: &'a mut [T],
    pub(super) sd: &'a mut [T],
}

/// Offsets into the scratch buffer of one call.
struct Scratch {
    gf: usize,
    u: usize,
    u2: usize,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    end: usize,
}

impl WinoConv {
    /// Plan F(m×m, r×r) for this geometry. Panics unless `(m, r)` is in [`SUPPORTED`].
    pub fn new(m: usize, r: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> Self {
        assert!(SUPPORTED.contains(&(m, r)), "F({m}, {r}) is not supported");
        WinoConv { mats: WinoMats::new(m, r), c_in, c_out, h, w, ty: h.div_ceil(m), tx: w.div_ceil(m), target_elems: TARGET_ELEMS }
    }

    /// Tiles per image.
    pub fn tiles(&self) -> usize {
        self.ty * self.tx
    }

    /// Images processed together (bounded so the scratch stays small).
    pub fn chunk(&self) -> usize {
        self.chunk_of(self.target_elems)
    }

    /// Images processed together by a forward pass that keeps nothing for a backward pass
    /// (evaluation): at most [`chunk`](Self::chunk), bounded by [`EVAL_TARGET_ELEMS`]. The
    /// chunk changes no bits of a forward pass (every tile's transforms and per-ξ product rows
    /// are computed alone); it does change the order of the weight gradient's sum over tiles,
    /// which is why training keeps [`chunk`](Self::chunk).
    pub fn eval_chunk(&self) -> usize {
        self.chunk_of(self.target_elems.min(EVAL_TARGET_ELEMS))
    }

    fn chunk_of(&self, target: usize) -> usize {
        let per_image = self.mats.p() * self.c_in.max(self.c_out) * self.tiles();
        (target / per_image).max(1)
    }

    /// Elements of the transformed input `V` kept per image for the backward pass:
    /// `tiles · tile_stride(c_in)`.
    pub fn store_len(&self) -> usize {
        self.tiles() * self.tile_stride(self.c_in)
    }

    /// Elements from one tile's `P·c` transformed values to the next tile's in a tile-major
    /// buffer of `c` channels: `P·c` rounded up to whole 16-element (64-byte) lines, plus one
    /// line when that makes an even count of lines, so the stride is an odd number of lines.
    ///
    /// Each per-ξ product reads one row per tile at this stride. Unpadded, `P·c` is a multiple
    /// of 4 KB whenever `P·c` is a multiple of 1024 elements (F(4×4, 5×5) at 16, 32, 48 or 64
    /// channels), so every row of a product falls in the same L1 cache set; an odd number of
    /// lines spreads them over all the sets. (On one 16-channel 28×28 image this took the
    /// forward product from 42.2 to 15.6 µs and the weight-gradient product from 59.3 to
    /// 17.6 µs: `benches/winostride.rs`, BENCHMARKS.md.) The padding is never read or written.
    pub fn tile_stride(&self, c: usize) -> usize {
        odd_lines(self.mats.p() * c)
    }

    /// Elements from one transform point's `c_out·c_in` kernel values to the next in the
    /// kernel-transform buffers (`U`, `Uᵀ`, `U'`, `dU`, `[P, c_out·c_in]`), padded as
    /// [`WinoConv::tile_stride`] is: the kernel gradient reads `dU` down its columns, one row per
    /// point, which unpadded fell in one L1 set at 32 or 64 channels (its products took 69 and
    /// 264 µs against 58 and 221 padded, F(4×4, 5×5)).
    pub fn pair_stride(&self) -> usize {
        odd_lines(self.c_out * self.c_in)
    }

    fn layout(&self) -> Scratch {
        let mt = &self.mats;
        let (p, r2) = (mt.p(), mt.r * mt.r);
        let chunk = self.chunk();
        let cols = chunk * self.tiles();
        let cmax = self.c_in.max(self.c_out);
        let pix = chunk * self.h * self.w * cmax;
        let mut off = 0;
        let mut take = |len: usize| {
            let o = off;
            off += len;
            o
        };
        take(p * r2); // gk, at 0
        let gf = take(p * r2);
        let u = take(p * self.pair_stride());
        let u2 = take(p * self.pair_stride());
        let a = take(self.tile_stride(cmax) * cols);
        let b = take(self.tile_stride(cmax) * cols);
        let c = take(pix);
        let d = take(pix);
        Scratch { gf, u, u2, a, b, c, d, end: off }
    }

    /// Scratch elements needed by [`WinoConv::forward`] and [`WinoConv::backward`].
    pub fn scratch_len(&self) -> usize {
        self.layout().end
    }

    /// Split the scratch buffer into its parts, with the kernel transforms written in `T`.
    pub(super) fn parts<'a, T: Float>(&self, scratch: &'a mut [T]) -> Parts<'a, T> {
        let l = self.layout();
        let (mats, rest) = scratch[..l.end].split_at_mut(l.u);
        let (gk, gf) = mats.split_at_mut(l.gf);
        // Two plain loops, not one chained iterator: these vectorize (the chained one ran
        // element by element, 2% of a 16-channel step).
        for (d, v) in gk.iter_mut().zip(&self.mats.gk) {
            *d = T::from_f64(*v);
        }
        for (d, v) in gf.iter_mut().zip(&self.mats.gf) {
            *d = T::from_f64(*v);
        }
        let (u, rest) = rest.split_at_mut(l.u2 - l.u);
        let (u2, rest) = rest.split_at_mut(l.a - l.u2);
        let (sa, rest) = rest.split_at_mut(l.b - l.a);
        let (sb, rest) = rest.split_at_mut(l.c - l.b);
        let (sc, sd) = rest.split_at_mut(l.d - l.c);
        Parts { gk, gf, u, u2, sa, sb, sc, sd }
    }

    /// Per-ξ layout of a tile-major buffer, `[nt, P, c]` with rows of
    /// [`WinoConv::tile_stride`]: the ξ-th matrix is `[nt, c]`.
    pub(super) fn tm(&self, c: usize) -> Strides {
        Strides { batch: c, row: self.tile_stride(c), col: 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tile stride holds a tile's `P·c` values, in whole 64-byte lines, an odd number of
    /// them (so consecutive tiles never sit a multiple of 4 KB apart), with under two lines of
    /// padding.
    #[test]
    fn tile_stride_is_an_odd_number_of_lines_that_holds_a_tile() {
        for (m, r) in SUPPORTED {
            let wc = WinoConv::new(m, r, 1, 1, 8, 8);
            for c in 1..=130 {
                let (need, ts) = (wc.mats.p() * c, wc.tile_stride(c));
                assert!(ts >= need && ts - need < 32, "F({m},{r}) c={c}: {ts} for {need}");
                assert_eq!(ts % 16, 0, "F({m},{r}) c={c}: {ts} is not whole lines");
                assert_eq!(ts / 16 % 2, 1, "F({m},{r}) c={c}: {ts} is an even number of lines");
                assert_ne!(ts * 4 % 4096, 0, "F({m},{r}) c={c}");
                let ps = WinoConv::new(m, r, c, c + 1, 8, 8).pair_stride();
                assert!(ps >= c * (c + 1) && ps - c * (c + 1) < 32 && ps % 32 == 16, "F({m},{r}) c={c}: pairs {ps}");
            }
        }
        // The case that motivated it: 16 channels of F(4×4, 5×5) are exactly 4 KB unpadded.
        assert_eq!(WinoConv::new(4, 5, 16, 16, 28, 28).tile_stride(16), 64 * 16 + 16);
    }
}
