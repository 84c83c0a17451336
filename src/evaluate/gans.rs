//! `tessera eval hit`: FID and KID of the GANs' samples against real faces.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use super::{EvalError, Features};
use crate::data::faces::load_folder;
use crate::engine::{Engine, SampleSource};
use crate::paths::Data;

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
pub fn hit(engine: &mut Engine, data: &Data, n: usize) -> Result<HitReport, EvalError> {
    let inception = Features::load(&data.inception(), &engine.backend().device)?;
    let features = |pictures: &[RgbImage]| inception.of(pictures);
    let side = engine.gan_side(crate::engine::Arch::Hit)?;
    let other = engine.gan_side(crate::engine::Arch::Conv)?;
    if other != side {
        return Err(EvalError::Features(format!(
            "hit draws {side}x{side} pictures and conv {other}x{other}: compare generators of one size"
        )));
    }
    let Some((train_dir, test_dir)) = data.faces_at(side) else {
        return Err(EvalError::Features(format!(
            "no faces at {side}x{side} in the data to compare the samples with"
        )));
    };
    let held_out = features(&load_folder(&test_dir, side as u32)?)?;
    let train = features(&load_folder(&train_dir, side as u32)?)?;
    let mut rows = Vec::new();
    for arch in [crate::engine::Arch::Hit, crate::engine::Arch::Conv] {
        let start = Instant::now();
        let mut pictures = Vec::with_capacity(n);
        for first in (0..n).step_by(50) {
            let count = 50.min(n - first);
            pictures.extend(engine.sample(
                SampleSource::Gan(arch),
                1_000_000 + first as u64,
                count,
            )?);
        }
        let samples_per_second = n as f64 / start.elapsed().as_secs_f64();
        let generated = features(&pictures)?;
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
