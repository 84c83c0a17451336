//! Pre-activation residual block, `x + conv(silu(norm(conv(silu(norm(x))))))`, built from
//! two-stream convolutions and per-position norms so that it is leak-free when given a
//! mask and an ordinary residual block when not.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

use super::norm::{ChannelNorm, ChannelNormConfig};
use super::two_stream::{TwoStreamConv2d, TwoStreamConv2dConfig};
use crate::nn::fused::{conv2d, silu};

/// Configuration of a [`ResidualBlock`].
#[derive(Config, Debug)]
pub struct ResidualBlockConfig {
    /// Input channels.
    pub d_in: usize,
    /// Output channels; a 1x1 projection carries the skip when they differ.
    pub d_out: usize,
}

/// Two 3x3 convolutions with a skip connection.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    norm1: ChannelNorm,
    conv1: TwoStreamConv2d,
    norm2: ChannelNorm,
    conv2: TwoStreamConv2d,
    /// 1x1 convolutions read one position, so the skip cannot leak.
    skip: Option<Conv2d>,
}

impl ResidualBlockConfig {
    /// Builds the block with fresh weights.
    pub fn init(&self, device: &Device) -> ResidualBlock {
        let skip = (self.d_in != self.d_out)
            .then(|| Conv2dConfig::new([self.d_in, self.d_out], [1, 1]).init(device));
        ResidualBlock {
            norm1: ChannelNormConfig::new(self.d_in).init(device),
            conv1: TwoStreamConv2dConfig::new([self.d_in, self.d_out]).init(device),
            norm2: ChannelNormConfig::new(self.d_out).init(device),
            conv2: TwoStreamConv2dConfig::new([self.d_out, self.d_out]).init(device),
            skip,
        }
    }
}

impl ResidualBlock {
    /// # Shapes
    /// - x: `[B, C_in, H, W]`, mask: `[B, 1, H, W]` (or none) → `[B, C_out, H, W]`
    pub fn forward(&self, x: Tensor<4>, mask: Option<Tensor<4>>) -> Tensor<4> {
        self.forward_visit(x, mask, &mut |_| {})
    }

    /// [`forward`](Self::forward), showing `visit` every intermediate map (norms included).
    pub fn forward_visit(
        &self,
        x: Tensor<4>,
        mask: Option<Tensor<4>>,
        visit: &mut dyn FnMut(&Tensor<4>),
    ) -> Tensor<4> {
        let h = self.norm1.forward(x.clone());
        visit(&h);
        let (h, _) = self.conv1.forward(silu(h), mask.clone());
        visit(&h);
        let h = self.norm2.forward(h);
        visit(&h);
        let (h, _) = self.conv2.forward(silu(h), mask);
        visit(&h);
        let skip = match &self.skip {
            Some(conv) => conv2d(conv, x),
            None => x,
        };
        skip + h
    }
}
