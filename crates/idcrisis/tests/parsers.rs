//! Parsers that never panic: every reader of an outside file (IDX, CIFAR-10 batches, safetensors
//! weights, the run config and the sweep file) answers any input, arbitrary bytes or a mutated
//! valid file, with either a value or an error that names the file and the problem. Never a
//! panic (proptest turns one into a failure), and never an allocation sized by a number read
//! from the file without a bound: a counting allocator records the largest single allocation
//! each thread makes while a parser runs.
//!
//! Cases per property are kept modest so that the whole file runs in a few seconds in the test
//! profile.

mod common;

use idcrisis::data::{cifar, idx};
use idcrisis::experiment::config::{RunConfig, TrainSet};
use idcrisis::experiment::sweep;
use idcrisis::nn::model::{Arch, ModelConfig, Net};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use safetensors::Dtype;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Allocation watch: the largest single allocation of the current thread.

struct Watch;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(p, l, new_size)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static WATCH: Watch = Watch;

/// Run `f`; also return the largest single allocation (bytes) it made on this thread.
fn largest_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|m| m.set(0));
    let r = f();
    (r, LARGEST.with(|m| m.get()))
}

/// What a parser may allocate at once for an input of `len` bytes: the input several times over
/// (gzip can expand 1032-fold), plus fixed buffers (a BufReader, an inflate window).
fn alloc_budget(len: usize, expansion: usize) -> usize {
    (1 << 20).max(len.saturating_mul(expansion).saturating_mul(2))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// A per-test directory, created once per thread and test name.
fn scratch(tag: &str) -> PathBuf {
    thread_local! {
        static DIRS: std::cell::RefCell<std::collections::HashMap<String, common::TestDir>> = Default::default();
    }
    DIRS.with(|d| d.borrow_mut().entry(tag.to_string()).or_insert_with(|| common::tempdir(tag)).to_path_buf())
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The error's message must start with the file name and go on to say something.
fn assert_names_file(msg: &str, path: &Path) {
    let p = path.display().to_string();
    assert!(msg.contains(&p), "error does not name the file {p}: {msg}");
    let rest = msg[msg.find(&p).unwrap() + p.len()..].trim_start_matches([':', ' ']);
    assert!(rest.len() >= 5, "error names the file but not the problem: {msg}");
}

/// One edit of a byte string. Indices are reduced modulo the length, so every edit applies.
#[derive(Debug, Clone)]
enum Edit {
    /// Flip one bit.
    Flip(usize, u8),
    /// Overwrite one byte.
    Set(usize, u8),
    /// Keep only the first `n % (len + 1)` bytes.
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
    /// Overwrite big-endian header field `k` (bytes `4k..4k+4`) with a value.
    Field(usize, u32),
}

/// Values that break size arithmetic.
fn nasty_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(2),
        Just(28),
        Just(0x0801),
        Just(0x0803),
        Just(60_000),
        Just(1 << 16),
        Just(1 << 31),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        0u32..16,
        any::<u32>(),
    ]
}

