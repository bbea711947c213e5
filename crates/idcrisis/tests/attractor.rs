//! Attractor analysis on constructed maps with known dynamics, and on a one-layer linear net
//! whose Jacobian is its weight matrix.

use idcrisis::engine::Engine;
use idcrisis::eval::attractor::{self, Class, EndState, Options, Start};
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, ModelConfig, Net};
use idcrisis::rng::{Rng, Stream};
use idcrisis::Shape;
use nalgebra::DMatrix;

const D: usize = 12;

fn image(seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed, Stream::Misc);
    (0..D).map(|_| r.uniform() as f32).collect()
}

fn start(name: &str, image: Vec<f32>) -> Start {
    Start { name: name.into(), image }
}

/// Starts: three random images and the blank.
fn some_starts() -> Vec<Start> {
    vec![start("r1", image(11)), start("r2", image(12)), start("r3", image(13)), start("blank", vec![0.0; D])]
}

/// Apply `f` row by row to a batch.
fn rows(mut f: impl FnMut(&[f64], &mut [f64])) -> impl FnMut(&[f64], &mut [f64]) {
    move |xs: &[f64], ys: &mut [f64]| {
        for (x, y) in xs.chunks_exact(D).zip(ys.chunks_exact_mut(D)) {
            f(x, y)
        }
    }
}

fn contraction(to: Vec<f32>, rate: f64) -> impl FnMut(&[f64], &mut [f64]) {
    rows(move |x, y| {
        for i in 0..D {
            y[i] = to[i] as f64 + rate * (x[i] - to[i] as f64);
        }
    })
}

#[test]
fn a_contraction_converges_to_its_training_image() {
    let (a, b) = (image(1), image(2));
    let train = vec![a.clone(), b.clone()];
    let opts = Options::default();
    // Towards b, the second training image: every start, the blank included, ends there.
    let mut traj = attractor::iterate(contraction(b.clone(), 0.5), &some_starts(), &train, &opts).unwrap();
    for r in &traj.results {
        assert_eq!(r.class, Class::TrainingImage { index: 1 }, "{r:?}");
        assert!(r.final_rel_step < 1e-6 && r.nearest_rel_distance < 1e-5, "{r:?}");
        // Halving the distance each step: about log2(1e6) steps, never the budget.
        assert!((15..=30).contains(&r.steps), "{r:?}");
    }
    let fps = attractor::cluster_fixed_points(&mut traj, &opts);
    let s = attractor::summarize(&traj.results, &fps, 2);
    assert_eq!(s.basin_shares, vec![0.0, 1.0]);
    assert_eq!(s.fractions["training-image"], 1.0);
    assert_eq!(s.spurious_fixed_points, 0);
    // Snapshots at 0, 1, 2, 4, 8, 16 follow x_t = b + 2^-t (x_0 − b).
    let x0 = &some_starts()[0].image;
    let snaps = &traj.snapshots[0];
    assert_eq!(snaps.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![0, 1, 2, 4, 8, 16]);
    for (t, x) in snaps {
        for i in 0..D {
            let want = b[i] as f64 + 0.5f64.powi(*t as i32) * (x0[i] as f64 - b[i] as f64);
            assert!((x[i] as f64 - want).abs() < 1e-6, "t={t} i={i}");
        }
    }
}

#[test]
fn swapping_two_images_is_a_two_cycle_and_a_coordinate_rotation_a_three_cycle() {
    let (a, b) = (image(1), image(2));
    let train = vec![a.clone(), b.clone()];
    let opts = Options::default();
    let (a2, b2) = (a.clone(), b.clone());
    let swap = rows(move |x, y| {
        for i in 0..D {
            y[i] = a2[i] as f64 + b2[i] as f64 - x[i];
        }
    });
    // Starting at a training image, the swap visits a, b, a, …
    let starts = vec![start("a", a.clone()), start("r1", image(11)), start("blank", vec![0.0; D])];
    let traj = attractor::iterate(swap, &starts, &train, &opts).unwrap();
    for r in &traj.results {
        assert_eq!(r.class, Class::Cycle { period: 2 }, "{r:?}");
        assert_eq!(r.steps, 2, "{r:?}");
    }
    let rotate = rows(|x, y| {
        for i in 0..D {
            y[(i + D / 3) % D] = x[i];
        }
    });
    let traj = attractor::iterate(rotate, &some_starts()[..3], &train, &opts).unwrap();
    for r in &traj.results {
        assert_eq!(r.class, Class::Cycle { period: 3 }, "{r:?}");
    }
    let s = attractor::summarize(&traj.results, &[], 2);
    assert_eq!(s.cycle_periods, vec![3, 3, 3]);
}

