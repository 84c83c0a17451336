//! Image-quality and codebook metrics, computed on the host from 8-bit images so that
//! every number is what a person would get from the saved files.

use image::{GrayImage, RgbImage};

/// Peak signal-to-noise ratio in dB between two same-sized images (values in [0, 1]).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    psnr_of_mse(mean_error(a, b, None, |d| d * d))
}

/// PSNR over the pixels where `mask` is on.
pub fn psnr_masked(a: &RgbImage, b: &RgbImage, mask: &GrayImage) -> f64 {
    psnr_of_mse(mean_error(a, b, Some(mask), |d| d * d))
}

fn psnr_of_mse(mse: f64) -> f64 {
    if mse == 0.0 {
        100.0
    } else {
        -10.0 * mse.log10()
    }
}

/// Mean absolute error on [0, 1].
pub fn l1(a: &RgbImage, b: &RgbImage) -> f64 {
    mean_error(a, b, None, f64::abs)
}

/// Mean absolute error on [0, 1] over the pixels where `mask` is on.
pub fn mae_masked(a: &RgbImage, b: &RgbImage, mask: &GrayImage) -> f64 {
    mean_error(a, b, Some(mask), f64::abs)
}

/// Mean of `f(difference)` over the channels of the pixels in `mask` (all without).
fn mean_error(a: &RgbImage, b: &RgbImage, mask: Option<&GrayImage>, f: impl Fn(f64) -> f64) -> f64 {
    let (mut total, mut count) = (0.0, 0usize);
    for ((x, y, p), q) in a.enumerate_pixels().zip(b.pixels()) {
        if mask.is_some_and(|m| m.get_pixel(x, y).0[0] < 128) {
            continue;
        }
        for c in 0..3 {
            total += f((p.0[c] as f64 - q.0[c] as f64) / 255.0);
            count += 1;
        }
    }
    total / count.max(1) as f64
}

/// Structural similarity (Wang et al. 2004): 11x11 Gaussian window, σ = 1.5, the
/// standard constants, averaged over the valid windows and the three channels.
pub fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    let r = 5;
    let (w, h) = a.dimensions();
    if w as usize <= 2 * r || h as usize <= 2 * r {
        return f64::NAN;
    }
    let centres: Vec<(usize, usize)> = (r..h as usize - r)
        .flat_map(|y| (r..w as usize - r).map(move |x| (x, y)))
        .collect();
    mean_ssim(a, b, &centres)
}

/// SSIM averaged over windows centred on the pixels where `mask` is on (windows that
/// reach past the border repeat the edge pixels).
pub fn ssim_masked(a: &RgbImage, b: &RgbImage, mask: &GrayImage) -> f64 {
    let centres: Vec<(usize, usize)> = mask
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] >= 128)
        .map(|(x, y, _)| (x as usize, y as usize))
        .collect();
    mean_ssim(a, b, &centres)
}

