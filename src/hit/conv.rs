//! The convolutional baseline HiT must beat: a DCGAN-style generator (latent → 4x4 map,
//! then nearest upsampling and 3x3 convolutions to 64x64) sized to HiT's parameter
//! budget and trained by the same code.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, tanh};

use crate::nn::fused::conv2d;
use crate::nn::norm::{ChannelNorm, ChannelNormConfig};

/// Configuration of a [`ConvGenerator`].
#[derive(Config, Debug)]
pub struct ConvGeneratorConfig {
    /// Size of the latent code.
    #[config(default = 128)]
    pub latent: usize,
    /// Channels at 4x4, halved by every upsampling (at least `min_width`); 672 puts
    /// the baseline at HiT's parameter count.
    #[config(default = 672)]
    pub width: usize,
    #[config(default = 32)]
    pub min_width: usize,
    /// Upsamplings (4 → 64 takes four).
    #[config(default = 4)]
    pub ups: usize,
}

/// Upsample, then two 3x3 convolutions with per-position norms.
#[derive(Module, Debug)]
struct UpBlock {
    conv1: Conv2d,
    norm1: ChannelNorm,
    conv2: Conv2d,
    norm2: ChannelNorm,
}

/// The baseline generator.
#[derive(Module, Debug)]
pub struct ConvGenerator {
    to_map: Linear,
    blocks: Vec<UpBlock>,
    rgb: Conv2d,
    width: usize,
}

fn conv3(a: usize, b: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([a, b], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl ConvGeneratorConfig {
    /// The baseline at `side` (4·2^k): one upsampling block per doubling.
    pub fn at(side: usize) -> Self {
        Self::new().with_ups((side / 4).max(1).ilog2() as usize)
    }

    /// Side of the pictures it makes.
    pub fn side(&self) -> usize {
        4 << self.ups
    }

    /// Builds the generator with fresh weights.
    pub fn init(&self, device: &Device) -> ConvGenerator {
        let mut width = self.width;
        let mut blocks = Vec::new();
        for _ in 0..self.ups {
            let next = (width / 2).max(self.min_width);
            blocks.push(UpBlock {
                conv1: conv3(width, next, device),
                norm1: ChannelNormConfig::new(next).init(device),
                conv2: conv3(next, next, device),
                norm2: ChannelNormConfig::new(next).init(device),
            });
            width = next;
        }
        ConvGenerator {
            to_map: LinearConfig::new(self.latent, 16 * self.width).init(device),
            blocks,
            rgb: Conv2dConfig::new([width, 3], [1, 1]).init(device),
            width: self.width,
        }
    }
}

impl ConvGenerator {
    /// This generator with one more upsampling block and a new RGB layer, both taken
    /// from `larger` (a fresh generator of this configuration with one more
    /// upsampling); `None` when `larger`'s other blocks differ from this one's.
    pub fn grow(self, larger: ConvGenerator) -> Option<ConvGenerator> {
        let n = self.blocks.len();
        let fits = larger.blocks.len() == n + 1
            && self.width == larger.width
            && self.to_map.weight.dims() == larger.to_map.weight.dims()
            && self
                .blocks
                .iter()
                .zip(&larger.blocks)
                .all(|(a, b)| a.conv2.weight.dims() == b.conv2.weight.dims());
        if !fits {
            return None;
        }
        let mut blocks = self.blocks;
        blocks.extend(larger.blocks.into_iter().skip(n));
        Some(ConvGenerator {
            blocks,
            rgb: larger.rgb,
            ..self
        })
    }

    /// Pictures in [-1, 1], channels last (as HiT's).
    ///
    /// # Shapes
    /// - z: `[B, latent]` → `[B, 4·2^ups, 4·2^ups, 3]`
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let mut x = self.to_map.forward(z).reshape([b, self.width, 4, 4]);
        for block in &self.blocks {
            let [_, c, h, w] = x.dims();
            let up = x
                .reshape([b, c, h, 1, w, 1])
                .expand([b, c, h, 2, w, 2])
                .reshape([b, c, 2 * h, 2 * w]);
            let y = relu(block.norm1.forward(conv2d(&block.conv1, up)));
            x = relu(block.norm2.forward(conv2d(&block.conv2, y)));
        }
        tanh(conv2d(&self.rgb, x)).permute([0, 2, 3, 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::generator::HitGeneratorConfig;
    use burn::tensor::Distribution;

    #[test]
    fn the_baseline_makes_64_px_pictures_within_a_tenth_of_hits_parameters() {
        let device = Device::flex();
        device.seed(9);
        let hit = HitGeneratorConfig::small().init(&device).num_params();
        let conv = ConvGeneratorConfig::new().init(&device);
        let params = conv.num_params();
        let ratio = params as f64 / hit as f64;
        assert!((0.9..1.1).contains(&ratio), "conv {params} vs HiT {hit}");
        let z = Tensor::<2>::random([2, 128], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(conv.forward(z).dims(), [2, 64, 64, 3]);
    }

    /// At 128 px the baseline stays within a fifth of HiT's parameters, and grows from
    /// the 64 px one.
    #[test]
    fn the_128_px_baseline_matches_hits_budget_and_grows_from_64() {
        let device = Device::flex();
        device.seed(10);
        let hit = HitGeneratorConfig::small_at(128).init(&device).num_params();
        let config = ConvGeneratorConfig::at(128);
        assert_eq!(config.side(), 128);
        let conv = config.init(&device);
        let ratio = conv.num_params() as f64 / hit as f64;
        assert!(
            (0.8..1.2).contains(&ratio),
            "conv {} vs HiT {hit}",
            conv.num_params()
        );
        let grown = ConvGeneratorConfig::at(64)
            .init(&device)
            .grow(conv)
            .expect("one block more");
        let z = Tensor::<2>::random([1, 128], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(grown.forward(z).dims(), [1, 128, 128, 3]);
    }
}
