//! `reproduce protocols`: which training protocol gives the paper's Fig. 3 at both ends?
//!
//! A search over init × optimizer × learning rate at the depths that define Fig. 3's picture, each
//! net classed as identity, blur, constant or unconverged, and each protocol scored against the
//! target picture. The classes, the target and the score were written into
//! `docs/results/protocols.md` before any run; [`class`], [`TARGET`] and [`score`] are that text
//! as code.

use crate::error::Result;
use crate::experiment::config::RunConfig;
use crate::experiment::reproduce::{
    f2, outputs_constant, protocol, Analysis, Claim, Experiment, NetSummary, Scale, Spec, SweepSpec, Verdict, CLEAR,
};
use crate::figures;
use crate::fsutil::write_atomic;
use std::fmt::Write as _;
use std::path::Path;

/// Init schemes searched (`model.init` values).
pub const INITS: [&str; 3] = ["torch-default", "glorot-uniform", "he-normal"];

/// (optimizer, learning rate) pairs searched; momentum is 0.9.
pub const OPTIMIZERS: [(&str, f64); 9] = [
    ("gd", 0.03),
    ("gd", 0.1),
    ("gd", 0.3),
    ("momentum", 0.003),
    ("momentum", 0.01),
    ("momentum", 0.03),
    ("adam", 1e-4),
    ("adam", 3e-4),
    ("adam", 1e-3),
];

/// The protocols taken to full scale after the quick search (init, optimizer, lr): the best
/// three of the first run of `docs/results/protocols-quick` (commit 7f3de26) by the
/// pre-registered ranking (each 5/6 there; every one misses the constant at depth 20). The
/// committed files are its rerun at ccae13f, which ranks torch-default Adam 1e-3 in place of
/// glorot-uniform Adam 1e-3 (`docs/results/protocols.md`); the finalists stay as registered.
pub const FINALISTS: [(&str, &str, f64); 3] =
    [("glorot-uniform", "adam", 1e-4), ("glorot-uniform", "adam", 3e-4), ("glorot-uniform", "adam", 1e-3)];

/// What a trained net outputs on the probes, in the pre-registered classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A seed's training diverged (loss NaN or infinite): matches no target point. Not foreseen
    /// in the pre-registration; treated like a seed that stopped at the step cap, as a run that
    /// did not fit the image.
    Diverged,
    /// A seed stopped at the step cap before the tolerance: matches no target point.
    Unconverged,
    /// Mean corr to identity on the MNIST digit probes ≥ 0.9.
    Identity,
    /// Mean corr to the training image over the 12 probes ≥ 0.9 and above the identity's.
    Constant,
    /// Converged, neither identity nor constant.
    Blur,
}

impl Class {
    /// One letter for tables: `I`, `B`, `C`, `†` or `✗`.
    pub fn letter(self) -> &'static str {
        match self {
            Class::Diverged => "✗",
            Class::Unconverged => "†",
            Class::Identity => "I",
            Class::Constant => "C",
            Class::Blur => "B",
        }
    }
}

/// Mean corr to identity on the MNIST test-digit probes (NaN when the run had none).
fn digits_identity(n: &NetSummary) -> f64 {
    n.per_category.get("mnist").map(|v| v.0).unwrap_or(f64::NAN)
}

/// The pre-registered class of a net.
pub fn class(n: &NetSummary) -> Class {
    if n.diverged > 0 {
        Class::Diverged
    } else if n.unconverged > 0 {
        Class::Unconverged
    } else if digits_identity(n) >= CLEAR {
        Class::Identity
    } else if outputs_constant(n) {
        Class::Constant
    } else {
        Class::Blur
    }
}

/// Fig. 3's picture as (depth, the classes that match there).
pub const TARGET: [(usize, &[Class]); 6] = [
    (5, &[Class::Identity]),
    (7, &[Class::Identity]),
    (9, &[Class::Blur]),
    (12, &[Class::Blur]),
    (16, &[Class::Blur, Class::Constant]),
    (20, &[Class::Constant]),
];

