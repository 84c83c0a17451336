//! Training the TS-VQGAN (Taming §3.1 with iLAT's local quantised fine-tuning).
//!
//! Stage 1 trains a plain VQGAN: L1 + perceptual + codebook loss, and from
//! `disc_start` on a patch discriminator with the non-saturating loss at a fixed
//! weight. Stage 2 (from `stage2_start`) draws a random free-form mask for half of
//! the steps, runs the leak-free encoder with it and decodes by Eq. 4, so the decoder
//! learns to join generated codes with kept continuous features. Codes that no
//! encoder output chose during `reseed_every` steps are re-seeded from the batch.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::softplus;
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::checkpoint::{State, fresh_state, load_state, save_state, warm_start};
use super::{DiscriminatorConfig, Vqgan, VqganConfig};
use crate::data::convert::{images_to_tensor, masks_to_tensor, tensor_to_images};
use crate::data::faces::{augment, load_folder};
use crate::data::masks::random_mask;
use crate::metrics;
use crate::nn::perceptual::Perceptual;
use crate::store;
use crate::training::{Run, TrainError, learning_rate, scalar};

/// Everything a VQGAN training run needs besides data.
#[derive(Config, Debug)]
pub struct VqganTrainingConfig {
    /// The model.
    pub model: VqganConfig,
    /// The discriminator.
    pub discriminator: DiscriminatorConfig,
    /// Total optimisation steps.
    #[config(default = 20000)]
    pub steps: usize,
    /// Images per step.
    #[config(default = 16)]
    pub batch: usize,
    /// Peak learning rate (Adam, β = (0.5, 0.9) as Taming).
    #[config(default = 2e-4)]
    pub lr: f64,
    /// Warm-up steps.
    #[config(default = 200)]
    pub warmup: usize,
    /// Weight of the perceptual term.
    #[config(default = 0.2)]
    pub perceptual_weight: f64,
    /// Weight of the adversarial term (iLAT's face model: 0.1).
    #[config(default = 0.1)]
    pub adversarial_weight: f64,
    /// Step from which the discriminator trains and its loss counts.
    #[config(default = 6000)]
    pub disc_start: usize,
    /// Step from which half of the steps use random masks and Eq. 4 (stage 2).
    #[config(default = 14000)]
    pub stage2_start: usize,
    /// Steps between dead-code re-seedings.
    #[config(default = 250)]
    pub reseed_every: usize,
    /// Steps between checkpoints (and held-out evaluations).
    #[config(default = 250)]
    pub checkpoint_every: usize,
    /// Steps between loss-log lines.
    #[config(default = 10)]
    pub log_every: usize,
    /// Seed of data order, augmentation and masks.
    #[config(default = 17)]
    pub seed: u64,
}

/// Where a run reads and writes.
#[derive(Debug, Clone)]
pub struct VqganTrainingPaths {
    /// Training images (64x64 faces).
    pub train: PathBuf,
    /// Held-out images for the periodic evaluation and the sample grid.
    pub test: PathBuf,
    /// The MobileNetV2 safetensors of the perceptual loss.
    pub mobilenet: PathBuf,
    /// The run folder (checkpoints, loss log, samples).
    pub run: PathBuf,
    /// Where the finished model is written (`vqgan.json` + `vqgan.bpk`).
    pub out: PathBuf,
    /// A trained model folder to start from when the run has no checkpoint (a fresh
    /// machine with only the committed model): its weights and progress are taken, the
    /// discriminator and optimiser moments start anew.
    pub warm_start: Option<PathBuf>,
}

