//! Training a generator against the discriminator (`tessera train hit [--arch
//! hit|conv]`, App. A.4): per step, the discriminator learns to tell augmented real
//! faces from augmented generated ones (non-saturating logistic loss, R1 on the real
//! ones every few steps, scaled up to match), then the generator learns to fool it.
//! Both use Adam with β = (0, 0.99); how often pictures are augmented adapts to the
//! discriminator's overfitting. Resumable checkpoints hold both networks, their
//! optimisers and the augmentation probability; a grid of fixed-seed samples is
//! written every so often. The discriminator and the probability are written beside
//! the generator (`NAME-discriminator`, `NAME-augment.json`), so a run can also
//! continue from the committed models.

use std::path::Path;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::prelude::*;
use image::RgbImage;
use rand::Rng;
use rand::rngs::StdRng;

use super::augment::AdaptiveAugment;
use super::discriminator::{Discriminator, DiscriminatorConfig};
use super::loss::{discriminator_loss, generator_loss, r1_penalty};
use super::{GanGenerator, GanGeneratorConfig, latent};
use crate::data::convert::{images_to_tensor, tensor_to_images, tile};
use crate::data::faces::{augment, load_folder};
use crate::store;
use crate::training::{
    self, Destination, Logged, Run, RunError, Schedule, TrainError, Trainee, Trainer,
};

/// Everything a GAN run needs besides data.
#[derive(Config, Debug)]
pub struct HitTrainingConfig {
    /// The generator (HiT or the baseline).
    pub generator: GanGeneratorConfig,
    #[config(default = "DiscriminatorConfig::new()")]
    pub discriminator: DiscriminatorConfig,
    /// Steps, batch, the generator's learning rate (the paper's 1e-4, constant: no
    /// warm-up, no decay), checkpoints every 250 steps, seed.
    #[config(default = "Schedule::new()
        .with_steps(20000)
        .with_batch(16)
        .with_lr(1e-4)
        .with_warmup(0)
        .with_lr_floor(1.0)
        .with_log_every(20)
        .with_seed(31)")]
    pub schedule: Schedule,
    /// Adam's learning rate for the discriminator: twice the generator's, a two
    /// time-scale rule (Heusel et al. 2017) so that it keeps up with the generator. At
    /// four times, with β1 = 0, its logits swung from step to step in unison for
    /// real and generated faces.
    #[config(default = 2e-4)]
    pub d_lr: f64,
    /// R1 weight γ. 0.1, not the paper's γ = 10: the gradient a discriminator needs to
    /// tell two pictures apart grows as their distance shrinks, so the same γ weighs
    /// ~16x more at 64x64 than at 256x256, and more again at a small batch
    /// (StyleGAN2-ADA's rule of thumb, 0.0002·side²/batch, gives 0.05 here). At γ = 10
    /// both discriminators sat at chance (loss ≈ 2 ln 2) and HiT's samples collapsed
    /// to one face.
    #[config(default = 0.1)]
    pub r1_gamma: f64,
    /// R1 every this many steps (lazy regularisation), scaled by it.
    #[config(default = 4)]
    pub r1_every: usize,
}

/// Seeds of the pictures in every sample grid.
const GRID_SEEDS: std::ops::Range<u64> = 0..16;

fn adam() -> burn::optim::ModuleOptimizer {
    AdamConfig::new().with_beta_1(0.0).with_beta_2(0.99).init()
}

/// Random latent codes `[B, latent]`.
fn latents(batch: usize, size: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
    let codes: Vec<Tensor<1>> = (0..batch)
        .map(|_| latent(rng.random(), size, device))
        .collect();
    Tensor::stack(codes, 0)
}

/// A batch of real faces, flipped and shifted, as `[B, 3, H, W]` in [-1, 1].
fn real_batch(faces: &[RgbImage], batch: usize, rng: &mut StdRng, device: &Device) -> Tensor<4> {
    let picked: Vec<RgbImage> = (0..batch)
        .map(|_| augment(&faces[rng.random_range(0..faces.len())], 2, rng))
        .collect();
    images_to_tensor(&picked, device)
}

/// The fixed-seed samples of a generator, as a square grid.
pub fn sample_grid(
    generator: &GanGenerator,
    latent_size: usize,
    device: &Device,
) -> Result<RgbImage, TrainError> {
    let codes: Vec<Tensor<1>> = GRID_SEEDS.map(|s| latent(s, latent_size, device)).collect();
    let pictures = tensor_to_images(generator.forward(Tensor::stack(codes, 0)))?;
    Ok(tile(&pictures, 0))
}

