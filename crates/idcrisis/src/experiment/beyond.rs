//! Experiments beyond the paper (`boundary`, `k-examples`, `attractors`): their sweeps as data,
//! their tables and figures, and their pre-registered predictions with computed verdicts.
//!
//! The predictions and thresholds are in `docs/preregistration.md`, committed before the full
//! runs; each [`Claim`] here quotes one of them by its id (`B1`, `K2`, …) and says whether the
//! measurement supports it, contradicts it, or is mixed.
//!
//! Every sweep is an explicit list of nets ([`Rows`]: one zipped row per net, the seed as the
//! only grid axis), so that ablations that are not a Cartesian product stay data.

use crate::error::Result;
use crate::eval::attractor;
use crate::experiment::config::RunConfig;
use crate::experiment::hidden::{self, Projection};
use crate::experiment::inputs::Inputs;
use crate::experiment::reproduce::{
    by_depth, depth_point, f2, no_figures, outputs_constant, protocol, protocols, transition, transition_text, write_depth_curves,
    write_depth_curves_y, Analysis, Claim, Experiment, Extra, NetSummary, Scale, Spec, SweepSpec, Verdict,
};
use crate::experiment::run;
use crate::experiment::sweep::{self, CellState};
use crate::figures;
use crate::fsutil::write_atomic;
use crate::nn::model::{Arch, Coords, Net};
use std::fmt::Write as _;

/// Nets as rows: every row sets the same keys; [`Rows::spec`] zips them into one axis.
#[derive(Debug, Default)]
struct Rows {
    keys: Vec<&'static str>,
    rows: Vec<Vec<toml::Value>>,
}

impl Rows {
    fn push(&mut self, row: Vec<(&'static str, toml::Value)>) {
        if self.keys.is_empty() {
            self.keys = row.iter().map(|r| r.0).collect();
        }
        assert_eq!(self.keys, row.iter().map(|r| r.0).collect::<Vec<_>>(), "every row sets the same keys in the same order");
        self.rows.push(row.into_iter().map(|r| r.1).collect());
    }

    fn spec(self, base: SweepSpec) -> SweepSpec {
        let mut s = base;
        for (i, k) in self.keys.iter().enumerate() {
            s = s.zip(k, self.rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>());
        }
        s
    }
}

fn v(x: impl Into<toml::Value>) -> toml::Value {
    x.into()
}

/// The two training protocols of `cnn-depth`: (optimizer, lr).
const PROTOCOLS: [(&str, f64); 2] = [("adam", 3e-4), ("momentum", 0.01)];

fn base(scale: Scale, steps: u64) -> SweepSpec {
    SweepSpec::default().set("train.tol", 1e-4).set("train.momentum", 0.9).set("train.steps", scale.steps(steps) as i64)
}

// ---------------------------------------------------------------------------------------------
// boundary

/// One `boundary` variant: (padding, bias, coords, canvas side, image's top-left on the canvas).
type Variant = (&'static str, bool, &'static str, usize, [usize; 2]);

/// The variants: the paper's net (zero padding, biases, no canvas: a 28 canvas is the image
/// itself) first, then each ablation.
const VARIANTS: [Variant; 13] = [
    ("zero", true, "none", 28, [0, 0]),
    ("zero", false, "none", 28, [0, 0]),
    ("circular", true, "none", 28, [0, 0]),
    ("circular", false, "none", 28, [0, 0]),
    ("reflect", true, "none", 28, [0, 0]),
    ("reflect", false, "none", 28, [0, 0]),
    ("zero", true, "none", 42, [7, 7]),
    ("zero", true, "none", 56, [14, 14]),
    ("zero", true, "none", 56, [0, 0]),
    ("zero", true, "input", 28, [0, 0]),
    ("zero", true, "all", 28, [0, 0]),
    ("circular", true, "input", 28, [0, 0]),
    ("circular", true, "all", 28, [0, 0]),
];

fn boundary_sweep(scale: Scale) -> SweepSpec {
    let (channels, kernel, depths): (i64, i64, &[usize]) = match scale {
        Scale::Micro => (4, 3, &[1, 2]),
        // Four depths, a subset of the seven of the committed `docs/results/boundary-quick`
        // (2, 6, …, 26), so that a quick run takes minutes, not most of an hour (BENCHMARKS.md).
        Scale::Quick => (8, 5, &[2, 10, 18, 26]),
        Scale::Full => (128, 5, &[1, 3, 5, 7, 9, 11, 12, 14, 16, 18, 20, 22, 24, 26, 28]),
    };
    let mut rows = Rows::default();
    for (padding, bias, coords, canvas, at) in VARIANTS {
        for (opt, lr) in PROTOCOLS {
            for &d in depths {
                rows.push(vec![
                    ("model.padding", v(padding)),
                    ("model.bias", v(bias)),
                    ("model.coords", v(coords)),
                    ("canvas", v(canvas as i64)),
                    ("canvas_at", v(vec![at[0] as i64, at[1] as i64])),
                    ("train.optimizer", v(opt)),
                    ("train.lr", v(lr)),
                    ("model.depth", v(d as i64)),
                ]);
            }
        }
    }
    rows.spec(base(scale, 10000).set("model.arch", "cnn").set("model.channels", channels).set("model.kernel", kernel))
}

/// The variant's name (no commas: it goes into CSV rows): `zero pad + bias`, `circular pad no
/// bias`, `canvas 42`, `canvas 56 corner`, `coords all + circular pad`.
pub fn variant(c: &RunConfig) -> String {
    let m = &c.model;
    let pad = serde_json::to_value(m.padding).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let canvas = c.canvas.unwrap_or(28);
    if m.coords != Coords::None {
        let which = if m.coords == Coords::Input { "input" } else { "all" };
        return format!("coords {which} + {pad} pad");
    }
    if canvas > 28 {
        let corner = c.canvas_at.is_some_and(|[t, l]| t == 0 && l == 0);
        return format!("canvas {canvas}{}", if corner { " corner" } else { "" });
    }
    format!("{pad} pad {}", if m.bias { "+ bias" } else { "no bias" })
}

const PAPER_VARIANT: &str = "zero pad + bias";

/// Which table a variant appears in; the paper's net appears in all three.
fn ablation_of(variant: &str) -> &'static str {
    if variant.starts_with("coords") {
        "coords"
    } else if variant.starts_with("canvas") {
        "canvas"
    } else {
        "padding"
    }
}

const ABLATIONS: [&str; 3] = ["padding", "canvas", "coords"];

