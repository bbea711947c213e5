//! Exact invariances of random (untrained) nets, the facts the `boundary` experiment's
//! predictions rest on:
//! - circular padding makes every layer translation-equivariant: roll the input, the output rolls;
//!   so a uniform input gives a uniform output;
//! - without biases a ReLU net is positively homogeneous under any padding: f(0) = 0, f(2x) = 2f(x).
//!
//! Each property is also shown to fail where it should not hold (zero padding, coordinate
//! channels, biases), so the checks can tell the difference.

use idcrisis::engine::{ConvAlgo, Engine, Padding};
use idcrisis::eval::metrics::max_abs_diff;
use idcrisis::nn::model::{Arch, Coords, Init, ModelConfig, Net};
use idcrisis::rng::{Rng, Stream};
use idcrisis::Shape;

const SIDE: usize = 12;

fn net(padding: Padding, bias: bool, coords: Coords, seed: u64) -> Net<f64> {
    let cfg = ModelConfig { arch: Arch::Cnn, depth: 4, channels: 8, kernel: 5, padding, bias, coords, ..Default::default() };
    let mut n = Net::<f64>::new(&cfg, Shape::new(1, SIDE, SIDE)).unwrap();
    n.init(Init::TorchDefault, 1.0, seed);
    n
}

fn input(seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed, Stream::Misc);
    (0..SIDE * SIDE).map(|_| rng.uniform()).collect()
}

/// `x [SIDE, SIDE]` rolled by `(dy, dx)` with wrap-around (as `torch.roll`).
fn roll(x: &[f64], dy: usize, dx: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for r in 0..SIDE {
        for c in 0..SIDE {
            out[((r + dy) % SIDE) * SIDE + (c + dx) % SIDE] = x[r * SIDE + c];
        }
    }
    out
}

fn engines() -> [Engine; 2] {
    [Engine::new(2).unwrap(), Engine::new(2).unwrap().with_conv_algo(ConvAlgo::Im2col)]
}

#[test]
fn circular_padding_is_translation_equivariant() {
    for eng in engines() {
        for seed in 0..3 {
            let f = net(Padding::Circular, true, Coords::None, seed);
            let x = input(10 + seed);
            let y = f.predict(&eng, &x, 1, 1);
            for (dy, dx) in [(1, 0), (0, 3), (5, 7)] {
                let rolled = f.predict(&eng, &roll(&x, dy, dx), 1, 1);
                let d = max_abs_diff(&rolled, &roll(&y, dy, dx));
                assert!(d < 1e-12, "seed {seed} roll ({dy}, {dx}): {d}");
            }
            // Zero padding is not: the border is visible.
            let z = net(Padding::Zero, true, Coords::None, seed);
            let d = max_abs_diff(&z.predict(&eng, &roll(&x, 5, 7), 1, 1), &roll(&z.predict(&eng, &x, 1, 1), 5, 7));
            assert!(d > 1e-3, "zero padding looked equivariant ({d})");
            // Nor is circular padding with coordinate channels: position is given.
            let c = net(Padding::Circular, true, Coords::Input, seed);
            let d = max_abs_diff(&c.predict(&eng, &roll(&x, 5, 7), 1, 1), &roll(&c.predict(&eng, &x, 1, 1), 5, 7));
            assert!(d > 1e-3, "circular padding with coordinates looked equivariant ({d})");
        }
    }
}

#[test]
fn a_uniform_input_gives_a_uniform_output_under_circular_padding() {
    for eng in engines() {
        for v in [0.0, 0.3, 1.0] {
            let x = vec![v; SIDE * SIDE];
            let y = net(Padding::Circular, true, Coords::None, 4).predict(&eng, &x, 1, 1);
            let spread = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - y.iter().cloned().fold(f64::INFINITY, f64::min);
            assert!(spread < 1e-12, "uniform {v}: output spread {spread}");
            // Under zero padding the border makes it non-uniform.
            let z = net(Padding::Zero, true, Coords::None, 4).predict(&eng, &x, 1, 1);
            let spread = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - z.iter().cloned().fold(f64::INFINITY, f64::min);
            assert!(v == 0.0 || spread > 1e-4, "zero padding, uniform {v}: spread {spread}");
        }
    }
}

#[test]
fn a_bias_free_relu_net_is_positively_homogeneous() {
    for eng in engines() {
        for padding in [Padding::Zero, Padding::Circular, Padding::Reflect] {
            let f = net(padding, false, Coords::None, 7);
            let zero = f.predict(&eng, &vec![0.0; SIDE * SIDE], 1, 1);
            assert!(zero.iter().all(|v| *v == 0.0), "{padding:?}: f(0) ≠ 0");
            let x = input(3);
            let y = f.predict(&eng, &x, 1, 1);
            let x2: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
            let y2 = f.predict(&eng, &x2, 1, 1);
            let want: Vec<f64> = y.iter().map(|v| 2.0 * v).collect();
            assert!(max_abs_diff(&y2, &want) < 1e-12, "{padding:?}: f(2x) ≠ 2f(x)");
            // With biases neither holds.
            let b = net(padding, true, Coords::None, 7);
            assert!(b.predict(&eng, &vec![0.0; SIDE * SIDE], 1, 1).iter().any(|v| v.abs() > 1e-6), "{padding:?}: biased f(0) = 0");
            let (yb, y2b) = (b.predict(&eng, &x, 1, 1), b.predict(&eng, &x2, 1, 1));
            let d = max_abs_diff(&y2b, &yb.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
            assert!(d.is_finite() && d > 1e-6, "{padding:?}: biased net homogeneous (max difference {d})");
        }
    }
}
