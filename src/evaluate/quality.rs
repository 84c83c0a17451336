//! The editing tasks every method is compared on: free-form edits of held-out faces,
//! upper-half completion, and reposing held-out pairs of frames. One loop runs each
//! method on the same cases and seeds, and scores the regenerated region against the
//! truth: PSNR, SSIM, MAE, and seconds per case.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use super::EvalError;
use crate::data::faces::load_folder;
use crate::data::masks::random_mask;
use crate::data::people::{DILATION, Part, People, repose_region};
use crate::data::sketch::Xdog;
use crate::engine::GuideKind;
use crate::engine::Sampling;
use crate::engine::{DEFAULT_CYCLES, EditRequest, Engine, FaceChoice, Method, ReposeRequest};
use crate::metrics;
use crate::paths::{self, Data};
use crate::region::Region;

/// One method's row of a quality report.
#[derive(Debug, Clone, Serialize)]
pub struct QualityRow {
    /// `ilat`, `taming`, `taming-star` or `imagebart`.
    pub method: String,
    /// PSNR (dB) of the regenerated region against the truth, at the models' side.
    pub psnr: f64,
    /// SSIM averaged over windows centred in the region.
    pub ssim: f64,
    /// Mean absolute error on [0, 1] over the region.
    pub mae: f64,
    /// Mean wall-clock seconds per case, models loaded.
    pub seconds: f64,
}

/// What a report's cases are, and how many.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cases {
    /// Pictures (edits, completions).
    Images(usize),
    /// Pairs of frames (reposes).
    Pairs(usize),
}

/// Every method on the same cases and seeds.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    /// One row per method.
    pub rows: Vec<QualityRow>,
    /// Cases per method.
    #[serde(flatten)]
    pub cases: Cases,
}

/// What one case is scored on: the truth, the result and the region, at the models'
/// side.
struct Compared {
    truth: RgbImage,
    result: RgbImage,
    mask: GrayImage,
}

/// The one evaluation loop: each of `methods` (prepared for `kind` of guidance) runs
/// every case (`run(engine, method, index, case)`, with the case's index as its seed),
/// timed; a case that yields nothing to compare is skipped.
fn compare<T>(
    engine: &mut Engine,
    (methods, kind): (&[Method], GuideKind),
    cases: &[T],
    mut run: impl FnMut(&mut Engine, Method, usize, &T) -> Result<Option<Compared>, EvalError>,
) -> Result<Vec<QualityRow>, EvalError> {
    let mut rows = Vec::new();
    for &method in methods {
        engine.prepare(method, kind)?;
        let mut scores = Scores::default();
        for (i, case) in cases.iter().enumerate() {
            let start = Instant::now();
            if let Some(compared) = run(engine, method, i, case)? {
                scores.add(&compared, start.elapsed().as_secs_f64());
            }
        }
        rows.push(scores.row(method));
    }
    Ok(rows)
}

/// The sampling of case `i`: default settings, seed `i`.
fn seeded(i: usize) -> Sampling {
    Sampling {
        seed: i as u64,
        ..Sampling::default()
    }
}

/// Sums of the quality measures of the region and of the seconds taken.
#[derive(Default)]
struct Scores {
    sums: [f64; 4],
    count: usize,
}

impl Scores {
    fn add(&mut self, c: &Compared, seconds: f64) {
        let values = [
            metrics::psnr_masked(&c.truth, &c.result, &c.mask),
            metrics::ssim_masked(&c.truth, &c.result, &c.mask),
            metrics::mae_masked(&c.truth, &c.result, &c.mask),
            seconds,
        ];
        for (sum, value) in self.sums.iter_mut().zip(values) {
            *sum += value;
        }
        self.count += 1;
    }

    fn row(&self, method: Method) -> QualityRow {
        let [psnr, ssim, mae, seconds] = self.sums.map(|s| s / self.count.max(1) as f64);
        QualityRow {
            method: method.name().into(),
            psnr,
            ssim,
            mae,
            seconds,
        }
    }
}

/// Seed of the evaluation masks, so every run and every method sees the same ones.
const EDIT_EVAL_SEED: u64 = 2024;