/// An attracting cycle p_0 → p_1 → … → p_0: from x, nearest p_k, to p_{k+1} + 0.5·(x − p_k).
fn attracting_cycle(points: Vec<Vec<f32>>) -> impl FnMut(&[f64], &mut [f64]) {
    rows(move |x, y| {
        let d = |p: &Vec<f32>| x.iter().zip(p).map(|(a, b)| (a - *b as f64).powi(2)).sum::<f64>();
        let k = (0..points.len()).min_by(|&i, &j| d(&points[i]).total_cmp(&d(&points[j]))).unwrap();
        let (from, to) = (&points[k], &points[(k + 1) % points.len()]);
        for i in 0..D {
            y[i] = to[i] as f64 + 0.5 * (x[i] - from[i] as f64);
        }
    })
}

#[test]
fn attracting_cycles_are_found_after_a_transient_longer_than_the_ring() {
    let train = vec![image(1)];
    let opts = Options::default();
    for period in [2, 3, 5] {
        let points: Vec<Vec<f32>> = (0..period).map(|k| image(100 + k as u64).iter().map(|v| 4.0 * v).collect()).collect();
        let traj = attractor::iterate(attracting_cycle(points), &some_starts(), &train, &opts).unwrap();
        for r in &traj.results {
            assert_eq!(r.class, Class::Cycle { period }, "{r:?}");
            // The distance to the cycle halves per step: about 20 steps, well past the ring of 8.
            assert!(r.steps > 2 * opts.max_period, "{r:?}");
        }
    }
}

#[test]
fn an_expanding_map_diverges_and_so_does_a_nan() {
    let train = vec![image(1)];
    let opts = Options::default();
    let expand = rows(|x, y| {
        for i in 0..D {
            y[i] = 3.0 * x[i] + 0.1;
        }
    });
    let traj = attractor::iterate(expand, &some_starts(), &train, &opts).unwrap();
    for r in &traj.results {
        assert_eq!(r.class, Class::Diverging, "{r:?}");
        // Past 1e6 × ‖t‖ after about log3(1e7) steps.
        assert!(r.steps < 30 && r.final_norm > 1e6, "{r:?}");
    }
    let nan = rows(|_, y| y.fill(f64::NAN));
    let traj = attractor::iterate(nan, &some_starts(), &train, &opts).unwrap();
    assert!(traj.results.iter().all(|r| r.class == Class::Diverging && r.steps == 1));
    // Non-finite values are written to JSON as null and read back as NaN.
    let json = serde_json::to_string(&traj.results).unwrap();
    assert!(json.contains("\"final_norm\":null"), "{json}");
    let back: Vec<attractor::StartResult> = serde_json::from_str(&json).unwrap();
    assert!(back.iter().all(|r| r.class == Class::Diverging && r.final_norm.is_nan()));
}

