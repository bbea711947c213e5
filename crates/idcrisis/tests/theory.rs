//! Theory: NTK closed forms, Monte-Carlo NTK/NNGP against the recursions, the one-layer CNN's
//! closed form against training, and Theorem 1 through the theory module.

mod common;

use idcrisis::data::ImageSpec;
use idcrisis::engine::{im2col, ConvGeom, Engine, Padding};
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::rng::{Rng, Stream};
use idcrisis::theory::ntk::{pair_recursion, NtkConfig};
use idcrisis::theory::{cnn1, fcn1};

fn images() -> (Vec<f64>, Vec<f64>) {
    let imgs = idcrisis::data::load_images(&common::data_dir(), idcrisis::data::Dataset::Mnist, idcrisis::data::Split::Test).unwrap();
    let a = imgs.pixels[784..2 * 784].iter().map(|&p| p as f64 / 255.0).collect();
    let b = imgs.pixels[4 * 784..5 * 784].iter().map(|&p| p as f64 / 255.0).collect();
    (a, b)
}

fn last(cfg: &NtkConfig, x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut out = (Vec::new(), Vec::new());
    pair_recursion(cfg, x, y, |l, st| {
        if l == cfg.depth {
            out = (st.k.clone(), st.theta.clone());
        }
    });
    out
}

#[test]
fn ntk_of_a_one_layer_linear_fcn_is_its_closed_form() {
    let (x, y) = images();
    let cfg =
        NtkConfig { arch: Arch::Fcn, depth: 1, act: Activation::Linear, kernel: 5, weight_var: 1.7, bias_var: 0.3, ..NtkConfig::default() };
    let (k, t) = last(&cfg, &x, &y);
    let want = 1.7 * x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() / 784.0 + 0.3;
    assert!((t[0] - want).abs() < 1e-12 * want, "{} vs {want}", t[0]);
    assert_eq!(k, t, "one layer: the NTK is the NNGP");
    // Two linear layers: Θ² = K² + σw²Θ¹ = 2·σw²·K¹ + σb² when σb = 0... check the recursion.
    let cfg2 = NtkConfig { depth: 2, bias_var: 0.0, ..cfg.clone() };
    let (k2, t2) = last(&cfg2, &x, &y);
    let k1 = 1.7 * x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() / 784.0;
    assert!((k2[0] - 1.7 * k1).abs() < 1e-12);
    assert!((t2[0] - (1.7 * k1 + 1.7 * k1)).abs() < 1e-12);
}

#[test]
fn ntk_of_a_one_layer_linear_cnn_is_the_patch_gram() {
    let (x, y) = images();
    let eng = Engine::new(1).unwrap();
    let k = 3;
    let cfg =
        NtkConfig { arch: Arch::Cnn, depth: 1, act: Activation::Linear, kernel: k, weight_var: 2.0, bias_var: 0.1, ..NtkConfig::default() };
    let (_, t) = last(&cfg, &x, &y);
    let g = ConvGeom::new(1, 28, 28, k, Padding::Zero);
    let (mut px, mut py) = (vec![0.0; 9 * 784], vec![0.0; 9 * 784]);
    im2col(&eng, &g, &x, &mut px);
    im2col(&eng, &g, &y, &mut py);
    for (p, q) in [(0, 0), (200, 201), (406, 407), (783, 10), (350, 500)] {
        let dot: f64 = (0..9).map(|r| px[r * 784 + p] * py[r * 784 + q]).sum();
        let want = 2.0 / 9.0 * dot + 0.1;
        assert!((t[p * 784 + q] - want).abs() < 1e-12, "[{p},{q}]: {} vs {want}", t[p * 784 + q]);
    }
}

