//! Two-stream convolution (iLAT, Cao et al. 2021, §3.1, Eq. 2-3).
//!
//! A 3x3 convolution spreads whatever lies under a mask one ring outwards per layer,
//! so an ordinary encoder lets the pixels being regenerated leak into the features
//! that are supposed to be kept. The two-stream convolution runs the same kernel on
//! the features `F` and on the masked features `F ⊙ (1 − M')`, and uses the second
//! result exactly on the ring `M_l` that the kernel would have contaminated:
//!
//! `F_c = conv(F) ⊙ (1 − M_l) + conv(F ⊙ (1 − M')) ⊙ M_l`
//!
//! Masks are `[B, 1, H, W]` tensors of 0 (kept) and 1 (masked), max-pooled to each
//! resolution, so a coarse position counts as masked as soon as any pixel under it is.
//! With no mask (or an all-zero one) the layer is exactly the ordinary convolution.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;

/// Configuration of a [`TwoStreamConv2d`]: a square convolution with "same" padding.
#[derive(Config, Debug)]
pub struct TwoStreamConv2dConfig {
    /// Input and output channels.
    pub channels: [usize; 2],
    /// Kernel side (odd).
    #[config(default = 3)]
    pub kernel: usize,
    /// Stride: 1 keeps the resolution, 2 halves it.
    #[config(default = 1)]
    pub stride: usize,
}

/// A convolution that never lets masked inputs reach unmasked outputs.
#[derive(Module, Debug)]
pub struct TwoStreamConv2d {
    conv: Conv2d,
    kernel: usize,
    stride: usize,
}

impl TwoStreamConv2dConfig {
    /// Builds the layer with freshly initialised weights.
    pub fn init(&self, device: &Device) -> TwoStreamConv2d {
        let pad = self.kernel / 2;
        let conv = Conv2dConfig::new(self.channels, [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(device);
        TwoStreamConv2d {
            conv,
            kernel: self.kernel,
            stride: self.stride,
        }
    }
}

impl TwoStreamConv2d {
    /// Applies the convolution; returns the output and the mask at the output's resolution.
    ///
    /// # Shapes
    /// - x: `[B, C_in, H, W]`, mask: `[B, 1, H, W]`
    /// - output: `[B, C_out, H/s, W/s]`, mask: `[B, 1, H/s, W/s]`
    pub fn forward(&self, x: Tensor<4>, mask: Option<Tensor<4>>) -> (Tensor<4>, Option<Tensor<4>>) {
        let Some(mask) = mask else {
            return (self.conv.forward(x), None);
        };
        let mask_out = downsample_mask(mask.clone(), self.stride);
        let ring = self.leaked_ring(mask.clone(), mask_out.clone()).bool(); // [B, 1, H/s, W/s]
        let [batch, channels, h, w] = x.dims();
        // F ⊙ (1 − M'), written as a fill so that no value under the mask (even a NaN)
        // can survive into the clean stream.
        let clean = x
            .clone()
            .mask_fill(mask.bool().expand([batch, channels, h, w]), 0.0);
        // Both streams in one call: one GEMM of twice the batch beats two small ones.
        let both = self.conv.forward(Tensor::cat(vec![x, clean], 0));
        let full = both.clone().narrow(0, 0, batch);
        let clean = both.narrow(0, batch, batch);
        let [_, d_out, h_out, w_out] = full.dims();
        // A select, not `full + (clean − full)·M_l`: the sum would carry rounding error
        // from the masked values into the ring.
        let out = full.mask_where(ring.expand([batch, d_out, h_out, w_out]), clean);
        (out, Some(mask_out))
    }

    /// The positions outside the output mask whose receptive field touches the input
    /// mask: `clip(conv_1(M'), 0, 1) − M'` of Eq. 2, for any stride.
    fn leaked_ring(&self, mask_in: Tensor<4>, mask_out: Tensor<4>) -> Tensor<4> {
        let pad = self.kernel / 2;
        let touched = max_pool2d(
            mask_in,
            MaxPoolOptions::new([self.kernel, self.kernel])
                .with_stride([self.stride, self.stride])
                .with_padding([pad, pad]),
        );
        touched - mask_out
    }
}

/// Resizes a binary mask to a coarser grid by max-pooling, so that a coarse cell is
/// masked as soon as any fine pixel under it is.
///
/// # Shapes
/// - mask: `[B, 1, H, W]` → `[B, 1, H/factor, W/factor]`
pub fn downsample_mask(mask: Tensor<4>, factor: usize) -> Tensor<4> {
    if factor == 1 {
        return mask;
    }
    max_pool2d(mask, MaxPoolOptions::new([factor, factor]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn device() -> Device {
        let device = Device::flex();
        device.seed(7);
        device
    }

    #[test]
    fn zero_mask_equals_plain_conv() {
        let device = device();
        for stride in [1, 2] {
            let layer = TwoStreamConv2dConfig::new([3, 5])
                .with_stride(stride)
                .init(&device);
            let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
            let zeros = Tensor::<4>::zeros([2, 1, 8, 8], &device);
            let (masked, _) = layer.forward(x.clone(), Some(zeros));
            let (plain, _) = layer.forward(x, None);
            masked
                .into_data()
                .assert_approx_eq::<f32>(&plain.into_data(), Tolerance::absolute(1e-6));
        }
    }

    #[test]
    fn strided_ring_covers_every_touched_output() {
        let device = device();
        let layer = TwoStreamConv2dConfig::new([1, 1])
            .with_stride(2)
            .init(&device);
        // A single masked pixel at (3, 3) of an 8x8 map: the stride-2 kernel centred on
        // outputs (1..=2, 1..=2) reads it; (1, 1) is masked, the other three are the ring.
        let mut data = vec![0.0f32; 64];
        data[3 * 8 + 3] = 1.0;
        let mask = Tensor::<4>::from_data(TensorData::new(data, [1, 1, 8, 8]), &device);
        let out_mask = downsample_mask(mask.clone(), 2);
        let ring = layer.leaked_ring(mask, out_mask.clone());
        let ring: Vec<f32> = ring.into_data().try_into_vec().expect("f32 ring");
        let out_mask: Vec<f32> = out_mask.into_data().try_into_vec().expect("f32 mask");
        let on: Vec<usize> = (0..16).filter(|&i| ring[i] > 0.5).collect();
        assert_eq!(on, vec![6, 9, 10]); // (1, 2), (2, 1), (2, 2) on the 4x4 grid
        assert_eq!(out_mask[5], 1.0); // (1, 1)
    }
}