fn mean_ssim(a: &RgbImage, b: &RgbImage, centres: &[(usize, usize)]) -> f64 {
    const C1: f64 = 0.01 * 0.01;
    const C2: f64 = 0.03 * 0.03;
    let kernel = gaussian(11, 1.5);
    let (w, h) = (a.width() as i64, a.height() as i64);
    let r = (kernel.len() / 2) as i64;
    let mut total = 0.0;
    for c in 0..3 {
        let x: Vec<f64> = a.pixels().map(|p| p.0[c] as f64 / 255.0).collect();
        let y: Vec<f64> = b.pixels().map(|p| p.0[c] as f64 / 255.0).collect();
        for &(cx, cy) in centres {
            let (mut mx, mut my, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (ky, wy) in kernel.iter().enumerate() {
                let sy = (cy as i64 + ky as i64 - r).clamp(0, h - 1);
                for (kx, wx) in kernel.iter().enumerate() {
                    let sx = (cx as i64 + kx as i64 - r).clamp(0, w - 1);
                    let i = (sy * w + sx) as usize;
                    let g = wy * wx;
                    mx += g * x[i];
                    my += g * y[i];
                    sxx += g * x[i] * x[i];
                    syy += g * y[i] * y[i];
                    sxy += g * x[i] * y[i];
                }
            }
            let (vx, vy, cov) = (sxx - mx * mx, syy - my * my, sxy - mx * my);
            total += ((2.0 * mx * my + C1) * (2.0 * cov + C2))
                / ((mx * mx + my * my + C1) * (vx + vy + C2));
        }
    }
    total / (3 * centres.len()).max(1) as f64
}

fn gaussian(size: usize, sigma: f64) -> Vec<f64> {
    let r = (size / 2) as f64;
    let raw: Vec<f64> = (0..size)
        .map(|i| (-((i as f64 - r).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|v| v / sum).collect()
}

/// How much the picture jumps at the mask's border, relative to the original: over
/// every pair of 4-neighbours with one pixel inside `mask` and one outside, the mean
/// summed absolute RGB difference in `result`, divided by the same in `original`.
/// 1 is as smooth as the photo itself there; a visible seam is well above. NaN when
/// the mask has no border (or the original is flat along it).
pub fn seam(result: &RgbImage, original: &RgbImage, mask: &GrayImage) -> f64 {
    let (w, h) = mask.dimensions();
    let on = |x: u32, y: u32| mask.get_pixel(x, y).0[0] >= 128;
    let jump = |img: &RgbImage, a: (u32, u32), b: (u32, u32)| -> f64 {
        let (p, q) = (img.get_pixel(a.0, a.1).0, img.get_pixel(b.0, b.1).0);
        (0..3).map(|c| (p[c] as f64 - q[c] as f64).abs()).sum()
    };
    let (mut edited, mut own, mut pairs) = (0.0, 0.0, 0usize);
    for y in 0..h {
        for x in 0..w {
            for (nx, ny) in [(x + 1, y), (x, y + 1)] {
                if nx < w && ny < h && on(x, y) != on(nx, ny) {
                    edited += jump(result, (x, y), (nx, ny));
                    own += jump(original, (x, y), (nx, ny));
                    pairs += 1;
                }
            }
        }
    }
    if pairs == 0 || own == 0.0 {
        f64::NAN
    } else {
        edited / own
    }
}

/// How a codebook is used over a set of token grids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodebookUsage {
    /// Codes used at least once.
    pub live_codes: usize,
    /// exp(entropy) of the usage distribution: the "effective" number of codes.
    pub perplexity: f64,
}

/// Usage statistics of `codebook_size` codes from the indices seen.
pub fn codebook_usage(indices: &[usize], codebook_size: usize) -> CodebookUsage {
    let mut counts = vec![0usize; codebook_size];
    for &i in indices {
        counts[i] += 1;
    }
    let total = indices.len().max(1) as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum();
    CodebookUsage {
        live_codes: counts.iter().filter(|&&c| c > 0).count(),
        perplexity: entropy.exp(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: u32) -> RgbImage {
        RgbImage::from_fn(16, 16, |x, y| {
            let v = (x * 37 + y * 91 + seed * 13) % 251;
            image::Rgb([v as u8, (v * 3 % 256) as u8, (v * 7 % 256) as u8])
        })
    }

    #[test]
    fn the_seam_of_the_photo_itself_is_one_and_a_jump_is_more() {
        let photo = RgbImage::from_fn(20, 20, |x, y| {
            image::Rgb([(x * 5) as u8, (y * 7) as u8, 50])
        });
        let mask = GrayImage::from_fn(20, 20, |x, y| {
            image::Luma([if (5..15).contains(&x) && (5..15).contains(&y) {
                255
            } else {
                0
            }])
        });
        assert!((seam(&photo, &photo, &mask) - 1.0).abs() < 1e-12);
        let mut pasted = photo.clone();
        for (x, y, p) in pasted.enumerate_pixels_mut() {
            if mask.get_pixel(x, y).0[0] == 255 {
                p.0[2] = 120; // a flat patch 70 levels off in blue
            }
        }
        assert!(seam(&pasted, &photo, &mask) > 5.0);
        assert!(seam(&photo, &photo, &GrayImage::new(20, 20)).is_nan());
    }

    #[test]
    fn identical_images_are_perfect() {
        let a = noise(1);
        assert_eq!(psnr(&a, &a), 100.0);
        assert_eq!(l1(&a, &a), 0.0);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn psnr_matches_a_known_error() {
        let a = RgbImage::from_pixel(4, 4, image::Rgb([100, 100, 100]));
        let b = RgbImage::from_pixel(4, 4, image::Rgb([110, 100, 100]));
        // One channel in three off by 10/255: MSE = (10/255)² / 3.
        let expected = -10.0 * (((10.0f64 / 255.0).powi(2)) / 3.0).log10();
        assert!((psnr(&a, &b) - expected).abs() < 1e-9);
        assert!(ssim(&noise(1), &noise(2)) < 0.9);
    }

    #[test]
    fn masked_metrics_ignore_pixels_outside_the_mask() {
        let a = noise(3);
        let mut b = a.clone();
        for x in 0..8 {
            for y in 0..16 {
                b.put_pixel(x, y, image::Rgb([0, 0, 0]));
            }
        }
        let right = GrayImage::from_fn(16, 16, |x, _| image::Luma([if x >= 8 { 255 } else { 0 }]));
        assert_eq!(psnr_masked(&a, &b, &right), 100.0);
        assert_eq!(mae_masked(&a, &b, &right), 0.0);
        let left = GrayImage::from_fn(16, 16, |x, _| image::Luma([if x < 8 { 255 } else { 0 }]));
        assert!(mae_masked(&a, &b, &left) > 0.1);
        assert!(ssim_masked(&a, &a, &left) > 0.999);
        assert!(ssim_masked(&a, &b, &left) < 0.5);
    }

    #[test]
    fn usage_counts_codes_and_perplexity() {
        let usage = codebook_usage(&[0, 1, 2, 3, 0, 1, 2, 3], 8);
        assert_eq!(usage.live_codes, 4);
        assert!((usage.perplexity - 4.0).abs() < 1e-9);
    }
}
