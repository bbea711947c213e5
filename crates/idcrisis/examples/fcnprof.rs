//! GEMM shapes of a batched FCN forward (development aid): how the `gemm` crate's packing and
//! threading treat y = x·Wᵀ versus yᵀ = W·xᵀ, and row halves on separate threads.
use idcrisis::engine::*;
use std::time::Instant;
fn t(name: &str, f: &mut dyn FnMut()) {
    f();
    let s = Instant::now();
    for _ in 0..50 {
        f();
    }
    println!("{name:40} {:8.3} ms", s.elapsed().as_secs_f64() * 1e3 / 50.0);
}
fn main() {
    let eng = Engine::new(2).unwrap();
    let (n, inp, out) = (100, 2048, 2048);
    let x = vec![0.1f32; n * inp];
    let w = vec![0.01f32; out * inp];
    let mut y = vec![0f32; n * out];
    let mut yt = vec![0f32; n * out];
    eng.install(|| {
        t("y = x W^T (b_t)", &mut || gemm(&eng, n, out, inp, &mut y, &x, Trans::No, &w, Trans::Yes, Acc::Overwrite));
        t("y^T = W x^T (b_t)", &mut || gemm(&eng, out, n, inp, &mut yt, &w, Trans::No, &x, Trans::Yes, Acc::Overwrite));
        let h = out / 2;
        let al = Strides { batch: h * inp, row: inp, col: 1 };
        let bl = Strides { batch: 0, row: 1, col: inp };
        let cl = Strides { batch: h * n, row: n, col: 1 };
        t("y^T halves on 2 threads", &mut || gemm_batch(&eng, 2, h, n, inp, &mut yt, cl, &w, al, &x, bl, Acc::Overwrite));
    });
    println!("flops {:.1} MF", 2.0 * (n * inp * out) as f64 / 1e6);
}
