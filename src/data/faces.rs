//! Folders of images as training and evaluation sets, with the augmentations every
//! model trains with (horizontal flips, ±2 px shifts).

use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::Rng;

use super::DataError;
use super::convert::{READ_FORMATS, center_square};

/// The picture files of a folder (any of [`READ_FORMATS`], by extension), sorted by
/// name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::MissingFolder(dir.to_path_buf()));
    }
    let io = |err: std::io::Error| DataError::Io {
        path: dir.to_path_buf(),
        reason: err.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let format = path
            .extension()
            .and_then(image::ImageFormat::from_extension);
        if format.is_some_and(|f| READ_FORMATS.contains(&f)) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::Empty(dir.to_path_buf()));
    }
    Ok(files)
}

/// Loads every image of a folder as a `size`x`size` RGB image (centre square, Lanczos).
pub fn load_folder(dir: &Path, size: u32) -> Result<Vec<RgbImage>, DataError> {
    list_images(dir)?
        .iter()
        .map(|path| load_square(path, size))
        .collect()
}

/// Loads one image as a `size`x`size` RGB image.
pub fn load_square(path: &Path, size: u32) -> Result<RgbImage, DataError> {
    Ok(center_square(&super::convert::open_image(path)?, size))
}

/// The largest shift, in pixels each way, of the augmentation every model trains with.
pub const MAX_SHIFT: i32 = 2;

/// A random horizontal flip and a shift of up to `max_shift` pixels each way, the
/// border repeated into the gap.
pub fn augment(image: &RgbImage, max_shift: i32, rng: &mut impl Rng) -> RgbImage {
    Augmentation::draw(max_shift, rng).apply(image)
}

/// One of the augmentations [`augment`] draws: a flip or not, then a shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augmentation {
    pub flip: bool,
    pub dx: i32,
    pub dy: i32,
}

impl Augmentation {
    /// A random one, shifts up to `max_shift` pixels each way.
    pub fn draw(max_shift: i32, rng: &mut impl Rng) -> Self {
        let flip = rng.random_bool(0.5);
        let dx = rng.random_range(-max_shift..=max_shift);
        let dy = rng.random_range(-max_shift..=max_shift);
        Self { flip, dx, dy }
    }

    /// Every augmentation with shifts up to `max_shift`, in the order of
    /// [`Augmentation::index`].
    pub fn all(max_shift: i32) -> Vec<Self> {
        let shifts = -max_shift..=max_shift;
        [false, true]
            .into_iter()
            .flat_map(|flip| {
                shifts.clone().flat_map(move |dx| {
                    (-max_shift..=max_shift).map(move |dy| Self { flip, dx, dy })
                })
            })
            .collect()
    }

    /// Its place in [`Augmentation::all`]`(max_shift)`.
    pub fn index(&self, max_shift: i32) -> usize {
        let side = (2 * max_shift + 1) as usize;
        let (x, y) = (
            (self.dx + max_shift) as usize,
            (self.dy + max_shift) as usize,
        );
        usize::from(self.flip) * side * side + x * side + y
    }

    /// The augmented picture.
    pub fn apply(&self, image: &RgbImage) -> RgbImage {
        let (w, h) = image.dimensions();
        RgbImage::from_fn(w, h, |x, y| {
            let sx = if self.flip {
                w as i32 - 1 - x as i32
            } else {
                x as i32
            } - self.dx;
            let sy = y as i32 - self.dy;
            *image.get_pixel(
                sx.clamp(0, w as i32 - 1) as u32,
                sy.clamp(0, h as i32 - 1) as u32,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn augment_only_flips_and_shifts() {
        let img = RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 10, y as u8 * 10, 0]));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..20 {
            let out = augment(&img, 2, &mut rng);
            // Interior rows keep their content up to a shift of at most 2.
            let row = out.get_pixel(4, 4).0[1] as i32 / 10;
            assert!((row - 4).abs() <= 2);
        }
    }

    #[test]
    fn every_augmentation_has_its_own_index() {
        let all = Augmentation::all(2);
        assert_eq!(all.len(), 50);
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a.index(2), i, "{a:?}");
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let drawn = Augmentation::draw(2, &mut rng);
        assert!(all.contains(&drawn));
    }

    #[test]
    fn missing_folder_is_named() {
        let err = load_folder(Path::new("/no/such/folder"), 64).expect_err("missing");
        assert!(err.to_string().contains("/no/such/folder"));
    }
}
