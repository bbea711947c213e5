//! Same seed and thread count → bit-identical weights; a different seed → different weights.

mod common;

use idcrisis::engine::{ConvAlgo, Engine};
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::nn::train::{train, TrainConfig};

fn run(cfg: &ModelConfig, seed: u64, threads: usize, x: &[f32]) -> (Vec<f32>, Vec<f64>) {
    run_with(ConvAlgo::Auto, cfg, seed, threads, x)
}

fn run_with(algo: ConvAlgo, cfg: &ModelConfig, seed: u64, threads: usize, x: &[f32]) -> (Vec<f32>, Vec<f64>) {
    let eng = Engine::new(threads).unwrap().with_conv_algo(algo);
    let mut net = Net::<f32>::new(cfg, idcrisis::Shape::MNIST).unwrap();
    net.init(Init::TorchDefault, 1.0, seed);
    let tc = TrainConfig { steps: 15, tol: 0.0, lr: 1e-3, ..Default::default() };
    let out = train(&eng, &mut net, x, 1, &tc, &mut |_, _| true).unwrap();
    (net.params, out.losses)
}

#[test]
fn same_seed_same_threads_is_bit_identical() {
    let x = common::seven();
    for cfg in [
        ModelConfig { arch: Arch::Cnn, depth: 4, channels: 16, kernel: 5, ..Default::default() },
        ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(256), ..Default::default() },
    ] {
        for threads in [1, 2] {
            let (a, la) = run(&cfg, 7, threads, &x);
            let (b, lb) = run(&cfg, 7, threads, &x);
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "{} threads={threads}: weights differ", cfg.label());
            assert_eq!(la, lb);
            let (c, _) = run(&cfg, 8, threads, &x);
            assert_ne!(a, c, "a different seed must give different weights");
        }
    }
}

#[test]
fn both_convolution_algorithms_are_deterministic_and_train_alike() {
    let x = common::seven();
    for cfg in [
        ModelConfig { arch: Arch::Cnn, depth: 4, channels: 16, kernel: 5, ..Default::default() },
        ModelConfig { arch: Arch::Cnn, depth: 3, channels: 8, kernel: 3, ..Default::default() },
        ModelConfig { arch: Arch::Cnn, depth: 3, channels: 8, kernel: 7, bias: false, ..Default::default() },
    ] {
        let mut weights = Vec::new();
        for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd] {
            for threads in [1, 2] {
                let (a, la) = run_with(algo, &cfg, 3, threads, &x);
                let (b, lb) = run_with(algo, &cfg, 3, threads, &x);
                assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "{} {algo:?} threads={threads}", cfg.label());
                assert_eq!(la, lb);
                // Each product of the per-point GEMMs runs on one thread, so Winograd does not
                // depend on the thread count either.
                if algo == ConvAlgo::Winograd && threads == 2 {
                    assert_eq!(a, weights.last().cloned().unwrap(), "{}: winograd 1 vs 2 threads", cfg.label());
                }
                if threads == 1 {
                    weights.push(a);
                }
            }
        }
        // The two algorithms compute the same convolution up to f32 rounding: after 15 Adam
        // steps the weights still agree closely.
        let (im, wi) = (&weights[0], &weights[1]);
        let diff = im.iter().zip(wi).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let scale = im.iter().map(|a| a.abs()).fold(0.0f32, f32::max);
        assert!(diff > 0.0, "{}: Winograd should round differently from im2col", cfg.label());
        assert!(diff < 1e-3 * scale, "{}: im2col vs winograd weights differ by {diff} (scale {scale})", cfg.label());
    }
}

