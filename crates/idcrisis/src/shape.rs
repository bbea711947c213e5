//! The shape of the images a network sees: channels × height × width.
//!
//! A shape flows from the data set (or image file), through an optional canvas, into the model,
//! the probes, the metrics, the figures and the theory. Images are stored flat, channel-first
//! (`[C, H, W]`, row-major), as PyTorch lays out one example.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Channels × height × width of one image. Serialized as `[C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "[usize; 3]", into = "[usize; 3]")]
pub struct Shape {
    /// Colour channels (1 gray, 3 RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl From<[usize; 3]> for Shape {
    fn from([channels, height, width]: [usize; 3]) -> Self {
        Shape { channels, height, width }
    }
}

impl From<Shape> for [usize; 3] {
    fn from(s: Shape) -> Self {
        [s.channels, s.height, s.width]
    }
}

impl Default for Shape {
    fn default() -> Self {
        Shape::MNIST
    }
}

impl Shape {
    /// MNIST and Fashion-MNIST: 1 × 28 × 28.
    pub const MNIST: Shape = Shape { channels: 1, height: 28, width: 28 };
    /// CIFAR-10: 3 × 32 × 32.
    pub const CIFAR: Shape = Shape { channels: 3, height: 32, width: 32 };

    /// A shape; every side must be at least 1.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Shape { channels, height, width }
    }

    /// Values per image: `C·H·W`.
    pub const fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when any side is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels per channel: `H·W`.
    pub const fn hw(&self) -> usize {
        self.height * self.width
    }

    /// The same channels on a `side`×`side` canvas.
    pub fn on_canvas(&self, side: usize) -> Shape {
        Shape { channels: self.channels, height: side, width: side }
    }

    /// The shape of the gray `side`×`side` view (`--gray N`: luma, then the central crop). Err,
    /// naming the flag, when `side` is 0 or larger than a side, or the image has neither 1 nor 3
    /// channels.
    pub fn gray(&self, side: usize) -> Result<Shape> {
        if side == 0 || side > self.height || side > self.width || !(self.channels == 1 || self.channels == 3) {
            return Err(Error::invalid("gray", format!("{side}: the gray view is a central crop of at most the image's {self}")));
        }
        Ok(Shape::new(1, side, side))
    }

    /// Check that the shape is usable: nonzero sides, at most 4 channels and 4096 pixels a side.
    pub fn validate(&self) -> Result<()> {
        if self.is_empty() || self.channels > 4 || self.height > 4096 || self.width > 4096 {
            return Err(Error::invalid("shape", format!("{self} must have 1..=4 channels and sides in 1..=4096")));
        }
        Ok(())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// Place `img` (shape `from`) at the centre of a zero canvas of `side`×`side` (per channel).
/// The offset is `(side − H) / 2` rows and `(side − W) / 2` columns, rounded down.
///
/// `side` must be at least the image's height and width (checked by the caller's config).
pub fn center_on_canvas(img: &[f32], from: Shape, side: usize) -> Vec<f32> {
    place_on_canvas(img, from, side, (side - from.height) / 2, (side - from.width) / 2)
}

/// Place `img` (shape `from`) on a zero `side`×`side` canvas with its top-left pixel at
/// `(top, left)`. The canvas must be square and hold the image.
pub fn place_on_canvas(img: &[f32], from: Shape, side: usize, top: usize, left: usize) -> Vec<f32> {
    assert!(top + from.height <= side && left + from.width <= side, "image {from} does not fit at ({top}, {left}) on {side}");
    let to = from.on_canvas(side);
    let mut out = vec![0.0f32; to.len()];
    for c in 0..from.channels {
        for y in 0..from.height {
            let src = &img[(c * from.height + y) * from.width..][..from.width];
            out[(c * side + top + y) * side + left..][..from.width].copy_from_slice(src);
        }
    }
    out
}

/// The `window` (shape of the original image) at `(top, left)` of a canvas image of shape `canvas`.
pub fn crop(img: &[f32], canvas: Shape, window: Shape, top: usize, left: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(window.len());
    for c in 0..window.channels {
        for y in 0..window.height {
            out.extend_from_slice(&img[(c * canvas.height + top + y) * canvas.width + left..][..window.width]);
        }
    }
    out
}

/// Where an image of shape `shape` sits on a canvas of shape `canvas`: top-left at `(top, left)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The image's shape.
    pub shape: Shape,
    /// The canvas's shape (same channels).
    pub canvas: Shape,
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
}

impl Window {
    /// An image of `shape` at the centre of a `side`×`side` canvas (see [`center_on_canvas`]).
    pub fn centred(shape: Shape, side: usize) -> Window {
        Window { shape, canvas: shape.on_canvas(side), top: (side - shape.height) / 2, left: (side - shape.width) / 2 }
    }

    /// `img` (the image's shape) placed on a zero canvas.
    pub fn place(&self, img: &[f32]) -> Vec<f32> {
        place_on_canvas(img, self.shape, self.canvas.height, self.top, self.left)
    }

    /// The window's part of `img` (the canvas's shape).
    pub fn crop(&self, img: &[f32]) -> Vec<f32> {
        crop(img, self.canvas, self.shape, self.top, self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvas_round_trip_and_centring() {
        let s = Shape::new(2, 3, 4);
        let img: Vec<f32> = (0..s.len()).map(|i| i as f32 + 1.0).collect();
        let c = center_on_canvas(&img, s, 8);
        assert_eq!(c.len(), 2 * 64);
        // Offsets (8−3)/2 = 2 rows and (8−4)/2 = 2 columns.
        assert_eq!(c[2 * 8 + 2], 1.0);
        assert_eq!(c[64 + 2 * 8 + 2], 13.0);
        assert_eq!(c.iter().filter(|v| **v != 0.0).count(), s.len());
        assert_eq!(crop(&c, s.on_canvas(8), s, 2, 2), img);
    }

    #[test]
    fn shape_serializes_as_an_array() {
        let j = serde_json::to_string(&Shape::CIFAR).unwrap();
        assert_eq!(j, "[3,32,32]");
        assert_eq!(serde_json::from_str::<Shape>(&j).unwrap(), Shape::CIFAR);
    }
}
