//! What the token models learn from: pictures, edit masks and guidance, before
//! tokenisation. Faces get free-form masks and XDoG sketches with strokes dropped
//! inside the mask (iLAT §3.3, sketch guiding); people get pairs of frames, the union
//! of both skeletons as the mask and the target pose (pose guiding).

use image::{GrayImage, RgbImage};
use rand::Rng;

use super::model::GuideBatch;
use crate::data::faces::{Augmentation, MAX_SHIFT};
use crate::data::masks::random_mask;
use crate::data::people::{People, TRAIN_DILATION};
use crate::data::sketch::{Xdog, drop_strokes};

/// Examples before tokenisation.
pub struct Examples {
    /// What the masked part should become.
    pub targets: Vec<RgbImage>,
    /// The pictures whose unmasked part is the context (for faces, the targets).
    pub sources: Vec<RgbImage>,
    /// White where the model regenerates.
    pub masks: Vec<GrayImage>,
    /// The guidance.
    pub guides: GuideBatch,
    /// Which face of the set and which augmentation each target is (faces only: the
    /// key of its clean tokens in a [`crate::training::TokenCache`]).
    pub drawn: Vec<(usize, Augmentation)>,
}

/// Where examples are drawn from.
pub enum Dataset {
    /// Faces at the models' side.
    Faces(Vec<RgbImage>),
    /// Pairs of frames of one person.
    People(People),
}

impl Dataset {
    /// Draws `count` random examples; face masks cover `min..=max` of the tokens (of
    /// side `factor` pixels), people's masks are their skeletons.
    pub fn draw(
        &self,
        count: usize,
        (min, max): (f32, f32),
        (size, factor): (u32, u32),
        rng: &mut impl Rng,
    ) -> Examples {
        match self {
            Dataset::Faces(faces) => draw_faces(faces, count, (min, max), factor, rng),
            Dataset::People(people) => draw_people(people, count, size, rng),
        }
    }
}

/// Augmented faces with random masks and their sketches with strokes dropped inside
/// the mask.
fn draw_faces(
    set: &[RgbImage],
    count: usize,
    (min, max): (f32, f32),
    factor: u32,
    rng: &mut impl Rng,
) -> Examples {
    let (mut targets, mut masks, mut sketches) = (Vec::new(), Vec::new(), Vec::new());
    let mut drawn = Vec::new();
    for _ in 0..count {
        let face = rng.random_range(0..set.len());
        let augmentation = Augmentation::draw(MAX_SHIFT, rng);
        let image = augmentation.apply(&set[face]);
        drawn.push((face, augmentation));
        let mask = token_covering_mask(image.width(), factor, (min, max), rng);
        let mut sketch = Xdog::default().sketch(&image);
        drop_strokes(&mut sketch, &mask, rng);
        targets.push(image);
        masks.push(mask);
        sketches.push(sketch);
    }
    Examples {
        sources: targets.clone(),
        targets,
        masks,
        guides: GuideBatch::Sketches(sketches),
        drawn,
    }
}

/// Random pairs, mirrored half the time, with a random skeleton dilation.
fn draw_people(people: &People, count: usize, size: u32, rng: &mut impl Rng) -> Examples {
    let (mut targets, mut sources, mut masks, mut poses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    while targets.len() < count {
        let pair = people.pairs()[rng.random_range(0..people.pairs().len())];
        let dilation = rng.random_range(TRAIN_DILATION.0..=TRAIN_DILATION.1);
        if let Some(example) = people.example(pair, dilation, rng.random_bool(0.5), size) {
            targets.push(example.target);
            sources.push(example.source);
            masks.push(example.mask);
            poses.push(example.pose);
        }
    }
    Examples {
        targets,
        sources,
        masks,
        guides: GuideBatch::Poses(poses),
        drawn: Vec::new(),
    }
}

/// A random stroke-and-box mask whose token footprint covers `min..=max` of the grid.
fn token_covering_mask(
    size: u32,
    factor: u32,
    (min, max): (f32, f32),
    rng: &mut impl Rng,
) -> GrayImage {
    loop {
        // Token coverage exceeds pixel coverage (a token is masked if any pixel is).
        let mask = random_mask(size, min * 0.5, max, rng);
        let cover = token_coverage(&mask, factor);
        if (min..=max).contains(&cover) {
            return mask;
        }
    }
}

/// Fraction of `factor`x`factor` patches with any masked pixel.
pub fn token_coverage(mask: &GrayImage, factor: u32) -> f32 {
    let side = mask.width() / factor;
    let masked = (0..side * side)
        .filter(|t| {
            let (tx, ty) = (t % side * factor, t / side * factor);
            (0..factor * factor)
                .any(|k| mask.get_pixel(tx + k % factor, ty + k / factor).0[0] >= 128)
        })
        .count();
    masked as f32 / (side * side).max(1) as f32
}
