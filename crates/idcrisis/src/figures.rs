//! Figures, drawn with `plotters` into memory and written as PNG by the `image` crate.
//!
//! [`image_grid`] is the paper's prediction figure: one labelled row per set of images, one
//! labelled column per probe, every image magnified to [`CELL`]×[`CELL`] (nearest neighbour) so
//! each pixel stays visible, values clamped to [0, 1] (3-channel images in colour, others gray:
//! the mean over channels), and an optional red dashed separator after a column (the training
//! image). Text uses the bundled DejaVu Sans.

use crate::error::{Error, Result};
use crate::shape::Shape;
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

/// Render a grid of images of `shape` to PNG bytes.
///
/// `rows[r][c]` is a `[C·H·W]` image or `None` for an empty cell; `col_labels[r][c]` labels it;
/// `separator_after` draws a red dashed line after that column.
pub fn image_grid(
    title: &str,
    shape: Shape,
    row_labels: &[String],
    col_labels: &[Vec<String>],
    rows: &[Vec<Option<Vec<f32>>>],
    separator_after: Option<usize>,
) -> Result<Vec<u8>> {
    image_grid_cmap(title, shape, row_labels, col_labels, rows, separator_after, Cmap::Gray)
}

/// How cell values become colors. A 3-channel image is drawn in colour whatever the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmap {
    /// [0, 1] → black..white (clamped).
    Gray,
    /// [−1, 1] → blue..white..red (clamped).
    Diverging,
}

/// [`image_grid`] with a choice of colormap.
pub fn image_grid_cmap(
    title: &str,
    shape: Shape,
    row_labels: &[String],
    col_labels: &[Vec<String>],
    rows: &[Vec<Option<Vec<f32>>>],
    separator_after: Option<usize>,
    cmap: Cmap,
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
                root.draw(&Text::new(label.clone(), (GAP as i32, y_img + CELL as i32 / 2 - 9), label_style.clone())).map_err(plot_err)?;
            }
            for (c, img) in row.iter().enumerate() {
                let x = x_of(c);
                if let Some(text) = col_labels.get(r).and_then(|l| l.get(c)) {
                    root.draw(&Text::new(text.clone(), (x, y0 + 8), col_style.clone())).map_err(plot_err)?;
                }
                if let Some(img) = img {
                    let px = match cmap {
                        Cmap::Gray => magnify(img, shape, CELL),
                        Cmap::Diverging => magnify_diverging(img, shape, CELL),
                    };
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

/// Nearest-neighbour magnification of an image of `shape` to `side`×`side` RGB, clamped to
/// [0, 1]: colour for 3 channels, else gray (the mean over channels).
pub fn magnify(img: &[f32], shape: Shape, side: u32) -> Vec<u8> {
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let hw = shape.hw();
    magnify_with(shape, side, |i| {
        if shape.channels == 3 {
            [byte(img[i]), byte(img[hw + i]), byte(img[2 * hw + i])]
        } else {
            let v = byte(channel_mean(img, shape, i));
            [v, v, v]
        }
    })
}

/// Like [`magnify`], coloring [−1, 1] with [`diverging`] (the mean over channels).
pub fn magnify_diverging(img: &[f32], shape: Shape, side: u32) -> Vec<u8> {
    magnify_with(shape, side, |i| {
        let c = diverging(channel_mean(img, shape, i) as f64);
        [c.0, c.1, c.2]
    })
}

/// Mean over channels at pixel `i` (exact for one channel).
fn channel_mean(img: &[f32], shape: Shape, i: usize) -> f32 {
    if shape.channels == 1 {
        img[i]
    } else {
        (0..shape.channels).map(|c| img[c * shape.hw() + i]).sum::<f32>() / shape.channels as f32
    }
}

/// `side`×`side` RGB, each output pixel colored by `color(source pixel index)`.
fn magnify_with(shape: Shape, side: u32, color: impl Fn(usize) -> [u8; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let (sy, sx) = ((y as usize * shape.height) / side as usize, (x as usize * shape.width) / side as usize);
            out.extend_from_slice(&color(sy * shape.width + sx));
        }
    }
    out
}

/// Encode an RGB buffer as PNG bytes.
pub fn encode_png(w: u32, h: u32, rgb: Vec<u8>) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| Error::Other("PNG buffer size".into()))?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| Error::Other(format!("encoding PNG: {e}")))?;
    Ok(bytes)
}

