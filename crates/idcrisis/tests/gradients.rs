//! Finite-difference gradient checks, in f64, for every layer, the loss and whole networks.
//! Central differences with h = 1e-6; inputs and weights are drawn so that no ReLU input sits
//! within reach of its kink.

use idcrisis::engine::winograd::Layouts;
use idcrisis::engine::{ConvAlgo, Engine, Padding};
use idcrisis::eval::metrics::max_abs_diff;
use idcrisis::nn::layers::{Activation, Algo, Conv2d, Dense, Layer, Pass};
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::nn::train::mse_loss;
use idcrisis::rng::{Rng, Stream};

const H: f64 = 1e-6;

fn randv(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

/// Max relative error between analytic and numeric gradients, relative to the largest entry.
/// Largest difference relative to the largest entry; infinite when any value is not finite.
fn rel_err(analytic: &[f64], numeric: &[f64]) -> f64 {
    let scale = numeric.iter().chain(analytic).fold(1e-12f64, |m, v| m.max(v.abs()));
    max_abs_diff(analytic, numeric) / scale
}

fn numeric_grad(v: &mut [f64], f: &mut dyn FnMut(&[f64]) -> f64) -> Vec<f64> {
    (0..v.len())
        .map(|i| {
            let old = v[i];
            v[i] = old + H;
            let up = f(v);
            v[i] = old - H;
            let down = f(v);
            v[i] = old;
            (up - down) / (2.0 * H)
        })
        .collect()
}

#[test]
fn dense_gradients() {
    let eng = Engine::new(2).unwrap();
    let mut rng = Rng::new(1, Stream::Misc);
    let (inp, out, n) = (7, 5, 3);
    let layer = Dense { inp, out, w: 0..inp * out, b: Some(inp * out..inp * out + out) };
    let mut params = randv(&mut rng, inp * out + out);
    let mut x = randv(&mut rng, n * inp);
    let r = randv(&mut rng, n * out);
    let obj = |p: &[f64], x: &[f64]| {
        let mut y = vec![0.0; n * out];
        let mut scratch = vec![0.0; layer.scratch_len(n)];
        layer.forward(&eng, p, x, &mut y, &mut scratch, n);
        y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
    };
    // The weight gradient is written, never read: stale values there must not leak in. The bias
    // gradient is added, so it starts at zero.
    let mut grads = vec![f64::NAN; params.len()];
    grads[inp * out..].fill(0.0);
    let mut dx = vec![0.0; n * inp];
    layer.backward(&eng, &params, &mut grads, &x, &r, Some(&mut dx), n);
    let xs = x.clone();
    let num_p = numeric_grad(&mut params, &mut |p| obj(p, &xs));
    let ps = params.clone();
    let num_x = numeric_grad(&mut x, &mut |xv| obj(&ps, xv));
    assert!(rel_err(&grads, &num_p) < 1e-8, "dW/db: {}", rel_err(&grads, &num_p));
    assert!(rel_err(&dx, &num_x) < 1e-8, "dx: {}", rel_err(&dx, &num_x));
}

fn check_conv(k: usize, cin: usize, cout: usize, n: usize, pad: Padding, bias: bool) {
    for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd, ConvAlgo::Direct] {
        // Every activation layout the layer supports: channel-last input only where Winograd runs.
        let wino = algo == ConvAlgo::Winograd && pad == Padding::Zero && (3..=7).contains(&k);
        for (x_cl, y_cl) in [(false, false), (false, true), (true, false), (true, true)] {
            if x_cl && !wino {
                continue;
            }
            check_conv_with(algo, Layouts { x_cl, y_cl }, k, cin, cout, n, pad, bias);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_conv_with(algo: ConvAlgo, io: Layouts, k: usize, cin: usize, cout: usize, n: usize, pad: Padding, bias: bool) {
    let eng = Engine::new(2).unwrap().with_conv_algo(algo);
    let mut rng = Rng::new(k as u64 * 31 + cin as u64, Stream::Misc);
    let (h, w) = (6, 5);
    let wlen = cout * cin * k * k;
    let layer = Conv2d::new(cin, cout, h, w, k, pad, 0..wlen, bias.then_some(wlen..wlen + cout));
    // Winograd applies to zero padding with k ≥ 3; the other cases must fall back to im2col.
    assert_eq!(layer.winograd::<f64>(&eng, Pass::Train).is_some(), algo == ConvAlgo::Winograd && pad == Padding::Zero && k >= 3);
    // The direct convolution applies to zero and circular padding (its input gradient is the
    // adjoint convolution); reflect padding must fall back to im2col.
    assert_eq!(layer.algo::<f64>(&eng, Pass::Train) == Algo::Direct, algo == ConvAlgo::Direct && pad != Padding::Reflect);
    let mut params = randv(&mut rng, wlen + if bias { cout } else { 0 });
    let mut x = randv(&mut rng, n * cin * h * w);
    let r = randv(&mut rng, n * cout * h * w);
    let (ecl, sl) = (layer.eval_cols_len(n), layer.scratch_len(n));
    let obj = |p: &[f64], x: &[f64]| {
        let mut y = vec![0.0; n * cout * h * w];
        let mut cols = vec![0.0; ecl];
        let mut scratch = vec![0.0; sl];
        layer.forward(&eng, p, x, &mut y, io, &mut cols, &mut scratch, false, n);
        y.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
    };
    let mut y = vec![0.0; n * cout * h * w];
    let mut cols = vec![0.0; layer.store_len(n)];
    let mut scratch = vec![0.0; sl];
    layer.forward(&eng, &params, &x, &mut y, io, &mut cols, &mut scratch, true, n);
    // Gradients start at 7: the backward adds into them, except a Winograd layer's weight
    // gradient, which it overwrites (and says so).
    let overwrites = layer.overwrites_weight_grad::<f64>(&eng, n);
    assert_eq!(overwrites, layer.winograd::<f64>(&eng, Pass::Train).is_some(), "{algo:?} k={k} {pad:?}");
    let mut grads = vec![7.0; params.len()];
    let mut dx = vec![0.0; n * cin * h * w];
    layer.backward(&eng, &params, &mut grads, &cols, &r, Some(&mut dx), io, &mut scratch, n);
    for (i, g) in grads.iter_mut().enumerate() {
        if !(overwrites && layer.w.contains(&i)) {
            *g -= 7.0;
        }
    }
    let xs = x.clone();
    let num_p = numeric_grad(&mut params, &mut |p| obj(p, &xs));
    let ps = params.clone();
    let num_x = numeric_grad(&mut x, &mut |xv| obj(&ps, xv));
    let (ep, ex) = (rel_err(&grads, &num_p), rel_err(&dx, &num_x));
    assert!(ep < 1e-8, "{algo:?} {io:?} k={k} cin={cin} cout={cout} n={n} {pad:?}: dW/db rel err {ep}");
    assert!(ex < 1e-8, "{algo:?} {io:?} k={k} cin={cin} cout={cout} n={n} {pad:?}: dx rel err {ex}");
}

#[test]
fn conv2d_gradients_k1_k3_k5_multichannel_batched() {
    for k in [1, 3, 5] {
        check_conv(k, 3, 4, 2, Padding::Zero, true);
    }
    check_conv(3, 2, 3, 2, Padding::Zero, false);
}

#[test]
fn conv2d_gradients_other_paddings() {
    for pad in [Padding::Circular, Padding::Reflect] {
        check_conv(3, 2, 3, 2, pad, true);
        check_conv(5, 2, 2, 1, pad, true);
    }
}

#[test]
fn relu_gradient() {
    let eng = Engine::new(1).unwrap();
    let mut rng = Rng::new(3, Stream::Misc);
    // Keep every input at least 0.1 away from the kink.
    let mut z: Vec<f64> = randv(&mut rng, 50).into_iter().map(|v| if v >= 0.0 { v + 0.1 } else { v - 0.1 }).collect();
    let r = randv(&mut rng, 50);
    let mut obj = |z: &[f64]| {
        let mut a = z.to_vec();
        Activation::Relu.forward(&eng, &mut a);
        a.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()
    };
    let num = numeric_grad(&mut z, &mut obj);
    let mut a = z.clone();
    Activation::Relu.forward(&eng, &mut a);
    let mut d = r.clone();
    Activation::Relu.backward(&eng, &mut d, &a);
    assert!(rel_err(&d, &num) < 1e-9);
    // And a few values pinned by hand.
    let mut a = vec![-1.0, 0.0, 2.0];
    Activation::Relu.forward(&eng, &mut a);
    assert_eq!(a, vec![0.0, 0.0, 2.0]);
}

#[test]
fn mse_loss_value_and_gradient() {
    let mut rng = Rng::new(4, Stream::Misc);
    let mut y = randv(&mut rng, 20);
    let t = randv(&mut rng, 20);
    let mut dy = vec![0.0; 20];
    let loss = mse_loss(&y, &t, &mut dy);
    let direct = y.iter().zip(&t).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / 20.0;
    assert!((loss - direct).abs() < 1e-15);
    let mut scratch = vec![0.0; 20];
    let num = numeric_grad(&mut y, &mut |yv| mse_loss(yv, &t, &mut scratch));
    assert!(rel_err(&dy, &num) < 1e-8);
}

fn check_net(cfg: ModelConfig, n: usize) {
    for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd, ConvAlgo::Direct] {
        check_net_with(algo, cfg.clone(), n);
    }
}

fn check_net_with(algo: ConvAlgo, cfg: ModelConfig, n: usize) {
    if let Err(e) = net_gradient_check(algo, &cfg, n, &|_, _| {}) {
        panic!("{e}");
    }
}

/// The tolerance of the whole-network check: max error relative to the tensor's largest entry.
const NET_TOL: f64 = 1e-5;

/// The whole-network gradient check: the analytic gradient of the MSE loss (after `tamper`, which
/// the negative controls use to corrupt it; the real checks pass a no-op) against central
/// differences, tensor by tensor on a deterministic subset of coordinates. `Err` names the first
/// tensor whose relative error is not below [`NET_TOL`].
fn net_gradient_check(algo: ConvAlgo, cfg: &ModelConfig, n: usize, tamper: &dyn Fn(&Net<f64>, &mut [f64])) -> Result<(), String> {
    let eng = Engine::new(2).unwrap().with_conv_algo(algo);
    let mut net = Net::<f64>::new(cfg, idcrisis::Shape::MNIST).unwrap();
    net.init(Init::HeNormal, 1.0, 5);
    // Non-zero biases so the bias gradients are exercised.
    for l in net.layers.clone() {
        if let Some(b) = l.bias_range() {
            for (i, v) in net.params[b].iter_mut().enumerate() {
                *v = 0.05 * ((i % 7) as f64 - 3.0);
            }
        }
    }
    let mut rng = Rng::new(6, Stream::Misc);
    let x: Vec<f64> = (0..n * 784).map(|_| rng.uniform()).collect();
    let mut ws = net.workspace(n, true);
    // Two steps' gradients: the second must not keep anything of the first (backward zeroes
    // what it adds into and overwrites the rest).
    for _ in 0..2 {
        net.forward(&eng, &mut ws, &x, n);
        let (out, dout) = ws.output_and_dout(n);
        mse_loss(out, &x, dout);
        net.backward(&eng, &mut ws, n);
    }
    let mut analytic = net.grads.clone();
    tamper(&net, &mut analytic);
    // Check a deterministic subset of coordinates of every tensor (all of them is too slow).
    let mut eval = net.clone();
    let mut ews = eval.workspace(n, false);
    let mut scratch = vec![0.0; n * 784];
    let mut worst = 0.0f64;
    for (name, _, range) in net.tensors() {
        let idx: Vec<usize> = range.clone().step_by((range.len() / 40).max(1)).collect();
        let mut num = Vec::new();
        let mut ana = Vec::new();
        for &i in &idx {
            let old = eval.params[i];
            let mut f = |v: f64, e: &mut Net<f64>| {
                e.params[i] = v;
                let y = e.forward(&eng, &mut ews, &x, n).to_vec();
                mse_loss(&y, &x, &mut scratch)
            };
            let up = f(old + H, &mut eval);
            let down = f(old - H, &mut eval);
            eval.params[i] = old;
            num.push((up - down) / (2.0 * H));
            ana.push(analytic[i]);
        }
        let e = rel_err(&ana, &num);
        worst = worst.max(e);
        if e.is_nan() || e >= NET_TOL {
            return Err(format!("{} {algo:?}: tensor {name}: rel err {e}", cfg.label()));
        }
    }
    assert!(worst > 0.0 || net.grads.iter().all(|g| *g == 0.0));
    Ok(())
}

#[test]
fn whole_cnn_3_layers() {
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 4, kernel: 3, ..Default::default() };
    check_net(cfg, 2);
}

#[test]
fn whole_cnns_with_the_default_mixed_algorithms() {
    // With `auto` and WINOGRAD_MIN_CHANNELS channels the 1-channel first layer runs im2col and
    // hands its output on channel-last; the hidden layers run Winograd and pass channel-last
    // activations and gradients between them; the last layer returns to channel-first.
    let eng = Engine::new(2).unwrap();
    for (kernel, residual, depth) in [(3, false, 4), (5, false, 3), (3, true, 5)] {
        let channels = idcrisis::engine::WINOGRAD_MIN_CHANNELS;
        let cfg = ModelConfig { arch: Arch::Cnn, depth, channels, kernel, residual, ..Default::default() };
        let net = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        let t = Pass::Train;
        assert!(!net.layouts(&eng, 0, t).x_cl && net.layouts(&eng, 0, t).y_cl, "{}", cfg.label());
        assert!(net.layouts(&eng, 1, t).x_cl && net.layouts(&eng, 1, t).y_cl);
        assert!(!net.layouts(&eng, depth - 1, t).y_cl);
        // Hidden activations read back channel-first match im2col's, layer by layer.
        let mut net = net;
        net.init(Init::TorchDefault, 1.0, 4);
        let x: Vec<f64> = (0..784).map(|i| ((i * 37 % 101) as f64) / 101.0).collect();
        let im2col = Engine::new(2).unwrap().with_conv_algo(ConvAlgo::Im2col);
        let (mut wa, mut wb) = (net.workspace(1, true), net.workspace(1, true));
        net.forward(&eng, &mut wa, &x, 1);
        net.forward(&im2col, &mut wb, &x, 1);
        for l in 0..=depth {
            let (a, b) = (net.activation_chw(&eng, &wa, l), net.activation_chw(&im2col, &wb, l));
            let worst = max_abs_diff(&a, &b);
            assert!(worst < 1e-12, "{} activation {l}: {worst}", cfg.label());
        }
        check_net_with(ConvAlgo::Auto, cfg, 2);
    }
}

#[test]
fn whole_fcn_3_layers() {
    let cfg = ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(16), ..Default::default() };
    check_net(cfg, 2);
}

