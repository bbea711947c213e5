//! Golden values computed independently by PyTorch (float64): the same initial weights, the same
//! optimizer, a few steps on MNIST train #15. Regenerate with `scripts/torch_golden.sh`.

mod common;

use idcrisis::engine::Engine;
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::nn::optim::OptimizerKind;
use idcrisis::nn::train::{train, TrainConfig};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/torch_golden.json");

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-3)
}

#[test]
fn training_matches_pytorch_float64() {
    let fx: Value = serde_json::from_str(FIXTURE).unwrap();
    // The image in float64 exactly as PyTorch makes it: u8 / 255.
    let imgs = idcrisis::data::load_images(&common::data_dir(), idcrisis::data::Dataset::Mnist, idcrisis::data::Split::Train).unwrap();
    let x: Vec<f64> = imgs.pixels[15 * 784..16 * 784].iter().map(|&p| p as f64 / 255.0).collect();
    let eng = Engine::new(2).unwrap();
    let results = fx["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        let c = &r["case"];
        let name = c["name"].as_str().unwrap();
        let cfg = ModelConfig {
            arch: if c["arch"] == "cnn" { Arch::Cnn } else { Arch::Fcn },
            depth: c["depth"].as_u64().unwrap() as usize,
            channels: c["channels"].as_u64().unwrap_or(1) as usize,
            kernel: c["kernel"].as_u64().unwrap_or(5) as usize,
            width: Some(c["width"].as_u64().unwrap_or(784) as usize),
            act: serde_json::from_value(c["act"].clone()).unwrap(),
            bias: c["bias"].as_bool().unwrap(),
            ..Default::default()
        };
        let mut net = Net::<f64>::new(&cfg, idcrisis::Shape::MNIST).unwrap();
        net.init(Init::TorchDefault, 1.0, c["seed"].as_u64().unwrap());
        let opt: OptimizerKind = serde_json::from_value(c["optimizer"].clone()).unwrap();
        let tc = TrainConfig {
            optimizer: opt,
            lr: c["lr"].as_f64().unwrap(),
            momentum: c["momentum"].as_f64().unwrap(),
            steps: c["steps"].as_u64().unwrap(),
            tol: 0.0,
        };
        let out = train(&eng, &mut net, &x, 1, &tc, &mut |_, _| true).unwrap();
        let want: Vec<f64> = r["losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(out.losses.len(), want.len(), "{name}");
        for (i, (a, b)) in out.losses.iter().zip(&want).enumerate() {
            assert!(rel(*a, *b) < 1e-10, "{name}: loss {i}: ours {a}, PyTorch {b}");
        }
        for (tname, _, range) in net.tensors() {
            let t = &r["tensors"][&tname];
            let ours = &net.params[range];
            let sum: f64 = ours.iter().sum();
            assert!(rel(sum, t["sum"].as_f64().unwrap()) < 1e-9, "{name} {tname}: sum {sum} vs {}", t["sum"]);
            if let Some(vals) = t["values"].as_array() {
                assert_eq!(vals.len(), ours.len());
                for (a, b) in ours.iter().zip(vals) {
                    assert!((a - b.as_f64().unwrap()).abs() < 1e-10, "{name} {tname}: {a} vs {b}");
                }
            } else {
                let idx = t["sample_index"].as_array().unwrap();
                for (i, b) in idx.iter().zip(t["sample"].as_array().unwrap()) {
                    let a = ours[i.as_u64().unwrap() as usize];
                    assert!((a - b.as_f64().unwrap()).abs() < 1e-10, "{name} {tname}[{i}]: {a} vs {b}");
                }
            }
        }
    }
}
