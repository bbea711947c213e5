//! `idcrisis theory fcn1|cnn1|ntk` write their figures and CSVs, and reject bad values.

mod common;

use common::run;
use std::process::Output;

fn tempdir(tag: &str) -> common::TestDir {
    common::fresh("theory", tag)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn fcn1_and_cnn1_write_figures_and_tables() {
    let d = tempdir("fcn1");
    let s = ok(&run(&["theory", "fcn1", "--out", d.to_str().unwrap(), "--threads", "2", "--rho", "0"]));
    assert!(s.contains("max relative difference"), "{s}");
    for f in ["fcn1.json", "fcn1.csv", "fcn1.png"] {
        assert!(d.join(f).is_file(), "{f}");
    }
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("fcn1.json")).unwrap()).unwrap();
    assert!(j["weights_max_rel_diff"].as_f64().unwrap() < 1e-10);
    assert_eq!(std::fs::read_to_string(d.join("fcn1.csv")).unwrap().lines().count(), 1 + 13);

    let d = tempdir("cnn1");
    let s = ok(&run(&["theory", "cnn1", "--kernels", "1,3,5", "--steps", "2000", "--out", d.to_str().unwrap(), "--threads", "2"]));
    assert!(s.contains("nullity"), "{s}");
    let csv = std::fs::read_to_string(d.join("cnn1.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.lines().nth(2).unwrap().starts_with("3,9,0,"), "{csv}");
    for f in ["cnn1.png", "cnn1.svg", "cnn1.json"] {
        assert!(d.join(f).is_file(), "{f}");
    }
    let o = run(&["theory", "cnn1", "--kernels", "4"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--kernels"));
}

#[test]
fn ntk_writes_predictions_heatmap_and_comparison() {
    let d = tempdir("ntk");
    let s = ok(&run(&[
        "theory",
        "ntk",
        "--arch",
        "cnn",
        "--depth",
        "2",
        "--kernel",
        "3",
        "--heatmap",
        "2",
        "--compare",
        "8,32",
        "--compare-steps",
        "20",
        "--compare-seeds",
        "1",
        "--out",
        d.to_str().unwrap(),
        "--threads",
        "2",
    ]));
    assert!(s.contains("NTK mean corr to identity"), "{s}");
    for f in
        ["ntk.json", "ntk.csv", "ntk.png", "ntk-heatmap.png", "ntk-heatmap.svg", "ntk-heatmap.csv", "ntk-compare.csv", "ntk-compare.png"]
    {
        assert!(d.join(f).is_file(), "{f}");
    }
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("ntk.json")).unwrap()).unwrap();
    // A shallow wide CNN is close to the identity; the FCN row of the heat map is not.
    assert!(j["paper_mean"]["ntk_corr_identity"].as_f64().unwrap() > 0.9, "{}", j["paper_mean"]);
    let heat = std::fs::read_to_string(d.join("ntk-heatmap.csv")).unwrap();
    let fcn1: f64 = heat.lines().nth(1).unwrap().split(',').nth(2).unwrap().parse().unwrap();
    assert!(fcn1 < 0.5, "{heat}");
    let o = run(&["theory", "ntk", "--kernel", "4"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--kernel"));
}