#[test]
fn whole_linear_nets() {
    use idcrisis::nn::layers::Activation::Linear;
    check_net(ModelConfig { arch: Arch::Cnn, depth: 2, channels: 3, kernel: 5, act: Linear, bias: false, ..Default::default() }, 1);
    check_net(ModelConfig { arch: Arch::Fcn, depth: 1, act: Linear, ..Default::default() }, 1);
}

#[test]
fn a_bias_gradient_off_by_a_factor_1_001_fails_the_net_check() {
    // The whole-network check must be able to fail: each bias tensor's analytic gradient scaled
    // by 1.001 (inside the same check the real tests run) must be flagged, naming that tensor,
    // while the untouched gradient passes.
    let cnn = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 4, kernel: 3, ..Default::default() };
    let fcn = ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(16), ..Default::default() };
    for (algo, cfg) in [(ConvAlgo::Im2col, &cnn), (ConvAlgo::Winograd, &cnn), (ConvAlgo::Auto, &fcn)] {
        net_gradient_check(algo, cfg, 2, &|_, _| {}).unwrap();
        let net = Net::<f64>::new(cfg, idcrisis::Shape::MNIST).unwrap();
        let biases: Vec<_> = net.tensors().into_iter().filter(|t| t.0.ends_with(".bias")).collect();
        assert_eq!(biases.len(), 3, "{}", cfg.label());
        for (name, _, range) in biases {
            let scale = |_: &Net<f64>, g: &mut [f64]| g[range.clone()].iter_mut().for_each(|v| *v *= 1.001);
            match net_gradient_check(algo, cfg, 2, &scale) {
                Ok(()) => panic!("{} {algo:?}: {name} scaled by 1.001 passed the gradient check", cfg.label()),
                Err(e) => assert!(e.contains(&format!("tensor {name}:")), "{e}"),
            }
        }
    }
}

