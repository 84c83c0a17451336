//! People for reposing (iLAT §3.3): the demo-video frames, kept in memory
//! at a quarter of their size, pairs of frames of one person, and the example a pair
//! makes: both frames cropped to the same square around the union of the two
//! skeletons, the mask of that union, and the target pose. The engine's `repose` cuts
//! the same square with [`repose_region`], so training sees what an edit sees.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};
use rayon::prelude::*;

use super::DataError;
use super::poses::{self, Frame, JOINTS, Pose};
use crate::region::{Region, Square};

/// Held-out person crops a tokenizer is measured on (as many as the held-out faces).
pub const HELD_OUT_CROPS: usize = 99;

/// Radius of the skeleton's bones at edit time, as a fraction of the person's extent.
pub const DILATION: f32 = 0.07;

/// Training draws the radius from this range (iLAT dilates by a random amount).
pub const TRAIN_DILATION: (f32, f32) = (0.05, 0.10);

/// Context around the skeletons, as a fraction of their box's larger side.
const MARGIN: f32 = 0.15;

/// Frames are kept at this fraction of their size: people stay above 64 px.
const SCALE: f32 = 0.25;

/// Frame distances of training pairs and of held-out pairs.
const TRAIN_GAPS: std::ops::RangeInclusive<usize> = 3..=40;
const TEST_GAPS: std::ops::RangeInclusive<usize> = 8..=30;

/// The mask a repose regenerates (picture size) and the square the models see.
/// `None` when neither pose has a visible joint.
pub fn repose_region(
    old: &Pose,
    new: &Pose,
    (width, height): (u32, u32),
    dilation: f32,
    model_side: u32,
) -> Option<(GrayImage, Square)> {
    let mask = poses::skeleton_mask(&[old, new], width, height, dilation);
    let region = Square::around_with_margin(&mask, model_side, MARGIN)?;
    Some((mask, region))
}

/// One training or test example.
pub struct PoseExample {
    /// The source frame's crop: its unmasked part is the context.
    pub source: RgbImage,
    /// The target frame's crop: what the masked part should become.
    pub target: RgbImage,
    /// The union of both skeletons in the crop.
    pub mask: GrayImage,
    /// The target pose in the crop, as the model takes it.
    pub pose: [[f32; 3]; JOINTS],
}

/// Which part of the annotated frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

/// Annotated frames of one part, in memory, and their pairs.
pub struct People {
    frames: Vec<Frame>,
    pictures: Vec<RgbImage>,
    pairs: Vec<(usize, usize)>,
}