/// Target points matched by one protocol's nets (any depths; a missing depth matches nothing).
pub fn score(nets: &[&NetSummary]) -> usize {
    TARGET.iter().filter(|(d, ok)| nets.iter().find(|n| n.depth == *d).is_some_and(|n| ok.contains(&class(n)))).count()
}

/// A net's protocol with its init, e.g. `glorot-uniform momentum 0.01`.
pub fn full_protocol(c: &RunConfig) -> String {
    let init = serde_json::to_value(c.init.scheme).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    format!("{init} {}", protocol(c))
}

fn sweep(scale: Scale) -> SweepSpec {
    let base = SweepSpec::default()
        .set("model.arch", "cnn")
        .set("model.kernel", if scale == Scale::Micro { 3 } else { 5 })
        .set(
            "model.channels",
            match scale {
                Scale::Micro => 4,
                Scale::Quick => 16,
                Scale::Full => 128,
            },
        )
        .set("train.momentum", 0.9)
        .set("train.tol", 1e-4)
        .set("train.steps", scale.steps(10000) as i64)
        .axis("model.depth", if scale == Scale::Micro { vec![1i64, 2] } else { TARGET.iter().map(|t| t.0 as i64).collect() });
    match scale {
        Scale::Full => base
            .zip("init.scheme", FINALISTS.map(|f| f.0))
            .zip("train.optimizer", FINALISTS.map(|f| f.1))
            .zip("train.lr", FINALISTS.map(|f| f.2)),
        _ => base.axis("init.scheme", INITS).zip("train.optimizer", OPTIMIZERS.map(|o| o.0)).zip("train.lr", OPTIMIZERS.map(|o| o.1)),
    }
}

/// Protocols in order of first appearance, each with its nets by depth.
fn by_protocol(nets: &[NetSummary]) -> Vec<(String, Vec<&NetSummary>)> {
    let mut out: Vec<(String, Vec<&NetSummary>)> = Vec::new();
    for n in nets {
        let p = full_protocol(&n.config);
        match out.iter_mut().find(|o| o.0 == p) {
            Some(o) => o.1.push(n),
            None => out.push((p, vec![n])),
        }
    }
    for o in &mut out {
        o.1.sort_by_key(|n| n.depth);
    }
    out
}

/// Protocols (as [`by_protocol`] groups them) ranked by the pre-registered rule: score, then fewer unconverged nets, then the
/// deepest net's corr to constant. Returns (protocol, score, unconverged or diverged nets,
/// deepest corr).
fn ranking(groups: &[(String, Vec<&NetSummary>)]) -> Vec<(String, usize, usize, f64)> {
    let mut r: Vec<(String, usize, usize, f64)> = groups
        .iter()
        .map(|(p, sub)| {
            let deep = sub.last().map(|n| n.corr_constant.0).unwrap_or(f64::NAN);
            (p.clone(), score(sub), sub.iter().filter(|n| n.unconverged > 0 || n.diverged > 0).count(), deep)
        })
        .collect();
    r.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)).then(b.3.total_cmp(&a.3)));
    r
}

fn depths(nets: &[NetSummary]) -> Vec<usize> {
    let mut d: Vec<usize> = nets.iter().map(|n| n.depth).collect();
    d.sort_unstable();
    d.dedup();
    d
}