#[test]
fn fixed_points_away_from_the_training_images_are_spurious_and_clustered() {
    let train = vec![image(1)];
    let opts = Options::default();
    let p: Vec<f32> = vec![0.25; D];
    let traj = attractor::iterate(contraction(p.clone(), 0.5), &some_starts(), &train, &opts).unwrap();
    assert!(traj.results.iter().all(|r| r.class == Class::OtherFixedPoint), "{:?}", traj.results);
    // Shrinking to the zero image converges too (the relative step has a floor), in about
    // log2(1e6 / 1e-3) steps, and every start ends at the same point.
    let mut traj = attractor::iterate(contraction(vec![0.0; D], 0.5), &some_starts(), &train, &opts).unwrap();
    for r in &traj.results {
        assert_eq!(r.class, Class::OtherFixedPoint, "{r:?}");
        assert!(r.steps < 60 && r.final_norm < 1e-6, "{r:?}");
    }
    assert_eq!(attractor::cluster_fixed_points(&mut traj, &opts).len(), 1);
    // Two spurious points: towards p when x[0] < 0.5, else towards q.
    let q: Vec<f32> = vec![0.9; D];
    let (p2, q2) = (p.clone(), q.clone());
    let two = rows(move |x, y| {
        let to = if x[0] < 0.5 { &p2 } else { &q2 };
        for i in 0..D {
            y[i] = to[i] as f64 + 0.5 * (x[i] - to[i] as f64);
        }
    });
    let mut starts = some_starts();
    starts[0].image[0] = 0.8;
    starts[1].image[0] = 0.1;
    starts[2].image[0] = 0.7;
    let mut traj = attractor::iterate(two, &starts, &train, &opts).unwrap();
    let fps = attractor::cluster_fixed_points(&mut traj, &opts);
    assert_eq!(fps.len(), 2, "{fps:?}");
    assert_eq!(fps[0].starts, vec!["r1", "r3"]);
    assert_eq!(fps[1].starts, vec!["r2", "blank"]);
    assert_eq!((fps[0].share, fps[1].share), (0.5, 0.5));
    assert_eq!(traj.results[2].fixed_point, Some(0));
    let s = attractor::summarize(&traj.results, &fps, 1);
    assert_eq!((s.spurious_fixed_points, s.spurious_shares.clone()), (2, vec![0.5, 0.5]));
    assert_eq!(s.fractions["other-fixed-point"], 1.0);
    // The CSV has a header and one row per start, with the cluster.
    let csv = attractor::csv(&traj.results);
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.lines().nth(1).unwrap().starts_with("r1,other-fixed-point,,,0,"), "{csv}");
}

#[test]
fn a_slow_contraction_is_undecided_when_the_budget_runs_out() {
    let t = image(1);
    let opts = Options { max_steps: 10, ..Options::default() };
    let traj = attractor::iterate(contraction(t.clone(), 0.999), &some_starts()[..2], &[t], &opts).unwrap();
    for r in &traj.results {
        assert_eq!(r.class, Class::Undecided, "{r:?}");
        assert_eq!(r.steps, 10);
    }
    // Snapshots at 0, 1, 2, 4, 8; the figure's last column is the final state.
    assert_eq!(traj.snapshots[0].len(), 5);
}

#[test]
fn classify_applies_the_rules_in_order() {
    let opts = Options::default();
    let base = EndState { rel_step: 1e-7, norm: 1.0, finite: true, nearest: 3, nearest_rel: 1e-3, period: None };
    assert_eq!(attractor::classify(&base, &opts, 10.0), Class::TrainingImage { index: 3 });
    assert_eq!(attractor::classify(&EndState { nearest_rel: 0.02, ..base }, &opts, 10.0), Class::OtherFixedPoint);
    assert_eq!(attractor::classify(&EndState { norm: 11.0, ..base }, &opts, 10.0), Class::Diverging);
    assert_eq!(attractor::classify(&EndState { finite: false, ..base }, &opts, 10.0), Class::Diverging);
    let moving = EndState { rel_step: 1e-3, ..base };
    assert_eq!(attractor::classify(&moving, &opts, 10.0), Class::Undecided);
    assert_eq!(attractor::classify(&EndState { period: Some(4), ..moving }, &opts, 10.0), Class::Cycle { period: 4 });
}

fn linear_net<T: idcrisis::Float>(shape: Shape, seed: u64) -> Net<T> {
    let cfg = ModelConfig { arch: Arch::Fcn, depth: 1, act: Activation::Linear, bias: true, ..ModelConfig::default() };
    let mut net = Net::<T>::new(&cfg, shape).unwrap();
    net.init(idcrisis::nn::model::Init::TorchDefault, 1.0, seed);
    net
}