/// Edits every face of `dir` (at most `limit`) with a random stroke-and-box mask over
/// 10-40 % of the picture and the XDoG sketch of the original as guidance, with iLAT,
/// Taming and Taming*, and compares the masked region with the original.
pub fn edit(
    engine: &mut Engine,
    dir: &Path,
    limit: Option<usize>,
) -> Result<QualityReport, EvalError> {
    let size = engine.image_size()?;
    let mut faces = load_folder(dir, size)?;
    faces.truncate(limit.unwrap_or(faces.len()));
    let mut rng = StdRng::seed_from_u64(EDIT_EVAL_SEED);
    let cases: Vec<(RgbImage, GrayImage, GrayImage)> = faces
        .into_iter()
        .map(|face| {
            let mask = random_mask(size, 0.1, 0.4, &mut rng);
            let sketch = Xdog::default().sketch(&face);
            (face, mask, sketch)
        })
        .collect();
    let methods = [Method::Ilat, Method::Taming, Method::TamingStar];
    let rows = compare(
        engine,
        (&methods, GuideKind::Sketch),
        &cases,
        |engine, method, i, (face, mask, sketch)| {
            let request = EditRequest {
                image: face.clone(),
                mask: mask.clone(),
                sketch: Some(sketch.clone()),
                method,
                sampling: seeded(i),
                cycles: DEFAULT_CYCLES,
                face: FaceChoice::Off,
            };
            let result = engine.edit(&request, &mut |_| ControlFlow::Continue(()))?;
            Ok(Some(Compared {
                truth: face.clone(),
                result,
                mask: mask.clone(),
            }))
        },
    )?;
    Ok(QualityReport {
        rows,
        cases: Cases::Images(cases.len()),
    })
}

/// Masks the upper half of every face of `dir` (at most `limit`), regenerates it from
/// the lower half with ImageBART (`cycles` refinements) and with Taming, and compares
/// the upper half with the original (ImageBART §4.3).
pub fn completion(
    engine: &mut Engine,
    dir: &Path,
    limit: Option<usize>,
    cycles: usize,
) -> Result<QualityReport, EvalError> {
    let size = engine.image_size()?;
    let mut faces = load_folder(dir, size)?;
    faces.truncate(limit.unwrap_or(faces.len()));
    let upper = GrayImage::from_fn(size, size, |_, y| {
        image::Luma([if y < size / 2 { 255 } else { 0 }])
    });
    let methods = [Method::Imagebart, Method::Taming];
    let rows = compare(
        engine,
        (&methods, GuideKind::Sketch),
        &faces,
        |engine, method, i, face| {
            let request = EditRequest {
                image: face.clone(),
                mask: upper.clone(),
                sketch: None,
                method,
                sampling: seeded(i),
                cycles,
                face: FaceChoice::Off,
            };
            let result = engine.edit(&request, &mut |_| ControlFlow::Continue(()))?;
            Ok(Some(Compared {
                truth: face.clone(),
                result,
                mask: upper.clone(),
            }))
        },
    )?;
    Ok(QualityReport {
        rows,
        cases: Cases::Images(faces.len()),
    })
}

/// Reposes the source frame of `limit` held-out pairs (spread evenly over them) to
/// the target frame's pose with iLAT, Taming and Taming*, and compares the square the
/// models saw with the target frame inside the skeleton mask.
pub fn pose(engine: &mut Engine, data: &Data, limit: usize) -> Result<QualityReport, EvalError> {
    let size = engine.image_size()?;
    let people = People::load(&data.pose_frames(), &paths::pose_keypoints(), Part::Test)?;
    let all = people.pairs();
    let stride = (all.len() / limit.max(1)).max(1);
    let pairs: Vec<(usize, usize)> = all.iter().step_by(stride).take(limit).copied().collect();
    let methods = [Method::Ilat, Method::Taming, Method::TamingStar];
    let rows = compare(
        engine,
        (&methods, GuideKind::Pose),
        &pairs,
        |engine, method, i, &(source, target)| {
            let (image, pose) = people.frame(source);
            let (truth, new_pose) = people.frame(target);
            let request = ReposeRequest {
                image: image.clone(),
                pose: pose.clone(),
                new_pose: new_pose.clone(),
                method,
                sampling: seeded(i),
            };
            let reposed = engine.repose(&request, &mut |_| ControlFlow::Continue(()))?;
            let compared = repose_region(pose, new_pose, image.dimensions(), DILATION, size).map(
                |(mask, square)| {
                    let region = Region::Square(square);
                    Compared {
                        truth: region.crop(truth, size),
                        result: region.crop(&reposed, size),
                        mask: region.crop_mask(&mask, size),
                    }
                },
            );
            Ok(compared)
        },
    )?;
    Ok(QualityReport {
        rows,
        cases: Cases::Pairs(pairs.len()),
    })
}
