//! Held-out evaluations behind `tessera eval …` (DESIGN §5).

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use image::{GrayImage, RgbImage};

use crate::data::faces::load_folder;
use crate::data::masks::random_mask;
use crate::data::people::{DILATION, Part, People, repose_region};
use crate::data::poses::keypoints_path;
use crate::data::sketch::Xdog;
use crate::engine::{
    DEFAULT_CYCLES, EditRequest, Engine, EngineError, Generator, Method, ReposeRequest,
};
use crate::ilat::model::Guidance;
use crate::ilat::sample::Sampling;
use crate::metrics;

/// Reconstruction quality and codebook use of the tokenizer on a folder of images.
#[derive(Debug, Clone, Serialize)]
pub struct VqganReport {
    /// Mean PSNR in dB.
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean absolute error on [0, 1].
    pub l1: f64,
    /// Codes used at least once.
    pub live_codes: usize,
    /// Codebook size.
    pub codebook_size: usize,
    /// exp(entropy) of code usage.
    pub perplexity: f64,
    /// Images evaluated.
    pub images: usize,
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The feature network for FID and KID could not be loaded.
    #[error("{0}")]
    Features(String),
}

/// Reconstructs every image of `dir` (centre square, resized to the model's side).
pub fn vqgan(engine: &mut Engine, dir: &Path) -> Result<VqganReport, EvalError> {
    let size = engine.image_size()?;
    let images = load_folder(dir, size)?;
    let (mut psnr, mut ssim, mut l1) = (0.0, 0.0, 0.0);
    let mut indices = Vec::new();
    for chunk in images.chunks(32) {
        let (recon, grids) = engine.reconstruct(chunk)?;
        for (a, b) in chunk.iter().zip(&recon) {
            psnr += metrics::psnr(a, b);
            ssim += metrics::ssim(a, b);
            l1 += metrics::l1(a, b);
        }
        indices.extend(grids.into_iter().flat_map(|g| g.indices));
    }
    let n = images.len() as f64;
    let codebook_size = engine.codebook_size()?;
    let usage = metrics::codebook_usage(&indices, codebook_size);
    Ok(VqganReport {
        psnr: psnr / n,
        ssim: ssim / n,
        l1: l1 / n,
        live_codes: usage.live_codes,
        codebook_size,
        perplexity: usage.perplexity,
        images: images.len(),
    })
}

/// One method's row of `tessera eval edit`.
#[derive(Debug, Clone, Serialize)]
pub struct EditRow {
    /// `ilat`, `taming` or `taming-star`.
    pub method: String,
    /// PSNR (dB) of the masked region against the original.
    pub psnr: f64,
    /// SSIM averaged over windows centred in the masked region.
    pub ssim: f64,
    /// Mean absolute error on [0, 1] over the masked region.
    pub mae: f64,
    /// Mean wall-clock seconds per edit, models loaded.
    pub seconds_per_edit: f64,
}

/// `tessera eval edit`: every method on the same faces, masks, sketches and seeds.
#[derive(Debug, Clone, Serialize)]
pub struct EditReport {
    /// One row per method.
    pub rows: Vec<EditRow>,
    /// Faces edited per method.
    pub images: usize,
}

/// Seed of the evaluation masks, so every run and every method sees the same ones.
const EDIT_EVAL_SEED: u64 = 2024;

/// Edits every face of `dir` (at most `limit`) with a random stroke-and-box mask over
/// 10-40 % of the picture and the XDoG sketch of the original as guidance, with each
/// method, and compares the masked region with the original.
pub fn edit(
    engine: &mut Engine,
    dir: &Path,
    limit: Option<usize>,
) -> Result<EditReport, EvalError> {
    let size = engine.image_size()?;
    let mut faces = load_folder(dir, size)?;
    faces.truncate(limit.unwrap_or(faces.len()));
    let mut rng = StdRng::seed_from_u64(EDIT_EVAL_SEED);
    let masks: Vec<_> = faces
        .iter()
        .map(|_| random_mask(size, 0.1, 0.4, &mut rng))
        .collect();
    let mut rows = Vec::new();
    for method in [Method::Ilat, Method::Taming, Method::TamingStar] {
        engine.prepare(method, Guidance::Sketch)?;
        let mut scores = Scores::default();
        for (i, (face, mask)) in faces.iter().zip(&masks).enumerate() {
            let request = EditRequest {
                image: face.clone(),
                mask: mask.clone(),
                sketch: Some(Xdog::default().sketch(face)),
                method,
                sampling: Sampling {
                    seed: i as u64,
                    ..Sampling::default()
                },
                cycles: DEFAULT_CYCLES,
            };
            let start = Instant::now();
            let edited = engine.edit(&request, &mut |_| ControlFlow::Continue(()))?;
            scores.add(face, &edited, mask, start.elapsed().as_secs_f64());
        }
        let [psnr, ssim, mae, seconds] = scores.means();
        rows.push(EditRow {
            method: method.name().into(),
            psnr,
            ssim,
            mae,
            seconds_per_edit: seconds,
        });
    }
    Ok(EditReport {
        rows,
        images: faces.len(),
    })
}