fn weight_matrix<T: idcrisis::Float>(net: &Net<T>) -> DMatrix<f64> {
    let d = net.shape.len();
    let w = &net.params[net.layers[0].weight_range()];
    DMatrix::from_fn(d, d, |i, j| idcrisis::Float::to_f64(w[i * d + j]))
}

#[test]
fn the_jacobian_of_a_linear_layer_is_its_weight_matrix() {
    let eng = Engine::new(1).unwrap();
    let shape = Shape { channels: 1, height: 5, width: 4 };
    let x: Vec<f64> = (0..20).map(|i| (i as f64 * 0.37).sin()).collect();
    let net = linear_net::<f64>(shape, 3);
    let j = attractor::jacobian(attractor::net_map(&net, &eng, 8), &x, 3);
    let err = (&j - weight_matrix(&net)).abs().max();
    assert!(err < 1e-9, "f64: {err}");
    // In f32, the rounding error is about ε·|f|/h ≈ 1e-5.
    let net = linear_net::<f32>(shape, 3);
    let xf: Vec<f32> = x.iter().map(|v| *v as f32).collect();
    let j = attractor::jacobian(attractor::net_map(&net, &eng, 64), &xf, 7);
    let err = (&j - weight_matrix(&net)).abs().max();
    assert!(err < 1e-4, "f32: {err}");
    // The exact Jacobian has no rounding here: each entry is one weight times 1, plus zeros.
    assert_eq!(attractor::exact_jacobian(&net, &eng, &xf, 7), weight_matrix(&net), "f32");
    let net = linear_net::<f64>(shape, 3);
    assert_eq!(attractor::exact_jacobian(&net, &eng, &x, 3), weight_matrix(&net), "f64");
}

/// A net of `cfg` on a 6×5 image, torch-default init, and a point `x` in [0, 1)ᴰ.
fn relu_net<T: idcrisis::Float>(cfg: &ModelConfig, seed: u64) -> (Net<T>, Vec<T>) {
    relu_net_on(cfg, Shape { channels: 1, height: 6, width: 5 }, seed)
}

/// [`relu_net`] on images of `shape`.
fn relu_net_on<T: idcrisis::Float>(cfg: &ModelConfig, shape: Shape, seed: u64) -> (Net<T>, Vec<T>) {
    let mut net = Net::<T>::new(cfg, shape).unwrap();
    net.init(idcrisis::nn::model::Init::TorchDefault, 1.0, seed);
    let mut r = Rng::new(seed + 100, Stream::Misc);
    (net, (0..shape.len()).map(|_| T::from_f64(r.uniform())).collect())
}

/// Nets with ReLUs on and off at x: dense, residual, coordinate channels, each padding, no bias.
fn relu_configs() -> Vec<ModelConfig> {
    use idcrisis::engine::Padding;
    use idcrisis::nn::model::Coords;
    let cnn = |depth, channels| ModelConfig { arch: Arch::Cnn, depth, channels, kernel: 3, ..ModelConfig::default() };
    vec![
        ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(24), ..ModelConfig::default() },
        ModelConfig { residual: true, ..cnn(5, 4) },
        ModelConfig { coords: Coords::All, padding: Padding::Circular, ..cnn(3, 4) },
        ModelConfig { padding: Padding::Reflect, bias: false, ..cnn(3, 3) },
        ModelConfig { kernel: 5, ..cnn(3, 16) },
    ]
}

