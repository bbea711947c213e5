//! The attractor iteration allocates nothing per step beyond what the map itself does: an
//! allocation counter per thread (the loop runs on the calling thread; a global count would also
//! see thread pools starting and other tests), in a test binary of its own.

use idcrisis::engine::Engine;
use idcrisis::eval::attractor::{self, Options, Start};
use idcrisis::nn::layers::Activation;
use idcrisis::nn::model::{Arch, Init, ModelConfig, Net};
use idcrisis::Shape;

#[path = "common/alloc_count.rs"]
mod alloc_count;
use alloc_count::count;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

#[test]
fn iterating_a_net_allocates_nothing_per_step_outside_the_forward_pass() {
    // Every engine lives to the end: a team shutting down allocates on its own threads.
    let engines = [Engine::new(1).unwrap(), Engine::new(2).unwrap()];
    for (arch, threads) in [(Arch::Fcn, 1), (Arch::Fcn, 2), (Arch::Cnn, 1), (Arch::Cnn, 2)] {
        let shape = Shape { channels: 1, height: 8, width: 8 };
        let cfg = ModelConfig { arch, depth: 3, channels: 4, kernel: 3, act: Activation::Relu, ..ModelConfig::default() };
        let mut net = Net::<f32>::new(&cfg, shape).unwrap();
        net.init(Init::TorchDefault, 1.0, 3);
        let eng = &engines[threads - 1];
        let train = vec![(0..64).map(|i| (i % 5) as f32 / 5.0).collect::<Vec<f32>>()];
        let starts: Vec<Start> = attractor::starts(&[], &train, 1, 2);
        let mut inner = attractor::net_map(&net, eng, starts.len());
        // Allocation counts just before and just after each map call.
        let (mut before, mut after): (Vec<usize>, Vec<usize>) = (Vec::with_capacity(100), Vec::with_capacity(100));
        // A step tolerance no trajectory meets, so that the starts run for several steps.
        let opts = Options { max_steps: 30, step_tol: 1e-300, ..Options::default() };
        let traj = attractor::iterate(
            |xs: &[f32], ys: &mut [f32]| {
                before.push(count());
                inner(xs, ys);
                after.push(count());
            },
            &starts,
            &train,
            &opts,
        )
        .unwrap();
        assert!(before.len() >= 3, "{arch:?}: {:?}", traj.results);
        // Between one map call and the next (the iteration's own work) nothing is allocated.
        let between: Vec<usize> = (1..before.len()).map(|w| before[w] - after[w - 1]).collect();
        assert!(between.iter().all(|e| *e == 0), "{arch:?} with {threads} threads: the loop allocated {between:?}");
        // Within a map call: what the net's forward pass allocates on this thread.
        let within: Vec<usize> = (0..before.len()).map(|w| after[w] - before[w]).collect();
        eprintln!("{arch:?}, {threads} threads: allocations per forward {within:?}");
    }
}
