//! Random edit masks for training: free-form brush strokes (as DeepFill v2 draws them)
//! and boxes, the two shapes a person paints in the editor.

use super::PicturePoint;
use image::{GrayImage, Luma};
use rand::Rng;

/// Draws a random mask of side `size`: 1–3 strokes of random width, sometimes with a
/// box, until at least `min_cover` of the image is covered (at most `max_cover`).
pub fn random_mask(size: u32, min_cover: f32, max_cover: f32, rng: &mut impl Rng) -> GrayImage {
    loop {
        let mut mask = GrayImage::new(size, size);
        let strokes = rng.random_range(1..=3);
        for _ in 0..strokes {
            stroke(&mut mask, rng);
        }
        if rng.random_bool(0.3) {
            rect(&mut mask, rng);
        }
        let cover = coverage(&mask);
        if (min_cover..=max_cover).contains(&cover) {
            return mask;
        }
    }
}

/// Fraction of pixels masked.
pub fn coverage(mask: &GrayImage) -> f32 {
    let on = mask.pixels().filter(|p| p.0[0] >= 128).count();
    on as f32 / (mask.width() * mask.height()).max(1) as f32
}

/// A random walk of thick segments.
fn stroke(mask: &mut GrayImage, rng: &mut impl Rng) {
    let size = mask.width() as f32;
    let radius = rng.random_range(0.03..0.09) * size;
    let (mut x, mut y) = (rng.random_range(0.0..size), rng.random_range(0.0..size));
    let mut angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    for _ in 0..rng.random_range(3..8) {
        angle += rng.random_range(-1.2..1.2);
        let length = rng.random_range(0.1..0.35) * size;
        let (nx, ny) = (
            (x + angle.cos() * length).clamp(0.0, size - 1.0),
            (y + angle.sin() * length).clamp(0.0, size - 1.0),
        );
        segment(mask, (x, y), (nx, ny), radius, 255);
        (x, y) = (nx, ny);
    }
}

/// Paints a segment with round caps in `value`.
pub fn segment(mask: &mut GrayImage, from: PicturePoint, to: PicturePoint, radius: f32, value: u8) {
    let steps =
        ((to.0 - from.0).hypot(to.1 - from.1) / (radius * 0.5).max(0.5)).ceil() as usize + 1;
    for i in 0..=steps {
        let t = i as f32 / steps as f32;
        disc(
            mask,
            from.0 + (to.0 - from.0) * t,
            from.1 + (to.1 - from.1) * t,
            radius,
            value,
        );
    }
}

/// Paints a disc in `value`.
pub fn disc(mask: &mut GrayImage, cx: f32, cy: f32, radius: f32, value: u8) {
    let (w, h) = mask.dimensions();
    let x0 = (cx - radius).floor().max(0.0) as u32;
    let y0 = (cy - radius).floor().max(0.0) as u32;
    let x1 = ((cx + radius).ceil() as u32).min(w - 1);
    let y1 = ((cy + radius).ceil() as u32).min(h - 1);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy) <= radius {
                mask.put_pixel(x, y, Luma([value]));
            }
        }
    }
}

fn rect(mask: &mut GrayImage, rng: &mut impl Rng) {
    let size = mask.width();
    let w = rng.random_range(size / 8..size / 2);
    let h = rng.random_range(size / 8..size / 2);
    let x0 = rng.random_range(0..size - w);
    let y0 = rng.random_range(0..size - h);
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            mask.put_pixel(x, y, Luma([255]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn masks_respect_the_coverage_range() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..50 {
            let mask = random_mask(64, 0.1, 0.5, &mut rng);
            let cover = coverage(&mask);
            assert!((0.1..=0.5).contains(&cover), "coverage {cover}");
        }
    }
}