/// Within the region of x, a ReLU net is affine, so central differences in f64 (step 6e-6) are
/// exact but for rounding (about 1e-10 here) unless a ReLU turns within the step: the exact
/// Jacobian matches them, with each convolution algorithm. (Leaving a bias or a coordinate map
/// in the linear part, or a ReLU's mask out, puts whole columns off by the bias's or the
/// switched-off unit's contribution.)
#[test]
fn the_exact_jacobian_of_relu_nets_matches_central_differences() {
    use idcrisis::engine::ConvAlgo;
    for (c, cfg) in relu_configs().iter().enumerate() {
        let (net, x) = relu_net::<f64>(cfg, c as u64);
        let eng = Engine::new(2).unwrap();
        let fd = attractor::jacobian(attractor::net_map(&net, &eng, 8), &x, 4);
        let scale = fd.abs().max();
        assert!(scale > 0.01, "config {c}: {scale}");
        for algo in [ConvAlgo::Auto, ConvAlgo::Im2col, ConvAlgo::Direct] {
            let eng = Engine::new(2).unwrap().with_conv_algo(algo);
            let exact = attractor::exact_jacobian(&net, &eng, &x, 3);
            let err = (&exact - &fd).abs().max();
            assert!(err < 1e-8 * scale, "config {c} {algo:?}: {err} (scale {scale})");
        }
    }
}

/// In f32 the exact Jacobian is off the f64 net's only by f32 rounding, under every algorithm
/// (Winograd's channel-last layouts included), and much closer than f32 central differences,
/// whose rounding is about ε·|f|/h.
#[test]
fn the_exact_jacobian_in_f32_has_only_rounding_error() {
    use idcrisis::engine::ConvAlgo;
    for (c, cfg) in relu_configs().iter().enumerate() {
        let (net64, x64) = relu_net::<f64>(cfg, c as u64);
        let (mut net, _) = relu_net::<f32>(cfg, c as u64);
        net.params = net64.params.iter().map(|v| *v as f32).collect();
        let x: Vec<f32> = x64.iter().map(|v| *v as f32).collect();
        let x64: Vec<f64> = x.iter().map(|v| *v as f64).collect();
        let eng = Engine::new(2).unwrap();
        let truth = attractor::exact_jacobian(&net64, &eng, &x64, 4);
        let scale = truth.abs().max();
        let fd_err = (&attractor::jacobian(attractor::net_map(&net, &eng, 8), &x, 4) - &truth).abs().max();
        for algo in [ConvAlgo::Auto, ConvAlgo::Im2col, ConvAlgo::Winograd, ConvAlgo::Direct] {
            let eng = Engine::new(2).unwrap().with_conv_algo(algo);
            let err = (&attractor::exact_jacobian(&net, &eng, &x, 4) - &truth).abs().max();
            assert!(
                err < 1e-5 * scale && err < fd_err / 4.0,
                "config {c} {algo:?}: {err} against central differences' {fd_err} (scale {scale})"
            );
        }
    }
}

/// The exact Jacobian's bits do not depend on the thread count, nor, for a net without dense
/// layers, on the batch; also on 30×30 images, whose 900 columns take two calls
/// ([`attractor::JACOBIAN_CHUNK_VALUES`]), where they still match central differences.
#[test]
fn the_exact_jacobian_does_not_depend_on_the_thread_count() {
    let big = Shape { channels: 1, height: 30, width: 30 };
    assert!(big.len() * big.len() > attractor::JACOBIAN_CHUNK_VALUES);
    let configs = relu_configs();
    let cases = configs
        .iter()
        .enumerate()
        .map(|(c, cfg)| (c, cfg, relu_net::<f32>(cfg, c as u64)))
        .chain([0, 1].into_iter().map(|c| (c, &configs[c], relu_net_on::<f32>(&configs[c], big, c as u64))));
    for (c, cfg, (net, x)) in cases {
        let d = net.shape.len();
        let one = attractor::exact_jacobian(&net, &Engine::new(1).unwrap(), &x, 4);
        for threads in [2, 3] {
            assert_eq!(attractor::exact_jacobian(&net, &Engine::new(threads).unwrap(), &x, 4), one, "config {c}, D {d}, {threads} threads");
        }
        if cfg.arch == Arch::Cnn {
            assert_eq!(attractor::exact_jacobian(&net, &Engine::new(2).unwrap(), &x, 1), one, "config {c}, D {d}, batch 1");
        }
        if d == big.len() {
            let x64: Vec<f64> = x.iter().map(|v| *v as f64).collect();
            let mut net64 = Net::<f64>::new(cfg, big).unwrap();
            net64.params = net.params.iter().map(|v| *v as f64).collect();
            let eng = Engine::new(2).unwrap();
            let fd = attractor::jacobian(attractor::net_map(&net64, &eng, 8), &x64, 16);
            let err = (&attractor::exact_jacobian(&net64, &eng, &x64, 4) - &fd).abs().max();
            assert!(err < 1e-8 * fd.abs().max(), "config {c}, D {d}: {err}");
        }
    }
}

