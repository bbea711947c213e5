//! `idcrisis theory fcn1|cnn1|ntk`.

use anyhow::Result;
use clap::{Args, Subcommand};
use idcrisis::data::ImageSpec;
use idcrisis::engine::Engine;
use idcrisis::figures;
use idcrisis::fsutil::write_atomic;
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, Init};
use idcrisis::theory::{cnn1, fcn1, ntk, ntk_run};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Flags shared by the theory commands.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Output directory [default: runs/theory-<command>-<time>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The training image.
    #[arg(long, default_value = "mnist:train:15", value_parser = |s: &str| s.parse::<ImageSpec>().map_err(|e| e.to_string()))]
    train_image: ImageSpec,
    /// Compute threads [default: all cores].
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Correlations of the random probes.
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.9", allow_negative_numbers = true)]
    rho: Vec<f64>,
    /// Gray N×N view of a colour training image (luma, central crop); the analyses take one
    /// channel of any H×W.
    #[arg(long, value_name = "N")]
    gray: Option<usize>,
}

/// Init flags of fcn1 / cnn1.
#[derive(Args, Debug, Clone)]
pub struct InitArgs {
    /// Initial weights' scheme.
    #[arg(long, value_enum, default_value_t = Init::TorchDefault)]
    init: Init,
    /// Multiplies the initial weights.
    #[arg(long, default_value_t = 1.0)]
    init_scale: f64,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `idcrisis theory ...`.
#[derive(Subcommand, Debug)]
pub enum TheoryCommand {
    /// Theorem 1: the one-layer linear FCN, predicted from W0 and checked by training.
    Fcn1 {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        init: InitArgs,
        /// GD steps of the check (the residual halves each step).
        #[arg(long, default_value_t = 100)]
        steps: u64,
    },
    /// The one-layer CNN: rank, null space, predicted and trained error by kernel size.
    Cnn1 {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        init: InitArgs,
        /// Odd kernel sizes.
        #[arg(long, value_delimiter = ',', default_value = "1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31,35,41,55")]
        kernels: Vec<usize>,
        /// Max training steps of the check, per kernel size.
        #[arg(long, default_value_t = 30000)]
        steps: u64,
    },
    /// Infinite-width NNGP / NTK predictions after training on the one image.
    Ntk {
        #[command(flatten)]
        common: Common,
        /// Network family.
        #[arg(long, value_enum, default_value_t = Arch::Cnn)]
        arch: Arch,
        /// Weight layers.
        #[arg(long, default_value_t = 5)]
        depth: usize,
        /// Activation.
        #[arg(long, value_enum, default_value_t = Activation::Relu)]
        act: Activation,
        /// CNN kernel side (odd).
        #[arg(long, default_value_t = 5)]
        kernel: usize,
        /// σw².
        #[arg(long = "weight-var", default_value_t = 2.0)]
        weight_var: f64,
        /// σb².
        #[arg(long = "bias-var", default_value_t = 0.0)]
        bias_var: f64,
        /// Also the heat map of predicted corr-to-identity for FCN and CNN at depths 1..=N.
        #[arg(long, value_name = "N")]
        heatmap: Option<usize>,
        /// Also train finite nets of these widths (FCN) / channels (CNN) in NTK parameterization
        /// and plot their distance to the NTK prediction.
        #[arg(long, value_delimiter = ',', value_name = "W1,W2,...")]
        compare: Vec<usize>,
        /// Seeds per width for --compare.
        #[arg(long, default_value_t = 2)]
        compare_seeds: u64,
        /// GD steps per finite net for --compare.
        #[arg(long, default_value_t = 200)]
        compare_steps: u64,
    },
}

fn out_dir(o: &Option<PathBuf>, name: &str) -> PathBuf {
    o.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        PathBuf::from("runs").join(format!("theory-{name}-{secs}"))
    })
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(v)?)?;
    Ok(())
}

fn to32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

