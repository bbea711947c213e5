//! **What it measures:** evaluation throughput (images per second) of whole small-channel CNNs
//! (`Net::predict`, f32, zero padding, 28×28) under each convolution algorithm, by channel count,
//! kernel size, batch size and thread count. `BENCHMARKS.md` cites it for the `auto` rule in
//! evaluation (probing, attractor iteration, Python's `predict`).
//!
//! **Check first:** every algorithm gives the same outputs as im2col to 1e-4 relative.
//!
//! Run: `cargo bench -p idcrisis --bench evalalgo` (`EVALALGO_QUICK=1` for a smaller grid,
//! `EVALALGO_CHANNELS=64,128` and `EVALALGO_KERNELS=7` for chosen widths and kernels).

mod common;

use common::{cpu, env_counts, values};
use idcrisis::engine::{winograd::Isa, ConvAlgo, Engine};
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::Shape;
use std::time::Instant;

fn main() {
    let quick = std::env::var_os("EVALALGO_QUICK").is_some();
    println!("evalalgo: images/s of Net::predict, depth-6 CNNs, {}; ISA {:?}", cpu(), Isa::detect());
    let images = 400;
    let x = values(images * 784, 0.7).iter().map(|v| v.abs()).collect::<Vec<f32>>();
    let channels = env_counts("EVALALGO_CHANNELS", if quick { &[16, 32] } else { &[4, 8, 12, 16, 24, 32, 64] });
    println!("{:>3} {:>3} {:>7} {:>5} {:>9} {:>9} {:>9} {:>9}", "k", "ch", "threads", "batch", "im2col", "winograd", "direct", "auto");
    let kernels = env_counts("EVALALGO_KERNELS", &[3, 5, 7]);
    for &k in &kernels {
        for &c in &channels {
            let cfg = ModelConfig { arch: Arch::Cnn, depth: 6, channels: c, kernel: k, ..Default::default() };
            let mut net = Net::<f32>::new(&cfg, Shape::MNIST).unwrap();
            net.init(Init::TorchDefault, 1.0, 3);
            for threads in [1, 2] {
                for batch in [1, 100] {
                    let mut reference: Option<Vec<f32>> = None;
                    let mut row = Vec::new();
                    for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd, ConvAlgo::Direct, ConvAlgo::Auto] {
                        let eng = Engine::new(threads).unwrap().with_conv_algo(algo);
                        let out = net.predict(&eng, &x, images, batch);
                        match &reference {
                            None => reference = Some(out),
                            Some(r) => {
                                let scale = r.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
                                let d = r.iter().zip(&out).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) / scale;
                                assert!(d < 1e-4, "k={k} c={c} {algo:?}: differs from im2col by {d:e}");
                            }
                        }
                        // Best of 3 passes.
                        let mut best = f64::INFINITY;
                        for _ in 0..3 {
                            let t = Instant::now();
                            std::hint::black_box(net.predict(&eng, &x, images, batch));
                            best = best.min(t.elapsed().as_secs_f64());
                        }
                        row.push(images as f64 / best);
                    }
                    println!("{k:>3} {c:>3} {threads:>7} {batch:>5} {:>9.0} {:>9.0} {:>9.0} {:>9.0}", row[0], row[1], row[2], row[3]);
                }
            }
        }
    }
}