/// Without biases, a ReLU over an all-zero neighbourhood sits exactly at 0: such ReLUs are
/// counted, and J is the piece with them off (at x = 0 every ReLU is, so J = 0, though the
/// linear part alone is not 0); with biases and x in (0, 1) none is.
#[test]
fn relus_exactly_at_zero_are_counted_and_taken_as_off() {
    let cfg = ModelConfig { bias: false, ..relu_configs()[1].clone() };
    let (net, _) = relu_net::<f64>(&cfg, 7);
    let eng = Engine::new(2).unwrap();
    let d = net.shape.len();
    assert_eq!(attractor::exact_jacobian(&net, &eng, &vec![0.0; d], 4), DMatrix::zeros(d, d));
    let lin = attractor::exact_jacobian(&net, &eng, &vec![1.0; d], 4);
    assert!(lin.abs().max() > 0.01, "{}", lin.abs().max());
    // One bright pixel in a corner: the units whose neighbourhoods miss it are tied.
    let mut t = vec![0.0f32; d];
    t[0] = 1.0;
    let opts = Options::default();
    let s = &attractor::net_jacobian_stats(&eng, &net, std::slice::from_ref(&t), &opts, 4).unwrap()[0];
    let hidden: usize = net.layers[..net.layers.len() - 1].iter().map(|l| l.out_len()).sum();
    let tied = s.tied_relus.unwrap();
    assert!(tied > hidden / 2 && tied < hidden, "{tied} of {hidden}");
    let (net, x) = relu_net::<f64>(&relu_configs()[1], 7);
    let t: Vec<f32> = x.iter().map(|v| *v as f32 + 0.01).collect();
    assert_eq!(attractor::net_jacobian_stats(&eng, &net, std::slice::from_ref(&t), &opts, 4).unwrap()[0].tied_relus, Some(0));
    // An image of the wrong size is refused with the flag's name, not a panic.
    let e = attractor::net_jacobian_stats(&eng, &net, &[vec![0.5; d + 1]], &opts, 4).unwrap_err().to_string();
    assert!(e.contains("train-image") && e.contains(&format!("{} values", d + 1)), "{e}");
}

#[test]
fn spectral_radius_of_a_matrix_with_known_eigenvalues() {
    // Block upper-triangular, nonsymmetric: rotation-scalings with |λ| = 0.5 and 1.3, and a
    // real eigenvalue −0.7; then a permutation similarity (exact) hides the structure.
    let n = 5;
    let mut b = DMatrix::<f64>::zeros(n, n);
    let blocks = [(0, 0.3, 0.4), (2, 1.2, 0.5)];
    for (o, a, c) in blocks {
        b[(o, o)] = a;
        b[(o, o + 1)] = -c;
        b[(o + 1, o)] = c;
        b[(o + 1, o + 1)] = a;
    }
    b[(4, 4)] = -0.7;
    for i in 0..n {
        for j in 0..n {
            if j > i + 1 || (j == i + 1 && i % 2 == 1) {
                b[(i, j)] = 0.1 * (i + 2 * j) as f64;
            }
        }
    }
    let perm = [3, 0, 4, 1, 2];
    let m = DMatrix::from_fn(n, n, |i, j| b[(perm[i], perm[j])]);
    let rho = attractor::spectral_radius(&m).unwrap();
    assert!((rho - 1.3).abs() < 1e-9, "{rho}");
    let mags = attractor::eigen_magnitudes(&m).unwrap();
    let want = [1.3, 1.3, 0.7, 0.5, 0.5];
    for (g, w) in mags.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{mags:?}");
    }
    // ‖·‖₂ of a rotation-scaling is its scale.
    let rs = DMatrix::from_row_slice(2, 2, &[1.2, -0.5, 0.5, 1.2]);
    assert!((attractor::spectral_norm(&rs).unwrap() - 1.3).abs() < 1e-12);
}

