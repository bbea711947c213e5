//! `idcrisis theory ntk` as a library function: the infinite-width predictions on the probes of
//! a training image, written to a directory, with the optional depth heat map and the
//! finite-width comparison.
//!
//! | file | content |
//! |---|---|
//! | `ntk.json`, `ntk.csv` | config, timing, per-probe corr of the NTK and NNGP predictions to identity and constant |
//! | `ntk.png` | the probes and both predictions |
//! | `ntk-heatmap.{png,svg,csv}` | mean corr to identity of the NTK prediction by depth, FCN and CNN (`heatmap`) |
//! | `ntk-compare.{png,svg,csv}` | finite nets trained in NTK parameterization vs the kernels (`compare`) |

use super::ntk::{self, NtkConfig};
use super::{one_channel, train_image_f64};
use crate::data::ImageSpec;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::eval::metrics::pearson;
use crate::eval::probe::{self, Probe};
use crate::figures;
use crate::fsutil::write_atomic;
use crate::nn::model::Arch;
use crate::shape::Shape;
use std::path::Path;
use std::time::Instant;

/// What to compute beyond the predictions at `cfg.depth`.
#[derive(Debug, Clone, Default)]
pub struct NtkOptions {
    /// Heat map of the predicted corr to identity for FCN and CNN at depths `1..=N`.
    pub heatmap: Option<usize>,
    /// Widths (FCN) or channel counts (CNN) of finite nets to compare with the kernels.
    pub compare: Vec<usize>,
    /// Seeds per width.
    pub compare_seeds: u64,
    /// GD steps per finite net.
    pub compare_steps: u64,
}

/// The numbers `theory ntk` reports.
#[derive(Debug, Clone)]
pub struct NtkSummary {
    /// The config, with the image's height and width filled in.
    pub cfg: NtkConfig,
    /// Mean corr to identity of the NTK prediction over the fixed probes.
    pub ntk_corr_identity: f64,
    /// Mean corr to constant of the NTK prediction over the fixed probes.
    pub ntk_corr_constant: f64,
    /// Fixed probes averaged.
    pub fixed_probes: usize,
    /// Seconds for the predictions.
    pub seconds: f64,
    /// Approximate bytes of kernel matrices held at once.
    pub memory_bytes: usize,
    /// Per width of `compare`: mean relative distance to the linearization and to the mean
    /// prediction.
    pub compare: Vec<(usize, f64, f64)>,
    /// Seconds of the comparison.
    pub compare_seconds: f64,
}

fn to32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

