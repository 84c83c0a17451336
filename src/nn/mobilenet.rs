//! MobileNetV2 (Sandler et al. 2018) with torchvision's ImageNet weights, frozen.
//!
//! It is the feature network of the perceptual loss (LPIPS's VGG weights are in no
//! registry package). The weights are read from the safetensors file that
//! `scripts/fetch-data.sh` converts from torchvision's checkpoint, with torchvision's
//! parameter names; each BatchNorm is folded into the convolution before it, which is
//! exact in inference and leaves a plain stack of convolutions.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu6;

use super::weights::{Layout, Norm, Weights};

/// Inverted-residual settings of torchvision's MobileNetV2: (expansion t, channels c,
/// repeats n, first stride s).
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// ImageNet channel means and standard deviations of torchvision's preprocessing.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

pub use super::weights::FeatureNetError as MobileNetError;

/// One inverted residual block: 1x1 expansion, 3x3 depthwise, 1x1 projection.
#[derive(Module, Debug)]
struct InvertedResidual {
    expand: Option<Conv2d>,
    depthwise: Conv2d,
    project: Conv2d,
    residual: bool,
}

impl InvertedResidual {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let Some(expand) = &self.expand {
            h = relu6(expand.forward(h));
        }
        let h = self.project.forward(relu6(self.depthwise.forward(h)));
        if self.residual { x + h } else { h }
    }
}

/// The frozen network.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    stem: Conv2d,
    blocks: Vec<InvertedResidual>,
    head: Conv2d,
    classifier: Linear,
}

impl MobileNetV2 {
    /// Loads torchvision's weights from a safetensors file, with gradients off.
    pub fn load(path: &Path, device: &Device) -> Result<Self, MobileNetError> {
        let weights = Weights::read(path)?;
        let stem = conv_bn(&weights, "features.0.0", "features.0.1", 2, 1, device)?;
        let mut blocks = Vec::new();
        let mut d_in = 32;
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                let at = format!("features.{}.conv", blocks.len() + 1);
                let stride = if i == 0 { s } else { 1 };
                let (expand, dw, proj, bn) = if t == 1 {
                    (
                        None,
                        (format!("{at}.0.0"), format!("{at}.0.1")),
                        format!("{at}.1"),
                        format!("{at}.2"),
                    )
                } else {
                    let expand = conv_bn(
                        &weights,
                        &format!("{at}.0.0"),
                        &format!("{at}.0.1"),
                        1,
                        1,
                        device,
                    )?;
                    (
                        Some(expand),
                        (format!("{at}.1.0"), format!("{at}.1.1")),
                        format!("{at}.2"),
                        format!("{at}.3"),
                    )
                };
                blocks.push(InvertedResidual {
                    expand,
                    depthwise: conv_bn(&weights, &dw.0, &dw.1, stride, d_in * t, device)?,
                    project: conv_bn(&weights, &proj, &bn, 1, 1, device)?,
                    residual: stride == 1 && d_in == c,
                });
                d_in = c;
            }
        }
        let head = conv_bn(&weights, "features.18.0", "features.18.1", 1, 1, device)?;
        let classifier = weights.linear("classifier.1", device)?;
        Ok(Self {
            stem,
            blocks,
            head,
            classifier,
        }
        .no_grad())
    }

    /// Maps `[B, 3, H, W]` images in [-1, 1] to torchvision's normalised input.
    fn normalise(images: Tensor<4>) -> Tensor<4> {
        let device = images.device();
        let mean = Tensor::<1>::from_floats(MEAN, &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats(STD, &device).reshape([1, 3, 1, 1]);
        ((images + 1.0) * 0.5 - mean) / std
    }

    /// Feature maps after the given blocks (`features.k` for each `k` in `taps`, 1-17).
    ///
    /// # Shapes
    /// - images: `[B, 3, H, W]` in [-1, 1] → one `[B, C_k, H_k, W_k]` map per tap
    pub fn features(&self, images: Tensor<4>, taps: &[usize]) -> Vec<Tensor<4>> {
        let last = taps.iter().copied().max().unwrap_or(0);
        let mut x = relu6(self.stem.forward(Self::normalise(images)));
        let mut maps = Vec::with_capacity(taps.len());
        for (i, block) in self.blocks.iter().enumerate().take(last) {
            x = block.forward(x);
            if taps.contains(&(i + 1)) {
                maps.push(x.clone());
            }
        }
        maps
    }

    /// ImageNet class logits.
    ///
    /// # Shapes
    /// - images: `[B, 3, H, W]` in [-1, 1] (224x224 as trained) → `[B, 1000]`
    pub fn classify(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = relu6(self.stem.forward(Self::normalise(images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = relu6(self.head.forward(x));
        let [batch, channels, _, _] = x.dims();
        let pooled = x.flatten::<3>(2, 3).mean_dim(2).reshape([batch, channels]); // [B, C]
        self.classifier.forward(pooled)
    }
}

/// A torchvision convolution and the batch norm after it, folded.
fn conv_bn(
    weights: &Weights,
    conv: &str,
    bn: &str,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Result<Conv2d, MobileNetError> {
    let (shape, _) = weights.get(&format!("{conv}.weight"))?;
    let pad = shape[2] / 2;
    let part = |name: &str| {
        weights
            .get(&format!("{bn}.{name}"))
            .map(|(_, v)| v.as_slice())
    };
    let norm = Norm {
        gamma: Some(part("weight")?),
        beta: part("bias")?,
        mean: part("running_mean")?,
        var: part("running_var")?,
        eps: 1e-5,
    };
    let layout = Layout {
        stride,
        padding: (pad, pad),
        groups,
    };
    weights.folded_conv(conv, &norm, layout, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::convert::images_to_tensor;
    use crate::data::faces::load_square;

    /// torchvision's MobileNetV2 calls the CC0 photo of Chelsea (scikit-image's sample)
    /// a cat. Needs `data/nets` from `scripts/fetch-data.sh`.
    #[test]
    fn classifies_a_cat_as_a_cat() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let device = Device::flex();
        let net = MobileNetV2::load(&crate::paths::Data::default().mobilenet(), &device)
            .expect("run scripts/fetch-data.sh first");
        let image =
            load_square(&root.join("assets/samples/imagenet/chelsea.png"), 224).expect("sample");
        let logits: Vec<f32> = net
            .classify(images_to_tensor(&[image], &device))
            .into_data()
            .try_into_vec()
            .expect("logits");
        let best = (0..1000)
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .expect("classes");
        // 281 tabby, 282 tiger cat, 285 Egyptian cat.
        assert!([281, 282, 285].contains(&best), "top-1 class {best}");
    }
}
