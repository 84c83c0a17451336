//! What a person edits: the picture, the mask over it (white = regenerate), their
//! sketch strokes (dark on white), all the same size, and a person's pose: where they
//! stand now and where they should stand.

use image::{GrayImage, Luma, RgbImage};

use crate::data::PicturePoint;
use crate::data::masks::segment;
use crate::data::poses::Pose;
use crate::faces::{self, Face};

/// The layers a brush paints on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Layer {
    /// What to regenerate.
    Mask,
    /// Guidance strokes.
    Sketch,
}

/// The picture and what is painted over it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The picture.
    pub image: RgbImage,
    /// 255 where the picture is to be regenerated.
    pub mask: GrayImage,
    /// 0 on strokes, 255 elsewhere.
    pub sketch: GrayImage,
    /// The person's joints as the picture shows them, once placed.
    pub pose: Option<Pose>,
    /// Where the joints should go (a repose moves the person there).
    pub target: Option<Pose>,
    /// The faces found in the picture, with any points the person moved.
    pub faces: Vec<Face>,
}

impl Document {
    /// A picture with nothing painted over it.
    pub fn new(image: RgbImage) -> Self {
        let (w, h) = image.dimensions();
        Self {
            image,
            mask: GrayImage::new(w, h),
            sketch: GrayImage::from_pixel(w, h, Luma([255])),
            pose: None,
            target: None,
            faces: Vec::new(),
        }
    }

    /// The face an edit of the current mask aligns to (its index), if the mask lies
    /// on one.
    pub fn face_under_mask(&self) -> Option<usize> {
        faces::under_mask(&self.faces, &self.mask).map(|(i, _)| i)
    }

    /// The pose and the target, placing a standing figure in the middle when the
    /// picture has none yet.
    pub fn poses_or_standing(&mut self) -> (&mut Pose, &mut Pose) {
        let (w, h) = (self.image.width() as f32, self.image.height() as f32);
        let pose = self
            .pose
            .get_or_insert_with(|| Pose::standing(w / 2.0, h * 0.92, h * 0.8));
        let target = self.target.get_or_insert_with(|| pose.clone());
        (pose, target)
    }

    /// Paints (or with `erase`, clears) a round-capped segment on `layer`, in picture
    /// pixels. Points outside the picture still paint up to its edge.
    pub fn paint(
        &mut self,
        layer: Layer,
        from: PicturePoint,
        to: PicturePoint,
        radius: f32,
        erase: bool,
    ) {
        let (target, on) = match layer {
            Layer::Mask => (&mut self.mask, if erase { 0 } else { 255 }),
            Layer::Sketch => (&mut self.sketch, if erase { 255 } else { 0 }),
        };
        segment(target, from, to, radius.max(0.5), on);
    }

    /// Whether anything is masked.
    pub fn has_mask(&self) -> bool {
        self.mask.pixels().any(|p| p.0[0] >= 128)
    }

    /// Whether any stroke is drawn.
    pub fn has_sketch(&self) -> bool {
        self.sketch.pixels().any(|p| p.0[0] < 128)
    }

    /// Bytes held, for the history's budget.
    pub fn bytes(&self) -> usize {
        self.image.as_raw().len() + self.mask.as_raw().len() + self.sketch.as_raw().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn painting_and_erasing_touch_only_the_layer_under_the_brush() {
        let mut doc = Document::new(RgbImage::new(20, 10));
        doc.paint(Layer::Mask, (2.0, 5.0), (17.0, 5.0), 2.0, false);
        assert_eq!(doc.mask.get_pixel(10, 5).0[0], 255);
        assert_eq!(doc.mask.get_pixel(10, 0).0[0], 0);
        assert!(!doc.has_sketch());
        doc.paint(Layer::Mask, (10.0, 0.0), (10.0, 10.0), 3.0, true);
        assert_eq!(doc.mask.get_pixel(10, 5).0[0], 0);
        assert_eq!(doc.mask.get_pixel(3, 5).0[0], 255);
        doc.paint(Layer::Sketch, (-5.0, 2.0), (5.0, 2.0), 1.0, false);
        assert_eq!(
            doc.sketch.get_pixel(0, 2).0[0],
            0,
            "strokes from outside reach the edge"
        );
    }
}