fn edit(fields: usize) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Edit::Set(i, v)),
        any::<usize>().prop_map(Edit::Truncate),
        vec(any::<u8>(), 1..12).prop_map(Edit::Extend),
        (any::<usize>(), vec(any::<u8>(), 1..6)).prop_map(|(i, b)| Edit::Insert(i, b)),
        (0..fields, nasty_u32()).prop_map(|(k, v)| Edit::Field(k, v)),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let n = bytes.len();
    match e {
        Edit::Flip(i, b) if n > 0 => bytes[i % n] ^= 1 << b,
        Edit::Set(i, v) if n > 0 => bytes[i % n] = *v,
        Edit::Truncate(k) => bytes.truncate(k % (n + 1)),
        Edit::Extend(b) => bytes.extend_from_slice(b),
        Edit::Insert(i, b) => {
            let at = i % (n + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Edit::Field(k, v) if 4 * k + 4 <= n => bytes[4 * k..4 * k + 4].copy_from_slice(&v.to_be_bytes()),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// IDX.

/// The dimensions a correct reader must return for these raw IDX bytes, or `None` if they must
/// be rejected. Written from the format, independently of the reader.
fn idx_oracle(b: &[u8], ndims: usize) -> Option<Vec<usize>> {
    let header = 4 + 4 * ndims;
    if b.len() < header || b[..4] != [0, 0, 8, ndims as u8] {
        return None;
    }
    let dims: Vec<usize> = (0..ndims).map(|i| u32::from_be_bytes(b[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let payload = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64))?;
    if payload > idx::MAX_PAYLOAD || (b.len() - header) as u64 != payload {
        return None;
    }
    if ndims == 3 && (dims[1] == 0 || dims[2] == 0) {
        return None;
    }
    Some(dims)
}

/// Whether raw bytes have a full, well-formed header whose sizes disagree with the file length.
fn idx_count_mismatch(b: &[u8], ndims: usize) -> bool {
    let header = 4 + 4 * ndims;
    if b.len() < header || b[..4] != [0, 0, 8, ndims as u8] {
        return false;
    }
    let payload =
        (0..ndims).map(|i| u32::from_be_bytes(b[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as u64).try_fold(1u64, |a, d| a.checked_mul(d));
    payload != Some((b.len() - header) as u64)
}

/// Read `bytes` as an IDX image file (`ndims` 3) or label file (`ndims` 1), raw and gzipped;
/// check the result against the oracle, the error against the file name and the allocation
/// against the budget.
fn check_idx(bytes: &[u8], ndims: usize, tag: &str) {
    let dir = scratch(tag);
    let want = idx_oracle(bytes, ndims);
    for (name, file) in [("raw.idx", bytes.to_vec()), ("packed.idx.gz", gz(bytes))] {
        let path = dir.join(name);
        std::fs::write(&path, &file).unwrap();
        let (got, big) = largest_alloc(|| match ndims {
            3 => idx::read_images(&path).map(|im| (vec![im.count, im.rows, im.cols], im.pixels)),
            _ => idx::read_labels(&path).map(|l| (vec![l.len()], l)),
        });
        assert!(big <= alloc_budget(file.len(), 1032), "{name}: allocated {big} bytes at once for a {}-byte file", file.len());
        match (&want, got) {
            (Some(dims), Ok((d, data))) => {
                assert_eq!(&d, dims, "{name}");
                assert_eq!(data, &bytes[4 + 4 * ndims..], "{name}");
            }
            (None, Err(e)) => {
                let msg = e.to_string();
                assert_names_file(&msg, &path);
                if idx_count_mismatch(bytes, ndims) {
                    assert!(msg.contains("does not match the file size") || msg.contains("absurd"), "{name}: {msg}");
                }
            }
            (Some(_), Err(e)) => panic!("{name}: a valid file was rejected: {e}"),
            (None, Ok(_)) => panic!("{name}: an invalid file was accepted: {bytes:?}"),
        }
    }
}

fn valid_idx_images() -> impl Strategy<Value = Vec<u8>> {
    (0usize..4, 1usize..6, 1usize..6)
        .prop_flat_map(|(n, r, c)| vec(any::<u8>(), n * r * c).prop_map(move |px| idx::encode_images(n, r, c, &px)))
}

fn valid_idx_labels() -> impl Strategy<Value = Vec<u8>> {
    vec(0u8..10, 0..12).prop_map(|l| {
        let mut v = vec![0, 0, 8, 1];
        v.extend_from_slice(&(l.len() as u32).to_be_bytes());
        v.extend_from_slice(&l);
        v
    })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn idx_images_from_arbitrary_bytes(
        prefix in prop_oneof![Just(vec![]), Just(vec![0u8, 0, 8, 3]), Just(vec![0x1f, 0x8b])],
        rest in vec(any::<u8>(), 0..40),
    ) {
        let mut b = prefix;
        b.extend(rest);
        check_idx(&b, 3, "idx-any");
    }

    #[test]
    fn idx_images_from_mutated_valid_files(good in valid_idx_images(), edits in vec(edit(4), 1..4)) {
        let mut b = good;
        edits.iter().for_each(|e| apply(&mut b, e));
        check_idx(&b, 3, "idx-mut");
    }

    #[test]
    fn idx_labels_from_mutated_valid_files(good in valid_idx_labels(), edits in vec(edit(2), 0..4)) {
        let mut b = good;
        edits.iter().for_each(|e| apply(&mut b, e));
        check_idx(&b, 1, "idx-labels");
    }

    /// Bytes of a valid gzip file, then edited: garbage compressed data, a cut stream, a bad
    /// checksum. Either an error naming the file or a consistent value.
    #[test]
    fn idx_mutated_gzip_streams(good in valid_idx_images(), edits in vec(edit(1), 1..3)) {
        let mut z = gz(&good);
        edits.iter().for_each(|e| apply(&mut z, e));
        let path = scratch("idx-gz").join("x.gz");
        std::fs::write(&path, &z).unwrap();
        let (r, big) = largest_alloc(|| idx::read_images(&path));
        prop_assert!(big <= alloc_budget(z.len(), 1032), "allocated {} bytes at once for a {}-byte file", big, z.len());
        match r {
            Ok(im) => prop_assert_eq!(im.pixels.len(), im.count * im.rows * im.cols),
            Err(e) => assert_names_file(&e.to_string(), &path),
        }
    }
}

fn idx_err(bytes: &[u8], gzip: bool) -> String {
    let path = scratch("idx-unit").join(if gzip { "u.idx.gz" } else { "u.idx" });
    std::fs::write(&path, if gzip { gz(bytes) } else { bytes.to_vec() }).unwrap();
    let (r, big) = largest_alloc(|| idx::read_images(&path));
    assert!(big <= 1 << 20, "allocated {big} bytes at once");
    let msg = r.err().unwrap_or_else(|| panic!("{bytes:?} was accepted")).to_string();
    assert_names_file(&msg, &path);
    msg
}

fn idx_header(dims: [u32; 3]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
    v
}

#[test]
fn idx_empty_and_short_files() {
    for gzip in [false, true] {
        assert!(idx_err(&[], gzip).contains("truncated: no IDX header"), "{}", idx_err(&[], gzip));
        assert!(idx_err(&[0, 0, 8], gzip).contains("truncated"));
        let e = idx_err(&[0, 0, 8, 3, 0, 0, 0, 1, 0], gzip);
        assert!(e.contains("header ends before dimension 1"), "{e}");
    }
    // A lone gzip magic: not a gzip stream.
    let path = scratch("idx-unit").join("magic.gz");
    std::fs::write(&path, [0x1f, 0x8b]).unwrap();
    let e = idx::read_images(&path).unwrap_err().to_string();
    assert!(e.contains("decompress") || e.contains("truncated"), "{e}");
}

#[test]
fn idx_header_only_files() {
    // One 28×28 image promised, none there.
    let e = idx_err(&idx_header([1, 28, 28]), false);
    assert!(e.contains("does not match the file size") && e.contains("need 784 data bytes") && e.contains("has 0"), "{e}");
    let e = idx_err(&idx_header([1, 28, 28]), true);
    assert!(e.contains("does not match the file size") && e.contains("only 0 present"), "{e}");
    // Zero images is a well-formed (empty) file.
    let path = scratch("idx-unit").join("zero.idx");
    std::fs::write(&path, idx_header([0, 28, 28])).unwrap();
    let im = idx::read_images(&path).unwrap();
    assert_eq!((im.count, im.rows, im.cols, im.pixels.len()), (0, 28, 28, 0));
    // Zero-sized images are not.
    assert!(idx_err(&idx_header([3, 0, 28]), false).contains("wrong dimensions 0x28"));
}

#[test]
fn idx_huge_counts_fail_before_allocating() {
    // 2^32 − 1 images on a 16-byte file: raw says the count does not match the file size; gzip
    // (whose decompressed size is unknown up front) says the size is absurd.
    let h = idx_header([u32::MAX, 28, 28]);
    let e = idx_err(&h, false);
    assert!(e.contains("does not match the file size") && e.contains("4294967295"), "{e}");
    assert!(idx_err(&h, true).contains("absurd size in header"));
    // Under the payload limit but far beyond a tiny gzip file: nothing large is reserved.
    let mut h = idx_header([400_000_000, 1, 1]);
    h.extend_from_slice(&[5; 10]);
    let e = idx_err(&h, true);
    assert!(e.contains("does not match the file size") && e.contains("only 10 present"), "{e}");
    // Products that overflow usize / u64: u32::MAX³ > 2^64.
    let h = idx_header([u32::MAX, u32::MAX, u32::MAX]);
    let e = idx_err(&h, false);
    assert!(e.contains("does not match the file size") && e.contains("more than 2^64"), "{e}");
    assert!(idx_err(&h, true).contains("absurd"));
    let h = idx_header([1 << 31, 1 << 31, 4]);
    assert!(idx_err(&h, false).contains("does not match the file size"));
}

#[test]
fn idx_trailing_and_wrong_kind() {
    let mut b = idx::encode_images(1, 2, 2, &[1, 2, 3, 4]);
    b.push(9);
    for gzip in [false, true] {
        let e = idx_err(&b, gzip);
        assert!(e.contains("trailing bytes") && e.contains("does not match the file size"), "{e}");
    }
    let e = idx_err(&[0, 0, 9, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1], false);
    assert!(e.contains("wrong magic number 0x00000903"), "{e}");
    // A directory in place of the file: an I/O error naming it.
    let d = scratch("idx-unit").join("a-dir.idx");
    std::fs::create_dir_all(&d).unwrap();
    assert_names_file(&idx::read_images(&d).unwrap_err().to_string(), &d);
    let missing = scratch("idx-unit").join("missing.idx");
    assert_names_file(&idx::read_labels(&missing).unwrap_err().to_string(), &missing);
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10 batches.

fn cifar_oracle(b: &[u8]) -> Option<Vec<u8>> {
    if b.is_empty() || !b.len().is_multiple_of(cifar::RECORD) {
        return None;
    }
    let labels: Vec<u8> = b.chunks(cifar::RECORD).map(|r| r[0]).collect();
    labels.iter().all(|&l| l <= 9).then_some(labels)
}

fn check_cifar(b: &[u8], tag: &str) {
    let want = cifar_oracle(b);
    let parsed = cifar::parse_batch(b);
    match (&want, &parsed) {
        (Some(labels), Ok(recs)) => {
            assert_eq!(&recs.iter().map(|r| r.label).collect::<Vec<_>>(), labels);
            for (r, raw) in recs.iter().zip(b.chunks(cifar::RECORD)) {
                assert_eq!(r.rgb, &raw[1..]);
            }
        }
        (None, Err(m)) => assert!(m.contains("not a CIFAR-10 binary batch") || m.contains("is not in 0..=9"), "{m}"),
        (Some(_), Err(m)) => panic!("valid batch rejected: {m}"),
        (None, Ok(_)) => panic!("invalid batch of {} bytes accepted", b.len()),
    }
    let path = scratch(tag).join("batch.bin");
    std::fs::write(&path, b).unwrap();
    let (r, big) = largest_alloc(|| cifar::read_batch(&path));
    assert!(big <= alloc_budget(b.len(), 1), "allocated {big} bytes at once for a {}-byte file", b.len());
    match (parsed, r) {
        (Ok(a), Ok(c)) => assert_eq!(a.len(), c.len()),
        (Err(m), Err(e)) => {
            let msg = e.to_string();
            assert_names_file(&msg, &path);
            assert!(msg.ends_with(&m), "{msg} vs {m}");
        }
        (a, c) => panic!("parse_batch and read_batch disagree: {:?} vs {:?}", a.map(|v| v.len()), c.map(|v| v.len())),
    }
}

fn valid_cifar() -> impl Strategy<Value = Vec<u8>> {
    vec((0u8..10, any::<u8>()), 1..3).prop_map(|recs| {
        let mut v = Vec::new();
        for (label, fill) in recs {
            v.push(label);
            v.extend((0..3 * 1024).map(|i| fill.wrapping_add(i as u8)));
        }
        v
    })
}

/// An edit of a batch: the byte edits, plus setting record `k`'s label.
fn cifar_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => edit(1).prop_filter("no field edit", |e| !matches!(e, Edit::Field(..))),
        1 => (0usize..3, any::<u8>()).prop_map(|(k, v)| Edit::Set(k * cifar::RECORD, v)),
    ]
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn cifar_from_arbitrary_bytes(
        len in prop_oneof![0usize..64, Just(cifar::RECORD - 1), Just(cifar::RECORD), Just(cifar::RECORD + 1), Just(2 * cifar::RECORD)],
        seed in any::<u8>(),
        label in any::<u8>(),
    ) {
        let mut b: Vec<u8> = (0..len).map(|i| seed.wrapping_mul(i as u8).wrapping_add(i as u8 >> 3)).collect();
        if let Some(x) = b.first_mut() {
            *x = label;
        }
        check_cifar(&b, "cifar-any");
    }

    #[test]
    fn cifar_from_mutated_valid_batches(good in valid_cifar(), edits in vec(cifar_edit(), 0..4)) {
        let mut b = good;
        edits.iter().for_each(|e| apply(&mut b, e));
        check_cifar(&b, "cifar-mut");
    }
}

#[test]
fn cifar_known_nasty_cases() {
    check_cifar(&[], "cifar-unit");
    let e = cifar::parse_batch(&[]).unwrap_err();
    assert!(e.contains("0 bytes is not a positive multiple of 3073"), "{e}");
    // A label byte only; a record one byte short; a record and one byte.
    for n in [1, cifar::RECORD - 1, cifar::RECORD + 1] {
        assert!(cifar::parse_batch(&vec![0; n]).unwrap_err().contains(&format!("{n} bytes")));
    }
    // The label of the second record out of range.
    let mut b = vec![0u8; 2 * cifar::RECORD];
    b[cifar::RECORD] = 255;
    assert!(cifar::parse_batch(&b).unwrap_err().contains("record 1: label 255"));
    // A file too large to be a batch is refused from its size, before it is read.
    let path = scratch("cifar-unit").join("huge.bin");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(200_000 * cifar::RECORD as u64).unwrap(); // sparse
    let (r, big) = largest_alloc(|| cifar::read_batch(&path));
    let msg = r.unwrap_err().to_string();
    assert_names_file(&msg, &path);
    assert!(msg.contains("more than 100000 records"), "{msg}");
    assert!(big < 1 << 20, "allocated {big} bytes");
    let missing = scratch("cifar-unit").join("missing.bin");
    assert_names_file(&cifar::read_batch(&missing).unwrap_err().to_string(), &missing);
}

// ---------------------------------------------------------------------------------------------
// Safetensors weights (`--init-from`).

fn small_cfg(fcn: bool, bias: bool) -> ModelConfig {
    if fcn {
        ModelConfig { arch: Arch::Fcn, depth: 2, width: Some(3), bias, ..ModelConfig::default() }
    } else {
        ModelConfig { arch: Arch::Cnn, depth: 3, channels: 2, kernel: 3, bias, ..ModelConfig::default() }
    }
}

/// A tensor as written to a file: name, dtype, shape, little-endian data.
type Tensor = (String, Dtype, Vec<usize>, Vec<u8>);

fn tensors_of(net: &Net<f32>) -> Vec<Tensor> {
    net.tensors()
        .into_iter()
        .map(|(name, shape, r)| {
            let data = net.params[r].iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, Dtype::F32, shape, data)
        })
        .collect()
}

fn serialize(ts: &[Tensor]) -> Vec<u8> {
    let views: Vec<_> = ts
        .iter()
        .map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("consistent tensor")))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// A structured edit of the tensor list.
#[derive(Debug, Clone)]
enum TEdit {
    Drop(usize),
    Extra(String, Vec<usize>),
    Rename(usize, String),
    /// Re-encode tensor `i` in another dtype (its values, cast).
    Dtype(usize, Dtype),
    /// Reshape tensor `i`: 0 flatten, 1 leading 1, 2 first dim + 1, 3 first dim 0, 4 reverse.
    Reshape(usize, u8),
}

fn encode(values: &[f32], d: Dtype) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| -> Vec<u8> {
            match d {
                Dtype::F64 => (v as f64).to_le_bytes().to_vec(),
                Dtype::F32 => v.to_le_bytes().to_vec(),
                Dtype::I32 => (v as i32).to_le_bytes().to_vec(),
                Dtype::I64 => (v as i64).to_le_bytes().to_vec(),
                // bf16: the top half of the f32; f16: any two bytes (only the length matters).
                Dtype::BF16 | Dtype::F16 => v.to_le_bytes()[2..].to_vec(),
                _ => vec![v as u8; d.bitsize() / 8],
            }
        })
        .collect()
}

fn apply_t(ts: &mut Vec<Tensor>, e: &TEdit) {
    let n = ts.len();
    match e.clone() {
        TEdit::Drop(i) if n > 0 => {
            ts.remove(i % n);
        }
        TEdit::Extra(name, shape) if ts.iter().all(|t| t.0 != name) => {
            let len: usize = shape.iter().product();
            ts.push((name, Dtype::F32, shape, vec![0; 4 * len]));
        }
        TEdit::Rename(i, name) if n > 0 && ts.iter().all(|t| t.0 != name) => ts[i % n].0 = name,
        TEdit::Dtype(i, d) if n > 0 => {
            let t = &mut ts[i % n];
            let vals: Vec<f32> = match t.1 {
                Dtype::F32 => t.3.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                _ => vec![0.0; t.2.iter().product()],
            };
            t.3 = encode(&vals, d);
            t.1 = d;
        }
        TEdit::Reshape(i, how) if n > 0 => {
            let t = &mut ts[i % n];
            let len: usize = t.2.iter().product();
            if t.2.is_empty() {
                t.2.push(1);
            }
            match how {
                0 => t.2 = vec![len],
                1 => t.2.insert(0, 1),
                2 => t.2[0] += 1,
                3 => t.2[0] = 0,
                _ => t.2.reverse(),
            }
            let new_len: usize = t.2.iter().product();
            t.3.resize(new_len * (t.1.bitsize() / 8), 0);
        }
        _ => {}
    }
}

fn tensor_edit() -> impl Strategy<Value = TEdit> {
    let name = prop_oneof![
        Just("layers.0.weight".to_string()),
        Just("layers.1.bias".to_string()),
        Just("layers.9.weight".to_string()),
        Just("layers.0.weight.extra".to_string()),
        Just("extra".to_string()),
        Just(" ".to_string()),
        "[a-z.0-9]{1,12}",
    ];
    let dtype = prop_oneof![
        Just(Dtype::F16),
        Just(Dtype::BF16),
        Just(Dtype::I32),
        Just(Dtype::I64),
        Just(Dtype::U8),
        Just(Dtype::BOOL),
        Just(Dtype::F64),
        Just(Dtype::F32),
    ];
    prop_oneof![
        any::<usize>().prop_map(TEdit::Drop),
        (name.clone(), vec(0usize..4, 0..3)).prop_map(|(n, s)| TEdit::Extra(n, s)),
        (any::<usize>(), name).prop_map(|(i, n)| TEdit::Rename(i, n)),
        (any::<usize>(), dtype).prop_map(|(i, d)| TEdit::Dtype(i, d)),
        (any::<usize>(), 0u8..5).prop_map(|(i, h)| TEdit::Reshape(i, h)),
    ]
}

/// The problems a correct loader must find, as substrings one of which its message must contain;
/// empty when the file must load.
fn weight_problems(net: &Net<f32>, ts: &[Tensor]) -> Vec<String> {
    let want = net.tensors();
    let mut p = Vec::new();
    for t in ts {
        if !want.iter().any(|w| w.0 == t.0) {
            p.push(format!("unexpected tensor {}", t.0));
        }
    }
    for (name, shape, _) in &want {
        match ts.iter().find(|t| &t.0 == name) {
            None => p.push(format!("missing tensor {name}")),
            Some(t) if &t.2 != shape => p.push(format!("tensor {name} has shape")),
            Some(t) if !matches!(t.1, Dtype::F32 | Dtype::F64) => p.push(format!("tensor {name} has dtype")),
            _ => {}
        }
    }
    p
}

/// The parameters a correct loader reads from `ts` (a file without problems): each of `net`'s
/// tensors in order, decoded from F32 or F64. (A dtype edit through F16 leaves zeros in the file.)
fn file_params(net: &Net<f32>, ts: &[Tensor]) -> Vec<f32> {
    let mut out = Vec::new();
    for (name, _, _) in net.tensors() {
        let t = ts.iter().find(|t| t.0 == name).unwrap();
        match t.1 {
            Dtype::F32 => out.extend(t.3.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()))),
            _ => out.extend(t.3.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)),
        }
    }
    out
}