/// One named series of `(x, y)` points.
pub type Series = (String, Vec<(f64, f64)>);

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let ys: Vec<f64> = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).filter(|v| v.is_finite() && (!log_y || *v > 0.0)).collect();
    let (y0, y1) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (y0, y1) = if y0 >= y1 { (y0 - 1.0, y1 + 1.0) } else { (y0, y1) };
    let colors = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(255, 127, 14), RGBColor(148, 103, 189)];
    let mut builder = ChartBuilder::on(&root);
    builder.caption(title, ("sans-serif", 26)).margin(20).x_label_area_size(50).y_label_area_size(80);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(xlabel)
                .y_desc(ylabel)
                .x_label_formatter(&|v: &f64| if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") })
                .y_label_formatter(&|v: &f64| if log_y || v.abs() < 1e-2 && *v != 0.0 { format!("{v:.0e}") } else { format!("{v:.2}") })
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 18))
                .draw()
                .map_err(plot_err)?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let c = colors[i % colors.len()];
                let pts: Vec<(f64, f64)> = pts.iter().cloned().filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0)).collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(plot_err)?
                    .label(name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled()))).map_err(plot_err)?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(plot_err)?;
        }};
    }
    if log_y {
        body!(builder.build_cartesian_2d(x0..x1, (y0 * 0.8..y1 * 1.25).log_scale()).map_err(plot_err)?);
    } else {
        let pad = 0.05 * (y1 - y0);
        body!(builder.build_cartesian_2d(x0..x1, y0 - pad..y1 + pad).map_err(plot_err)?);
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// A line plot as PNG bytes and SVG text.
pub fn line_plot(title: &str, xlabel: &str, ylabel: &str, series: &[Series], log_y: bool) -> Result<(Vec<u8>, String)> {
    register_font();
    let (w, h) = (1000u32, 650u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    draw_lines(BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(), title, xlabel, ylabel, series, log_y)?;
    let png = encode_png(w, h, buf)?;
    let mut svg = String::new();
    draw_lines(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(), title, xlabel, ylabel, series, log_y)?;
    Ok((png, svg))
}

/// Diverging blue–white–red color for `v` in [−1, 1].
pub fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let lerp = |a: f64, b: f64, t: f64| (a + (b - a) * t).round() as u8;
    if v >= 0.0 {
        RGBColor(lerp(247.0, 178.0, v), lerp(247.0, 24.0, v), lerp(247.0, 43.0, v))
    } else {
        RGBColor(lerp(247.0, 33.0, -v), lerp(247.0, 102.0, -v), lerp(247.0, 172.0, -v))
    }
}

fn draw_heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    rows: &[String],
    cols: &[String],
    values: &[Vec<f64>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let (nr, nc) = (rows.len() as i32, cols.len() as i32);
    let (left, top, cw, ch) = (110i32, 60i32, 48i32, 60i32);
    root.draw(&Text::new(title.to_string(), (left, 18), ("sans-serif", 22).into_font())).map_err(plot_err)?;
    for (r, row) in values.iter().enumerate() {
        let y = top + r as i32 * ch;
        root.draw(&Text::new(rows[r].clone(), (10, y + ch / 2 - 8), ("sans-serif", 16).into_font())).map_err(plot_err)?;
        for (c, v) in row.iter().enumerate() {
            let x = left + c as i32 * cw;
            root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], diverging(*v).filled())).map_err(plot_err)?;
            root.draw(&Text::new(format!("{v:.2}"), (x + 6, y + ch / 2 - 6), ("sans-serif", 13).into_font())).map_err(plot_err)?;
        }
    }
    for (c, label) in cols.iter().enumerate() {
        root.draw(&Text::new(label.clone(), (left + c as i32 * cw + cw / 2 - 6, top + nr * ch + 8), ("sans-serif", 15).into_font()))
            .map_err(plot_err)?;
    }
    root.draw(&Text::new("depth", (left + nc * cw / 2 - 20, top + nr * ch + 32), ("sans-serif", 17).into_font())).map_err(plot_err)?;
    // Color bar.
    let bx = left + nc * cw + 30;
    for i in 0..100 {
        let v = 1.0 - 2.0 * i as f64 / 99.0;
        let y = top + i * (nr * ch) / 100;
        root.draw(&Rectangle::new([(bx, y), (bx + 20, y + (nr * ch) / 100 + 1)], diverging(v).filled())).map_err(plot_err)?;
    }
    for (v, frac) in [(1.0, 0.0), (0.0, 0.5), (-1.0, 1.0)] {
        let y = top + (frac * (nr * ch) as f64) as i32;
        root.draw(&Text::new(format!("{v:+.0}"), (bx + 26, y - 8), ("sans-serif", 14).into_font())).map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Heat map size for `rows × cols` cells.
pub fn heatmap_size(rows: usize, cols: usize) -> (u32, u32) {
    (110 + cols as u32 * 48 + 110, 60 + rows as u32 * 60 + 60)
}

/// A labelled heat map (values in [−1, 1], diverging colormap) as PNG bytes and SVG text.
pub fn heatmap(title: &str, rows: &[String], cols: &[String], values: &[Vec<f64>]) -> Result<(Vec<u8>, String)> {
    register_font();
    let (w, h) = heatmap_size(rows.len(), cols.len());
    let mut buf = vec![255u8; (w * h * 3) as usize];
    draw_heatmap(BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(), title, rows, cols, values)?;
    let png = encode_png(w, h, buf)?;
    let mut svg = String::new();
    draw_heatmap(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(), title, rows, cols, values)?;
    Ok((png, svg))
}