#[test]
fn whole_residual_cnn() {
    // Depth 6: skips around hidden pairs (1, 2) and (3, 4); layer 5 (C→1) has none.
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 6, channels: 3, kernel: 3, residual: true, ..Default::default() };
    assert_eq!((1..6).filter_map(|i| cfg.skip_source(i)).collect::<Vec<_>>(), vec![1, 3]);
    check_net(cfg.clone(), 2);
    check_net(ModelConfig { depth: 5, ..cfg }, 1);
}

#[test]
fn residual_forward_is_the_same_in_training_and_evaluation_workspaces() {
    let eng = Engine::new(2).unwrap();
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 7, channels: 4, kernel: 3, residual: true, ..Default::default() };
    let mut net = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
    net.init(Init::TorchDefault, 1.0, 9);
    let mut rng = Rng::new(10, Stream::Misc);
    let x: Vec<f64> = (0..3 * 784).map(|_| rng.uniform()).collect();
    let mut tws = net.workspace(3, true);
    let a = net.forward(&eng, &mut tws, &x, 3).to_vec();
    let b = net.predict(&eng, &x, 3, 2);
    assert_eq!(a, b);
    // And the skips change the function.
    let plain = Net::<f64> { cfg: ModelConfig { residual: false, ..cfg }, ..net.clone() };
    assert_ne!(plain.predict(&eng, &x, 3, 3), b);
}