#[test]
fn init_is_deterministic_and_has_the_documented_ranges() {
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 8, kernel: 5, ..Default::default() };
    let mut a = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
    let mut b = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
    a.init(Init::TorchDefault, 1.0, 1);
    b.init(Init::TorchDefault, 1.0, 1);
    assert_eq!(a.params, b.params);
    // torch-default: |w| ≤ 1/√fan_in, with fan_in = 8·25 for the middle layer.
    let l = a.layers[1].clone();
    let bound = 1.0 / ((8 * 25) as f64).sqrt();
    assert!(a.params[l.weight_range()].iter().all(|w| w.abs() <= bound));
    assert!(a.params[l.weight_range()].iter().any(|w| w.abs() > 0.9 * bound));
    // he-normal: std √(2/fan_in) within 10%; biases zero; init-scale multiplies weights.
    a.init(Init::HeNormal, 1.0, 2);
    b.init(Init::HeNormal, 3.0, 2);
    let w = &a.params[l.weight_range()];
    let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
    assert!((std / (2.0 / 200.0f64).sqrt() - 1.0).abs() < 0.1, "{std}");
    assert!(a.params[l.bias_range().unwrap()].iter().all(|&v| v == 0.0));
    assert!(a.params[l.weight_range()].iter().zip(&b.params[l.weight_range()]).all(|(x, y)| (3.0 * x - y).abs() < 1e-15));
    // glorot-uniform bound √(6/(fan_in+fan_out)).
    a.init(Init::GlorotUniform, 1.0, 3);
    let gb = (6.0 / (200.0 + 200.0f64)).sqrt();
    assert!(a.params[l.weight_range()].iter().all(|w| w.abs() <= gb));
}

#[test]
fn minibatch_training_is_deterministic_and_learns() {
    let imgs = idcrisis::data::load_images(&common::data_dir(), idcrisis::data::Dataset::Mnist, idcrisis::data::Split::Test).unwrap();
    let cfg = ModelConfig { arch: Arch::Fcn, depth: 2, width: Some(64), ..Default::default() };
    let go = |seed: u64| {
        let eng = Engine::new(2).unwrap();
        let mut net = Net::<f32>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        net.init(Init::TorchDefault, 1.0, 1);
        let tc = TrainConfig { lr: 1e-3, tol: 0.0, steps: 1000, ..Default::default() };
        let out = idcrisis::nn::train::train_minibatch(&eng, &mut net, &imgs.pixels[..512 * 784], 512, 32, 3, seed, &tc, &mut |_, _| true)
            .unwrap();
        (net.params, out)
    };
    let (a, oa) = go(5);
    let (b, ob) = go(5);
    assert_eq!(a, b, "same shuffle seed, same weights");
    assert_eq!(oa.steps, 3 * 512 / 32);
    assert!(oa.losses.last().unwrap() < &(0.7 * oa.losses[0]), "loss did not fall: {:?} → {:?}", oa.losses[0], oa.losses.last());
    let (c, _) = go(6);
    assert_ne!(a, c, "another shuffle order, other weights");
    assert_eq!(oa.final_loss, ob.final_loss);
}

#[test]
fn direct_batched_evaluation_is_the_same_bits_on_any_thread_count_and_batch() {
    // The direct convolution spreads a batch's images over the threads (evaluation and the
    // training forward); each image must still get exactly the bits it gets alone, on one thread.
    let count = 37;
    let mut xs = Vec::with_capacity(count * 784);
    let seven = common::seven();
    for i in 0..count {
        xs.extend(seven.iter().enumerate().map(|(j, v)| v * (1.0 + 0.01 * i as f32) + 0.001 * ((i * 31 + j) % 17) as f32));
    }
    for padding in [idcrisis::engine::Padding::Zero, idcrisis::engine::Padding::Circular] {
        let cfg = ModelConfig { arch: Arch::Cnn, depth: 4, channels: 8, kernel: 5, padding, ..Default::default() };
        let mut net = Net::<f32>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        net.init(Init::TorchDefault, 1.0, 5);
        let one = Engine::new(1).unwrap().with_conv_algo(ConvAlgo::Direct);
        let alone: Vec<f32> = (0..count).flat_map(|i| net.predict(&one, &xs[i * 784..(i + 1) * 784], 1, 1)).collect();
        for threads in [1, 2, 3] {
            let eng = Engine::new(threads).unwrap().with_conv_algo(ConvAlgo::Direct);
            for batch in [2, 5, 16, 37] {
                let b = net.predict(&eng, &xs, count, batch);
                assert!(alone.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "{padding:?} {threads} threads, batch {batch}");
            }
            let mut ws = net.workspace(count, true);
            let t = net.forward(&eng, &mut ws, &xs, count).to_vec();
            assert!(alone.iter().zip(&t).all(|(p, q)| p.to_bits() == q.to_bits()), "{padding:?} {threads} threads, training forward");
        }
        // Against another algorithm the numbers agree to rounding (so the comparison above is
        // not between two copies of one wrong answer).
        let im = Engine::new(2).unwrap().with_conv_algo(ConvAlgo::Im2col);
        let r = net.predict(&im, &xs, count, 16);
        let worst = alone.iter().zip(&r).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "{padding:?}: direct vs im2col {worst}");
    }
}

