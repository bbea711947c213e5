use idcrisis::engine::winograd::WinoConv;
use idcrisis::engine::*;
fn main() {
    let which: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(0);
    let m: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(4);
    let r: usize = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(5);
    let c = 128;
    let eng = Engine::new(1).unwrap();
    let wc = WinoConv::new(m, r, c, c, 28, 28);
    let mut x: Vec<f32> = (0..c * 784 * 4).map(|i| (i as f32 * 0.1).sin()).collect();
    let mut v = vec![0f32; wc.store_len()];
    let t = std::time::Instant::now();
    for _ in 0..2000 { wc.profile_transforms(&eng, which, &mut x, &mut v); }
    println!("{:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 2000.0);
}
