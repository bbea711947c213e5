//! Temporary directories for tests, removed when the test ends, passed or failed (on drop, so also
//! when an assertion unwinds): a test suite run leaves nothing under the temp dir. Shared by the
//! library's and the CLI's integration tests (`#[path]`-included there). Set
//! `IDCRISIS_KEEP_TEST_DIRS=1` to keep them for inspection; each kept path goes to the test's
//! output (shown for a failed test, or with `--nocapture`).
#![allow(dead_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A directory under the system temp dir (`idcrisis-{tag}-XXXXXX`), or a path inside one, that is
/// removed with everything in it when this value is dropped. Derefs to the path.
pub struct TestDir {
    // Removes the directory when dropped (`tempfile::TempDir`); `None` when kept.
    _root: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    /// A fresh, empty directory.
    pub fn new(tag: &str) -> TestDir {
        let root = TestDir::root(tag);
        let path = root.path().to_path_buf();
        TestDir::keep_if_asked(root, path)
    }

    /// `name` inside a fresh directory, not created: for commands that create their output
    /// directory themselves.
    pub fn child(tag: &str, name: &str) -> TestDir {
        let root = TestDir::root(tag);
        let path = root.path().join(name);
        TestDir::keep_if_asked(root, path)
    }

    fn root(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new().prefix(&format!("idcrisis-{tag}-")).tempdir().expect("creating a temp dir")
    }

    fn keep_if_asked(root: tempfile::TempDir, path: PathBuf) -> TestDir {
        if std::env::var_os("IDCRISIS_KEEP_TEST_DIRS").is_some_and(|v| v == "1") {
            eprintln!("keeping test dir {}", root.path().display());
            let _ = root.keep();
            return TestDir { _root: None, path };
        }
        TestDir { _root: Some(root), path }
    }
}

impl Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}
