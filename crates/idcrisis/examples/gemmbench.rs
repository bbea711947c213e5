use idcrisis::engine::*;
use std::time::Instant;
fn t(name: &str, f: &mut dyn FnMut()) {
    f();
    let s = Instant::now();
    for _ in 0..20 {
        f();
    }
    println!("{name:30} {:8.3} ms", s.elapsed().as_secs_f64() * 1e3 / 20.0);
}
fn main() {
    let th: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(2);
    let eng = Engine::new(th).unwrap();
    let (co, ckk, hw) = (128, 3200, 784);
    let w = vec![0.01f32; co * ckk];
    let cols = vec![0.5f32; ckk * hw];
    let mut y = vec![0f32; co * hw];
    let mut dw = vec![0f32; co * ckk];
    let mut dcols = vec![0f32; ckk * hw];
    let g = ConvGeom::new(128, 28, 28, 5, Padding::Zero);
    let x = vec![0.3f32; 128 * 784];
    let mut xo = vec![0.3f32; 128 * 784];
    eng.install(|| {
        t("fwd W·cols", &mut || gemm(&eng, co, hw, ckk, &mut y, &w, Trans::No, &cols, Trans::No, Acc::Overwrite));
        t("dW dY·colsT", &mut || gemm(&eng, co, ckk, hw, &mut dw, &y, Trans::No, &cols, Trans::Yes, Acc::Add));
        t("dcols WT·dY", &mut || gemm(&eng, ckk, hw, co, &mut dcols, &w, Trans::Yes, &y, Trans::No, Acc::Overwrite));
        let n = 1024;
        let a = vec![0.1f32; n * n];
        let mut c = vec![0f32; n * n];
        t("1024^3", &mut || gemm(&eng, n, n, n, &mut c, &a, Trans::No, &a, Trans::No, Acc::Overwrite));
        println!("1024^3 flops {:.3} GF", 2.0 * (n * n * n) as f64 / 1e9);
        let mut c2 = cols.clone();
        t("im2col", &mut || im2col(&eng, &g, &x, &mut c2));
        t("col2im", &mut || col2im(&eng, &g, &dcols, &mut xo));
    });
    println!("flops per gemm: {:.3} GF", 2.0 * (co * ckk * hw) as f64 / 1e9);
}