/// Sums of the quality measures of the masked region and of the seconds taken.
#[derive(Default)]
struct Scores {
    sums: [f64; 4],
    count: usize,
}

impl Scores {
    fn add(&mut self, truth: &RgbImage, result: &RgbImage, mask: &GrayImage, seconds: f64) {
        let values = [
            metrics::psnr_masked(truth, result, mask),
            metrics::ssim_masked(truth, result, mask),
            metrics::mae_masked(truth, result, mask),
            seconds,
        ];
        for (sum, value) in self.sums.iter_mut().zip(values) {
            *sum += value;
        }
        self.count += 1;
    }

    /// Means of PSNR, SSIM, MAE and seconds.
    fn means(&self) -> [f64; 4] {
        self.sums.map(|s| s / self.count.max(1) as f64)
    }
}

/// One method's row of `tessera eval pose` and `tessera eval completion`.
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
    /// Mean wall-clock seconds per picture, models loaded.
    pub seconds: f64,
}

impl Scores {
    fn row(&self, method: Method) -> QualityRow {
        let [psnr, ssim, mae, seconds] = self.means();
        QualityRow {
            method: method.name().into(),
            psnr,
            ssim,
            mae,
            seconds,
        }
    }
}

/// `tessera eval pose`: every method on the same held-out pairs and seeds.
#[derive(Debug, Clone, Serialize)]
pub struct PoseReport {
    /// One row per method.
    pub rows: Vec<QualityRow>,
    /// Pairs reposed per method.
    pub pairs: usize,
}

/// Reposes the source frame of `limit` held-out pairs (spread evenly over them) to
/// the target frame's pose with each method, and compares the square the models saw
/// with the target frame inside the skeleton mask.
pub fn pose(engine: &mut Engine, data: &Path, limit: usize) -> Result<PoseReport, EvalError> {
    let size = engine.image_size()?;
    let people = People::load(&data.join("poses/frames"), &keypoints_path(), Part::Test)?;
    let all = people.pairs();
    let stride = (all.len() / limit.max(1)).max(1);
    let pairs: Vec<(usize, usize)> = all.iter().step_by(stride).take(limit).copied().collect();
    let mut rows = Vec::new();
    for method in [Method::Ilat, Method::Taming, Method::TamingStar] {
        engine.prepare(method, Guidance::Pose)?;
        let mut scores = Scores::default();
        for (i, &(source, target)) in pairs.iter().enumerate() {
            let (image, pose) = people.frame(source);
            let (truth, new_pose) = people.frame(target);
            let request = ReposeRequest {
                image: image.clone(),
                pose: pose.clone(),
                new_pose: new_pose.clone(),
                method,
                sampling: Sampling {
                    seed: i as u64,
                    ..Sampling::default()
                },
            };
            let start = Instant::now();
            let reposed = engine.repose(&request, &mut |_| ControlFlow::Continue(()))?;
            let seconds = start.elapsed().as_secs_f64();
            let Some((mask, region)) =
                repose_region(pose, new_pose, image.dimensions(), DILATION, size)
            else {
                continue;
            };
            scores.add(
                &region.crop(truth, size),
                &region.crop(&reposed, size),
                &region.crop_mask(&mask, size),
                seconds,
            );
        }
        rows.push(scores.row(method));
    }
    Ok(PoseReport {
        rows,
        pairs: pairs.len(),
    })
}

/// `tessera eval completion`: ImageBART and Taming on the same faces and seeds.
#[derive(Debug, Clone, Serialize)]
pub struct CompletionReport {
    /// One row per method.
    pub rows: Vec<QualityRow>,
    /// Faces completed per method.
    pub images: usize,
}

