//! A face's aligned crop: a similarity transform (scale, rotation, shift) places the
//! models' square on the photo so that the eyes and mouth land where the training
//! faces have them. Cutting the crop filters the photo over each model pixel's
//! footprint (a large face is averaged down, not aliased), and the regenerated crop
//! goes back the same way, each photo pixel drawn from its footprint in the crop.

use image::{GrayImage, Luma, Rgb, RgbImage};

use super::{Levels, Window};

/// Samples per axis of a footprint at most (a face 16 times the models' side is
/// filtered as one 16 times it).
const MAX_TAPS: u32 = 16;

/// A similarity transform from the crop's unit square (`(0, 0)` its top-left corner,
/// `(1, 1)` its bottom-right) to picture coordinates (pixel `(x, y)` covers
/// `x..x+1` by `y..y+1`): `x = a u - b v + tx`, `y = b u + a v + ty`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The least-squares similarity taking each point of `from` to its partner in
    /// `to` (Umeyama's closed form, without reflection); `None` for fewer than two
    /// distinct points.
    pub fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Self> {
        let n = from.len().min(to.len());
        if n < 2 {
            return None;
        }
        let mean = |p: &[[f32; 2]]| {
            let s = p[..n].iter().fold([0.0f64; 2], |acc, q| {
                [acc[0] + q[0] as f64, acc[1] + q[1] as f64]
            });
            [s[0] / n as f64, s[1] / n as f64]
        };
        let (mf, mt) = (mean(from), mean(to));
        let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for (f, t) in from[..n].iter().zip(&to[..n]) {
            let (fx, fy) = (f[0] as f64 - mf[0], f[1] as f64 - mf[1]);
            let (px, py) = (t[0] as f64 - mt[0], t[1] as f64 - mt[1]);
            dot += fx * px + fy * py;
            cross += fx * py - fy * px;
            norm += fx * fx + fy * fy;
        }
        if norm < 1e-12 {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        Some(Self {
            a: a as f32,
            b: b as f32,
            tx: (mt[0] - (a * mf[0] - b * mf[1])) as f32,
            ty: (mt[1] - (b * mf[0] + a * mf[1])) as f32,
        })
    }

    /// Where crop point `(u, v)` lies in the picture.
    pub fn apply(&self, [u, v]: [f32; 2]) -> [f32; 2] {
        [
            self.a * u - self.b * v + self.tx,
            self.b * u + self.a * v + self.ty,
        ]
    }

    /// Where picture point `(x, y)` lies in the crop.
    pub fn invert(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        let (dx, dy) = (x - self.tx, y - self.ty);
        let det = self.a * self.a + self.b * self.b;
        [
            (self.a * dx + self.b * dy) / det,
            (-self.b * dx + self.a * dy) / det,
        ]
    }

    /// The crop's side in picture pixels.
    pub fn side(&self) -> f32 {
        self.a.hypot(self.b)
    }

    /// The rotation in radians (positive: the crop's x axis turns towards the
    /// picture's y axis).
    pub fn angle(&self) -> f32 {
        self.b.atan2(self.a)
    }
}

/// A face's crop of a picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aligned {
    pub map: Similarity,
}