fn table(spec: &Spec, nets: &[NetSummary]) -> String {
    let depths = depths(nets);
    let mut s = format!("# {}\n\n", spec.heading);
    s += "ReLU CNNs (5×5, zero padding, biases), trained on the MNIST \"7\" until training MSE < 1e-4. The classes, the target and the score are pre-registered in `docs/results/protocols.md`: **I** identity (mean corr to identity on the MNIST digit probes ≥ 0.9), **C** constant (mean corr to the \"7\" over the 12 probes ≥ 0.9 and above the identity's), **B** blur (converged, neither), **†** a seed stopped at the step cap, **✗** a seed diverged (loss NaN or infinite; not foreseen in the pre-registration, treated like †): both match nothing. Target: I at 5 and 7, B at 9 and 12, B or C at 16, C at 20. Each cell: class, then corr to identity on the digits / corr to constant (12 probes), means over seeds.\n\n";
    s += "| protocol | score |";
    for d in &depths {
        let _ = write!(s, " depth {d} |");
    }
    s += "\n|---|---|";
    s += &"---|".repeat(depths.len());
    s.push('\n');
    let groups = by_protocol(nets);
    for (p, score_, _, _) in ranking(&groups) {
        let sub = &groups.iter().find(|g| g.0 == p).expect("ranked protocol has nets").1;
        let _ = write!(s, "| {p} | {score_}/{} |", TARGET.len());
        for d in &depths {
            match sub.iter().find(|n| n.depth == *d) {
                Some(n) if n.seeds == 0 => s += " ✗ diverged |",
                Some(n) => {
                    let _ = write!(s, " {} {} / {} |", class(n).letter(), f2(digits_identity(n)), f2(n.corr_constant.0));
                }
                None => s += " – |",
            }
        }
        s.push('\n');
    }
    s += "\nRows are ranked by the pre-registered rule: score, then fewer unconverged nets, then the deepest net's corr to constant.\n";
    let mut missed = String::new();
    for (d, ok) in TARGET {
        let reached = groups.iter().any(|(_, sub)| sub.iter().any(|n| n.depth == d && ok.contains(&class(n))));
        if !reached && nets.iter().any(|n| n.depth == d) {
            let _ = write!(missed, " depth {d} ({});", ok.iter().map(|c| c.letter()).collect::<Vec<_>>().join(" or "));
        }
    }
    if !missed.is_empty() {
        let _ = writeln!(s, "\nTarget points no protocol reaches:{}", missed.trim_end_matches(';'));
    }
    s
}

fn claims(nets: &[NetSummary]) -> Vec<Claim> {
    let groups = by_protocol(nets);
    let r = ranking(&groups);
    let Some((best, best_score, _, _)) = r.first() else { return Vec::new() };
    let full = r.iter().filter(|x| x.1 == TARGET.len()).map(|x| format!("`{}`", x.0)).collect::<Vec<_>>();
    let complete = groups.iter().all(|(_, sub)| TARGET.iter().all(|(d, _)| sub.iter().any(|n| n.depth == *d)));
    let verdict = if !full.is_empty() {
        Verdict::Agrees
    } else if complete {
        Verdict::Disagrees
    } else {
        Verdict::Undecided
    };
    let measured = if full.is_empty() {
        format!("no protocol scores {n}/{n}; the best is `{best}` with {best_score}/{n}", n = TARGET.len())
    } else {
        format!("{} score {n}/{n}", full.join(", "), n = TARGET.len())
    };
    vec![Claim::prediction(
        "P1",
        "some protocol of the search gives Fig. 3's picture at all six target points (I at 5 and 7, B at 9 and 12, B or C at 16, C at 20)",
        measured,
        verdict,
    )]
}

fn draw(spec: &Spec, nets: &[NetSummary], out: &Path) -> Result<()> {
    let depths = depths(nets);
    let groups = by_protocol(nets);
    let ranked = ranking(&groups);
    let rows: Vec<String> = ranked.iter().map(|r| format!("{} ({}/{})", r.0, r.1, TARGET.len())).collect();
    let cols: Vec<String> = depths.iter().map(|d| d.to_string()).collect();
    // Per ranked protocol, its net at each depth (if run).
    let cells: Vec<Vec<Option<&NetSummary>>> = ranked
        .iter()
        .map(|r| {
            let sub = &groups.iter().find(|g| g.0 == r.0).expect("ranked protocol has nets").1;
            depths.iter().map(|d| sub.iter().find(|n| n.depth == *d).copied()).collect()
        })
        .collect();
    let unconverged: Vec<Vec<bool>> =
        cells.iter().map(|row| row.iter().map(|n| n.is_some_and(|n| n.unconverged > 0 || n.diverged > 0)).collect()).collect();
    for (name, f) in [("identity", digits_identity as fn(&NetSummary) -> f64), ("constant", |n: &NetSummary| n.corr_constant.0)] {
        let values: Vec<Vec<f64>> = cells.iter().map(|row| row.iter().map(|n| n.map(f).unwrap_or(f64::NAN)).collect()).collect();
        let what = if name == "identity" { "corr to identity, MNIST digits" } else { "corr to constant, 12 probes" };
        let (png, svg) = figures::heatmap_marked(&format!("Protocols by depth: {what}"), &rows, &cols, &values, &unconverged)?;
        write_atomic(&out.join(format!("{}-{name}.png", spec.name)), &png)?;
        write_atomic(&out.join(format!("{}-{name}.svg", spec.name)), svg.as_bytes())?;
    }
    Ok(())
}

