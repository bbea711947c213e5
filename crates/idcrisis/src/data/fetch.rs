//! Download data sets from their canonical mirrors, verify SHA-256, write atomically.
//!
//! Mirrors are tried in order; a file whose checksum does not match is discarded and the next
//! mirror is tried. The mirror list can be replaced (`--mirror`, or `IDCRISIS_MIRRORS` as a
//! comma-separated list of base URLs), which is how the tests point the downloader at a local
//! HTTP server.

use super::{cifar, Dataset, Split};
use crate::error::{Error, Result};
use crate::fsutil;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable that replaces the mirror list (comma-separated base URLs).
pub const MIRRORS_ENV: &str = "IDCRISIS_MIRRORS";

/// A file to download, with the checksum it must have.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// File name on every mirror and on disk.
    pub name: &'static str,
    /// Expected SHA-256 (TFDS / Keras values, see shared/data/DOWNLOADS.md).
    pub sha256: &'static str,
    /// Expected size in bytes.
    pub bytes: u64,
}

const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        bytes: 9912422,
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        bytes: 28881,
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        bytes: 1648877,
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        bytes: 4542,
    },
];

const FASHION_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        bytes: 26421880,
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        bytes: 29515,
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        bytes: 4422102,
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        bytes: 5148,
    },
];

const CIFAR_FILES: [RemoteFile; 1] = [RemoteFile {
    name: "cifar-10-binary.tar.gz",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    bytes: 170052171,
}];

/// The files of a data set.
pub fn remote_files(d: Dataset) -> &'static [RemoteFile] {
    match d {
        Dataset::Mnist => &MNIST_FILES,
        Dataset::FashionMnist => &FASHION_FILES,
        Dataset::Cifar10 => &CIFAR_FILES,
    }
}

/// How to get going when no mirror answers: another mirror, or files already on disk.
pub fn fix_hint(d: Dataset, data_dir: &Path) -> String {
    format!(
        "To fix: check the network (or its proxy: HTTPS_PROXY), or name another mirror with \
         `idcrisis data fetch {d} --mirror URL` (files are fetched from URL/<file>), or copy the files \
         into DIR/{d}/ on a machine that has them and point `--data-dir DIR` or `{}=DIR` at it \
         (now: {}).",
        super::DATA_ENV,
        data_dir.display()
    )
}

/// Canonical mirrors (base URLs), in the order they are tried: torchvision's first.
pub fn default_mirrors(d: Dataset) -> &'static [&'static str] {
    match d {
        Dataset::Mnist => &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        Dataset::FashionMnist => &[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ],
        Dataset::Cifar10 => &["https://www.cs.toronto.edu/~kriz/"],
    }
}

