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
//!
//! The second stream is read on the ring only, so it is computed only on the ring's
//! bounding box (found by reading the mask back, a few thousand values per layer): an
//! edit's small mask makes the layer cost little more than one convolution instead of
//! two (the 128 px encoder: 152 → 103 ms per picture, BENCHMARKS).

use crate::nn::fused::conv2d;
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
            return (conv2d(&self.conv, x), None);
        };
        let mask_out = downsample_mask(mask.clone(), self.stride);
        let ring = self.leaked_ring(mask.clone(), mask_out.clone()); // [B, 1, H/s, W/s]
        let full = conv2d(&self.conv, x.clone());
        let Some(rows) = Span::of(&ring, 2) else {
            return (full, Some(mask_out));
        };
        let cols = Span::of(&ring, 3).expect("a ring with rows has columns");
        let clean = self.clean_stream(x, mask, rows, cols);
        let [batch, d_out, _, _] = full.dims();
        let (rs, cs) = (rows.start..rows.end, cols.start..cols.end);
        let ring = ring
            .slice([0..batch, 0..1, rs.clone(), cs.clone()])
            .bool()
            .expand(clean.dims());
        // A select, not `full + (clean − full)·M_l`: the sum would carry rounding error
        // from the masked values into the ring.
        let part = full
            .clone()
            .slice([0..batch, 0..d_out, rs.clone(), cs.clone()])
            .mask_where(ring, clean);
        (
            full.slice_assign([0..batch, 0..d_out, rs, cs], part),
            Some(mask_out),
        )
    }

    /// `conv(F ⊙ (1 − M'))` at the output positions `rows` x `cols` only (the ring's
    /// box, often a small part of the map): the input cut to what those outputs read,
    /// from a multiple of the stride so that the cut's outputs fall on the map's.
    fn clean_stream(&self, x: Tensor<4>, mask: Tensor<4>, rows: Span, cols: Span) -> Tensor<4> {
        let [batch, channels, h, w] = x.dims();
        let (pad, stride) = (self.kernel / 2, self.stride);
        let reads = |out: Span, limit: usize| {
            let first = (out.start * stride).saturating_sub(pad) / stride * stride;
            let end = ((out.end - 1) * stride + self.kernel - pad).min(limit);
            (first, end)
        };
        let ((y0, y1), (x0, x1)) = (reads(rows, h), reads(cols, w));
        let cut = x.slice([0..batch, 0..channels, y0..y1, x0..x1]);
        // A fill, so that no value under the mask (even a NaN) can survive into the
        // clean stream.
        let hidden = mask
            .slice([0..batch, 0..1, y0..y1, x0..x1])
            .bool()
            .expand(cut.dims());
        let clean = conv2d(&self.conv, cut.mask_fill(hidden, 0.0));
        let [_, d_out, _, _] = clean.dims();
        let (oy, ox) = (rows.start - y0 / stride, cols.start - x0 / stride);
        clean.slice([0..batch, 0..d_out, oy..oy + rows.len(), ox..ox + cols.len()])
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

/// The positions along one axis of a `[B, 1, H, W]` map where any value is on: their
/// first and one past their last.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The span of `map`'s on values along `axis` (2: rows, 3: columns); `None` when
    /// none is on (or the map cannot be read, when the whole map is taken).
    fn of(map: &Tensor<4>, axis: usize) -> Option<Self> {
        let len = map.dims()[axis];
        let other = 5 - axis;
        let profile = map.clone().max_dim(0).max_dim(other);
        let Ok(values) = profile.try_into_vec_as::<f32>() else {
            return Some(Self { start: 0, end: len });
        };
        let start = values.iter().position(|&v| v > 0.5)?;
        let end = values.iter().rposition(|&v| v > 0.5)? + 1;
        Some(Self { start, end })
    }

    fn len(&self) -> usize {
        self.end - self.start
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

    /// The clean stream computed on the ring's box alone is Eq. 3 computed on the
    /// whole map: masks inside, at an edge, in a corner, in two places, for both strides.
    #[test]
    fn the_clean_stream_on_the_rings_box_is_eq_3_on_the_whole_map() {
        let device = device();
        let boxes: [&[(usize, usize, usize, usize)]; 4] = [
            &[(5, 6, 9, 8)],
            &[(0, 3, 2, 7)],
            &[(9, 9, 12, 12)],
            &[(1, 1, 3, 2), (7, 6, 10, 10)],
        ];
        for stride in [1, 2] {
            let layer = TwoStreamConv2dConfig::new([3, 4])
                .with_stride(stride)
                .init(&device);
            for spots in boxes {
                let mut data = vec![0.0f32; 2 * 12 * 12];
                for (b, &(x0, y0, x1, y1)) in spots.iter().enumerate() {
                    for y in y0..y1 {
                        for x in x0..x1 {
                            data[(b % 2) * 144 + y * 12 + x] = 1.0;
                        }
                    }
                }
                let mask = Tensor::<4>::from_data(TensorData::new(data, [2, 1, 12, 12]), &device);
                let x =
                    Tensor::<4>::random([2, 3, 12, 12], Distribution::Normal(0.0, 1.0), &device);
                let (out, _) = layer.forward(x.clone(), Some(mask.clone()));
                // Eq. 3 written out over the whole map.
                let out_mask = downsample_mask(mask.clone(), stride);
                let ring = layer.leaked_ring(mask.clone(), out_mask).bool();
                let clean = layer
                    .conv
                    .forward(x.clone().mask_fill(mask.bool().expand([2, 3, 12, 12]), 0.0));
                let full = layer.conv.forward(x);
                let dims = full.dims();
                let expected = full.mask_where(ring.expand(dims), clean);
                out.into_data()
                    .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
            }
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