/// Trains (or resumes) a run on the faces in `faces` (at the generator's side) and
/// writes the generator to `to` (its discriminator and augmentation beside it);
/// returns the last evaluation. With
/// `grow_from`, a folder holding this generator trained at half the side, or at this
/// side with less attention (`NAME`, `NAME-discriminator`), a run without a checkpoint
/// starts from those networks grown instead of from scratch.
pub fn train(
    config: &HitTrainingConfig,
    faces: &Path,
    grow_from: Option<&Path>,
    to: &Destination,
    device: &Device,
) -> Result<Logged, TrainError> {
    let faces = load_folder(faces, config.generator.side() as u32)?;
    device.seed(config.schedule.seed);
    let (generator, discriminator) = (
        config.generator.init(device),
        config.discriminator.init(device),
    );
    let (generator, discriminator) = match grow_from {
        Some(dir) => grown(dir, &to.name, config, (generator, discriminator), device)?,
        None => (generator, discriminator),
    };
    let trainer = GanTrainer {
        g: Trainee {
            model: generator,
            optim: adam(),
        },
        d: Trainee {
            model: discriminator,
            optim: adam(),
        },
        augment: AdaptiveAugment::default(),
        faces,
        config,
        device: device.clone(),
    };
    training::fit(trainer, &config.schedule, to, config)
}

/// The generator `name` and its discriminator in `dir`, grown into the fresh
/// networks `larger` of `config`: both by one resolution level, or the generator by
/// attention at the same side (the discriminator then as it was, of `config`'s
/// architecture).
fn grown(
    dir: &Path,
    name: &str,
    config: &HitTrainingConfig,
    larger: (GanGenerator, Discriminator),
    device: &Device,
) -> Result<(GanGenerator, Discriminator), TrainError> {
    let (generator, _) =
        store::load_model(dir, name, device, |c: &GanGeneratorConfig, d| c.init(d))?;
    let critic = discriminator_name(name);
    let (discriminator, critic_config) =
        store::load_model(dir, &critic, device, |c: &DiscriminatorConfig, d| c.init(d))?;
    let mismatch = |what: &str| {
        TrainError::Config(format!(
            "{what} in {} is neither this run's at half the side nor this run's with less attention: grow from the same architecture",
            dir.display()
        ))
    };
    if let Some(generator) = generator.clone().grow(larger.0.clone()) {
        let discriminator = discriminator
            .grow(larger.1)
            .ok_or_else(|| mismatch(&critic))?;
        return Ok((generator, discriminator));
    }
    let generator = generator.attend(larger.0).ok_or_else(|| mismatch(name))?;
    if critic_config.to_string() != config.discriminator.to_string() {
        return Err(mismatch(&critic));
    }
    Ok((generator, discriminator))
}

/// A GAN run: both players, the augmentation and the faces.
struct GanTrainer<'a> {
    g: Trainee<GanGenerator>,
    d: Trainee<Discriminator>,
    augment: AdaptiveAugment,
    faces: Vec<RgbImage>,
    config: &'a HitTrainingConfig,
    device: Device,
}

