//! Winograd convolutions: the f32 rounding error against an f64 reference (the bound of
//! `benches/winoacc.rs`, as a test), and bit-identical results in every instruction set the
//! transforms (and the elementwise loops and the eigenvalue solver compiled through
//! `engine::widest`) can run in (`IDCRISIS_ISA`, checked in child processes of this test
//! binary, since the choice is made once per process).

use idcrisis::engine::winograd::{Isa, Layouts, WinoConv, SUPPORTED};
use idcrisis::engine::{ConvAlgo, Engine, Padding};
use idcrisis::float::Float;
use idcrisis::nn::layers::Conv2d;
use std::path::Path;
use std::process::Command;

#[path = "common/testdir.rs"]
mod testdir;
use testdir::TestDir;
mod conv_error;

/// RMS error of the f32 convolution (`algo`) relative to the RMS of the f64 im2col one, checking
/// that the layer ran the algorithm asked for.
fn rms_rel_err(k: usize, c: usize, algo: ConvAlgo) -> f64 {
    let (err, _, winograd) = conv_error::errors(k, c, algo);
    assert_eq!(winograd, algo == ConvAlgo::Winograd, "k={k} c={c} {algo:?}: not the algorithm asked for");
    err
}

#[test]
fn f32_convolution_error_against_f64_is_below_3e_5() {
    // F(4×4, 5×5) is the least accurate tile the layers use; k3 runs F(4×4, 3×3), k7 F(2×2, 7×7).
    for (k, c) in [(5usize, 128usize), (3, 32), (7, 64)] {
        for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd] {
            let err = rms_rel_err(k, c, algo);
            println!("k={k} c={c} {algo:?}: rms rel err {err:.2e}");
            assert!(err < 3e-5, "k={k} c={c} {algo:?}: rms relative error {err:e} ≥ 3e-5");
            // And the measure is not vacuous: f32 rounding shows.
            assert!(err > 1e-9, "k={k} c={c} {algo:?}: rms relative error {err:e} is too small to be f32's");
        }
    }
}

#[test]
fn isa_override_rule() {
    use Isa::*;
    assert_eq!(Isa::resolve(Avx512, None), (Avx512, None));
    assert_eq!(Isa::resolve(Avx2, Some("")), (Avx2, None));
    assert_eq!(Isa::resolve(Avx512, Some("avx2")), (Avx2, None));
    assert_eq!(Isa::resolve(Avx512, Some(" Baseline ")), (Base, None));
    assert_eq!(Isa::resolve(Avx2, Some("AVX2")), (Avx2, None));
    // Never above the CPU; unknown names are ignored; both with a warning.
    let (isa, w) = Isa::resolve(Avx2, Some("avx512"));
    assert_eq!(isa, Avx2);
    assert!(w.unwrap().contains("lacks avx512"));
    let (isa, w) = Isa::resolve(Base, Some("avx2"));
    assert_eq!(isa, Base);
    assert!(w.is_some());
    let (isa, w) = Isa::resolve(Avx512, Some("sse9"));
    assert_eq!(isa, Avx512);
    assert!(w.unwrap().contains("IDCRISIS_ISA=\"sse9\""));
    for i in Isa::ALL {
        assert_eq!(Isa::parse(i.name()), Some(i));
    }
    assert!(Isa::detect() <= Isa::cpu());
}

/// Set in the child processes: where [`isa_child_writes_winograd_bits`] writes its output.
const CHILD_OUT: &str = "IDCRISIS_TEST_ISA_CHILD_OUT";

/// Forward (with bias) and both gradients of every supported tile size, f32 and f64, with 20
/// channels (one full 16-lane block and a partial one) on 13×11 images (tiles cropped at the
/// border), both activation layouts: all the bits, concatenated.
fn winograd_bits() -> Vec<u8> {
    let eng = Engine::new(2).unwrap().with_conv_algo(ConvAlgo::Winograd);
    let mut out = Vec::new();
    for (m, k) in SUPPORTED {
        for io in [Layouts { x_cl: false, y_cl: false }, Layouts { x_cl: true, y_cl: true }] {
            out.extend(bits::<f32>(&eng, m, k, io));
            out.extend(bits::<f64>(&eng, m, k, io));
        }
    }
    out.extend(elementwise_bits());
    out.extend(eigenvalue_bits());
    out
}

