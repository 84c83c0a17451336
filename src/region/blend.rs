//! Putting a regenerated patch into the picture inside the mask only. Two ways:
//! a feather (the patch fades in over a few pixels inside the mask's edge), and a
//! seamless blend (Pérez et al. 2003, "Poisson image editing"): the patch is shifted by
//! the smoothest correction that makes it meet the picture at the mask's border, so
//! colour and brightness carry across the border while the patch keeps its own
//! detail. Neither touches a pixel outside the mask.

use image::{GrayImage, RgbImage};

use super::Window;

/// Whether a mask pixel is on.
fn on(mask: &GrayImage, x: u32, y: u32) -> bool {
    mask.get_pixel(x, y).0[0] >= 128
}

/// `original` with `patch` (the edited picture over `window`) blended in where `mask`
/// is on inside the window: fully from `feather` pixels inside the mask's edge (the
/// edge as seen within the window), fading to the original at the edge.
pub fn feathered(
    original: &RgbImage,
    mask: &GrayImage,
    window: Window,
    patch: &RgbImage,
    feather: f32,
) -> RgbImage {
    let mut out = original.clone();
    if window.is_empty() {
        return out;
    }
    let cut =
        image::imageops::crop_imm(mask, window.x0, window.y0, window.width(), window.height())
            .to_image();
    let width = window.width();
    for (i, d) in inside_distance(&cut)
        .into_iter()
        .enumerate()
        .filter(|(_, d)| *d > 0)
    {
        let (u, v) = (i as u32 % width, i as u32 / width);
        let alpha = (d as f32 / feather.max(1.0)).min(1.0);
        let new = patch.get_pixel(u, v);
        let pixel = out.get_pixel_mut(window.x0 + u, window.y0 + v);
        for c in 0..3 {
            let blended = alpha * new.0[c] as f32 + (1.0 - alpha) * pixel.0[c] as f32;
            pixel.0[c] = blended.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
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
    // Two chamfer passes with the 8-neighbourhood: forwards with the neighbours
    // already seen above and to the left, backwards with those below and right.
    let earlier: [(isize, isize); 4] = [(-1, 0), (-1, -1), (0, -1), (1, -1)];
    let mut pass = |order: &mut dyn Iterator<Item = usize>, sign: isize| {
        for i in order {
            if d[i] == 0 {
                continue;
            }
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for (dx, dy) in earlier {
                let (nx, ny) = (x + sign * dx, y + sign * dy);
                if (0..w as isize).contains(&nx) && (0..h as isize).contains(&ny) {
                    d[i] = d[i].min(d[ny as usize * w + nx as usize] + 1);
                }
            }
        }
    };
    pass(&mut (0..w * h), 1);
    pass(&mut (0..w * h).rev(), -1);
    d
}

/// Conjugate-gradient iterations at most; the solve stops earlier once the residual
/// is below [`TOLERANCE`] of a grey level.
const MAX_ITERATIONS: usize = 4000;
const TOLERANCE: f32 = 0.05;

/// `original` with `patch` (the edited picture over `window`) put in where `mask` is
/// on inside the window, plus the harmonic correction (zero Laplacian inside the
/// mask) that takes the value `original - patch` just outside it: the result meets
/// the picture at the border in colour and brightness, with the patch's detail.
pub fn seamless(
    original: &RgbImage,
    mask: &GrayImage,
    window: Window,
    patch: &RgbImage,
) -> RgbImage {
    let mut out = original.clone();
    let unknowns = Unknowns::of(mask, window);
    if unknowns.pixels.is_empty() {
        return out;
    }
    let difference = |x: u32, y: u32| -> [f32; 3] {
        let (o, p) = (
            original.get_pixel(x, y).0,
            patch.get_pixel(x - window.x0, y - window.y0).0,
        );
        std::array::from_fn(|c| o[c] as f32 - p[c] as f32)
    };
    let correction = unknowns.solve(difference);
    for (&(x, y), c) in unknowns.pixels.iter().zip(correction) {
        let p = patch.get_pixel(x - window.x0, y - window.y0).0;
        out.put_pixel(
            x,
            y,
            image::Rgb(std::array::from_fn(|k| {
                (p[k] as f32 + c[k]).round().clamp(0.0, 255.0) as u8
            })),
        );
    }
    out
}

/// The pixels a seamless blend solves for, and how they neighbour each other.
struct Unknowns {
    /// Picture coordinates of every masked pixel of the window.
    pixels: Vec<(u32, u32)>,
    /// For each, its four neighbours in the picture (none past the picture's edge): an
    /// unknown by its index, or a border pixel, whose value is known, by its coordinates.
    neighbours: Vec<[Option<Neighbour>; 4]>,
}

#[derive(Clone, Copy)]
enum Neighbour {
    Unknown(usize),
    Border(u32, u32),
}

impl Unknowns {
    fn of(mask: &GrayImage, window: Window) -> Self {
        let (width, height) = mask.dimensions();
        let inside = |x: u32, y: u32| {
            (window.x0..window.x1).contains(&x)
                && (window.y0..window.y1).contains(&y)
                && on(mask, x, y)
        };
        let mut index = vec![usize::MAX; (window.width() * window.height()) as usize];
        let mut pixels = Vec::new();
        for y in window.y0..window.y1 {
            for x in window.x0..window.x1 {
                if on(mask, x, y) {
                    index[((y - window.y0) * window.width() + x - window.x0) as usize] =
                        pixels.len();
                    pixels.push((x, y));
                }
            }
        }
        let neighbours = pixels
            .iter()
            .map(|&(x, y)| {
                let steps = [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)];
                steps.map(|(dx, dy)| {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        return None; // the picture's own edge: no constraint
                    }
                    let (nx, ny) = (nx as u32, ny as u32);
                    Some(if inside(nx, ny) {
                        let i = ((ny - window.y0) * window.width() + nx - window.x0) as usize;
                        Neighbour::Unknown(index[i])
                    } else {
                        Neighbour::Border(nx, ny)
                    })
                })
            })
            .collect();
        Self { pixels, neighbours }
    }

    /// The correction `c` with, at every unknown, `Σ (c - c_neighbour) = 0` over its
    /// neighbours, where a border neighbour's `c` is `border(x, y)`: a sparse,
    /// symmetric positive definite system, solved by conjugate gradients for the three
    /// channels at once. A region not touching any border (the whole picture masked)
    /// gets no correction.
    fn solve(&self, border: impl Fn(u32, u32) -> [f32; 3]) -> Vec<[f32; 3]> {
        let n = self.pixels.len();
        let apply = |c: &[[f32; 3]], out: &mut [[f32; 3]]| {
            for (i, nb) in self.neighbours.iter().enumerate() {
                let mut v = [0.0f32; 3];
                for &q in nb.iter().flatten() {
                    for k in 0..3 {
                        v[k] += c[i][k]
                            - match q {
                                Neighbour::Unknown(j) => c[j][k],
                                Neighbour::Border(..) => 0.0,
                            };
                    }
                }
                out[i] = v;
            }
        };
        let rhs: Vec<[f32; 3]> = self
            .neighbours
            .iter()
            .map(|nb| {
                nb.iter().flatten().fold([0.0; 3], |mut acc, q| {
                    if let Neighbour::Border(x, y) = *q {
                        let b = border(x, y);
                        (0..3).for_each(|k| acc[k] += b[k]);
                    }
                    acc
                })
            })
            .collect();
        let dot = |a: &[[f32; 3]], b: &[[f32; 3]]| -> [f64; 3] {
            a.iter().zip(b).fold([0.0; 3], |mut acc, (x, y)| {
                (0..3).for_each(|k| acc[k] += x[k] as f64 * y[k] as f64);
                acc
            })
        };
        let mut c = vec![[0.0f32; 3]; n];
        let mut r = rhs;
        let mut p = r.clone();
        let mut ap = vec![[0.0f32; 3]; n];
        let mut rr = dot(&r, &r);
        let limit = TOLERANCE as f64 * TOLERANCE as f64 * n as f64;
        for _ in 0..MAX_ITERATIONS {
            if rr.iter().all(|&v| v <= limit) {
                break;
            }
            apply(&p, &mut ap);
            let pap = dot(&p, &ap);
            let alpha: [f32; 3] = std::array::from_fn(|k| {
                if pap[k] > 0.0 {
                    (rr[k] / pap[k]) as f32
                } else {
                    0.0
                }
            });
            for i in 0..n {
                for k in 0..3 {
                    c[i][k] += alpha[k] * p[i][k];
                    r[i][k] -= alpha[k] * ap[i][k];
                }
            }
            let next = dot(&r, &r);
            let beta: [f32; 3] = std::array::from_fn(|k| {
                if rr[k] > 0.0 {
                    (next[k] / rr[k]) as f32
                } else {
                    0.0
                }
            });
            for i in 0..n {
                for k in 0..3 {
                    p[i][k] = r[i][k] + beta[k] * p[i][k];
                }
            }
            rr = next;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::tests::square_mask;

    #[test]
    fn inside_distance_counts_from_the_edge() {
        let mask = square_mask(7, 7, (1, 1, 6, 6));
        let d = inside_distance(&mask);
        assert_eq!(d[0], 0);
        assert_eq!(d[7 + 1], 1);
        assert_eq!(d[3 * 7 + 3], 3);
        assert_eq!(d[2 * 7 + 4], 2);
    }

    fn whole(picture: &RgbImage) -> Window {
        Window::clipped(
            (0, 0),
            (picture.width() as i64, picture.height() as i64),
            picture.dimensions(),
        )
    }

    #[test]
    fn a_seamless_blend_keeps_the_outside_and_meets_it_at_the_border() {
        // A grey gradient; the patch is the same gradient 60 levels darker, with a
        // bright dot in the middle.
        let original =
            RgbImage::from_fn(40, 30, |x, y| image::Rgb([100 + x as u8, 80 + y as u8, 90]));
        let mut patch =
            RgbImage::from_fn(40, 30, |x, y| image::Rgb([40 + x as u8, 20 + y as u8, 30]));
        patch.put_pixel(20, 15, image::Rgb([250, 250, 250]));
        let mask = square_mask(40, 30, (10, 5, 30, 25));
        let out = seamless(&original, &mask, whole(&original), &patch);
        for (x, y, p) in out.enumerate_pixels() {
            if !on(&mask, x, y) {
                assert_eq!(p, original.get_pixel(x, y));
            } else if (x, y) != (20, 15) {
                // The patch's gradient plus a constant shift is harmonic: the blend
                // brings back the original exactly, up to the solver's tolerance.
                for c in 0..3 {
                    let diff = p.0[c] as i32 - original.get_pixel(x, y).0[c] as i32;
                    assert!(diff.abs() <= 1, "({x}, {y}) channel {c}: {diff}");
                }
            }
        }
        assert!(out.get_pixel(20, 15).0[0] > 200, "the patch's detail stays");
    }

    #[test]
    fn a_feathered_blend_fades_in_from_the_edge() {
        let original = RgbImage::from_pixel(20, 20, image::Rgb([0, 0, 0]));
        let patch = RgbImage::from_pixel(20, 20, image::Rgb([200, 200, 200]));
        let mask = square_mask(20, 20, (4, 4, 16, 16));
        let out = feathered(&original, &mask, whole(&original), &patch, 2.0);
        assert_eq!(out.get_pixel(3, 10).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(4, 10).0, [100, 100, 100]);
        assert_eq!(out.get_pixel(10, 10).0, [200, 200, 200]);
    }
}
