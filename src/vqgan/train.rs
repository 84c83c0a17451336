//! Training the TS-VQGAN (Taming §3.1 with iLAT's local quantised fine-tuning).
//!
//! Stage 1 trains a plain VQGAN: L1 + perceptual + codebook loss, and from
//! `disc_start` on a patch discriminator with the hinge loss, its term weighted by
//! Taming's adaptive weight (Eq. 7). Stage 2 (from `stage2_start`) draws a random free-form mask for half of
//! the steps, runs the leak-free encoder with it and decodes by Eq. 4, so the decoder
//! learns to join generated codes with kept continuous features. Codes that no
//! encoder output chose during `reseed_every` steps are re-seeded from the batch.

use std::path::Path;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::activation::relu;
use image::RgbImage;
use rand::Rng;
use rand::rngs::StdRng;

use super::{Discriminator, DiscriminatorConfig, Vqgan, VqganConfig};
use crate::data::convert::{images_to_tensor, masks_to_tensor, tensor_to_images};
use crate::data::faces::{MAX_SHIFT, augment, load_folder};
use crate::data::masks::random_mask;
use crate::data::people::{HELD_OUT_CROPS, Part, People};
use crate::metrics;
use crate::nn::perceptual::Perceptual;
use crate::store;
use crate::training::{self, Destination, Logged, Run, Schedule, TrainError, Trainer, scalar};

/// Everything a VQGAN training run needs besides data.
#[derive(Config, Debug)]
pub struct VqganTrainingConfig {
    /// The model.
    pub model: VqganConfig,
    /// The discriminator.
    pub discriminator: DiscriminatorConfig,
    /// Steps, batch (images), learning rate (Adam, β = (0.5, 0.9) as Taming), seed.
    #[config(
        default = "Schedule::new().with_steps(20000).with_batch(16).with_lr(2e-4).with_seed(17)"
    )]
    pub schedule: Schedule,
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
    /// Side of the random square each training picture is cut to (0: the whole
    /// picture). The network is fully convolutional, so crops train the same weights at
    /// a fraction of a whole picture's cost; the held-out evaluation uses whole pictures.
    #[config(default = 0)]
    pub train_crop: usize,
    /// Fraction of the training pictures that are person crops (cut from the people's
    /// training frames as a repose cuts them) rather than faces: the pose models use
    /// the same tokenizer.
    #[config(default = 0.0)]
    pub people_fraction: f64,
}

/// Person crops made for a run that mixes people in (`people_fraction` > 0).
const PERSON_CROPS: usize = 2000;

/// Where a run reads.
#[derive(Debug, Clone)]
pub struct VqganTrainingData<'a> {
    /// Training images (faces).
    pub train: &'a Path,
    /// Held-out images for the periodic evaluation and the sample grid.
    pub test: &'a Path,
    /// The MobileNetV2 safetensors of the perceptual loss.
    pub mobilenet: &'a Path,
    /// The people's video frames and keypoints (read only when the run mixes people
    /// in).
    pub people: (&'a Path, &'a Path),
}

/// Trains (or resumes) a run and writes the model to `to`. Returns the last held-out
/// evaluation (PSNR).
pub fn train(
    config: &VqganTrainingConfig,
    data: &VqganTrainingData<'_>,
    to: &Destination,
    device: &Device,
) -> Result<Logged, TrainError> {
    let size = config.model.image_size as u32;
    if !(0.0..=1.0).contains(&config.people_fraction) {
        return Err(TrainError::Config(format!(
            "people_fraction is {}: a fraction of the pictures, 0 to 1",
            config.people_fraction
        )));
    }
    let (people, people_test) = if config.people_fraction > 0.0 {
        let (frames, keypoints) = data.people;
        let crops = |part, count| -> Result<_, TrainError> {
            Ok(People::load(frames, keypoints, part)?.target_crops(size, count))
        };
        (
            crops(Part::Train, PERSON_CROPS)?,
            crops(Part::Test, HELD_OUT_CROPS)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let trainer = VqganTrainer {
        train_set: load_folder(data.train, size)?,
        people,
        people_test,
        test_set: load_folder(data.test, size)?,
        perceptual: Perceptual::load(data.mobilenet, device)?,
        usage: vec![0; config.model.codebook_size],
        state: fresh_state(config, device),
        config,
        device: device.clone(),
    };
    training::fit(trainer, &config.schedule, to, config)
}

/// The networks and optimisers that a checkpoint holds.
struct State {
    model: Vqgan,
    disc: Discriminator,
    optim_g: burn::optim::ModuleOptimizer,
    optim_d: burn::optim::ModuleOptimizer,
}

fn fresh_state(config: &VqganTrainingConfig, device: &Device) -> State {
    device.seed(config.schedule.seed);
    State {
        model: config.model.init(device),
        disc: config.discriminator.init(device),
        optim_g: AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).init(),
        optim_d: AdamConfig::new().with_beta_1(0.5).with_beta_2(0.9).init(),
    }
}

/// A VQGAN run: the state, the data, and how often each code was chosen since the
/// last re-seeding.
struct VqganTrainer<'a> {
    config: &'a VqganTrainingConfig,
    state: State,
    train_set: Vec<RgbImage>,
    /// Person crops drawn `people_fraction` of the time (none: faces only).
    people: Vec<RgbImage>,
    test_set: Vec<RgbImage>,
    /// Held-out person crops, evaluated when people are mixed in.
    people_test: Vec<RgbImage>,
    perceptual: Perceptual,
    usage: Vec<usize>,
    device: Device,
}

