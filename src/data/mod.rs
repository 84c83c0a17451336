//! Data: image folders, conversions between images and tensors, random edit masks.

pub mod check;
pub mod convert;
pub mod faces;
pub mod masks;
pub mod people;
pub mod poses;
pub mod sketch;

use std::path::PathBuf;

/// A point in a picture's own pixels: x to the right, y down, from the top-left corner
/// (on screen the editor uses egui's `Pos2`, in points).
pub type PicturePoint = (f32, f32);

/// Why data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The folder is not there.
    #[error("data folder {} is missing (run `scripts/fetch-data.sh`)", .0.display())]
    MissingFolder(PathBuf),
    /// The folder holds no image.
    #[error("data folder {} holds no picture (PNG, JPEG, WebP, BMP, TIFF or GIF)", .0.display())]
    Empty(PathBuf),
    /// An image could not be decoded.
    #[error("cannot read image {}: {reason}", path.display())]
    BadImage { path: PathBuf, reason: String },
    /// A pose file is not one.
    #[error("cannot read the pose {}: {reason}", path.display())]
    BadPose { path: PathBuf, reason: String },
    /// A listing failed.
    #[error("cannot list {}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
}
