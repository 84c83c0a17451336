//! Patch discriminator (Taming §3.1, after pix2pix): a few strided convolutions that
//! score each overlapping patch as real or generated.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;

/// Configuration of a [`Discriminator`].
#[derive(Config, Debug)]
pub struct DiscriminatorConfig {
    /// Channels of the first layer; each strided layer doubles them.
    #[config(default = 32)]
    pub width: usize,
    /// Number of stride-2 layers.
    #[config(default = 2)]
    pub layers: usize,
}

/// Scores `[B, 3, H, W]` images as a `[B, 1, h, w]` map of logits.
#[derive(Module, Debug)]
pub struct Discriminator {
    convs: Vec<Conv2d>,
    head: Conv2d,
}

impl DiscriminatorConfig {
    /// Builds the discriminator with fresh weights.
    pub fn init(&self, device: &Device) -> Discriminator {
        let mut convs = Vec::with_capacity(self.layers + 1);
        let mut d_in = 3;
        let mut width = self.width;
        for _ in 0..self.layers {
            convs.push(conv4x4(d_in, width, 2, device));
            d_in = width;
            width *= 2;
        }
        convs.push(conv4x4(d_in, width, 1, device));
        Discriminator {
            convs,
            head: conv4x4(width, 1, 1, device),
        }
    }
}

fn conv4x4(d_in: usize, d_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([d_in, d_out], [4, 4])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 2, 2))
        .init(device)
}

impl Discriminator {
    /// # Shapes
    /// - images: `[B, 3, H, W]` → logits `[B, 1, H/2^layers, W/2^layers]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = images;
        for conv in &self.convs {
            x = leaky_relu(conv.forward(x), 0.2);
        }
        self.head.forward(x)
    }
}
