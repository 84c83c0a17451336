//! TS-VQGAN decoder: ordinary convolutions (iLAT §3.1: the decoder runs after the
//! tokens are generated, so it has nothing to hide), nearest upsampling + conv.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use crate::nn::fused::{conv2d, silu};
use crate::nn::norm::{ChannelNorm, ChannelNormConfig};
use crate::nn::residual::{ResidualBlock, ResidualBlockConfig};
use crate::region::Window;

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

impl Level {
    fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        if let Some(up) = &self.up {
            let [_, _, h, w] = x.dims();
            let options =
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]);
            x = conv2d(up, interpolate(x, options));
        }
        for block in &self.blocks {
            x = block.forward(x, None);
        }
        x
    }
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
        let mut x = conv2d(&self.conv_in, z);
        for block in &self.mid {
            x = block.forward(x, None);
        }
        for level in &self.levels {
            x = level.forward(x);
        }
        silu(self.norm_out.forward(x))
    }

    /// The pixels of `window` of [`forward`](Self::forward)'s picture, computing each
    /// level only where they depend on it.
    ///
    /// An edit needs the decoded picture only around its mask, and every layer here is
    /// local (3x3 convolutions, per-position norms, nearest upsampling): an output pixel
    /// reads a fixed neighbourhood of each level. The window is grown by those reaches
    /// from the output back to the latent grid; the latent grid is cut to its grown
    /// window and each level's output to what the next level reads before it is
    /// upsampled, so values spoilt by the zero padding at a cut (a ring as wide as the
    /// reach) never reach the window. At the picture's own border the padding is the
    /// full decode's, so the window's pixels are the full decode's (up to the rounding of
    /// differently sized products). The finest levels cost most, and there the window
    /// is smallest. `window` must be non-empty and inside the picture.
    ///
    /// # Shapes
    /// - z: `[B, D, h, w]` → `[B, 3, window.height(), window.width()]`
    pub fn forward_window(&self, z: Tensor<4>, window: Window) -> Tensor<4> {
        let [_, _, h, w] = z.dims();
        let side = |level: usize| ((w << level) as u32, (h << level) as u32);
        let finest = self.levels.len() - 1;
        // What each level's output must hold for the next (coarsest first), found from
        // the output back; `reads` is what the layers seen so far read.
        let mut needed = vec![window; finest];
        let mut reads = grow(window, 1, side(finest)); // conv_out
        for (i, level) in self.levels.iter().enumerate().rev() {
            reads = grow(reads, 2 * level.blocks.len() as u32, side(i));
            if i > 0 {
                reads = halve(grow(reads, 1, side(i)), side(i - 1)); // the upsampling conv
                needed[i - 1] = reads;
            }
        }
        let latent = grow(reads, 2 * self.mid.len() as u32 + 1, side(0)); // mid, conv_in
        let grid = Window {
            x0: 0,
            y0: 0,
            x1: w as u32,
            y1: h as u32,
        };
        let mut x = conv2d(&self.conv_in, cut(z, latent, grid));
        let mut at = latent;
        for block in &self.mid {
            x = block.forward(x, None);
        }
        for (i, level) in self.levels.iter().enumerate() {
            if level.up.is_some() {
                x = cut(x, needed[i - 1], at);
                at = double(needed[i - 1]);
            }
            x = level.forward(x);
        }
        let pixels = self.output(silu(self.norm_out.forward(x)));
        cut(pixels, window, at)
    }

    /// The output layer (Taming's `G_L`, where the adaptive adversarial weight of its
    /// Eq. 7 compares gradients): features → pixels.
    pub fn output(&self, features: Tensor<4>) -> Tensor<4> {
        conv2d(&self.conv_out, features)
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

/// `window` grown by `by` on every side, within a `width`x`height` map.
fn grow(window: Window, by: u32, (width, height): (u32, u32)) -> Window {
    let by = by as i64;
    Window::clipped(
        (window.x0 as i64 - by, window.y0 as i64 - by),
        (window.x1 as i64 + by, window.y1 as i64 + by),
        (width, height),
    )
}

/// The cells of a map at half the resolution that `window` lies on.
fn halve(window: Window, bounds: (u32, u32)) -> Window {
    Window::clipped(
        ((window.x0 / 2) as i64, (window.y0 / 2) as i64),
        (window.x1.div_ceil(2) as i64, window.y1.div_ceil(2) as i64),
        bounds,
    )
}

/// `window` at twice the resolution.
fn double(window: Window) -> Window {
    Window {
        x0: 2 * window.x0,
        y0: 2 * window.y0,
        x1: 2 * window.x1,
        y1: 2 * window.y1,
    }
}

/// The part `window` of a map that covers `at` (both in the map's own pixels).
fn cut(x: Tensor<4>, window: Window, at: Window) -> Tensor<4> {
    let [b, c, _, _] = x.dims();
    let (x0, y0) = ((window.x0 - at.x0) as usize, (window.y0 - at.y0) as usize);
    let (x1, y1) = (x0 + window.width() as usize, y0 + window.height() as usize);
    x.slice([0..b, 0..c, y0..y1, x0..x1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// A window of the decoded picture is the full decode's pixels there, wherever it
    /// lies (inside, at an edge, a corner, the whole picture, one pixel).
    #[test]
    fn a_decoded_window_is_the_full_decode_there() {
        let device = Device::flex();
        device.seed(5);
        let decoder = DecoderConfig::new(vec![4, 6, 8], 1, 1, 3).init(&device);
        let z = Tensor::<4>::random([2, 3, 20, 24], Distribution::Normal(0.0, 1.0), &device);
        let full = decoder.forward(z.clone()); // [2, 3, 80, 96]
        let windows = [
            (13, 9, 22, 17),
            (0, 0, 7, 5),
            (70, 58, 96, 80),
            (0, 0, 96, 80),
            (57, 79, 58, 80),
            (41, 33, 66, 52),
            (90, 2, 96, 11),
        ];
        for (x0, y0, x1, y1) in windows {
            let window = Window { x0, y0, x1, y1 };
            let part = decoder.forward_window(z.clone(), window);
            let expected = full.clone().slice([
                0..2,
                0..3,
                y0 as usize..y1 as usize,
                x0 as usize..x1 as usize,
            ]);
            part.into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
        }
    }

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
