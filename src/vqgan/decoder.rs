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
        self.output(self.features(z))
    }

    /// Everything but the output layer: the features it maps to pixels.
    ///
    /// # Shapes
    /// - z: `[B, D, h, w]` → `[B, widths[0], h·f, w·f]`
    pub fn features(&self, z: Tensor<4>) -> Tensor<4> {
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
        silu(self.norm_out.forward(x))
    }

    /// The output layer (Taming's `G_L`, where the adaptive adversarial weight of its
    /// Eq. 7 compares gradients): features → pixels.
    pub fn output(&self, features: Tensor<4>) -> Tensor<4> {
        self.conv_out.forward(features)
    }

    /// `‖∇_{G_L} L‖`: the norm of the output layer's weight gradient for a loss `L`
    /// whose gradient at the output pixels is `pixel_grad`, the layer's input being
    /// `features`. One backward pass through the output layer alone.
    pub fn output_gradient_norm(
        &self,
        features: Tensor<4>,
        pixel_grad: Tensor<4>,
    ) -> Result<f64, burn::tensor::TensorReadError> {
        let pixels = self.output(features.detach());
        let grads = (pixels * pixel_grad.autodiff().detach()).sum().backward();
        let weight = self.conv_out.weight.val();
        let squared = match weight.grad(&grads) {
            Some(g) => g.powi_scalar(2).sum().try_into_vec_as::<f64>()?[0],
            None => 0.0,
        };
        Ok(squared.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// The output layer's gradient norm from a pixel gradient equals the one a full
    /// backward pass of the same loss gives.
    #[test]
    fn the_output_gradient_norm_matches_a_full_backward() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let decoder = DecoderConfig::new(vec![8, 8], 1, 1, 4).init(&device);
        let z = Tensor::<4>::random([2, 4, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let c = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let features = decoder.features(z);
        let loss = (decoder.output(features.clone()) * c.clone()).sum();
        let grads = loss.backward();
        let full = decoder
            .conv_out
            .weight
            .val()
            .grad(&grads)
            .expect("a gradient")
            .powi_scalar(2)
            .sum()
            .into_scalar::<f32>()
            .sqrt() as f64;
        let alone = decoder
            .output_gradient_norm(features, c)
            .expect("a readable norm");
        assert!(full > 0.0);
        assert!((full - alone).abs() < 1e-4 * full, "{full} vs {alone}");
    }
}
