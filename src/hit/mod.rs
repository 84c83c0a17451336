//! HiT (Zhao et al. 2022): a transformer GAN generator without convolutions, behind
//! click-to-sample, and the convolutional baseline it is measured against.

pub mod augment;
pub mod blocks;
pub mod conv;
pub mod discriminator;
pub mod generator;
pub mod loss;
pub mod train;

use burn::module::Module;
use burn::prelude::*;

use conv::{ConvGenerator, ConvGeneratorConfig};
use generator::{GeneratorConfig, HitGenerator};

/// Which generator.
#[derive(Config, Debug, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// The transformer of Algorithm 1.
    Hit,
    /// The convolutional baseline.
    Conv,
}

impl Arch {
    /// Its model name in the models folder.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Hit => "hit",
            Arch::Conv => "conv",
        }
    }
}

/// Configuration of either generator.
#[derive(Config, Debug)]
pub struct SamplerConfig {
    pub arch: Arch,
    #[config(default = "GeneratorConfig::small()")]
    pub hit: GeneratorConfig,
    #[config(default = "ConvGeneratorConfig::new()")]
    pub conv: ConvGeneratorConfig,
}

impl SamplerConfig {
    /// Size of the latent code.
    pub fn latent(&self) -> usize {
        match self.arch {
            Arch::Hit => self.hit.latent,
            Arch::Conv => self.conv.latent,
        }
    }

    /// Builds the chosen generator with fresh weights.
    pub fn init(&self, device: &Device) -> Sampler {
        match self.arch {
            Arch::Hit => Sampler::Hit(self.hit.init(device)),
            Arch::Conv => Sampler::Conv(self.conv.init(device)),
        }
    }
}

/// HiT or the baseline, behind one call.
#[derive(Module, Debug)]
pub enum Sampler {
    Hit(HitGenerator),
    Conv(ConvGenerator),
}

impl Sampler {
    /// Pictures in [-1, 1] for latent codes.
    ///
    /// # Shapes
    /// - z: `[B, latent]` → `[B, 3, 64, 64]`
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let pictures = match self {
            Sampler::Hit(g) => g.forward(z),
            Sampler::Conv(g) => g.forward(z),
        };
        pictures.permute([0, 3, 1, 2])
    }
}

/// The latent code of `seed`: standard normal, the same on every machine (drawn with
/// a seeded host generator, not the device's).
pub fn latent(seed: u64, size: usize, device: &Device) -> Tensor<1> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Box-Muller: two uniforms make a standard normal.
    let values: Vec<f32> = (0..size)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    Tensor::from_floats(values.as_slice(), device)
}