/// Mirrors to use: `overrides` if non-empty, else `$IDCRISIS_MIRRORS`, else the defaults.
/// Override base URLs are joined with the data set's name (`BASE/mnist/FILE`), so one local
/// server can serve a copy of a whole data directory.
pub fn mirrors(d: Dataset, overrides: &[String]) -> Vec<String> {
    let from_env: Vec<String> = std::env::var(MIRRORS_ENV)
        .ok()
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let chosen = if !overrides.is_empty() { overrides.to_vec() } else { from_env };
    if chosen.is_empty() {
        default_mirrors(d).iter().map(|s| s.to_string()).collect()
    } else {
        chosen.iter().map(|b| format!("{}/{}/", b.trim_end_matches('/'), d.name())).collect()
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Progress callback: `(file, bytes so far, total bytes)`.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// Download `url` to `dest` (via a temp file), requiring `want.sha256`. On mismatch nothing is
/// written and the error says so.
pub fn download_verified(url: &str, dest: &Path, want: &RemoteFile, progress: Progress) -> Result<()> {
    download_with_timeout(url, dest, want, progress, READ_TIMEOUT)
}

/// Seconds a download may wait for its next bytes before it is abandoned.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// [`download_verified`] with another per-read timeout (tests use a short one for a stalled
/// server).
pub fn download_with_timeout(url: &str, dest: &Path, want: &RemoteFile, progress: Progress, read_timeout: Duration) -> Result<()> {
    // 15 s to connect, `read_timeout` per socket read (restarted on every read, so a slow but
    // live download of CIFAR-10 is not cut off); 4xx/5xx are errors ("http status: 404").
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_connect(Some(Duration::from_secs(15))).timeout_per_read(Some(read_timeout)).build().into();
    let resp = agent.get(url).call().map_err(|e| Error::Download(format!("{url}: {e}")))?;
    // No body limit here (ureq's convenience readers cap at 10 MB): the loop below enforces one.
    let mut reader = resp.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let limit = want.bytes + want.bytes / 10 + 1024;
    let tmp = fsutil::temp_path(dest);
    let result = (|| -> Result<()> {
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut out = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| Error::Download(format!("{url}: {e}")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limit {
                return Err(Error::Download(format!("{url}: more than {limit} bytes, expected {}", want.bytes)));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| Error::io(dest, e))?;
            progress(want.name, total, want.bytes);
        }
        out.sync_all().map_err(|e| Error::io(dest, e))?;
        let got = hex::encode(hasher.finalize());
        if got != want.sha256 {
            return Err(Error::Download(format!("{url}: checksum mismatch (sha256 {got}, expected {}); file rejected", want.sha256)));
        }
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Fetch every file of `d` into `dir/<name>/`, skipping files already present with the right
/// checksum. For CIFAR-10 the binary batches are then extracted. Returns log lines.
pub fn fetch(d: Dataset, dir: &Path, overrides: &[String], progress: Progress) -> Result<Vec<String>> {
    let target = dir.join(d.name());
    let mut log = Vec::new();
    for f in remote_files(d) {
        let dest = target.join(f.name);
        if dest.is_file() && sha256_file(&dest)? == f.sha256 {
            log.push(format!("{}: present, sha256 ok", dest.display()));
            continue;
        }
        let mut failures = Vec::new();
        let mut done = false;
        for base in mirrors(d, overrides) {
            let url = format!("{base}{}", f.name);
            match download_verified(&url, &dest, f, progress) {
                Ok(()) => {
                    log.push(format!("{}: downloaded from {url}, sha256 ok", dest.display()));
                    done = true;
                    break;
                }
                Err(e) => {
                    log.push(format!("{e}; trying the next mirror"));
                    failures.push(e.to_string());
                }
            }
        }
        if !done {
            return Err(Error::Download(format!(
                "{} could not be fetched from any mirror:\n  {}\n{}",
                f.name,
                failures.join("\n  "),
                fix_hint(d, dir)
            )));
        }
    }
    if d == Dataset::Cifar10 {
        extract_cifar(&target.join(CIFAR_FILES[0].name), &target)?;
        log.push(format!("extracted binary batches into {}", target.join("cifar-10-batches-bin").display()));
    }
    Ok(log)
}

/// Download-on-first-use: fetch each of `datasets` whose files are not all present under `dir`
/// (present files are not re-hashed here; `idcrisis data verify` does that). Returns log lines.
pub fn ensure(dir: &Path, datasets: &[Dataset], progress: Progress) -> Result<Vec<String>> {
    let mut log = Vec::new();
    for &d in datasets {
        let present = remote_files(d).iter().all(|f| dir.join(d.name()).join(f.name).is_file());
        if !present {
            log.push(format!("{d} not found in {}: downloading it (first use)", dir.display()));
            log.extend(fetch(d, dir, &[], progress)?);
        }
    }
    Ok(log)
}

/// Extract `cifar-10-batches-bin/*.bin` from the binary tarball into `target`, atomically.
pub fn extract_cifar(tarball: &Path, target: &Path) -> Result<()> {
    let f = std::fs::File::open(tarball).map_err(|e| Error::io(tarball, e))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = ar.entries().map_err(|e| Error::bad_data(tarball, e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::bad_data(tarball, e.to_string()))?;
        let path = entry.path().map_err(|e| Error::bad_data(tarball, e.to_string()))?.into_owned();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".bin") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| Error::bad_data(tarball, e.to_string()))?;
            cifar::parse_batch(&bytes).map_err(|m| Error::bad_data(tarball, format!("{name}: {m}")))?;
            fsutil::write_atomic(&target.join("cifar-10-batches-bin").join(&name), &bytes)?;
        }
    }
    Ok(())
}

/// State of one file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present with the expected checksum.
    Ok,
    /// Not present.
    Missing,
    /// Present with another checksum.
    Mismatch {
        /// Its SHA-256.
        actual: String,
    },
}

/// One line of a verification report.
#[derive(Debug, Clone)]
pub struct VerifyLine {
    /// Data set.
    pub dataset: Dataset,
    /// Path checked.
    pub path: PathBuf,
    /// Result.
    pub state: FileState,
}

/// Check every known file under `dir` (CIFAR-10: the tarball if kept, else the batches' sizes).
pub fn verify(dir: &Path, datasets: &[Dataset]) -> Result<Vec<VerifyLine>> {
    let mut out = Vec::new();
    for &d in datasets {
        for f in remote_files(d) {
            let path = dir.join(d.name()).join(f.name);
            let state = if !path.is_file() {
                if d == Dataset::Cifar10 && cifar::batch_files(dir, Split::Test).iter().all(|p| p.is_file()) {
                    continue; // batches extracted and tarball removed: checked below
                }
                FileState::Missing
            } else {
                let actual = sha256_file(&path)?;
                if actual == f.sha256 {
                    FileState::Ok
                } else {
                    FileState::Mismatch { actual }
                }
            };
            out.push(VerifyLine { dataset: d, path, state });
        }
        if d == Dataset::Cifar10 {
            for split in [Split::Train, Split::Test] {
                for p in cifar::batch_files(dir, split) {
                    let state = match std::fs::metadata(&p) {
                        Err(_) => FileState::Missing,
                        Ok(m) if m.len() == 10000 * cifar::RECORD as u64 => FileState::Ok,
                        Ok(m) => FileState::Mismatch { actual: format!("{} bytes, expected {}", m.len(), 10000 * cifar::RECORD) },
                    };
                    out.push(VerifyLine { dataset: d, path: p, state });
                }
            }
        }
    }
    Ok(out)
}
