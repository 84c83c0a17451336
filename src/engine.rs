//! The engine: the one API through which the editor, the command line and the tests
//! reach the models. It takes and returns plain images and masks; tensors never leave
//! it. Models are loaded on first use and kept.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use image::{GrayImage, RgbImage};

use crate::backend::{self, Backend, BackendChoice};
use crate::data::convert::{images_to_tensor, masks_to_tensor, tensor_to_images};
use crate::store::StoreError;
use crate::vqgan::{Vqgan, VqganConfig};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A model file is missing, damaged or does not fit its config.
    #[error(transparent)]
    Model(#[from] StoreError),
    /// No GPU where one was demanded.
    #[error(transparent)]
    Backend(#[from] backend::NoGpu),
    /// An input does not fit what the call expects.
    #[error("{0}")]
    Input(String),
}

/// A grid of codebook indices, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrid {
    /// Side of the grid.
    pub side: usize,
    /// `side * side` indices.
    pub indices: Vec<usize>,
}

/// Loaded models on one device.
pub struct Engine {
    backend: Backend,
    models_dir: PathBuf,
    vqgan: Option<(Vqgan, VqganConfig)>,
}

impl Engine {
    /// Chooses the backend; models are read from `models_dir` when first needed.
    pub fn new(models_dir: &Path, choice: BackendChoice) -> Result<Self, EngineError> {
        Ok(Self {
            backend: backend::select(choice)?,
            models_dir: models_dir.to_path_buf(),
            vqgan: None,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The tokenizer, loaded on first use.
    fn vqgan(&mut self) -> Result<&(Vqgan, VqganConfig), EngineError> {
        if self.vqgan.is_none() {
            let loaded = Vqgan::load(&self.models_dir, "vqgan", &self.backend.device)?;
            tracing::info!("loaded the tokenizer from {}", self.models_dir.display());
            self.vqgan = Some(loaded);
        }
        self.vqgan
            .as_ref()
            .ok_or_else(|| EngineError::Input("tokenizer unavailable".into()))
    }

    /// Side of the images the models work at.
    pub fn image_size(&mut self) -> Result<u32, EngineError> {
        Ok(self.vqgan()?.1.image_size as u32)
    }

    /// Codebook size of the tokenizer.
    pub fn codebook_size(&mut self) -> Result<usize, EngineError> {
        Ok(self.vqgan()?.1.codebook_size)
    }

    /// Tokenizes and decodes model-sized images (every token quantised): what the
    /// tokenizer keeps of a picture. Returns the reconstructions and token grids.
    pub fn reconstruct(
        &mut self,
        images: &[RgbImage],
    ) -> Result<(Vec<RgbImage>, Vec<TokenGrid>), EngineError> {
        let size = self.image_size()?;
        check_sizes(images.iter().map(|i| i.dimensions()), size)?;
        let device = self.backend.device.clone();
        let (vqgan, _) = self.vqgan()?;
        let out = vqgan.forward(images_to_tensor(images, &device), None);
        Ok((
            tensor_to_images(out.images),
            token_grids(out.quantized.indices),
        ))
    }

    /// Tokenizes model-sized images with the leak-free encoder: token grids whose
    /// entries outside `masks` do not depend on the pixels inside them.
    pub fn tokenize(
        &mut self,
        images: &[RgbImage],
        masks: &[GrayImage],
    ) -> Result<Vec<TokenGrid>, EngineError> {
        let size = self.image_size()?;
        check_sizes(images.iter().map(|i| i.dimensions()), size)?;
        check_sizes(masks.iter().map(|m| m.dimensions()), size)?;
        if images.len() != masks.len() {
            return Err(EngineError::Input(format!(
                "{} images but {} masks",
                images.len(),
                masks.len()
            )));
        }
        let device = self.backend.device.clone();
        let (vqgan, _) = self.vqgan()?;
        let mask = masks_to_tensor(masks, &device);
        let (indices, _) = vqgan.encode(images_to_tensor(images, &device), Some(mask));
        Ok(token_grids(indices))
    }
}

fn check_sizes(dims: impl Iterator<Item = (u32, u32)>, size: u32) -> Result<(), EngineError> {
    for (w, h) in dims {
        if (w, h) != (size, size) {
            return Err(EngineError::Input(format!(
                "expected {size}x{size} inputs, got {w}x{h}"
            )));
        }
    }
    Ok(())
}

fn token_grids(indices: Tensor<3, Int>) -> Vec<TokenGrid> {
    let [batch, side, _] = indices.dims();
    let flat: Vec<i64> = indices
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .unwrap_or_default();
    flat.chunks(side * side)
        .take(batch)
        .map(|chunk| TokenGrid {
            side,
            indices: chunk.iter().map(|&i| i as usize).collect(),
        })
        .collect()
}
