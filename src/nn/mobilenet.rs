//! MobileNetV2 (Sandler et al. 2018) with torchvision's ImageNet weights, frozen.
//!
//! It is the feature network of the perceptual loss (DESIGN §4a: LPIPS's VGG is not
//! obtainable here). The weights are read from the safetensors file that
//! `scripts/fetch-data.sh` converts from torchvision's checkpoint, with torchvision's
//! parameter names; each BatchNorm is folded into the convolution before it, which is
//! exact in inference and leaves a plain stack of convolutions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu6;

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

/// Why the network could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MobileNetError {
    /// No weights file.
    #[error("feature network {} is missing (run `scripts/fetch-data.sh`)", .0.display())]
    Missing(PathBuf),
    /// The file is not a valid safetensors file or lacks a tensor.
    #[error("feature network {} is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
}

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
        let stem = weights.conv_bn("features.0.0", "features.0.1", 2, 1, device)?;
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
                    let expand = weights.conv_bn(
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
                    depthwise: weights.conv_bn(&dw.0, &dw.1, stride, d_in * t, device)?,
                    project: weights.conv_bn(&proj, &bn, 1, 1, device)?,
                    residual: stride == 1 && d_in == c,
                });
                d_in = c;
            }
        }
        let head = weights.conv_bn("features.18.0", "features.18.1", 1, 1, device)?;
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

/// The tensors of a safetensors file, by name, as f32.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    fn read(path: &Path) -> Result<Self, MobileNetError> {
        let bytes = std::fs::read(path).map_err(|_| MobileNetError::Missing(path.to_path_buf()))?;
        let damaged = |reason: String| MobileNetError::Damaged {
            path: path.to_path_buf(),
            reason,
        };
        let file =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| damaged(e.to_string()))?;
        let mut tensors = HashMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(damaged(format!(
                    "{name} is {:?}, expected F32",
                    view.dtype()
                )));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
        })
    }

    fn get(&self, name: &str) -> Result<&(Vec<usize>, Vec<f32>), MobileNetError> {
        self.tensors
            .get(name)
            .ok_or_else(|| MobileNetError::Damaged {
                path: self.path.clone(),
                reason: format!("tensor {name} is missing"),
            })
    }

    /// A convolution with the BatchNorm after it folded in:
    /// `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
    fn conv_bn(
        &self,
        conv: &str,
        bn: &str,
        stride: usize,
        groups: usize,
        device: &Device,
    ) -> Result<Conv2d, MobileNetError> {
        let (shape, weight) = self.get(&format!("{conv}.weight"))?;
        let (_, gamma) = self.get(&format!("{bn}.weight"))?;
        let (_, beta) = self.get(&format!("{bn}.bias"))?;
        let (_, mean) = self.get(&format!("{bn}.running_mean"))?;
        let (_, var) = self.get(&format!("{bn}.running_var"))?;
        let [d_out, d_in_per_group, k, _] = [shape[0], shape[1], shape[2], shape[3]];
        let per_out = weight.len() / d_out;
        let scale: Vec<f32> = (0..d_out)
            .map(|o| gamma[o] / (var[o] + 1e-5).sqrt())
            .collect();
        let folded: Vec<f32> = weight
            .iter()
            .enumerate()
            .map(|(i, w)| w * scale[i / per_out])
            .collect();
        let bias: Vec<f32> = (0..d_out).map(|o| beta[o] - mean[o] * scale[o]).collect();
        let pad = k / 2;
        let mut layer = Conv2dConfig::new([d_in_per_group * groups, d_out], [k, k])
            .with_stride([stride, stride])
            .with_groups(groups)
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(device);
        layer.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(folded, shape.clone()),
            device,
        ));
        layer.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [d_out]),
            device,
        )));
        Ok(layer)
    }

    fn linear(&self, name: &str, device: &Device) -> Result<Linear, MobileNetError> {
        let (shape, weight) = self.get(&format!("{name}.weight"))?;
        let (_, bias) = self.get(&format!("{name}.bias"))?;
        let (d_out, d_in) = (shape[0], shape[1]);
        let mut layer = LinearConfig::new(d_in, d_out).init(device);
        // torch stores [out, in]; burn's row layout is [in, out].
        let weight = Tensor::<2>::from_data(TensorData::new(weight.clone(), [d_out, d_in]), device)
            .transpose();
        layer.weight = Param::from_tensor(weight);
        layer.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias.clone(), [d_out]),
            device,
        )));
        Ok(layer)
    }
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
        let net = MobileNetV2::load(
            &crate::paths::data_dir().join("nets/mobilenet_v2.safetensors"),
            &device,
        )
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
