//! CIFAR-10 binary batches (`cifar-10-batches-bin/*.bin`).
//!
//! Each record is 3073 bytes: a label byte, then 1024 R, 1024 G and 1024 B bytes, each plane
//! row-major over 32×32. By default the models see them as they are, `[3, 32, 32]` (the paper's
//! CIFAR-10 appendix). [`gray_crop`] gives the gray view (`--gray N`): ITU-R 601-2 luma
//! `L = (299·R + 587·G + 114·B) / 1000` rounded to the nearest integer (PIL's `convert("L")`),
//! then the central N×N crop (for N = 28, rows and columns 2..30). Cropping, unlike resizing,
//! keeps every pixel value as it was.

use super::Split;
use crate::error::{Error, Result};
use crate::shape::Shape;
use std::path::{Path, PathBuf};

/// Bytes per record.
pub const RECORD: usize = 1 + 3 * 1024;

/// One CIFAR-10 image with its RGB planes kept.
#[derive(Debug, Clone)]
pub struct CifarImage {
    /// Class 0..9 (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck).
    pub label: u8,
    /// `[3, 32, 32]` planes R, G, B.
    pub rgb: Vec<u8>,
}

/// The batch files of a split under `dir/cifar-10/cifar-10-batches-bin/`.
pub fn batch_files(dir: &Path, split: Split) -> Vec<PathBuf> {
    let base = dir.join("cifar-10").join("cifar-10-batches-bin");
    match split {
        Split::Train => (1..=5).map(|i| base.join(format!("data_batch_{i}.bin"))).collect(),
        Split::Test => vec![base.join("test_batch.bin")],
    }
}

/// Read every record of a binary batch file.
///
/// The file's size is checked before it is read: more than 100 000 records (ten times a real
/// batch) is refused, so a wrong file is never read into memory whole. Then [`parse_batch`]'s
/// checks; errors name the file.
pub fn read_batch(path: &Path) -> Result<Vec<CifarImage>> {
    const MAX_RECORDS: u64 = 100_000;
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len > MAX_RECORDS * RECORD as u64 {
        return Err(Error::bad_data(
            path,
            format!("not a CIFAR-10 binary batch: {len} bytes is more than {MAX_RECORDS} records of {RECORD} bytes"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_batch(&bytes).map_err(|m| Error::bad_data(path, m))
}

/// Parse a batch from memory: `bytes.len() / RECORD` records, each label in 0..=9. The error
/// says what is wrong (size or which record's label) but not where the bytes came from; see
/// [`read_batch`] for the file version.
pub fn parse_batch(bytes: &[u8]) -> std::result::Result<Vec<CifarImage>, String> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(format!("not a CIFAR-10 binary batch: {} bytes is not a positive multiple of {RECORD}", bytes.len()));
    }
    bytes
        .chunks_exact(RECORD)
        .enumerate()
        .map(|(i, r)| {
            if r[0] > 9 {
                Err(format!("record {i}: label {} is not in 0..=9", r[0]))
            } else {
                Ok(CifarImage { label: r[0], rgb: r[1..].to_vec() })
            }
        })
        .collect()
}

/// One image of shape `from` (1 or 3 channels, u8 planes) → `[side, side]` gray: luma for RGB
/// (see the module docs), then the central `side`×`side` crop, offset `((H − side) / 2, (W − side) / 2)`.
/// `side` must not exceed H or W; the caller checks (see [`crate::data::Images::to_gray`]).
pub fn gray_crop(planes: &[u8], from: Shape, side: usize) -> Vec<u8> {
    let (top, left) = ((from.height - side) / 2, (from.width - side) / 2);
    let hw = from.hw();
    let mut out = Vec::with_capacity(side * side);
    for y in top..top + side {
        for x in left..left + side {
            let i = y * from.width + x;
            out.push(if from.channels == 3 {
                let (r, g, b) = (planes[i] as u32, planes[hw + i] as u32, planes[2 * hw + i] as u32);
                ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8
            } else {
                planes[i]
            });
        }
    }
    out
}