fn load(cfg: &ModelConfig, bytes: &[u8], path: &Path) -> (Net<f32>, Result<(), String>, usize) {
    let mut net = Net::<f32>::new(cfg, idcrisis::Shape::MNIST).unwrap();
    let (r, big) = largest_alloc(|| net.load_safetensors(bytes, path));
    (net, r.map_err(|e| e.to_string()), big)
}

fn source_net(fcn: bool, bias: bool, seed: u64) -> Net<f32> {
    let mut net = Net::<f32>::new(&small_cfg(fcn, bias), idcrisis::Shape::MNIST).unwrap();
    net.init(idcrisis::nn::model::Init::TorchDefault, 1.0, seed);
    net
}

/// One edit of the JSON header, the data kept: a dtype string, a shape, the offsets, an entry.
#[derive(Debug, Clone)]
enum HEdit {
    Dtype(usize, String),
    Shape(usize, Vec<u64>),
    Offsets(usize, u64, u64),
    Remove(usize),
    Metadata(String),
}

fn header_edit() -> impl Strategy<Value = HEdit> {
    let big = prop_oneof![Just(0u64), Just(1), Just(3), Just(1 << 32), Just(u64::MAX), Just(i64::MAX as u64), any::<u64>()];
    prop_oneof![
        (any::<usize>(), prop_oneof![Just("F16"), Just("BF16"), Just("I32"), Just("F64"), Just("f32"), Just("")])
            .prop_map(|(i, s)| HEdit::Dtype(i, s.to_string())),
        (any::<usize>(), vec(big.clone(), 0..4)).prop_map(|(i, s)| HEdit::Shape(i, s)),
        (any::<usize>(), big.clone(), big).prop_map(|(i, a, b)| HEdit::Offsets(i, a, b)),
        any::<usize>().prop_map(HEdit::Remove),
        prop_oneof![Just("{\"a\":1}"), Just("[]"), Just("null"), Just("{\"a\":\"b\"}"), Just("\"x\"")]
            .prop_map(|s| HEdit::Metadata(s.into())),
    ]
}