/// `eval::eigen::eigenvalues` (compiled per set through `engine::widest`) of dense matrices of
/// 5, 64 and 201 rows: every eigenvalue's real and imaginary bits.
fn eigenvalue_bits() -> Vec<u8> {
    let mut out = Vec::new();
    for n in [5, 64, 201] {
        let val = |i: usize| (((i as f64 + 0.25 * n as f64) * 12.9898).sin() * 43758.5453).fract();
        let a = nalgebra::DMatrix::from_fn(n, n, |i, j| val(i * n + j));
        for z in idcrisis::eval::eigen::eigenvalues(&a).unwrap() {
            out.extend(z.re.to_le_bytes());
            out.extend(z.im.to_le_bytes());
        }
    }
    out
}

/// The elementwise loops `engine::widest` compiles per set (ReLU, its gradient, two Adam steps),
/// on 2 threads over a buffer long enough to be split, with negatives, zeros of both signs and a
/// NaN among the values.
fn elementwise_bits() -> Vec<u8> {
    use idcrisis::engine::{relu_backward, relu_forward};
    use idcrisis::nn::optim::{Optimizer, OptimizerKind};
    use idcrisis::nn::train::TrainConfig;
    let eng = Engine::new(2).unwrap();
    let len = (1 << 16) + 7;
    let val = |i: usize, salt: f64| (((i as f64 + salt) * 12.9898).sin() * 43758.5453).fract() as f32;
    let mut x: Vec<f32> = (0..len).map(|i| val(i, 0.5)).collect();
    x[3] = 0.0;
    x[4] = -0.0;
    x[5] = f32::NAN;
    let mut out = Vec::new();
    let mut dz: Vec<f32> = (0..len).map(|i| val(i, 2.5)).collect();
    relu_forward(&eng, &mut x);
    relu_backward(&eng, &mut dz, &x);
    out.extend(f32::slice_to_le_bytes(&x));
    out.extend(f32::slice_to_le_bytes(&dz));
    let tc = TrainConfig { optimizer: OptimizerKind::Adam, lr: 1e-2, ..TrainConfig::default() };
    let mut opt = Optimizer::<f32>::new(&tc, len);
    let mut params: Vec<f32> = (0..len).map(|i| val(i, 4.75)).collect();
    for step in 0..2 {
        let grads: Vec<f32> = (0..len).map(|i| val(i, 6.0 + step as f64)).collect();
        opt.step(&eng, &mut params, &grads);
    }
    out.extend(f32::slice_to_le_bytes(&params));
    out
}

/// A layer's output, parameter gradient and input gradient as bytes, for a full and a partial
/// block of 16 channels over 13×11, and for a few channels over images narrower than a tile.
fn bits<T: Float>(eng: &Engine, m: usize, k: usize, io: Layouts) -> Vec<u8> {
    let mut out = Vec::new();
    for (cin, cout, h, w, n) in [(20, 20, 13, 11, 2), (3, 5, 9, 2, 1), (5, 3, 1, 7, 1)] {
        let mut layer = layer(cin, cout, h, w, k);
        layer.wino = Some(WinoConv::new(m, k, cin, cout, h, w));
        let (y, grads, dx) = train_once::<T>(eng, &layer, n, io, T::zero());
        out.extend([T::slice_to_le_bytes(&y), T::slice_to_le_bytes(&grads), T::slice_to_le_bytes(&dx)].concat());
    }
    out
}

/// A zero-padded `cin → cout` layer over `h×w` with a `k×k` kernel and a bias, its parameters
/// `[weights, bias]` (no Winograd plan: the caller sets one where it wants Winograd).
fn layer(cin: usize, cout: usize, h: usize, w: usize, k: usize) -> Conv2d {
    let wl = cout * cin * k * k;
    let mut layer = Conv2d::new(cin, cout, h, w, k, Padding::Zero, 0..wl, Some(wl..wl + cout));
    layer.wino = None;
    layer
}

/// One training forward and backward of `layer` on `n` images, with deterministic parameters,
/// input and output gradient, and the layer's own `cols` and `scratch` buffers starting at
/// `fill`: the output, the parameter gradient and the input gradient.
fn train_once<T: Float>(eng: &Engine, layer: &Conv2d, n: usize, io: Layouts, fill: T) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (cin, cout, hw) = (layer.geom.c, layer.c_out, layer.geom.hw());
    let np = layer.b.as_ref().map_or(layer.w.end, |b| b.end);
    let val = |i: usize, salt: f64| <T as Float>::from_f64((((i as f64 + salt) * 12.9898).sin() * 43758.5453).fract());
    let params: Vec<T> = (0..np).map(|i| val(i, 0.5) * <T as Float>::from_f64(0.1)).collect();
    let x: Vec<T> = (0..n * cin * hw).map(|i| val(i, 7.25)).collect();
    let dy: Vec<T> = (0..n * cout * hw).map(|i| val(i, 3.125)).collect();
    let mut y = vec![T::zero(); n * cout * hw];
    let mut cols = vec![fill; layer.store_len(n)];
    let mut scratch = vec![fill; layer.scratch_len(n)];
    let mut grads = vec![T::zero(); np];
    let mut dx = vec![T::zero(); n * cin * hw];
    layer.forward(eng, &params, &x, &mut y, io, &mut cols, &mut scratch, true, n);
    layer.backward(eng, &params, &mut grads, &cols, &dy, Some(&mut dx), io, &mut scratch, n);
    (y, grads, dx)
}

