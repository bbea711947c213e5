//! Shared by the dev benchmarks (`cargo bench -p idcrisis --bench NAME`).
#![allow(dead_code)]

use std::time::Instant;

/// Mean milliseconds of `reps` calls of `f` after one warm-up call; printed as `name  ms`.
pub fn time(name: &str, reps: usize, f: &mut dyn FnMut()) -> f64 {
    f();
    let s = Instant::now();
    for _ in 0..reps {
        f();
    }
    let ms = s.elapsed().as_secs_f64() * 1e3 / reps as f64;
    println!("{name:40} {ms:8.3} ms");
    ms
}

/// CPU model, for the header of every table.
pub fn cpu() -> String {
    idcrisis::bench::cpu_model()
}

/// `C [m, n] = A [m, k] · B [k, n]` (row-major), in f64, the naive way.
pub fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let av = a[i * k + p] as f64;
            for j in 0..n {
                c[i * n + j] += av * b[p * n + j] as f64;
            }
        }
    }
    c
}

/// Largest `|x − y|` relative to the largest `|y|`.
pub fn max_rel(x: &[f32], y: &[f64]) -> f64 {
    let scale = y.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    x.iter().zip(y).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max) / scale
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn values(n: usize, salt: f64) -> Vec<f32> {
    (0..n).map(|i| (((i as f64 + salt) * 12.9898).sin() * 43758.5453).fract() as f32).collect()
}

/// Median microseconds per call of `f`, over 7 rounds of enough calls for about 0.03 s each
/// (after two untimed calls, the second of which sizes the rounds).
pub fn micros(f: &mut dyn FnMut()) -> f64 {
    f();
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let reps = ((0.03 / once) as usize).max(1);
    let mut v: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / reps as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[3]
}

/// The whole numbers the environment variable `var` lists, comma-separated (`WL_C=64,128`), else
/// `default`. Panics naming the variable when an entry is not a whole number.
pub fn env_counts(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(list) => list
            .split(',')
            .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{var}={list}: `{v}` is not a whole number (a comma-separated list)")))
            .collect(),
        Err(_) => default.to_vec(),
    }
}