/// Dispatch.
pub fn run(cmd: TheoryCommand, data_dir: PathBuf) -> Result<ExitCode> {
    idcrisis::experiment::run::check_data_dir(&data_dir)?;
    match cmd {
        TheoryCommand::Fcn1 { common, init, steps } => {
            let eng = Engine::new(common.threads)?;
            let out = out_dir(&common.out, "fcn1");
            let o =
                fcn1::run(&eng, &data_dir, &common.train_image, common.gray, init.init, init.init_scale, init.seed, steps, &common.rho)?;
            let r = &o.report;
            let mut csv = String::from("probe,max_rel_diff,pred_corr_identity,pred_corr_constant\n");
            for p in &r.probes {
                csv += &format!("{},{:e},{},{}\n", p.probe, p.max_rel_diff, p.corr_identity, p.corr_constant);
            }
            write_atomic(&out.join("fcn1.csv"), csv.as_bytes())?;
            write_json(&out.join("fcn1.json"), r)?;
            let rows = vec![
                o.probes.iter().map(|p| Some(p.image.clone())).collect(),
                o.predicted.iter().map(|v| Some(to32(v))).collect(),
                o.trained.iter().map(|v| Some(to32(v))).collect::<Vec<_>>(),
            ];
            let names: Vec<String> = o.probes.iter().map(|p| p.name.clone()).collect();
            let diffs: Vec<String> = r.probes.iter().map(|p| format!("diff {:.1e}", p.max_rel_diff)).collect();
            let png = figures::image_grid(
                "Theorem 1: one-layer linear FCN, prediction Π∥x + W0·Π⊥x vs trained",
                o.shape,
                &["input".into(), "theorem".into(), "trained".into()],
                &[names.clone(), names, diffs],
                &rows,
                None,
            )?;
            write_atomic(&out.join("fcn1.png"), &png)?;
            println!("Theorem 1 (one-layer linear FCN, GD {} steps at lr {:.4}, final loss {:.2e})", r.steps, r.lr, r.final_loss);
            println!("  weights: max relative difference trained vs closed form {:.2e}", r.weights_max_rel_diff);
            println!("  outputs: worst probe max relative difference {:.2e}", r.worst_probe_max_rel_diff);
            println!(
                "  noise for an input orthogonal to x̂ (‖x‖ = ‖x̂‖): predicted per-pixel std {:.4} (empirical {:.4}); x̂'s mean pixel {:.4}",
                r.noise_std_predicted, r.noise_std_empirical, r.train_image_mean
            );
            println!("wrote {}/fcn1.{{json,csv,png}}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        TheoryCommand::Cnn1 { common, init, kernels, steps } => {
            let eng = Engine::new(common.threads)?;
            let out = out_dir(&common.out, "cnn1");
            let t0 = Instant::now();
            let o = cnn1::run(
                &eng,
                &data_dir,
                &common.train_image,
                common.gray,
                &kernels,
                init.init,
                init.init_scale,
                init.seed,
                steps,
                &common.rho,
            )?;
            let mut csv = String::from("kernel,rank,nullity,null_component,predicted_rms_error,bound,trained_rms_error,max_rel_diff,weight_max_rel_diff,final_loss,steps\n");
            println!(
                "{:>3} {:>5} {:>7} {:>11} {:>11} {:>11} {:>10} {:>9}",
                "k", "rank", "nullity", "predicted", "bound", "trained", "max diff", "steps"
            );
            for r in &o.rows {
                csv += &format!(
                    "{},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{:e},{}\n",
                    r.kernel,
                    r.rank,
                    r.nullity,
                    r.null_component,
                    r.predicted_error,
                    r.bound,
                    r.trained_error,
                    r.max_rel_diff,
                    r.weight_max_rel_diff,
                    r.final_loss,
                    r.steps
                );
                println!(
                    "{:>3} {:>5} {:>7} {:>11.3e} {:>11.3e} {:>11.3e} {:>10.1e} {:>9}",
                    r.kernel, r.rank, r.nullity, r.predicted_error, r.bound, r.trained_error, r.max_rel_diff, r.steps
                );
            }
            write_atomic(&out.join("cnn1.csv"), csv.as_bytes())?;
            write_json(&out.join("cnn1.json"), &o.rows)?;
            let pts = |f: &dyn Fn(&cnn1::Row) -> f64| o.rows.iter().map(|r| (r.kernel as f64, f(r))).collect::<Vec<_>>();
            let (png, svg) = figures::line_plot(
                "One-layer CNN trained on one image: error ‖f(x) − x‖ on the probes",
                "kernel size k",
                "RMS error per pixel (mean over probes)",
                &[
                    ("predicted: P(x)·Π_N(w0 − e)".to_string(), pts(&|r| r.predicted_error)),
                    ("bound ‖P(x)‖·‖Π_N(w0 − e)‖".to_string(), pts(&|r| r.bound)),
                    ("trained network".to_string(), pts(&|r| r.trained_error)),
                ],
                true,
            )?;
            write_atomic(&out.join("cnn1.png"), &png)?;
            write_atomic(&out.join("cnn1.svg"), svg.as_bytes())?;
            let worst = o.rows.iter().filter(|r| r.nullity > 0).map(|r| r.max_rel_diff).fold(0.0, f64::max);
            println!(
                "largest trained-vs-predicted difference where the null space is non-trivial: {worst:.2e} ({:.1} s)",
                t0.elapsed().as_secs_f64()
            );
            println!("wrote {}/cnn1.{{json,csv,png,svg}}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        TheoryCommand::Ntk { common, arch, depth, act, kernel, weight_var, bias_var, heatmap, compare, compare_seeds, compare_steps } => {
            let out = out_dir(&common.out, "ntk");
            let eng = Engine::new(common.threads)?;
            let cfg = ntk::NtkConfig { arch, depth, act, kernel, weight_var, bias_var, ..Default::default() };
            let opts = ntk_run::NtkOptions { heatmap, compare, compare_seeds, compare_steps };
            let s = ntk_run::analyze(&eng, &data_dir, &common.train_image, common.gray, &common.rho, &cfg, &opts, &out)?;
            println!(
                "{} depth {depth} {act}: NTK mean corr to identity {:.3}, to constant {:.3} ({} fixed probes); {:.1} s, about {:.0} MB of kernel matrices",
                arch.to_string().to_uppercase(),
                s.ntk_corr_identity,
                s.ntk_corr_constant,
                s.fixed_probes,
                s.seconds,
                s.memory_bytes as f64 / 1e6
            );
            if heatmap.is_some() {
                println!("heat map: {}", out.join("ntk-heatmap.png").display());
            }
            if !s.compare.is_empty() {
                println!(
                    "finite nets vs NTK ({:.1} s): width → mean relative distance to the linearization / to the mean prediction",
                    s.compare_seconds
                );
                for (w, a, b) in &s.compare {
                    println!("  {w:>6} {a:>10.4} {b:>10.4}");
                }
            }
            println!("wrote {}/ntk.{{json,csv,png}}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
