//! The one source of randomness: ChaCha20 seeded from a `u64`, with a separate stream per purpose
//! so that, e.g., changing the probe set never changes the initial weights.

// rand_core 0.10 calls the infallible generator trait `Rng` (formerly `RngCore`).
use rand_chacha::rand_core::{Rng as _, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Independent streams of one seed.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// Initial weights.
    Init = 1,
    /// Random-ρ probes.
    Probes = 2,
    /// Anything else a caller needs (tests, shuffling).
    Misc = 3,
}

/// Seeded ChaCha20 generator with uniform and normal draws (Box–Muller, written here so that the
/// numbers never change with a dependency upgrade).
#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha20Rng,
    spare: Option<f64>,
}

impl Rng {
    /// Generator for `seed` on stream `stream`.
    pub fn new(seed: u64, stream: Stream) -> Self {
        let mut inner = ChaCha20Rng::seed_from_u64(seed);
        inner.set_stream(stream as u64);
        Rng { inner, spare: None }
    }

    /// Uniform on [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.inner.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on [lo, hi).
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }

    /// Raw 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, Stream::Init);
                move |_| r.next_u64()
            })
            .collect();
        let mut r2 = Rng::new(7, Stream::Init);
        let mut r3 = Rng::new(7, Stream::Probes);
        assert_eq!(a[0], r2.next_u64());
        assert_ne!(a[0], r3.next_u64());
    }

    /// The stream must never change with a dependency upgrade: these are the first outputs of
    /// rand_chacha 0.3 (rand_core 0.6), and rand_chacha 0.10 (rand_core 0.10) gives the same.
    #[test]
    fn stream_is_pinned() {
        let mut r = Rng::new(7, Stream::Init);
        let got: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        assert_eq!(got, [0x65d70bdbf24a6c7e, 0x39b98e266b3fc844, 0x16fd380fcc7c9527, 0x0886c34261a7d2a5, 0xb15248e79b15caf1]);
        let mut r = Rng::new(7, Stream::Probes);
        assert_eq!(r.next_u64(), 0xa220cedf0bf2beaf);
        let mut r = Rng::new(0, Stream::Misc);
        assert_eq!(r.next_u64(), 0xf6f46542bf76e0f5);
    }

    #[test]
    fn normal_moments() {
        let mut r = Rng::new(1, Stream::Misc);
        let xs: Vec<f64> = (0..200_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
    }
}