#[test]
fn cnn_ntk_takes_any_height_and_width() {
    // 9×13 images: the one-layer linear NTK is the patch Gram of the zero-padded image there too,
    // and a two-layer ReLU recursion runs and is symmetric in its two inputs.
    let (h, w, k) = (9, 13, 5);
    let n = h * w;
    let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 / 11.0).collect();
    let y: Vec<f64> = (0..n).map(|i| ((i * 17) % 7) as f64 / 7.0).collect();
    let eng = Engine::new(1).unwrap();
    let cfg =
        NtkConfig { arch: Arch::Cnn, depth: 1, act: Activation::Linear, kernel: k, weight_var: 2.0, bias_var: 0.1, height: h, width: w };
    let (_, t) = last(&cfg, &x, &y);
    assert_eq!(t.len(), n * n);
    let g = ConvGeom::new(1, h, w, k, Padding::Zero);
    let (mut px, mut py) = (vec![0.0; k * k * n], vec![0.0; k * k * n]);
    im2col(&eng, &g, &x, &mut px);
    im2col(&eng, &g, &y, &mut py);
    for (p, q) in [(0, 0), (12, 13), (60, 61), (n - 1, 3), (40, 100)] {
        let dot: f64 = (0..k * k).map(|r| px[r * n + p] * py[r * n + q]).sum();
        let want = 2.0 / (k * k) as f64 * dot + 0.1;
        assert!((t[p * n + q] - want).abs() < 1e-12, "[{p},{q}]: {} vs {want}", t[p * n + q]);
    }
    let relu = NtkConfig { depth: 2, act: Activation::Relu, ..cfg };
    let (_, t_xy) = last(&relu, &x, &y);
    let (_, t_yx) = last(&relu, &y, &x);
    for (p, q) in [(0, 5), (30, 77), (n - 1, 0)] {
        assert!((t_xy[p * n + q] - t_yx[q * n + p]).abs() < 1e-12);
    }
    assert!(NtkConfig { height: 0, ..cfg }.validate().is_err());
}

/// A net of `cfg` in NTK parameterization: weights `N(0, σw²/fan_in)`, biases `N(0, σb²)`, drawn
/// from the Misc stream of `seed`.
fn ntk_param_net(cfg: &ModelConfig, sw: f64, sb: f64, seed: u64) -> Net<f64> {
    let mut net = Net::<f64>::new(cfg, idcrisis::Shape::MNIST).unwrap();
    let mut rng = Rng::new(seed, Stream::Misc);
    for l in net.layers.clone() {
        let fan_in = l.fans().0 as f64;
        for v in &mut net.params[l.weight_range()] {
            *v = rng.normal() * (sw / fan_in).sqrt();
        }
        for v in &mut net.params[l.bias_range().unwrap()] {
            *v = rng.normal() * sb.sqrt();
        }
    }
    net
}

/// `Σ_θ ∂f/∂θ(x)·∂f/∂θ(y)` in NTK parameterization, from the standard-parameter gradients.
fn ntk_dot(layers: &[idcrisis::nn::layers::Layer], sw: f64, sb: f64, gx: &[f64], gy: &[f64]) -> f64 {
    layers
        .iter()
        .map(|l| {
            let fan_in = l.fans().0 as f64;
            sw / fan_in * l.weight_range().map(|i| gx[i] * gy[i]).sum::<f64>()
                + sb * l.bias_range().unwrap().map(|i| gx[i] * gy[i]).sum::<f64>()
        })
        .sum()
}

/// Empirical (NNGP, NTK) of a depth-2 FCN of `width` in NTK parameterization, one draw per seed;
/// returns the mean over seeds of the relative errors against the analytic (K, Θ).
#[allow(clippy::too_many_arguments)]
fn empirical_errors(width: usize, sw: f64, sb: f64, x: &[f64], y: &[f64], seeds: u64, k: f64, t: f64) -> (f64, f64) {
    let eng = Engine::new(2).unwrap();
    let cfg = ModelConfig { arch: Arch::Fcn, depth: 2, width: Some(width), act: Activation::Relu, bias: true, ..Default::default() };
    let (mut ek, mut et) = (0.0, 0.0);
    for seed in 0..seeds {
        let mut net = ntk_param_net(&cfg, sw, sb, seed);
        let layers = net.layers.clone();
        let mut ws = net.workspace(1, true);
        let unit = 5 + seed as usize;
        // Returns the hidden activations and the gradient of output `unit`.
        let mut run = |input: &[f64], net: &mut Net<f64>| -> (Vec<f64>, Vec<f64>) {
            net.forward(&eng, &mut ws, input, 1);
            let hidden = ws.activation(1)[..width].to_vec();
            let d = ws.dout();
            d.iter_mut().for_each(|v| *v = 0.0);
            d[unit] = 1.0;
            net.backward(&eng, &mut ws, 1);
            (hidden, net.grads.clone())
        };
        let (hx, gx) = run(x, &mut net);
        let (hy, gy) = run(y, &mut net);
        // NNGP of the output given the hidden layer: σw²·mean(φ(h(x))φ(h(y))) + σb².
        let kk = sw * hx.iter().zip(&hy).map(|(a, b)| a * b).sum::<f64>() / width as f64 + sb;
        // NTK: Σ over parameters of ∂f/∂θ(x)·∂f/∂θ(y) in NTK parameterization.
        let tt = ntk_dot(&layers, sw, sb, &gx, &gy);
        ek += (kk - k).abs() / k;
        et += (tt - t).abs() / t;
    }
    (ek / seeds as f64, et / seeds as f64)
}

