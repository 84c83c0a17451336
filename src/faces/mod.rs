//! Faces in the user's own photos: where they are ([`locator`]) and the aligned crop
//! each one gives the models: the similarity transform that puts its eyes, nose and
//! mouth where the training faces have them ([`Face::alignment`]).

mod graph;
pub mod locator;

use image::GrayImage;
use serde::{Deserialize, Serialize};

pub use locator::FaceLocator;

use crate::region::{Aligned, Similarity};

/// Points per face, in the detector's order: [`POINT_NAMES`].
pub const POINTS: usize = 6;

/// The points' names (the person's right eye is on the picture's left).
pub const POINT_NAMES: [&str; POINTS] = [
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_centre",
    "right_ear",
    "left_ear",
];

/// Where the training crops (CelebA at 128 px, `scripts/fetch-data.sh`) have the
/// first four points (eyes, nose tip, mouth), in units of the crop's side: the mean
/// of the locator's points over the 847 of the 900 training faces it finds a face in,
/// measured with
/// `tessera faces --image data/faces128/train --json` (its `mean_points`). The ears
/// are left out: half of them are hidden in a turned head.
/// (The detector puts the person's right eye a little higher than the left on these
/// level faces; the template keeps that, so that a level face stays level.)
pub const TEMPLATE: [[f32; 2]; 4] = [
    [0.3665, 0.4836],
    [0.6375, 0.4965],
    [0.5004, 0.6654],
    [0.4922, 0.7862],
];

/// Of the mask, this fraction of the crop's side must stay clear of its edges for the
/// aligned crop to be used (the models see a little context on every side).
pub const MARGIN: f32 = 0.03;

/// A face found in a picture, in its pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// The detector's confidence, 0..1.
    pub score: f32,
    /// `[x0, y0, x1, y1]`.
    pub bbox: [f32; 4],
    /// `[x, y]` of each point, in [`POINT_NAMES`] order.
    pub points: [[f32; 2]; POINTS],
}

impl Face {
    /// The face with `f` applied to every coordinate pair.
    pub fn map(self, f: impl Fn([f32; 2]) -> [f32; 2]) -> Self {
        let [a, b] = [
            f([self.bbox[0], self.bbox[1]]),
            f([self.bbox[2], self.bbox[3]]),
        ];
        Self {
            score: self.score,
            bbox: [a[0], a[1], b[0], b[1]],
            points: self.points.map(f),
        }
    }

    /// The aligned crop of this face: the least-squares similarity taking the
    /// template's points to the face's.
    pub fn alignment(&self) -> Option<Aligned> {
        let map = Similarity::fit(&TEMPLATE, &self.points[..TEMPLATE.len()])?;
        Some(Aligned { map })
    }

    /// The aligned crop of this face if `mask` lies inside it (with [`MARGIN`]).
    pub fn holds(&self, mask: &GrayImage) -> Option<Aligned> {
        self.alignment()
            .filter(|aligned| aligned.holds(mask, MARGIN))
    }
}

/// The face an edit of `mask` should align to: of the faces whose aligned crop holds
/// the whole mask, the one whose box covers most of it (then the most confident).
pub fn under_mask(faces: &[Face], mask: &GrayImage) -> Option<(usize, Aligned)> {
    let covered = |face: &Face| {
        let [x0, y0, x1, y1] = face.bbox;
        mask.enumerate_pixels()
            .filter(|(x, y, p)| {
                p.0[0] >= 128
                    && (x0..=x1).contains(&(*x as f32 + 0.5))
                    && (y0..=y1).contains(&(*y as f32 + 0.5))
            })
            .count()
    };
    faces
        .iter()
        .enumerate()
        .filter_map(|(i, face)| face.holds(mask).map(|aligned| (i, aligned, covered(face))))
        .max_by(|a, b| {
            a.2.cmp(&b.2)
                .then(faces[a.0].score.total_cmp(&faces[b.0].score))
        })
        .map(|(i, aligned, _)| (i, aligned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A face placed by `map` with its points exactly at the template's.
    fn face_at(map: Similarity) -> Face {
        let mut points = [[0.0; 2]; POINTS];
        for (p, t) in points.iter_mut().zip(TEMPLATE) {
            *p = map.apply(t);
        }
        points[4] = map.apply([0.2, 0.5]);
        points[5] = map.apply([0.8, 0.5]);
        let [x0, y0] = map.apply([0.2, 0.2]);
        let [x1, y1] = map.apply([0.8, 0.9]);
        Face {
            score: 0.9,
            bbox: [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)],
            points,
        }
    }

    #[test]
    fn a_face_at_the_template_aligns_to_where_it_was_placed() {
        let map = Similarity {
            a: 200.0,
            b: 40.0,
            tx: 120.0,
            ty: 30.0,
        };
        let aligned = face_at(map).alignment().expect("points");
        for p in [[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]] {
            let (a, b) = (aligned.map.apply(p), map.apply(p));
            assert!((a[0] - b[0]).abs() < 1e-2 && (a[1] - b[1]).abs() < 1e-2);
        }
    }

    #[test]
    fn the_face_under_the_mask_is_chosen_and_a_mask_off_every_face_gets_none() {
        let left = face_at(Similarity {
            a: 100.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        });
        let right = face_at(Similarity {
            a: 100.0,
            b: 0.0,
            tx: 200.0,
            ty: 0.0,
        });
        let mut mask = GrayImage::new(300, 150);
        for y in 70..80 {
            for x in 240..260 {
                mask.put_pixel(x, y, Luma([255]));
            }
        }
        let (i, _) = under_mask(&[left, right], &mask).expect("on the right face");
        assert_eq!(i, 1);
        mask.put_pixel(150, 140, Luma([255])); // between the faces, below both
        assert!(under_mask(&[left, right], &mask).is_none());
    }
}
