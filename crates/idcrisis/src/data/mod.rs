//! Data sets on disk: where they live, how to read them, and the training-image spec.
//!
//! Layout of a data directory (the same as `shared/data`):
//! ```text
//! mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
//! fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
//! cifar-10/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin
//! ```
//! The directory is `--data-dir`, else `$IDCRISIS_DATA`, else `<user cache dir>/idcrisis`.
//! Pixels are scaled to [0, 1] by `u8 / 255`.

pub mod cifar;
pub mod fetch;
pub mod idx;

use crate::error::{Error, Result};
use crate::shape::Shape;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Environment variable naming the data directory.
pub const DATA_ENV: &str = "IDCRISIS_DATA";

/// The data directory: `flag`, else `$IDCRISIS_DATA`, else the user's cache dir + `idcrisis`.
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("idcrisis")
}

/// A data set idcrisis knows how to fetch and read.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// MNIST digits (LeCun & Cortes, CC BY-SA 3.0).
    Mnist,
    /// Fashion-MNIST (Zalando, MIT).
    FashionMnist,
    /// CIFAR-10 binary batches (Krizhevsky 2009), 3×32×32 RGB (`--gray N` for a gray crop), see [`cifar`].
    #[cfg_attr(feature = "clap", value(name = "cifar-10"))]
    Cifar10,
}

impl Dataset {
    /// All known data sets.
    pub const ALL: [Dataset; 3] = [Dataset::Mnist, Dataset::FashionMnist, Dataset::Cifar10];
    /// Images in `split` of the full data set (CIFAR-10: 50 000 / 10 000; the MNISTs: 60 000 /
    /// 10 000).
    pub fn count(self, split: Split) -> usize {
        match (self, split) {
            (Dataset::Cifar10, Split::Train) => 50_000,
            (_, Split::Train) => 60_000,
            (_, Split::Test) => 10_000,
        }
    }

    /// Name used on the command line and as the directory name.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar-10",
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| Error::Other(format!("unknown data set {s:?}; expected one of mnist, fashion-mnist, cifar-10")))
    }
}

/// Training or test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

impl Split {
    /// `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "test" | "t10k" => Ok(Split::Test),
            _ => Err(Error::Other(format!("unknown split {s:?}; expected train or test"))),
        }
    }
}

