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
use crate::{PIXELS, SIDE};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// MNIST digits (LeCun & Cortes, CC BY-SA 3.0).
    Mnist,
    /// Fashion-MNIST (Zalando, MIT).
    FashionMnist,
    /// CIFAR-10 binary batches (Krizhevsky 2009), converted to 28×28 gray, see [`cifar`].
    Cifar10,
}

impl Dataset {
    /// All known data sets.
    pub const ALL: [Dataset; 3] = [Dataset::Mnist, Dataset::FashionMnist, Dataset::Cifar10];
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

/// A set of 8-bit gray images, row-major, `[count, rows, cols]`.
#[derive(Debug, Clone)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count·rows·cols` bytes, 0 = black.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Image `i` scaled to [0, 1], `[rows·cols]`.
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        let n = self.rows * self.cols;
        self.pixels[i * n..(i + 1) * n].iter().map(|&p| p as f32 / 255.0).collect()
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

/// Load one split as 28×28 gray images (CIFAR-10 is converted, see [`cifar::to_gray28`]).
pub fn load_images(dir: &Path, dataset: Dataset, split: Split) -> Result<Images> {
    match dataset {
        Dataset::Mnist | Dataset::FashionMnist => {
            let p = idx_path(dir, dataset, split, false);
            require(&p, dataset, &format!("{dataset} {} images", split.name()))?;
            let imgs = idx::read_images(&p)?;
            if imgs.rows != SIDE || imgs.cols != SIDE {
                return Err(Error::bad_data(&p, format!("wrong dimensions {}x{}, expected 28x28", imgs.rows, imgs.cols)));
            }
            Ok(imgs)
        }
        Dataset::Cifar10 => {
            let files = cifar::batch_files(dir, split);
            for f in &files {
                require(f, dataset, &format!("cifar-10 {} batch", split.name()))?;
            }
            let mut pixels = Vec::new();
            let mut count = 0;
            for f in &files {
                for rec in cifar::read_batch(f)? {
                    pixels.extend_from_slice(&cifar::to_gray28(&rec.rgb));
                    count += 1;
                }
            }
            Ok(Images { count, rows: SIDE, cols: SIDE, pixels })
        }
    }
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
/// file path (PNG/JPEG, converted to gray and resized to 28×28 with a triangle filter).
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

/// Load the image `spec` names as `[784]` values in [0, 1].
pub fn load_image(dir: &Path, spec: &ImageSpec) -> Result<Vec<f32>> {
    match spec {
        ImageSpec::Dataset { dataset, split, index } => {
            let imgs = load_images(dir, *dataset, *split)?;
            if *index >= imgs.count {
                return Err(Error::invalid(
                    "train-image",
                    format!("{spec}: index {index} out of range, the split has {} images", imgs.count),
                ));
            }
            Ok(imgs.image_f32(*index))
        }
        ImageSpec::File(p) => load_image_file(p),
    }
}

/// Read an image file as 28×28 gray in [0, 1] (luma, then a triangle-filter resize if needed).
pub fn load_image_file(p: &Path) -> Result<Vec<f32>> {
    let img = image::open(p).map_err(|e| Error::bad_data(p, format!("cannot read image: {e}")))?;
    let gray = img.to_luma8();
    let gray = if gray.width() as usize != SIDE || gray.height() as usize != SIDE {
        image::imageops::resize(&gray, SIDE as u32, SIDE as u32, image::imageops::FilterType::Triangle)
    } else {
        gray
    };
    let v: Vec<f32> = gray.pixels().map(|p| p.0[0] as f32 / 255.0).collect();
    debug_assert_eq!(v.len(), PIXELS);
    Ok(v)
}
