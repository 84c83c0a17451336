//! TS-VQGAN: the shared tokenizer (iLAT, Cao et al. 2021, §3.1; Taming, Esser et al.
//! 2021, §3.1).
//!
//! A 128x128 image (64x64 for the first models) becomes a 16x16 grid of codebook
//! indices. The encoder is made of
//! two-stream convolutions and per-position norms so that nothing under an edit mask
//! reaches the features of the kept region; decoding mixes codebook vectors inside
//! the mask with the encoder's continuous features outside it (Eq. 4), so the kept
//! region is reconstructed from more than nine bits per 4x4 patch.

mod decoder;
mod discriminator;
mod encoder;
mod quantizer;
pub mod train;

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Int;

pub use decoder::{Decoder, DecoderConfig};
pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use encoder::{Encoder, EncoderConfig};
pub use quantizer::{Quantized, Quantizer, QuantizerConfig};

use crate::nn::two_stream::downsample_mask;
use crate::region::Window;
use crate::store::{self, StoreError};

/// The faces' tokenizer's file name in a models folder (ImageBART and the sketch-guided
/// models work on its tokens).
pub const FACES: &str = "vqgan";

/// The people's own tokenizer's file name, for the pose models (a folder may have none).
pub const PEOPLE: &str = "people-vqgan";

/// The tokenizer person crops go through in the models folder `dir`: the people's own
/// when the folder has one, else the faces' (the 64 px models shared one tokenizer).
pub fn for_people(dir: &Path) -> &'static str {
    match dir.join(format!("{PEOPLE}.json")).exists() {
        true => PEOPLE,
        false => FACES,
    }
}

/// Hyper-parameters of the tokenizer.
#[derive(Config, Debug)]
pub struct VqganConfig {
    /// Channels at each resolution, finest first; `len − 1` halvings give the
    /// downsampling factor (3 widths: 64 → 16).
    #[config(default = "vec![48, 96, 128]")]
    pub widths: Vec<usize>,
    /// Residual blocks per resolution.
    #[config(default = 1)]
    pub blocks: usize,
    /// Extra residual blocks at the token resolution.
    #[config(default = 1)]
    pub mid_blocks: usize,
    /// Codebook size `K`.
    #[config(default = 512)]
    pub codebook_size: usize,
    /// Code dimension.
    #[config(default = 32)]
    pub code_dim: usize,
    /// Commitment weight β.
    #[config(default = 0.25)]
    pub beta: f64,
    /// Side of the images the model works on.
    #[config(default = 64)]
    pub image_size: usize,
}

/// Encoder, quantizer and decoder.
#[derive(Module, Debug)]
pub struct Vqgan {
    pub encoder: Encoder,
    pub quantizer: Quantizer,
    pub decoder: Decoder,
    factor: usize,
}

/// A forward pass through the whole tokenizer.
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// Decoded images, `[B, 3, H, W]`.
    pub images: Tensor<4>,
    /// The decoder's features that its output layer made `images` of.
    pub features: Tensor<4>,
    /// Quantiser output (indices, loss).
    pub quantized: Quantized,
}

impl VqganConfig {
    /// Builds the model with fresh weights.
    pub fn init(&self, device: &Device) -> Vqgan {
        Vqgan {
            encoder: EncoderConfig::new(
                self.widths.clone(),
                self.blocks,
                self.mid_blocks,
                self.code_dim,
            )
            .init(device),
            quantizer: QuantizerConfig::new(self.codebook_size, self.code_dim)
                .with_beta(self.beta)
                .init(device),
            decoder: DecoderConfig::new(
                self.widths.clone(),
                self.blocks,
                self.mid_blocks,
                self.code_dim,
            )
            .init(device),
            factor: self.factor(),
        }
    }

    /// Downsampling factor from pixels to tokens.
    pub fn factor(&self) -> usize {
        1 << self.widths.len().saturating_sub(1)
    }

    /// Side of the token grid.
    pub fn grid(&self) -> usize {
        self.image_size / self.factor()
    }

    /// A tiny tokenizer (32 codes of 8 numbers, widths 8-16-16: f = 4) for tests.
    #[cfg(test)]
    pub(crate) fn tiny(image_size: usize) -> Self {
        Self::new()
            .with_widths(vec![8, 16, 16])
            .with_codebook_size(32)
            .with_code_dim(8)
            .with_image_size(image_size)
    }
}