fn in_ablation(n: &NetSummary, ablation: &str) -> bool {
    let var = variant(&n.config);
    var == PAPER_VARIANT || ablation_of(&var) == ablation || (ablation == "coords" && var == "circular pad + bias")
}

/// Variants of `nets`, in order of first appearance.
fn variants(nets: &[NetSummary]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in nets {
        let v = variant(&n.config);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Nets of one variant under one protocol, by depth.
fn series<'a>(nets: &'a [NetSummary], var: &str, proto: &str) -> Vec<&'a NetSummary> {
    by_depth(nets.iter().filter(|n| variant(&n.config) == var && n.protocol == proto))
}

/// Whether any net of `sub` outputs the constant (mean corr ≥ 0.9 and above the identity's).
fn any_constant(sub: &[&NetSummary]) -> bool {
    sub.iter().any(|n| outputs_constant(n))
}

fn unconverged_mark(n: &NetSummary) -> &'static str {
    if n.unconverged > 0 {
        " †"
    } else {
        ""
    }
}

fn boundary_figures(spec: &Spec, nets: &[NetSummary], out: &std::path::Path) -> Result<()> {
    for ablation in ABLATIONS {
        let mut s = Vec::new();
        for p in protocols(nets) {
            for var in variants(nets) {
                let sub: Vec<&NetSummary> = series(nets, &var, &p).into_iter().filter(|n| in_ablation(n, ablation)).collect();
                if sub.is_empty() {
                    continue;
                }
                s.push((format!("{p}, {var}: to constant"), sub.iter().map(|n| depth_point(n, n.corr_constant.0)).collect()));
            }
        }
        write_depth_curves(
            out,
            &format!("{}-{ablation}", spec.name),
            &format!("boundary, {ablation} ablation: mean corr to the constant (12 probes) by depth"),
            &s,
        )?;
    }
    Ok(())
}