impl Trainer for GanTrainer<'_> {
    /// The discriminator learns from a real and a generated batch, then the generator
    /// learns to fool the updated discriminator.
    fn step(&mut self, step: usize, lr: f64, rng: &mut StdRng) -> Result<Logged, TrainError> {
        let (config, device) = (self.config, &self.device);
        let (batch, size) = (config.schedule.batch, config.generator.latent());
        let real = real_batch(&self.faces, batch, rng, device);
        let fake = self
            .g
            .model
            .forward(latents(batch, size, rng, device))
            .detach();
        let real_logits = self.d.model.forward(self.augment.apply(real.clone(), rng));
        self.augment
            .observe(&real_logits.clone().try_into_vec_as::<f32>()?);
        let fake_logits = self.d.model.forward(self.augment.apply(fake, rng));
        let mut loss = discriminator_loss(real_logits, fake_logits);
        if step.is_multiple_of(config.r1_every) {
            let plain = self.d.model.forward(real.clone());
            let gamma = config.r1_gamma * config.r1_every as f64;
            loss = loss + r1_penalty(&self.d.model, real, plain, gamma);
        }
        // The discriminator's rate follows the generator's schedule.
        let d_loss = self.d.step(config.d_lr * (lr / config.schedule.lr), loss);
        let fake = self.g.model.forward(latents(batch, size, rng, device));
        let logits = self.d.model.forward(self.augment.apply(fake, rng));
        let g_loss = self.g.step(lr, generator_loss(logits));
        Ok(vec![
            ("d_loss", d_loss),
            ("g_loss", g_loss),
            ("augment_p", self.augment.p),
        ])
    }

    /// A grid of fixed-seed samples into the run folder.
    fn evaluate(&mut self, step: usize, run: &Run) -> Result<Logged, TrainError> {
        let device = self.device.clone().inner();
        let grid = sample_grid(
            &self.g.model.valid(),
            self.config.generator.latent(),
            &device,
        )?;
        let path = run
            .dir()
            .join("samples")
            .join(format!("step_{step:06}.png"));
        std::fs::create_dir_all(path.parent().unwrap_or(run.dir()))
            .and_then(|()| grid.save(&path).map_err(std::io::Error::other))
            .map_err(|e| TrainError::Image {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Logged::new())
    }

    fn write_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        self.g.write_into(&dir.join("generator"))?;
        self.d.write_into(&dir.join("discriminator"))?;
        Ok(save_augment(&self.augment, &dir.join(AUGMENT_FILE))?)
    }

    fn resume(self, dir: &Path) -> Result<Self, TrainError> {
        Ok(Self {
            g: self.g.resume(&dir.join("generator"))?,
            d: self.d.resume(&dir.join("discriminator"))?,
            augment: load_augment(&dir.join(AUGMENT_FILE))?,
            ..self
        })
    }

    /// Both players and the augmentation from the exported models. Adam with β1 = 0
    /// keeps no momentum, so restarting its second moments from zero costs a few
    /// dozen steps of re-estimation, not the run.
    fn warm_start(self, dir: &Path, name: &str) -> Result<Self, TrainError> {
        let critic = dir.join(format!("{}.bpk", discriminator_name(name)));
        let d = Trainee {
            model: store::load_weights(self.d.model, &critic)?,
            ..self.d
        };
        Ok(Self {
            augment: load_augment(&dir.join(augment_name(name)))?,
            g: self.g.warm_start(dir, name)?,
            d,
            ..self
        })
    }

    /// The generator as `name`, and its discriminator and augmentation beside it, so
    /// a machine with only the written models can continue the run.
    fn export(&self, dir: &Path, name: &str) -> Result<(), TrainError> {
        store::save_model(dir, name, &self.config.generator, self.g.model.valid())?;
        let critic = discriminator_name(name);
        store::save_model(
            dir,
            &critic,
            &self.config.discriminator,
            self.d.model.valid(),
        )?;
        save_augment(&self.augment, &dir.join(augment_name(name)))?;
        Ok(())
    }
}

/// The name the discriminator of generator `name` is written under.
fn discriminator_name(name: &str) -> String {
    format!("{name}-discriminator")
}

/// The file the augmentation probability of generator `name` is written to.
fn augment_name(name: &str) -> String {
    format!("{name}-augment.json")
}

/// The augmentation probability's file in a checkpoint folder.
const AUGMENT_FILE: &str = "augment.json";

fn load_augment(path: &Path) -> Result<AdaptiveAugment, RunError> {
    AdaptiveAugment::load(path).map_err(training::io_error(path))
}