/// The experiment.
pub const PROTOCOLS: Spec = Spec {
    exp: Experiment::Protocols,
    name: "protocols",
    about: "which init × optimizer × learning rate gives Fig. 3's picture at both ends (pre-registered in docs/results/protocols.md)",
    heading: "protocols: which training protocol gives the paper's Fig. 3",
    sweep,
    label: |c| format!("{} depth {}", full_protocol(c), c.model.depth),
    predictions: None,
    analysis: Analysis::Nets { figures: draw, table, claims, extra: None },
};

#[cfg(test)]
mod tests {
    use super::*;

    fn net(depth: usize, digits: f64, constant: f64, unconverged: usize) -> NetSummary {
        let mut n = crate::experiment::reproduce::tests::net("cnn", "relu", depth, digits, constant);
        n.per_category.insert("mnist".to_string(), (digits, constant));
        n.unconverged = unconverged;
        n
    }

    #[test]
    fn classes_follow_the_preregistered_rules() {
        assert_eq!(class(&net(5, 0.95, 0.1, 0)), Class::Identity);
        assert_eq!(class(&net(5, 0.95, 0.1, 1)), Class::Unconverged);
        assert_eq!(class(&net(20, 0.2, 0.95, 0)), Class::Constant);
        // ≥ 0.9 to the constant but not above the identity's: not the constant.
        let mut n = net(20, 0.85, 0.9, 0);
        n.corr_identity = (0.95, 0.95, 0.95);
        assert_eq!(class(&n), Class::Blur);
        assert_eq!(class(&net(9, 0.6, 0.5, 0)), Class::Blur);
        let mut n = net(20, f64::NAN, f64::NAN, 0);
        n.diverged = 1;
        assert_eq!(class(&n), Class::Diverged);
    }

    #[test]
    fn the_figure_3_picture_scores_six_and_each_miss_costs_one() {
        let good = [
            net(5, 0.95, 0.1, 0),
            net(7, 0.92, 0.2, 0),
            net(9, 0.7, 0.4, 0),
            net(12, 0.5, 0.6, 0),
            net(16, 0.3, 0.93, 0),
            net(20, 0.1, 0.99, 0),
        ];
        let refs: Vec<&NetSummary> = good.iter().collect();
        assert_eq!(score(&refs), 6);
        // Identity at 9 (too far), unconverged at 20, and a missing depth 12.
        let bad = [net(5, 0.95, 0.1, 0), net(7, 0.92, 0.2, 0), net(9, 0.95, 0.1, 0), net(16, 0.6, 0.5, 0), net(20, 0.1, 0.99, 1)];
        let refs: Vec<&NetSummary> = bad.iter().collect();
        assert_eq!(score(&refs), 3);
    }

    #[test]
    fn every_searched_protocol_runs_at_every_target_depth() {
        let cells = crate::experiment::sweep::expand(
            &crate::experiment::reproduce::sweep_toml(Experiment::Protocols, Scale::Quick, 1),
            Path::new("protocols.sweep.toml"),
            false,
        )
        .unwrap();
        assert_eq!(cells.len(), INITS.len() * OPTIMIZERS.len() * TARGET.len());
        let seen: std::collections::BTreeSet<String> = cells.iter().map(|c| PROTOCOLS.label.to_owned()(&c.config)).collect();
        assert_eq!(seen.len(), cells.len(), "every cell is its own net");
        assert!(cells.iter().all(|c| c.config.model.channels == 16 && c.config.train.momentum == 0.9));
    }
}
