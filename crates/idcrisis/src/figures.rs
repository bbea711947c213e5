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

/// What marks a net that did not reach the training tolerance (it stopped at the step cap) in
/// every figure: after its row label in grids, after its value in heat maps, and as a hollow
/// marker in line plots.
pub const UNCONVERGED_MARK: &str = "†";

/// What [`UNCONVERGED_MARK`] means.
pub const UNCONVERGED_TEXT: &str = "did not reach the training tolerance (stopped at the step cap)";

/// The note that explains [`UNCONVERGED_MARK`] (mark and [`UNCONVERGED_TEXT`]), drawn on every
/// figure that shows one.
pub const UNCONVERGED_NOTE: &str = "† did not reach the training tolerance (stopped at the step cap)";

/// `label` followed by [`UNCONVERGED_MARK`] when `unconverged`.
pub fn mark_label(label: &str, unconverged: bool) -> String {
    if unconverged {
        format!("{label} {UNCONVERGED_MARK}")
    } else {
        label.to_string()
    }
}

/// Width in pixels of `text` in the bundled font at `size` (as drawn into PNGs).
pub fn text_width(text: &str, size: f64) -> u32 {
    register_font();
    ("sans-serif", size).into_font().box_size(text).map(|b| b.0).unwrap_or_else(|_| (text.chars().count() as f64 * size * 0.62) as u32)
}

