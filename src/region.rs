//! The part of a picture an edit works on: a square around the mask,
//! resampled to the models' side, and the way the result goes back: only inside the
//! mask, feathered at its inner edge, so every pixel outside the mask keeps its exact
//! value.

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, RgbImage};

/// A square of the picture, in its pixel coordinates; it may reach past the picture's
/// edges, where the edge pixels are repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Left column.
    pub x: i64,
    /// Top row.
    pub y: i64,
    /// Side in pixels.
    pub side: u32,
}

/// Context kept around the mask's bounding box, as a fraction of its larger side.
const MARGIN: f32 = 0.5;

impl Region {
    /// The square the models see for `mask` on a `width`x`height` picture: the mask's
    /// bounding box with context around it, at least `model_side` wide (so small
    /// regions are never enlarged), kept inside the picture where it fits. A picture
    /// of the models' side maps to itself. `None` when nothing is masked.
    pub fn around(mask: &GrayImage, model_side: u32) -> Option<Self> {
        Self::around_with_margin(mask, model_side, MARGIN)
    }

    /// [`Region::around`] with `margin` of context (a fraction of the box's larger
    /// side) on each side.
    pub fn around_with_margin(mask: &GrayImage, model_side: u32, margin: f32) -> Option<Self> {
        let (width, height) = mask.dimensions();
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for (x, y, p) in mask.enumerate_pixels() {
            if p.0[0] >= 128 {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
        if x0 > x1 {
            return None;
        }
        let extent = (x1 - x0 + 1).max(y1 - y0 + 1) as f32;
        let mut side = ((extent * (1.0 + 2.0 * margin)).ceil() as u32).max(model_side);
        if width == height && side >= width {
            side = width; // the whole (square) picture: no border to invent
        }
        let place = |lo: u32, hi: u32, limit: u32| -> i64 {
            let centre = (lo + hi + 1) as i64 / 2;
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

    /// The region of a mask at `size`x`size`: a pixel is on when any picture pixel
    /// under it is, so the mask never shrinks.
    pub fn crop_mask(&self, mask: &GrayImage, size: u32) -> GrayImage {
        self.reduce(mask, size, |on| on >= 128, 255, 0)
    }

    /// The region of a sketch (dark strokes on white) at `size`x`size`: a pixel is a
    /// stroke when any picture pixel under it is, so thin strokes survive.
    pub fn crop_sketch(&self, sketch: &GrayImage, size: u32) -> GrayImage {
        self.reduce(sketch, size, |value| value < 128, 0, 255)
    }

    /// Resamples a two-level picture: `on` where any covered pixel satisfies `hit`.
    fn reduce(
        &self,
        picture: &GrayImage,
        size: u32,
        hit: impl Fn(u8) -> bool,
        on: u8,
        off: u8,
    ) -> GrayImage {
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
                    hit(picture.get_pixel(x, y).0[0])
                })
            });
            Luma([if any { on } else { off }])
        })
    }

    /// Puts `edited` (the region at the models' side) back into `original`: resampled
    /// to the region's size and blended in only where `mask` is on inside the region,
    /// fully from `feather` pixels inside the mask's edge on (the edge as seen within
    /// the region). Pixels outside the mask are copied unchanged.
    pub fn composite(
        &self,
        original: &RgbImage,
        mask: &GrayImage,
        edited: &RgbImage,
        feather: f32,
    ) -> RgbImage {
        let patch = if edited.width() == self.side {
            edited.clone()
        } else {
            imageops::resize(edited, self.side, self.side, FilterType::Lanczos3)
        };
        // Only the region's part of the picture can change: work there alone, so a
        // large picture costs no more than its region (and one copy).
        let (w, h) = original.dimensions();
        let (x0, y0) = (self.x.max(0) as u32, self.y.max(0) as u32);
        let x1 = ((self.x + self.side as i64).max(0) as u32).min(w);
        let y1 = ((self.y + self.side as i64).max(0) as u32).min(h);
        let mut out = original.clone();
        if x1 <= x0 || y1 <= y0 {
            return out;
        }
        let window = imageops::crop_imm(mask, x0, y0, x1 - x0, y1 - y0).to_image();
        let depth = inside_distance(&window);
        for (i, d) in depth.into_iter().enumerate().filter(|(_, d)| *d > 0) {
            let (x, y) = (x0 + i as u32 % (x1 - x0), y0 + i as u32 / (x1 - x0));
            let alpha = (d as f32 / feather.max(1.0)).min(1.0);
            let new = patch.get_pixel((x as i64 - self.x) as u32, (y as i64 - self.y) as u32);
            let pixel = out.get_pixel_mut(x, y);
            for c in 0..3 {
                let blended = alpha * new.0[c] as f32 + (1.0 - alpha) * pixel.0[c] as f32;
                pixel.0[c] = blended.round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }
}

/// For each pixel, 0 outside the mask, else its chessboard distance to the nearest
/// pixel outside (1 on the mask's edge); pixels of an all-masked picture get its size.
fn inside_distance(mask: &GrayImage) -> Vec<u32> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let far = (w + h) as u32;
    let mut d: Vec<u32> = mask
        .pixels()
        .map(|p| if p.0[0] >= 128 { far } else { 0 })
        .collect();
    // Two chamfer passes with the 8-neighbourhood.
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if d[i] == 0 {
                continue;
            }
            let mut best = d[i];
            if x > 0 {
                best = best.min(d[i - 1] + 1);
            }
            if y > 0 {
                best = best.min(d[i - w] + 1);
                if x > 0 {
                    best = best.min(d[i - w - 1] + 1);
                }
                if x + 1 < w {
                    best = best.min(d[i - w + 1] + 1);
                }
            }
            d[i] = best;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            if d[i] == 0 {
                continue;
            }
            let mut best = d[i];
            if x + 1 < w {
                best = best.min(d[i + 1] + 1);
            }
            if y + 1 < h {
                best = best.min(d[i + w] + 1);
                if x + 1 < w {
                    best = best.min(d[i + w + 1] + 1);
                }
                if x > 0 {
                    best = best.min(d[i + w - 1] + 1);
                }
            }
            d[i] = best;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square_mask(w: u32, h: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            Luma([if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                255
            } else {
                0
            }])
        })
    }

    #[test]
    fn a_model_sized_picture_is_its_own_region() {
        let mask = square_mask(64, 64, (10, 10, 20, 20));
        assert_eq!(
            Region::around(&mask, 64),
            Some(Region {
                x: 0,
                y: 0,
                side: 64
            })
        );
        assert_eq!(Region::around(&GrayImage::new(64, 64), 64), None);
    }

    #[test]
    fn regions_hold_the_mask_with_context_and_stay_inside() {
        let mask = square_mask(800, 300, (700, 200, 780, 290));
        let region = Region::around(&mask, 64).expect("masked");
        assert_eq!(region.side, 180); // 90 * (1 + 2 * 0.5)
        assert!(region.x >= 0 && region.x + 180 <= 800);
        assert!(region.y >= 0 && region.y + 180 <= 300);
        assert!(region.x <= 700 && region.x + 180 >= 780);
        assert!(region.y <= 200 && region.y + 180 >= 290);
    }

    #[test]
    fn reduced_masks_cover_every_masked_pixel() {
        let mask = square_mask(300, 300, (151, 151, 152, 152)); // one pixel
        let region = Region {
            x: 0,
            y: 0,
            side: 300,
        };
        let small = region.crop_mask(&mask, 64);
        assert_eq!(small.pixels().filter(|p| p.0[0] == 255).count(), 1);
    }

    #[test]
    fn compositing_changes_masked_pixels_only() {
        let original = RgbImage::from_fn(90, 50, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mask = square_mask(90, 50, (30, 10, 60, 40));
        let region = Region::around(&mask, 64).expect("masked");
        let edited = RgbImage::from_pixel(64, 64, image::Rgb([255, 0, 255]));
        let out = region.composite(&original, &mask, &edited, 3.0);
        for (x, y, p) in out.enumerate_pixels() {
            let inside = mask.get_pixel(x, y).0[0] == 255;
            if !inside {
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

    #[test]
    fn inside_distance_counts_from_the_edge() {
        let mask = square_mask(7, 7, (1, 1, 6, 6));
        let d = inside_distance(&mask);
        assert_eq!(d[0], 0);
        assert_eq!(d[7 + 1], 1);
        assert_eq!(d[3 * 7 + 3], 3);
    }
}