fn edit_header(bytes: &[u8], edits: &[HEdit]) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let names: Vec<String> = h.keys().filter(|k| *k != "__metadata__").cloned().collect();
    for e in edits {
        let name = |i: usize| names[i % names.len()].clone();
        // An edit of an entry removed earlier does nothing.
        match e {
            HEdit::Dtype(i, s) => h.get_mut(&name(*i)).into_iter().for_each(|t| t["dtype"] = s.clone().into()),
            HEdit::Shape(i, s) => h.get_mut(&name(*i)).into_iter().for_each(|t| t["shape"] = s.clone().into()),
            HEdit::Offsets(i, a, b) => h.get_mut(&name(*i)).into_iter().for_each(|t| t["data_offsets"] = vec![*a, *b].into()),
            HEdit::Remove(i) => {
                h.remove(&name(*i));
            }
            HEdit::Metadata(s) => {
                h.insert("__metadata__".into(), serde_json::from_str(s).unwrap());
            }
        }
    }
    let text = serde_json::to_vec(&h).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn safetensors_structured_edits(
        fcn in any::<bool>(),
        bias in any::<bool>(),
        seed in 0u64..1000,
        edits in vec(tensor_edit(), 0..3),
    ) {
        let src = source_net(fcn, bias, seed);
        let mut ts = tensors_of(&src);
        edits.iter().for_each(|e| apply_t(&mut ts, e));
        let bytes = serialize(&ts);
        let path = PathBuf::from(format!("edited-{seed}.safetensors"));
        let problems = weight_problems(&src, &ts);
        let (net, r, big) = load(&small_cfg(fcn, bias), &bytes, &path);
        prop_assert!(big <= alloc_budget(bytes.len(), 2), "allocated {} bytes at once", big);
        match r {
            Ok(()) => {
                prop_assert!(problems.is_empty(), "accepted despite {:?}", problems);
                prop_assert_eq!(&net.params, &file_params(&src, &ts));
            }
            Err(msg) => {
                prop_assert!(!problems.is_empty(), "rejected a good file: {}", msg);
                prop_assert!(msg.starts_with(&format!("weights {}: ", path.display())), "{}", msg);
                prop_assert!(problems.iter().any(|p| msg.contains(p.as_str())), "{} is none of {:?}", msg, problems);
            }
        }
    }

    #[test]
    fn safetensors_header_edits(seed in 0u64..1000, edits in vec(header_edit(), 1..3)) {
        let src = source_net(false, true, seed);
        let bytes = edit_header(&serialize(&tensors_of(&src)), &edits);
        let path = PathBuf::from("header.safetensors");
        let (net, r, big) = load(&small_cfg(false, true), &bytes, &path);
        prop_assert!(big <= alloc_budget(bytes.len(), 2), "allocated {} bytes at once", big);
        match r {
            Ok(()) => prop_assert_eq!(&net.params, &src.params),
            Err(msg) => prop_assert!(msg.starts_with("weights header.safetensors: ") && msg.len() > 40, "{}", msg),
        }
    }

    #[test]
    fn safetensors_byte_edits(fcn in any::<bool>(), edits in vec(edit(2), 1..4), len in prop_oneof![
        Just(None), Just(Some(0u64)), Just(Some(u64::MAX)), Just(Some(1 << 63)), Just(Some(100_000_001)), any::<u64>().prop_map(Some)
    ]) {
        let src = source_net(fcn, true, 7);
        let mut bytes = serialize(&tensors_of(&src));
        if let Some(n) = len {
            bytes[..8].copy_from_slice(&n.to_le_bytes());
        }
        edits.iter().for_each(|e| apply(&mut bytes, e));
        let path = PathBuf::from("bytes.safetensors");
        let (_, r, big) = load(&small_cfg(fcn, true), &bytes, &path);
        prop_assert!(big <= alloc_budget(bytes.len(), 2), "allocated {} bytes at once", big);
        if let Err(msg) = r {
            prop_assert!(msg.starts_with("weights bytes.safetensors: ") && msg.len() > 40, "{}", msg);
        }
    }

    #[test]
    fn safetensors_arbitrary_bytes(b in vec(any::<u8>(), 0..80), n in prop_oneof![0u64..80, any::<u64>()], prefix in any::<bool>()) {
        let mut bytes = b;
        if prefix {
            let mut v = n.to_le_bytes().to_vec();
            v.extend(bytes);
            bytes = v;
        }
        let path = PathBuf::from("any.safetensors");
        let (_, r, big) = load(&small_cfg(false, false), &bytes, &path);
        prop_assert!(big <= alloc_budget(bytes.len(), 2), "allocated {} bytes at once", big);
        let msg = r.expect_err("arbitrary bytes loaded as weights");
        prop_assert!(msg.starts_with("weights any.safetensors: ") && msg.len() > 30, "{}", msg);
    }
}

