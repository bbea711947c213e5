//! The downloader against an HTTP server on 127.0.0.1 that serves `shared/data`: a mirror that
//! serves a corrupted file is rejected and the next mirror is tried; `verify` spots tampering.

mod common;

use idcrisis::data::fetch::{self, FileState};
use idcrisis::data::Dataset;
use std::path::PathBuf;
use std::thread;

/// Serves `/good/<path>` from `root`, `/bad/<path>` with one byte flipped, anything else 404.
/// Stops after `max_requests` requests.
fn serve(root: PathBuf, max_requests: usize) -> (String, thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", server.server_addr().to_ip().unwrap());
    let h = thread::spawn(move || {
        for _ in 0..max_requests {
            let Ok(Some(req)) = server.recv_timeout(std::time::Duration::from_secs(60)) else { return };
            let url = req.url().to_string();
            let (kind, rest) = url.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
            let file = root.join(rest);
            let resp = match (kind, std::fs::read(&file)) {
                ("good", Ok(b)) => tiny_http::Response::from_data(b),
                ("bad", Ok(mut b)) => {
                    let mid = b.len() / 2;
                    b[mid] ^= 0xff;
                    tiny_http::Response::from_data(b)
                }
                _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
            };
            let _ = req.respond(resp);
        }
    });
    (addr, h)
}

#[test]
fn corrupted_mirror_is_rejected_and_the_next_one_used() {
    let (addr, _h) = serve(common::data_dir(), 64);
    let dir = common::tempdir("fetch");
    let mirrors = vec![format!("{addr}/bad"), format!("{addr}/missing"), format!("{addr}/good")];
    let log = fetch::fetch(Dataset::Mnist, &dir, &mirrors, &mut |_, _, _| {}).unwrap();
    let text = log.join("\n");
    assert!(text.contains("checksum mismatch"), "{text}");
    assert!(text.contains("404"), "{text}");
    assert_eq!(text.matches("downloaded from").count(), 4, "{text}");
    let report = fetch::verify(&dir, &[Dataset::Mnist]).unwrap();
    assert_eq!(report.len(), 4);
    assert!(report.iter().all(|l| l.state == FileState::Ok), "{report:?}");
    // The downloaded data loads.
    let imgs = idcrisis::data::load_images(&dir, Dataset::Mnist, idcrisis::data::Split::Test).unwrap();
    assert_eq!(imgs.count, 10000);
    // No temporary files left.
    for e in std::fs::read_dir(dir.join("mnist")).unwrap() {
        assert!(!e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
    }
    // A second fetch finds everything present and downloads nothing.
    let log = fetch::fetch(Dataset::Mnist, &dir, &mirrors, &mut |_, _, _| {}).unwrap();
    assert!(log.iter().all(|l| l.contains("present, sha256 ok")), "{log:?}");

    // Tampering is reported by verify.
    let p = dir.join("mnist/t10k-labels-idx1-ubyte.gz");
    let mut b = std::fs::read(&p).unwrap();
    b[100] ^= 1;
    std::fs::write(&p, b).unwrap();
    let report = fetch::verify(&dir, &[Dataset::Mnist]).unwrap();
    assert!(report.iter().any(|l| l.path == p && matches!(l.state, FileState::Mismatch { .. })));
}

#[test]
fn only_bad_mirrors_fail_cleanly_and_leave_nothing() {
    let (addr, _h) = serve(common::data_dir(), 8);
    let dir = common::tempdir("fetch-bad");
    let err = fetch::fetch(Dataset::FashionMnist, &dir, &[format!("{addr}/bad")], &mut |_, _, _| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("could not be fetched from any mirror") && msg.contains("checksum mismatch"), "{msg}");
    let left: Vec<_> = std::fs::read_dir(dir.join("fashion-mnist")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn mirror_overrides_join_the_dataset_name() {
    let m = fetch::mirrors(Dataset::FashionMnist, &["http://127.0.0.1:9/x/".to_string()]);
    assert_eq!(m, vec!["http://127.0.0.1:9/x/fashion-mnist/".to_string()]);
    assert!(fetch::default_mirrors(Dataset::Mnist)[0].contains("ossci-datasets"));
}
