//! TS-VQGAN encoder: every spatial convolution is a two-stream convolution and every
//! norm is per-position, so features outside the mask depend on unmasked pixels only.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

use crate::nn::fused::{conv2d, silu};
use crate::nn::norm::{ChannelNorm, ChannelNormConfig};
use crate::nn::residual::{ResidualBlock, ResidualBlockConfig};
use crate::nn::two_stream::{TwoStreamConv2d, TwoStreamConv2dConfig};

/// Configuration of an [`Encoder`].
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Channels at each resolution, finest first; each step down halves the side.
    pub widths: Vec<usize>,
    /// Residual blocks at each resolution.
    pub blocks: usize,
    /// Extra residual blocks at the coarsest resolution.
    pub mid_blocks: usize,
    /// Dimension of the output vectors (the code dimension).
    pub code_dim: usize,
    /// `false` builds the ordinary-convolution encoder that leaks (for the leak test
    /// and the ablation of iLAT §4.3).
    #[config(default = true)]
    pub two_stream: bool,
}

/// One resolution: residual blocks, then (except at the coarsest) a stride-2 convolution.
#[derive(Module, Debug)]
struct Level {
    blocks: Vec<ResidualBlock>,
    down: Option<TwoStreamConv2d>,
}

/// Image → continuous latent grid ẑ.
#[derive(Module, Debug)]
pub struct Encoder {
    conv_in: TwoStreamConv2d,
    levels: Vec<Level>,
    mid: Vec<ResidualBlock>,
    norm_out: ChannelNorm,
    /// 1x1, so it cannot leak.
    conv_out: Conv2d,
    two_stream: bool,
}

impl EncoderConfig {
    /// Builds the encoder with fresh weights.
    pub fn init(&self, device: &Device) -> Encoder {
        let mut levels = Vec::with_capacity(self.widths.len());
        let mut d_in = self.widths[0];
        for (i, &width) in self.widths.iter().enumerate() {
            let blocks = (0..self.blocks)
                .map(|b| {
                    ResidualBlockConfig::new(if b == 0 { d_in } else { width }, width).init(device)
                })
                .collect();
            let down = (i + 1 < self.widths.len()).then(|| {
                TwoStreamConv2dConfig::new([width, width])
                    .with_stride(2)
                    .init(device)
            });
            levels.push(Level { blocks, down });
            d_in = width;
        }
        let top = *self.widths.last().unwrap_or(&d_in);
        Encoder {
            conv_in: TwoStreamConv2dConfig::new([3, self.widths[0]]).init(device),
            levels,
            mid: (0..self.mid_blocks)
                .map(|_| ResidualBlockConfig::new(top, top).init(device))
                .collect(),
            norm_out: ChannelNormConfig::new(top).init(device),
            conv_out: Conv2dConfig::new([top, self.code_dim], [1, 1]).init(device),
            two_stream: self.two_stream,
        }
    }
}

impl Encoder {
    /// Encodes images; `mask` marks the pixels whose content must not reach the
    /// features of unmasked positions.
    ///
    /// # Shapes
    /// - images: `[B, 3, H, W]` in [-1, 1], mask: `[B, 1, H, W]` of 0/1
    /// - output: `[B, D, H/f, W/f]`
    pub fn forward(&self, images: Tensor<4>, mask: Option<Tensor<4>>) -> Tensor<4> {
        self.forward_visit(images, mask, &mut |_| {})
    }

    /// Every intermediate feature map, input side first, norms included: what the leak
    /// test inspects.
    pub fn layer_outputs(&self, images: Tensor<4>, mask: Option<Tensor<4>>) -> Vec<Tensor<4>> {
        let mut maps = Vec::new();
        let out = self.forward_visit(images, mask, &mut |map| maps.push(map.clone()));
        maps.push(out);
        maps
    }

    fn forward_visit(
        &self,
        images: Tensor<4>,
        mask: Option<Tensor<4>>,
        visit: &mut dyn FnMut(&Tensor<4>),
    ) -> Tensor<4> {
        let mut mask = mask.filter(|_| self.two_stream);
        let (mut x, _) = self.conv_in.forward(images, mask.clone());
        visit(&x);
        for level in &self.levels {
            for block in &level.blocks {
                x = block.forward_visit(x, mask.clone(), visit);
                visit(&x);
            }
            if let Some(down) = &level.down {
                (x, mask) = down.forward(x, mask);
                visit(&x);
            }
        }
        for block in &self.mid {
            x = block.forward_visit(x, mask.clone(), visit);
            visit(&x);
        }
        let x = self.norm_out.forward(x);
        visit(&x);
        conv2d(&self.conv_out, silu(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::convert::masks_to_tensor;
    use crate::data::masks::random_mask;
    use crate::nn::two_stream::downsample_mask;
    use burn::tensor::Distribution;
    use rand::SeedableRng;

    /// The largest change, over every layer and every unmasked position, that arbitrary
    /// new values under random masks cause, for an encoder of `widths` on `side`-pixel
    /// pictures.
    fn worst_unmasked_change(widths: Vec<usize>, side: usize, two_stream: bool) -> f32 {
        let device = Device::flex();
        device.seed(11);
        let encoder = EncoderConfig::new(widths, 1, 1, 8)
            .with_two_stream(two_stream)
            .init(&device);
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let mut worst = 0.0f32;
        for _ in 0..3 {
            let masks: Vec<_> = (0..2)
                .map(|_| random_mask(side as u32, 0.1, 0.4, &mut rng))
                .collect();
            let mask = masks_to_tensor(&masks, &device);
            let images = Tensor::<4>::random(
                [2, 3, side, side],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let noise = Tensor::<4>::random(
                [2, 3, side, side],
                Distribution::Uniform(-50.0, 50.0),
                &device,
            );
            let changed = images
                .clone()
                .mask_where(mask.clone().bool().expand([2, 3, side, side]), noise);
            let a = encoder.layer_outputs(images, Some(mask.clone()));
            let b = encoder.layer_outputs(changed, Some(mask.clone()));
            assert!(a.len() > 10, "too few layers traced: {}", a.len());
            for (fa, fb) in a.into_iter().zip(b) {
                let [_, channels, h, w] = fa.dims();
                let kept = downsample_mask(mask.clone(), side / h).neg() + 1.0;
                let diff = ((fa - fb).abs() * kept.expand([2, channels, h, w]))
                    .max()
                    .into_scalar::<f32>();
                worst = worst.max(diff);
            }
        }
        worst
    }

    #[test]
    fn leak_free_encoder_ignores_masked_pixels_at_every_layer() {
        let worst = worst_unmasked_change(vec![8, 16, 16], 32, true);
        assert!(worst < 1e-5, "unmasked features moved by {worst}");
    }

    /// The 128 px tokenizer's shape: four levels (f = 8) on 128 px pictures.
    #[test]
    fn leak_free_encoder_ignores_masked_pixels_at_128_px() {
        let worst = worst_unmasked_change(vec![4, 8, 8, 8], 128, true);
        assert!(worst < 1e-5, "unmasked features moved by {worst}");
    }

    #[test]
    fn leak_check_catches_an_ordinary_conv_encoder() {
        let worst = worst_unmasked_change(vec![8, 16, 16], 32, false);
        assert!(
            worst > 1e-2,
            "an ordinary encoder should leak, moved only {worst}"
        );
    }
}