#[test]
fn evaluation_in_large_batches_matches_training_forward_for_both_algorithms() {
    // Batches larger than Winograd's internal chunk (lowered here to 4 images) and a ragged last
    // batch; the evaluation workspace sizes its scratch for either algorithm.
    let mut rng = Rng::new(11, Stream::Misc);
    let count = 30;
    let x: Vec<f64> = (0..count * 784).map(|_| rng.uniform()).collect();
    for kernel in [3, 5] {
        let cfg = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 8, kernel, ..Default::default() };
        let mut net = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        net.init(Init::TorchDefault, 1.0, 12);
        for layer in net.layers.iter_mut() {
            if let Layer::Conv(c) = layer {
                if let Some(w) = c.wino.as_mut() {
                    w.target_elems = 4 * w.mats.p() * w.c_in.max(w.c_out) * w.tiles();
                    assert_eq!(w.chunk(), 4);
                }
            }
        }
        let mut outs = Vec::new();
        for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd, ConvAlgo::Direct] {
            let eng = Engine::new(2).unwrap().with_conv_algo(algo);
            let mut tws = net.workspace(count, true);
            let a = net.forward(&eng, &mut tws, &x, count).to_vec();
            for batch in [1, 7, 16, 30] {
                let b = net.predict(&eng, &x, count, batch);
                let worst = max_abs_diff(&a, &b);
                assert!(worst < 1e-13, "k={kernel} {algo:?} batch {batch}: {worst}");
            }
            outs.push(a);
        }
        for (o, name) in outs[1..].iter().zip(["winograd", "direct"]) {
            let worst = max_abs_diff(&outs[0], o);
            assert!(worst < 1e-11, "k={kernel}: im2col vs {name} {worst}");
        }
    }
}