#[test]
fn safetensors_known_nasty_cases() {
    let src = source_net(false, true, 1);
    let good = serialize(&tensors_of(&src));
    let p = Path::new("w.safetensors");
    let cfg = small_cfg(false, true);
    let err = |b: &[u8]| load(&cfg, b, p).1.unwrap_err();
    assert!(load(&cfg, &good, p).1.is_ok());
    for b in [&[][..], &good[..7], &good[..8], &good[..good.len() - 1]] {
        assert!(err(b).starts_with("weights w.safetensors: not a safetensors file"), "{}", err(b));
    }
    // A header length of 2^64 − 1, and one just past the end.
    let mut b = good.clone();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(err(&b).contains("not a safetensors file"));
    b[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
    assert!(err(&b).contains("not a safetensors file"));
    // A shape whose element count overflows usize.
    let b = edit_header(&good, &[HEdit::Shape(0, vec![1 << 32, 1 << 32, 1 << 32])]);
    assert!(err(&b).contains("not a safetensors file"));
    // Every tensor present but one is F16: the dtype is named.
    let mut ts = tensors_of(&src);
    apply_t(&mut ts, &TEdit::Dtype(0, Dtype::F16));
    let e = err(&serialize(&ts));
    assert!(e.contains("has dtype F16; expected F32 or F64"), "{e}");
    // F64 weights load (cast).
    let mut ts = tensors_of(&src);
    (0..ts.len()).for_each(|i| apply_t(&mut ts, &TEdit::Dtype(i, Dtype::F64)));
    let (net, r, _) = load(&cfg, &serialize(&ts), p);
    r.unwrap();
    assert_eq!(net.params, src.params);
    // Weights of another architecture.
    let e = load(&small_cfg(true, true), &good, p).1.unwrap_err();
    assert!(e.contains("has shape") || e.contains("unexpected tensor") || e.contains("missing tensor"), "{e}");
    // An empty safetensors file (no tensors).
    let e = err(&serialize(&[]));
    assert!(e.contains("missing tensor layers.0.weight"), "{e}");
}

/// A failed load must leave the network as it was, so that a caller that reports the error and
/// carries on (or retries with another file) does not hold half-loaded weights.
#[test]
fn safetensors_failed_load_leaves_the_net_unchanged() {
    let src = source_net(false, true, 1);
    let mut ts = tensors_of(&src);
    let last = ts.len() - 1;
    apply_t(&mut ts, &TEdit::Dtype(last, Dtype::I32));
    let mut net = source_net(false, true, 2);
    let before = net.params.clone();
    assert!(net.load_safetensors(&serialize(&ts), Path::new("w")).is_err());
    let changed = net.params.iter().zip(&before).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 0, "a failed load changed {changed} of {} parameters", before.len());
}

