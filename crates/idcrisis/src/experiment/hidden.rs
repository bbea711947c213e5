//! Hidden-layer maps: what every layer of a CNN computes on each probe.
//!
//! Each hidden layer's `C` channels (after ReLU) are collapsed to one H×W map per probe by
//! [`Projection::Pca`]: the first principal component across channels — the top eigenvector `v`
//! of the `C×C` covariance of the channel vectors over the H·W pixels — and `map[p] = v·a[:, p]`,
//! with the sign of `v` chosen so that the map correlates positively with the channel mean;
//! or by [`Projection::Mean`], the channel mean. Each map is divided by its largest absolute
//! value and drawn with a diverging colormap (blue < 0 < red). The input and output rows are
//! collapsed and drawn the same way.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::eval::metrics::{pearson, OUTCOME_THRESHOLD};
use crate::experiment::reproduce::{Claim, Verdict};
use crate::experiment::sweep::{self, Cell, CellState};
use crate::experiment::{inputs, run};
use crate::figures;
use crate::fsutil::write_atomic;
use crate::nn::model::Net;
use crate::shape::Shape;
use std::fmt::Write as _;
use std::path::Path;

/// How channels collapse to one map.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// First principal component across channels (sign fixed).
    Pca,
    /// Channel mean.
    Mean,
}

/// Collapse `a [C, P]` (P = `pixels`, H·W) to `[P]`, normalised to max |·| = 1.
pub fn collapse(a: &[f32], c: usize, pixels: usize, how: Projection) -> Vec<f32> {
    let mean_map: Vec<f64> = (0..pixels).map(|p| (0..c).map(|ch| a[ch * pixels + p] as f64).sum::<f64>() / c as f64).collect();
    let map: Vec<f64> = if c == 1 || how == Projection::Mean {
        mean_map.clone()
    } else {
        let means: Vec<f64> =
            (0..c).map(|ch| a[ch * pixels..(ch + 1) * pixels].iter().map(|&v| v as f64).sum::<f64>() / pixels as f64).collect();
        let cov = |i: usize, j: usize| -> f64 {
            let (ai, aj) = (&a[i * pixels..(i + 1) * pixels], &a[j * pixels..(j + 1) * pixels]);
            ai.iter().zip(aj).map(|(&x, &y)| (x as f64 - means[i]) * (y as f64 - means[j])).sum::<f64>()
        };
        let m: Vec<f64> = (0..c * c).map(|k| cov(k / c, k % c)).collect();
        let mut v = vec![1.0 / (c as f64).sqrt(); c];
        for _ in 0..100 {
            let w: Vec<f64> = (0..c).map(|i| (0..c).map(|j| m[i * c + j] * v[j]).sum()).collect();
            let n = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n == 0.0 {
                break;
            }
            v = w.iter().map(|x| x / n).collect();
        }
        let map: Vec<f64> = (0..pixels).map(|p| (0..c).map(|ch| v[ch] * (a[ch * pixels + p] as f64 - means[ch])).sum()).collect();
        let (m32, mm32): (Vec<f32>, Vec<f32>) = (map.iter().map(|&x| x as f32).collect(), mean_map.iter().map(|&x| x as f32).collect());
        if pearson(&m32, &mm32) < 0.0 {
            map.iter().map(|x| -x).collect()
        } else {
            map
        }
    };
    let scale = map.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    map.iter().map(|v| (v / scale) as f32).collect()
}

/// Maps of every layer (input first) of `net` on each image of `inputs`: `[layer][probe]`.
pub fn layer_maps(eng: &Engine, net: &Net<f32>, inputs: &[Vec<f32>], how: Projection) -> Vec<Vec<Vec<f32>>> {
    let mut ws = net.workspace(1, true);
    let depth = net.layers.len();
    let mut out = vec![Vec::new(); depth + 1];
    for x in inputs {
        net.forward(eng, &mut ws, x, 1);
        for (l, row) in out.iter_mut().enumerate() {
            let a = net.activation_chw(eng, &ws, l);
            let hw = net.shape.hw();
            row.push(collapse(&a, a.len() / hw, hw, how));
        }
    }
    out
}

