//! One reverse step of ImageBART, `p_θ(x_{t−1} | x_t)` (§3.3, App. B): a bidirectional
//! encoder reads the noisier grid `x_t`, and an autoregressive decoder writes `x_{t−1}`
//! token by token, attending to the encoder's output through cross-attention. The
//! last step (`t = T`), whose `x_T` is noise, is decoder-only. Both halves are the
//! shared transformer of `nn::transformer`.
//!
//! Decoder position `p` holds the start token (`p = 0`) or token `p − 1` of `x_{t−1}`,
//! and its output predicts token `p`, as in iLAT's token network.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::nn::transformer::{KvCache, Transformer, TransformerConfig, causal_mask};
use crate::store::{self, StoreError};

/// Configuration of one reverse step.
#[derive(Config, Debug)]
pub struct ReverseConfig {
    /// Codebook size of the tokenizer.
    pub vocab: usize,
    /// Side of the token grid.
    pub grid: usize,
    /// Width of both transformers.
    #[config(default = 256)]
    pub d_model: usize,
    /// Attention heads.
    #[config(default = 8)]
    pub n_heads: usize,
    /// Encoder blocks; 0 makes the decoder-only last step.
    #[config(default = 3)]
    pub encoder_layers: usize,
    /// Decoder blocks.
    #[config(default = 4)]
    pub decoder_layers: usize,
}

impl ReverseConfig {
    /// Tokens in a grid.
    pub fn tokens(&self) -> usize {
        self.grid * self.grid
    }

    /// Builds the step with fresh weights.
    pub fn init(&self, device: &Device) -> Reverse {
        let n = self.tokens();
        let encoder = (self.encoder_layers > 0).then(|| {
            TransformerConfig::new(self.d_model, self.n_heads, self.encoder_layers, n).init(device)
        });
        Reverse {
            context: EmbeddingConfig::new(self.vocab, self.d_model).init(device),
            encoder,
            tokens: EmbeddingConfig::new(self.vocab + 1, self.d_model).init(device),
            decoder: TransformerConfig::new(self.d_model, self.n_heads, self.decoder_layers, n)
                .with_cross_attention(self.encoder_layers > 0)
                .init(device),
            head: LinearConfig::new(self.d_model, self.vocab).init(device),
            vocab: self.vocab,
        }
    }

    /// A tiny step for tests.
    #[cfg(test)]
    pub(crate) fn tiny(vocab: usize, encoder_layers: usize) -> Self {
        Self::new(vocab, 4)
            .with_d_model(16)
            .with_n_heads(2)
            .with_encoder_layers(encoder_layers)
            .with_decoder_layers(2)
    }
}

/// Encoder, decoder and head of one reverse step.
#[derive(Module, Debug)]
pub struct Reverse {
    /// Embedding of `x_t`'s tokens for the encoder.
    context: Embedding,
    encoder: Option<Transformer>,
    /// Embedding of `x_{t−1}`'s tokens (and the start token) for the decoder.
    tokens: Embedding,
    decoder: Transformer,
    head: Linear,
    vocab: usize,
}

impl Reverse {
    /// Loads `NAME.json` + `NAME.bpk` from `dir`.
    pub fn load(
        dir: &std::path::Path,
        name: &str,
        device: &Device,
    ) -> Result<(Self, ReverseConfig), StoreError> {
        store::load_model(dir, name, device, |config: &ReverseConfig, device| {
            config.init(device)
        })
    }

    /// The id of the start token.
    pub fn start_token(&self) -> usize {
        self.vocab
    }

    /// The encoded `x_t`, the decoder's memory (none for the decoder-only step).
    ///
    /// # Shapes
    /// - x_t: `[B, N]` → `[B, N, D]`
    pub fn encode(&self, x_t: Tensor<2, Int>) -> Option<Tensor<3>> {
        let encoder = self.encoder.as_ref()?;
        Some(encoder.forward(self.context.forward(x_t), None))
    }

    /// Logits of every decoder position, teacher forced.
    ///
    /// # Shapes
    /// - inputs: `[B, N]` (start token, then `x_{t−1}` shifted by one); memory
    ///   `[B, N, D]`
    /// - output: `[B, N, vocab]`
    pub fn logits(&self, inputs: Tensor<2, Int>, memory: Option<&Tensor<3>>) -> Tensor<3> {
        let [batch, n] = inputs.dims();
        let device = inputs.device();
        let mask = causal_mask(batch, self.decoder.heads(), n, &device);
        let hidden =
            self.decoder
                .forward_with_memory(self.tokens.forward(inputs), Some(mask), memory);
        self.head.forward(hidden)
    }

    /// Runs decoder rows of `B` sequences (each one's input ids at `positions`)
    /// against the cache and returns the logits of each one's last row.
    ///
    /// # Shapes
    /// - inputs: `B` rows of `t` ids; memory: `[B, N, D]`; mask: `[1 or B, H, t,
    ///   T_cached + t]`
    /// - output: `[B, vocab]`
    pub fn step(
        &self,
        inputs: &[Vec<usize>],
        positions: &[usize],
        mask: Option<Tensor<4, Bool>>,
        cache: &mut KvCache,
        memory: Option<&Tensor<3>>,
    ) -> Tensor<2> {
        let device = self.head.weight.val().device();
        let (b, t) = (inputs.len(), positions.len());
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(inputs.iter().flatten().map(|&i| i as i64).collect(), [b, t]),
            &device,
        );
        let positions = Tensor::<1, Int>::from_data(
            TensorData::new(positions.iter().map(|&p| p as i64).collect(), [t]),
            &device,
        );
        let hidden =
            self.decoder
                .forward_cached(self.tokens.forward(ids), positions, mask, cache, memory);
        self.head.forward(hidden).reshape([b, self.vocab])
    }

    /// Attention heads of the decoder (the second axis of its masks).
    pub fn heads(&self) -> usize {
        self.decoder.heads()
    }
}