// ---------------------------------------------------------------------------------------------
// Config and sweep TOML: line-level edits of a valid file.

/// Values that stress a TOML value slot.
const TOKENS: &[&str] = &[
    "-1",
    "0",
    "1",
    "3",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "1.5",
    "-0.0",
    "\"\"",
    "\"x\"",
    "[]",
    "[1, 2]",
    "[[0.5], [1.0]]",
    "{}",
    "{ a = 1 }",
    "true",
    "9223372036854775807",
    "18446744073709551616",
    "-9223372036854775808",
    "\"mnist:train:18446744073709551616\"",
    "\"fashion-mnist:test:3\"",
    "\"cifar10:train:0\"",
    "\"x.png\"",
    "\"mnist:train\"",
    "\"fcn\"",
    "\"cnn\"",
    "\"adam\"",
    "\"winograd\"",
    "\"reflect\"",
    "1979-05-27T07:32:00Z",
    "'''x'''",
    "\"\\u0000\"",
    "[\"a\", 1]",
];

const KEYS: &[&str] = &[
    "seed",
    "threads",
    "dtype",
    "conv_algo",
    "train_image",
    "rho",
    "model.depth",
    "model.width",
    "model.kernel",
    "model.channels",
    "model.arch",
    "model.residual",
    "train.lr",
    "train.steps",
    "train.momentum",
    "train.optimizer",
    "init.scale",
    "init.from",
    "init.scheme",
    "train_set.data",
    "train_set.batch",
    "train_set.epochs",
    "bogus",
    "\"a.b\"",
    "model",
    "zip.seed",
];

