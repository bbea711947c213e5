fn main() {
    let eng = idcrisis::engine::Engine::new(2).unwrap();
    let x: Vec<f32> = (0..784).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    for w in idcrisis::bench::workloads() {
        let r = idcrisis::bench::time_model(&eng, w.name, &w.model, &x, 3, 20).unwrap();
        println!("{:20} {:8.2} ms (torch {:6.1})  {:6.1} GFLOP/s {:.2} peak", r.name, r.median_ms, w.torch_ms, r.gflops, r.frac_peak);
    }
}