/// Break `text` at spaces into lines no wider than `max_w` at font `size`. A word wider than
/// `max_w` gets a line of its own (callers size their canvas to the widest word, see
/// [`widest_word`], so nothing is cut).
pub fn wrap(text: &str, size: f64, max_w: u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
        if line.is_empty() || text_width(&candidate, size) <= max_w {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Width of the widest space-separated word of `text` at `size`.
pub fn widest_word(text: &str, size: f64) -> u32 {
    text.split(' ').map(|w| text_width(w, size)).max().unwrap_or(0)
}

/// Widest row-label column an [`image_grid`] widens to for a label on one line; longer labels wrap.
pub const MAX_LABEL_W: u32 = 330;
/// Font size of a row label in an [`image_grid`].
const ROW_LABEL_SIZE: f64 = 18.0;
/// Line height of a wrapped row label.
const ROW_LABEL_LINE: i32 = 22;

/// Pixel size of an [`image_grid`] with `rows` × `cols` images whose title and row labels fit
/// the default title band and label column ([`LABEL_W`]); [`grid_size_for`] in general.
pub fn grid_size(rows: usize, cols: usize, separator: bool) -> (u32, u32) {
    let l = GridLayout::plain(rows, cols, separator);
    (l.w, l.h)
}

/// Pixel size of the [`image_grid_marked`] of these labels (marks included) and `rows` ×
/// `cols` images: the label column widens to the widest word of a label, and the title band
/// grows when the title needs more than two lines at the smallest title font.
pub fn grid_size_for(title: &str, row_labels: &[String], rows: usize, cols: usize, separator: bool, any_unconverged: bool) -> (u32, u32) {
    let l = GridLayout::new(title, row_labels, rows, cols, separator, any_unconverged);
    (l.w, l.h)
}

/// Where everything of an image grid goes.
struct GridLayout {
    w: u32,
    h: u32,
    label_w: u32,
    title_h: u32,
    /// The title's lines and font size.
    title: (Vec<String>, f64),
    note: bool,
}

impl GridLayout {
    fn plain(rows: usize, cols: usize, separator: bool) -> Self {
        let w = LABEL_W + cols as u32 * (CELL + GAP) + GAP + if separator { SEP_W } else { 0 };
        let h = TITLE_H + rows as u32 * (COL_LABEL_H + CELL + GAP) + GAP;
        GridLayout { w, h, label_w: LABEL_W, title_h: TITLE_H, title: (Vec::new(), 24.0), note: false }
    }

    fn new(title: &str, row_labels: &[String], rows: usize, cols: usize, separator: bool, note: bool) -> Self {
        let mut l = Self::plain(rows, cols, separator);
        // The longest label on one line up to MAX_LABEL_W, wrapped beyond; never narrower than
        // its widest word.
        let longest = row_labels.iter().map(|r| text_width(r, ROW_LABEL_SIZE)).max().unwrap_or(0).min(MAX_LABEL_W - GAP);
        let widest = row_labels.iter().map(|r| widest_word(r, ROW_LABEL_SIZE)).max().unwrap_or(0);
        let need = longest.max(widest) + GAP;
        if need > l.label_w {
            l.w += need - l.label_w;
            l.label_w = need;
        }
        l.note = note;
        let note_w = if note { text_width(UNCONVERGED_NOTE, NOTE_SIZE) + 2 * GAP } else { 0 };
        let room = l.w.saturating_sub(2 * GAP + note_w).max(200);
        // The largest size from 24 down to 14 at which the title fits one line; else wrap at 14.
        let mut size = 24.0;
        while size > 14.0 && text_width(title, size) > room {
            size -= 1.0;
        }
        let lines = wrap(title, size, room);
        l.w = l.w.max(lines.iter().map(|t| text_width(t, size)).max().unwrap_or(0) + 2 * GAP + note_w);
        let need = 14 + lines.len() as u32 * (size as u32 + 4);
        if need > l.title_h {
            l.h += need - l.title_h;
            l.title_h = need;
        }
        l.title = (lines, size);
        l
    }
}

/// Font size of the [`UNCONVERGED_NOTE`].
const NOTE_SIZE: f64 = 14.0;

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
    image_grid_marked(title, shape, row_labels, &[], col_labels, rows, separator_after)
}

/// [`image_grid`] where `unconverged[r]` marks row `r` as a net that did not reach the training
/// tolerance: its label gets [`UNCONVERGED_MARK`] and the title band the [`UNCONVERGED_NOTE`].
/// Missing flags count as converged.
pub fn image_grid_marked(
    title: &str,
    shape: Shape,
    row_labels: &[String],
    unconverged: &[bool],
    col_labels: &[Vec<String>],
    rows: &[Vec<Option<Vec<f32>>>],
    separator_after: Option<usize>,
) -> Result<Vec<u8>> {
    draw_grid(title, shape, row_labels, unconverged, col_labels, rows, separator_after, Cmap::Gray)
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
    draw_grid(title, shape, row_labels, &[], col_labels, rows, separator_after, cmap)
}

/// The row labels of a grid, each with [`UNCONVERGED_MARK`] where `unconverged` says so.
pub fn marked_labels(row_labels: &[String], unconverged: &[bool]) -> Vec<String> {
    row_labels.iter().enumerate().map(|(r, l)| mark_label(l, unconverged.get(r).copied().unwrap_or(false))).collect()
}

#[allow(clippy::too_many_arguments)]
fn draw_grid(
    title: &str,
    shape: Shape,
    row_labels: &[String],
    unconverged: &[bool],
    col_labels: &[Vec<String>],
    rows: &[Vec<Option<Vec<f32>>>],
    separator_after: Option<usize>,
    cmap: Cmap,
) -> Result<Vec<u8>> {
    register_font();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let labels = marked_labels(row_labels, unconverged);
    let note = unconverged.iter().any(|u| *u);
    let layout = GridLayout::new(title, &labels, rows.len(), cols, separator_after.is_some(), note);
    let (w, h, label_w, title_h) = (layout.w, layout.h, layout.label_w, layout.title_h);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (title_lines, title_size) = &layout.title;
        let title_style = TextStyle::from(("sans-serif", *title_size).into_font()).color(&BLACK);
        for (i, line) in title_lines.iter().enumerate() {
            let y = if title_lines.len() == 1 { 14 } else { 8 + i as i32 * (*title_size as i32 + 4) };
            root.draw(&Text::new(line.clone(), (GAP as i32, y), title_style.clone())).map_err(plot_err)?;
        }
        if layout.note {
            let x = (w - GAP - text_width(UNCONVERGED_NOTE, NOTE_SIZE)) as i32;
            let style = TextStyle::from(("sans-serif", NOTE_SIZE).into_font()).color(&RGBColor(120, 0, 0));
            root.draw(&Text::new(UNCONVERGED_NOTE, (x, 18), style)).map_err(plot_err)?;
        }
        let label_style = TextStyle::from(("sans-serif", ROW_LABEL_SIZE).into_font()).color(&BLACK);
        let col_style = TextStyle::from(("sans-serif", 13).into_font()).color(&RGBColor(60, 60, 60));
        let x_of = |c: usize| -> i32 {
            let sep = match separator_after {
                Some(s) if c > s => SEP_W,
                _ => 0,
            };
            (label_w + GAP + c as u32 * (CELL + GAP) + sep) as i32
        };
        for (r, row) in rows.iter().enumerate() {
            let y0 = (title_h + r as u32 * (COL_LABEL_H + CELL + GAP)) as i32;
            let y_img = y0 + COL_LABEL_H as i32;
            if let Some(label) = labels.get(r) {
                let lines = wrap(label, ROW_LABEL_SIZE, label_w - GAP);
                let top = y_img + CELL as i32 / 2 - lines.len() as i32 * ROW_LABEL_LINE / 2 + 2;
                for (i, line) in lines.iter().enumerate() {
                    root.draw(&Text::new(line.clone(), (GAP as i32, top + i as i32 * ROW_LABEL_LINE), label_style.clone()))
                        .map_err(plot_err)?;
                }
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
            let mut y = title_h as i32;
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

/// One named series of `(x, y, unconverged)` points: `unconverged` draws the point hollow (a
/// net that did not reach the training tolerance).
pub type MarkedSeries = (String, Vec<(f64, f64, bool)>);

/// Line colours (matplotlib's tab10); past ten series the lines are dashed.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Width of a line plot's axes area; the legend goes to its right.
const PLOT_W: u32 = 900;
/// Least height of a line plot.
const PLOT_H: u32 = 650;
const PLOT_TITLE_SIZE: f64 = 24.0;
const LEGEND_SIZE: f64 = 15.0;
const LEGEND_LINE: u32 = 24;
/// Legend swatch width and the gap after it.
const SWATCH_W: u32 = 44;

/// Where everything of a line plot goes.
struct PlotLayout {
    w: u32,
    h: u32,
    title: Vec<String>,
    title_h: u32,
    /// Legend entries: the series names, then the note when any point is unconverged.
    legend: Vec<String>,
    note: bool,
}

impl PlotLayout {
    fn new(title: &str, series: &[MarkedSeries]) -> Self {
        let note = series.iter().any(|s| s.1.iter().any(|p| p.2));
        let mut legend: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
        if note {
            legend.push(UNCONVERGED_TEXT.to_string());
        }
        let legend_w = legend.iter().map(|l| text_width(l, LEGEND_SIZE)).max().unwrap_or(0) + SWATCH_W + 30;
        let w = PLOT_W + legend_w;
        let room = (w - 40).max(widest_word(title, PLOT_TITLE_SIZE));
        let title_lines = wrap(title, PLOT_TITLE_SIZE, room);
        let w = w.max(title_lines.iter().map(|t| text_width(t, PLOT_TITLE_SIZE)).max().unwrap_or(0) + 40);
        let title_h = 16 + title_lines.len() as u32 * (PLOT_TITLE_SIZE as u32 + 6);
        let h = PLOT_H.max(title_h + 40 + legend.len() as u32 * LEGEND_LINE + 40);
        PlotLayout { w, h, title: title_lines, title_h, legend, note }
    }
}

/// A point marker: filled, or hollow for an unconverged net.
fn marker<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, at: (i32, i32), c: RGBColor, hollow: bool) -> Result<()>
where
    DB::ErrorType: 'static,
{
    if hollow {
        area.draw(&Circle::new(at, 5, WHITE.filled())).map_err(plot_err)?;
        area.draw(&Circle::new(at, 5, c.stroke_width(2))).map_err(plot_err)
    } else {
        area.draw(&Circle::new(at, 4, c.filled())).map_err(plot_err)
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    layout: &PlotLayout,
    xlabel: &str,
    ylabel: &str,
    series: &[MarkedSeries],
    log_y: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    for (i, line) in layout.title.iter().enumerate() {
        let y = 14 + i as i32 * (PLOT_TITLE_SIZE as i32 + 6);
        root.draw(&Text::new(line.clone(), (20, y), ("sans-serif", PLOT_TITLE_SIZE).into_font())).map_err(plot_err)?;
    }
    let (_, body) = root.split_vertically(layout.title_h);
    let (plot, legend) = body.split_horizontally(PLOT_W);
    let keep = |p: &(f64, f64, bool)| p.1.is_finite() && (!log_y || p.1 > 0.0);
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (x0, x1) = if x0 >= x1 { (x0 - 1.0, x1 + 1.0) } else { (x0, x1) };
    // Room for the markers at both ends.
    let xpad = 0.03 * (x1 - x0);
    let ys: Vec<f64> = series.iter().flat_map(|s| s.1.iter().filter(|p| keep(p)).map(|p| p.1)).collect();
    let (y0, y1) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (y0, y1) = if y0 >= y1 { (y0 - 1.0, y1 + 1.0) } else { (y0, y1) };
    let style = |i: usize| COLORS[i % COLORS.len()];
    let dashed = |i: usize| i >= COLORS.len();
    // Integer x (depths, layers): label only the integers.
    let integer_x = series.iter().all(|s| s.1.iter().all(|p| p.0.fract() == 0.0));
    let x_labels = if integer_x { ((x1 - x0) as usize + 1).clamp(2, 12) } else { 10 };
    let sci = log_y || (y1 - y0).abs() < 0.05;
    let mut builder = ChartBuilder::on(&plot);
    builder.margin(20).x_label_area_size(50).y_label_area_size(80);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(xlabel)
                .y_desc(ylabel)
                .x_labels(x_labels)
                .x_label_formatter(&|v: &f64| match (v.fract() == 0.0, integer_x) {
                    (true, _) => format!("{v:.0}"),
                    (false, true) => String::new(),
                    (false, false) => format!("{v:.2}"),
                })
                .y_label_formatter(&|v: &f64| {
                    if sci {
                        format!("{v:.1e}")
                    } else {
                        format!("{:.2}", if v.abs() < 1e-9 { 0.0 } else { *v })
                    }
                })
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 18))
                .draw()
                .map_err(plot_err)?;
            for (i, (_, pts)) in series.iter().enumerate() {
                let c = style(i);
                let pts: Vec<(f64, f64, bool)> = pts.iter().cloned().filter(|p| keep(p)).collect();
                let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
                if dashed(i) {
                    chart.draw_series(DashedLineSeries::new(xy, 10, 6, c.stroke_width(2))).map_err(plot_err)?;
                } else {
                    chart.draw_series(LineSeries::new(xy, c.stroke_width(2))).map_err(plot_err)?;
                }
                chart.draw_series(pts.iter().filter(|p| !p.2).map(|p| Circle::new((p.0, p.1), 4, c.filled()))).map_err(plot_err)?;
                chart
                    .draw_series(pts.iter().filter(|p| p.2).map(|p| {
                        EmptyElement::at((p.0, p.1)) + Circle::new((0, 0), 5, WHITE.filled()) + Circle::new((0, 0), 5, c.stroke_width(2))
                    }))
                    .map_err(plot_err)?;
            }
        }};
    }
    if log_y {
        body!(builder.build_cartesian_2d(x0 - xpad..x1 + xpad, (y0 * 0.8..y1 * 1.25).log_scale()).map_err(plot_err)?);
    } else {
        let pad = 0.05 * (y1 - y0);
        body!(builder.build_cartesian_2d(x0 - xpad..x1 + xpad, y0 - pad..y1 + pad).map_err(plot_err)?);
    }
    // The legend, right of the axes, top-aligned with them.
    let font = ("sans-serif", LEGEND_SIZE).into_font();
    let top = 20i32;
    let (lw, _) = legend.dim_in_pixel();
    legend
        .draw(&Rectangle::new(
            [(0, top - 8), (lw as i32 - 12, top + (layout.legend.len() as u32 * LEGEND_LINE) as i32 + 4)],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_err)?;
    for (i, name) in layout.legend.iter().enumerate() {
        let y = top + (i as u32 * LEGEND_LINE) as i32 + LEGEND_LINE as i32 / 2 - 4;
        if i < series.len() {
            let c = style(i);
            if dashed(i) {
                legend
                    .draw(&plotters::element::DashedPathElement::new(vec![(10, y), (34, y)], 6, 4, c.stroke_width(2)))
                    .map_err(plot_err)?;
            } else {
                legend.draw(&PathElement::new(vec![(10, y), (34, y)], c.stroke_width(2))).map_err(plot_err)?;
            }
            marker(&legend, (22, y), c, false)?;
        } else if layout.note {
            marker(&legend, (22, y), BLACK, true)?;
        }
        legend.draw(&Text::new(name.clone(), (SWATCH_W as i32, y - 9), font.clone())).map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// A line plot as PNG bytes and SVG text.
pub fn line_plot(title: &str, xlabel: &str, ylabel: &str, series: &[Series], log_y: bool) -> Result<(Vec<u8>, String)> {
    let marked: Vec<MarkedSeries> = series.iter().map(|(n, p)| (n.clone(), p.iter().map(|&(x, y)| (x, y, false)).collect())).collect();
    line_plot_marked(title, xlabel, ylabel, &marked, log_y)
}

/// [`line_plot`] where each point says whether its net did not reach the training tolerance:
/// those points are drawn hollow, and the legend (right of the axes, off the data) explains it.
pub fn line_plot_marked(title: &str, xlabel: &str, ylabel: &str, series: &[MarkedSeries], log_y: bool) -> Result<(Vec<u8>, String)> {
    register_font();
    let layout = PlotLayout::new(title, series);
    let (w, h) = (layout.w, layout.h);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    draw_lines(BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(), &layout, xlabel, ylabel, series, log_y)?;
    let png = encode_png(w, h, buf)?;
    let mut svg = String::new();
    draw_lines(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(), &layout, xlabel, ylabel, series, log_y)?;
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

/// Heat-map cell size.
const HEAT_CW: i32 = 52;
const HEAT_CH: i32 = 60;
const HEAT_TITLE_SIZE: f64 = 22.0;
const HEAT_ROW_SIZE: f64 = 16.0;
/// Least heat-map width, so that a usual title takes at most two lines.
const HEAT_MIN_W: u32 = 480;

/// Where everything of a heat map goes.
struct HeatLayout {
    w: u32,
    h: u32,
    left: i32,
    top: i32,
    title: Vec<String>,
    note: bool,
}

impl HeatLayout {
    fn new(title: &str, rows: &[String], ncols: usize, note: bool) -> Self {
        let left = (rows.iter().map(|r| text_width(r, HEAT_ROW_SIZE)).max().unwrap_or(0) + 30).max(110);
        let cells_w = left + ncols as u32 * HEAT_CW as u32 + 110;
        let note_w = if note { text_width(UNCONVERGED_NOTE, NOTE_SIZE) + 20 } else { 0 };
        let w = cells_w.max(HEAT_MIN_W).max(note_w).max(widest_word(title, HEAT_TITLE_SIZE) + 20);
        let lines = wrap(title, HEAT_TITLE_SIZE, w - 20);
        let top = 20 + lines.len() as u32 * (HEAT_TITLE_SIZE as u32 + 6) + 12;
        let h = top + rows.len() as u32 * HEAT_CH as u32 + 60 + if note { 24 } else { 0 };
        HeatLayout { w, h, left: left as i32, top: top as i32, title: lines, note }
    }
}

fn draw_heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    layout: &HeatLayout,
    rows: &[String],
    cols: &[String],
    values: &[Vec<f64>],
    unconverged: &[Vec<bool>],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    let (nr, nc) = (rows.len() as i32, cols.len() as i32);
    let (left, top, cw, ch) = (layout.left, layout.top, HEAT_CW, HEAT_CH);
    for (i, line) in layout.title.iter().enumerate() {
        root.draw(&Text::new(
            line.clone(),
            (10, 16 + i as i32 * (HEAT_TITLE_SIZE as i32 + 6)),
            ("sans-serif", HEAT_TITLE_SIZE).into_font(),
        ))
        .map_err(plot_err)?;
    }
    for (r, row) in values.iter().enumerate() {
        let y = top + r as i32 * ch;
        root.draw(&Text::new(rows[r].clone(), (10, y + ch / 2 - 8), ("sans-serif", HEAT_ROW_SIZE).into_font())).map_err(plot_err)?;
        for (c, v) in row.iter().enumerate() {
            let x = left + c as i32 * cw;
            let flagged = unconverged.get(r).and_then(|u| u.get(c)).copied().unwrap_or(false);
            let fill = if v.is_finite() { diverging(*v) } else { RGBColor(225, 225, 225) };
            root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], fill.filled())).map_err(plot_err)?;
            let text = if v.is_finite() { format!("{v:.2}") } else { "–".into() };
            let text = if flagged { format!("{text}{UNCONVERGED_MARK}") } else { text };
            let ink = if v.is_finite() && v.abs() > 0.65 { WHITE } else { BLACK };
            let tw = text_width(&text, 13.0) as i32;
            root.draw(&Text::new(text, (x + (cw - tw) / 2, y + ch / 2 - 6), ("sans-serif", 13).into_font().color(&ink)))
                .map_err(plot_err)?;
            if flagged {
                root.draw(&Rectangle::new([(x + 2, y + 2), (x + cw - 2, y + ch - 2)], BLACK.stroke_width(2))).map_err(plot_err)?;
            }
        }
    }
    for (c, label) in cols.iter().enumerate() {
        let tw = text_width(label, 15.0) as i32;
        root.draw(&Text::new(label.clone(), (left + c as i32 * cw + (cw - tw) / 2, top + nr * ch + 8), ("sans-serif", 15).into_font()))
            .map_err(plot_err)?;
    }
    let dw = text_width("depth", 17.0) as i32;
    root.draw(&Text::new("depth", (left + nc * cw / 2 - dw / 2, top + nr * ch + 32), ("sans-serif", 17).into_font())).map_err(plot_err)?;
    if layout.note {
        root.draw(&Text::new(
            UNCONVERGED_NOTE,
            (10, top + nr * ch + 58),
            ("sans-serif", NOTE_SIZE).into_font().color(&RGBColor(120, 0, 0)),
        ))
        .map_err(plot_err)?;
    }
    // Color bar.
    let bx = left + nc * cw + 30;
    for i in 0..100 {
        let v = 1.0 - 2.0 * i as f64 / 99.0;
        let y = top + i * (nr * ch) / 100;
        root.draw(&Rectangle::new([(bx, y), (bx + 20, y + (nr * ch) / 100 + 1)], diverging(v).filled())).map_err(plot_err)?;
    }
    for (v, frac) in [(1.0, 0.0), (0.0, 0.5), (-1.0, 1.0)] {
        let y = top + (frac * (nr * ch) as f64) as i32;
        let label = if v == 0.0 { "0".to_string() } else { format!("{v:+.0}") };
        root.draw(&Text::new(label, (bx + 26, y - 8), ("sans-serif", 14).into_font())).map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Heat map size for this title, these row labels, `cols` columns and whether any cell is
/// marked unconverged (then a note line is added below).
pub fn heatmap_size(title: &str, rows: &[String], cols: usize, any_unconverged: bool) -> (u32, u32) {
    register_font();
    let l = HeatLayout::new(title, rows, cols, any_unconverged);
    (l.w, l.h)
}

/// A labelled heat map (values in [−1, 1], diverging colormap; NaN cells gray) as PNG bytes
/// and SVG text.
pub fn heatmap(title: &str, rows: &[String], cols: &[String], values: &[Vec<f64>]) -> Result<(Vec<u8>, String)> {
    heatmap_marked(title, rows, cols, values, &[])
}

/// [`heatmap`] where `unconverged[r][c]` marks the cell of a net that did not reach the
/// training tolerance: [`UNCONVERGED_MARK`] after its value, an outline, and the note below.
/// Missing flags count as converged.
pub fn heatmap_marked(
    title: &str,
    rows: &[String],
    cols: &[String],
    values: &[Vec<f64>],
    unconverged: &[Vec<bool>],
) -> Result<(Vec<u8>, String)> {
    register_font();
    let layout = HeatLayout::new(title, rows, cols.len(), unconverged.iter().flatten().any(|u| *u));
    let (w, h) = (layout.w, layout.h);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    draw_heatmap(BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(), &layout, rows, cols, values, unconverged)?;
    let png = encode_png(w, h, buf)?;
    let mut svg = String::new();
    draw_heatmap(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(), &layout, rows, cols, values, unconverged)?;
    Ok((png, svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hollow_circles(svg: &str) -> usize {
        svg.lines().filter(|l| l.contains("<circle") && l.contains("fill=\"none\"")).count()
    }

    #[test]
    fn the_note_is_the_mark_and_its_meaning() {
        assert_eq!(UNCONVERGED_NOTE, format!("{UNCONVERGED_MARK} {UNCONVERGED_TEXT}"));
    }

    #[test]
    fn text_is_measured_with_the_bundled_font() {
        assert!(text_width("mmmmmmmm", 20.0) > 2 * text_width("iiiiiiii", 20.0));
        assert!(text_width("depth", 24.0) > text_width("depth", 12.0));
    }

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let t = "ReLU CNNs trained on one image: mean correlation over the 12 probes, by protocol";
        let lines = wrap(t, 22.0, 200);
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| text_width(l, 22.0) <= 200 || !l.contains(' ')), "{lines:?}");
        assert_eq!(lines.join(" "), t);
        assert_eq!(wrap("short", 22.0, 1000), vec!["short".to_string()]);
    }

    #[test]
    fn titles_fit_their_canvas_whatever_their_length() {
        let rows: Vec<String> = vec!["3×3".into(), "5×5".into()];
        for title in [
            "Mean corr to constant (12 probes) by channels and depth",
            &"a very long title ".repeat(20),
            "Supercalifragilisticexpialidocious-unbreakable-word-title",
        ] {
            let l = HeatLayout::new(title, &rows, 2, true);
            for line in &l.title {
                assert!(text_width(line, HEAT_TITLE_SIZE) + 10 <= l.w, "heat map title line {line:?} wider than {}", l.w);
            }
            assert_eq!(l.title.join(" "), title.trim_end());
            let g = GridLayout::new(title, &["input".into()], 2, 2, true, true);
            let note_w = text_width(UNCONVERGED_NOTE, NOTE_SIZE) + 2 * GAP;
            for line in &g.title.0 {
                assert!(text_width(line, g.title.1) + 2 * GAP + note_w <= g.w, "grid title line {line:?} does not fit {}", g.w);
            }
            let p = PlotLayout::new(title, &[("s".into(), vec![(1.0, 0.5, false)])]);
            for line in &p.title {
                assert!(text_width(line, PLOT_TITLE_SIZE) + 20 <= p.w, "plot title line {line:?} does not fit {}", p.w);
            }
        }
        // Heat map row labels push the cells right rather than under them.
        let l = HeatLayout::new("t", &["a rather long row label".into()], 2, false);
        assert!(l.left as u32 >= text_width("a rather long row label", HEAT_ROW_SIZE) + 10);
    }

    #[test]
    fn grid_row_labels_fit_their_column_and_carry_the_mark() {
        let labels = vec!["input".to_string(), "momentum 0.01 depth 20".into(), "CNN depth 3 (adam 0.0003)".into()];
        let marked = marked_labels(&labels, &[false, true]);
        assert_eq!(
            marked,
            vec!["input".to_string(), format!("momentum 0.01 depth 20 {UNCONVERGED_MARK}"), "CNN depth 3 (adam 0.0003)".into()]
        );
        let g = GridLayout::new("t", &marked, 3, 4, true, true);
        for l in &marked {
            let lines = wrap(l, ROW_LABEL_SIZE, g.label_w - GAP);
            assert!(lines.iter().all(|x| text_width(x, ROW_LABEL_SIZE) <= g.label_w - GAP), "{lines:?} in {}", g.label_w);
            assert_eq!(lines.len(), 1, "labels up to MAX_LABEL_W stay on one line: {lines:?}");
        }
        // Longer ones wrap inside the widest column, within the image's height.
        let essay = vec!["a row label that goes on and on about the net it names, its protocol and seed".to_string()];
        let g = GridLayout::new("t", &essay, 1, 2, false, false);
        assert_eq!(g.label_w, MAX_LABEL_W);
        let lines = wrap(&essay[0], ROW_LABEL_SIZE, g.label_w - GAP);
        assert!(lines.len() > 1 && lines.iter().all(|x| text_width(x, ROW_LABEL_SIZE) <= g.label_w - GAP), "{lines:?}");
        assert!((lines.len() as i32) * ROW_LABEL_LINE <= CELL as i32, "{lines:?}");
        // One unbreakable label widens the column instead of being cut.
        let long = vec!["an_unbreakable_label_of_some_length".to_string()];
        let g = GridLayout::new("t", &long, 1, 2, false, false);
        assert!(g.label_w >= text_width(&long[0], ROW_LABEL_SIZE) + GAP);
        // Labels and titles that fit keep the plain size.
        let short = vec!["input".to_string(), "FCN 6-layer linear".into()];
        assert_eq!(grid_size_for("Fig. 2", &short, 2, 4, true, false), grid_size(2, 4, true));
        assert!(grid_size_for("Fig. 2", &labels, 3, 4, true, false).0 > grid_size(3, 4, true).0);
    }

    #[test]
    fn unconverged_points_are_hollow_and_explained() {
        let series = vec![
            ("a".to_string(), vec![(1.0, 0.1, false), (2.0, 0.5, true), (3.0, 0.9, false)]),
            ("b".to_string(), vec![(1.0, 0.2, false)]),
        ];
        let (_, svg) = line_plot_marked("t", "depth", "corr", &series, false).unwrap();
        // One hollow point, one hollow marker in the legend's note.
        assert_eq!(hollow_circles(&svg), 2, "{svg}");
        assert!(svg.contains("did not reach the training tolerance"));
        let plain: Vec<Series> = series.iter().map(|(n, p)| (n.clone(), p.iter().map(|q| (q.0, q.1)).collect())).collect();
        let (_, svg) = line_plot("t", "depth", "corr", &plain, false).unwrap();
        assert_eq!(hollow_circles(&svg), 0);
        assert!(!svg.contains("tolerance"));
    }

    #[test]
    fn unconverged_heat_map_cells_are_marked_and_explained() {
        let (rows, cols) = (vec!["3×3".to_string(), "5×5".into()], vec!["1".to_string(), "2".into()]);
        let values = vec![vec![0.9, 0.1], vec![-0.5, f64::NAN]];
        let (png, svg) = heatmap_marked("t", &rows, &cols, &values, &[vec![false, true]]).unwrap();
        assert_eq!(svg.matches(&format!("0.10{UNCONVERGED_MARK}")).count(), 1, "{svg}");
        assert_eq!(svg.matches(UNCONVERGED_MARK).count(), 2, "the cell and the note");
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), heatmap_size("t", &rows, 2, true));
        let (png, svg) = heatmap("t", &rows, &cols, &values).unwrap();
        assert!(!svg.contains(UNCONVERGED_MARK));
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), heatmap_size("t", &rows, 2, false));
    }
}