impl Vqgan {
    /// Loads a config (`NAME.json`) and its weights (`NAME.bpk`) from `dir`.
    pub fn load(
        dir: &Path,
        name: &str,
        device: &Device,
    ) -> Result<(Self, VqganConfig), StoreError> {
        store::load_model(dir, name, device, |config: &VqganConfig, device| {
            config.init(device)
        })
    }

    /// The token-grid mask `M_q` for a pixel mask: a token is masked when any pixel of
    /// its patch is.
    ///
    /// # Shapes
    /// - mask: `[B, 1, H, W]` → `[B, 1, H/f, W/f]`
    pub fn token_mask(&self, mask: Tensor<4>) -> Tensor<4> {
        downsample_mask(mask, self.factor)
    }

    /// [`Vqgan::token_mask`] as flags, batch-major and raster order within a grid.
    pub fn token_mask_flags(
        &self,
        mask: Tensor<4>,
    ) -> Result<Vec<bool>, burn::tensor::TensorReadError> {
        Ok(self
            .token_mask(mask)
            .try_into_vec_as::<f32>()?
            .into_iter()
            .map(|v| v > 0.5)
            .collect())
    }

    /// Reconstructs images. With a mask, the encoder is leak-free and decoding follows
    /// Eq. 4: codebook vectors where `M_q = 1`, continuous features elsewhere. Without a
    /// mask every position is quantised (plain VQGAN).
    ///
    /// # Shapes
    /// - images: `[B, 3, H, W]` in [-1, 1]; mask: `[B, 1, H, W]`
    pub fn forward(&self, images: Tensor<4>, mask: Option<Tensor<4>>) -> Reconstruction {
        let z = self.encoder.forward(images, mask.clone());
        let quantized = self.quantizer.forward(z);
        let latent = match mask {
            Some(mask) => mix(
                quantized.codes.clone(),
                quantized.continuous.clone(),
                self.token_mask(mask),
            ),
            None => quantized.codes.clone(),
        };
        let features = self.decoder.features(latent);
        Reconstruction {
            images: self.decoder.output(features.clone()),
            features,
            quantized,
        }
    }

    /// Encodes images to token indices (`[B, h, w]`) and continuous features (`[B, D, h, w]`).
    pub fn encode(
        &self,
        images: Tensor<4>,
        mask: Option<Tensor<4>>,
    ) -> (Tensor<3, Int>, Tensor<4>) {
        let quantized = self.quantizer.forward(self.encoder.forward(images, mask));
        (quantized.indices, quantized.continuous)
    }

    /// Decodes token indices, keeping the continuous features where `token_mask` is 0
    /// (Eq. 4): the pixels of `window` only (see [`Decoder::forward_window`]).
    ///
    /// # Shapes
    /// - indices: `[B, h, w]`, continuous: `[B, D, h, w]`, token_mask: `[B, 1, h, w]`
    /// - output: `[B, 3, window.height(), window.width()]`
    pub fn decode_mixed(
        &self,
        indices: Tensor<3, Int>,
        continuous: Tensor<4>,
        token_mask: Tensor<4>,
        window: Window,
    ) -> Tensor<4> {
        let codes = self.quantizer.lookup(indices);
        self.decoder
            .forward_window(mix(codes, continuous, token_mask), window)
    }

    /// Decodes token indices alone.
    pub fn decode(&self, indices: Tensor<3, Int>) -> Tensor<4> {
        self.decoder.forward(self.quantizer.lookup(indices))
    }
}

impl crate::tokens::Tokenizer for Vqgan {
    fn tokenize(&self, images: Tensor<4>, mask: Option<Tensor<4>>) -> Tensor<3, Int> {
        self.encode(images, mask).0
    }

    fn token_mask_flags(
        &self,
        mask: Tensor<4>,
    ) -> Result<Vec<bool>, burn::tensor::TensorReadError> {
        Vqgan::token_mask_flags(self, mask)
    }

    fn factor(&self) -> usize {
        self.factor
    }

    fn codes(&self) -> usize {
        self.quantizer.size()
    }

    fn device(&self) -> Device {
        self.devices().first().cloned().unwrap_or_else(Device::flex)
    }
}

