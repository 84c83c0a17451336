//! Held-out evaluations behind `tessera eval …`: the tokenizer's reconstructions
//! (here), the editing tasks every method is compared on ([`quality`]), and the GANs'
//! samples against real faces ([`gans`]). Each measures through the engine, as a
//! user's edit runs.

mod gans;
mod photos;
mod quality;

use std::path::Path;

use image::RgbImage;
use serde::Serialize;

use crate::data::faces::load_folder;
use crate::data::people::{HELD_OUT_CROPS, Part, People};
use crate::engine::{Engine, EngineError};
use crate::metrics;
use crate::paths::{self, Data};
pub use gans::{HitReport, HitRow, hit};
pub use photos::{PhotoRow, PhotosReport, TELEA, feature_mask, photos};
pub use quality::{QualityReport, QualityRow, completion, edit, pose};

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A result could not be written.
    #[error("writing {0}")]
    Write(String),
    /// The feature network for FID and KID could not be loaded.
    #[error("{0}")]
    Features(String),
}

/// InceptionV3 pool features for FID and KID, loaded once per evaluation.
pub struct Features {
    net: crate::nn::inception::InceptionV3,
    device: burn::prelude::Device,
}

impl Features {
    /// Loads the network from its safetensors file.
    pub fn load(path: &Path, device: &burn::prelude::Device) -> Result<Self, EvalError> {
        let net = crate::nn::inception::InceptionV3::load(path, device)
            .map_err(|e| EvalError::Features(e.to_string()))?;
        Ok(Self {
            net,
            device: device.clone(),
        })
    }

    /// The features of each picture.
    pub fn of(&self, pictures: &[RgbImage]) -> Result<Vec<Vec<f64>>, EvalError> {
        Ok(self
            .net
            .features(pictures, 16, &self.device)
            .map_err(crate::engine::EngineError::from)?
            .iter()
            .map(|f| f.iter().map(|&v| v as f64).collect())
            .collect())
    }
}

/// Reconstruction quality and codebook use of the tokenizer on a folder of images.
#[derive(Debug, Clone, Serialize)]
pub struct VqganReport {
    /// Side of the pictures the tokenizer works on.
    pub image_size: usize,
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
    /// FID and KID of the reconstructions' InceptionV3 features against the
    /// originals' (Taming's rFID): how far the tokenizer moves pictures off the
    /// distribution, which PSNR does not see.
    pub rfid: f64,
    pub rkid: f64,
}

/// A tokenizer's evaluation: its numbers, and a picture of what they mean.
pub struct VqganEvaluation {
    pub report: VqganReport,
    /// The first [`FIGURE_PAIRS`] pictures above their reconstructions (a card's figure).
    pub figure: RgbImage,
}

/// Pictures in a [`VqganEvaluation`]'s figure.
pub const FIGURE_PAIRS: usize = 8;

/// Reconstructs every image of `dir` (centre square, resized to the model's side) and
/// compares the reconstructions with the originals, also through the features of the
/// InceptionV3 at `inception`.
pub fn vqgan(
    engine: &mut Engine,
    dir: &Path,
    inception: &Path,
) -> Result<VqganEvaluation, EvalError> {
    let size = engine.image_size()?;
    vqgan_on(
        engine,
        crate::vqgan::FACES,
        &load_folder(dir, size)?,
        inception,
    )
}

/// [`vqgan`] on held-out person crops, through the tokenizer the pose models use: the
/// target frames of [`HELD_OUT_CROPS`] held-out pairs, cut as a repose cuts them, at the
/// tokenizer's side.
pub fn vqgan_people(
    engine: &mut Engine,
    data: &Data,
    inception: &Path,
) -> Result<VqganEvaluation, EvalError> {
    let size = engine.image_size()?;
    let people = People::load(&data.pose_frames(), &paths::pose_keypoints(), Part::Test)?;
    let crops = people.target_crops(size, HELD_OUT_CROPS);
    let tokenizer = engine.people_tokenizer();
    vqgan_on(engine, tokenizer, &crops, inception)
}

/// Reconstruction quality of model-sized `images` through the tokenizer named
/// `tokenizer`.
fn vqgan_on(
    engine: &mut Engine,
    tokenizer: &str,
    images: &[RgbImage],
    inception: &Path,
) -> Result<VqganEvaluation, EvalError> {
    let size = engine.image_size()?;
    let (mut psnr, mut ssim, mut l1) = (0.0, 0.0, 0.0);
    let mut indices = Vec::new();
    let mut reconstructions = Vec::with_capacity(images.len());
    for chunk in images.chunks(32) {
        let (recon, grids) = engine.reconstruct_with(tokenizer, chunk)?;
        for (a, b) in chunk.iter().zip(&recon) {
            psnr += metrics::psnr(a, b);
            ssim += metrics::ssim(a, b);
            l1 += metrics::l1(a, b);
        }
        indices.extend(grids.into_iter().flat_map(|g| g.indices));
        reconstructions.extend(recon);
    }
    let features = Features::load(inception, &engine.backend().device)?;
    let (real, rebuilt) = (features.of(images)?, features.of(&reconstructions)?);
    let n = images.len() as f64;
    let codebook_size = engine.codebook_size(tokenizer)?;
    let usage = metrics::codebook_usage(&indices, codebook_size);
    let report = VqganReport {
        image_size: size as usize,
        rfid: crate::distribution::fid(&rebuilt, &real),
        rkid: crate::distribution::kid(&rebuilt, &real),
        psnr: psnr / n,
        ssim: ssim / n,
        l1: l1 / n,
        live_codes: usage.live_codes,
        codebook_size,
        perplexity: usage.perplexity,
        images: images.len(),
    };
    let shown = images.len().min(FIGURE_PAIRS);
    let pairs: Vec<RgbImage> = images[..shown]
        .iter()
        .chain(&reconstructions[..shown])
        .cloned()
        .collect();
    Ok(VqganEvaluation {
        report,
        figure: crate::data::convert::tile(&pairs, shown),
    })
}
