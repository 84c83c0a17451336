//! The part of a picture an edit works on, and the way the result goes back.
//!
//! A region is cut from the full-resolution picture at the models' side and the
//! regenerated picture is put back only inside the mask, so every pixel outside the
//! mask keeps its exact value. Two kinds: the face's aligned crop ([`Aligned`]: the
//! eyes where the training faces have them, whatever the photo's size or the head's
//! tilt), put back seamlessly; and the square around the mask ([`Square`]) for
//! everything else, put back with a feathered edge.

mod aligned;
mod blend;
mod square;

use image::{GrayImage, RgbImage};

pub use aligned::{Aligned, Similarity};
pub use blend::{feathered, seamless};
pub use square::Square;

/// Width of the square path's blend at the mask's inner edge, in model pixels.
pub const FEATHER: f32 = 2.0;

/// How a two-level picture (a mask, a sketch) is read and written: which values are
/// marked, and the values of marked and unmarked pixels.
#[derive(Debug, Clone, Copy)]
pub struct Levels {
    pub marked: fn(u8) -> bool,
    pub on: u8,
    pub off: u8,
}

/// A mask: white (≥ 128) is regenerated.
pub const MASK: Levels = Levels {
    marked: |v| v >= 128,
    on: 255,
    off: 0,
};

/// A sketch: dark strokes on white.
pub const SKETCH: Levels = Levels {
    marked: |v| v < 128,
    on: 0,
    off: 255,
};

/// The region of a picture the models see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Region {
    /// The square around the mask, axis-aligned.
    Square(Square),
    /// A face's crop, placed by a similarity transform.
    Aligned(Aligned),
}

impl Region {
    /// The region of an RGB picture at `size`x`size`, properly filtered.
    pub fn crop(&self, image: &RgbImage, size: u32) -> RgbImage {
        match self {
            Region::Square(square) => square.crop(image, size),
            Region::Aligned(aligned) => aligned.crop(image, size),
        }
    }

    /// The region of a mask at `size`x`size`: a pixel is on when any picture pixel
    /// under it is, so the mask never shrinks.
    pub fn crop_mask(&self, mask: &GrayImage, size: u32) -> GrayImage {
        self.reduce(mask, size, MASK)
    }

    /// The region of a sketch (dark strokes on white) at `size`x`size`: a pixel is a
    /// stroke when any picture pixel under it is, so thin strokes survive.
    pub fn crop_sketch(&self, sketch: &GrayImage, size: u32) -> GrayImage {
        self.reduce(sketch, size, SKETCH)
    }

    /// A two-level picture at `size`x`size`, nothing marked lost.
    fn reduce(&self, picture: &GrayImage, size: u32, levels: Levels) -> GrayImage {
        match self {
            Region::Square(square) => square.reduce(picture, size, levels),
            Region::Aligned(aligned) => aligned.reduce(picture, size, levels),
        }
    }

    /// Puts `edited` (the region at the models' side) back into `original`, inside
    /// `mask` only: a square with a feathered edge, a face seamlessly (its colour and
    /// brightness meet the photo's at the mask's border).
    pub fn composite(&self, original: &RgbImage, mask: &GrayImage, edited: &RgbImage) -> RgbImage {
        match self {
            Region::Square(square) => {
                let window = square.window(original.dimensions());
                let patch = square.patch(edited, window);
                let feather = FEATHER * square.side as f32 / edited.width() as f32;
                feathered(original, mask, window, &patch, feather)
            }
            Region::Aligned(aligned) => {
                let window = aligned.window(original.dimensions());
                let patch = aligned.patch(edited, window);
                seamless(original, mask, window, &patch)
            }
        }
    }

    /// The part of the edited picture (at the models' side, `model_mask` being the
    /// mask there) that [`composite`](Self::composite) reads: the mask's box grown by
    /// the reach of the way back, so only this part needs decoding. The reach is the
    /// resampling filter's (Lanczos-3 for a square, a pixel's footprint plus bilinear
    /// taps for a face) and, for the seamless blend, the ring of picture pixels just
    /// outside the mask, each measured in model pixels at the region's scale. Empty
    /// when nothing is masked.
    pub fn reads(&self, model_mask: &GrayImage) -> Window {
        let size = model_mask.width();
        let Some(mask) = bounds(model_mask) else {
            return Window::default();
        };
        let reach = match self {
            Region::Square(square) => {
                let scale = size as f32 / square.side as f32;
                (3.0 * scale.max(1.0)).ceil() as i64 + 1
            }
            Region::Aligned(aligned) => {
                let scale = size as f32 / aligned.map.side();
                (2.0 * scale).ceil() as i64 + 2
            }
        };
        Window::clipped(
            (mask.x0 as i64 - reach, mask.y0 as i64 - reach),
            (mask.x1 as i64 + reach, mask.y1 as i64 + reach),
            model_mask.dimensions(),
        )
    }
}

