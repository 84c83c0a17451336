//! What a token model needs of the tokenizer: pictures in, token grids out, and the
//! geometry of the grid. The token models and their trainers see the tokenizer only
//! through this trait, so none of them depends on the tokenizer's module.

use burn::prelude::*;
use burn::tensor::TensorReadError;

/// Pictures to token grids.
pub trait Tokenizer {
    /// Token ids `[B, h, w]` of pictures `[B, 3, H, W]` in [-1, 1]. With a mask
    /// (`[B, 1, H, W]`, 1 = masked) the encoding is leak-free: no token outside the
    /// mask depends on a masked pixel.
    fn tokenize(&self, images: Tensor<4>, mask: Option<Tensor<4>>) -> Tensor<3, Int>;

    /// Which tokens a pixel mask covers (any pixel of the patch), batch-major and in
    /// raster order within a grid.
    fn token_mask_flags(&self, mask: Tensor<4>) -> Result<Vec<bool>, TensorReadError>;

    /// Pixels per side of a token's patch.
    fn factor(&self) -> usize;

    /// Codebook size.
    fn codes(&self) -> usize;

    /// The device it runs on.
    fn device(&self) -> Device;

    /// Refuses a token model over `vocab` codes whose patches are `patch` pixels wide.
    fn check_fits(&self, vocab: usize, patch: usize) -> Result<(), TokenizerMismatch> {
        if self.codes() == vocab && self.factor() == patch {
            return Ok(());
        }
        Err(TokenizerMismatch {
            codes: self.codes(),
            factor: self.factor(),
            vocab,
            patch,
        })
    }
}

/// A token model that does not fit the tokenizer it is given.
#[derive(Debug, thiserror::Error)]
#[error(
    "the tokenizer has {codes} codes on {factor}x{factor}-pixel patches, the model expects {vocab} codes on {patch}x{patch}"
)]
pub struct TokenizerMismatch {
    pub codes: usize,
    pub factor: usize,
    pub vocab: usize,
    pub patch: usize,
}