/// The `hidden` experiment's figures and summary, from the done cells of its sweep.
pub fn figures(out: &Path, dir: &Path, plan: &[Cell], data_dir: &Path, eng: &Engine, how: Projection) -> Result<String> {
    // (label, file stem, net, did not reach the tolerance).
    let mut nets: Vec<(String, String, Net<f32>, bool)> = Vec::new();
    let deepest =
        plan.iter().filter(|c| c.config.seed == 0).max_by_key(|c| c.config.model.depth).ok_or_else(|| Error::Other("empty plan".into()))?;
    let inputs = inputs::load(data_dir, &deepest.config)?;
    let mut untrained = Net::<f32>::new(&deepest.config.model, inputs.shape)?;
    untrained.init(deepest.config.init.scheme, deepest.config.init.scale, deepest.config.seed);
    nets.push((
        format!("untrained {}-layer CNN", deepest.config.model.depth),
        format!("hidden-untrained-d{}", deepest.config.model.depth),
        untrained,
        false,
    ));
    let mut depths: Vec<&Cell> = plan.iter().filter(|c| c.config.seed == plan[0].config.seed).collect();
    depths.sort_by_key(|c| c.config.model.depth);
    for c in depths {
        if sweep::state(dir, c) != CellState::Done {
            continue;
        }
        // Every cell trains on the deepest one's image: its inputs serve all.
        let cd = sweep::cell_dir(dir, c);
        let net = run::load_net::<f32>(&c.config, inputs.shape, &cd.join("weights.safetensors"))?;
        let result = cd.join("result.json");
        let r: run::RunResult =
            serde_json::from_slice(&crate::fsutil::read(&result)?).map_err(|e| Error::bad_data(&result, e.to_string()))?;
        let unconverged = r.status == crate::nn::train::Status::MaxSteps;
        nets.push((format!("trained {}-layer CNN", c.config.model.depth), format!("hidden-d{}", c.config.model.depth), net, unconverged));
    }
    let map_shape = Shape::new(1, inputs.shape.height, inputs.shape.width);
    let probes: Vec<_> = inputs.probes.iter().filter(|p| p.category.is_paper()).collect();
    let train = inputs.train.clone();
    let mut names = vec!["training image".to_string()];
    names.extend(probes.iter().map(|p| p.name.clone()));
    let mut inputs = vec![train.clone()];
    inputs.extend(probes.iter().map(|p| p.image.clone()));
    // What the maps are compared with: the images themselves, channel-averaged if in colour.
    let hw = map_shape.hw();
    let gray = |x: &[f32]| -> Vec<f32> {
        let c = x.len() / hw;
        (0..hw).map(|p| (0..c).map(|ch| x[ch * hw + p]).sum::<f32>() / c as f32).collect()
    };
    let (train_gray, inputs_gray): (Vec<f32>, Vec<Vec<f32>>) = (gray(&train), inputs.iter().map(|x| gray(x)).collect());
    let mut s = String::from("# hidden: hidden-layer maps\n\nProtocol: PyTorch default init, SGD with momentum 0.9, lr 0.01, MSE < 1e-4 (under which the 20-layer CNN memorizes the clean \"7\"; see cnn-depth).\n\n");
    let _ = writeln!(
        s,
        "Each hidden layer's channels are collapsed to one map by the {} and drawn with a diverging colormap (blue < 0 < red), each map scaled to its largest |value|.\n",
        if how == Projection::Pca { "first principal component across channels (sign fixed to agree with the channel mean)" } else { "channel mean" }
    );
    s += "Mean correlation (over the 12 probes) of each of the last five layers' maps with the training image:\n\n| net | layers L−4 … L (output) |\n|---|---|\n";
    let mut csv = String::from("net,layer,corr_with_training_image,corr_with_input\n");
    let mut deepest_trained: Option<(usize, Vec<f64>)> = None;
    for (label, file, net, unconverged) in &nets {
        let maps = layer_maps(eng, net, &inputs, how);
        let row_labels: Vec<String> = (0..maps.len())
            .map(|l| {
                if l == 0 {
                    "input".into()
                } else if l + 1 == maps.len() {
                    format!("output ({l})")
                } else {
                    format!("layer {l}")
                }
            })
            .collect();
        let rows: Vec<Vec<Option<Vec<f32>>>> = maps.iter().map(|r| r.iter().cloned().map(Some).collect()).collect();
        let col_labels = vec![names.clone(); rows.len()];
        let title = if *unconverged {
            format!("Hidden-layer maps of the {} ({})", figures::mark_label(label, true), figures::UNCONVERGED_TEXT)
        } else {
            format!("Hidden-layer maps of the {label}")
        };
        let png = figures::image_grid_cmap(&title, map_shape, &row_labels, &col_labels, &rows, Some(0), figures::Cmap::Diverging)?;
        write_atomic(&out.join(format!("{file}.png")), &png)?;
        let mut last = Vec::new();
        let mut last_values = Vec::new();
        for (l, r) in maps.iter().enumerate() {
            let ct: f64 = r[1..].iter().map(|m| pearson(m, &train_gray)).sum::<f64>() / (r.len() - 1) as f64;
            let ci: f64 = r[1..].iter().zip(&inputs_gray[1..]).map(|(m, x)| pearson(m, x)).sum::<f64>() / (r.len() - 1) as f64;
            let _ = writeln!(csv, "{label},{l},{ct},{ci}");
            if l + 5 >= maps.len() {
                last.push(format!("{ct:.2}"));
                last_values.push(ct);
            }
        }
        let _ = writeln!(s, "| {label} | {} |", last.join(", "));
        if !label.starts_with("untrained") {
            // Nets come in increasing depth: the last trained one is the deepest.
            deepest_trained = Some((net.layers.len(), last_values));
        }
    }
    write_atomic(&out.join("hidden.csv"), csv.as_bytes())?;
    s += "\nClaims:\n\n";
    s += &claim(deepest_trained.as_ref().map(|(d, v)| (*d, v.as_slice()))).line();
    s += "\n";
    Ok(s)
}

