//! LPIPS-style perceptual distance on frozen MobileNetV2 features: channels unit-
//! normalised at each position, squared differences summed over channels, averaged
//! over positions, equal weight for every tapped layer (the shape of LPIPS, on the
//! feature network the registries offer).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::mobilenet::{MobileNetError, MobileNetV2};

/// Blocks whose outputs are compared: strides 2, 4, 8 and 16 of the (upsampled) input.
const TAPS: [usize; 4] = [1, 3, 6, 10];

/// The perceptual distance.
#[derive(Debug)]
pub struct Perceptual {
    net: MobileNetV2,
    /// Side the images are resized to before the network (MobileNetV2 was trained at
    /// 224; 64x64 faces are doubled so its stride-16 layers still see a 8x8 map).
    side: usize,
}

impl Perceptual {
    /// Loads the feature network.
    pub fn load(path: &Path, device: &Device) -> Result<Self, MobileNetError> {
        Ok(Self {
            net: MobileNetV2::load(path, device)?,
            side: 128,
        })
    }

    /// Mean distance between two batches.
    ///
    /// # Shapes
    /// - a, b: `[B, 3, H, W]` in [-1, 1] → scalar `[1]`
    pub fn distance(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
        let batch = a.dims()[0];
        let both = self.resize(Tensor::cat(vec![a, b], 0));
        let maps = self.net.features(both, &TAPS);
        let layers = maps.len() as f64;
        maps.into_iter()
            .map(|map| {
                let unit = unit_channels(map);
                let (fa, fb) = (
                    unit.clone().narrow(0, 0, batch),
                    unit.narrow(0, batch, batch),
                );
                (fa - fb).powi_scalar(2).sum_dim(1).mean()
            })
            .reduce(|acc, d| acc + d)
            .map(|total| total / layers)
            .unwrap_or_else(|| Tensor::zeros([1], &self.device()))
    }

    fn device(&self) -> Device {
        self.net
            .devices()
            .first()
            .cloned()
            .unwrap_or_else(Device::flex)
    }

    fn resize(&self, images: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = images.dims();
        if h == self.side && w == self.side {
            return images;
        }
        interpolate(
            images,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(false)
                .with_output_size([self.side, self.side]),
        )
    }
}

/// Divides each position's channel vector by its length.
fn unit_channels(x: Tensor<4>) -> Tensor<4> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt() + 1e-10;
    x / norm
}