impl Aligned {
    /// The picture pixels the crop's square covers, clipped to a `width`x`height`
    /// picture.
    pub fn window(&self, size: (u32, u32)) -> Window {
        let corners = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]].map(|c| self.map.apply(c));
        let lo = |k: usize| corners.iter().map(|c| c[k]).fold(f32::INFINITY, f32::min);
        let hi = |k: usize| {
            corners
                .iter()
                .map(|c| c[k])
                .fold(f32::NEG_INFINITY, f32::max)
        };
        Window::clipped(
            (lo(0).floor() as i64, lo(1).floor() as i64),
            (hi(0).ceil() as i64, hi(1).ceil() as i64),
            size,
        )
    }

    /// Whether every on pixel of `mask` lies inside the crop, at least `margin` (a
    /// fraction of its side) from its edges.
    pub fn holds(&self, mask: &GrayImage, margin: f32) -> bool {
        let range = margin..=1.0 - margin;
        mask.enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] >= 128)
            .all(|(x, y, _)| {
                let [u, v] = self.map.invert([x as f32 + 0.5, y as f32 + 0.5]);
                range.contains(&u) && range.contains(&v)
            })
    }

    /// The crop of an RGB picture at `size`x`size`: each crop pixel the mean of a grid
    /// of bilinear samples over its footprint in the picture (edges repeated).
    pub fn crop(&self, image: &RgbImage, size: u32) -> RgbImage {
        let scale = self.map.side() / size as f32;
        let taps = taps(scale);
        RgbImage::from_fn(size, size, |i, j| {
            let mean = footprint_mean(taps, |du, dv| {
                let uv = [(i as f32 + du) / size as f32, (j as f32 + dv) / size as f32];
                let [x, y] = self.map.apply(uv);
                bilinear(image, x - 0.5, y - 0.5)
            });
            Rgb(mean.map(|v| v.round().clamp(0.0, 255.0) as u8))
        })
    }

    /// A two-level picture carried into the crop at `size`x`size`: every picture
    /// pixel marked (`levels`) turns on the crop pixels its square's bounding box
    /// overlaps, so nothing marked is lost.
    pub fn reduce(&self, picture: &GrayImage, size: u32, levels: Levels) -> GrayImage {
        let Levels { marked, on, off } = levels;
        let mut out = GrayImage::from_pixel(size, size, Luma([off]));
        let window = self.window(picture.dimensions());
        for y in window.y0..window.y1 {
            for x in window.x0..window.x1 {
                if !marked(picture.get_pixel(x, y).0[0]) {
                    continue;
                }
                let corners = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
                    .map(|[dx, dy]| self.map.invert([x as f32 + dx, y as f32 + dy]));
                let span = |k: usize| {
                    let lo = corners.iter().map(|c| c[k]).fold(f32::INFINITY, f32::min);
                    let hi = corners
                        .iter()
                        .map(|c| c[k])
                        .fold(f32::NEG_INFINITY, f32::max);
                    let first = (lo * size as f32).floor().max(0.0) as u32;
                    let last = ((hi * size as f32).ceil() as i64).clamp(0, size as i64) as u32;
                    first..last
                };
                for v in span(1) {
                    for u in span(0) {
                        out.put_pixel(u, v, Luma([on]));
                    }
                }
            }
        }
        out
    }

    /// `edited` (the crop at its side) over `window` of the picture: each picture
    /// pixel the mean of bilinear samples over its footprint in the crop (edges
    /// repeated).
    pub fn patch(&self, edited: &RgbImage, window: Window) -> RgbImage {
        let size = edited.width() as f32;
        let taps = taps(size / self.map.side());
        RgbImage::from_fn(window.width(), window.height(), |px, py| {
            let (x, y) = ((window.x0 + px) as f32, (window.y0 + py) as f32);
            let mean = footprint_mean(taps, |dx, dy| {
                let [u, v] = self.map.invert([x + dx, y + dy]);
                bilinear(edited, u * size - 0.5, v * size - 0.5)
            });
            Rgb(mean.map(|v| v.round().clamp(0.0, 255.0) as u8))
        })
    }
}

/// Samples per axis for a footprint `scale` source pixels wide.
fn taps(scale: f32) -> u32 {
    (scale.ceil() as u32).clamp(1, MAX_TAPS)
}

/// The mean of `sample(du, dv)` over a `taps`x`taps` grid of offsets spread evenly
/// over the unit square.
fn footprint_mean(taps: u32, sample: impl Fn(f32, f32) -> [f32; 3]) -> [f32; 3] {
    let mut sum = [0.0f32; 3];
    for j in 0..taps {
        for i in 0..taps {
            let s = sample(
                (i as f32 + 0.5) / taps as f32,
                (j as f32 + 0.5) / taps as f32,
            );
            (0..3).for_each(|k| sum[k] += s[k]);
        }
    }
    sum.map(|v| v / (taps * taps) as f32)
}

