use idcrisis::engine::*;
use std::time::Instant;
fn t(name: &str, f: &mut dyn FnMut()) {
    f();
    let s = Instant::now();
    for _ in 0..50 { f(); }
    println!("{name:40} {:8.3} ms", s.elapsed().as_secs_f64() * 1e3 / 50.0);
}
fn main() {
    let eng = Engine::new(2).unwrap();
    let hw = 784;
    // last layer 128 -> 1
    let ckk = 3200;
    let w = vec![0.01f32; ckk];
    let cols = vec![0.5f32; ckk * hw];
    let mut y = vec![0f32; hw];
    let mut dw = vec![0f32; ckk];
    let mut dcols = vec![0f32; ckk * hw];
    // first layer 1 -> 128
    let w1 = vec![0.01f32; 128 * 25];
    let cols1 = vec![0.5f32; 25 * hw];
    let mut y1 = vec![0f32; 128 * hw];
    let mut dw1 = vec![0f32; 128 * 25];
    let g = ConvGeom::new(128, 28, 28, 5, Padding::Zero);
    let mut xo = vec![0.3f32; 128 * 784];
    eng.install(|| {
        t("last fwd m1 n784 k3200", &mut || gemm(&eng, 1, hw, ckk, &mut y, &w, false, &cols, false, false));
        t("last dW m1 n3200 k784", &mut || gemm(&eng, 1, ckk, hw, &mut dw, &y, false, &cols, true, true));
        t("last dcols m3200 n784 k1", &mut || gemm(&eng, ckk, hw, 1, &mut dcols, &w, true, &y, false, false));
        t("col2im 128ch", &mut || col2im(&eng, &g, &dcols, &mut xo));
        t("first fwd m128 n784 k25", &mut || gemm(&eng, 128, hw, 25, &mut y1, &w1, false, &cols1, false, false));
        t("first dW m128 n25 k784", &mut || gemm(&eng, 128, 25, hw, &mut dw1, &y1, false, &cols1, true, true));
        let mut c2 = vec![0f32; ckk*hw];
        t("im2col 128ch", &mut || im2col(&eng, &g, &xo, &mut c2));
    });
}
