//! TS-VQGAN decoder: ordinary convolutions (iLAT §3.1: the decoder runs after the
//! tokens are generated, so it has nothing to hide), nearest upsampling + conv.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use crate::nn::norm::{ChannelNorm, ChannelNormConfig};
use crate::nn::residual::{ResidualBlock, ResidualBlockConfig};

/// Configuration of a [`Decoder`]: the mirror of the encoder's.
#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Channels at each resolution, finest first (as the encoder's).
    pub widths: Vec<usize>,
    /// Residual blocks at each resolution.
    pub blocks: usize,
    /// Extra residual blocks at the coarsest resolution.
    pub mid_blocks: usize,
    /// Dimension of the input vectors.
    pub code_dim: usize,
}

/// One resolution: an optional 2x upsampling, then residual blocks.
#[derive(Module, Debug)]
struct Level {
    up: Option<Conv2d>,
    blocks: Vec<ResidualBlock>,
}

/// Latent grid → image.
#[derive(Module, Debug)]
pub struct Decoder {
    conv_in: Conv2d,
    mid: Vec<ResidualBlock>,
    levels: Vec<Level>,
    norm_out: ChannelNorm,
    conv_out: Conv2d,
}

fn conv3x3(d_in: usize, d_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([d_in, d_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl DecoderConfig {
    /// Builds the decoder with fresh weights.
    pub fn init(&self, device: &Device) -> Decoder {
        let coarse_first: Vec<usize> = self.widths.iter().rev().copied().collect();
        let top = coarse_first[0];
        let mut levels = Vec::with_capacity(coarse_first.len());
        let mut d_in = top;
        for (i, &width) in coarse_first.iter().enumerate() {
            let up = (i > 0).then(|| conv3x3(d_in, width, device));
            let blocks = (0..self.blocks)
                .map(|_| ResidualBlockConfig::new(width, width).init(device))
                .collect();
            levels.push(Level { up, blocks });
            d_in = width;
        }
        Decoder {
            conv_in: conv3x3(self.code_dim, top, device),
            mid: (0..self.mid_blocks)
                .map(|_| ResidualBlockConfig::new(top, top).init(device))
                .collect(),
            levels,
            norm_out: ChannelNormConfig::new(d_in).init(device),
            conv_out: conv3x3(d_in, 3, device),
        }
    }
}

impl Decoder {
    /// # Shapes
    /// - z: `[B, D, h, w]` → images `[B, 3, h·f, w·f]` (unbounded; ≈ [-1, 1] once trained)
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut x = self.conv_in.forward(z);
        for block in &self.mid {
            x = block.forward(x, None);
        }
        for level in &self.levels {
            if let Some(up) = &level.up {
                let [_, _, h, w] = x.dims();
                let options = InterpolateOptions::new(InterpolateMode::Nearest)
                    .with_output_size([2 * h, 2 * w]);
                x = up.forward(interpolate(x, options));
            }
            for block in &level.blocks {
                x = block.forward(x, None);
            }
        }
        self.conv_out.forward(silu(self.norm_out.forward(x)))
    }
}