/// Trains (or resumes) a run and writes the model to `paths.out`. Returns the last
/// held-out PSNR.
pub fn train(
    config: &VqganTrainingConfig,
    paths: &VqganTrainingPaths,
    device: &Device,
) -> Result<f64, TrainError> {
    let size = config.model.image_size as u32;
    let train_set = load_folder(&paths.train, size)?;
    let test_set = load_folder(&paths.test, size)?;
    let perceptual = Perceptual::load(&paths.mobilenet, device)?;
    let (mut run, resume) = Run::open(&paths.run, config.steps)?;
    run.set_prefix("vqgan");
    crate::training::save_config(config, &paths.run)?;
    let (mut state, start) = match (resume, &paths.warm_start) {
        (Some((dir, progress)), _) => (load_state(config, &dir, device)?, progress.step),
        (None, Some(dir)) => {
            let (state, progress) = warm_start(config, dir, device)?;
            run.set_resumed(progress);
            (state, progress.step)
        }
        (None, None) => (fresh_state(config, device), 0),
    };
    let mut rng = StdRng::seed_from_u64(config.seed ^ start as u64);
    let mut usage = vec![0usize; config.model.codebook_size];
    let mut psnr = f64::NAN;
    for step in start..config.steps {
        let lr = learning_rate(step, config.steps, config.warmup, config.lr, 0.1);
        let batch = sample_batch(&train_set, config, step, &mut rng, device);
        let (next, losses) = train_step(state, &batch, &perceptual, config, step, lr);
        state = next;
        count_usage(&mut usage, losses.indices);
        if (step + 1) % config.reseed_every == 0 {
            state.model = reseed_dead_codes(state.model, &usage, &batch, &mut rng);
            usage.iter_mut().for_each(|c| *c = 0);
        }
        if (step + 1) % config.log_every == 0 {
            let mut values = losses.values.clone();
            values.push(("lr", lr));
            run.log(step + 1, &values)?;
        }
        if (step + 1) % config.checkpoint_every == 0 || step + 1 == config.steps {
            psnr = evaluate_and_sample(&state.model.valid(), &test_set, &run, step + 1, device)?;
            run.log(step + 1, &[("test_psnr", psnr)])?;
            save_state(&state, config, &run, step + 1)?;
        }
        run.tick();
    }
    run.finish();
    store::save_model(&paths.out, "vqgan", &config.model, state.model.valid())?;
    Ok(psnr)
}

/// One step's inputs.
struct Batch {
    images: Tensor<4>,
    mask: Option<Tensor<4>>,
}

fn sample_batch(
    set: &[RgbImage],
    config: &VqganTrainingConfig,
    step: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Batch {
    let images: Vec<RgbImage> = (0..config.batch)
        .map(|_| augment(&set[rng.random_range(0..set.len())], 2, rng))
        .collect();
    let masked = step >= config.stage2_start && rng.random_bool(0.5);
    let mask = masked.then(|| {
        let masks: Vec<_> = (0..config.batch)
            .map(|_| random_mask(config.model.image_size as u32, 0.05, 0.6, rng))
            .collect();
        masks_to_tensor(&masks, device)
    });
    Batch {
        images: images_to_tensor(&images, device),
        mask,
    }
}

/// What a step reports.
struct StepLosses {
    values: Vec<(&'static str, f64)>,
    indices: Vec<i64>,
}

/// One generator step and (once started) one discriminator step.
fn train_step(
    state: State,
    batch: &Batch,
    perceptual: &Perceptual,
    config: &VqganTrainingConfig,
    step: usize,
    lr: f64,
) -> (State, StepLosses) {
    let State {
        model,
        disc,
        mut optim_g,
        mut optim_d,
    } = state;
    let adversarial = step >= config.disc_start;
    let out = model.forward(batch.images.clone(), batch.mask.clone());
    let l1 = (out.images.clone() - batch.images.clone()).abs().mean();
    let percept = perceptual.distance(out.images.clone(), batch.images.clone());
    let mut loss =
        l1.clone() + percept.clone() * config.perceptual_weight + out.quantized.loss.clone();
    let mut values = vec![
        ("l1", scalar(&l1)),
        ("perceptual", scalar(&percept)),
        ("codebook", scalar(&out.quantized.loss)),
    ];
    if adversarial {
        let g_adv = softplus(disc.forward(out.images.clone()).neg(), 1.0).mean();
        values.push(("g_adv", scalar(&g_adv)));
        loss = loss + g_adv * config.adversarial_weight;
    }
    let indices = out
        .quantized
        .indices
        .clone()
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .unwrap_or_default();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optim_g.step(lr, model, grads);
    let disc = if adversarial {
        let fake = out.images.detach();
        let d_loss = softplus(disc.forward(batch.images.clone()).neg(), 1.0).mean()
            + softplus(disc.forward(fake), 1.0).mean();
        values.push(("d_loss", scalar(&d_loss)));
        let grads = GradientsParams::from_grads(d_loss.backward(), &disc);
        optim_d.step(lr, disc, grads)
    } else {
        disc
    };
    (
        State {
            model,
            disc,
            optim_g,
            optim_d,
        },
        StepLosses { values, indices },
    )
}

fn count_usage(usage: &mut [usize], indices: Vec<i64>) {
    for i in indices {
        usage[i as usize] += 1;
    }
}

/// Re-seeds unused codes with encoder outputs of the current batch (plus a little
/// noise, so that two re-seeded codes never coincide).
fn reseed_dead_codes(model: Vqgan, usage: &[usize], batch: &Batch, rng: &mut StdRng) -> Vqgan {
    let dead: Vec<usize> = (0..usage.len()).filter(|&k| usage[k] == 0).collect();
    if dead.is_empty() {
        return model;
    }
    let (_, continuous) = model.encode(batch.images.clone().detach(), None);
    let [b, d, h, w] = continuous.dims();
    let rows = continuous
        .detach()
        .permute([0, 2, 3, 1])
        .reshape([b * h * w, d]);
    let device = rows.device();
    let picks: Vec<i64> = dead
        .iter()
        .map(|_| rng.random_range(0..(b * h * w) as i64))
        .collect();
    let picked = rows.select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(picks, [dead.len()]), &device),
    );
    let noise = Tensor::<2>::random(
        [dead.len(), d],
        burn::tensor::Distribution::Normal(0.0, 0.01),
        &device,
    );
    tracing::debug!("re-seeding {} dead codes", dead.len());
    Vqgan {
        quantizer: model.quantizer.reseed(&dead, picked + noise),
        ..model
    }
}

