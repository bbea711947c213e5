//! `idcrisis reproduce`: micro runs write every promised file, figures have the right size, and
//! summary.md names every claim.

use std::path::PathBuf;
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    std::env::var_os("IDCRISIS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idcrisis")).args(args).env("IDCRISIS_DATA", data_dir()).output().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("idcrisis-reproduce-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn fcn_quick_writes_figure_table_and_summary() {
    let d = tempdir("fcn");
    let o = run(&["reproduce", "fcn", "--quick", "--out", d.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read_to_string(d.join("summary.md")).unwrap();
    for claim in ["FCN 1-layer linear", "FCN 6-layer ReLU", "do not learn the identity", "grows with depth"] {
        assert!(summary.contains(claim), "summary.md lacks {claim:?}:\n{summary}");
    }
    let png = image::open(d.join("fcn-predictions.png")).unwrap();
    // Inputs + 5 nets; training image + 12 probes + 3 random-ρ probes.
    let (w, h) = idcrisis::figures::grid_size(6, 16, true);
    assert_eq!((png.width(), png.height()), (w, h));
    let csv = std::fs::read_to_string(d.join("fcn.csv")).unwrap();
    assert!(csv.lines().count() > 5 * 5, "{csv}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("fcn.json")).unwrap()).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 5);
    // Running again finds everything done and only re-analyzes.
    let o = run(&["reproduce", "fcn", "--quick", "--out", d.to_str().unwrap(), "-q"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 cells to run (5 already done)"), "{}", String::from_utf8_lossy(&o.stderr));
    // Other settings into the same directory are refused.
    let o = run(&["reproduce", "fcn", "--out", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn plan_only_writes_a_slurm_array_and_runs_nothing() {
    let d = tempdir("plan");
    let o = run(&["reproduce", "cnn-depth", "--plan-only", "--seeds", "3", "--out", d.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sb = std::fs::read_to_string(d.join("sweep/slurm.sbatch")).unwrap();
    assert!(sb.contains("#SBATCH --array=0-38%"), "13 depths × 3 seeds: {sb}");
    assert_eq!(std::fs::read_dir(d.join("sweep/cells")).unwrap().count(), 0);
    let o = run(&["reproduce", "resnet-9000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--experiment"));
}