/// Masks the upper half of every face of `dir` (at most `limit`), regenerates it from
/// the lower half with ImageBART (`cycles` refinements) and with Taming, and compares
/// the upper half with the original (ImageBART §4.3).
pub fn completion(
    engine: &mut Engine,
    dir: &Path,
    limit: Option<usize>,
    cycles: usize,
) -> Result<CompletionReport, EvalError> {
    let size = engine.image_size()?;
    let mut faces = load_folder(dir, size)?;
    faces.truncate(limit.unwrap_or(faces.len()));
    let upper = GrayImage::from_fn(size, size, |_, y| {
        image::Luma([if y < size / 2 { 255 } else { 0 }])
    });
    let mut rows = Vec::new();
    for method in [Method::Imagebart, Method::Taming] {
        engine.prepare(method, Guidance::Sketch)?;
        let mut scores = Scores::default();
        for (i, face) in faces.iter().enumerate() {
            let request = EditRequest {
                image: face.clone(),
                mask: upper.clone(),
                sketch: None,
                method,
                sampling: Sampling {
                    seed: i as u64,
                    ..Sampling::default()
                },
                cycles,
            };
            let start = Instant::now();
            let completed = engine.edit(&request, &mut |_| ControlFlow::Continue(()))?;
            scores.add(face, &completed, &upper, start.elapsed().as_secs_f64());
        }
        rows.push(scores.row(method));
    }
    Ok(CompletionReport {
        rows,
        images: faces.len(),
    })
}

/// One generator's row of `tessera eval hit`.
#[derive(Debug, Clone, Serialize)]
pub struct HitRow {
    /// `hit` or `conv`.
    pub model: String,
    /// FID against the held-out faces.
    pub fid: f64,
    /// KID against the held-out faces.
    pub kid: f64,
    /// The distance the comparison is read on: the KID (unbiased at this sample size).
    pub distance: f64,
    /// FID and KID against the training faces.
    pub fid_train: f64,
    pub kid_train: f64,
    /// Pictures generated per second, models loaded, in batches of 50.
    pub samples_per_second: f64,
}

/// `tessera eval hit`: both generators against the same real faces.
#[derive(Debug, Clone, Serialize)]
pub struct HitReport {
    pub rows: Vec<HitRow>,
    /// Samples per generator.
    pub samples: usize,
    /// Held-out and training faces compared with.
    pub held_out: usize,
    pub train: usize,
}

/// Samples `n` faces from each generator (seeds from 1,000,000 on, never a grid seed)
/// and measures FID and KID of their InceptionV3 features against the held-out and the
/// training faces of `data`.
pub fn hit(engine: &mut Engine, data: &Path, n: usize) -> Result<HitReport, EvalError> {
    let device = engine.backend().device.clone();
    let inception = crate::nn::inception::InceptionV3::load(
        &data.join("nets/inception_v3_fid.safetensors"),
        &device,
    )
    .map_err(|e| EvalError::Features(e.to_string()))?;
    let features = |pictures: &[RgbImage]| -> Vec<Vec<f64>> {
        inception
            .features(pictures, 16, &device)
            .iter()
            .map(|f| f.iter().map(|&v| v as f64).collect())
            .collect()
    };
    let held_out = features(&load_folder(&data.join("faces/test"), 64)?);
    let train = features(&load_folder(&data.join("faces/train"), 64)?);
    let mut rows = Vec::new();
    for arch in [crate::hit::Arch::Hit, crate::hit::Arch::Conv] {
        let start = Instant::now();
        let mut pictures = Vec::with_capacity(n);
        for first in (0..n).step_by(50) {
            let count = 50.min(n - first);
            pictures.extend(engine.sample(
                Generator::Gan(arch),
                1_000_000 + first as u64,
                count,
            )?);
        }
        let samples_per_second = n as f64 / start.elapsed().as_secs_f64();
        let generated = features(&pictures);
        let kid = crate::distribution::kid(&generated, &held_out);
        rows.push(HitRow {
            model: arch.name().into(),
            fid: crate::distribution::fid(&generated, &held_out),
            kid,
            distance: kid,
            fid_train: crate::distribution::fid(&generated, &train),
            kid_train: crate::distribution::kid(&generated, &train),
            samples_per_second,
        });
    }
    Ok(HitReport {
        rows,
        samples: n,
        held_out: held_out.len(),
        train: train.len(),
    })
}
