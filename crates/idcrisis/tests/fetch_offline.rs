//! First use without a network: the download error ends with how to fix it.

mod common;

use idcrisis::data::{fetch, Dataset};

#[test]
fn no_mirror_answering_ends_with_the_fixes() {
    let dir = common::tempdir("offline");
    // A port nothing listens on: the connection is refused at once.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    drop(l);
    let e = fetch::fetch(Dataset::Mnist, &dir, std::slice::from_ref(&url), &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(e.contains(&url), "names the mirror it tried: {e}");
    let hint = e.lines().last().unwrap();
    for want in ["--mirror", "--data-dir", "IDCRISIS_DATA", "idcrisis data fetch mnist"] {
        assert!(hint.contains(want), "the last line lacks {want}: {e}");
    }
    assert!(
        !dir.join("mnist").read_dir().map(|mut d| d.any(|f| f.unwrap().path().extension().is_some_and(|x| x == "gz"))).unwrap_or(false),
        "nothing written"
    );
}
