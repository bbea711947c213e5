//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "../../../idcrisis/tests/common/testdir.rs"]
mod testdir;
pub use testdir::TestDir;

/// `$IDCRISIS_DATA`, else `shared/data` beside the repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("IDCRISIS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The `idcrisis` binary with `IDCRISIS_DATA` set.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_idcrisis"));
    c.env("IDCRISIS_DATA", data_dir());
    c
}

/// Run `idcrisis ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// A path under the temp dir unique to this test and `tag`, not created (the command under test
/// creates it); removed, with its parent, when the returned value is dropped.
pub fn fresh(prefix: &str, tag: &str) -> TestDir {
    TestDir::child(&format!("{prefix}-{tag}"), "out")
}

/// A fresh empty temporary directory, removed when the returned value is dropped.
pub fn tempdir(prefix: &str, tag: &str) -> TestDir {
    TestDir::new(&format!("{prefix}-{tag}"))
}
