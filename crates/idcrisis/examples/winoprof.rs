//! Time the phases of one Winograd 128-channel layer (development aid).
use idcrisis::engine::winograd::WinoConv;
use idcrisis::engine::*;
use std::time::Instant;
fn t(name: &str, f: &mut dyn FnMut()) {
    f();
    let s = Instant::now();
    for _ in 0..30 {
        f();
    }
    println!("{name:30} {:8.3} ms", s.elapsed().as_secs_f64() * 1e3 / 30.0);
}
fn main() {
    let th: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(2);
    let m: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(2);
    let c: usize = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(128);
    let r: usize = std::env::args().nth(4).map(|s| s.parse().unwrap()).unwrap_or(5);
    let eng = Engine::new(th).unwrap();
    let wc = WinoConv::new(m, r, c, c, 28, 28);
    let x: Vec<f32> = (0..c * 784).map(|i| (i as f32 * 0.1).sin()).collect();
    let w: Vec<f32> = (0..c * c * r * r).map(|i| (i as f32 * 0.3).sin() * 0.01).collect();
    let mut y = vec![0f32; c * 784];
    let mut dx = vec![0f32; c * 784];
    let mut dw = vec![0f32; w.len()];
    let mut store = vec![0f32; wc.store_len()];
    let mut scratch = vec![0f32; wc.scratch_len()];
    let n = m + r - 1;
    let (p, t_) = (n * n, wc.tiles());
    eng.install(|| {
        t("forward", &mut || wc.forward(&eng, &w, None, &x, &mut y, Some(&mut store), &mut scratch, 1));
        t("backward dW only", &mut || wc.backward(&eng, &w, &mut dw, &store, &y, None, &mut scratch, 1));
        t("backward dW+dX", &mut || wc.backward(&eng, &w, &mut dw, &store, &y, Some(&mut dx), &mut scratch, 1));
        let mut xx = x.clone();
        let mut vv = vec![0f32; wc.store_len()];
        t("input transform", &mut || wc.profile_transforms(&eng, 0, &mut xx, &mut vv));
        t("output transform", &mut || wc.profile_transforms(&eng, 1, &mut xx, &mut vv));
        t("grad transform", &mut || wc.profile_transforms(&eng, 2, &mut xx, &mut vv));
        let u = vec![0.01f32; p * c * c];
        let v = vec![0.01f32; p * c * t_];
        let mut mm = vec![0f32; p * c * t_];
        let g = vec![0.1f32; p * r * r];
        let mut uu = vec![0f32; p * c * c];
        t("U = Gk W^T", &mut || gemm(&eng, p, c * c, r * r, &mut uu, &g, false, &w, true, false));
        let bk = vec![0.1f32; p * p];
        t("V = Bk D", &mut || gemm(&eng, p, c * t_, p, &mut mm, &bk, false, &v, false, false));
        let ul0 = Strides { batch: c * c, row: c, col: 1 };
        let utl = Strides { batch: c * c, row: 1, col: c };
        let cm0 = Strides { batch: t_, row: p * t_, col: 1 };
        t("gemm_batch a_t channel-major", &mut || gemm_batch(&eng, p, c, t_, c, &mut mm, cm0, &u, utl, &v, cm0, false));
        let vt = Strides { batch: t_, row: 1, col: p * t_ };
        t("gemm_batch dU", &mut || gemm_batch(&eng, p, c, c, t_, &mut uu, ul0, &mm, cm0, &v, vt, false));
        let cm = Strides { batch: t_, row: p * t_, col: 1 };
        let ul = Strides { batch: c * c, row: c, col: 1 };
        t("gemm_batch channel-major", &mut || gemm_batch(&eng, p, c, t_, c, &mut mm, cm, &u, ul, &v, cm, false));
        let xm = Strides { batch: c * t_, row: t_, col: 1 };
        t("gemm_batch xi-major", &mut || gemm_batch(&eng, p, c, t_, c, &mut mm, xm, &u, ul, &v, xm, false));
        let ak = vec![0.1f32; m * m * p];
        let mut yt = vec![0f32; m * m * c * t_];
        t("Yt = Ak M", &mut || gemm(&eng, m * m, c * t_, p, &mut yt, &ak, false, &mm, false, false));
        t("E = Ak^T dYt", &mut || gemm(&eng, p, c * t_, m * m, &mut mm, &ak, true, &yt, false, false));
        t("dW += dU^T Gk", &mut || gemm(&eng, c * c, r * r, p, &mut dw, &u, true, &g, false, true));
    });
}
