//! Figures, drawn with `plotters` into memory and written as PNG by the `image` crate.
//!
//! [`image_grid`] is the paper's prediction figure: one labelled row per set of images, one
//! labelled column per probe, every 28×28 image magnified [`CELL`]/28 times (nearest neighbour)
//! so each pixel stays visible, gray values clamped to [0, 1], and an optional red dashed
//! separator after a column (the training image). Text uses the bundled DejaVu Sans.

use crate::error::{Error, Result};
use crate::SIDE;
use plotters::prelude::*;
use std::sync::Once;

/// Side of one image cell in pixels (28 × 5).
pub const CELL: u32 = 140;
/// Gap between cells.
pub const GAP: u32 = 10;
/// Width of the row-label column.
pub const LABEL_W: u32 = 170;
/// Height of the title band.
pub const TITLE_H: u32 = 50;
/// Height of the column-label band.
pub const COL_LABEL_H: u32 = 28;
/// Extra horizontal room for the separator.
pub const SEP_W: u32 = 24;

static FONT: Once = Once::new();
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES);
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, FONT_BYTES);
    });
}

/// Pixel size of an [`image_grid`] with `rows` × `cols` images.
pub fn grid_size(rows: usize, cols: usize, separator: bool) -> (u32, u32) {
    let w = LABEL_W + cols as u32 * (CELL + GAP) + GAP + if separator { SEP_W } else { 0 };
    let h = TITLE_H + rows as u32 * (COL_LABEL_H + CELL + GAP) + GAP;
    (w, h)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Other(format!("drawing figure: {e:?}"))
}

/// Render a grid of 28×28 images to PNG bytes.
///
/// `rows[r][c]` is a `[784]` image or `None` for an empty cell; `col_labels[r][c]` labels it;
/// `separator_after` draws a red dashed line after that column.
pub fn image_grid(
    title: &str,
    row_labels: &[String],
    col_labels: &[Vec<String>],
    rows: &[Vec<Option<Vec<f32>>>],
    separator_after: Option<usize>,
) -> Result<Vec<u8>> {
    register_font();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (w, h) = grid_size(rows.len(), cols, separator_after.is_some());
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let title_style = TextStyle::from(("sans-serif", 24).into_font()).color(&BLACK);
        root.draw(&Text::new(title.to_string(), (GAP as i32, 14), title_style)).map_err(plot_err)?;
        let label_style = TextStyle::from(("sans-serif", 18).into_font()).color(&BLACK);
        let col_style = TextStyle::from(("sans-serif", 13).into_font()).color(&RGBColor(60, 60, 60));
        let x_of = |c: usize| -> i32 {
            let sep = match separator_after {
                Some(s) if c > s => SEP_W,
                _ => 0,
            };
            (LABEL_W + GAP + c as u32 * (CELL + GAP) + sep) as i32
        };
        for (r, row) in rows.iter().enumerate() {
            let y0 = (TITLE_H + r as u32 * (COL_LABEL_H + CELL + GAP)) as i32;
            let y_img = y0 + COL_LABEL_H as i32;
            if let Some(label) = row_labels.get(r) {
                root.draw(&Text::new(label.clone(), (GAP as i32, y_img + CELL as i32 / 2 - 9), label_style.clone()))
                    .map_err(plot_err)?;
            }
            for (c, img) in row.iter().enumerate() {
                let x = x_of(c);
                if let Some(text) = col_labels.get(r).and_then(|l| l.get(c)) {
                    root.draw(&Text::new(text.clone(), (x, y0 + 8), col_style.clone())).map_err(plot_err)?;
                }
                if let Some(img) = img {
                    let px = magnify(img, CELL);
                    let elem = BitMapElement::<_, plotters::backend::RGBPixel>::with_owned_buffer((x, y_img), (CELL, CELL), px)
                        .ok_or_else(|| Error::Other("image buffer size".into()))?;
                    root.draw(&elem).map_err(plot_err)?;
                    root.draw(&Rectangle::new([(x - 1, y_img - 1), (x + CELL as i32, y_img + CELL as i32)], RGBColor(180, 180, 180)))
                        .map_err(plot_err)?;
                }
            }
        }
        if let Some(s) = separator_after {
            let x = x_of(s) + CELL as i32 + (GAP + SEP_W) as i32 / 2;
            let red = ShapeStyle::from(&RED).stroke_width(3);
            let mut y = TITLE_H as i32;
            while y < h as i32 - GAP as i32 {
                root.draw(&PathElement::new(vec![(x, y), (x, (y + 10).min(h as i32 - GAP as i32))], red)).map_err(plot_err)?;
                y += 18;
            }
        }
        root.present().map_err(plot_err)?;
    }
    encode_png(w, h, buf)
}

/// Nearest-neighbour magnification of a 28×28 image to `side`×`side` RGB, clamped to [0, 1].
pub fn magnify(img: &[f32], side: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let (sy, sx) = ((y as usize * SIDE) / side as usize, (x as usize * SIDE) / side as usize);
            let v = (img[sy * SIDE + sx].clamp(0.0, 1.0) * 255.0).round() as u8;
            out.extend_from_slice(&[v, v, v]);
        }
    }
    out
}

/// Encode an RGB buffer as PNG bytes.
pub fn encode_png(w: u32, h: u32, rgb: Vec<u8>) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| Error::Other("PNG buffer size".into()))?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::Other(format!("encoding PNG: {e}")))?;
    Ok(bytes)
}
