//! The discriminator HiT is trained against (App. A.4): a small ResNet of
//! downsampling residual blocks ending in a sum-pooled linear score, as in the
//! StyleGAN2 family the paper follows.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;

use crate::nn::fused::conv2d;

/// Configuration of a [`Discriminator`].
#[derive(Config, Debug)]
pub struct DiscriminatorConfig {
    /// Channels after the first convolution; each block doubles them up to `max_width`.
    /// 16 rather than 32: the full-resolution level's convolutions are most of a
    /// training step, and halving its width makes a step much cheaper (BENCHMARKS.md,
    /// "A GAN training step").
    #[config(default = 16)]
    pub width: usize,
    #[config(default = 256)]
    pub max_width: usize,
    /// Downsampling blocks (64 → 4 takes four).
    #[config(default = 4)]
    pub blocks: usize,
}

/// Negative slope of the leaky ReLUs.
const SLOPE: f64 = 0.2;

/// He initialisation for a layer behind a leaky ReLU of slope `slope` (1 for a layer
/// behind none): weights of variance `2 / ((1 + slope²) fan_in)` keep the signal's
/// variance from layer to layer. burn's default (variance `1 / (3 fan_in)`) shrinks it
/// at every convolution, so a fresh discriminator was nearly linear (its residual
/// branches carried little of the signal) and, under DiffAugment, could not tell even
/// blocky generated faces from real ones.
fn he(slope: f64) -> Initializer {
    Initializer::KaimingNormal {
        gain: (2.0 / (1.0 + slope * slope)).sqrt(),
        fan_out_only: false,
    }
}

/// `x → (conv(leaky(conv(leaky(x)))) + skip(x))` at half the side.
#[derive(Module, Debug)]
struct DownBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    skip: Conv2d,
    pool: AvgPool2d,
}

impl DownBlock {
    fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        let conv3 = |a, b| {
            Conv2dConfig::new([a, b], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(he(SLOPE))
                .init(device)
        };
        Self {
            conv1: conv3(d_in, d_in),
            conv2: conv3(d_in, d_out),
            skip: Conv2dConfig::new([d_in, d_out], [1, 1])
                .with_bias(false)
                .with_initializer(he(1.0))
                .init(device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = conv2d(&self.conv1, leaky_relu(x.clone(), SLOPE));
        let h = conv2d(&self.conv2, leaky_relu(h, SLOPE));
        // The skip's 1x1 convolution and the average pooling are both linear and act on
        // different axes, so pooling first gives the same map for a quarter of the work.
        // Scaled so the sum keeps the input's variance.
        (self.pool.forward(h) + self.skip.forward(self.pool.forward(x)))
            * std::f64::consts::FRAC_1_SQRT_2
    }
}

/// Scores pictures: a logit per picture, higher for real.
#[derive(Module, Debug)]
pub struct Discriminator {
    stem: Conv2d,
    blocks: Vec<DownBlock>,
    head: Linear,
}

impl DiscriminatorConfig {
    /// The discriminator for `side`-pixel pictures (4·2^k): one block per halving
    /// down to 4x4, and the full-resolution level half as wide for every doubling
    /// beyond 64, so that the blocks from 64x64 down are the 64 px discriminator's.
    pub fn at(side: usize) -> Self {
        let blocks = (side / 4).max(1).ilog2() as usize;
        let width = (16 * 64 / side.max(1)).clamp(4, 16);
        Self::new().with_blocks(blocks).with_width(width)
    }

    /// Builds the discriminator with fresh weights.
    pub fn init(&self, device: &Device) -> Discriminator {
        let mut width = self.width;
        let mut blocks = Vec::new();
        for _ in 0..self.blocks {
            let next = (width * 2).min(self.max_width);
            blocks.push(DownBlock::new(width, next, device));
            width = next;
        }
        Discriminator {
            stem: Conv2dConfig::new([3, self.width], [1, 1])
                .with_initializer(he(1.0))
                .init(device),
            blocks,
            head: LinearConfig::new(width, 1).init(device),
        }
    }
}

impl Discriminator {
    /// This discriminator behind a new full-resolution level taken from `larger` (a
    /// fresh discriminator for twice the side: its first convolution and first
    /// block), the old blocks and score kept; `None` when `larger`'s other blocks
    /// differ from this one's.
    pub fn grow(self, larger: Discriminator) -> Option<Discriminator> {
        let fits = larger.blocks.len() == self.blocks.len() + 1
            && self
                .blocks
                .iter()
                .zip(larger.blocks.iter().skip(1))
                .all(|(a, b)| a.conv2.weight.dims() == b.conv2.weight.dims())
            && self.head.weight.dims() == larger.head.weight.dims();
        if !fits {
            return None;
        }
        let mut blocks: Vec<DownBlock> = larger.blocks.into_iter().take(1).collect();
        blocks.extend(self.blocks);
        Some(Discriminator {
            stem: larger.stem,
            blocks,
            head: self.head,
        })
    }

    /// # Shapes
    /// - images: `[B, 3, H, W]` in [-1, 1] → `[B]` logits
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        let mut x = conv2d(&self.stem, images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [b, c, _, _] = x.dims();
        let pooled = leaky_relu(x, SLOPE).sum_dim(3).sum_dim(2).reshape([b, c]);
        self.head.forward(pooled).reshape([b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Variance of a tensor's entries.
    fn variance(x: Tensor<4>) -> f32 {
        let centred = x.clone() - x.mean().reshape([1, 1, 1, 1]);
        centred.powi_scalar(2).mean().into_scalar::<f32>()
    }

    #[test]
    fn a_fresh_block_keeps_the_signal_and_its_convolutions_carry_part_of_it() {
        let device = Device::flex();
        device.seed(8);
        let block = DownBlock::new(32, 64, &device);
        let x = Tensor::<4>::random([4, 32, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let out = variance(block.forward(x.clone()));
        assert!((0.1..4.0).contains(&out), "output variance {out}");
        // The residual branch against the skip: burn's default init left it nearly silent.
        let h = block.conv1.forward(leaky_relu(x.clone(), SLOPE));
        let branch = variance(
            block
                .pool
                .forward(block.conv2.forward(leaky_relu(h, SLOPE))),
        );
        let skip = variance(block.pool.forward(block.skip.forward(x)));
        assert!(branch > 0.3 * skip, "branch {branch}, skip {skip}");
    }

    #[test]
    fn the_discriminator_scores_each_picture() {
        let device = Device::flex();
        let d = DiscriminatorConfig::new()
            .with_width(4)
            .with_max_width(8)
            .init(&device);
        let x = Tensor::<4>::random([3, 3, 64, 64], Distribution::Uniform(-1.0, 1.0), &device);
        let logits: Vec<f32> = d.forward(x).into_data().try_into_vec().expect("floats");
        assert_eq!(logits.len(), 3);
        assert!(logits.iter().all(|l| l.is_finite()));
        assert!(
            logits[0] != logits[1],
            "different pictures, different scores"
        );
    }

    #[test]
    fn the_128_px_discriminator_grows_from_the_64_px_one() {
        let device = Device::flex();
        assert_eq!(DiscriminatorConfig::at(64).width, 16);
        let at = |side: usize| {
            DiscriminatorConfig::at(side)
                .with_max_width(32)
                .init(&device)
        };
        let grown = at(64).grow(at(128)).expect("one level more");
        let x = Tensor::<4>::random([2, 3, 128, 128], Distribution::Uniform(-1.0, 1.0), &device);
        assert_eq!(grown.forward(x).dims(), [2]);
        assert!(at(64).grow(at(64)).is_none());
    }
}
