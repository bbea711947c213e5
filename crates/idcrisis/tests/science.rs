//! Scientific checks that can fail for a real reason: a 1-layer CNN generalizes (identity) on
//! the digit probes; a 6-layer ReLU FCN memorizes (constant).

mod common;

use idcrisis::experiment::config::RunConfig;
use idcrisis::experiment::run::{execute, RunOptions};
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, ModelConfig};
use idcrisis::nn::optim::OptimizerKind;

fn go(cfg: &RunConfig, tag: &str) -> idcrisis::experiment::run::Evaluation {
    let out = common::tempdir(tag).join("run");
    execute(cfg, RunOptions { data_dir: common::data_dir(), out, progress: &mut |_, _| {} }).unwrap().evaluation.unwrap()
}

#[test]
fn one_layer_cnn_learns_the_identity_on_digits() {
    let mut c = RunConfig { model: ModelConfig { arch: Arch::Cnn, depth: 1, kernel: 5, ..Default::default() }, ..Default::default() };
    c.threads = 2;
    let ev = go(&c, "cnn1");
    let digits = &ev.categories["mnist"];
    assert!(digits.corr_identity > 0.95, "corr to identity on digits {}", digits.corr_identity);
    assert!(ev.categories["blend"].corr_identity > 0.95);
}

#[test]
fn six_layer_relu_fcn_memorizes_the_seven() {
    let mut c = RunConfig {
        model: ModelConfig { arch: Arch::Fcn, depth: 6, width: Some(784), act: Activation::Relu, ..Default::default() },
        ..Default::default()
    };
    c.train.optimizer = OptimizerKind::Gd;
    c.train.lr = 0.1;
    c.train.steps = 5000;
    c.threads = 2;
    let ev = go(&c, "fcn6");
    let paper = &ev.categories["paper"];
    assert!(paper.corr_constant > 0.9, "corr to constant {}", paper.corr_constant);
    assert!(paper.corr_identity < 0.5);
}
