//! Images of any shape: a canvas around the MNIST digit, and CIFAR-10 in colour (on generated
//! batches), through the whole run: inputs, model, probes, metrics, figures and run files.

mod common;

use idcrisis::data::cifar;
use idcrisis::experiment::config::RunConfig;
use idcrisis::experiment::inputs;
use idcrisis::experiment::run::{execute, RunOptions, RunResult};
use idcrisis::nn::model::{Arch, ModelConfig, Net};
use idcrisis::Shape;
use std::path::Path;

fn small(depth: usize) -> RunConfig {
    let mut c =
        RunConfig { model: ModelConfig { arch: Arch::Cnn, depth, channels: 4, kernel: 3, ..Default::default() }, ..Default::default() };
    c.train.steps = 8;
    c.train.lr = 1e-3;
    c.threads = 1;
    c.rho = vec![0.5];
    c
}

fn go(cfg: &RunConfig, data: &Path, out: &Path) -> idcrisis::Result<RunResult> {
    execute(cfg, RunOptions { data_dir: data.to_path_buf(), out: out.to_path_buf(), progress: &mut |_, _| true })
}

/// A CIFAR-10 test batch of `n` records: record i has label i % 10 and smooth colour planes.
fn cifar_dir(n: usize) -> common::TestDir {
    let dir = common::tempdir("cifar-data");
    let p = cifar::batch_files(&dir, idcrisis::data::Split::Test)[0].clone();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut bytes = Vec::with_capacity(n * cifar::RECORD);
    for i in 0..n {
        bytes.push((i % 10) as u8);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    bytes.push(((x * (c + 1) * 7 + y * (i % 5 + 1) * 5 + 40 * c) % 256) as u8);
                }
            }
        }
    }
    std::fs::write(&p, bytes).unwrap();
    dir
}

#[test]
fn a_canvas_centres_every_image_and_scores_the_window() {
    let mut cfg = small(2);
    cfg.canvas = Some(40);
    let inp = inputs::load(&common::data_dir(), &cfg).unwrap();
    assert_eq!((inp.image, inp.shape), (Shape::MNIST, Shape::new(1, 40, 40)));
    let w = inp.window.unwrap();
    assert_eq!((w.top, w.left), (6, 6));
    // The digit sits in the window, zeros around it; every probe likewise.
    assert_eq!(w.crop(&inp.train), common::seven());
    let border: f32 = inp.train.iter().sum::<f32>() - w.crop(&inp.train).iter().sum::<f32>();
    assert_eq!(border, 0.0);
    for p in &inp.probes {
        assert_eq!(p.image.len(), 1600, "{}", p.name);
        assert_eq!(p.image.iter().map(|v| v.abs()).sum::<f32>(), w.crop(&p.image).iter().map(|v| v.abs()).sum::<f32>(), "{}", p.name);
    }

    let tmp = common::tempdir("canvas");
    let out = tmp.join("run");
    let r = go(&cfg, &common::data_dir(), &out).unwrap();
    assert_eq!(r.config.shape, Some(Shape::new(1, 40, 40)));
    let ev = r.evaluation.unwrap();
    assert!(ev.probes.iter().all(|s| s.window.is_some()));
    assert!(ev.categories["paper"].window.is_some());
    // The window's scores are the scores of the cropped images.
    let text = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(text.contains("canvas = 40"), "{text}");
    // A net of the canvas's size: 1→4→1 channels over 40×40.
    let net = Net::<f32>::new(&r.config.model, Shape::new(1, 40, 40)).unwrap();
    assert_eq!(net.num_params(), r.params);
}

#[test]
fn a_canvas_smaller_than_the_image_is_refused_before_anything_is_written() {
    let mut cfg = small(1);
    cfg.canvas = Some(20);
    let tmp = common::tempdir("small-canvas");
    let out = tmp.join("run");
    let e = go(&cfg, &common::data_dir(), &out).unwrap_err().to_string();
    assert!(e.contains("--canvas") && e.contains("smaller than the image"), "{e}");
    assert!(!out.exists(), "nothing is written");
    // A recorded shape the data do not give.
    let mut cfg = small(1);
    cfg.shape = Some(Shape::CIFAR);
    let e = go(&cfg, &common::data_dir(), &out).unwrap_err().to_string();
    assert!(e.contains("--shape") || e.contains("shape"), "{e}");
    assert!(!out.exists());
}

#[test]
fn cifar_trains_in_colour_with_its_own_probes() {
    let data = cifar_dir(24);
    let mut cfg = small(2);
    cfg.train_image = "cifar-10:test:3".parse().unwrap();
    let tmp = common::tempdir("cifar-run");
    let out = tmp.join("run");
    let r = go(&cfg, &data, &out).unwrap();
    assert_eq!(r.config.shape, Some(Shape::CIFAR));
    // 3→4 and 4→3 channels, 3×3 kernels, with biases.
    assert_eq!(r.params, (4 * 3 * 9 + 4) + (3 * 4 * 9 + 3));
    let ev = r.evaluation.unwrap();
    let names: Vec<&str> = ev.probes.iter().map(|s| s.probe.as_str()).collect();
    // One test image per class, never the training image (#3, a cat: the next cat is #13).
    assert_eq!(names.iter().filter(|n| n.starts_with("cifar-test-")).count(), 10);
    assert!(names.contains(&"cifar-test-13-cat") && !names.contains(&"cifar-test-3-cat"), "{names:?}");
    assert!(names.contains(&"ring") && names.contains(&"rho-0.50"));
    assert!(ev.categories.contains_key("cifar") && ev.categories.contains_key("synthetic"));
    // The figure is in colour: some pixel of the training image's cell has R ≠ G.
    let png = image::open(out.join("predictions.png")).unwrap().to_rgb8();
    assert!(png.pixels().any(|p| p.0[0] != p.0[1] && p.0[1] != p.0[2]), "no colour in predictions.png");

    // The gray view keeps the paper's shape and probes (they need MNIST; not in this dir).
    let mut gray = cfg.clone();
    gray.gray = Some(28);
    let e = go(&gray, &data, &out.with_file_name("gray")).unwrap_err().to_string();
    assert!(e.contains("mnist"), "{e}");
}

#[test]
fn weights_of_another_shape_name_the_tensor_and_both_shapes() {
    let data = cifar_dir(12);
    let mnist = common::tempdir("mnist-w");
    let first = go(&small(2), &common::data_dir(), &mnist.join("run")).unwrap();
    assert_eq!(first.config.shape, Some(Shape::MNIST));
    let mut cfg = small(2);
    cfg.train_image = "cifar-10:test:0".parse().unwrap();
    cfg.init.from = Some(mnist.join("run/weights.safetensors"));
    let tmp = common::tempdir("cifar-w");
    let out = tmp.join("run");
    let e = go(&cfg, &data, &out).unwrap_err().to_string();
    assert!(e.contains("layers.0.weight") && e.contains("[4, 1, 3, 3]") && e.contains("[4, 3, 3, 3]"), "{e}");
    assert!(!out.exists());
}

#[test]
fn fcn_width_defaults_to_the_input_dimension() {
    let data = cifar_dir(12);
    let mut cfg = small(2);
    cfg.model = ModelConfig { arch: Arch::Fcn, depth: 2, ..Default::default() };
    cfg.train_image = "cifar-10:test:0".parse().unwrap();
    cfg.train.steps = 2;
    let tmp = common::tempdir("fcn-w");
    let r = go(&cfg, &data, &tmp.join("run")).unwrap();
    assert_eq!(r.config.model.width, Some(3072));
    assert_eq!(r.params, 2 * (3072 * 3072 + 3072));
}