/// Compute and write everything into `out` (see the module docs). `cfg.height`/`cfg.width` are
/// set from the training image (one channel; `gray` gives a colour image's gray view).
#[allow(clippy::too_many_arguments)]
pub fn analyze(
    eng: &Engine,
    data_dir: &Path,
    spec: &ImageSpec,
    gray: Option<usize>,
    rhos: &[f64],
    cfg: &NtkConfig,
    opts: &NtkOptions,
    out: &Path,
) -> Result<NtkSummary> {
    let (shape, x) = train_image_f64(data_dir, spec, gray)?;
    one_channel(shape, spec)?;
    let cfg = NtkConfig { height: shape.height, width: shape.width, ..cfg.clone() };
    cfg.validate()?;
    let x32 = to32(&x);
    let probes = probe::probes_for(data_dir, spec, shape, gray, &x32, rhos)?;
    let inputs: Vec<Vec<f64>> = probes.iter().map(|p| p.image.iter().map(|&v| v as f64).collect()).collect();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let t0 = Instant::now();
    let pred = eng.install(|| ntk::predict(&cfg, &x, &inputs))?;
    let seconds = t0.elapsed().as_secs_f64();
    let l = cfg.depth - 1;
    let mut csv = String::from("probe,category,ntk_corr_identity,ntk_corr_constant,nngp_corr_identity,nngp_corr_constant\n");
    let mut rows_json = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let (a, b) = (to32(&pred.ntk[l][i]), to32(&pred.nngp[l][i]));
        let r = (pearson(&a, &p.image), pearson(&a, &x32), pearson(&b, &p.image), pearson(&b, &x32));
        csv += &format!("{},{},{},{},{},{}\n", p.name, p.category.name(), r.0, r.1, r.2, r.3);
        rows_json.push(serde_json::json!({"probe": p.name, "category": p.category.name(), "ntk": {"corr_identity": r.0, "corr_constant": r.1}, "nngp": {"corr_identity": r.2, "corr_constant": r.3}}));
    }
    write_atomic(&out.join("ntk.csv"), csv.as_bytes())?;
    let fixed: Vec<usize> = (0..probes.len()).filter(|&i| probes[i].category.is_paper()).collect();
    let mean = |f: &dyn Fn(usize) -> f64| fixed.iter().map(|&i| f(i)).sum::<f64>() / fixed.len().max(1) as f64;
    let ntk_id = mean(&|i| pearson(&to32(&pred.ntk[l][i]), &probes[i].image));
    let ntk_c = mean(&|i| pearson(&to32(&pred.ntk[l][i]), &x32));
    let json = serde_json::json!({"config": cfg, "seconds": seconds, "memory_bytes": pred.memory_bytes, "jitter": pred.jitter, "paper_mean": {"ntk_corr_identity": ntk_id, "ntk_corr_constant": ntk_c}, "probes": rows_json});
    write_atomic(&out.join("ntk.json"), &serde_json::to_vec_pretty(&json).map_err(|e| Error::Other(e.to_string()))?)?;
    let arch = cfg.arch.to_string().to_uppercase();
    let (depth, act) = (cfg.depth, cfg.act);
    prediction_grid(
        &probes,
        &pred.ntk[l],
        &pred.nngp[l],
        shape,
        &format!("Infinite-width {arch} (depth {depth}, {act}): predictions after training on one image"),
        out,
    )?;
    if let Some(maxd) = opts.heatmap {
        heatmap(eng, &cfg, maxd, &x, &x32, &inputs, &probes, &fixed, out)?;
    }
    let (mut compare, mut compare_seconds) = (Vec::new(), 0.0);
    if !opts.compare.is_empty() {
        let t1 = Instant::now();
        compare = finite_widths(eng, &cfg, opts, &x, &inputs, out)?;
        compare_seconds = t1.elapsed().as_secs_f64();
    }
    Ok(NtkSummary {
        cfg,
        ntk_corr_identity: ntk_id,
        ntk_corr_constant: ntk_c,
        fixed_probes: fixed.len(),
        seconds,
        memory_bytes: pred.memory_bytes,
        compare,
        compare_seconds,
    })
}

fn prediction_grid(probes: &[Probe], ntk: &[Vec<f64>], nngp: &[Vec<f64>], shape: Shape, title: &str, out: &Path) -> Result<()> {
    let names: Vec<String> = probes.iter().map(|p| p.name.clone()).collect();
    let grid = vec![
        probes.iter().map(|p| Some(p.image.clone())).collect(),
        ntk.iter().map(|v| Some(to32(v))).collect(),
        nngp.iter().map(|v| Some(to32(v))).collect::<Vec<_>>(),
    ];
    let png = figures::image_grid(
        title,
        shape,
        &["input".into(), "NTK".into(), "NNGP".into()],
        &[names.clone(), names.clone(), names],
        &grid,
        None,
    )?;
    write_atomic(&out.join("ntk.png"), &png)
}