fn boundary_table(spec: &Spec, nets: &[NetSummary]) -> String {
    let mut s = format!("# {}\n\n", spec.heading);
    s += "Two protocols, as in `cnn-depth`: `adam 0.0003` and `momentum 0.01` (SGD, momentum 0.9). PyTorch's default init (biases drawn U(±1/√fan_in) when on), pixels in [0, 1], MSE < 1e-4. The paper's net (zero padding, biases, no canvas) is the first row of every table. † marks a net with at least one seed that stopped at the step cap without reaching the tolerance. Correlations are over the whole canvas; `window` columns over the 28×28 window where the image sits.\n\n";
    for ablation in ABLATIONS {
        let _ = writeln!(s, "## {ablation}\n");
        s += "| protocol | variant | transition depth | corr to constant by depth (mean over seeds, min–max) | window corr to constant at the deepest |\n|---|---|---|---|---|\n";
        for p in protocols(nets) {
            for var in variants(nets) {
                let sub: Vec<&NetSummary> = series(nets, &var, &p).into_iter().filter(|n| in_ablation(n, ablation)).collect();
                if sub.is_empty() {
                    continue;
                }
                let t = transition(sub.iter().copied());
                let curve = sub
                    .iter()
                    .map(|n| {
                        format!(
                            "{}: {} ({}–{}){}",
                            n.depth,
                            f2(n.corr_constant.0),
                            f2(n.corr_constant.1),
                            f2(n.corr_constant.2),
                            unconverged_mark(n)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let window = sub.last().and_then(|n| n.extra.get("window_constant")).map(|w| f2(w.0)).unwrap_or_else(|| "–".into());
                let _ = writeln!(s, "| {p} | {var} | {} | {curve} | {window} |", transition_text(t));
            }
        }
        s.push('\n');
    }
    s
}

/// Transition depth of a variant under a protocol.
fn t_of(nets: &[NetSummary], var: &str, proto: &str) -> Option<usize> {
    transition(series(nets, var, proto))
}

fn boundary_claims(nets: &[NetSummary]) -> Vec<Claim> {
    let mut out = Vec::new();
    for p in protocols(nets) {
        let scoped = |mut c: Claim| {
            c.scope = Some(p.clone());
            c
        };
        let base = t_of(nets, PAPER_VARIANT, &p);
        let deepest = series(nets, PAPER_VARIANT, &p).last().map(|n| n.depth).unwrap_or(0);
        // B1: circular padding (with biases) never gives the constant.
        let circ = series(nets, "circular pad + bias", &p);
        out.push(scoped(Claim::prediction(
            "B1",
            "under circular padding no depth outputs the constant",
            format!("nets outputting the constant: {}", constant_depths(&circ)),
            if circ.is_empty() { Verdict::Undecided } else { Verdict::of(!any_constant(&circ)) },
        )));
        // B2: without biases, under every padding, no constant.
        let nb: Vec<&NetSummary> =
            ["zero pad no bias", "circular pad no bias", "reflect pad no bias"].iter().flat_map(|v| series(nets, v, &p)).collect();
        out.push(scoped(Claim::prediction(
            "B2",
            "without biases no depth outputs the constant, under any padding",
            format!("bias-free nets outputting the constant: {}", constant_depths(&nb)),
            if nb.is_empty() { Verdict::Undecided } else { Verdict::of(!any_constant(&nb)) },
        )));
        // B3: reflect delays but does not prevent.
        let refl = series(nets, "reflect pad + bias", &p);
        let tr = transition(refl.iter().copied());
        let delays = match (tr, base) {
            (Some(r), Some(b)) => Some(r > b),
            (None, Some(_)) => Some(true),
            _ => None,
        };
        let reaches = any_constant(&refl);
        out.push(scoped(Claim::prediction(
            "B3",
            "reflect padding delays memorization (a deeper transition than zero padding) but does not prevent it (some depth outputs the constant)",
            format!("transition depth: reflect {}, zero {}; reflect reaches the constant: {}", transition_text(tr), transition_text(base), yes(reaches)),
            match delays {
                None => Verdict::Undecided,
                Some(d) => Verdict::both(d, reaches),
            },
        )));
        // B4: the canvas moves the transition by +3.5 (42) and +7 (56) layers.
        let t42 = t_of(nets, "canvas 42", &p);
        let t56 = t_of(nets, "canvas 56", &p);
        let shift = |t: Option<usize>| match (t, base) {
            (Some(t), Some(b)) => Some(t as f64 - b as f64),
            _ => None,
        };
        let (s42, s56) = (shift(t42), shift(t56));
        let ok42 = s42.map(|s| (2.0..=6.0).contains(&s));
        let ok56 = s56.map(|s| (4.0..=10.0).contains(&s));
        out.push(scoped(Claim::prediction(
            "B4",
            "the transition depth rises by about 3.5 layers on a 42 canvas (accepted: +2 to +6) and about 7 on a 56 canvas (+4 to +10)",
            format!("transition depth: 28 → {}, 42 → {}, 56 → {}", transition_text(base), transition_text(t42), transition_text(t56)),
            match (ok42, ok56) {
                (Some(a), Some(b)) => Verdict::both(a, b),
                _ if base.is_some() && deepest > 0 => Verdict::Undecided,
                _ => Verdict::Undecided,
            },
        )));
        // B5: the corner control behaves like the 28 canvas.
        let tc = t_of(nets, "canvas 56 corner", &p);
        out.push(scoped(Claim::prediction(
            "B5",
            "with the digit in a corner of the 56 canvas the transition depth is within 2 layers of the 28 canvas's",
            format!("transition depth: corner {}, 28 canvas {}", transition_text(tc), transition_text(base)),
            match (tc, base) {
                (Some(c), Some(b)) => Verdict::of(c.abs_diff(b) <= 2),
                _ => Verdict::Undecided,
            },
        )));
        // B6: coordinates make memorization shallower; B7: they bring it back under circular padding.
        let ti = t_of(nets, "coords input + zero pad", &p);
        let ta = t_of(nets, "coords all + zero pad", &p);
        let shallower = |t: Option<usize>| match (t, base) {
            (Some(t), Some(b)) => Some(t + 2 <= b),
            (Some(_), None) => Some(true),
            (None, _) => None,
        };
        out.push(scoped(Claim::prediction(
            "B6",
            "with coordinate channels (zero padding) memorization comes at least 2 layers shallower",
            format!(
                "transition depth: no coords {}, coords input {}, coords all {}",
                transition_text(base),
                transition_text(ti),
                transition_text(ta)
            ),
            match (shallower(ti), shallower(ta)) {
                (Some(a), Some(b)) => Verdict::both(a, b),
                (Some(a), None) | (None, Some(a)) => {
                    if a {
                        Verdict::Mixed
                    } else {
                        Verdict::Disagrees
                    }
                }
                (None, None) if base.is_some() => Verdict::Disagrees,
                (None, None) => Verdict::Undecided,
            },
        )));
        let cc: Vec<&NetSummary> =
            ["coords input + circular pad", "coords all + circular pad"].iter().flat_map(|v| series(nets, v, &p)).collect();
        out.push(scoped(Claim::prediction(
            "B7",
            "CoordConv with circular padding memorizes again (some depth outputs the constant): position information was the bottleneck",
            format!("nets outputting the constant: {}", constant_depths(&cc)),
            if cc.is_empty() { Verdict::Undecided } else { Verdict::of(any_constant(&cc)) },
        )));
    }
    out
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `coords all + circular pad depth 20; …` for the nets that output the constant, or `none`.
fn constant_depths(nets: &[&NetSummary]) -> String {
    let v: Vec<String> = nets.iter().filter(|n| outputs_constant(n)).map(|n| format!("{} depth {}", variant(&n.config), n.depth)).collect();
    if v.is_empty() {
        format!("none of {}", nets.len())
    } else {
        v.join("; ")
    }
}

/// The first finished cell of a net, opened for analyses that need its trained weights.
enum Opened<'a> {
    /// Its net (f32) with the trained weights, its inputs, and the cell.
    Net(Box<Net<f32>>, Inputs, &'a sweep::Cell),
    /// Finished, but its weights were not kept (committed results): the cell's directory.
    NoWeights(std::path::PathBuf),
}

/// Open the first finished cell of the net labelled `label` (by the spec's label), or `None`
/// when none is finished.
fn open_first_done<'a>(x: &Extra<'a>, label: &str) -> Result<Option<Opened<'a>>> {
    let Some(cell) = x.plan.iter().find(|c| (x.spec.label)(&c.config) == label && sweep::state(x.dir, c) == CellState::Done) else {
        return Ok(None);
    };
    let cd = sweep::cell_dir(x.dir, cell);
    let weights = cd.join("weights.safetensors");
    if !weights.is_file() {
        return Ok(Some(Opened::NoWeights(cd)));
    }
    let (net, inputs) = run::open::<f32>(x.data_dir, &cell.config, &weights)?;
    Ok(Some(Opened::Net(Box::new(net), inputs, cell)))
}

/// Border reach of one map against the training image, both `[side, side]` (square canvases):
/// the largest band width b (pixels from the canvas border, 1 ≤ b ≤ side/2) for which
/// |corr(map, image)| over the band {pixels within b of the border} is at least
/// [`REACH_CORR`]; bands where the image has no variance (all zero canvas) are skipped; 0 when
/// no band qualifies.
pub fn border_reach(map: &[f32], image: &[f32], side: usize) -> usize {
    let mut best = 0;
    for b in 1..=side / 2 {
        let (mut m, mut t) = (Vec::new(), Vec::new());
        for r in 0..side {
            for c in 0..side {
                if r.min(c).min(side - 1 - r).min(side - 1 - c) < b {
                    m.push(map[r * side + c]);
                    t.push(image[r * side + c]);
                }
            }
        }
        let var = {
            let mean = t.iter().map(|x| *x as f64).sum::<f64>() / t.len() as f64;
            t.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>()
        };
        if var <= 1e-12 {
            continue;
        }
        if crate::eval::metrics::pearson(&m, &t).abs() >= REACH_CORR {
            best = b;
        }
    }
    best
}

/// Mean [`border_reach`] over the probes of every layer after the input: `maps[layer][probe]` as
/// [`hidden::layer_maps`] gives them (layer 0 the input), each `[side, side]`; one value per
/// layer 1, 2, ….
pub fn reach_by_layer(maps: &[Vec<Vec<f32>>], image: &[f32], side: usize) -> Vec<f64> {
    maps.iter()
        .skip(1)
        .map(|probes| probes.iter().map(|m| border_reach(m, image, side) as f64).sum::<f64>() / probes.len().max(1) as f64)
        .collect()
}

/// The correlation a border band must reach ([`border_reach`]).
pub const REACH_CORR: f64 = 0.9;

/// Border reach per layer of the first seed's deepest zero-padded net of each canvas (momentum
/// protocol when run, else the first), averaged over the paper's MNIST probes: a figure, a CSV
/// and a table, and prediction B8.
fn boundary_reach(x: &Extra) -> Result<(String, Vec<Claim>)> {
    let mut text = String::from("## Border reach\n\nFor each hidden layer of the deepest trained net (first seed), how far in from the canvas border its map (first principal component across channels, as in `hidden`) already matches the training image: the largest band width b such that |corr| between the map and the training image over the pixels within b of the border is ≥ 0.9 (bands where the image is all zero are skipped). Mean over the paper's MNIST probes as inputs (unseen digits). Output layer last.\n\n| net | reach by layer (pixels) | centre at |\n|---|---|---|\n");
    let mut csv = String::from("net,layer,reach\n");
    let mut series_: Vec<figures::MarkedSeries> = Vec::new();
    let mut claims = Vec::new();
    let proto = {
        let ps = protocols(x.nets);
        ps.iter().find(|p| p.starts_with("momentum")).cloned().or_else(|| ps.first().cloned()).unwrap_or_default()
    };
    for var in [PAPER_VARIANT, "canvas 42", "canvas 56"] {
        let Some(deep) = series(x.nets, var, &proto).last().copied() else { continue };
        let (net, inputs) = match open_first_done(x, &deep.label)? {
            None => continue,
            Some(Opened::Net(net, inputs, _)) => (net, inputs),
            Some(Opened::NoWeights(cd)) => {
                let _ =
                    writeln!(text, "| {var} depth {} ({proto}) | weights not kept ({}): rerun the cell | – |", deep.depth, cd.display());
                continue;
            }
        };
        let probes: Vec<Vec<f32>> =
            inputs.probes.iter().filter(|p| p.category == crate::eval::probe::Category::Mnist).map(|p| p.image.clone()).collect();
        if probes.is_empty() {
            continue;
        }
        let maps = hidden::layer_maps(x.eng, &net, &probes, Projection::Pca);
        let side = inputs.shape.height;
        let reach = reach_by_layer(&maps, &inputs.train, side);
        for (l, r) in reach.iter().enumerate() {
            let _ = writeln!(csv, "{var} depth {},{},{r}", deep.depth, l + 1);
        }
        let _ = writeln!(
            text,
            "| {var} depth {} ({proto}) | {} | {} |",
            deep.depth,
            reach.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", "),
            side / 2
        );
        // Every point is a layer of the same net: all hollow when that net did not converge.
        let flag = deep.unconverged > 0;
        series_.push((
            figures::mark_label(&format!("{var}, depth {}", deep.depth), flag),
            reach.iter().enumerate().map(|(l, r)| ((l + 1) as f64, *r, flag)).collect(),
        ));
        if var == PAPER_VARIANT {
            let hidden_reach = &reach[..reach.len().saturating_sub(1)];
            let grows = hidden_reach.windows(2).all(|w| w[1] >= w[0] - 1.0);
            let reaches_centre = hidden_reach.iter().rev().take(3).any(|r| *r >= (side / 2) as f64 - 2.0);
            claims.push(Claim::prediction(
                "B8",
                "in the deepest zero-padded net the border reach grows with the layer index (never falling by more than 1 pixel) and one of the last three hidden layers reaches within 2 pixels of the centre",
                format!("reach by hidden layer: {}", hidden_reach.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>().join(", ")),
                if hidden_reach.len() < 3 { Verdict::Undecided } else { Verdict::both(grows, reaches_centre) },
            ));
        }
    }
    if series_.is_empty() {
        text += "| (no finished deep nets) | – | – |\n";
    } else {
        let (png, svg) = figures::line_plot_marked(
            "Border reach of each layer's map (pixels from the canvas border)",
            "layer",
            "reach (pixels)",
            &series_,
            false,
        )?;
        write_atomic(&x.out.join("boundary-reach.png"), &png)?;
        write_atomic(&x.out.join("boundary-reach.svg"), svg.as_bytes())?;
    }
    write_atomic(&x.out.join("boundary-reach.csv"), csv.as_bytes())?;
    Ok((text, claims))
}

/// `idcrisis reproduce boundary`.
pub const BOUNDARY: Spec = Spec {
    exp: Experiment::Boundary,
    name: "boundary",
    about: "the boundary hypothesis: padding (zero, circular, reflect) × bias, canvas 28/42/56 and a corner control, coordinate channels, border reach",
    heading: "boundary: does memorization grow from the zero-padded border? ReLU CNNs (5×5) by depth",
    sweep: boundary_sweep,
    label: |c| format!("{} depth {} ({})", variant(c), c.model.depth, protocol(c)),
    predictions: None,
    analysis: Analysis::Nets { figures: boundary_figures, table: boundary_table, claims: boundary_claims, extra: Some(boundary_reach) },
};

// ---------------------------------------------------------------------------------------------
// k-examples

/// MNIST training images, all 7s: #15 (the paper's "7", the default training image), then
/// every further 7 in index order. k images are the first k of the list (nested families).
pub const SEVENS: [usize; 64] = [
    15, 29, 38, 42, 52, 71, 79, 84, 91, 96, 101, 103, 123, 140, 141, 148, 158, 168, 185, 193, 196, 212, 214, 223, 230, 243, 258, 263, 288,
    301, 305, 307, 324, 337, 340, 349, 353, 370, 371, 377, 384, 387, 411, 422, 426, 436, 446, 467, 468, 478, 483, 497, 505, 511, 518, 521,
    522, 560, 562, 567, 586, 599, 608, 611,
];

/// MNIST training images, mixed digits: #15 (a 7), then the first unused image of each digit
/// in the order 0, 1, 2, 3, 4, 5, 6, 8, 9, 7, cycling. k images are the first k of the list.
pub const MIXED: [usize; 64] = [
    15, 1, 3, 5, 7, 2, 0, 13, 17, 4, 29, 21, 6, 16, 10, 9, 11, 18, 31, 19, 38, 34, 8, 25, 12, 20, 35, 32, 41, 22, 42, 37, 14, 28, 27, 26,
    47, 36, 46, 33, 52, 51, 23, 76, 30, 53, 65, 39, 55, 43, 71, 56, 24, 82, 44, 58, 100, 62, 85, 45, 79, 63, 40, 109,
];

/// The family of a run's training list: `sevens`, `mixed` or `one` (k = 1).
pub fn family(c: &RunConfig) -> &'static str {
    match c.train_set.as_ref().map(|t| t.indices.as_slice()) {
        Some(ix) if ix.len() > 1 && ix == &SEVENS[..ix.len()] => "sevens",
        Some(ix) if ix.len() > 1 && ix == &MIXED[..ix.len()] => "mixed",
        Some(ix) if ix.len() > 1 => "custom",
        _ => "one",
    }
}

