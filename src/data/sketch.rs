//! XDoG sketches (Winnemöller et al. 2012), the guidance of iLAT's face editing (§3.3).
//!
//! Training sketches are computed from the photos, and the engine computes the sketch
//! of the picture outside the mask the same way (`guide_sketch`), so a user's strokes
//! (dark on white) meet the model in the form it was trained on.
//!
//! `D = G_σ ∗ I − τ · G_{kσ} ∗ I` on the luminance `I` in [0, 1]; a pixel is white when
//! `D ≥ ε` and `1 + tanh(φ·(D − ε))` otherwise; the result is thresholded at ½ into
//! black strokes on white.

use image::{GrayImage, Luma, RgbImage};

/// XDoG parameters, tuned for 64x64 faces.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Xdog {
    /// Standard deviation of the narrow Gaussian, in pixels.
    pub sigma: f32,
    /// Ratio of the wide Gaussian's σ to the narrow one's.
    pub k: f32,
    /// Weight of the wide Gaussian.
    pub tau: f32,
    /// Threshold on the difference.
    pub epsilon: f32,
    /// Steepness of the soft threshold.
    pub phi: f32,
}

impl Default for Xdog {
    fn default() -> Self {
        Self {
            sigma: 0.7,
            k: 1.6,
            tau: 0.98,
            epsilon: -0.004,
            phi: 200.0,
        }
    }
}

impl Xdog {
    /// The binary sketch of an image: 0 (black) on strokes, 255 elsewhere.
    pub fn sketch(&self, image: &RgbImage) -> GrayImage {
        let (w, h) = image.dimensions();
        let luma: Vec<f32> = image
            .pixels()
            .map(|p| {
                (0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32) / 255.0
            })
            .collect();
        let narrow = blur(&luma, w as usize, h as usize, self.sigma);
        let wide = blur(&luma, w as usize, h as usize, self.sigma * self.k);
        let values: Vec<u8> = narrow
            .iter()
            .zip(&wide)
            .map(|(&a, &b)| {
                let d = a - self.tau * b;
                let tone = if d >= self.epsilon {
                    1.0
                } else {
                    1.0 + (self.phi * (d - self.epsilon)).tanh()
                };
                if tone >= 0.5 { 255 } else { 0 }
            })
            .collect();
        GrayImage::from_raw(w, h, values)
            .unwrap_or_else(|| GrayImage::from_pixel(w, h, Luma([255])))
    }
}

/// Erases strokes inside `mask` at random, as a person sketches only part of what they
/// mask: a quarter of the time every stroke there, a third of the time a few blobs,
/// otherwise none. Strokes outside the mask stay, as the editor keeps them.
pub fn drop_strokes(sketch: &mut GrayImage, mask: &GrayImage, rng: &mut impl rand::Rng) {
    let (w, h) = sketch.dimensions();
    let mut erase = GrayImage::new(w, h);
    let draw: f64 = rng.random();
    if draw < 0.25 {
        erase = mask.clone();
    } else if draw < 0.6 {
        for _ in 0..rng.random_range(1..=4) {
            let radius = rng.random_range(0.06..0.2) * w as f32;
            let (x, y) = (
                rng.random_range(0.0..w as f32),
                rng.random_range(0.0..h as f32),
            );
            crate::data::masks::segment(&mut erase, (x, y), (x, y), radius, 255);
        }
    }
    for (x, y, pixel) in sketch.enumerate_pixels_mut() {
        if erase.get_pixel(x, y).0[0] >= 128 && mask.get_pixel(x, y).0[0] >= 128 {
            pixel.0[0] = 255;
        }
    }
}

/// Separable Gaussian blur with edges clamped.
fn blur(values: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.into_iter().map(|v| v / total).collect();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0; src.len()];
        for y in 0..h {
            for x in 0..w {
                out[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .map(|(k, weight)| {
                        let offset = k as i64 - radius;
                        let (sx, sy) = if horizontal {
                            ((x as i64 + offset).clamp(0, w as i64 - 1) as usize, y)
                        } else {
                            (x, (y as i64 + offset).clamp(0, h as i64 - 1) as usize)
                        };
                        weight * src[sy * w + sx]
                    })
                    .sum();
            }
        }
        out
    };
    pass(&pass(values, true), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_strokes_lie_inside_the_mask_only() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let sketch = GrayImage::from_fn(32, 32, |x, _| Luma([if x % 3 == 0 { 0 } else { 255 }]));
        let mask = GrayImage::from_fn(32, 32, |x, _| Luma([if x < 16 { 255 } else { 0 }]));
        let mut dropped_any = false;
        for _ in 0..20 {
            let mut out = sketch.clone();
            drop_strokes(&mut out, &mask, &mut rng);
            for (x, y, p) in out.enumerate_pixels() {
                if x >= 16 {
                    assert_eq!(p, sketch.get_pixel(x, y), "stroke outside the mask changed");
                }
            }
            dropped_any |= out != sketch;
        }
        assert!(dropped_any);
    }

    #[test]
    fn flat_images_have_no_strokes() {
        for grey in [0u8, 128, 255] {
            let sketch =
                Xdog::default().sketch(&RgbImage::from_pixel(16, 16, image::Rgb([grey; 3])));
            assert!(sketch.pixels().all(|p| p.0[0] == 255), "grey {grey}");
        }
    }

    #[test]
    fn a_dark_disc_on_white_gives_a_ring_of_strokes() {
        let image = RgbImage::from_fn(32, 32, |x, y| {
            let inside = (x as f32 - 15.5).hypot(y as f32 - 15.5) < 8.0;
            image::Rgb([if inside { 30 } else { 230 }; 3])
        });
        let sketch = Xdog::default().sketch(&image);
        let black = |x: u32, y: u32| sketch.get_pixel(x, y).0[0] == 0;
        // Strokes hug the boundary (radius 8) on the dark side; centre and corners stay white.
        assert!(
            black(15, 8) || black(15, 9),
            "no stroke at the top of the disc"
        );
        assert!(!black(15, 15) && !black(1, 1) && !black(30, 30));
    }
}