/// The decompositions of several training images run side by side: every statistic, and which
/// image it belongs to, is the same at 1, 2 and 3 threads (3 images: a full and a partial group
/// at 2 threads) and the same as each image alone.
#[test]
fn jacobian_stats_do_not_depend_on_the_thread_count() {
    // A smooth map whose Jacobian differs from image to image.
    let map = || {
        rows(|x, y| {
            for i in 0..D {
                y[i] = (1.1 * x[i] + 0.4 * x[(i + 1) % D] - 0.3 * x[(7 * i + 3) % D]).tanh();
            }
        })
    };
    let train: Vec<Vec<f32>> = (0..3).map(|s| image(20 + s)).collect();
    let opts = Options::default();
    let strip = |mut v: Vec<attractor::JacobianStats>| {
        v.iter_mut().for_each(|s| s.seconds = 0.0);
        v
    };
    let one = strip(attractor::jacobian_stats(&Engine::new(1).unwrap(), map(), &train, &opts, 5).unwrap());
    for threads in [2, 3] {
        let many = strip(attractor::jacobian_stats(&Engine::new(threads).unwrap(), map(), &train, &opts, 5).unwrap());
        assert_eq!(many, one, "{threads} threads");
    }
    for (i, t) in train.iter().enumerate() {
        let mut alone = strip(attractor::jacobian_stats(&Engine::new(2).unwrap(), map(), std::slice::from_ref(t), &opts, 5).unwrap());
        alone[0].train_index = i;
        assert_eq!(alone[0], one[i], "image {i}");
    }
    assert!(one[0].spectral_radius != one[1].spectral_radius && one[1].spectral_radius != one[2].spectral_radius, "{one:?}");
    // Each statistic is its own decomposition's (the two jobs of an image are not swapped).
    for (i, t) in train.iter().enumerate() {
        let x: Vec<f64> = t.iter().map(|&v| v as f64).collect();
        let j = attractor::jacobian(map(), &x, 5);
        assert_eq!(one[i].spectral_radius, attractor::spectral_radius(&j).unwrap(), "image {i}");
        assert_eq!(one[i].spectral_norm, attractor::spectral_norm(&j).unwrap(), "image {i}");
    }
}

#[test]
fn a_constant_map_has_zero_jacobian_and_the_identity_radius_one() {
    let t = image(1);
    let opts = Options::default();
    let t2 = t.clone();
    let constant = rows(move |_, y| {
        for i in 0..D {
            y[i] = t2[i] as f64;
        }
    });
    let s = &attractor::jacobian_stats(&Engine::new(2).unwrap(), constant, std::slice::from_ref(&t), &opts, 5).unwrap()[0];
    assert_eq!((s.spectral_radius, s.spectral_norm), (0.0, 0.0));
    assert!(s.fixed_point_residual < 1e-12 && s.attractor, "{s:?}");
    let identity = rows(|x, y| y.copy_from_slice(x));
    let s = &attractor::jacobian_stats(&Engine::new(1).unwrap(), identity, std::slice::from_ref(&t), &opts, 5).unwrap()[0];
    assert!((s.spectral_radius - 1.0).abs() < 1e-9 && (s.spectral_norm - 1.0).abs() < 1e-9, "{s:?}");
    assert_eq!(s.unstable_directions, D);
    assert!(!s.attractor, "ρ = 1 is not an attractor");
}

