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
use generator::{HitGenerator, HitGeneratorConfig};

/// Which generator.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
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
pub struct GanGeneratorConfig {
    pub arch: Arch,
    #[config(default = "HitGeneratorConfig::small()")]
    pub hit: HitGeneratorConfig,
    #[config(default = "ConvGeneratorConfig::new()")]
    pub conv: ConvGeneratorConfig,
}

impl GanGeneratorConfig {
    /// Either generator sized for this CPU at `side`.
    pub fn at(arch: Arch, side: usize) -> Self {
        Self::new(arch)
            .with_hit(HitGeneratorConfig::small_at(side))
            .with_conv(ConvGeneratorConfig::at(side))
    }

    /// Side of the pictures the chosen generator makes.
    pub fn side(&self) -> usize {
        match self.arch {
            Arch::Hit => self.hit.side(),
            Arch::Conv => self.conv.side(),
        }
    }

    /// Size of the latent code.
    pub fn latent(&self) -> usize {
        match self.arch {
            Arch::Hit => self.hit.latent,
            Arch::Conv => self.conv.latent,
        }
    }

    /// Builds the chosen generator with fresh weights.
    pub fn init(&self, device: &Device) -> GanGenerator {
        match self.arch {
            Arch::Hit => GanGenerator::Hit(self.hit.init(device)),
            Arch::Conv => GanGenerator::Conv(self.conv.init(device)),
        }
    }
}

/// HiT or the baseline, behind one call.
#[derive(Module, Debug)]
pub enum GanGenerator {
    Hit(HitGenerator),
    Conv(ConvGenerator),
}

impl GanGenerator {
    /// This generator grown by one resolution level into `larger` (a fresh generator
    /// of the same kind at twice the side); `None` when `larger` is not that.
    pub fn grow(self, larger: GanGenerator) -> Option<GanGenerator> {
        match (self, larger) {
            (GanGenerator::Hit(g), GanGenerator::Hit(l)) => g.grow(l).map(GanGenerator::Hit),
            (GanGenerator::Conv(g), GanGenerator::Conv(l)) => g.grow(l).map(GanGenerator::Conv),
            _ => None,
        }
    }

    /// This generator with attention added where `larger` (HiT of the same stages)
    /// attends and it does not, drawing what it drew ([`HitGenerator::attend`]);
    /// `None` for anything else.
    pub fn attend(self, larger: GanGenerator) -> Option<GanGenerator> {
        match (self, larger) {
            (GanGenerator::Hit(g), GanGenerator::Hit(l)) => g.attend(l).map(GanGenerator::Hit),
            _ => None,
        }
    }

    /// Pictures in [-1, 1] for latent codes.
    ///
    /// # Shapes
    /// - z: `[B, latent]` → `[B, 3, side, side]`
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let pictures = match self {
            GanGenerator::Hit(g) => g.forward(z),
            GanGenerator::Conv(g) => g.forward(z),
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

/// `steps` latent codes on the great circle from `a` to `b`, both included (`[steps,
/// latent]`): slerp keeps every code at the norm the generator was trained on, where a
/// straight line would pass through codes of smaller norm than any it has seen.
pub fn slerp(a: Tensor<1>, b: Tensor<1>, steps: usize) -> Tensor<2> {
    let dot = (a.clone() * b.clone()).sum().into_scalar::<f32>();
    let norms = (a.clone().powi_scalar(2).sum().into_scalar::<f32>()
        * b.clone().powi_scalar(2).sum().into_scalar::<f32>())
    .sqrt()
    .max(f32::EPSILON);
    let omega = (dot / norms).clamp(-1.0, 1.0).acos();
    let codes: Vec<Tensor<1>> = (0..steps)
        .map(|i| {
            let t = i as f32 / (steps - 1).max(1) as f32;
            let (wa, wb) = if omega.abs() < 1e-4 {
                (1.0 - t, t)
            } else {
                (
                    ((1.0 - t) * omega).sin() / omega.sin(),
                    (t * omega).sin() / omega.sin(),
                )
            };
            a.clone() * wa + b.clone() * wb
        })
        .collect();
    Tensor::stack(codes, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slerp_starts_and_ends_at_its_codes_and_keeps_their_norm() {
        let device = Device::flex();
        let (a, b) = (latent(1, 64, &device), latent(2, 64, &device));
        let codes = slerp(a.clone(), b.clone(), 5);
        let norm = |t: Tensor<1>| t.powi_scalar(2).sum().sqrt().into_scalar::<f32>();
        let row = |i: usize| codes.clone().narrow(0, i, 1).reshape([64]);
        assert!((row(0) - a.clone()).abs().max().into_scalar::<f32>() < 1e-5);
        assert!((row(4) - b.clone()).abs().max().into_scalar::<f32>() < 1e-5);
        let (na, nb, nm) = (norm(a), norm(b), norm(row(2)));
        assert!(
            nm > 0.95 * na.min(nb),
            "the midpoint's norm {nm} against {na}, {nb}"
        );
    }
}