/// Eq. 4: `z_q ⊙ M_q + ẑ ⊙ (1 − M_q)`, as an exact select.
///
/// # Shapes
/// - codes, continuous: `[B, D, h, w]`; token_mask: `[B, 1, h, w]`
fn mix(codes: Tensor<4>, continuous: Tensor<4>, token_mask: Tensor<4>) -> Tensor<4> {
    let dims = codes.dims();
    continuous.mask_where(token_mask.bool().expand(dims), codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tessera-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn mixed_decoding_uses_codes_exactly_where_masked() {
        let device = Device::flex();
        device.seed(21);
        let codes = Tensor::<4>::random([2, 8, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let continuous = Tensor::<4>::random([2, 8, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let token_mask =
            Tensor::<4>::random([2, 1, 4, 4], Distribution::Uniform(0.0, 1.0), &device)
                .greater_elem(0.5)
                .float();
        let mixed: Vec<f32> = mix(codes.clone(), continuous.clone(), token_mask.clone())
            .into_data()
            .try_into_vec()
            .expect("f32");
        let codes: Vec<f32> = codes.into_data().try_into_vec().expect("f32");
        let continuous: Vec<f32> = continuous.into_data().try_into_vec().expect("f32");
        let token_mask: Vec<f32> = token_mask.into_data().try_into_vec().expect("f32");
        for (i, &value) in mixed.iter().enumerate() {
            let (b, pos) = (i / (8 * 16), i % 16);
            let expected = if token_mask[b * 16 + pos] == 1.0 {
                codes[i]
            } else {
                continuous[i]
            };
            assert_eq!(value, expected, "entry {i}");
        }
    }

    /// Models are stored in half precision: the loaded model's pictures are the saved
    /// one's up to that rounding (a few thousandths of the [-1, 1] range).
    #[test]
    fn saved_and_loaded_model_gives_the_same_outputs_up_to_half_precision() {
        let device = Device::flex();
        device.seed(22);
        let config = VqganConfig::tiny(32);
        let model = config.init(&device);
        let dir = temp_dir("roundtrip");
        store::save_model(&dir, "vqgan", &config, model.clone()).expect("save");
        let (loaded, loaded_config) = Vqgan::load(&dir, "vqgan", &device).expect("load");
        assert_eq!(loaded_config.widths, config.widths);
        let images = Tensor::<4>::random([2, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
        let a = model.forward(images.clone(), None).images;
        let b = loaded.forward(images, None).images;
        let diff: Vec<f32> = (a - b).abs().try_into_vec_as().expect("read");
        let worst = diff.iter().copied().fold(0.0, f32::max);
        let mean = diff.iter().sum::<f32>() / diff.len() as f32;
        assert!(worst < 2e-2 && mean < 2e-3, "worst {worst}, mean {mean}");
        let full = model.into_record().into_bytes().expect("bytes").len() as f64;
        let stored = std::fs::metadata(dir.join("vqgan.bpk"))
            .expect("file")
            .len() as f64;
        assert!(stored < 0.6 * full, "{stored} bytes stored of {full}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn missing_or_truncated_model_file_is_named() {
        let device = Device::flex();
        let config = VqganConfig::tiny(32);
        let dir = temp_dir("damaged");
        let missing = Vqgan::load(&dir, "vqgan", &device).expect_err("nothing saved yet");
        assert!(missing.to_string().contains("vqgan.json"), "{missing}");
        store::save_model(&dir, "vqgan", &config, config.init(&device)).expect("save");
        let weights = dir.join("vqgan.bpk");
        let bytes = std::fs::read(&weights).expect("read");
        std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");
        let damaged = Vqgan::load(&dir, "vqgan", &device).expect_err("truncated");
        assert!(damaged.to_string().contains("vqgan.bpk"), "{damaged}");
        std::fs::write(&weights, b"not a model").expect("garble");
        let garbled = Vqgan::load(&dir, "vqgan", &device).expect_err("garbled");
        assert!(garbled.to_string().contains("vqgan.bpk"), "{garbled}");
        // Weights of another architecture.
        store::save_model(
            &dir,
            "other",
            &config,
            config.clone().with_code_dim(4).init(&device),
        )
        .expect("save");
        std::fs::copy(dir.join("other.bpk"), &weights).expect("copy");
        let mismatch = Vqgan::load(&dir, "vqgan", &device).expect_err("mismatch");
        assert!(
            mismatch.to_string().contains("does not match"),
            "{mismatch}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