/// Rise, over the last five layers, of the maps' correlation with the training image that counts
/// as the "7" growing in them.
pub const GROWTH: f64 = 0.2;

/// The `hidden` claim from the deepest trained net's `(depth, corr with the training image of its
/// last five layers' maps)`: `agrees` if it memorizes (output corr ≥ 0.9) and the correlation
/// rises by ≥ [`GROWTH`] over those layers, `disagrees` if it memorizes without that rise,
/// `undecided` without a memorizing trained net. That the growth starts at the zero-padded
/// borders is read from the figures, not computed.
pub fn claim(deepest: Option<(usize, &[f64])>) -> Claim {
    let paper = "a deep memorizing net grows the \"7\" inward from the image borders in its last layers";
    let Some((depth, v)) = deepest.filter(|(_, v)| v.len() >= 2) else {
        return Claim::new(paper, "no trained net", Verdict::Undecided);
    };
    let (first, out) = (v[0], v[v.len() - 1]);
    let ours = format!(
        "the {depth}-layer net's maps correlate {} with the \"7\" over its last {} layers (see `hidden-d{depth}.png` for where it grows)",
        v.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(" → "),
        v.len()
    );
    let verdict = if out < OUTCOME_THRESHOLD {
        Verdict::Undecided
    } else if out - first >= GROWTH {
        Verdict::Agrees
    } else {
        Verdict::Disagrees
    };
    Claim::new(paper, ours, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_is_computed_from_the_last_layers() {
        assert_eq!(claim(Some((20, &[0.1, 0.3, 0.6, 0.9, 0.99]))).verdict, Verdict::Agrees);
        assert_eq!(claim(Some((20, &[0.95, 0.96, 0.97, 0.98, 0.99]))).verdict, Verdict::Disagrees);
        assert_eq!(claim(Some((7, &[0.1, 0.2, 0.2, 0.3, 0.4]))).verdict, Verdict::Undecided);
        assert_eq!(claim(None).verdict, Verdict::Undecided);
        let line = claim(Some((20, &[0.1, 0.3, 0.6, 0.9, 0.99]))).line();
        assert!(line.starts_with("- Paper: ") && line.ends_with("→ agrees") && line.contains("0.10 → 0.30"), "{line}");
    }
}