#[test]
fn coordinate_channels_gradients() {
    // CoordConv on the first layer and on every layer, under each padding, batched (the
    // coordinate gradient sums the batch) and single; with `auto` at 8 channels the hidden
    // layers pass channel-last activations, so both layouts of the coordinate map are covered.
    use idcrisis::nn::model::Coords;
    for coords in [Coords::Input, Coords::All] {
        for padding in [Padding::Zero, Padding::Circular, Padding::Reflect] {
            let cfg = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 4, kernel: 3, padding, coords, ..Default::default() };
            check_net(cfg.clone(), 2);
            check_net_with(ConvAlgo::Im2col, ModelConfig { bias: false, ..cfg }, 1);
        }
        let cfg = ModelConfig { arch: Arch::Cnn, depth: 4, channels: 8, kernel: 3, coords, ..Default::default() };
        check_net_with(ConvAlgo::Auto, cfg, 2);
    }
    // A coordinate-weight gradient off by 0.1% is caught, naming the tensor.
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 4, kernel: 3, coords: Coords::All, ..Default::default() };
    let net = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
    let (name, _, range) = net.tensors().into_iter().find(|t| t.0 == "layers.1.coord_weight").unwrap();
    let scale = |_: &Net<f64>, g: &mut [f64]| g[range.clone()].iter_mut().for_each(|v| *v *= 1.001);
    let e = net_gradient_check(ConvAlgo::Im2col, &cfg, 2, &scale).unwrap_err();
    assert!(e.contains(&format!("tensor {name}:")), "{e}");
}

