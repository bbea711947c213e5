//! `idcrisis probe --iterate`: the attractor analysis of a finished run.

mod common;

use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn probe_iterate_writes_the_attractor_report_of_a_run() {
    let dir = common::fresh("attractors", "run");
    let out = dir.join("run");
    let o = common::run(&[
        "train",
        "--depth",
        "2",
        "--channels",
        "4",
        "--kernel",
        "3",
        "--steps",
        "20",
        "-q",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = common::run(&["probe", out.to_str().unwrap(), "--iterate", "50", "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("spectral radius") && stdout.contains("train-0+noise-0.05"), "{stdout}");
    for f in ["attractors.json", "attractors.csv", "trajectories.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("attractors.json")).unwrap()).unwrap();
    assert_eq!(r["options"]["max_steps"], 50);
    // The file reads back as the library's report (what `reproduce attractors` will load).
    let report: idcrisis::eval::attractor::Report = serde_json::from_slice(&std::fs::read(out.join("attractors.json")).unwrap()).unwrap();
    assert_eq!(report.jacobians.len(), 1);
    let starts = r["starts"].as_array().unwrap();
    // The paper's probes, the training image and three noisy copies, uniform noise and a blank.
    assert!(starts.len() > 6, "{}", starts.len());
    let names = ["train-0", "train-0+noise-0.05", "train-0+noise-0.20", "train-0+noise-0.50", "uniform", "blank"];
    let tail: Vec<&str> = starts[starts.len() - 6..].iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(tail, names);
    // The training image's own row is classified, as every row: a class and its steps.
    let own = &starts[starts.len() - 6];
    assert!(own["class"]["kind"].is_string() && own["steps"].as_u64().unwrap() >= 1, "{own}");
    let kinds = ["training-image", "other-fixed-point", "cycle", "diverging", "undecided"];
    for s in starts {
        let kind = s["class"]["kind"].as_str().unwrap();
        assert!(kinds.contains(&kind), "{s}");
        let steps = s["steps"].as_u64().unwrap();
        assert!((1..=50).contains(&steps), "{s}");
        // Only an undecided start uses the whole budget without a verdict.
        assert!(kind != "undecided" || steps == 50, "{s}");
    }
    let f = &r["summary"]["fractions"];
    let total: f64 = kinds.iter().map(|k| f[k].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-12, "{f}");
    // The Jacobian at the training image: 784×784 for MNIST.
    let j = &r["jacobians"][0];
    assert_eq!(j["dim"], 784);
    // The exact Jacobian: no difference step, and its tied ReLUs counted.
    assert!(j["fd_step"].is_null() && j["tied_relus"].is_u64(), "{j}");
    assert!(
        j["spectral_radius"].as_f64().unwrap() >= 0.0
            && j["spectral_norm"].as_f64().unwrap() >= j["spectral_radius"].as_f64().unwrap() - 1e-6,
        "{j}"
    );
    assert!(j["fixed_point_residual"].as_f64().unwrap().is_finite() && j["attractor"].is_boolean(), "{j}");
    let csv = std::fs::read_to_string(out.join("attractors.csv")).unwrap();
    assert_eq!(csv.lines().count(), starts.len() + 1);
    assert!(csv.starts_with("start,class,"), "{csv}");
    let png = std::fs::read(out.join("trajectories.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn iterate_zero_is_a_usage_error_naming_the_flag() {
    let o = common::run(&["probe", "/nonexistent/run", "--iterate", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--iterate"), "{}", stderr(&o));
}