#[test]
fn monte_carlo_ntk_of_wide_fcns_approaches_the_recursion() {
    let (x, y) = images();
    let (sw, sb) = (2.0, 0.1);
    let cfg =
        NtkConfig { arch: Arch::Fcn, depth: 2, act: Activation::Relu, kernel: 5, weight_var: sw, bias_var: sb, ..NtkConfig::default() };
    let (k, t) = last(&cfg, &x, &y);
    let narrow = empirical_errors(64, sw, sb, &x, &y, 6, k[0], t[0]);
    let wide = empirical_errors(4096, sw, sb, &x, &y, 6, k[0], t[0]);
    eprintln!("NNGP/NTK mean relative errors: width 64 {narrow:?}, width 4096 {wide:?}");
    // Hidden-unit averages: the error falls like 1/√width (8× from 64 to 4096); ask for 2.5×.
    assert!(wide.0 < 0.05 && wide.1 < 0.05, "width 4096: mean relative errors (NNGP, NTK) {wide:?}");
    assert!(wide.0 * 2.5 < narrow.0 && wide.1 * 2.5 < narrow.1, "errors do not shrink with width: 64 → {narrow:?}, 4096 → {wide:?}");
    // A wrong recursion is caught: the linear kernel is far from the ReLU one.
    let lin = NtkConfig { act: Activation::Linear, ..cfg };
    let (_, tl) = last(&lin, &x, &y);
    assert!((tl[0] - t[0]).abs() / t[0] > 0.2);
}

/// Empirical NTK `Θ(x, y)[p, p′]` of a depth-2 ReLU CNN (k×k, `channels` hidden) in NTK
/// parameterization at the pixel pairs `pairs`, averaged over one draw per seed; returns
/// `‖mean Θ_emp − Θ‖ / ‖Θ‖` over the pairs, against the analytic `t` (`[784, 784]`).
#[allow(clippy::too_many_arguments)]
fn cnn_empirical_ntk_error(
    channels: usize,
    k: usize,
    sw: f64,
    sb: f64,
    x: &[f64],
    y: &[f64],
    seeds: u64,
    pairs: &[(usize, usize)],
    t: &[f64],
) -> f64 {
    let eng = Engine::new(2).unwrap();
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 2, channels, kernel: k, act: Activation::Relu, bias: true, ..Default::default() };
    let mut mean = vec![0.0; pairs.len()];
    for seed in 0..seeds {
        let mut net = ntk_param_net(&cfg, sw, sb, 100 + seed);
        let layers = net.layers.clone();
        let mut ws = net.workspace(1, true);
        let mut grad = |input: &[f64], pixel: usize, net: &mut Net<f64>| -> Vec<f64> {
            net.forward(&eng, &mut ws, input, 1);
            let d = ws.dout();
            d.iter_mut().for_each(|v| *v = 0.0);
            d[pixel] = 1.0;
            net.backward(&eng, &mut ws, 1);
            net.grads.clone()
        };
        for (m, &(p, q)) in mean.iter_mut().zip(pairs) {
            let (gx, gy) = (grad(x, p, &mut net), grad(y, q, &mut net));
            let tt = ntk_dot(&layers, sw, sb, &gx, &gy);
            *m += tt / seeds as f64;
        }
    }
    let num: f64 = mean.iter().zip(pairs).map(|(m, &(p, q))| (m - t[p * 784 + q]).powi(2)).sum();
    let den: f64 = pairs.iter().map(|&(p, q)| t[p * 784 + q].powi(2)).sum();
    (num / den).sqrt()
}

