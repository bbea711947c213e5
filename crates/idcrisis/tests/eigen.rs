//! `eval::eigen::eigenvalues` against spectra known by construction, exact trace identities
//! (property test), and nalgebra's full Schur decomposition where that converges.

use idcrisis::eval::eigen::eigenvalues;
use idcrisis::rng::{Rng, Stream};
use nalgebra::{Complex, DMatrix};
use proptest::prelude::*;

/// Uniform in [-0.5, 0.5), a stream of the crate's generator.
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut r = Rng::new(seed, Stream::Misc);
    move || r.uniform() - 0.5
}

/// Pairs every expected eigenvalue with the nearest unused computed one; the largest distance.
fn match_distance(got: &[Complex<f64>], want: &[Complex<f64>]) -> f64 {
    assert_eq!(got.len(), want.len(), "{got:?}");
    let mut used = vec![false; got.len()];
    let mut worst = 0.0f64;
    for w in want {
        let (i, d) =
            got.iter().enumerate().filter(|(i, _)| !used[*i]).map(|(i, g)| (i, (g - w).norm())).min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        used[i] = true;
        worst = worst.max(d);
    }
    worst
}

#[test]
fn a_known_spectrum_survives_a_similarity() {
    // Block diagonal: rotation-scalings a ± ib, then real entries (one repeated, one zero).
    let pairs = [(0.3, 1.2), (-0.9, 0.1), (1.0, 1e-3), (0.0, 2.0)];
    let reals = [2.0, -1.5, 0.0, 0.5, 0.5, 1e-4];
    let n = 2 * pairs.len() + reals.len();
    let mut block = DMatrix::<f64>::zeros(n, n);
    let mut want = Vec::new();
    for (p, &(a, b)) in pairs.iter().enumerate() {
        let i = 2 * p;
        block[(i, i)] = a;
        block[(i, i + 1)] = -b;
        block[(i + 1, i)] = b;
        block[(i + 1, i + 1)] = a;
        want.extend([Complex::new(a, b), Complex::new(a, -b)]);
    }
    for (r, &x) in reals.iter().enumerate() {
        block[(2 * pairs.len() + r, 2 * pairs.len() + r)] = x;
        want.push(Complex::new(x, 0.0));
    }
    let mut r = uniform(7);
    let s = DMatrix::<f64>::from_fn(n, n, |i, j| (if i == j { 1.0 } else { 0.0 }) + 0.3 * r());
    let a = &s * &block * s.clone().try_inverse().unwrap();
    let got = eigenvalues(&a).unwrap();
    let d = match_distance(&got, &want);
    assert!(d < 1e-9, "{d:e}: {got:?}");
}

#[test]
fn cyclic_permutations_give_the_roots_of_unity() {
    // The double-shift iteration stalls on these without exceptional shifts (nalgebra's Schur
    // does not converge on the 4×4 one).
    for n in [2, 3, 4, 5, 10, 64, 101] {
        let p = DMatrix::<f64>::from_fn(n, n, |i, j| if (i + 1) % n == j { 1.0 } else { 0.0 });
        let want: Vec<Complex<f64>> = (0..n).map(|k| Complex::from_polar(1.0, 2.0 * std::f64::consts::PI * k as f64 / n as f64)).collect();
        let got = eigenvalues(&p).unwrap();
        let d = match_distance(&got, &want);
        assert!(d < 1e-9, "n = {n}: {d:e}");
    }
}

#[test]
fn agrees_with_nalgebras_schur_where_that_converges() {
    for (n, seed) in [(3, 1), (17, 2), (60, 3), (150, 4)] {
        let mut r = uniform(seed);
        // Dense random, and near the identity (a trained identity net's Jacobian).
        for near_identity in [false, true] {
            let a = DMatrix::<f64>::from_fn(n, n, |i, j| (if near_identity && i == j { 1.0 } else { 0.0 }) + r());
            let schur = nalgebra::Schur::try_new(a.clone(), f64::EPSILON, 1000 * n).expect("nalgebra converges here");
            let want: Vec<Complex<f64>> = schur.complex_eigenvalues().iter().copied().collect();
            let got = eigenvalues(&a).unwrap();
            let d = match_distance(&got, &want);
            assert!(d < 1e-9, "n = {n}: {d:e}");
        }
    }
}