/// k of a run: the length of its training list (1 without one).
pub fn k_of(c: &RunConfig) -> usize {
    c.train_set.as_ref().map_or(1, |t| t.indices.len().max(1))
}

fn k_sweep(scale: Scale) -> SweepSpec {
    let (channels, kernel, ks, cnn_depths, fcn_depths): (i64, i64, &[usize], &[usize], &[usize]) = match scale {
        Scale::Micro => (4, 3, &[1, 2, 4], &[1, 2], &[1, 2]),
        Scale::Quick => (8, 5, &[1, 4, 16], &[3, 7, 12, 20], &[1, 2, 4]),
        Scale::Full => (128, 5, &[1, 2, 4, 8, 16, 64], &[1, 3, 5, 7, 9, 12, 15, 20], &[1, 2, 4, 6]),
    };
    let width: i64 = if scale == Scale::Micro { 16 } else { 784 };
    let mut rows = Rows::default();
    for &k in ks {
        for (fam, list) in [("sevens", &SEVENS), ("mixed", &MIXED)] {
            if k == 1 && fam == "mixed" {
                continue; // k = 1 is the same "7" in both families
            }
            let idx: Vec<i64> = list[..k].iter().map(|&i| i as i64).collect();
            let mut push = |arch: &str, opt: &str, lr: f64, d: usize| {
                rows.push(vec![
                    ("model.arch", v(arch)),
                    ("model.act", v("relu")),
                    ("train.optimizer", v(opt)),
                    ("train.lr", v(lr)),
                    ("model.depth", v(d as i64)),
                    ("train_set.indices", v(idx.clone())),
                ])
            };
            for (opt, lr) in PROTOCOLS {
                for &d in cnn_depths {
                    push("cnn", opt, lr, d);
                }
            }
            // FCNs: plain GD, lr 0.1, as `fcn`.
            for &d in fcn_depths {
                push("fcn", "gd", 0.1, d);
            }
        }
    }
    rows.spec(
        base(scale, 10000)
            .set("model.channels", channels)
            .set("model.kernel", kernel)
            .set("model.width", width)
            .set("train_set.data", "mnist:train")
            .set("train_set.batch", 128),
    )
}