/// `Conv2d(c_in + 2, c_out)` on `cat([x, xx, yy])` computed directly from the definition: the
/// independent reference for the coordinate channels (x varies along the width, y along the
/// height, both from −1 to 1, padded like the image).
#[allow(clippy::too_many_arguments)]
fn naive_coordconv(x: &[f64], side: usize, k: usize, pad: Padding, w: &[f64], wc: &[f64], b: &[f64], c_out: usize) -> Vec<f64> {
    let coord = |ch: usize, r: usize, c: usize| -1.0 + 2.0 * (if ch == 0 { c } else { r }) as f64 / (side - 1) as f64;
    let mut y = vec![0.0; c_out * side * side];
    for o in 0..c_out {
        for r in 0..side {
            for c in 0..side {
                let mut s = b[o];
                for ky in 0..k {
                    for kx in 0..k {
                        let (sr, sc) = (r as isize + ky as isize - (k / 2) as isize, c as isize + kx as isize - (k / 2) as isize);
                        let (Some(sr), Some(sc)) = (pad.map(sr, side), pad.map(sc, side)) else { continue };
                        s += w[(o * k + ky) * k + kx] * x[sr * side + sc];
                        for ch in 0..2 {
                            s += wc[((o * 2 + ch) * k + ky) * k + kx] * coord(ch, sr, sc);
                        }
                    }
                }
                y[(o * side + r) * side + c] = s;
            }
        }
    }
    y
}

#[test]
fn coordinate_channels_match_a_direct_coordconv() {
    // A 1-layer CNN with coordinates against the definition, for each padding.
    use idcrisis::nn::model::Coords;
    let eng = Engine::new(2).unwrap();
    let shape = idcrisis::Shape::new(1, 7, 7);
    for pad in [Padding::Zero, Padding::Circular, Padding::Reflect] {
        let cfg = ModelConfig { arch: Arch::Cnn, depth: 1, kernel: 3, padding: pad, coords: Coords::Input, ..Default::default() };
        let mut net = Net::<f64>::new(&cfg, shape).unwrap();
        net.init(Init::TorchDefault, 1.0, 9);
        let t = net.tensors();
        let get = |n: &str| net.params[t.iter().find(|x| x.0 == n).unwrap().2.clone()].to_vec();
        assert_eq!(t.iter().find(|x| x.0 == "layers.0.coord_weight").unwrap().1, vec![1, 2, 3, 3]);
        let x: Vec<f64> = (0..49).map(|i| ((i * 13 % 17) as f64) / 17.0).collect();
        let want = naive_coordconv(&x, 7, 3, pad, &get("layers.0.weight"), &get("layers.0.coord_weight"), &get("layers.0.bias"), 1);
        let got = net.predict(&eng, &x, 1, 1);
        let worst = max_abs_diff(&got, &want);
        assert!(worst < 1e-12, "{pad:?}: {worst}");
    }
}