impl Trainer for VqganTrainer<'_> {
    fn step(&mut self, step: usize, lr: f64, rng: &mut StdRng) -> Result<Logged, TrainError> {
        let config = self.config;
        let sets = (self.train_set.as_slice(), self.people.as_slice());
        let batch = sample_batch(sets, config, step, rng, &self.device);
        let losses = train_step(
            &mut self.state,
            &batch,
            &self.perceptual,
            (config, step, lr),
        )?;
        count_usage(&mut self.usage, losses.indices);
        if (step + 1).is_multiple_of(config.reseed_every) {
            let model = self.state.model.clone();
            self.state.model = reseed_dead_codes(model, &self.usage, &batch, rng);
            self.usage.iter_mut().for_each(|c| *c = 0);
        }
        Ok(losses.values)
    }

    fn evaluate(&mut self, step: usize, run: &Run) -> Result<Logged, TrainError> {
        let model = self.state.model.valid();
        let psnr = evaluate_and_sample(&model, &self.test_set, run, step, &self.device)?;
        let mut logged = vec![("test_psnr", psnr)];
        if !self.people_test.is_empty() {
            let recon = reconstruct(&model, &self.people_test, &self.device)?;
            logged.push(("people_psnr", mean_psnr(&self.people_test, &recon)));
        }
        Ok(logged)
    }

    fn write_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        let record = |module: ModuleRecord, name: &str| {
            store::save_record(&dir.join(format!("{name}.bpk")), module)
        };
        record(self.state.model.clone().into_record(), "model")?;
        record(self.state.disc.clone().into_record(), "disc")?;
        for (optim, name) in [
            (&self.state.optim_g, "optim_g"),
            (&self.state.optim_d, "optim_d"),
        ] {
            store::save_optimizer(optim, &dir.join(format!("{name}.bpk")))?;
        }
        Ok(())
    }

    fn resume(mut self, dir: &Path) -> Result<Self, TrainError> {
        let part = |name: &str| dir.join(format!("{name}.bpk"));
        let State {
            model,
            disc,
            optim_g,
            optim_d,
        } = self.state;
        self.state = State {
            model: store::load_weights(model, &part("model"))?,
            disc: store::load_weights(disc, &part("disc"))?,
            optim_g: optim_g.load_record(store::load_optimizer(&part("optim_g"))?),
            optim_d: optim_d.load_record(store::load_optimizer(&part("optim_d"))?),
        };
        Ok(self)
    }

    /// The exported tokenizer's weights (it must be of the configured architecture);
    /// the discriminator and the optimisers' moments start anew.
    fn warm_start(mut self, dir: &Path, name: &str) -> Result<Self, TrainError> {
        let (model, model_config) = Vqgan::load(dir, name, &self.device)?;
        if model_config.to_string() != self.config.model.to_string() {
            return Err(store::StoreError::Mismatch {
                weights: dir.join(format!("{name}.bpk")),
                config: dir.join(format!("{name}.json")),
                reason: "the training configuration describes another architecture".into(),
            }
            .into());
        }
        self.state.model = model;
        Ok(self)
    }

    fn export(&self, dir: &Path, name: &str) -> Result<(), TrainError> {
        store::save_model(dir, name, &self.config.model, self.state.model.valid())?;
        Ok(())
    }
}

