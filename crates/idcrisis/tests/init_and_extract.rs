//! Two paths with independent references: PyTorch's default bias init, U(±1/√fan_in), checked by
//! its bound and a Kolmogorov–Smirnov test against that law; and CIFAR-10 extraction from a
//! generated tarball.

mod common;

use idcrisis::data::fetch;
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::Shape;

/// KS distance of `xs` from U(−b, b).
fn ks_uniform(xs: &mut [f64], b: f64) -> f64 {
    xs.sort_by(|a, c| a.partial_cmp(c).unwrap());
    let n = xs.len() as f64;
    xs.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = ((x + b) / (2.0 * b)).clamp(0.0, 1.0);
            (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
        })
        .fold(0.0, f64::max)
}

#[test]
fn torch_default_biases_are_uniform_within_one_over_root_fan_in() {
    // FCN 784→784→784 (fan_in 784) and CNN 1→64→64→1 with 5×5 kernels (fan_in 25, 1600, 1600),
    // 12 seeds each: every bias divided by its bound 1/√fan_in, pooled (about 20 000 values).
    let fcn = ModelConfig { arch: Arch::Fcn, depth: 2, ..Default::default() };
    let cnn = ModelConfig { arch: Arch::Cnn, depth: 3, channels: 64, kernel: 5, ..Default::default() };
    let mut u = Vec::new();
    for (cfg, fans) in [(fcn, vec![784.0, 784.0]), (cnn, vec![25.0, 1600.0, 1600.0])] {
        let mut net = Net::<f64>::new(&cfg, Shape::MNIST).unwrap();
        for seed in 0..12 {
            net.init(Init::TorchDefault, 1.0, seed);
            for ((name, _, range), fan_in) in net.tensors().into_iter().filter(|t| t.0.ends_with("bias")).zip(&fans) {
                let b = 1.0 / f64::sqrt(*fan_in);
                assert!(net.params[range.clone()].iter().all(|x| x.abs() <= b), "{name}: a bias outside ±1/√{fan_in}");
                u.extend(net.params[range].iter().map(|x| x / b));
            }
        }
        // Other schemes start biases at zero.
        net.init(Init::HeNormal, 1.0, 11);
        for (_, _, range) in net.tensors().into_iter().filter(|t| t.0.ends_with("bias")) {
            assert!(net.params[range].iter().all(|x| *x == 0.0));
        }
    }
    let n = u.len() as f64;
    assert!(n > 19_000.0);
    // The bound is reached: with this many draws the largest |u| is within 1e-3 of 1 (a law on a
    // narrower interval fails here).
    let top = u.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(top > 0.999, "largest |bias|·√fan_in is {top}");
    // KS against U(−1, 1) at the 99% critical value 1.63/√n; a bound off by 4% is rejected.
    let crit = 1.63 / n.sqrt();
    let d = ks_uniform(&mut u, 1.0);
    assert!(d < crit, "KS distance {d} from U(±1/√fan_in) (critical {crit})");
    assert!(ks_uniform(&mut u, 0.96) > crit && ks_uniform(&mut u, 1.04) > crit);
}

/// A gzip'd tar with `entries` (path, bytes).
fn tarball(path: &std::path::Path, entries: &[(&str, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(f, flate2::Compression::fast()));
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

fn records(labels: &[u8]) -> Vec<u8> {
    labels.iter().flat_map(|&l| std::iter::once(l).chain((0..3072).map(move |i| ((i * 7 + l as usize) % 256) as u8))).collect()
}

#[test]
fn extract_cifar_writes_the_batches_of_a_tarball() {
    let dir = common::tempdir("extract");
    let (test, train) = (records(&[3, 8]), records(&[0, 1, 2]));
    let tgz = dir.join("cifar-10-binary.tar.gz");
    tarball(
        &tgz,
        &[
            ("cifar-10-batches-bin/readme.html", b"<html/>".to_vec()),
            ("cifar-10-batches-bin/test_batch.bin", test.clone()),
            ("cifar-10-batches-bin/data_batch_1.bin", train.clone()),
        ],
    );
    let target = dir.join("cifar-10");
    fetch::extract_cifar(&tgz, &target).unwrap();
    let base = target.join("cifar-10-batches-bin");
    assert_eq!(std::fs::read(base.join("test_batch.bin")).unwrap(), test);
    assert_eq!(std::fs::read(base.join("data_batch_1.bin")).unwrap(), train);
    assert!(!base.join("readme.html").exists(), "only batches are extracted");
    let imgs = idcrisis::data::load_images(&dir, idcrisis::data::Dataset::Cifar10, idcrisis::data::Split::Test).unwrap();
    assert_eq!((imgs.count, imgs.shape()), (2, Shape::CIFAR));

    // A batch with a bad label: the error names the tarball and the member; nothing is written.
    let bad = dir.join("bad.tar.gz");
    tarball(&bad, &[("cifar-10-batches-bin/test_batch.bin", records(&[3, 12]))]);
    let out = dir.join("bad-target");
    let e = fetch::extract_cifar(&bad, &out).unwrap_err().to_string();
    assert!(e.contains("bad.tar.gz") && e.contains("test_batch.bin") && e.contains("label 12"), "{e}");
    assert!(!out.join("cifar-10-batches-bin/test_batch.bin").exists());
    // Not a gzip at all.
    std::fs::write(&bad, b"not a tarball").unwrap();
    assert!(fetch::extract_cifar(&bad, &out).is_err());
}