#[test]
fn auto_runs_small_f32_layers_direct_on_avx2_and_avx512_with_the_forced_direct_bits() {
    use idcrisis::engine::winograd::Isa;
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 8, kernel: 5, ..Default::default() };
    let mut net = Net::<f32>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
    net.init(Init::TorchDefault, 1.0, 3);
    let [auto, direct, im2col] = [ConvAlgo::Auto, ConvAlgo::Direct, ConvAlgo::Im2col].map(|a| Engine::new(1).unwrap().with_conv_algo(a));
    let vector = Isa::cpu() >= Isa::Avx2;
    for l in &net.layers {
        if let Layer::Conv(c) = l {
            for pass in [Pass::Train, Pass::Eval] {
                let is_direct = |e: &Engine| c.algo::<f32>(e, pass) == Algo::Direct;
                assert_eq!(is_direct(&auto), vector, "auto picks direct for f32 below 16 channels exactly on AVX2 and AVX-512");
                assert!(c.algo::<f64>(&auto, pass) != Algo::Direct, "auto never picks direct in f64");
                assert!(is_direct(&direct) && !is_direct(&im2col));
            }
        }
    }
    let x: Vec<f32> = (0..784).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    let run = |eng: &Engine| {
        let mut ws = net.workspace(1, true);
        net.forward(eng, &mut ws, &x, 1).to_vec()
    };
    let (a, d, i) = (run(&auto), run(&direct), run(&im2col));
    if vector {
        assert!(a.iter().zip(&d).all(|(p, q)| p.to_bits() == q.to_bits()), "auto and forced direct differ");
    }
    let worst = d.iter().zip(&i).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-5, "direct vs im2col in f32: {worst}");
}

