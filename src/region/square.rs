//! The square around the mask: the region of a picture that shows no face the
//! locator found (or whose mask lies off it), and of every repose.

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, RgbImage};

use super::{Levels, Window};

/// A square of the picture, in its pixel coordinates; it may reach past the picture's
/// edges, where the edge pixels are repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Square {
    /// Left column.
    pub x: i64,
    /// Top row.
    pub y: i64,
    /// Side in pixels.
    pub side: u32,
}

/// Context kept around the mask's bounding box, as a fraction of its larger side.
const MARGIN: f32 = 0.5;

impl Square {
    /// The square the models see for `mask` on a `width`x`height` picture: the mask's
    /// bounding box with context around it, at least `model_side` wide (so small
    /// regions are never enlarged), kept inside the picture where it fits. A picture
    /// of the models' side maps to itself. `None` when nothing is masked.
    pub fn around(mask: &GrayImage, model_side: u32) -> Option<Self> {
        Self::around_with_margin(mask, model_side, MARGIN)
    }

    /// [`Square::around`] with `margin` of context (a fraction of the box's larger
    /// side) on each side.
    pub fn around_with_margin(mask: &GrayImage, model_side: u32, margin: f32) -> Option<Self> {
        let (width, height) = mask.dimensions();
        let Window { x0, y0, x1, y1 } = super::bounds(mask)?;
        let extent = (x1 - x0).max(y1 - y0) as f32;
        let mut side = ((extent * (1.0 + 2.0 * margin)).ceil() as u32).max(model_side);
        if width == height && side >= width {
            side = width; // the whole (square) picture: no border to invent
        }
        // `lo..hi` of the box, `hi` exclusive.
        let place = |lo: u32, hi: u32, limit: u32| -> i64 {
            let centre = (lo + hi) as i64 / 2;
            let start = centre - side as i64 / 2;
            if side <= limit {
                start.clamp(0, (limit - side) as i64)
            } else {
                (limit as i64 - side as i64) / 2
            }
        };
        Some(Self {
            x: place(x0, x1, width),
            y: place(y0, y1, height),
            side,
        })
    }

    /// The picture's pixel for region pixel `(u, v)`, edges repeated.
    fn source(&self, u: u32, v: u32, width: u32, height: u32) -> (u32, u32) {
        (
            (self.x + u as i64).clamp(0, width as i64 - 1) as u32,
            (self.y + v as i64).clamp(0, height as i64 - 1) as u32,
        )
    }

    /// The region of an RGB picture at `size`x`size` (Lanczos; a copy when no
    /// resampling is needed).
    pub fn crop(&self, image: &RgbImage, size: u32) -> RgbImage {
        let (w, h) = image.dimensions();
        let square = RgbImage::from_fn(self.side, self.side, |u, v| {
            let (x, y) = self.source(u, v, w, h);
            *image.get_pixel(x, y)
        });
        if self.side == size {
            square
        } else {
            imageops::resize(&square, size, size, FilterType::Lanczos3)
        }
    }

    /// Resamples a two-level picture to `size`x`size`: `on` where any covered pixel
    /// is marked (`levels`).
    pub fn reduce(&self, picture: &GrayImage, size: u32, levels: Levels) -> GrayImage {
        let Levels { marked, on, off } = levels;
        let (w, h) = picture.dimensions();
        let scale = self.side as f64 / size as f64;
        GrayImage::from_fn(size, size, |u, v| {
            let span = |i: u32| {
                let lo = (i as f64 * scale).floor() as u32;
                let hi = (((i + 1) as f64 * scale).ceil() as u32).clamp(lo + 1, self.side);
                lo..hi
            };
            let any = span(v).any(|sv| {
                span(u).any(|su| {
                    let (x, y) = self.source(su, sv, w, h);
                    marked(picture.get_pixel(x, y).0[0])
                })
            });
            Luma([if any { on } else { off }])
        })
    }

    /// `edited` (the square at the models' side) over `window` of the picture (a part
    /// of the square), resampled to the square's size.
    pub fn patch(&self, edited: &RgbImage, window: Window) -> RgbImage {
        let full = if edited.width() == self.side {
            edited.clone()
        } else {
            imageops::resize(edited, self.side, self.side, FilterType::Lanczos3)
        };
        let dx = (window.x0 as i64 - self.x) as u32;
        let dy = (window.y0 as i64 - self.y) as u32;
        imageops::crop_imm(&full, dx, dy, window.width(), window.height()).to_image()
    }

    /// The part of a `width`x`height` picture the square covers (empty when none).
    pub fn window(&self, (width, height): (u32, u32)) -> Window {
        Window::clipped(
            (self.x, self.y),
            (self.x + self.side as i64, self.y + self.side as i64),
            (width, height),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::MASK;
    use crate::region::tests::square_mask;

    #[test]
    fn a_model_sized_picture_is_its_own_region() {
        let mask = square_mask(64, 64, (10, 10, 20, 20));
        assert_eq!(
            Square::around(&mask, 64),
            Some(Square {
                x: 0,
                y: 0,
                side: 64
            })
        );
        assert_eq!(Square::around(&GrayImage::new(64, 64), 64), None);
    }

    #[test]
    fn regions_hold_the_mask_with_context_and_stay_inside() {
        let mask = square_mask(800, 300, (700, 200, 780, 290));
        let region = Square::around(&mask, 64).expect("masked");
        assert_eq!(region.side, 180); // 90 * (1 + 2 * 0.5)
        assert!(region.x >= 0 && region.x + 180 <= 800);
        assert!(region.y >= 0 && region.y + 180 <= 300);
        assert!(region.x <= 700 && region.x + 180 >= 780);
        assert!(region.y <= 200 && region.y + 180 >= 290);
    }

    #[test]
    fn reduced_masks_cover_every_masked_pixel() {
        let mask = square_mask(300, 300, (151, 151, 152, 152)); // one pixel
        let region = Square {
            x: 0,
            y: 0,
            side: 300,
        };
        let small = region.reduce(&mask, 64, MASK);
        assert_eq!(small.pixels().filter(|p| p.0[0] == 255).count(), 1);
    }
}