/// The picture's colour at continuous pixel-centre coordinates `(x, y)` (pixel
/// `(i, j)` at `(i, j)`), bilinear, edges repeated.
fn bilinear(image: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let (x, y) = (x.clamp(0.0, w - 1.0), y.clamp(0.0, h - 1.0));
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (x1, y1) = ((x0 + 1).min(w as u32 - 1), (y0 + 1).min(h as u32 - 1));
    let p = |x, y| image.get_pixel(x, y).0.map(|v| v as f32);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    std::array::from_fn(|k| {
        (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::psnr;
    use crate::region::MASK;

    fn close(a: [f32; 2], b: [f32; 2]) -> bool {
        (a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3
    }

    #[test]
    fn a_similarity_is_fitted_exactly_from_exact_points() {
        let truth = Similarity {
            a: 120.0,
            b: -35.0,
            tx: 300.0,
            ty: 80.0,
        };
        let from = [[0.3, 0.4], [0.7, 0.4], [0.5, 0.8]];
        let to = from.map(|p| truth.apply(p));
        let fitted = Similarity::fit(&from, &to).expect("three points");
        for p in [[0.0, 0.0], [1.0, 0.5], [0.2, 0.9]] {
            assert!(close(fitted.apply(p), truth.apply(p)));
            assert!(close(fitted.invert(truth.apply(p)), p));
        }
        assert!(Similarity::fit(&[[0.5, 0.5]; 2], &to[..2]).is_none());
    }

    /// A smooth test picture with detail at several scales.
    fn face_like(side: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            let (u, v) = (x as f32 / side as f32, y as f32 / side as f32);
            let r = 128.0 + 100.0 * (6.0 * u).sin() * (4.0 * v).cos();
            let g = 128.0 + 90.0 * ((u - 0.5).powi(2) + (v - 0.4).powi(2)).sqrt().cos();
            let b = 60.0 + 150.0 * u * v;
            Rgb([r as u8, g as u8, b as u8])
        })
    }

    #[test]
    fn the_crop_of_a_rotated_scaled_copy_is_the_crop_of_the_original() {
        let face = face_like(128);
        // The face put into a 500x400 photo, 2.7 times larger and turned by 25°.
        let placed = Similarity {
            a: 128.0 * 2.7 * 25f32.to_radians().cos(),
            b: 128.0 * 2.7 * 25f32.to_radians().sin(),
            tx: 260.0,
            ty: 20.0,
        };
        let photo = RgbImage::from_fn(500, 400, |x, y| {
            let [u, v] = placed.invert([x as f32 + 0.5, y as f32 + 0.5]);
            if (0.0..1.0).contains(&u) && (0.0..1.0).contains(&v) {
                Rgb(bilinear(&face, u * 128.0 - 0.5, v * 128.0 - 0.5).map(|c| c.round() as u8))
            } else {
                Rgb([0, 0, 0])
            }
        });
        // The crop of its inner part (away from the black surround) against the same
        // part of the original.
        let inner = |u0: f32, side: f32| Similarity {
            a: side,
            b: 0.0,
            tx: u0,
            ty: u0,
        };
        let part = inner(0.1 * 128.0, 0.8 * 128.0);
        let original = Aligned { map: part }.crop(&face, 64);
        let in_photo = Similarity {
            a: placed.a * 0.8,
            b: placed.b * 0.8,
            tx: placed.apply([0.1, 0.1])[0],
            ty: placed.apply([0.1, 0.1])[1],
        };
        let recut = Aligned { map: in_photo }.crop(&photo, 64);
        let db = psnr(&original, &recut);
        assert!(db > 35.0, "{db:.1} dB");
    }

    #[test]
    fn a_crop_put_back_unchanged_is_the_picture_again() {
        let photo = face_like(300);
        let region = Aligned {
            map: Similarity {
                a: 150.0 * 10f32.to_radians().cos(),
                b: 150.0 * 10f32.to_radians().sin(),
                tx: 90.0,
                ty: 60.0,
            },
        };
        let crop = region.crop(&photo, 128);
        let window = region.window(photo.dimensions());
        let back = region.patch(&crop, window);
        let truth =
            image::imageops::crop_imm(&photo, window.x0, window.y0, back.width(), back.height())
                .to_image();
        // Only the inner part: near the crop's edges the photo pixels lie outside it.
        let inner = |img: &RgbImage| {
            image::imageops::crop_imm(
                img,
                back.width() / 4,
                back.height() / 4,
                back.width() / 2,
                back.height() / 2,
            )
            .to_image()
        };
        let db = psnr(&inner(&truth), &inner(&back));
        assert!(db > 35.0, "{db:.1} dB");
    }

    #[test]
    fn masks_carried_into_the_crop_never_lose_a_pixel() {
        let region = Aligned {
            map: Similarity {
                a: 400.0 * 0.9,
                b: 400.0 * 0.3,
                tx: 100.0,
                ty: 10.0,
            },
        };
        let mut mask = GrayImage::new(600, 600);
        mask.put_pixel(250, 300, Luma([255])); // one picture pixel
        let small = region.reduce(&mask, 64, MASK);
        let on = small.pixels().filter(|p| p.0[0] == 255).count();
        assert!((1..=4).contains(&on), "{on}");
        assert!(region.holds(&mask, 0.0));
        mask.put_pixel(5, 590, Luma([255]));
        assert!(!region.holds(&mask, 0.0));
    }
}
