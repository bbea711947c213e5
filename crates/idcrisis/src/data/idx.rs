//! IDX files (MNIST's format), gzip-compressed or raw.
//!
//! Header, big-endian: two zero bytes, a type byte (0x08 = u8), the number of dimensions, then
//! one u32 per dimension; the data follow row-major. Every size is checked against the file
//! before anything large is allocated, so a corrupt header cannot cause a huge allocation: a raw
//! file's header must describe exactly the bytes it holds, and for a gzip file (whose unpacked
//! size is unknown until read) at most 1032 times its packed size is reserved up front.

use super::Images;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Largest payload accepted (bytes): ten times MNIST's training images.
pub const MAX_PAYLOAD: u64 = 512 << 20;

/// Largest expansion of a deflate stream: 1032 output bytes per input byte. Bounds how much is
/// reserved up front for a gzip file's payload, whatever its header claims.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// An open IDX file: its reader (decompressing if gzip), its size on disk, and whether it is gzip.
struct Opened {
    reader: Box<dyn Read>,
    file_len: u64,
    gzip: bool,
}

fn open(path: &Path) -> Result<Opened> {
    use std::io::Seek;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut magic = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    f.seek(std::io::SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
    let reader = std::io::BufReader::new(f);
    let gzip = n == 2 && magic == [0x1f, 0x8b];
    let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(reader)) } else { Box::new(reader) };
    Ok(Opened { reader, file_len, gzip })
}

/// Read the header and payload of an IDX file with `ndims` dimensions of u8 data.
///
/// Nothing is allocated from the header's sizes before they are checked: a raw file's header
/// must describe exactly the bytes the file holds, and a gzip file's up-front reservation is
/// bounded by what its compressed size can expand to.
fn read_idx(path: &Path, ndims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |msg: String| Error::bad_data(path, msg);
    let Opened { reader: mut r, file_len, gzip } = open(path)?;
    // A read error: a short stream is truncation; anything else in a gzip file is corruption.
    let read_err = |e: std::io::Error, what: &str| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(format!("truncated: {what}"))
        } else if gzip {
            bad(format!("cannot decompress ({what}): {e}"))
        } else {
            Error::io(path, e)
        }
    };
    let mut head = [0u8; 4];
    r.read_exact(&mut head).map_err(|e| read_err(e, &format!("no IDX header ({file_len} bytes on disk)")))?;
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
        r.read_exact(&mut b).map_err(|e| read_err(e, &format!("header ends before dimension {i}")))?;
        dims.push(u32::from_be_bytes(b) as usize);
    }
    // The product of three u32s can overflow u64 (and usize): `None`, reported as such.
    let payload = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let need = payload.map_or_else(|| "more than 2^64".to_string(), |p| p.to_string());
    let header = 4 + 4 * ndims as u64;
    if !gzip {
        let have = file_len.saturating_sub(header);
        if payload.is_none_or(|p| have < p) {
            return Err(bad(format!(
                "truncated: the header's count does not match the file size: dimensions {dims:?} need {need} data bytes, \
                 the file has {have} after its {header}-byte header"
            )));
        }
    }
    let payload = match payload {
        Some(p) if p <= MAX_PAYLOAD => p,
        _ => return Err(bad(format!("absurd size in header: dimensions {dims:?} need {need} bytes (limit {MAX_PAYLOAD})"))),
    };
    let reserve = if gzip { payload.min(file_len.saturating_mul(MAX_DEFLATE_RATIO)) } else { payload };
    let mut data = Vec::with_capacity(reserve as usize);
    (&mut r)
        .take(payload)
        .read_to_end(&mut data)
        .map_err(|e| read_err(e, &format!("the data end before the {payload} bytes header {dims:?} promises")))?;
    if (data.len() as u64) < payload {
        return Err(bad(format!(
            "truncated: the header's count does not match the file size: dimensions {dims:?} need {payload} data bytes, \
             only {} present",
            data.len()
        )));
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(|e| read_err(e, "the stream ends after the data, before its end marker"))? != 0 {
        return Err(bad(format!(
            "trailing bytes after the {payload} data bytes that header {dims:?} describes (the header's count does not match \
             the file size)"
        )));
    }
    Ok((dims, data))
}

/// Read an IDX image file (magic 0x00000803): `[count, rows, cols]` u8.
pub fn read_images(path: &Path) -> Result<Images> {
    let (dims, pixels) = read_idx(path, 3)?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(Error::bad_data(path, format!("wrong dimensions {}x{}", dims[1], dims[2])));
    }
    Ok(Images { count: dims[0], channels: 1, rows: dims[1], cols: dims[2], pixels })
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