/// The bounding box of a mask's on pixels (≥ 128); `None` when there are none.
pub fn bounds(mask: &GrayImage) -> Option<Window> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[0] >= 128 {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
        }
    }
    (x0 < x1).then_some(Window { x0, y0, x1, y1 })
}

/// A rectangle of picture pixels, `x0..x1` by `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Window {
    /// The rectangle from `start` to `end` (exclusive) clipped to a `width`x`height`
    /// picture; empty when they do not meet.
    pub fn clipped(start: (i64, i64), end: (i64, i64), (width, height): (u32, u32)) -> Self {
        let clip = |v: i64, limit: u32| v.clamp(0, limit as i64) as u32;
        let (x0, y0) = (clip(start.0, width), clip(start.1, height));
        Self {
            x0,
            y0,
            x1: clip(end.0, width).max(x0),
            y1: clip(end.1, height).max(y0),
        }
    }

    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    pub fn is_empty(&self) -> bool {
        self.width() == 0 || self.height() == 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::Luma;

    /// A `w`x`h` mask, on inside `x0..x1` by `y0..y1`.
    pub fn square_mask(w: u32, h: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            Luma([if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                255
            } else {
                0
            }])
        })
    }

    #[test]
    fn compositing_a_square_changes_masked_pixels_only() {
        let original = RgbImage::from_fn(90, 50, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mask = square_mask(90, 50, (30, 10, 60, 40));
        let region = Region::Square(Square::around(&mask, 64).expect("masked"));
        let edited = RgbImage::from_pixel(64, 64, image::Rgb([255, 0, 255]));
        let out = region.composite(&original, &mask, &edited);
        for (x, y, p) in out.enumerate_pixels() {
            if mask.get_pixel(x, y).0[0] != 255 {
                assert_eq!(p, original.get_pixel(x, y));
            }
        }
        assert_eq!(
            out.get_pixel(45, 25).0,
            [255, 0, 255],
            "deep inside: the edit"
        );
        assert_ne!(
            out.get_pixel(30, 25),
            original.get_pixel(30, 25),
            "edge: blended"
        );
    }

    /// Whatever lies outside [`Region::reads`] of the edited picture never reaches
    /// the composite: squares and faces, shrunk and enlarged, turned.
    #[test]
    fn the_way_back_reads_nothing_outside_its_window() {
        let size = 64;
        let picture = |w: u32, h: u32| {
            RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([
                    (x * 7 % 251) as u8,
                    (y * 5 % 253) as u8,
                    ((x + y) % 256) as u8,
                ])
            })
        };
        let turned = |side: f32, angle: f32, (cx, cy): (f32, f32)| {
            let (a, b) = (side * angle.cos(), side * angle.sin());
            let (tx, ty) = (cx - 0.5 * (a - b), cy - 0.5 * (b + a));
            Region::Aligned(Aligned {
                map: Similarity { a, b, tx, ty },
            })
        };
        let cases = [
            (
                picture(300, 200),
                square_mask(300, 200, (120, 60, 170, 95)),
                None,
            ),
            (picture(40, 40), square_mask(40, 40, (12, 15, 22, 30)), None),
            (
                picture(400, 300),
                square_mask(400, 300, (180, 140, 230, 170)),
                Some(turned(150.0, 0.4, (200.0, 150.0))),
            ),
            (
                picture(120, 100),
                square_mask(120, 100, (55, 45, 68, 60)),
                Some(turned(30.0, -0.3, (60.0, 50.0))),
            ),
        ];
        for (original, mask, aligned) in cases {
            let region = aligned
                .unwrap_or_else(|| Region::Square(Square::around(&mask, size).expect("masked")));
            let model_mask = region.crop_mask(&mask, size);
            let reads = region.reads(&model_mask);
            assert!(!reads.is_empty() && reads.width() < size, "{reads:?}");
            let edited = picture(size, size);
            let mut spoilt = RgbImage::from_pixel(size, size, image::Rgb([255, 0, 255]));
            for y in reads.y0..reads.y1 {
                for x in reads.x0..reads.x1 {
                    spoilt.put_pixel(x, y, *edited.get_pixel(x, y));
                }
            }
            assert_eq!(
                region.composite(&original, &mask, &edited),
                region.composite(&original, &mask, &spoilt),
                "{region:?}"
            );
        }
    }

    #[test]
    fn windows_are_clipped_to_the_picture() {
        let w = Window::clipped((-5, 10), (20, 400), (16, 300));
        assert_eq!((w.x0, w.y0, w.x1, w.y1), (0, 10, 16, 300));
        assert!(Window::clipped((50, 0), (60, 10), (16, 300)).is_empty());
    }
}
