//! SSIM against an independent implementation: scikit-image's `structural_similarity` on real
//! image pairs (fixture made by `scripts/ssim_golden.py`), to 1e-6. A wrong window, σ, constant
//! or averaging region fails it.

mod common;

use idcrisis::data::{load_images, Dataset, Split};
use idcrisis::eval::metrics::ssim;
use idcrisis::Shape;

const FIXTURE: &str = include_str!("fixtures/ssim_golden.json");

#[test]
fn ssim_matches_scikit_image() {
    let dir = common::data_dir();
    let mnist = load_images(&dir, Dataset::Mnist, Split::Test).unwrap();
    let fashion = load_images(&dir, Dataset::FashionMnist, Split::Test).unwrap();
    let image = |spec: &str| -> Vec<f32> {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts[0] {
            "mnist" => mnist.image_f32(parts[2].parse().unwrap()),
            "fashion-mnist" => fashion.image_f32(parts[2].parse().unwrap()),
            "blend" => {
                let (a, b) = (mnist.image_f32(parts[1].parse().unwrap()), mnist.image_f32(parts[2].parse().unwrap()));
                a.iter().zip(&b).map(|(x, y)| 0.5 * x + 0.5 * y).collect()
            }
            "noise" => {
                let base = mnist.image_f32(parts[3].parse().unwrap());
                base.iter().enumerate().map(|(i, v)| (v + ((i * 7919) % 101) as f32 / 101.0 * 0.2 - 0.1).clamp(0.0, 1.0)).collect()
            }
            other => panic!("unknown fixture image {other}"),
        }
    };
    let j: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let pairs = j["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 5);
    for p in pairs {
        let (a, b) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
        let want = p["ssim"].as_f64().unwrap();
        let got = ssim(&image(a), &image(b), Shape::MNIST);
        assert!((got - want).abs() < 1e-6, "SSIM({a}, {b}) = {got}, scikit-image {want}");
    }
}