#[test]
fn a_net_that_halves_the_distance_to_its_training_image_has_it_as_an_attractor() {
    // f(x) = 0.5·x + 0.5·t as a one-layer linear FCN, through the same iteration code.
    let eng = Engine::new(1).unwrap();
    let shape = Shape { channels: 1, height: 4, width: 3 };
    let mut net = linear_net::<f64>(shape, 1);
    let t = image(5);
    let (w, b) = (net.layers[0].weight_range(), net.layers[0].bias_range().unwrap());
    for (i, ti) in t.iter().enumerate() {
        for j in 0..D {
            net.params[w.start + i * D + j] = if i == j { 0.5 } else { 0.0 };
        }
        net.params[b.start + i] = 0.5 * *ti as f64;
    }
    let opts = Options::default();
    let starts = attractor::starts(&[], std::slice::from_ref(&t), 9, 1);
    let (report, traj) = attractor::analyze(&net, &eng, &starts, std::slice::from_ref(&t), &opts, true, 4).unwrap();
    assert!(report.starts.iter().all(|r| r.class == Class::TrainingImage { index: 0 }), "{:?}", report.starts);
    assert_eq!(report.summary.basin_shares, vec![1.0]);
    let j = &report.jacobians[0];
    assert!((j.spectral_radius - 0.5).abs() < 1e-9 && (j.spectral_norm - 0.5).abs() < 1e-9 && j.attractor, "{j:?}");
    // A net's Jacobian is the exact one, recorded as no step; reports written with central
    // differences (a number) still read.
    assert_eq!((j.fd_step, j.tied_relus), (None, Some(0)));
    let mut old = serde_json::to_value(j).unwrap();
    old["fd_step"] = serde_json::json!(0.0049);
    old.as_object_mut().unwrap().remove("tied_relus");
    let old: attractor::JacobianStats = serde_json::from_value(old).unwrap();
    assert_eq!((old.fd_step, old.tied_relus), (Some(0.0049), None));
    assert!(j.fixed_point_residual < 1e-12);
    let png = attractor::trajectories_png("test", shape, &traj, &opts).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["starts"][0]["class"]["kind"], "training-image");
}

#[test]
fn starts_are_deterministic_and_as_documented() {
    let t: Vec<f32> = (0..784).map(|i| (i % 7) as f32 / 7.0).collect();
    let probe =
        idcrisis::eval::probe::Probe { name: "p".into(), category: idcrisis::eval::probe::Category::Synthetic, image: vec![0.5; 784] };
    let s = attractor::starts(std::slice::from_ref(&probe), std::slice::from_ref(&t), 4, 1);
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["p", "train-0", "train-0+noise-0.05", "train-0+noise-0.20", "train-0+noise-0.50", "uniform", "blank"]);
    assert_eq!(s[1].image, t);
    assert_eq!(s, attractor::starts(std::slice::from_ref(&probe), std::slice::from_ref(&t), 4, 1));
    assert_ne!(s, attractor::starts(std::slice::from_ref(&probe), std::slice::from_ref(&t), 5, 1));
    for (k, sigma) in attractor::NOISE_SIGMAS.iter().enumerate() {
        let d: Vec<f64> = s[2 + k].image.iter().zip(&t).map(|(a, b)| (a - b) as f64).collect();
        let sd = (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64).sqrt();
        assert!((sd / sigma - 1.0).abs() < 0.1, "σ {sigma}: {sd}");
    }
    assert!(s[5].image.iter().all(|v| (0.0..1.0).contains(v)));
    assert!(s[6].image.iter().all(|v| *v == 0.0));
    assert_eq!(attractor::starts(&[], std::slice::from_ref(&t), 4, 2).len(), 9);
}

#[test]
fn bad_options_name_the_flag() {
    let t = image(1);
    let e = attractor::iterate(
        contraction(t.clone(), 0.5),
        &some_starts(),
        std::slice::from_ref(&t),
        &Options { max_steps: 0, ..Options::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--iterate"), "{e}");
    let e = attractor::iterate(contraction(t.clone(), 0.5), &some_starts(), &[vec![0.0; D]], &Options::default()).unwrap_err().to_string();
    assert!(e.contains("train-image"), "{e}");
}
