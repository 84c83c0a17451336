//! Weights of the frozen feature networks (MobileNetV2, InceptionV3), read from the
//! safetensors files `scripts/fetch-data.sh` converts, with batch norms folded into
//! the convolutions before them (exact in inference).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

/// Why a feature network could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FeatureNetError {
    /// No weights file.
    #[error("feature network {} is missing (run `scripts/fetch-data.sh`)", .0.display())]
    Missing(PathBuf),
    /// The file is not a valid safetensors file or lacks a tensor.
    #[error("feature network {} is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
}

/// A batch norm in inference: per channel `γ`, `β`, mean, variance and `ε`.
pub struct Norm<'a> {
    pub gamma: Option<&'a [f32]>,
    pub beta: &'a [f32],
    pub mean: &'a [f32],
    pub var: &'a [f32],
    pub eps: f32,
}

/// How a convolution is laid out: stride, padding (rows, columns), groups.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub stride: usize,
    pub padding: (usize, usize),
    pub groups: usize,
}

/// The tensors of a safetensors file, by name, as f32.
pub struct Weights {
    path: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    pub fn read(path: &Path) -> Result<Self, FeatureNetError> {
        let bytes =
            std::fs::read(path).map_err(|_| FeatureNetError::Missing(path.to_path_buf()))?;
        let damaged = |reason: String| FeatureNetError::Damaged {
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

    pub fn get(&self, name: &str) -> Result<&(Vec<usize>, Vec<f32>), FeatureNetError> {
        self.tensors
            .get(name)
            .ok_or_else(|| FeatureNetError::Damaged {
                path: self.path.clone(),
                reason: format!("tensor {name} is missing"),
            })
    }

    /// A convolution with the batch norm after it folded in:
    /// `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
    pub fn folded_conv(
        &self,
        conv: &str,
        norm: &Norm<'_>,
        layout: Layout,
        device: &Device,
    ) -> Result<Conv2d, FeatureNetError> {
        let (shape, weight) = self.get(&format!("{conv}.weight"))?;
        let [d_out, d_in_per_group, kh, kw] = [shape[0], shape[1], shape[2], shape[3]];
        let per_out = weight.len() / d_out;
        let scale: Vec<f32> = (0..d_out)
            .map(|o| norm.gamma.map_or(1.0, |g| g[o]) / (norm.var[o] + norm.eps).sqrt())
            .collect();
        let folded: Vec<f32> = weight
            .iter()
            .enumerate()
            .map(|(i, w)| w * scale[i / per_out])
            .collect();
        let bias: Vec<f32> = (0..d_out)
            .map(|o| norm.beta[o] - norm.mean[o] * scale[o])
            .collect();
        let (ph, pw) = layout.padding;
        let mut layer = Conv2dConfig::new([d_in_per_group * layout.groups, d_out], [kh, kw])
            .with_stride([layout.stride, layout.stride])
            .with_groups(layout.groups)
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
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

    pub fn linear(&self, name: &str, device: &Device) -> Result<Linear, FeatureNetError> {
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
