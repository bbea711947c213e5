//! `idcrisis reproduce`: micro runs write every promised file, figures have the right size, and
//! summary.md names every claim with a computed verdict.

mod common;

use common::run;
use std::path::PathBuf;

fn tempdir(tag: &str) -> common::TestDir {
    common::fresh("reproduce", tag)
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
    assert!(!summary.contains("Collapsed in training"), "no net collapsed:\n{summary}");
    assert!(j.as_array().unwrap().iter().all(|n| n["collapsed"] == 0));
    // One cell's result rewritten as a collapsed FCN's: stopped at the step cap, one output (its
    // bias image) for every input, so the same MSE to the "7" on every probe. Re-analysis must
    // flag that net, and only it.
    let cells = d.join("sweep/cells");
    let mut results: Vec<PathBuf> =
        std::fs::read_dir(&cells).unwrap().flatten().map(|e| e.path().join("result.json")).filter(|p| p.is_file()).collect();
    results.sort();
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&results[0]).unwrap()).unwrap();
    let label = {
        let m = &r["config"]["model"];
        format!("FCN {}-layer {}", m["depth"], if m["act"] == "relu" { "ReLU" } else { "linear" })
    };
    r["status"] = "max-steps".into();
    for p in r["evaluation"]["probes"].as_array_mut().unwrap() {
        p["mse_constant"] = 0.0625.into();
    }
    std::fs::write(&results[0], serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    // Running again finds everything done and only re-analyzes.
    let o = run(&["reproduce", "fcn", "--quick", "--out", d.to_str().unwrap(), "-q"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 cells to run (5 already done)"), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read_to_string(d.join("summary.md")).unwrap();
    let note = summary.lines().find(|l| l.contains("Collapsed in training")).unwrap_or_else(|| panic!("no collapse note:\n{summary}"));
    assert!(note.contains(&format!("{label} (1 of 1 seeds)")), "{label}: {note}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("fcn.json")).unwrap()).unwrap();
    let flagged: Vec<&str> = j.as_array().unwrap().iter().filter(|n| n["collapsed"] == 1).map(|n| n["label"].as_str().unwrap()).collect();
    assert_eq!(flagged, [label.as_str()]);
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
    assert!(sb.contains("#SBATCH --array=0-77%"), "13 depths × 3 seeds × 2 protocols: {sb}");
    assert_eq!(std::fs::read_dir(d.join("sweep/cells")).unwrap().count(), 0);
    let o = run(&["reproduce", "resnet-9000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--experiment"));
}

#[test]
fn every_experiment_micro_run_and_the_report() {
    let d = tempdir("all");
    let o = run(&["reproduce", "all", "--micro", "--out", d.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Promised files per experiment, and a claim each summary must name.
    let promised: [(&str, &[&str], &str); 12] = [
        ("protocols", &["protocols-identity.png", "protocols-constant.svg", "protocols.csv", "protocols.json"], "Prediction P1"),
        (
            "boundary",
            &["boundary-padding.png", "boundary-canvas.svg", "boundary-coords.png", "boundary-reach.csv", "boundary.csv"],
            "Prediction B4",
        ),
        ("k-examples", &["k-examples-cnn.png", "k-examples.csv", "k-examples.json"], "Prediction K2"),
        ("attractors", &["attractors.csv", "attractors-table.csv", "attractors-trajectories.png"], "Prediction A1"),
        ("resnet", &["resnet-corr.png", "resnet-corr.svg", "resnet-predictions.png", "resnet.csv"], "even with skips"),
        ("fcn-60k", &["fcn-60k-predictions.png", "fcn-60k.csv", "fcn-60k.json"], "even from 60k examples"),
        ("fcn", &["fcn-predictions.png", "fcn.csv", "fcn.json"], "6-layer ReLU"),
        ("cnn-depth", &["cnn-depth-predictions.png", "cnn-depth-corr.png", "cnn-depth-corr.svg", "cnn-depth.csv"], "transition depth"),
        ("hidden", &["hidden-untrained-d3.png", "hidden-d2.png", "hidden-d3.png", "hidden.csv"], "inward from the image borders"),
        ("linear", &["linear-corr.png", "linear-corr.svg", "linear-predictions.png", "linear.csv"], "linear FCNs output the constant"),
        ("kernels", &["kernels-corr-identity.png", "kernels-corr-constant.svg", "kernels-grid.csv"], "larger kernels"),
        ("channels", &["channels-corr-identity.png", "channels-corr-constant.png", "channels-grid.csv"], "1024-channel"),
    ];
    for (exp, files, claim) in promised {
        let e = d.join(exp);
        for f in files {
            assert!(e.join(f).is_file(), "{exp}: {f} missing");
            if f.ends_with(".png") {
                image::open(e.join(f)).unwrap_or_else(|err| panic!("{exp}/{f}: {err}"));
            }
            if f.ends_with(".csv") {
                let text = std::fs::read_to_string(e.join(f)).unwrap();
                let cols = text.lines().next().unwrap().split(',').count();
                assert!(text.lines().skip(1).all(|l| l.split(',').count() == cols), "{exp}/{f}: ragged CSV");
            }
        }
        let summary = std::fs::read_to_string(e.join("summary.md")).unwrap();
        assert!(summary.contains(claim), "{exp}: summary.md lacks {claim:?}");
        // Every claim line ends with a verdict computed from the numbers; the new experiments'
        // lines quote their pre-registered predictions.
        let claims: Vec<&str> =
            summary.lines().filter(|l| l.starts_with("- ") && (l.contains("Paper: ") || l.contains("Prediction "))).collect();
        assert!(!claims.is_empty(), "{exp}: no claims:\n{summary}");
        for l in claims {
            let words: &[&str] = if l.contains("Prediction ") {
                &["supports", "contradicts", "mixed", "undecided"]
            } else {
                &["agrees", "disagrees", "undecided"]
            };
            assert!(words.iter().any(|w| l.ends_with(&format!(" → {w}"))), "{exp}: no verdict: {l}");
        }
        if ["boundary", "k-examples", "attractors"].contains(&exp) {
            assert!(summary.contains("docs/preregistration.md"), "{exp}: the summary does not quote the pre-registration");
        }
    }
    // Grid sizes follow rows and columns: hidden d3 has input + 3 layers, training image + 12 probes.
    let h = image::open(d.join("hidden/hidden-d3.png")).unwrap();
    assert_eq!((h.width(), h.height()), idcrisis::figures::grid_size(4, 13, true));
    let k = image::open(d.join("kernels/kernels-corr-identity.png")).unwrap();
    let kj: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("kernels/kernels.json")).unwrap()).unwrap();
    let flagged = kj.as_array().unwrap().iter().any(|n| n["unconverged"].as_u64() > Some(0));
    let title = "Mean corr to identity (12 probes) by kernel and depth";
    assert_eq!((k.width(), k.height()), idcrisis::figures::heatmap_size(title, &["3×3".into(), "5×5".into()], 2, flagged));
    // The report embeds every figure and loads nothing from outside.
    let o = run(&["report", d.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    let pngs: usize = promised
        .iter()
        .map(|(e, _, _)| {
            std::fs::read_dir(d.join(e)).unwrap().flatten().filter(|f| f.path().extension().is_some_and(|x| x == "png")).count()
        })
        .sum();
    assert_eq!(html.matches("<img ").count(), pngs);
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), pngs);
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "no external resources");
    assert!(html.contains("<table>") && html.contains("config: fcn.sweep.toml"));
    // No experiment: a clear error.
    let empty = tempdir("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = run(&["report", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn hidden_maps_can_use_the_channel_mean() {
    let d = tempdir("mean");
    let o = run(&["reproduce", "hidden", "--micro", "--projection", "mean", "--out", d.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(d.join("summary.md")).unwrap().contains("channel mean"));
    let o = run(&["reproduce", "hidden", "--micro", "--projection", "max", "--out", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--projection"));
}

/// Every file under `dir` whose name ends with `suffix`.
fn files_ending(dir: &std::path::Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_ending(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out
}

#[test]
fn redraw_rebuilds_figures_and_summaries_without_weights() {
    let d = tempdir("redraw");
    for exp in ["cnn-depth", "hidden"] {
        let e = d.join(exp);
        let o = run(&["reproduce", exp, "--micro", "--out", e.to_str().unwrap(), "-q"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let summary = std::fs::read_to_string(e.join("summary.md")).unwrap();
        // hidden.csv holds the maps' numbers (from the weights: kept, not redrawn); the per-cell
        // table is hidden-cells.csv.
        let table = if exp == "hidden" { "hidden-cells.csv".to_string() } else { format!("{exp}.csv") };
        let csv = std::fs::read_to_string(e.join(&table)).unwrap();
        // What a results commit keeps: no weights; the figures and summary are deleted too.
        let weights = files_ending(&e, ".safetensors");
        assert!(!weights.is_empty());
        for f in weights.iter().chain(&files_ending(&e, "summary.md")).chain(&files_ending(&e, &table)) {
            std::fs::remove_file(f).unwrap();
        }
        let pngs: Vec<_> =
            std::fs::read_dir(&e).unwrap().flatten().map(|f| f.path()).filter(|p| p.extension().is_some_and(|x| x == "png")).collect();
        for p in &pngs {
            std::fs::remove_file(p).unwrap();
        }
        let o = run(&["reproduce", exp, "--redraw", "--out", e.to_str().unwrap()]);
        assert!(o.status.success(), "{exp}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read_to_string(e.join("summary.md")).unwrap(), summary, "{exp}: summary differs after redraw");
        assert_eq!(std::fs::read_to_string(e.join(&table)).unwrap(), csv, "{exp}: CSV differs after redraw");
        // Figures drawn from the per-cell results come back (hidden's maps need the weights:
        // they are committed as figures and not redrawn).
        if exp == "cnn-depth" {
            for p in &pngs {
                assert!(p.is_file(), "{} not redrawn", p.display());
            }
        }
    }
    // Without the cached weight-derived part, redraw says what to do.
    std::fs::remove_file(d.join("hidden/hidden-extra.json")).unwrap();
    let o = run(&["reproduce", "hidden", "--redraw", "--out", d.join("hidden").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("hidden-extra.json"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_diverged_cell_is_a_failed_net_in_the_summary_not_a_missing_one() {
    let tmp = tempdir("diverged");
    let e = tmp.join("cnn-depth");
    let o = run(&["reproduce", "cnn-depth", "--micro", "--out", e.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = std::fs::read_to_string(e.join("summary.md")).unwrap();
    let rows = |s: &str| s.lines().filter(|l| l.starts_with("| adam") || l.starts_with("| momentum")).count();
    // Turn the first cell into what a diverged run leaves: its result with status `diverged`,
    // `error.json`, no `DONE`.
    let plan = std::fs::read_to_string(e.join("sweep/plan.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(plan.lines().next().unwrap()).unwrap();
    let cell = e.join("sweep/cells").join(first["id"].as_str().unwrap());
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(cell.join("result.json")).unwrap()).unwrap();
    r["status"] = "diverged".into();
    r["evaluation"] = serde_json::Value::Null;
    std::fs::write(cell.join("result.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    std::fs::write(cell.join("error.json"), br#"{"error": "training diverged after 3 steps (loss NaN or infinite)"}"#).unwrap();
    std::fs::remove_file(cell.join("DONE")).unwrap();
    let o = run(&["reproduce", "cnn-depth", "--redraw", "--out", e.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let after = std::fs::read_to_string(e.join("summary.md")).unwrap();
    assert!(after.contains("1 cells diverged"), "{after}");
    assert!(!after.contains("were not done"), "a diverged cell is not a missing one:\n{after}");
    // The net is still listed (micro: one seed, so with NaN correlations), not dropped.
    assert_eq!(rows(&after), rows(&before), "{after}");
    assert!(after.contains("NaN"), "{after}");
    let csv = std::fs::read_to_string(e.join("cnn-depth.csv")).unwrap();
    assert!(csv.lines().any(|l| l.contains(",diverged,")), "{csv}");
}