#[test]
fn degenerate_and_bad_inputs() {
    assert!(eigenvalues(&DMatrix::<f64>::zeros(0, 0)).unwrap().is_empty());
    assert_eq!(eigenvalues(&DMatrix::from_element(1, 1, -3.5)).unwrap(), vec![Complex::new(-3.5, 0.0)]);
    assert_eq!(eigenvalues(&DMatrix::<f64>::zeros(5, 5)).unwrap(), vec![Complex::new(0.0, 0.0); 5]);
    // Upper triangular: the diagonal.
    let t = DMatrix::<f64>::from_fn(6, 6, |i, j| if j >= i { (1 + i + 2 * j) as f64 * if i == j { 1.0 } else { 0.1 } } else { 0.0 });
    let want: Vec<Complex<f64>> = (0..6).map(|i| Complex::new(t[(i, i)], 0.0)).collect();
    assert!(match_distance(&eigenvalues(&t).unwrap(), &want) < 1e-12);
    // A huge and a tiny scale do not overflow or underflow.
    for scale in [1e300, 1e-300] {
        let p = DMatrix::<f64>::from_fn(4, 4, |i, j| if (i + 1) % 4 == j { scale } else { 0.0 });
        for z in eigenvalues(&p).unwrap() {
            assert!((z.norm() / scale - 1.0).abs() < 1e-12, "{z}");
        }
    }
    let mut bad = DMatrix::<f64>::identity(4, 4);
    bad[(2, 1)] = f64::NAN;
    let e = eigenvalues(&bad).unwrap_err().to_string();
    assert!(e.contains("non-finite") && e.contains("row 2, column 1"), "{e}");
    bad[(2, 1)] = f64::INFINITY;
    assert!(eigenvalues(&bad).unwrap_err().to_string().contains("non-finite"));
    let e = eigenvalues(&DMatrix::<f64>::zeros(3, 4)).unwrap_err().to_string();
    assert!(e.contains("non-square 3×4"), "{e}");
}

#[test]
fn a_window_of_tiny_entries_converges() {
    // 1 and a 3×3 block t·(I + P), P a cyclic permutation: eigenvalues 1 and t·(1 + ω^k). The
    // shift polynomial's first column has t² terms, which underflow for t below 1e-154 unless it
    // is formed without squares. (Below about n/ε times the smallest normal number, 4e-292
    // here, a subdiagonal entry counts as zero, as in LAPACK: the error is then tiny against
    // the matrix, not against t.)
    for t in [1e-100, 1e-160, 1e-200, 1e-280] {
        let a = DMatrix::from_row_slice(4, 4, &[1.0, 0.0, 0.0, 0.0, 0.0, t, 0.0, t, 0.0, t, t, 0.0, 0.0, 0.0, t, t]);
        let got = eigenvalues(&a).unwrap();
        let (big, small): (Vec<Complex<f64>>, Vec<Complex<f64>>) = got.into_iter().partition(|z| z.norm() > 0.5);
        assert_eq!(big, vec![Complex::new(1.0, 0.0)], "t = {t:e}");
        let small: Vec<Complex<f64>> = small.into_iter().map(|z| z / t).collect();
        let want: Vec<Complex<f64>> = (0..3).map(|k| 1.0 + Complex::from_polar(1.0, 2.0 * std::f64::consts::PI * k as f64 / 3.0)).collect();
        let d = match_distance(&small, &want);
        assert!(d < 1e-9, "t = {t:e}: {d:e}");
    }
}

/// An entry: zero half the time (so blocks deflate early and exact zeros meet the shifts), else
/// a value in [-4, 4].
fn entry() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), -4.0..4.0f64]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Σλ = tr A and Σλ² = tr A² (both real), whatever the matrix.
    #[test]
    fn power_sums_are_traces((n, vals) in (0usize..24).prop_flat_map(|n| (Just(n), proptest::collection::vec(entry(), n * n)))) {
        let a = DMatrix::from_vec(n, n, vals);
        let got = eigenvalues(&a).unwrap();
        prop_assert_eq!(got.len(), n);
        let s1: Complex<f64> = got.iter().sum();
        let s2: Complex<f64> = got.iter().map(|z| z * z).sum();
        let a2 = &a * &a;
        let scale = 1.0 + a.iter().fold(0.0f64, |m, v| m.max(v.abs())) * n as f64;
        prop_assert!((s1.re - a.trace()).abs() + s1.im.abs() < 1e-10 * scale, "Σλ {} vs tr {}", s1, a.trace());
        prop_assert!((s2.re - a2.trace()).abs() + s2.im.abs() < 1e-9 * scale * scale, "Σλ² {} vs tr A² {}", s2, a2.trace());
    }
}