/// One step's inputs.
struct Batch {
    images: Tensor<4>,
    mask: Option<Tensor<4>>,
}

fn sample_batch(
    (faces, people): (&[RgbImage], &[RgbImage]),
    config: &VqganTrainingConfig,
    step: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Batch {
    let crop = config.train_crop as u32;
    let images: Vec<RgbImage> = (0..config.schedule.batch)
        .map(|_| {
            // Faces-only runs draw nothing more, so their batches stay as they were.
            let set = if !people.is_empty() && rng.random_bool(config.people_fraction) {
                people
            } else {
                faces
            };
            let picture = augment(&set[rng.random_range(0..set.len())], MAX_SHIFT, rng);
            match crop {
                0 => picture,
                side => random_crop(&picture, side, config.model.factor() as u32, rng),
            }
        })
        .collect();
    let side = images.first().map_or(0, |p| p.width());
    let masked = step >= config.stage2_start && rng.random_bool(0.5);
    let mask = masked.then(|| {
        let masks: Vec<_> = (0..config.schedule.batch)
            .map(|_| random_mask(side, 0.05, 0.6, rng))
            .collect();
        masks_to_tensor(&masks, device)
    });
    Batch {
        images: images_to_tensor(&images, device),
        mask,
    }
}

/// A `side`-pixel square of `picture` at a random place on the `align` grid (the token
/// grid's, so a crop's tokens see their patches as a whole picture's do); the whole
/// picture when it is not larger.
fn random_crop(picture: &RgbImage, side: u32, align: u32, rng: &mut StdRng) -> RgbImage {
    let (w, h) = picture.dimensions();
    if side >= w.min(h) {
        return picture.clone();
    }
    let align = align.max(1);
    let x = rng.random_range(0..=(w - side) / align) * align;
    let y = rng.random_range(0..=(h - side) / align) * align;
    image::imageops::crop_imm(picture, x, y, side, side).to_image()
}

/// What a step reports.
struct StepLosses {
    values: Vec<(&'static str, f64)>,
    indices: Vec<i64>,
}

/// One generator step and (once started) one discriminator step.
///
/// Each loss's gradient at the decoded pixels is taken on a leaf cut from the model's
/// graph, so that the adaptive weight can compare them before they are summed, and
/// the model's own backward pass runs once, on `Σ pixels · (g_rec + λ·g_adv)` plus the
/// codebook loss: the same gradients as `L_rec + λ·L_adv + L_codebook`.
fn train_step(
    state: &mut State,
    batch: &Batch,
    perceptual: &Perceptual,
    (config, step, lr): (&VqganTrainingConfig, usize, f64),
) -> Result<StepLosses, TrainError> {
    let adversarial = step >= config.disc_start;
    let out = state
        .model
        .forward(batch.images.clone(), batch.mask.clone());
    let leaf = out.images.clone().detach().require_grad();
    let l1 = (leaf.clone() - batch.images.clone()).abs().mean();
    let percept = perceptual.distance(leaf.clone(), batch.images.clone());
    let mut pixel_grad = gradient(
        &leaf,
        l1.clone() + percept.clone() * config.perceptual_weight,
    )?;
    let mut values = vec![
        ("l1", scalar(&l1)),
        ("perceptual", scalar(&percept)),
        ("codebook", scalar(&out.quantized.loss)),
    ];
    if adversarial {
        let leaf = out.images.clone().detach().require_grad();
        let g_adv = state.disc.forward(leaf.clone()).mean().neg();
        let adv_grad = gradient(&leaf, g_adv.clone())?;
        let decoder = &state.model.decoder;
        let weight = config.adversarial_weight
            * adaptive_weight(
                decoder.output_gradient_norm(out.features.clone(), pixel_grad.clone())?,
                decoder.output_gradient_norm(out.features.clone(), adv_grad.clone())?,
            );
        values.push(("g_adv", scalar(&g_adv)));
        values.push(("adv_weight", weight));
        pixel_grad = pixel_grad + adv_grad * weight;
    }
    let indices = out.quantized.indices.clone().try_into_vec_as::<i64>()?;
    let surrogate = (out.images.clone() * pixel_grad.autodiff()).sum() + out.quantized.loss;
    let grads = GradientsParams::from_grads(surrogate.backward(), &state.model);
    state.model = state.optim_g.step(lr, state.model.clone(), grads);
    if adversarial {
        let real = state.disc.forward(batch.images.clone());
        let fake = state.disc.forward(out.images.detach());
        let d_loss = hinge(real, fake);
        values.push(("d_loss", scalar(&d_loss)));
        let grads = GradientsParams::from_grads(d_loss.backward(), &state.disc);
        state.disc = state.optim_d.step(lr, state.disc.clone(), grads);
    }
    Ok(StepLosses { values, indices })
}

/// The gradient of `loss` at `leaf`, a tensor cut from its graph.
fn gradient(leaf: &Tensor<4>, loss: Tensor<1>) -> Result<Tensor<4>, TrainError> {
    let grads = loss.backward();
    leaf.grad(&grads)
        .ok_or_else(|| TrainError::Config("a loss does not depend on the decoded pixels".into()))
}

/// Taming's Eq. 7: `λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_GAN‖ + δ)`, clamped to
/// [0, 10⁴] as Taming's code does: the adversarial term pulls on the decoder's last
/// layer as hard as the reconstruction does, whatever the two losses' scales.
fn adaptive_weight(rec_norm: f64, adv_norm: f64) -> f64 {
    (rec_norm / (adv_norm + 1e-4)).clamp(0.0, 1e4)
}

/// The discriminator's hinge loss (Taming §3.1): `½·(E[max(0, 1 − D(real))] +
/// E[max(0, 1 + D(fake))])` over the patch logits.
fn hinge(real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let real = relu(real.neg() + 1.0).mean();
    let fake = relu(fake + 1.0).mean();
    (real + fake) * 0.5
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
    let recon = reconstruct(model, test_set, device)?;
    let pairs: Vec<(RgbImage, RgbImage)> = test_set
        .iter()
        .cloned()
        .zip(recon.iter().cloned())
        .take(8)
        .collect();
    let path = run
        .dir()
        .join("samples")
        .join(format!("step_{step:06}.png"));
    write_grid(&pairs, &path)?;
    Ok(mean_psnr(test_set, &recon))
}

/// The model's reconstructions of `images` (every token quantised).
fn reconstruct(
    model: &Vqgan,
    images: &[RgbImage],
    device: &Device,
) -> Result<Vec<RgbImage>, TrainError> {
    let device = device.clone().inner();
    let model = model.clone().fork(&device);
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(33) {
        let decoded = model.forward(images_to_tensor(chunk, &device), None).images;
        out.extend(tensor_to_images(decoded)?);
    }
    Ok(out)
}

/// Mean PSNR of reconstructions against their originals.
fn mean_psnr(originals: &[RgbImage], reconstructions: &[RgbImage]) -> f64 {
    let total: f64 = originals
        .iter()
        .zip(reconstructions)
        .map(|(a, b)| metrics::psnr(a, b))
        .sum();
    total / originals.len().max(1) as f64
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
        let model = VqganConfig::tiny(32);
        let config = VqganTrainingConfig::new(model, DiscriminatorConfig::new().with_width(8))
            .with_schedule(Schedule::new().with_batch(4).with_lr(2e-3))
            .with_disc_start(0)
            .with_stage2_start(0);
        let perceptual = Perceptual::load(&crate::paths::Data::default().mobilenet(), &device)
            .expect("run scripts/fetch-data.sh first");
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(1);
        let faces = vec![
            RgbImage::from_fn(32, 32, |x, y| image::Rgb([
                (x * 8) as u8,
                (y * 8) as u8,
                128
            ]));
            4
        ];
        let batch = sample_batch((&faces, &[]), &config, 0, &mut rng, &device);
        let mut state = fresh_state(&config, &device);
        let mut l1 = Vec::new();
        let mut weights = Vec::new();
        for step in 0..25 {
            let losses =
                train_step(&mut state, &batch, &perceptual, (&config, step, 2e-3)).expect("a step");
            l1.push(losses.values[0].1);
            weights.extend(
                losses
                    .values
                    .iter()
                    .filter(|(k, _)| *k == "adv_weight")
                    .map(|v| v.1),
            );
        }
        assert!(l1[24] < 0.7 * l1[0], "L1 went from {} to {}", l1[0], l1[24]);
        assert_eq!(weights.len(), 25);
        assert!(
            weights.iter().all(|w| w.is_finite() && *w > 0.0),
            "{weights:?}"
        );
    }

    #[test]
    fn the_hinge_loss_vanishes_for_a_confident_discriminator_only() {
        let device = Device::flex();
        let map = |v: f32| Tensor::<4>::full([1, 1, 2, 2], v, &device);
        let value = |real: f32, fake: f32| hinge(map(real), map(fake)).into_scalar::<f32>();
        assert_eq!(value(1.5, -1.5), 0.0);
        assert!((value(0.0, 0.0) - 1.0).abs() < 1e-6);
        assert!((value(-1.0, 1.0) - 2.0).abs() < 1e-6);
        assert_eq!(adaptive_weight(2.0, 0.0), 1e4, "clamped");
        assert!((adaptive_weight(2.0, 1.0) - 2.0).abs() < 1e-3);
    }

    #[test]
    fn warm_start_takes_the_weights_and_refuses_another_architecture() {
        let device = Device::flex();
        let model = VqganConfig::new()
            .with_widths(vec![8, 16, 16])
            .with_codebook_size(32)
            .with_code_dim(8);
        let config = VqganTrainingConfig::new(model.clone(), DiscriminatorConfig::new());
        let dir = std::env::temp_dir().join(format!("tessera-vqgan-warm-{}", std::process::id()));
        store::save_model(&dir, "vqgan", &model, model.init(&device)).expect("save");
        let trainer = |config| VqganTrainer {
            config,
            state: fresh_state(config, &device),
            train_set: Vec::new(),
            people: Vec::new(),
            people_test: Vec::new(),
            test_set: Vec::new(),
            perceptual: Perceptual::load(&crate::paths::Data::default().mobilenet(), &device)
                .expect("run scripts/fetch-data.sh first"),
            usage: Vec::new(),
            device: device.clone(),
        };
        let warm = trainer(&config)
            .warm_start(&dir, "vqgan")
            .expect("warm start");
        let (stored, _) = Vqgan::load(&dir, "vqgan", &device).expect("load");
        let images = Tensor::<4>::ones([1, 3, 64, 64], &device);
        assert_eq!(
            warm.state
                .model
                .forward(images.clone(), None)
                .images
                .into_data(),
            stored.forward(images, None).images.into_data(),
            "the warm start has the stored weights"
        );
        let other = VqganTrainingConfig::new(model.with_code_dim(4), DiscriminatorConfig::new());
        assert!(trainer(&other).warm_start(&dir, "vqgan").is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn crops_are_squares_on_the_token_grid() {
        let picture = RgbImage::from_fn(128, 128, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(3);
        for _ in 0..20 {
            let crop = random_crop(&picture, 64, 8, &mut rng);
            assert_eq!(crop.dimensions(), (64, 64));
            let corner = crop.get_pixel(0, 0).0;
            assert_eq!((corner[0] % 8, corner[1] % 8), (0, 0), "{corner:?}");
            assert!(corner[0] <= 64 && corner[1] <= 64);
        }
        assert_eq!(random_crop(&picture, 256, 8, &mut rng), picture);
    }

    #[test]
    fn a_people_fraction_mixes_person_crops_into_the_batches() {
        let device = Device::flex();
        let model = VqganConfig::new()
            .with_widths(vec![8, 16])
            .with_image_size(16);
        let mut config = VqganTrainingConfig::new(model, DiscriminatorConfig::new());
        config.schedule.batch = 64;
        let faces = vec![RgbImage::from_pixel(16, 16, image::Rgb([255, 0, 0]))];
        let people = vec![RgbImage::from_pixel(16, 16, image::Rgb([0, 0, 255]))];
        let blue_share = |config: &VqganTrainingConfig, people: &[RgbImage]| {
            let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(9);
            let batch = sample_batch((&faces, people), config, 0, &mut rng, &device);
            let blue: Vec<f32> = batch
                .images
                .narrow(1, 2, 1)
                .mean_dim(2)
                .mean_dim(3)
                .try_into_vec_as()
                .expect("read");
            blue.iter().filter(|&&b| b > 0.0).count() as f64 / blue.len() as f64
        };
        assert_eq!(blue_share(&config, &people), 0.0, "no fraction, no people");
        config.people_fraction = 0.5;
        let share = blue_share(&config, &people);
        assert!((0.3..0.7).contains(&share), "{share}");
        assert_eq!(blue_share(&config, &[]), 0.0, "no crops, faces only");
    }
}