impl People {
    /// Loads the frames of `part` from `frames_dir` (as `scripts/fetch-data.sh` lays
    /// them out) with the keypoints of `keypoints`.
    pub fn load(frames_dir: &Path, keypoints: &Path, part: Part) -> Result<Self, DataError> {
        if !frames_dir.is_dir() {
            return Err(DataError::MissingFolder(frames_dir.to_path_buf()));
        }
        let (train, test) = poses::split(&poses::load(keypoints)?);
        let (frames, gaps) = match part {
            Part::Train => (train, TRAIN_GAPS),
            Part::Test => (test, TEST_GAPS),
        };
        let pictures = frames
            .par_iter()
            .map(|f| {
                load_small(
                    &frames_dir
                        .join(&f.video)
                        .join(format!("{:06}.png", f.number)),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let frames = frames
            .into_iter()
            .map(|f| Frame {
                pose: f.pose.map(|x, y| (x * SCALE, y * SCALE)),
                ..f
            })
            .collect();
        Ok(Self::new(frames, pictures, gaps))
    }

    /// Frames (sorted by video and number) with their pictures, paired `gaps` apart.
    pub fn new(
        frames: Vec<Frame>,
        pictures: Vec<RgbImage>,
        gaps: std::ops::RangeInclusive<usize>,
    ) -> Self {
        let pairs = poses::pairs(&frames, gaps);
        Self {
            frames,
            pictures,
            pairs,
        }
    }

    /// Pairs `(source, target)` of frames of one person.
    pub fn pairs(&self) -> &[(usize, usize)] {
        &self.pairs
    }

    /// A frame's picture (quarter size) and pose (in its pixels).
    pub fn frame(&self, index: usize) -> (&RgbImage, &Pose) {
        (&self.pictures[index], &self.frames[index].pose)
    }

    /// The target frames of `count` pairs spread over all, each cut at `size`x`size` as
    /// a repose cuts it (the union of both skeletons with context).
    pub fn target_crops(&self, size: u32, count: usize) -> Vec<RgbImage> {
        let stride = (self.pairs.len() / count.max(1)).max(1);
        self.pairs
            .iter()
            .step_by(stride)
            .take(count)
            .filter_map(|&pair| self.example(pair, DILATION, false, size))
            .map(|example| example.target)
            .collect()
    }

    /// The example of a pair at `size`x`size`, mirrored left to right if asked.
    pub fn example(
        &self,
        (source, target): (usize, usize),
        dilation: f32,
        mirror: bool,
        size: u32,
    ) -> Option<PoseExample> {
        let (mut source_picture, mut old) = (
            self.pictures[source].clone(),
            self.frames[source].pose.clone(),
        );
        let (mut target_picture, mut new) = (
            self.pictures[target].clone(),
            self.frames[target].pose.clone(),
        );
        if mirror {
            let width = source_picture.width() as f32;
            imageops::flip_horizontal_in_place(&mut source_picture);
            imageops::flip_horizontal_in_place(&mut target_picture);
            (old, new) = (old.mirrored(width), new.mirrored(width));
        }
        let (mask, region) =
            repose_region(&old, &new, source_picture.dimensions(), dilation, size)?;
        Some(PoseExample {
            source: region.crop(&source_picture, size),
            target: region.crop(&target_picture, size),
            mask: Region::Square(region).crop_mask(&mask, size),
            pose: new.features(region.x as f32, region.y as f32, region.side as f32),
        })
    }
}

/// A frame at [`SCALE`] of its size.
fn load_small(path: &Path) -> Result<RgbImage, DataError> {
    let image = image::open(path)
        .map_err(|e| DataError::BadImage {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .to_rgb8();
    let (w, h) = image.dimensions();
    let (w, h) = (
        ((w as f32 * SCALE).round() as u32).max(1),
        ((h as f32 * SCALE).round() as u32).max(1),
    );
    Ok(imageops::resize(&image, w, h, FilterType::Triangle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_example_crops_both_frames_alike_around_both_skeletons() {
        let frames: Vec<Frame> = [(1, 60.0), (4, 66.0)]
            .into_iter()
            .map(|(number, x)| Frame {
                video: "v".into(),
                number,
                pose: Pose::standing(x, 85.0, 65.0),
            })
            .collect();
        let pictures = (0..2)
            .map(|i| RgbImage::from_fn(160, 100, |x, y| image::Rgb([x as u8, y as u8, i * 200])))
            .collect();
        let people = People::new(frames, pictures, 3..=3);
        assert_eq!(people.pairs(), &[(0, 1), (1, 0)]);
        for mirror in [false, true] {
            let example = people
                .example((0, 1), 0.06, mirror, 64)
                .expect("visible joints");
            assert_eq!(example.source.dimensions(), (64, 64));
            assert_eq!(example.mask.dimensions(), (64, 64));
            // The same square of both frames: the pictures differ only in blue.
            let (s, t) = (
                example.source.get_pixel(10, 10),
                example.target.get_pixel(10, 10),
            );
            assert_eq!((s[0], s[1]), (t[0], t[1]));
            assert!(s[2] < 20 && t[2] > 180);
            for [x, y, visible] in example.pose {
                assert_eq!(visible, 1.0);
                assert!(
                    (0.0..1.0).contains(&x) && (0.0..1.0).contains(&y),
                    "{x}, {y}"
                );
                let on = example
                    .mask
                    .get_pixel((x * 64.0) as u32, (y * 64.0) as u32)
                    .0[0];
                assert_eq!(on, 255, "the target joint lies in the mask");
            }
        }
        // The target crops of both pairs: the target frame's blue, at the asked side.
        let crops = people.target_crops(48, 5);
        assert_eq!(crops.len(), 2);
        assert!(crops.iter().all(|c| c.dimensions() == (48, 48)));
        assert!(crops[0].get_pixel(10, 10)[2] > 180 && crops[1].get_pixel(10, 10)[2] < 20);
    }
}