fn save_augment(augment: &AdaptiveAugment, path: &Path) -> Result<(), RunError> {
    augment.save(path).map_err(training::io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::Arch;
    use crate::hit::conv::ConvGeneratorConfig;
    use rand::SeedableRng;
    use std::path::PathBuf;

    #[test]
    fn a_few_steps_run_and_keep_the_losses_finite() {
        let device = Device::flex().autodiff();
        device.seed(4);
        let config = GanGeneratorConfig::new(Arch::Conv).with_conv(
            ConvGeneratorConfig::new()
                .with_width(16)
                .with_min_width(8)
                .with_latent(8),
        );
        let mut g = Trainee {
            model: config.init(&device),
            optim: adam(),
        };
        let mut d = Trainee {
            model: DiscriminatorConfig::new()
                .with_width(8)
                .with_max_width(16)
                .init(&device),
            optim: adam(),
        };
        let faces: Vec<RgbImage> = (0..4)
            .map(|i| {
                RgbImage::from_fn(64, 64, |x, y| {
                    image::Rgb([x as u8 * 4, y as u8 * 4, i * 60])
                })
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..3 {
            let real = real_batch(&faces, 2, &mut rng, &device);
            let fake = g.model.forward(latents(2, 8, &mut rng, &device)).detach();
            let logits_real = d.model.forward(real.clone());
            let loss = discriminator_loss(logits_real.clone(), d.model.forward(fake))
                + r1_penalty(&d.model, real, logits_real, 10.0);
            assert!(d.step(1e-4, loss).is_finite());
            let fake = g.model.forward(latents(2, 8, &mut rng, &device));
            assert!(
                g.step(1e-4, generator_loss(d.model.forward(fake)))
                    .is_finite()
            );
        }
        let grid = sample_grid(&g.model.valid(), 8, &Device::flex()).expect("a grid");
        assert_eq!(grid.dimensions(), (256, 256));
    }

    fn load_conv(dir: &Path) -> GanGenerator {
        store::load_model(dir, "conv", &Device::flex(), |c: &GanGeneratorConfig, d| {
            c.init(d)
        })
        .expect("the written generator")
        .0
    }

    #[test]
    fn a_run_continues_from_the_written_generator_and_discriminator() {
        let root = std::env::temp_dir().join(format!("tessera-gan-warm-{}", std::process::id()));
        let faces = root.join("faces");
        std::fs::create_dir_all(&faces).expect("faces folder");
        for i in 0..3u8 {
            RgbImage::from_fn(64, 64, |x, y| {
                image::Rgb([x as u8 * 4, y as u8 * 4, i * 80])
            })
            .save(faces.join(format!("{i}.png")))
            .expect("face");
        }
        let tiny = GanGeneratorConfig::new(Arch::Conv).with_conv(
            ConvGeneratorConfig::new()
                .with_width(16)
                .with_min_width(8)
                .with_latent(8),
        );
        let config = |steps| {
            HitTrainingConfig::new(tiny.clone())
                .with_discriminator(DiscriminatorConfig::new().with_width(8).with_max_width(16))
                .with_schedule(
                    Schedule::new()
                        .with_steps(steps)
                        .with_batch(2)
                        .with_checkpoint_every(2)
                        .with_warmup(0)
                        .with_lr_floor(1.0)
                        .with_lr(1e-4),
                )
        };
        let to = |run: &str, warm_start: Option<PathBuf>| Destination {
            run: root.join(run),
            out: root.join("models"),
            name: "conv".into(),
            warm_start,
            stop_at: None,
            evaluate_only: false,
        };
        let device = Device::flex().autodiff();
        let weights = |name: &str| std::fs::read(root.join("models").join(name)).expect("weights");
        train(&config(2), &faces, None, &to("run-a", None), &device).expect("first run");
        let (generator, critic) = (weights("conv.bpk"), weights("conv-discriminator.bpk"));
        assert!(root.join("models").join(augment_name("conv")).exists());
        // Another machine: no run folder, the written models only.
        let models = Some(root.join("models"));
        train(
            &config(2),
            &faces,
            None,
            &to("run-b", models.clone()),
            &device,
        )
        .expect("nothing to do");
        assert_eq!(
            weights("conv.bpk"),
            generator,
            "no step left: the generator stays"
        );
        assert_eq!(weights("conv-discriminator.bpk"), critic);
        train(&config(3), &faces, None, &to("run-c", models), &device).expect("one more step");
        assert_eq!(
            training::read_progress(&root.join("models"), "conv")
                .expect("progress")
                .step,
            3
        );
        assert_ne!(weights("conv.bpk"), generator);
        assert_ne!(weights("conv-discriminator.bpk"), critic);
        // Growing by one level starts from these networks; the same size is refused.
        let larger = |ups: usize, blocks: usize| {
            let mut grown = config(1);
            grown.generator.conv.ups = ups;
            grown.discriminator = DiscriminatorConfig::new()
                .with_width(4)
                .with_max_width(16)
                .with_blocks(blocks);
            grown
        };
        let models = root.join("models");
        let same = train(
            &larger(4, 5),
            &faces,
            Some(&models),
            &to("run-d", None),
            &device,
        );
        assert!(matches!(same, Err(TrainError::Config(_))), "{same:?}");
        train(
            &larger(5, 5),
            &faces,
            Some(&models),
            &to("run-e", None),
            &device,
        )
        .expect("a grown run");
        assert_eq!(
            sample_grid(&load_conv(&models), 8, &Device::flex())
                .expect("a grid")
                .dimensions(),
            (512, 512),
            "sixteen 128 px pictures"
        );
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