#[test]
fn predict_splits_inputs_over_threads_with_the_bits_of_each_input_alone() {
    // `Net::predict` gives each thread a contiguous run of the inputs, evaluated in smaller
    // batches on a one-thread engine, and Winograd evaluates fewer images per chunk than a
    // training forward; for every convolution algorithm each output must still be the bits
    // that input gets alone on one thread, and the training forward's (another chunking). Nets
    // with dense layers keep the caller's batches (their products round differently per batch
    // size), whole batches per thread: their bits must not depend on the thread count. At 7
    // inputs in batches of 3, runs of 4 and 3 inputs would cut a batch, and fail here.
    let count = 7;
    let seven = common::seven();
    let xs: Vec<f32> = (0..count)
        .flat_map(|i| seven.iter().enumerate().map(move |(j, v)| v * (1.0 - 0.03 * i as f32) + 0.002 * ((i * 13 + j) % 11) as f32))
        .collect();
    let cnn = |channels: usize, kernel: usize| ModelConfig { arch: Arch::Cnn, depth: 4, channels, kernel, ..Default::default() };
    let cases = [
        (cnn(16, 5), ConvAlgo::Auto),
        (cnn(16, 5), ConvAlgo::Winograd),
        (cnn(20, 3), ConvAlgo::Winograd),
        (cnn(16, 7), ConvAlgo::Winograd),
        (cnn(32, 3), ConvAlgo::Auto),
        (cnn(8, 5), ConvAlgo::Im2col),
        (cnn(8, 3), ConvAlgo::Direct),
        (ModelConfig { arch: Arch::Fcn, depth: 3, width: Some(96), ..Default::default() }, ConvAlgo::Auto),
    ];
    for (cfg, algo) in cases {
        let mut net = Net::<f32>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        net.init(Init::TorchDefault, 1.0, 11);
        let one = Engine::new(1).unwrap().with_conv_algo(algo);
        let alone: Vec<f32> = (0..count).flat_map(|i| net.predict(&one, &xs[i * 784..(i + 1) * 784], 1, 1)).collect();
        let dense = cfg.arch == Arch::Fcn;
        let bits = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
        let same = |b: &[f32]| bits(&alone, b);
        for threads in [1, 2, 3] {
            let eng = Engine::new(threads).unwrap().with_conv_algo(algo);
            for batch in [1, 3, 16] {
                let got = net.predict(&eng, &xs, count, batch);
                let ok = if dense { bits(&net.predict(&one, &xs, count, batch), &got) } else { same(&got) };
                assert!(ok, "{cfg:?} {algo:?}: {threads} threads, batch {batch}");
            }
            if algo == ConvAlgo::Winograd {
                let mut ws = net.workspace(count, true);
                let t = net.forward(&eng, &mut ws, &xs, count).to_vec();
                assert!(same(&t), "{cfg:?}: {threads} threads, training forward");
            }
        }
        // Not all alike: another algorithm agrees only to rounding, so equal bits above are
        // not two copies of one constant.
        let other = Engine::new(2).unwrap().with_conv_algo(if algo == ConvAlgo::Im2col { ConvAlgo::Winograd } else { ConvAlgo::Im2col });
        let r = net.predict(&other, &xs, count, 4);
        let worst = alone.iter().zip(&r).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "{cfg:?}: {worst}");
        assert!(alone.chunks(784).any(|a| a != &alone[..784]), "{cfg:?}: the inputs give different outputs");
    }
}
