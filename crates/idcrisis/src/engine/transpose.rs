//! Layout changes: [`transpose`] turns a batch of row-major matrices `[count, rows, cols]` into
//! `[count, cols, rows]` (sizes in elements), in 16×16 blocks spread over the engine's pool.
//! It only moves values, so every thread count gives the same bits. Used by the batched dense
//! forward and at the boundaries between channel-first (`[c, h·w]` per image) and
//! channel-last (`[h·w, c]`) layers of the Winograd path.

use super::Engine;
use crate::float::Float;

/// Side of the square blocks [`transpose`] moves at a time (they stay in L1).
const TB: usize = 16;

/// `dst [count, cols, rows]` = each `src [count, rows, cols]` matrix transposed, in TB×TB
/// blocks: contiguous reads of TB source columns per row, then contiguous writes of TB
/// destination columns per row. Tasks are blocks of TB destination rows of one matrix, spread
/// over the pool. Serves the batched dense forward and the Winograd layout changes
/// (`[c, hw]` ↔ `[hw, c]` per image).
pub fn transpose<T: Float>(eng: &Engine, src: &[T], count: usize, rows: usize, cols: usize, dst: &mut [T]) {
    let len = rows * cols;
    for m in 0..count {
        let s = &src[m * len..(m + 1) * len];
        let per = |jb: usize, d: &mut [T]| {
            let (j0, nj) = (jb * TB, d.len() / rows);
            let mut tile = [[T::zero(); TB]; TB];
            for i0 in (0..rows).step_by(TB) {
                let ni = TB.min(rows - i0);
                for (ii, t) in tile.iter_mut().enumerate().take(ni) {
                    copy_block(t, &s[(i0 + ii) * cols + j0..], nj);
                }
                for jj in 0..nj {
                    let out = &mut d[jj * rows + i0..jj * rows + i0 + ni];
                    for (ii, o) in out.iter_mut().enumerate() {
                        *o = tile[ii][jj];
                    }
                }
            }
        };
        let d = &mut dst[m * len..(m + 1) * len];
        eng.par_chunks(d, TB * rows, per);
    }
}

/// `dst[..len] = src[..len]` for one row of a transpose block: a fixed-size (vector) copy when
/// the row is full, instead of a `memcpy` call.
#[inline(always)]
fn copy_block<T: Float>(dst: &mut [T; TB], src: &[T], len: usize) {
    if len == TB {
        dst.copy_from_slice(&src[..TB]);
    } else {
        dst[..len].copy_from_slice(&src[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_of_a_batch_of_matrices() {
        let eng = Engine::new(2).unwrap();
        // Sizes below, at and above one 16×16 block, and not multiples of it.
        for (count, rows, cols) in [(1, 3, 5), (2, 16, 16), (3, 37, 20), (2, 128, 49)] {
            let src: Vec<f64> = (0..count * rows * cols).map(|i| i as f64).collect();
            let mut dst = vec![-1.0; count * rows * cols];
            transpose(&eng, &src, count, rows, cols, &mut dst);
            for m in 0..count {
                for i in 0..rows {
                    for j in 0..cols {
                        assert_eq!(dst[m * rows * cols + j * rows + i], src[m * rows * cols + i * cols + j]);
                    }
                }
            }
        }
    }
}