#[test]
fn monte_carlo_ntk_of_wide_cnns_approaches_the_recursion() {
    // Depth 2, 3×3, ReLU: the empirical NTK at a few pixel pairs (same pixel, neighbours, and
    // pairs a few pixels apart) against the CNN recursion, at 16 and 2048 channels.
    let (x, y) = images();
    let (sw, sb, k) = (2.0, 0.1, 3);
    let cfg =
        NtkConfig { arch: Arch::Cnn, depth: 2, act: Activation::Relu, kernel: k, weight_var: sw, bias_var: sb, ..NtkConfig::default() };
    let (_, t) = last(&cfg, &x, &y);
    let pairs = [(406, 406), (406, 407), (378, 434), (350, 352), (460, 461)];
    let narrow = cnn_empirical_ntk_error(16, k, sw, sb, &x, &y, 6, &pairs, &t);
    let wide = cnn_empirical_ntk_error(2048, k, sw, sb, &x, &y, 6, &pairs, &t);
    eprintln!("CNN NTK mean relative error: 16 channels {narrow:.4}, 2048 channels {wide:.4}");
    assert!(wide < 0.015, "2048 channels: relative error {wide}");
    // Channel averages: the error falls like 1/√channels (11× from 16 to 2048); ask for 4×.
    assert!(wide * 4.0 < narrow, "errors do not shrink with channels: 16 → {narrow}, 2048 → {wide}");
    // The linear recursion is far from the ReLU one at these pairs.
    let (_, tl) = last(&NtkConfig { act: Activation::Linear, ..cfg }, &x, &y);
    let d: f64 = pairs.iter().map(|&(p, q)| (tl[p * 784 + q] - t[p * 784 + q]).powi(2)).sum::<f64>().sqrt();
    let n: f64 = pairs.iter().map(|&(p, q)| t[p * 784 + q].powi(2)).sum::<f64>().sqrt();
    assert!(d / n > 0.2, "linear vs ReLU kernels differ by only {}", d / n);
}

#[test]
fn cnn1_closed_form_matches_training_where_the_null_space_is_not_trivial() {
    let eng = Engine::new(2).unwrap();
    let out =
        cnn1::run(&eng, &common::data_dir(), &ImageSpec::default(), None, &[3, 41], Init::TorchDefault, 1.0, 0, 30_000, &[0.5]).unwrap();
    let (k3, k29) = (&out.rows[0], &out.rows[1]);
    assert_eq!(k3.nullity, 0, "3×3 patches of the 7 have full rank");
    assert!(k3.predicted_error < 1e-10, "full rank: f(x) = x exactly, got {}", k3.predicted_error);
    assert!(k29.nullity >= 1681 - 784, "1681 taps on 784 pixels must leave a null space");
    assert!(k29.predicted_error > 1e-3, "a non-trivial null space must show up as an error");
    assert!(k29.max_rel_diff < 1e-9, "trained vs closed form: {}", k29.max_rel_diff);
    assert!(k29.weight_max_rel_diff < 1e-9, "weights: {}", k29.weight_max_rel_diff);
    for r in &out.rows {
        for (p, t) in r.per_probe_predicted.iter().zip(&r.per_probe_trained) {
            assert!(p <= &(r.bound + 1e-12) || r.nullity == 0);
            assert!((p - t).abs() <= 1e-6 * (1.0 + p), "k={}: predicted {p} vs trained {t}", r.kernel);
        }
    }
}

#[test]
fn theorem1_through_the_theory_module() {
    let eng = Engine::new(2).unwrap();
    let o = fcn1::run(&eng, &common::data_dir(), &ImageSpec::default(), None, Init::TorchDefault, 1.0, 3, 100, &[0.0]).unwrap();
    assert!(o.report.weights_max_rel_diff < 1e-12, "{}", o.report.weights_max_rel_diff);
    assert!(o.report.worst_probe_max_rel_diff < 1e-10, "{}", o.report.worst_probe_max_rel_diff);
    // The empirical noise level matches the scheme's variance within sampling error.
    let r = o.report.noise_std_empirical / o.report.noise_std_predicted;
    assert!((r - 1.0).abs() < 0.01, "{r}");
    assert_eq!(o.predicted.len(), o.probes.len());
}

#[test]
fn one_layer_closed_forms_hold_at_another_image_size() {
    // A 12×10 gray image file: Theorem 1 (FCN) and the one-layer CNN closed form both hold.
    let dir = common::tempdir("theory-size");
    let png = dir.join("small.png");
    image::GrayImage::from_fn(10, 12, |x, y| image::Luma([((x * 23 + y * 11) % 256) as u8])).save(&png).unwrap();
    let spec = ImageSpec::File(png);
    let eng = Engine::new(2).unwrap();
    let o = fcn1::run(&eng, &dir, &spec, None, Init::TorchDefault, 1.0, 3, 100, &[0.0]).unwrap();
    assert_eq!(o.shape, idcrisis::Shape::new(1, 12, 10));
    assert!(o.report.weights_max_rel_diff < 1e-12, "{}", o.report.weights_max_rel_diff);
    assert!(o.probes.iter().all(|p| p.image.len() == 120));
    let c = cnn1::run(&eng, &dir, &spec, None, &[3], Init::TorchDefault, 1.0, 0, 30_000, &[0.5]).unwrap();
    assert!(c.rows[0].max_rel_diff < 1e-6, "{}", c.rows[0].max_rel_diff);
    // A colour image needs its gray view.
    let rgb = dir.join("rgb.png");
    image::RgbImage::from_fn(10, 12, |x, _| image::Rgb([x as u8 * 20, 3, 9])).save(&rgb).unwrap();
    let e = fcn1::run(&eng, &dir, &ImageSpec::File(rgb.clone()), None, Init::TorchDefault, 1.0, 3, 10, &[0.0]).map(|_| ());
    assert!(e.is_ok(), "Theorem 1 holds in any dimension, colour included");
    let e = cnn1::run(&eng, &dir, &ImageSpec::File(rgb), None, &[3], Init::TorchDefault, 1.0, 0, 10, &[0.5]).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("--gray"), "{e}");
}