/// Held-out PSNR (whole images, every token quantised) and a sample grid: originals
/// on top, reconstructions below.
fn evaluate_and_sample(
    model: &Vqgan,
    test_set: &[RgbImage],
    run: &Run,
    step: usize,
    device: &Device,
) -> Result<f64, TrainError> {
    let device = device.clone().inner();
    let model = model.clone().fork(&device);
    let mut total = 0.0;
    let mut grid_pairs = Vec::new();
    for chunk in test_set.chunks(33) {
        let recon = tensor_to_images(model.forward(images_to_tensor(chunk, &device), None).images);
        for (a, b) in chunk.iter().zip(&recon) {
            total += metrics::psnr(a, b);
        }
        if grid_pairs.is_empty() {
            grid_pairs = chunk.iter().cloned().zip(recon).take(8).collect();
        }
    }
    let path = run
        .dir()
        .join("samples")
        .join(format!("step_{step:06}.png"));
    write_grid(&grid_pairs, &path)?;
    Ok(total / test_set.len().max(1) as f64)
}

fn write_grid(pairs: &[(RgbImage, RgbImage)], path: &Path) -> Result<(), TrainError> {
    let (originals, recons): (Vec<RgbImage>, Vec<RgbImage>) = pairs.iter().cloned().unzip();
    let grid = crate::data::convert::tile(&[originals, recons].concat(), pairs.len().max(1));
    let image_error = |reason: String| TrainError::Image {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| image_error(e.to_string()))?;
    }
    grid.save(path).map_err(|e| image_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few steps on one small batch lower the reconstruction loss (stage 2 and the
    /// discriminator included, so every term of the real step runs).
    #[test]
    fn a_few_steps_lower_the_loss() {
        let device = Device::flex().autodiff();
        let model = VqganConfig::new()
            .with_widths(vec![8, 16, 16])
            .with_codebook_size(32)
            .with_code_dim(8)
            .with_image_size(32);
        let config = VqganTrainingConfig::new(model, DiscriminatorConfig::new().with_width(8))
            .with_batch(4)
            .with_disc_start(0)
            .with_stage2_start(0)
            .with_lr(2e-3);
        let perceptual = Perceptual::load(
            &crate::paths::data_dir().join("nets/mobilenet_v2.safetensors"),
            &device,
        )
        .expect("run scripts/fetch-data.sh first");
        let mut rng = StdRng::seed_from_u64(1);
        let faces = vec![
            RgbImage::from_fn(32, 32, |x, y| image::Rgb([
                (x * 8) as u8,
                (y * 8) as u8,
                128
            ]));
            4
        ];
        let batch = sample_batch(&faces, &config, 0, &mut rng, &device);
        let mut state = fresh_state(&config, &device);
        let mut l1 = Vec::new();
        for step in 0..25 {
            let (next, losses) = train_step(state, &batch, &perceptual, &config, step, config.lr);
            state = next;
            l1.push(losses.values[0].1);
        }
        assert!(l1[24] < 0.7 * l1[0], "L1 went from {} to {}", l1[0], l1[24]);
    }
}
