//! The downloader against a misbehaving server on 127.0.0.1: a short body, an oversize body and a
//! server that stalls mid-download each end in a clear error, within a bounded time, and leave
//! no file behind.

use idcrisis::data::fetch::{self, RemoteFile};
use idcrisis::data::Dataset;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[path = "common/testdir.rs"]
mod testdir;
use testdir::TestDir;

/// Serve one request: headers claiming `claimed` bytes, then `body`, then wait `stall` before
/// closing.
fn serve_once(claimed: u64, body: Vec<u8>, stall: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/file", l.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n");
            let _ = s.write_all(&body);
            let _ = s.flush();
            std::thread::sleep(stall);
        }
    });
    url
}

fn want() -> &'static RemoteFile {
    // The smallest MNIST file: t10k labels, 4542 bytes.
    fetch::remote_files(Dataset::Mnist).iter().min_by_key(|f| f.bytes).unwrap()
}

fn tempdir(tag: &str) -> TestDir {
    TestDir::new(&format!("faults-{tag}"))
}

fn nothing_left(dir: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn a_short_body_is_an_error() {
    let w = want();
    let dir = tempdir("short");
    let url = serve_once(w.bytes, vec![7u8; (w.bytes / 2) as usize], Duration::ZERO);
    let e = fetch::download_with_timeout(&url, &dir.join(w.name), w, &mut |_, _, _| {}, Duration::from_secs(5)).unwrap_err().to_string();
    assert!(e.contains(&url), "{e}");
    nothing_left(&dir);
}

#[test]
fn an_oversize_body_is_cut_off() {
    let w = want();
    let dir = tempdir("oversize");
    let n = w.bytes * 3;
    let url = serve_once(n, vec![1u8; n as usize], Duration::ZERO);
    let e = fetch::download_with_timeout(&url, &dir.join(w.name), w, &mut |_, _, _| {}, Duration::from_secs(5)).unwrap_err().to_string();
    assert!(e.contains("more than") && e.contains(&format!("expected {}", w.bytes)), "{e}");
    nothing_left(&dir);
}

#[test]
fn a_stalled_server_times_out() {
    let w = want();
    let dir = tempdir("stall");
    let url = serve_once(w.bytes, vec![3u8; 1000], Duration::from_secs(20));
    let t = Instant::now();
    let e = fetch::download_with_timeout(&url, &dir.join(w.name), w, &mut |_, _, _| {}, Duration::from_secs(1)).unwrap_err().to_string();
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(8), "the download waited {waited:?} on a stalled server");
    assert!(e.contains(&url), "{e}");
    nothing_left(&dir);
}