#[allow(clippy::too_many_arguments)]
fn heatmap(
    eng: &Engine,
    cfg: &NtkConfig,
    maxd: usize,
    x: &[f64],
    x32: &[f32],
    inputs: &[Vec<f64>],
    probes: &[Probe],
    fixed: &[usize],
    out: &Path,
) -> Result<()> {
    let mean = |f: &dyn Fn(usize) -> f64| fixed.iter().map(|&i| f(i)).sum::<f64>() / fixed.len().max(1) as f64;
    let mut values = Vec::new();
    let mut csv = String::from("arch,depth,ntk_corr_identity,ntk_corr_constant\n");
    for a in [Arch::Fcn, Arch::Cnn] {
        let c = NtkConfig { arch: a, depth: maxd.max(1), ..cfg.clone() };
        let p = eng.install(|| ntk::predict(&c, x, inputs))?;
        let mut row = Vec::new();
        for d in 0..c.depth {
            let id = mean(&|i| pearson(&to32(&p.ntk[d][i]), &probes[i].image));
            let co = mean(&|i| pearson(&to32(&p.ntk[d][i]), x32));
            csv += &format!("{a},{},{id},{co}\n", d + 1);
            row.push(id);
        }
        values.push(row);
    }
    let cols: Vec<String> = (1..=maxd.max(1)).map(|d| d.to_string()).collect();
    let (png, svg) = figures::heatmap(
        &format!(
            "NTK prediction: mean corr to identity ({} probes), {}, σw²={}, σb²={}",
            fixed.len(),
            cfg.act,
            cfg.weight_var,
            cfg.bias_var
        ),
        &["FCN".into(), format!("CNN {k}×{k}", k = cfg.kernel)],
        &cols,
        &values,
    )?;
    write_atomic(&out.join("ntk-heatmap.png"), &png)?;
    write_atomic(&out.join("ntk-heatmap.svg"), svg.as_bytes())?;
    write_atomic(&out.join("ntk-heatmap.csv"), csv.as_bytes())
}

fn finite_widths(
    eng: &Engine,
    cfg: &NtkConfig,
    opts: &NtkOptions,
    x: &[f64],
    inputs: &[Vec<f64>],
    out: &Path,
) -> Result<Vec<(usize, f64, f64)>> {
    let rows = ntk::compare(eng, cfg, &opts.compare, opts.compare_seeds, opts.compare_steps, x, inputs)?;
    let mut csv = String::from("width,seed,rel_err_linearized,rel_err_mean,final_loss\n");
    for r in &rows {
        csv += &format!("{},{},{},{},{:e}\n", r.width, r.seed, r.rel_err_linearized, r.rel_err_mean, r.final_loss);
    }
    write_atomic(&out.join("ntk-compare.csv"), csv.as_bytes())?;
    let avg = |f: &dyn Fn(&ntk::CompareRow) -> f64| -> Vec<(f64, f64)> {
        opts.compare
            .iter()
            .map(|&w| {
                let v: Vec<f64> = rows.iter().filter(|r| r.width == w).map(f).collect();
                (w as f64, v.iter().sum::<f64>() / v.len().max(1) as f64)
            })
            .collect()
    };
    let (lin, mean_e) = (avg(&|r| r.rel_err_linearized), avg(&|r| r.rel_err_mean));
    let (png, svg) = figures::line_plot(
        &format!(
            "Finite {} (depth {}) trained {} GD steps vs infinite width",
            cfg.arch.to_string().to_uppercase(),
            cfg.depth,
            opts.compare_steps
        ),
        if cfg.arch == Arch::Cnn { "channels" } else { "width" },
        "relative distance of outputs on the probes",
        &[
            ("to the NTK linearization from the same init".to_string(), lin.clone()),
            ("to the mean NTK prediction Θ(x,x̂)Θ̂⁻¹x̂".to_string(), mean_e.clone()),
        ],
        true,
    )?;
    write_atomic(&out.join("ntk-compare.png"), &png)?;
    write_atomic(&out.join("ntk-compare.svg"), svg.as_bytes())?;
    Ok(lin.iter().zip(&mean_e).map(|((w, a), (_, b))| (*w as usize, *a, *b)).collect())
}
