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

use std::path::PathBuf;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::prelude::*;
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::augment::AdaptiveAugment;
use super::discriminator::{Discriminator, DiscriminatorConfig};
use super::loss::{discriminator_loss, generator_loss, r1_penalty};
use super::{Sampler, SamplerConfig, latent};
use crate::data::convert::{images_to_tensor, tensor_to_images, tile};
use crate::data::faces::{augment, load_folder};
use crate::store;
use crate::training::{self, Destination, Run, RunError, TrainError, Trainee};

/// Everything a GAN run needs besides data.
#[derive(Config, Debug)]
pub struct HitTrainingConfig {
    /// The generator (HiT or the baseline).
    pub generator: SamplerConfig,
    #[config(default = "DiscriminatorConfig::new()")]
    pub discriminator: DiscriminatorConfig,
    #[config(default = 20000)]
    pub steps: usize,
    #[config(default = 16)]
    pub batch: usize,
    /// Adam's learning rate for the generator (the paper's).
    #[config(default = 1e-4)]
    pub lr: f64,
    /// Adam's learning rate for the discriminator: twice the generator's, a two
    /// time-scale rule (Heusel et al. 2017) so that it keeps up with the generator. At
    /// four times, with β1 = 0, its logits swung by ±0.5 from step to step in unison for
    /// real and generated faces.
    #[config(default = 2e-4)]
    pub d_lr: f64,
    /// R1 weight γ. 0.1, not the γ = 10 of the paper (and DESIGN): the gradient a
    /// discriminator needs to tell two pictures apart grows as their distance shrinks,
    /// so the same γ weighs ~16x more at 64x64 than at 256x256, and more again at a
    /// small batch (StyleGAN2-ADA's rule of thumb, 0.0002·side²/batch, gives 0.05 here).
    /// At γ = 10 both discriminators sat at chance (loss ≈ 2 ln 2) from step ~300 on
    /// and HiT's samples collapsed to one face.
    #[config(default = 0.1)]
    pub r1_gamma: f64,
    /// R1 every this many steps (lazy regularisation), scaled by it.
    #[config(default = 4)]
    pub r1_every: usize,
    /// Steps between checkpoints and sample grids (~10 minutes here).
    #[config(default = 250)]
    pub checkpoint_every: usize,
    #[config(default = 20)]
    pub log_every: usize,
    #[config(default = 31)]
    pub seed: u64,
}

/// Where a GAN run reads and writes.
#[derive(Debug, Clone)]
pub struct HitTrainingPaths {
    /// Training faces.
    pub train: PathBuf,
    pub to: Destination,
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
pub fn sample_grid(generator: &Sampler, latent_size: usize, device: &Device) -> RgbImage {
    let codes: Vec<Tensor<1>> = GRID_SEEDS.map(|s| latent(s, latent_size, device)).collect();
    tile(
        &tensor_to_images(generator.forward(Tensor::stack(codes, 0))),
        0,
    )
}

/// Trains (or resumes) a run and writes the generator to `paths.to`.
pub fn train(
    config: &HitTrainingConfig,
    paths: &HitTrainingPaths,
    device: &Device,
) -> Result<(), TrainError> {
    let faces = load_folder(&paths.train, 64)?;
    let (mut run, resume) = Run::open(&paths.to.run, config.steps)?;
    run.set_prefix(&paths.to.name);
    training::save_config(config, &paths.to.run)?;
    device.seed(config.seed);
    let mut g = Trainee {
        model: config.generator.init(device),
        optim: adam(),
    };
    let mut d: Trainee<Discriminator> = Trainee {
        model: config.discriminator.init(device),
        optim: adam(),
    };
    let name = &paths.to.name;
    let mut augment = AdaptiveAugment::default();
    let start = match (resume, &paths.to.warm_start) {
        (Some((dir, progress)), _) => {
            g = g.resume(&dir.join("generator"))?;
            d = d.resume(&dir.join("discriminator"))?;
            augment = load_augment(&dir.join(AUGMENT_FILE))?;
            progress.step
        }
        // Adam with β1 = 0 keeps no momentum, so restarting its second moments from
        // zero costs a few dozen steps of re-estimation, not the run.
        (None, Some(dir)) => {
            let critic = dir.join(format!("{}.bpk", discriminator_name(name)));
            d.model = store::load_weights(d.model, &critic)?;
            augment = load_augment(&dir.join(augment_name(name)))?;
            let step;
            (g, step) = g.warm_start(dir, name, &mut run)?;
            step
        }
        (None, None) => 0,
    };
    let size = config.generator.latent();
    let mut rng = StdRng::seed_from_u64(config.seed ^ (start as u64).wrapping_mul(0x9e37));
    for step in start..config.steps {
        // The discriminator.
        let real = real_batch(&faces, config.batch, &mut rng, device);
        let fake = g
            .model
            .forward(latents(config.batch, size, &mut rng, device))
            .detach();
        let real_logits = d.model.forward(augment.apply(real.clone(), &mut rng));
        augment.observe(&host(real_logits.clone()));
        let fake_logits = d.model.forward(augment.apply(fake, &mut rng));
        let mut loss = discriminator_loss(real_logits, fake_logits);
        if step % config.r1_every == 0 {
            let plain = d.model.forward(real.clone());
            let gamma = config.r1_gamma * config.r1_every as f64;
            loss = loss + r1_penalty(&d.model, real, plain, gamma);
        }
        let d_loss = d.step(config.d_lr, loss);
        // The generator, against the updated discriminator.
        let fake = g
            .model
            .forward(latents(config.batch, size, &mut rng, device));
        let logits = d.model.forward(augment.apply(fake, &mut rng));
        let g_loss = g.step(config.lr, generator_loss(logits));
        if (step + 1) % config.log_every == 0 {
            let losses = [
                ("d_loss", d_loss),
                ("g_loss", g_loss),
                ("augment_p", augment.p),
            ];
            run.log(step + 1, &losses)?;
        }
        if (step + 1) % config.checkpoint_every == 0 || step + 1 == config.steps {
            checkpoint(&run, (&g, &d, &augment), config, paths, step + 1, device)?;
        }
        run.tick();
    }
    run.finish();
    run.write_progress(name, start.max(config.steps))?;
    save_pair(&paths.to.out, name, config, (&g, &d, &augment))?;
    training::copy_progress(&paths.to.run, &paths.to.out, name)?;
    Ok(())
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

/// The networks of a run and its augmentation.
type Players<'a> = (
    &'a Trainee<Sampler>,
    &'a Trainee<Discriminator>,
    &'a AdaptiveAugment,
);

fn load_augment(path: &std::path::Path) -> Result<AdaptiveAugment, RunError> {
    AdaptiveAugment::load(path).map_err(training::io_error(path))
}

fn save_augment(augment: &AdaptiveAugment, path: &std::path::Path) -> Result<(), RunError> {
    augment.save(path).map_err(training::io_error(path))
}

/// A tensor's values on the host.
fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec().unwrap_or_default()
}

