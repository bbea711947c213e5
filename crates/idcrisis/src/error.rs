//! One error type for the library. Every variant names the thing that was wrong.

use std::path::PathBuf;

/// Errors raised by idcrisis. Messages are meant to be shown to a user as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range; `key` is the flag / config key, e.g. `kernel`.
    #[error("invalid value for --{key}: {msg}")]
    InvalidValue { key: String, msg: String },
    /// A configuration file could not be parsed (unknown key, wrong type, bad TOML).
    #[error("config {path}: {msg}")]
    Config { path: PathBuf, msg: String },
    /// A data file is malformed (bad magic, truncated, absurd header).
    #[error("{path}: {msg}")]
    BadData { path: PathBuf, msg: String },
    /// A data set is not on disk.
    #[error("{what} not found at {path}\n  fix: run `idcrisis data fetch {dataset}` or point --data-dir / IDCRISIS_DATA at a directory that has it")]
    MissingData { what: String, dataset: String, path: PathBuf },
    /// A download or checksum problem.
    #[error("download: {0}")]
    Download(String),
    /// A checksum mismatch on a file on disk.
    #[error("{path}: checksum mismatch: expected sha256 {expected}, got {actual}")]
    Checksum { path: PathBuf, expected: String, actual: String },
    /// Weights file problems (missing tensor, wrong shape).
    #[error("weights {path}: {msg}")]
    Weights { path: PathBuf, msg: String },
    /// I/O with the path that failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Training was stopped by its caller (the progress callback returned `false`, e.g. on
    /// Ctrl-C) after `step` updates; `execute` leaves no files of the run behind.
    #[error("training interrupted after {step} steps; no run directory was kept")]
    Interrupted { step: u64 },
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

/// Result alias for idcrisis.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidValue`].
    pub fn invalid(key: &str, msg: impl Into<String>) -> Self {
        Error::InvalidValue { key: key.to_string(), msg: msg.into() }
    }
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    /// Shorthand for [`Error::BadData`].
    pub fn bad_data(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::BadData { path: path.into(), msg: msg.into() }
    }
}