fn k_label(c: &RunConfig) -> String {
    let arch = if c.model.arch == Arch::Cnn { "CNN" } else { "FCN" };
    let k = k_of(c);
    let fam = if k == 1 { "the 7".to_string() } else { format!("{k} {}", family(c)) };
    format!("{arch} depth {} on {fam} ({})", c.model.depth, protocol(c))
}

fn extra(n: &NetSummary, key: &str) -> f64 {
    n.extra.get(key).map_or(f64::NAN, |v| v.0)
}

/// Depth where the mean corr to the nearest training image (MNIST test probes) first exceeds
/// the mean corr to identity on them: the transition depth of a set.
fn set_transition(nets: &[&NetSummary]) -> Option<usize> {
    let mut v = nets.to_vec();
    v.sort_by_key(|n| n.depth);
    v.into_iter().find(|n| extra(n, "mnist_nearest") > extra(n, "mnist_identity")).map(|n| n.depth)
}

/// The nets of one architecture/protocol and family at k (the "7" counts in both families).
fn k_group<'a>(nets: &'a [NetSummary], arch: &str, proto: &str, fam: &str, k: usize) -> Vec<&'a NetSummary> {
    by_depth(nets.iter().filter(|n| n.arch == arch && n.protocol == proto && k_of(&n.config) == k && (k == 1 || family(&n.config) == fam)))
}