#[derive(Debug, Clone)]
enum LEdit {
    DeleteLine(usize),
    DupLine(usize),
    /// Replace the value of line `i` (after its `=`) with a token.
    Value(usize, usize),
    /// Insert `KEY = TOKEN` before line `i`.
    InsertPair(usize, usize, usize),
    /// Insert a raw line.
    InsertLine(usize, String),
    /// Cut the text at a character.
    Cut(usize),
    /// Insert a character.
    Char(usize, char),
}

fn line_edit() -> impl Strategy<Value = LEdit> {
    prop_oneof![
        1 => any::<usize>().prop_map(LEdit::DeleteLine),
        1 => any::<usize>().prop_map(LEdit::DupLine),
        3 => (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| LEdit::Value(i, t)),
        2 => (any::<usize>(), 0..KEYS.len(), 0..TOKENS.len()).prop_map(|(i, k, t)| LEdit::InsertPair(i, k, t)),
        1 => (any::<usize>(), prop_oneof![Just("[model]"), Just("[zip]"), Just("[[model]]"), Just("[train.x]"), Just("["), Just("a.b.c = 1"), Just("\"\" = 1")])
            .prop_map(|(i, l)| LEdit::InsertLine(i, l.to_string())),
        1 => any::<usize>().prop_map(LEdit::Cut),
        1 => (any::<usize>(), prop_oneof![Just('['), Just(']'), Just('='), Just('"'), Just('\n'), Just('.'), Just('\''), Just('#'), Just('\u{0}'), any::<char>()])
            .prop_map(|(i, c)| LEdit::Char(i, c)),
    ]
}

fn apply_l(text: &str, e: &LEdit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match e {
        LEdit::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % n);
        }
        LEdit::DupLine(i) if !lines.is_empty() => {
            let l = lines[i % n].clone();
            lines.insert(i % n, l);
        }
        LEdit::Value(i, t) => {
            // The i-th line that has a value.
            let with: Vec<usize> = (0..lines.len()).filter(|&j| lines[j].contains(" = ")).collect();
            if !with.is_empty() {
                let j = with[i % with.len()];
                let key = lines[j].split(" = ").next().unwrap().to_string();
                lines[j] = format!("{key} = {}", TOKENS[*t]);
            }
        }
        LEdit::InsertPair(i, k, t) => lines.insert(i % (lines.len() + 1), format!("{} = {}", KEYS[*k], TOKENS[*t])),
        LEdit::InsertLine(i, l) => lines.insert(i % (lines.len() + 1), l.clone()),
        LEdit::Cut(i) => {
            let chars: Vec<char> = text.chars().collect();
            return chars[..i % (chars.len() + 1)].iter().collect();
        }
        LEdit::Char(i, c) => {
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(i % (chars.len() + 1), *c);
            return chars.into_iter().collect();
        }
        _ => {}
    }
    lines.join("\n")
}

/// Text that looks like TOML often enough to get past the first character.
fn tomlish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z_.\\[\\]=\" 0-9\n{},'#-]{0,120}",
        vec((0..KEYS.len(), 0..TOKENS.len()), 0..6)
            .prop_map(|v| v.iter().map(|&(k, t)| format!("{} = {}\n", KEYS[k], TOKENS[t])).collect::<String>()),
    ]
}

// --- run config ---

fn check_config(text: &str) {
    let path = Path::new("cases/run config.toml");
    match RunConfig::from_toml(text, path) {
        Ok(c) => match c.validate() {
            Ok(()) => {
                // What validates, writes and reads back the same.
                let again = c.to_toml().expect("a valid config serializes");
                let back = RunConfig::from_toml(&again, path).unwrap_or_else(|e| panic!("re-reading {again:?}: {e}"));
                assert_eq!(back, c, "round trip of {text:?}");
            }
            Err(e) => {
                let m = e.to_string();
                assert!(m.starts_with("invalid value for --") && m.len() > 30, "{m}");
            }
        },
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("config cases/run config.toml: ") && m.len() > 35, "{m}");
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn config_from_arbitrary_text(text in tomlish()) {
        check_config(&text);
    }

    #[test]
    fn config_from_mutated_valid_file(edits in vec(line_edit(), 1..4), base in 0usize..3) {
        let mut c = RunConfig::default();
        if base == 1 {
            c.model = ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(10), ..ModelConfig::default() };
            c.init.from = Some("w.safetensors".into());
        } else if base == 2 {
            c.train_set = Some(TrainSet { data: "mnist:train".into(), limit: 10, indices: vec![], batch: 16, epochs: 2 });
            c.conv_algo = idcrisis::engine::ConvAlgo::Winograd;
        }
        let mut text = c.to_toml().unwrap();
        check_config(&text);
        for e in &edits {
            text = apply_l(&text, e);
        }
        check_config(&text);
    }
}

#[test]
fn config_known_nasty_cases() {
    for t in [
        "",
        "\u{feff}",
        "seed = -1",
        "seed = 18446744073709551615",
        "threads = 99999999999",
        "rho = [nan]",
        "[train]\nlr = nan",
        "[train]\nlr = inf",
        "[train]\nsteps = -1",
        "[model]\ndepth = 0",
        "[model]\ndepth = 9223372036854775807",
        "[model]\nkernel = 9223372036854775807",
        "train_image = \"mnist:train:99999999999999999999999\"",
        "train_image = \"mnist:train:-1\"",
        "train_image = \"::\"",
        "[train_set]\ndata = \"mnist\"",
        "[train_set]\ndata = \"mnist:train\"\nbatch = 0",
        "[[model]]",
        "model = 1",
        "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ] {
        check_config(t);
    }
    // Deep nesting, far beyond the parser's recursion limit: an error, not a stack overflow.
    check_config(&format!("rho = {}{}", "[".repeat(5000), "]".repeat(5000)));
    check_config(&format!("a = {}1{}", "{ b = ".repeat(5000), "}".repeat(5000)));
    check_config(&format!("{} = 1", vec!["model"; 5000].join(".")));
    check_config(&format!("[{}]\nx = 1", vec!["train"; 5000].join(".")));
}