#[test]
fn auto_evaluation_and_training_rules_per_layer_shape() {
    // The evaluation rule differs from the training rule where the direct forward beats
    // Winograd's but its weight gradient does not (32-channel 7×7 on AVX-512); at 16-channel 3×3
    // and 5×5 Winograd (F(4×4, ·)) won both, so a 16-channel 5×5 net evaluates with the training
    // forward's algorithms and bits, and the forced direct convolution agrees to rounding.
    use idcrisis::engine::winograd::Isa;
    let (vector, avx512) = (Isa::cpu() >= Isa::Avx2, Isa::cpu() == Isa::Avx512);
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 4, channels: 16, kernel: 5, ..Default::default() };
    let mut net = Net::<f32>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
    net.init(Init::TorchDefault, 1.0, 8);
    let [auto, direct] = [ConvAlgo::Auto, ConvAlgo::Direct].map(|a| Engine::new(2).unwrap().with_conv_algo(a));
    let Layer::Conv(hidden) = &net.layers[1] else { panic!("a CNN") };
    assert_eq!(hidden.algo::<f32>(&auto, Pass::Train), Algo::Winograd);
    assert_eq!(hidden.algo::<f32>(&auto, Pass::Eval), Algo::Winograd, "5×5 at 16 channels evaluates with Winograd");
    // The first layer (1 → 16 channels) and the last (16 → 1) train direct too; without the
    // vector kernels the first is im2col (one input channel) and the last Winograd.
    let (Layer::Conv(first), Some(Layer::Conv(last))) = (&net.layers[0], net.layers.iter().rev().find(|l| matches!(l, Layer::Conv(_))))
    else {
        panic!("a CNN")
    };
    assert_eq!((first.geom.c, first.c_out, last.geom.c, last.c_out), (1, 16, 16, 1));
    assert_eq!(first.algo::<f32>(&auto, Pass::Train), if vector { Algo::Direct } else { Algo::Im2col });
    assert_eq!(last.algo::<f32>(&auto, Pass::Train), if vector { Algo::Direct } else { Algo::Winograd });
    // Not past 16 channels on the other side, and not with reflect padding.
    let first_of = |co: usize, pad: Padding| Conv2d::new(1, co, 28, 28, 5, pad, 0..co * 25, None);
    assert_eq!(first_of(32, Padding::Zero).algo::<f32>(&auto, Pass::Train), Algo::Im2col);
    assert_eq!(first_of(16, Padding::Reflect).algo::<f32>(&auto, Pass::Train), Algo::Im2col);
    assert_eq!(first_of(16, Padding::Circular).algo::<f32>(&auto, Pass::Train), if vector { Algo::Direct } else { Algo::Im2col });
    assert_eq!(hidden.algo::<f64>(&auto, Pass::Eval), Algo::Winograd, "never direct in f64");
    let conv = |c: usize, k: usize| Conv2d::new(c, c, 28, 28, k, Padding::Zero, 0..c * c * k * k, None);
    let wide = conv(32, 3);
    // Forced direct: training only up to 16 channels, evaluation at any width.
    assert_eq!(wide.algo::<f32>(&direct, Pass::Train), Algo::Im2col);
    assert_eq!(wide.algo::<f32>(&direct, Pass::Eval), Algo::Direct);
    // Auto trains from 16 channels with Winograd, evaluates layers direct up to 32 channels on
    // AVX-512, up to 16 on AVX2, except Winograd-planned 3×3 and 5×5 ones (under 16) on both;
    // first and last layers direct up to 32 on AVX-512.
    assert_eq!(wide.algo::<f32>(&auto, Pass::Train), Algo::Winograd);
    assert_eq!(wide.algo::<f32>(&auto, Pass::Eval), Algo::Winograd);
    let wrap = |c: usize, k: usize| Conv2d::new(c, c, 28, 28, k, Padding::Circular, 0..c * c * k * k, None);
    assert_eq!(wrap(32, 3).algo::<f32>(&auto, Pass::Eval), if avx512 { Algo::Direct } else { Algo::Im2col }, "no Winograd plan");
    assert_eq!(wrap(16, 5).algo::<f32>(&auto, Pass::Eval), if vector { Algo::Direct } else { Algo::Im2col }, "no Winograd plan");
    assert_eq!(first_of(32, Padding::Zero).algo::<f32>(&auto, Pass::Eval), if avx512 { Algo::Direct } else { Algo::Im2col });
    let last_of = |ci: usize, k: usize| Conv2d::new(ci, 1, 28, 28, k, Padding::Zero, 0..ci * k * k, None);
    assert_eq!(last_of(32, 3).algo::<f32>(&auto, Pass::Eval), if avx512 { Algo::Direct } else { Algo::Winograd });
    assert_eq!(last_of(16, 5).algo::<f32>(&auto, Pass::Eval), if vector { Algo::Direct } else { Algo::Winograd });
    assert_eq!(conv(64, 3).algo::<f32>(&auto, Pass::Eval), Algo::Winograd);
    assert_eq!(conv(32, 5).algo::<f32>(&auto, Pass::Eval), Algo::Winograd);
    assert_eq!(conv(32, 7).algo::<f32>(&auto, Pass::Eval), if avx512 { Algo::Direct } else { Algo::Winograd });
    assert_eq!(conv(64, 7).algo::<f32>(&auto, Pass::Eval), Algo::Winograd);
    assert_eq!(conv(16, 5).algo::<f32>(&auto, Pass::Eval), Algo::Winograd);
    assert_eq!(conv(16, 3).algo::<f32>(&auto, Pass::Eval), Algo::Winograd);
    // Their tiles: F(4×4, 3×3), F(4×4, 5×5), F(2×2, 7×7).
    let tile = |k: usize| conv(16, k).wino.as_ref().map(|w| (w.mats.m, w.mats.r));
    assert_eq!([3, 5, 7].map(tile), [Some((4, 3)), Some((4, 5)), Some((2, 7))]);
    assert_eq!(conv(15, 3).algo::<f32>(&auto, Pass::Eval), if vector { Algo::Direct } else { Algo::Im2col });
    assert_eq!(conv(15, 5).algo::<f32>(&auto, Pass::Eval), if vector { Algo::Direct } else { Algo::Im2col });
    // Past 15 channels out but under 16 in, Winograd would not compute the layer: direct stays.
    let widen = |k: usize| Conv2d::new(8, 16, 28, 28, k, Padding::Zero, 0..8 * 16 * k * k, None);
    for k in [3, 5] {
        assert_eq!(widen(k).algo::<f32>(&auto, Pass::Eval), if vector { Algo::Direct } else { Algo::Im2col }, "8 → 16 channels, {k}×{k}");
    }
    assert_eq!(conv(16, 7).algo::<f32>(&auto, Pass::Eval), if vector { Algo::Direct } else { Algo::Winograd });
    let count = 5;
    let x: Vec<f32> = (0..count * 784).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    let a = net.predict(&auto, &x, count, 3);
    let d = net.predict(&direct, &x, count, 3);
    let mut ws = net.workspace(count, true);
    let t = net.forward(&auto, &mut ws, &x, count).to_vec();
    assert!(a.iter().zip(&t).all(|(p, q)| p.to_bits() == q.to_bits()), "auto evaluation is not the training forward");
    let scale = t.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
    let worst = d.iter().zip(&t).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max) / scale;
    assert!(worst > 0.0 && worst < 1e-4, "forced direct vs training forward (Winograd): {worst}");
}