fn ks(nets: &[NetSummary]) -> Vec<usize> {
    let mut v: Vec<usize> = nets.iter().map(|n| k_of(&n.config)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn k_table(spec: &Spec, nets: &[NetSummary]) -> String {
    let mut s = format!("# {}\n\n", spec.heading);
    s += "Training lists (nested: k images are the first k): `sevens` = MNIST train #15 (the paper's \"7\") then every further 7 in index order; `mixed` = #15 then the first unused image of each digit in the order 0, 1, 2, 3, 4, 5, 6, 8, 9, 7, cycling (the lists are `SEVENS` and `MIXED` in `experiment/beyond.rs`). Full batch (k ≤ 128). CNNs: 5×5, the two `cnn-depth` protocols; FCNs: width 784, plain GD lr 0.1. Scores on the 10 MNIST test probes (held out): corr to identity, corr to the nearest training image (Euclidean), and the blend index 1 − d(span)/d(nearest) (near 1: a blend of training images; near 0: one training image, or off the span). † marks an unconverged seed.\n\n";
    s += "| net | k | family | depth | seeds | corr to identity (mnist) | corr to nearest training image (mnist) | blend index | paper-probe corr to identity |\n|---|---|---|---|---|---|---|---|---|\n";
    let mut ordered: Vec<&NetSummary> = nets.iter().collect();
    ordered.sort_by_key(|n| (n.arch.clone(), n.protocol.clone(), family(&n.config), k_of(&n.config), n.depth));
    for n in ordered {
        let _ = writeln!(
            s,
            "| {} {}{} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            n.arch.to_uppercase(),
            n.protocol,
            unconverged_mark(n),
            k_of(&n.config),
            family(&n.config),
            n.depth,
            n.seeds,
            extra(n, "mnist_identity"),
            extra(n, "mnist_nearest"),
            extra(n, "mnist_blend"),
            n.corr_identity.0
        );
    }
    s += "\n## Transition depth against k\n\nThe first depth where the corr to the nearest training image exceeds the corr to identity (MNIST test probes).\n\n| net | family | ";
    let kk = ks(nets);
    s += &kk.iter().map(|k| format!("k = {k}")).collect::<Vec<_>>().join(" | ");
    s += " |\n|---|---|";
    s += &"---|".repeat(kk.len());
    s.push('\n');
    for proto in protocols(nets).iter().filter(|p| !p.starts_with("gd")) {
        for fam in ["sevens", "mixed"] {
            let row: Vec<String> = kk.iter().map(|&k| transition_text(set_transition(&k_group(nets, "cnn", proto, fam, k)))).collect();
            let _ = writeln!(s, "| CNN {proto} | {fam} | {} |", row.join(" | "));
        }
    }
    s += "\nFor comparison, `fcn-60k` trains FCNs on all 60,000 MNIST training images (see its summary).\n";
    s
}

fn k_figures(spec: &Spec, nets: &[NetSummary], out: &std::path::Path) -> Result<()> {
    let mut s: Vec<figures::MarkedSeries> = Vec::new();
    for proto in protocols(nets).iter().filter(|p| !p.starts_with("gd")) {
        for fam in ["sevens", "mixed"] {
            for k in ks(nets) {
                if k == 1 && fam == "mixed" {
                    continue;
                }
                let g = k_group(nets, "cnn", proto, fam, k);
                if g.is_empty() {
                    continue;
                }
                s.push((
                    format!("{proto}, {}: nearest − identity", if k == 1 { "k=1".into() } else { format!("k={k} {fam}") }),
                    g.iter().map(|n| depth_point(n, extra(n, "mnist_nearest") - extra(n, "mnist_identity"))).collect(),
                ));
            }
        }
    }
    write_depth_curves_y(
        out,
        &format!("{}-cnn", spec.name),
        "CNNs trained on k images: corr to nearest training image minus corr to identity (MNIST probes)",
        "corr to nearest − corr to identity",
        &s,
    )
}

fn k_claims(nets: &[NetSummary]) -> Vec<Claim> {
    let mut out = Vec::new();
    let kk = ks(nets);
    let kmax = kk.last().copied().unwrap_or(1);
    for proto in protocols(nets).iter().filter(|p| !p.starts_with("gd")) {
        // K1: more examples push the transition deeper.
        let (t1, tk) =
            (set_transition(&k_group(nets, "cnn", proto, "sevens", 1)), set_transition(&k_group(nets, "cnn", proto, "mixed", kmax)));
        let deepest = k_group(nets, "cnn", proto, "mixed", kmax).last().map(|n| n.depth).unwrap_or(0);
        let mut c = Claim::prediction(
            "K1",
            "with more training images deep CNNs generalize deeper: the transition depth at the largest k (mixed digits) is deeper than at k = 1 (no transition within the depths run counts as deeper)",
            format!("transition depth k=1: {}, k={kmax} mixed: {}", transition_text(t1), transition_text(tk)),
            match (t1, tk) {
                _ if kmax == 1 || deepest == 0 => Verdict::Undecided,
                (Some(a), Some(b)) => Verdict::of(b > a),
                (Some(_), None) => Verdict::Agrees,
                (None, _) => Verdict::Undecided,
            },
        );
        c.scope = Some(proto.clone());
        out.push(c);
        // K3: memorizers output single training images, not blends.
        let mem: Vec<&NetSummary> = nets
            .iter()
            .filter(|n| {
                n.protocol == *proto
                    && k_of(&n.config) > 1
                    && extra(n, "mnist_nearest") >= 0.9
                    && extra(n, "mnist_nearest") > extra(n, "mnist_identity")
            })
            .collect();
        let worst = mem.iter().map(|n| extra(n, "mnist_blend")).fold(f64::NAN, f64::max);
        let mut c = Claim::prediction(
            "K3",
            "CNNs that memorize a set (corr to the nearest training image ≥ 0.9) output single training images, not blends: blend index < 0.3",
            if mem.is_empty() { "no CNN memorized its set".into() } else { format!("{} memorizing nets, largest blend index {}", mem.len(), f2(worst)) },
            if mem.is_empty() { Verdict::Undecided } else { Verdict::of(worst < 0.3) },
        );
        c.scope = Some(proto.clone());
        out.push(c);
    }
    // K2: FCNs stay constant-like: nearest beats identity for every k.
    let fcn: Vec<&NetSummary> = nets.iter().filter(|n| n.arch == "fcn" && n.depth >= 2).collect();
    let ok = fcn.iter().filter(|n| extra(n, "mnist_nearest") > extra(n, "mnist_identity")).count();
    out.push(Claim::prediction(
        "K2",
        "FCNs of depth ≥ 2 stay constant-like for every k: corr to the nearest training image above the corr to identity on the MNIST probes",
        format!("{ok} of {} FCNs", fcn.len()),
        if fcn.is_empty() {
            Verdict::Undecided
        } else if ok == fcn.len() {
            Verdict::Agrees
        } else if ok == 0 {
            Verdict::Disagrees
        } else {
            Verdict::Mixed
        },
    ));
    out
}

/// `idcrisis reproduce k-examples`.
pub const K_EXAMPLES: Spec = Spec {
    exp: Experiment::KExamples,
    name: "k-examples",
    about: "CNNs and FCNs trained on k = 1…64 MNIST images (all 7s, or mixed digits), by depth",
    heading: "k-examples: CNNs (5×5) and FCNs (width 784) trained on k MNIST images, by depth",
    sweep: k_sweep,
    label: k_label,
    predictions: None,
    analysis: Analysis::Nets { figures: k_figures, table: k_table, claims: k_claims, extra: None },
};

// ---------------------------------------------------------------------------------------------
// attractors

fn attractor_sweep(scale: Scale) -> SweepSpec {
    let (channels, kernel, depths, k): (i64, i64, &[usize], usize) = match scale {
        Scale::Micro => (4, 3, &[1, 2], 2),
        Scale::Quick => (8, 5, &[1, 3, 7, 12, 20], 4),
        Scale::Full => (128, 5, &[1, 3, 5, 7, 9, 12, 15, 20], 4),
    };
    let mut rows = Rows::default();
    for kk in [1, k] {
        let idx: Vec<i64> = MIXED[..kk].iter().map(|&i| i as i64).collect();
        for (opt, lr) in PROTOCOLS {
            for &d in depths {
                rows.push(vec![
                    ("train.optimizer", v(opt)),
                    ("train.lr", v(lr)),
                    ("model.depth", v(d as i64)),
                    ("train_set.indices", v(idx.clone())),
                ]);
            }
        }
    }
    rows.spec(
        base(scale, 10000)
            .set("model.arch", "cnn")
            .set("model.channels", channels)
            .set("model.kernel", kernel)
            .set("train_set.data", "mnist:train")
            .set("train_set.batch", 128),
    )
}

/// Iterate every finished net's map from the standard starts and compute the Jacobian at each
/// training image ([`attractor`]); a table by depth and k, a CSV, the trajectory figure of the
/// deepest net, and predictions A1–A3.
fn attractor_analysis(x: &Extra) -> Result<(String, Vec<Claim>)> {
    let mut text = String::from("## Attractors\n\nFor the first seed of each net: x_{t+1} = f(x_t) from the probes, each training image plus Gaussian noise (σ = 0.05, 0.2, 0.5), uniform noise and a blank image, until ‖Δx‖/‖x‖ < 1e-6 or 1000 steps; each trajectory classified (see `eval::attractor`). Jacobian J = ∂f/∂x at each training image: spectral radius ρ and ‖J‖₂; a training image is an attractor when it is a fixed point with ρ < 1.\n\n| net | k | to a training image | other fixed point | cycling | diverging | undecided | spurious fixed points | median steps | ρ at training images | ‖J‖₂ | attractors |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mut csv = String::from("net,k,depth,protocol,class_training,class_other,class_cycle,class_diverge,class_undecided,spurious,rho_max,rho_min,norm_max,attractors\n");
    let mut rows: Vec<(usize, usize, String, f64, f64, f64)> = Vec::new(); // depth, k, proto, ρ max, frac to training, identity corr
    let mut deepest_fig: Option<(usize, Vec<u8>)> = None;
    for n in x.nets {
        let (net, inputs, cell) = match open_first_done(x, &n.label)? {
            None => continue,
            Some(Opened::Net(net, inputs, cell)) => (net, inputs, cell),
            Some(Opened::NoWeights(cd)) => {
                let _ = writeln!(text, "| {} | weights not kept ({}): rerun the cell |||||||||||", n.label, cd.display());
                continue;
            }
        };
        let opts = attractor::Options::default();
        let starts = attractor::starts(&inputs.probes, &inputs.examples, cell.config.seed, 1);
        let (report, traj) = attractor::analyze(&net, x.eng, &starts, &inputs.examples, &opts, true, 32)?;
        let f = &report.summary;
        let frac = |k: &str| f.fractions.get(k).copied().unwrap_or(0.0);
        let rhos: Vec<f64> = report.jacobians.iter().map(|j| j.spectral_radius).collect();
        let norms: Vec<f64> = report.jacobians.iter().map(|j| j.spectral_norm).collect();
        let attract = report.jacobians.iter().filter(|j| j.attractor).count();
        let rmax = rhos.iter().cloned().fold(f64::NAN, f64::max);
        let rmin = rhos.iter().cloned().fold(f64::NAN, f64::min);
        let nmax = norms.iter().cloned().fold(f64::NAN, f64::max);
        let k = k_of(&cell.config);
        let _ = writeln!(
            text,
            "| {} | {k} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {attract} of {} |",
            n.label,
            frac("training-image"),
            frac("other-fixed-point"),
            frac("cycle"),
            frac("diverging"),
            frac("undecided"),
            f.spurious_fixed_points,
            f.median_steps,
            rhos.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", "),
            norms.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", "),
            rhos.len()
        );
        let _ = writeln!(
            csv,
            "{},{k},{},{},{},{},{},{},{},{},{rmax},{rmin},{nmax},{attract}",
            n.label,
            n.depth,
            n.protocol,
            frac("training-image"),
            frac("other-fixed-point"),
            frac("cycle"),
            frac("diverging"),
            frac("undecided"),
            f.spurious_fixed_points
        );
        if k == 1 && deepest_fig.as_ref().is_none_or(|(d, _)| n.depth > *d) {
            let title = if n.unconverged > 0 {
                format!("{}: x(t+1) = f(x(t)) from each start ({})", figures::mark_label(&n.label, true), figures::UNCONVERGED_TEXT)
            } else {
                format!("{}: x(t+1) = f(x(t)) from each start", n.label)
            };
            deepest_fig = Some((n.depth, attractor::trajectories_png(&title, inputs.shape, &traj, &opts)?));
        }
        rows.push((n.depth, k, n.protocol.clone(), rmax, frac("training-image"), n.corr_identity.0));
    }
    write_atomic(&x.out.join("attractors-table.csv"), csv.as_bytes())?;
    if let Some((_, png)) = deepest_fig {
        write_atomic(&x.out.join("attractors-trajectories.png"), &png)?;
    }
    let mut claims = Vec::new();
    let deep: Vec<&(usize, usize, String, f64, f64, f64)> = rows.iter().filter(|r| r.5 < 0.5 && r.1 == 1).collect();
    let shallow: Vec<&(usize, usize, String, f64, f64, f64)> = rows.iter().filter(|r| r.5 >= 0.9 && r.1 == 1).collect();
    claims.push(Claim::prediction(
        "A1",
        "a deep memorizer (k = 1, corr to identity < 0.5) has J ≈ 0 at its training image: ρ < 0.1",
        if deep.is_empty() {
            "no memorizer".into()
        } else {
            deep.iter().map(|r| format!("depth {} {}: ρ {:.3}", r.0, r.2, r.3)).collect::<Vec<_>>().join("; ")
        },
        if deep.is_empty() { Verdict::Undecided } else { all_some(deep.iter().map(|r| r.3 < 0.1)) },
    ));
    claims.push(Claim::prediction(
        "A2",
        "a shallow identity-like net (k = 1, corr to identity ≥ 0.9) has J ≈ I: ρ in [0.9, 1.1], neutral rather than attracting",
        if shallow.is_empty() {
            "no identity-like net".into()
        } else {
            shallow.iter().map(|r| format!("depth {} {}: ρ {:.3}", r.0, r.2, r.3)).collect::<Vec<_>>().join("; ")
        },
        if shallow.is_empty() { Verdict::Undecided } else { all_some(shallow.iter().map(|r| (0.9..=1.1).contains(&r.3))) },
    ));
    let deep_any: Vec<&(usize, usize, String, f64, f64, f64)> = rows.iter().filter(|r| r.5 < 0.5).collect();
    claims.push(Claim::prediction(
        "A3",
        "in memorizing nets (corr to identity < 0.5, any k) at least half of all starts converge to a training image (the PNAS picture: training images are attractors with large basins)",
        if deep_any.is_empty() { "no memorizer".into() } else { deep_any.iter().map(|r| format!("depth {} k={} {}: {:.2}", r.0, r.1, r.2, r.4)).collect::<Vec<_>>().join("; ") },
        if deep_any.is_empty() { Verdict::Undecided } else { all_some(deep_any.iter().map(|r| r.4 >= 0.5)) },
    ));
    Ok((text, claims))
}

/// `Agrees` when all hold, `Disagrees` when none, else `Mixed`.
fn all_some(v: impl Iterator<Item = bool>) -> Verdict {
    let v: Vec<bool> = v.collect();
    if v.iter().all(|b| *b) {
        Verdict::Agrees
    } else if v.iter().all(|b| !*b) {
        Verdict::Disagrees
    } else {
        Verdict::Mixed
    }
}

fn attractor_table(spec: &Spec, nets: &[NetSummary]) -> String {
    let mut s = format!("# {}\n\n", spec.heading);
    s += "Nets: ReLU CNNs (5×5) under both `cnn-depth` protocols, trained on the \"7\" (k = 1) and on the first k images of the mixed-digit list of `k-examples`. † marks an unconverged seed.\n\n| net | seeds | corr to identity (12 probes) | corr to constant |\n|---|---|---|---|\n";
    for n in nets {
        let _ = writeln!(s, "| {}{} | {} | {:.2} | {:.2} |", n.label, unconverged_mark(n), n.seeds, n.corr_identity.0, n.corr_constant.0);
    }
    s.push('\n');
    s
}

fn no_claims(_: &[NetSummary]) -> Vec<Claim> {
    Vec::new()
}

/// `idcrisis reproduce attractors`.
pub const ATTRACTORS: Spec = Spec {
    exp: Experiment::Attractors,
    name: "attractors",
    about: "iterating trained nets: which starts converge to training images, and the Jacobian there",
    heading: "attractors: trained CNNs iterated, x_{t+1} = f(x_t)",
    sweep: attractor_sweep,
    label: k_label,
    predictions: None,
    analysis: Analysis::Nets { figures: no_figures, table: attractor_table, claims: no_claims, extra: Some(attractor_analysis) },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::sweep;

    fn configs(spec: SweepSpec) -> Vec<RunConfig> {
        let text = toml::to_string(&spec.to_table().unwrap()).unwrap();
        sweep::expand(&text, std::path::Path::new("t.toml"), false).unwrap().into_iter().map(|c| c.config).collect()
    }

    #[test]
    fn every_boundary_variant_has_its_own_name_and_the_claims_name_real_variants() {
        let cfgs = configs(boundary_sweep(Scale::Micro));
        assert_eq!(cfgs.len(), VARIANTS.len() * PROTOCOLS.len() * 2);
        let mut names: Vec<String> = cfgs.iter().map(variant).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), VARIANTS.len(), "{names:?}");
        assert!(names.iter().all(|n| !n.contains(',')), "CSV-safe names: {names:?}");
        for used in [
            PAPER_VARIANT,
            "circular pad + bias",
            "zero pad no bias",
            "circular pad no bias",
            "reflect pad no bias",
            "reflect pad + bias",
            "canvas 42",
            "canvas 56",
            "canvas 56 corner",
            "coords input + zero pad",
            "coords all + zero pad",
            "coords input + circular pad",
            "coords all + circular pad",
        ] {
            assert!(names.iter().any(|n| n == used), "{used:?} is not a variant: {names:?}");
        }
        // The paper's net is the same config as cnn-depth's (a 28 canvas is the image itself).
        let paper = cfgs.iter().find(|c| variant(c) == PAPER_VARIANT).unwrap();
        assert_eq!((paper.canvas, paper.canvas_at, paper.model.bias), (Some(28), Some([0, 0]), true));
    }

    #[test]
    fn k_examples_lists_are_nested_and_k_one_is_the_seven() {
        let cfgs = configs(k_sweep(Scale::Micro));
        for c in &cfgs {
            let ix = &c.train_set.as_ref().unwrap().indices;
            assert_eq!(ix[0], 15);
            assert!(family(c) != "custom", "{ix:?}");
        }
        assert!(cfgs.iter().any(|c| k_of(c) == 1) && cfgs.iter().any(|c| k_of(c) == 4 && family(c) == "mixed"));
        let mut all = SEVENS.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 64);
    }

    #[test]
    fn reach_by_layer_reads_maps_layer_first() {
        // 4 layers (input first) × 2 probes of a 6×6 image: layer l's maps match the image on
        // a band of width l (then noise), so the reach by layer is 1, 2, 3 whatever the probe.
        let side = 6;
        let image: Vec<f32> = (0..side * side).map(|i| ((i * 7919) % 13) as f32).collect();
        let band = |l: usize, probe: usize| -> Vec<f32> {
            (0..side * side)
                .map(|i| {
                    let (r, c) = (i / side, i % side);
                    let d = r.min(c).min(side - 1 - r).min(side - 1 - c);
                    if d < l {
                        image[i]
                    } else {
                        ((i * 31 + probe * 17 + l * 5) % 11) as f32 * -3.0
                    }
                })
                .collect()
        };
        let maps: Vec<Vec<Vec<f32>>> = (0..4).map(|l| (0..2).map(|p| band(l, p)).collect()).collect();
        let want: Vec<f64> = (1..4).map(|l| border_reach(&band(l, 0), &image, side) as f64).collect();
        assert_eq!(reach_by_layer(&maps, &image, side), want);
        assert_eq!(want.len(), 3, "one value per layer after the input");
        assert!(want.windows(2).all(|w| w[1] >= w[0]) && want[2] > want[0], "{want:?}");
    }

    #[test]
    fn border_reach_measures_the_matched_band() {
        let side = 12;
        let image: Vec<f32> = (0..side * side).map(|i| ((i * 7919) % 13) as f32).collect();
        // A map equal to the image within 3 pixels of the border and unrelated inside.
        let dist = |i: usize| {
            let (r, c) = (i / side, i % side);
            r.min(c).min(side - 1 - r).min(side - 1 - c)
        };
        let map: Vec<f32> = (0..side * side).map(|i| if dist(i) < 3 { image[i] } else { ((i * 31) % 7) as f32 * 5.0 }).collect();
        assert_eq!(border_reach(&map, &image, side), 3);
        assert_eq!(border_reach(&image, &image, side), side / 2);
        let neg: Vec<f32> = image.iter().map(|v| -v).collect();
        assert_eq!(border_reach(&neg, &image, side), side / 2, "the sign of a principal component is arbitrary");
        // A zero margin (a canvas) is skipped, not counted as a mismatch.
        let mut canvas = image.clone();
        for (i, v) in canvas.iter_mut().enumerate() {
            if dist(i) < 2 {
                *v = 0.0;
            }
        }
        let flat = vec![1.0f32; side * side];
        assert_eq!(border_reach(&flat, &canvas, side), 0);
        assert_eq!(border_reach(&canvas, &canvas, side), side / 2);
    }
}