/// Writes the generator as `name` into `dir`, and its discriminator and augmentation
/// beside it, so a machine with only the written models can continue the run
/// (`--warm-start`).
fn save_pair(
    dir: &std::path::Path,
    name: &str,
    config: &HitTrainingConfig,
    (g, d, augment): Players,
) -> Result<(), TrainError> {
    store::save_model(dir, name, &config.generator, g.model.valid())?;
    let critic = discriminator_name(name);
    store::save_model(dir, &critic, &config.discriminator, d.model.valid())?;
    save_augment(augment, &dir.join(augment_name(name)))?;
    Ok(())
}

/// Saves both networks and their optimisers, the generator alone for `models/`, and
/// a sample grid.
fn checkpoint(
    run: &Run,
    (g, d, augment): Players,
    config: &HitTrainingConfig,
    paths: &HitTrainingPaths,
    step: usize,
    device: &Device,
) -> Result<(), TrainError> {
    run.checkpoint(step, |dir| {
        g.write_into(&dir.join("generator"))?;
        d.write_into(&dir.join("discriminator"))?;
        save_augment(augment, &dir.join(AUGMENT_FILE))
    })?;
    save_pair(run.dir(), &paths.to.name, config, (g, d, augment))?;
    run.write_progress(&paths.to.name, step)?;
    let grid = sample_grid(
        &g.model.valid(),
        config.generator.latent(),
        &device.clone().inner(),
    );
    let path = run
        .dir()
        .join("samples")
        .join(format!("step_{step:06}.png"));
    std::fs::create_dir_all(path.parent().unwrap_or(run.dir()))
        .and_then(|()| grid.save(&path).map_err(std::io::Error::other))
        .map_err(|e| TrainError::Image {
            path: path.clone(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::Arch;
    use crate::hit::conv::ConvGeneratorConfig;

    #[test]
    fn a_few_steps_run_and_keep_the_losses_finite() {
        let device = Device::flex().autodiff();
        device.seed(4);
        let config = SamplerConfig::new(Arch::Conv).with_conv(
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
        let grid = sample_grid(&g.model.valid(), 8, &Device::flex());
        assert_eq!(grid.dimensions(), (256, 256));
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
        let tiny = SamplerConfig::new(Arch::Conv).with_conv(
            ConvGeneratorConfig::new()
                .with_width(16)
                .with_min_width(8)
                .with_latent(8),
        );
        let config = |steps| {
            HitTrainingConfig::new(tiny.clone())
                .with_discriminator(DiscriminatorConfig::new().with_width(8).with_max_width(16))
                .with_steps(steps)
                .with_batch(2)
                .with_checkpoint_every(2)
        };
        let paths = |run: &str, warm_start: Option<PathBuf>| HitTrainingPaths {
            train: faces.clone(),
            to: Destination {
                run: root.join(run),
                out: root.join("models"),
                name: "conv".into(),
                warm_start,
            },
        };
        let device = Device::flex().autodiff();
        let weights = |name: &str| std::fs::read(root.join("models").join(name)).expect("weights");
        train(&config(2), &paths("run-a", None), &device).expect("first run");
        let (generator, critic) = (weights("conv.bpk"), weights("conv-discriminator.bpk"));
        assert!(root.join("models").join(augment_name("conv")).exists());
        // Another machine: no run folder, the written models only.
        let models = Some(root.join("models"));
        train(&config(2), &paths("run-b", models.clone()), &device).expect("nothing to do");
        assert_eq!(
            weights("conv.bpk"),
            generator,
            "no step left: the generator stays"
        );
        assert_eq!(weights("conv-discriminator.bpk"), critic);
        train(&config(3), &paths("run-c", models), &device).expect("one more step");
        assert_eq!(
            training::read_progress(&root.join("models"), "conv").step,
            3
        );
        assert_ne!(weights("conv.bpk"), generator);
        assert_ne!(weights("conv-discriminator.bpk"), critic);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