// --- sweep ---

const SWEEP: &str = r#"seed = [0, 1]
rho = [[0.0], [0.5, 1.0]]
[model]
arch = "cnn"
depth = [1, 3]
channels = 2
kernel = 3
[train]
steps = 10
lr = [0.001, 0.01]
[zip]
threads = [1, 2]
"init.scale" = [1.0, 0.5]
"#;

/// Every error names the file; none panics.
fn check_sweep(text: &str) {
    let path = Path::new("cases/my sweep.toml");
    let (r, big) = largest_alloc(|| std::panic::catch_unwind(|| sweep::expand(text, path, false)));
    let r = r.unwrap_or_else(|_| panic!("sweep::expand panicked on {text:?}"));
    assert!(big <= alloc_budget(text.len(), 1 << 12).max(sweep::MAX_CELLS * 1024), "allocated {big} bytes at once");
    match r {
        Ok(cells) => {
            assert!(!cells.is_empty() && cells.len() <= sweep::MAX_CELLS);
            for (i, c) in cells.iter().enumerate() {
                assert_eq!(c.index, i);
                c.config.validate().unwrap();
            }
        }
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("config cases/my sweep.toml: ") && m.len() > 35, "{m}");
        }
    }
}

/// A grid of `axes` lists of `len` values each.
fn grid(axes: usize, len: usize) -> String {
    let keys = ["seed", "threads", "train.steps", "model.channels", "train.lr"];
    let mut s = String::new();
    for a in 0..axes {
        let key = if a < keys.len() { keys[a].to_string() } else { format!("zip{a}") };
        let vals: Vec<String> = (1..=len).map(|v| if key == "train.lr" { format!("{}.0", v) } else { v.to_string() }).collect();
        s += &format!("{key} = [{}]\n", vals.join(", "));
    }
    s
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn sweep_from_arbitrary_text(text in tomlish()) {
        check_sweep(&text);
    }

    #[test]
    fn sweep_from_mutated_valid_file(edits in vec(line_edit(), 1..4)) {
        let mut text = SWEEP.to_string();
        for e in &edits {
            text = apply_l(&text, e);
        }
        check_sweep(&text);
    }

    /// Grids past MAX_CELLS, however they are made, are refused from the list lengths alone:
    /// quickly and without allocating per cell.
    #[test]
    fn sweep_huge_grids_are_refused(axes in 3usize..40, len in 50usize..400) {
        let text = grid(axes, len);
        let t = std::time::Instant::now();
        let (r, big) = largest_alloc(|| sweep::expand(&text, Path::new("huge.toml"), false));
        let m = r.map(|c| c.len()).expect_err("a grid over MAX_CELLS was planned").to_string();
        prop_assert!(m.contains(&format!("more than {}", sweep::MAX_CELLS)), "{}", m);
        prop_assert!(big <= alloc_budget(text.len(), 16), "allocated {} bytes at once", big);
        prop_assert!(t.elapsed().as_secs_f64() < 1.0);
    }
}

#[test]
fn sweep_known_nasty_cases() {
    for t in [
        "",
        "[zip]",
        "zip = 1",
        "zip = [1, 2]",
        "[zip]\nseed = []",
        "[zip]\nseed = [1, 2]\nthreads = [1]",
        "[zip]\nseed = 3",
        "seed = []",
        "rho = []",
        "rho = [[]]",
        "rho = [0.5, [1.0]]",
        "seed = [1, \"x\"]",
        "[model]\ndepth = [0, 1]",
        "[model]\narch = [\"fcn\", \"cnn\", \"rnn\"]",
        "bogus = [1, 2]",
        "model = [1, 2]",
    ] {
        check_sweep(t);
    }
    // 64 axes of 2 values: 2^64 cells, a product that overflows usize.
    check_sweep(&grid(64, 2));
    check_sweep(&format!("seed = {}{}", "[".repeat(5000), "]".repeat(5000)));
    check_sweep(&format!("{} = [1, 2]", vec!["model"; 5000].join(".")));
    check_sweep(&format!("[zip.{}]\nx = [1, 2]", vec!["a"; 5000].join(".")));
}

#[test]
fn sweep_dotted_key_beside_a_value_does_not_panic() {
    for t in ["\"model.depth\" = 3\nmodel = 1", "a = 1\n\"a.b\" = 2", "\"seed.x\" = [1, 2]\nseed = 1"] {
        let r = std::panic::catch_unwind(|| sweep::expand(t, Path::new("s.toml"), false));
        let e = r.unwrap_or_else(|_| panic!("sweep::expand panicked on {t:?}")).map(|c| c.len()).unwrap_err().to_string();
        assert!(e.starts_with("config s.toml: "), "{e}");
    }
}

#[test]
fn sweep_too_many_cells_error_names_the_file() {
    let e = sweep::expand(&grid(3, 100), Path::new("big.toml"), false).map(|c| c.len()).unwrap_err().to_string();
    assert!(e.contains("big.toml") && e.contains("more than 100000"), "{e}");
}

#[test]
fn sweep_forced_overflowing_grid_is_an_error() {
    let text = grid(64, 2);
    let r = std::panic::catch_unwind(|| sweep::expand(&text, Path::new("big.toml"), true).map(|c| c.len()));
    let e = r.expect("sweep::expand panicked on a forced 2^64-cell grid").unwrap_err().to_string();
    assert!(e.contains("big.toml") || e.contains("cells"), "{e}");
}
