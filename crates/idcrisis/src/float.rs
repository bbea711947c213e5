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
