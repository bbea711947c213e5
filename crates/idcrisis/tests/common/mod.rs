//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

#[path = "testdir.rs"]
mod testdir;
pub use testdir::TestDir;

/// The data directory the tests use: `$IDCRISIS_DATA`, else `shared/data` beside the repo.
pub fn data_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("IDCRISIS_DATA").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(p.is_dir(), "test data not found: set IDCRISIS_DATA to a directory with mnist/ and fashion-mnist/ (e.g. ../shared/data)");
    p
}

/// The paper's training image, MNIST train #15 (a "7"), in [0, 1].
pub fn seven() -> Vec<f32> {
    idcrisis::data::load_image(&data_dir(), &idcrisis::data::ImageSpec::default(), None).expect("MNIST train #15").1
}

/// A fresh empty temporary directory, removed when the returned value is dropped.
pub fn tempdir(tag: &str) -> TestDir {
    TestDir::new(&format!("test-{tag}"))
}