/// Gauss–Legendre nodes and weights on [−1, 1] (Newton on P_n from the Chebyshev guesses).
fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
            let mut dp = 0.0;
            for _ in 0..100 {
                let (mut p0, mut p1) = (1.0, x);
                for k in 2..=n {
                    let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                    p0 = p1;
                    p1 = p2;
                }
                dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
                let dx = p1 / dp;
                x -= dx;
                if dx.abs() < 1e-16 {
                    break;
                }
            }
            (x, 2.0 / ((1.0 - x * x) * dp * dp))
        })
        .collect()
}

/// `E[relu(u)relu(v)]` and `P(u > 0, v > 0)` for `(u, v) ~ N(0, [[k11, k12], [k12, k22]])` by
/// quadrature, independently of the arc-cosine formulas: with `u = a·z₁`, `v = b·z₁ + c·z₂` and
/// `z = r(cos θ, sin θ)`, the radial integrals are exact (∫r³e^{−r²/2} = 2, ∫r e^{−r²/2} = 1) and
/// the angular one is Gauss–Legendre on the pieces between the kinks of the integrand.
fn relu_by_quadrature(k11: f64, k22: f64, k12: f64) -> (f64, f64) {
    use std::f64::consts::PI;
    let a = k11.sqrt();
    let b = k12 / a;
    let c = (k22 - b * b).max(0.0).sqrt();
    let g = |t: f64| {
        (
            (a * t.cos()).max(0.0) * (b * t.cos() + c * t.sin()).max(0.0),
            ((a * t.cos() > 0.0) && (b * t.cos() + c * t.sin() > 0.0)) as u8 as f64,
        )
    };
    // Kinks: cos θ = 0 and b cos θ + c sin θ = 0, in [0, 2π).
    let mut cuts = vec![0.0, PI / 2.0, 3.0 * PI / 2.0, 2.0 * PI];
    let t0 = (-b).atan2(c).rem_euclid(PI);
    cuts.extend([t0, t0 + PI]);
    cuts.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let nodes = gauss_legendre(30);
    let (mut e, mut p) = (0.0, 0.0);
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        for &(x, wt) in &nodes {
            let (ge, gp) = g(lo + (hi - lo) * (x + 1.0) / 2.0);
            e += wt * (hi - lo) / 2.0 * ge;
            p += wt * (hi - lo) / 2.0 * gp;
        }
    }
    (2.0 * e / (2.0 * PI), p / (2.0 * PI))
}

#[test]
fn relu_expectations_match_quadrature() {
    for &(k11, k22, k12) in &[(1.0, 1.0, 0.0), (1.0, 1.0, 0.5), (2.0, 0.5, -0.7), (0.3, 1.7, 0.71), (1.0, 1.0, 0.999), (4.0, 1.0, -1.99)] {
        let (e, d) = idcrisis::theory::ntk::expectations(Activation::Relu, k11, k22, k12);
        let (qe, qp) = relu_by_quadrature(k11, k22, k12);
        assert!((e - qe).abs() < 1e-8, "E[relu relu] at {k11},{k22},{k12}: {e} vs quadrature {qe}");
        // E[φ′(u)φ′(v)] = P(u > 0, v > 0).
        assert!((d - qp).abs() < 1e-8, "E[relu' relu'] at {k11},{k22},{k12}: {d} vs quadrature {qp}");
    }
    // The quadrature itself: u = v gives E[relu(u)²] = k/2 and P = 1/2.
    let (qe, qp) = relu_by_quadrature(1.3, 1.3, 1.3);
    assert!((qe - 0.65).abs() < 1e-10 && (qp - 0.5).abs() < 1e-10, "{qe} {qp}");
}
