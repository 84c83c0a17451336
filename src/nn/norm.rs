//! Per-position channel normalisation.
//!
//! GroupNorm and InstanceNorm average over the whole feature map, so a change under
//! the mask shifts every unmasked feature through the statistics. This norm takes
//! its mean and variance over the channels of one position only (LayerNorm over `C`
//! for each pixel, as ConvNeXt does), which cannot leak across positions.

use burn::module::{Module, Param};
use burn::prelude::*;

/// Configuration of a [`ChannelNorm`].
#[derive(Config, Debug)]
pub struct ChannelNormConfig {
    /// Number of channels.
    pub channels: usize,
    /// Added to the variance for stability.
    #[config(default = 1e-6)]
    pub epsilon: f64,
}

/// LayerNorm over the channel axis of a `[B, C, H, W]` map, with a learned scale and shift.
#[derive(Module, Debug)]
pub struct ChannelNorm {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
    epsilon: f64,
}

impl ChannelNormConfig {
    /// Builds the norm as the identity map (scale 1, shift 0).
    pub fn init(&self, device: &Device) -> ChannelNorm {
        ChannelNorm {
            gamma: Param::from_tensor(Tensor::ones([self.channels], device)),
            beta: Param::from_tensor(Tensor::zeros([self.channels], device)),
            epsilon: self.epsilon,
        }
    }
}

impl ChannelNorm {
    /// # Shapes
    /// - x: `[B, C, H, W]` → `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let channels = x.dims()[1];
        let mean = x.clone().mean_dim(1); // [B, 1, H, W]
        let centred = x - mean;
        let var = centred.clone().powi_scalar(2).mean_dim(1); // [B, 1, H, W]
        let normed = centred / (var + self.epsilon).sqrt();
        let gamma = self.gamma.val().reshape([1, channels, 1, 1]);
        let beta = self.beta.val().reshape([1, channels, 1, 1]);
        normed * gamma + beta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn normalises_each_position_over_channels() {
        let device = Device::flex();
        device.seed(1);
        let norm = ChannelNormConfig::new(6).init(&device);
        let x = Tensor::<4>::random([2, 6, 4, 4], Distribution::Normal(3.0, 2.0), &device);
        let y = norm.forward(x);
        let mean = y.clone().mean_dim(1);
        let var = y.powi_scalar(2).mean_dim(1);
        mean.into_data().assert_approx_eq::<f32>(
            &Tensor::<4>::zeros([2, 1, 4, 4], &device).into_data(),
            Tolerance::absolute(1e-5),
        );
        var.into_data().assert_approx_eq::<f32>(
            &Tensor::<4>::ones([2, 1, 4, 4], &device).into_data(),
            Tolerance::absolute(1e-3),
        );
    }
}
