//! The scalar type the engine is generic over: `f32` (default, fast) or `f64` (gradient checks).

use std::fmt::{Debug, Display};

/// A floating-point element type the engine can run in.
pub trait Float: num_traits::Float + Copy + Default + Send + Sync + Debug + Display + std::iter::Sum + 'static {
    /// The safetensors dtype used when saving weights of this type.
    const DTYPE: safetensors::Dtype;
    /// Human name, `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Lossy conversion from f64.
    fn from_f64(v: f64) -> Self;
    /// Widening (or identity) conversion to f64.
    fn to_f64(self) -> f64;
    /// Little-endian bytes of a slice, as safetensors stores them.
    fn slice_to_le_bytes(v: &[Self]) -> Vec<u8>;
}

impl Float for f32 {
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F32;
    const NAME: &'static str = "f32";
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn slice_to_le_bytes(v: &[Self]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

impl Float for f64 {
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F64;
    const NAME: &'static str = "f64";
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn slice_to_le_bytes(v: &[Self]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// `n` zeros, written into freshly allocated memory rather than allocated zeroed.
///
/// A zeroed allocation of this size comes from `mmap` and maps the kernel's shared zero page on
/// the first read. The first write after that takes a second fault, which copies the page and
/// flushes the other threads' TLBs: an interrupt to every other core per 4 KB page. State that
/// is read before it is written, such as an optimizer's moments, takes both faults. In a
/// three-step 20-layer training run on 2 threads those interrupts were 18% of the CPU samples,
/// in the first Adam update. Written here, each page takes one fault and no flush: that run
/// went from 1.01–1.15 s to 0.85–0.87 s (BENCHMARKS.md).
pub fn written_zeros<T: Float>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    v.resize(n, T::zero());
    v
}

#[cfg(test)]
mod tests {
    use super::written_zeros;

    #[test]
    fn written_zeros_are_n_zeros() {
        for n in [0, 1, 17, 3 << 20] {
            let a: Vec<f32> = written_zeros(n);
            let b: Vec<f64> = written_zeros(n);
            assert_eq!((a.len(), b.len()), (n, n));
            assert!(a.iter().all(|v| v.to_bits() == 0) && b.iter().all(|v| v.to_bits() == 0), "n = {n}");
        }
    }
}
