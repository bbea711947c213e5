//! IDX files (MNIST's format), gzip-compressed or raw.
//!
//! Header, big-endian: two zero bytes, a type byte (0x08 = u8), the number of dimensions, then
//! one u32 per dimension; the data follow row-major. Every size is checked against the file
//! before anything large is allocated, so a corrupt header cannot cause a huge allocation.

use super::Images;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Largest payload accepted (bytes): ten times MNIST's training images.
pub const MAX_PAYLOAD: u64 = 512 << 20;

fn open(path: &Path) -> Result<(Box<dyn Read>, Option<u64>)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| Error::io(path, e))?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    let reader = std::io::BufReader::new(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok((Box::new(flate2::read::GzDecoder::new(reader)), None))
    } else {
        Ok((Box::new(reader), Some(len)))
    }
}

/// Read the header and payload of an IDX file with `ndims` dimensions of u8 data.
fn read_idx(path: &Path, ndims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |msg: String| Error::bad_data(path, msg);
    let (mut r, raw_len) = open(path)?;
    let mut head = [0u8; 4];
    r.read_exact(&mut head).map_err(|e| bad(format!("truncated: no IDX header ({e})")))?;
    let magic = u32::from_be_bytes(head);
    if head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] as usize != ndims {
        return Err(bad(format!(
            "wrong magic number 0x{magic:08x}: expected 0x{:08x} (IDX, u8 data, {ndims} dimension{})",
            0x0800 + ndims,
            if ndims == 1 { "" } else { "s" }
        )));
    }
    let mut dims = Vec::with_capacity(ndims);
    for i in 0..ndims {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).map_err(|_| bad(format!("truncated header: dimension {i} missing")))?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    let payload = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).unwrap_or(u64::MAX);
    if payload > MAX_PAYLOAD {
        return Err(bad(format!("absurd size in header: dimensions {dims:?} need {payload} bytes (limit {MAX_PAYLOAD})")));
    }
    let header = 4 + 4 * ndims as u64;
    if let Some(len) = raw_len {
        if len < header + payload {
            return Err(bad(format!("truncated: header {dims:?} promises {payload} data bytes, file has {}", len - header)));
        }
    }
    let mut data = Vec::with_capacity(payload.min(64 << 20) as usize);
    (&mut r).take(payload).read_to_end(&mut data).map_err(|e| bad(format!("cannot decompress: {e}")))?;
    if (data.len() as u64) < payload {
        return Err(bad(format!("truncated: header {dims:?} promises {payload} data bytes, only {} present", data.len())));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(|e| bad(format!("cannot decompress: {e}")))? != 0 {
        return Err(bad(format!("trailing bytes after the {payload} data bytes that header {dims:?} describes")));
    }
    Ok((dims, data))
}

/// Read an IDX image file (magic 0x00000803): `[count, rows, cols]` u8.
pub fn read_images(path: &Path) -> Result<Images> {
    let (dims, pixels) = read_idx(path, 3)?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(Error::bad_data(path, format!("wrong dimensions {}x{}", dims[1], dims[2])));
    }
    Ok(Images { count: dims[0], rows: dims[1], cols: dims[2], pixels })
}

/// Read an IDX label file (magic 0x00000801): `[count]` u8.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    Ok(read_idx(path, 1)?.1)
}

/// Encode images as a raw IDX byte stream (for tests and tools).
pub fn encode_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, 3];
    for d in [count, rows, cols] {
        v.extend_from_slice(&(d as u32).to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}