/// A set of 8-bit images, channel-first and row-major, `[count, channels, rows, cols]`.
#[derive(Debug, Clone)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Channels per image (1 gray, 3 RGB planes).
    pub channels: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count·channels·rows·cols` bytes, 0 = black.
    pub pixels: Vec<u8>,
}

impl Images {
    /// The shape of one image.
    pub fn shape(&self) -> Shape {
        Shape::new(self.channels, self.rows, self.cols)
    }

    /// Image `i` scaled to [0, 1], `[channels·rows·cols]`.
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        let n = self.shape().len();
        self.pixels[i * n..(i + 1) * n].iter().map(|&p| p as f32 / 255.0).collect()
    }

    /// The gray `side`×`side` view of every image (`--gray N`): luma of RGB, then the central
    /// crop (see [`cifar::gray_crop`]). Err if `side` is larger than the images or they have
    /// neither 1 nor 3 channels.
    pub fn to_gray(&self, side: usize) -> Result<Images> {
        let from = self.shape();
        from.gray(side)?;
        let n = from.len();
        let mut pixels = Vec::with_capacity(self.count * side * side);
        for i in 0..self.count {
            pixels.extend_from_slice(&cifar::gray_crop(&self.pixels[i * n..(i + 1) * n], from, side));
        }
        Ok(Images { count: self.count, channels: 1, rows: side, cols: side, pixels })
    }

    /// `self`, or its gray view when `gray` is set.
    pub fn view(self, gray: Option<usize>) -> Result<Images> {
        match gray {
            None => Ok(self),
            Some(side) => self.to_gray(side),
        }
    }
}

/// Path of an IDX file of `dataset` in `dir`.
pub fn idx_path(dir: &Path, dataset: Dataset, split: Split, labels: bool) -> PathBuf {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let kind = if labels { "labels-idx1" } else { "images-idx3" };
    dir.join(dataset.name()).join(format!("{prefix}-{kind}-ubyte.gz"))
}

fn require(path: &Path, dataset: Dataset, what: &str) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::MissingData { what: what.to_string(), dataset: dataset.name().to_string(), path: path.to_path_buf() })
    }
}

/// Load one split as stored: MNIST and Fashion-MNIST `1×28×28`, CIFAR-10 `3×32×32` RGB planes
/// (see [`Images::to_gray`] for the gray view).
///
/// Decoded splits are kept for the life of the process, one entry per split, with each file's
/// length and modification time: a sweep's cells all read the same files, and decompressing
/// MNIST's training set took about 60% of a small net's run. A file whose length or modification
/// time changed is read again (a rewrite of the same length within the file system's time
/// resolution is not noticed). A hit returns a copy (47 MB for MNIST's training set: about 10 ms,
/// against 150 ms to decode it).
pub fn load_images(dir: &Path, dataset: Dataset, split: Split) -> Result<Images> {
    let files = match dataset {
        Dataset::Mnist | Dataset::FashionMnist => {
            let p = idx_path(dir, dataset, split, false);
            require(&p, dataset, &format!("{dataset} {} images", split.name()))?;
            vec![p]
        }
        Dataset::Cifar10 => {
            let files = cifar::batch_files(dir, split);
            for f in &files {
                require(f, dataset, &format!("cifar-10 {} batch", split.name()))?;
            }
            files
        }
    };
    let stamps: Option<Vec<FileStamp>> = files.iter().map(|f| FileStamp::of(f)).collect();
    if let Some(stamps) = &stamps {
        // Take the shared images under the lock; copy them after it is released.
        let hit =
            decoded().lock().unwrap_or_else(|e| e.into_inner()).get(&files).filter(|(s, _)| s == stamps).map(|(_, imgs)| imgs.clone());
        if let Some(imgs) = hit {
            return Ok(Images::clone(&imgs));
        }
    }
    let imgs = match dataset {
        Dataset::Mnist | Dataset::FashionMnist => {
            let p = &files[0];
            let imgs = idx::read_images(p)?;
            if imgs.shape() != Shape::MNIST {
                return Err(Error::bad_data(p, format!("wrong dimensions {}x{}, expected 28x28", imgs.rows, imgs.cols)));
            }
            imgs
        }
        Dataset::Cifar10 => {
            let mut pixels = Vec::new();
            let mut count = 0;
            for f in &files {
                for rec in cifar::read_batch(f)? {
                    pixels.extend_from_slice(&rec.rgb);
                    count += 1;
                }
            }
            let s = Shape::CIFAR;
            Images { count, channels: s.channels, rows: s.height, cols: s.width, pixels }
        }
    };
    if let Some(stamps) = stamps {
        // Replaces the entry of a file that changed: one entry per split at most.
        decoded().lock().unwrap_or_else(|e| e.into_inner()).insert(files, (stamps, std::sync::Arc::new(imgs.clone())));
    }
    Ok(imgs)
}

/// A file's version for the decoded-split cache: its length and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: std::time::SystemTime,
}

impl FileStamp {
    /// `None` when the file's metadata cannot be read (it is then not cached).
    fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp { len: m.len(), modified: m.modified().ok()? })
    }
}

/// The decoded splits of [`load_images`]: per list of files, their stamps when read and the images.
type DecodedSplits = std::collections::HashMap<Vec<PathBuf>, (Vec<FileStamp>, std::sync::Arc<Images>)>;

/// The process's decoded splits (see [`load_images`]): one entry per split and data directory,
/// so at most the three data sets' train and test splits (about 0.4 GB with CIFAR-10).
fn decoded() -> &'static std::sync::Mutex<DecodedSplits> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<DecodedSplits>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Load the labels of one split.
pub fn load_labels(dir: &Path, dataset: Dataset, split: Split) -> Result<Vec<u8>> {
    match dataset {
        Dataset::Mnist | Dataset::FashionMnist => {
            let p = idx_path(dir, dataset, split, true);
            require(&p, dataset, &format!("{dataset} {} labels", split.name()))?;
            idx::read_labels(&p)
        }
        Dataset::Cifar10 => {
            let mut out = Vec::new();
            for f in cifar::batch_files(dir, split) {
                require(&f, dataset, "cifar-10 batch")?;
                out.extend(cifar::read_batch(&f)?.into_iter().map(|r| r.label));
            }
            Ok(out)
        }
    }
}

/// Where an input image comes from: `DATASET:SPLIT:INDEX` (e.g. `mnist:train:15`) or an image
/// file path (PNG/JPEG at its own size: gray files have 1 channel, colour files 3; see
/// [`load_image_file`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSpec {
    /// One image of a data set.
    Dataset {
        /// Which data set.
        dataset: Dataset,
        /// Which split.
        split: Split,
        /// Index within the split.
        index: usize,
    },
    /// An image file.
    File(PathBuf),
}

impl Default for ImageSpec {
    /// `mnist:train:15`, a "7".
    fn default() -> Self {
        ImageSpec::Dataset { dataset: Dataset::Mnist, split: Split::Train, index: 15 }
    }
}

impl FromStr for ImageSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() == 3 && Dataset::from_str(parts[0]).is_ok() {
            let index = parts[2]
                .parse()
                .map_err(|_| Error::invalid("train-image", format!("{s:?}: index {:?} is not a whole number", parts[2])))?;
            return Ok(ImageSpec::Dataset {
                dataset: parts[0].parse()?,
                split: parts[1].parse().map_err(|e: Error| Error::invalid("train-image", format!("{s:?}: {e}")))?,
                index,
            });
        }
        let lower = s.to_ascii_lowercase();
        if [".png", ".jpg", ".jpeg"].iter().any(|e| lower.ends_with(e)) {
            return Ok(ImageSpec::File(PathBuf::from(s)));
        }
        Err(Error::invalid("train-image", format!("{s:?}: expected DATASET:SPLIT:INDEX (e.g. mnist:train:15) or a .png/.jpg path")))
    }
}

impl fmt::Display for ImageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSpec::Dataset { dataset, split, index } => write!(f, "{}:{}:{}", dataset, split.name(), index),
            ImageSpec::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl serde::Serialize for ImageSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for ImageSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Load the image `spec` names, in [0, 1], with its shape: as stored, or its gray `N`×`N` view
/// when `gray` is `Some(N)` (see [`Images::to_gray`]).
pub fn load_image(dir: &Path, spec: &ImageSpec, gray: Option<usize>) -> Result<(Shape, Vec<f32>)> {
    let imgs = load_spec(dir, spec)?.view(gray)?;
    Ok((imgs.shape(), imgs.image_f32(0)))
}

/// The image `spec` names as stored, as a one-image [`Images`] (8-bit planes).
pub fn load_spec(dir: &Path, spec: &ImageSpec) -> Result<Images> {
    Ok(match spec {
        ImageSpec::Dataset { dataset, split, index } => {
            let imgs = load_images(dir, *dataset, *split)?;
            if *index >= imgs.count {
                return Err(Error::invalid(
                    "train-image",
                    format!("{spec}: index {index} out of range, the split has {} images", imgs.count),
                ));
            }
            let n = imgs.shape().len();
            Images { count: 1, pixels: imgs.pixels[index * n..(index + 1) * n].to_vec(), ..imgs }
        }
        ImageSpec::File(p) => load_image_file(p)?,
    })
}

/// Read an image file at its own size as 8-bit planes: gray (L) as 1 channel, colour as 3 (R, G,
/// B). 16-bit files are converted to 8 bits (`v / 257`, rounded). An alpha channel is dropped
/// when every pixel is opaque; a file with transparent pixels is refused (what the model should
/// see there is not defined: flatten it onto a background first).
pub fn load_image_file(p: &Path) -> Result<Images> {
    use image::DynamicImage as D;
    let img = image::open(p).map_err(|e| Error::bad_data(p, format!("cannot read image: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 || w > 4096 || h > 4096 {
        return Err(Error::bad_data(p, format!("{w}x{h} pixels: sides must be in 1..=4096")));
    }
    let opaque = match &img {
        D::ImageLumaA8(_) | D::ImageRgba8(_) => img.to_rgba8().pixels().all(|q| q.0[3] == 255),
        D::ImageLumaA16(_) | D::ImageRgba16(_) => img.to_rgba16().pixels().all(|q| q.0[3] == u16::MAX),
        D::ImageRgba32F(_) => img.to_rgba32f().pixels().all(|q| q.0[3] >= 1.0),
        _ => true,
    };
    if !opaque {
        return Err(Error::bad_data(
            p,
            "has transparent pixels (an alpha channel below 255); flatten it onto a background first, e.g. `convert in.png -background black -flatten out.png`",
        ));
    }
    let gray = matches!(img, D::ImageLuma8(_) | D::ImageLumaA8(_) | D::ImageLuma16(_) | D::ImageLumaA16(_));
    let pixels: Vec<u8> = if gray {
        img.to_luma8().into_raw()
    } else {
        let rgb = img.to_rgb8();
        (0..3).flat_map(|c| rgb.pixels().map(move |q| q.0[c]).collect::<Vec<_>>()).collect()
    };
    Ok(Images { count: 1, channels: if gray { 1 } else { 3 }, rows: h, cols: w, pixels })
}