#[test]
fn isa_child_writes_winograd_bits() {
    // Does nothing unless run as a child of `winograd_bits_are_identical_in_every_isa`.
    let Some(path) = std::env::var_os(CHILD_OUT) else { return };
    let mut out = format!("{}\n", Isa::detect().name()).into_bytes();
    out.extend(winograd_bits());
    std::fs::write(path, out).unwrap();
}

/// Run this binary's [`isa_child_writes_winograd_bits`] with `IDCRISIS_ISA=isa`: the set the
/// child used, its bytes and its stderr.
fn child(isa: &str, dir: &Path) -> (String, Vec<u8>, String) {
    let path = dir.join(format!("out-{isa}"));
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "isa_child_writes_winograd_bits", "--nocapture", "--test-threads=1"])
        .env(Isa::ENV, isa)
        .env(CHILD_OUT, &path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "child with {}={isa}: {stderr}", Isa::ENV);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("child with {}={isa} wrote nothing ({e}): {stderr}", Isa::ENV));
    let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    (String::from_utf8(bytes[..nl].to_vec()).unwrap(), bytes[nl + 1..].to_vec(), stderr)
}

#[test]
fn winograd_bits_are_identical_in_every_isa() {
    let dir = TestDir::new("test-isa");
    let cpu = Isa::cpu();
    let mut reference: Option<(Isa, Vec<u8>)> = None;
    for isa in Isa::ALL {
        let (used, bytes, stderr) = child(isa.name(), &dir);
        if isa > cpu {
            // Not this CPU's: the override must not claim it (it falls back, with a warning).
            println!("note: this CPU lacks {}; skipped (the child used {used})", isa.name());
            assert_eq!(used, cpu.name());
            assert!(stderr.contains("warning: IDCRISIS_ISA"), "{stderr}");
            continue;
        }
        assert_eq!(used, isa.name(), "{}={} was not applied", Isa::ENV, isa.name());
        assert!(!bytes.is_empty());
        match &reference {
            None => reference = Some((isa, bytes)),
            Some((r, want)) => {
                let first = bytes.iter().zip(want).position(|(a, b)| a != b);
                assert!(bytes == *want, "{} differs from {} (first differing byte {first:?})", isa.name(), r.name());
            }
        }
    }
    // An unknown value is ignored (the CPU's widest), with a warning naming the variable.
    let (used, _, stderr) = child("sse9", &dir);
    assert_eq!(used, cpu.name());
    assert!(stderr.contains("warning: IDCRISIS_ISA=\"sse9\""), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Thin images make a layer's padded Winograd store ([`WinoConv::tile_stride`]) larger than its
/// column matrix; `Conv2d::store_len` once left the Winograd store out and these shapes sliced
/// past `cols`. Every supported tile size on shapes down to one row trains in f32 with the
/// buffers the layer sizes, `cols` and `scratch` filled with NaN (so a read of anything
/// unwritten, the tiles' padding included, shows), and matches the same layer on im2col.
#[test]
fn thin_images_fit_the_layer_buffers_and_match_im2col() {
    for (m, k) in SUPPORTED {
        for (c, h, w) in [(16, 1, 13), (18, 1, 15), (2, 1, 9), (2, 3, 9), (1, 1, 9), (3, 2, 5), (2, 9, 3), (16, 13, 1), (3, 5, 2)] {
            let run = |algo: ConvAlgo| -> Vec<f32> {
                let eng = Engine::new(2).unwrap().with_conv_algo(algo);
                let mut layer = layer(c, c, h, w, k);
                layer.wino = (algo == ConvAlgo::Winograd).then(|| WinoConv::new(m, k, c, c, h, w));
                let (y, grads, dx) = train_once(&eng, &layer, 2, Layouts::default(), f32::NAN);
                [y, grads, dx].concat()
            };
            let (got, want) = (run(ConvAlgo::Winograd), run(ConvAlgo::Im2col));
            let scale = want.iter().fold(1e-30f32, |s, v| s.max(v.abs()));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-4 * scale, "F({m},{k}) c={c} {h}x{w} [{i}]: Winograd {a} vs im2col {b}");
            }
        }
    }
}
