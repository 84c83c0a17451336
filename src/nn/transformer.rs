//! The one transformer of Tessera (pre-norm, GELU MLP), shared by iLAT, the Taming
//! baseline and ImageBART. Attention masks are inputs, never baked in: the same
//! weights run causal, local-autoregressive (iLAT Eq. 7-8) or bidirectional.
//!
//! Queries, keys and values come from one fused projection, and attention is burn's
//! fused `attention` op, which takes a boolean mask (`true` = may not attend).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

/// Configuration of a [`Transformer`].
#[derive(Config, Debug)]
pub struct TransformerConfig {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Attention heads (`d_model` must be a multiple).
    pub n_heads: usize,
    /// Blocks.
    pub n_layers: usize,
    /// Hidden width of the MLP, as a multiple of `d_model`.
    #[config(default = 4)]
    pub mlp_ratio: usize,
}

/// One pre-norm block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
#[derive(Module, Debug)]
struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    n_heads: usize,
}

/// A stack of blocks and a final norm.
#[derive(Module, Debug)]
pub struct Transformer {
    blocks: Vec<Block>,
    norm: LayerNorm,
}

impl TransformerConfig {
    /// Builds the transformer with fresh weights.
    pub fn init(&self, device: &Device) -> Transformer {
        let d = self.d_model;
        let blocks = (0..self.n_layers)
            .map(|_| Block {
                norm1: LayerNormConfig::new(d).init(device),
                qkv: LinearConfig::new(d, 3 * d).init(device),
                proj: LinearConfig::new(d, d).init(device),
                norm2: LayerNormConfig::new(d).init(device),
                fc1: LinearConfig::new(d, self.mlp_ratio * d).init(device),
                fc2: LinearConfig::new(self.mlp_ratio * d, d).init(device),
                n_heads: self.n_heads,
            })
            .collect();
        Transformer {
            blocks,
            norm: LayerNormConfig::new(d).init(device),
        }
    }
}

impl Transformer {
    /// # Shapes
    /// - x: `[B, T, D]`; mask: `[B, H, T, T]` (`true` = blocked), or none for full attention
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4, Bool>>) -> Tensor<3> {
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x, mask.clone());
        }
        self.norm.forward(x)
    }
}

impl Block {
    fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4, Bool>>) -> Tensor<3> {
        let [batch, tokens, d] = x.dims();
        let head = d / self.n_heads;
        let qkv = self
            .qkv
            .forward(self.norm1.forward(x.clone())) // [B, T, 3D]
            .reshape([batch, tokens, 3, self.n_heads, head])
            .permute([2, 0, 3, 1, 4]); // [3, B, H, T, d_h]
        let pick = |i: usize| {
            qkv.clone()
                .narrow(0, i, 1)
                .reshape([batch, self.n_heads, tokens, head])
        };
        let context = attention(
            pick(0),
            pick(1),
            pick(2),
            mask,
            None,
            AttentionModuleOptions::default(),
        );
        let context = context.swap_dims(1, 2).reshape([batch, tokens, d]); // [B, T, D]
        let x = x + self.proj.forward(context);
        let hidden = gelu(self.fc1.forward(self.norm2.forward(x.clone())));
        x + self.fc2.forward(hidden)
    }
}

/// The causal mask of `tokens` positions for `batch` x `heads`: position `i` may
/// attend to `j ≤ i` only.
pub fn causal_mask(batch: usize, heads: usize, tokens: usize, device: &Device) -> Tensor<4, Bool> {
    let blocked: Vec<bool> = (0..tokens * tokens)
        .map(|i| i % tokens > i / tokens)
        .collect();
    Tensor::<2, Bool>::from_data(TensorData::new(blocked, [tokens, tokens]), device)
        .reshape([1, 1, tokens, tokens])
        .expand([batch, heads, tokens, tokens])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn causal_outputs_ignore_later_tokens() {
        let device = Device::flex();
        device.seed(31);
        let model = TransformerConfig::new(16, 4, 2).init(&device);
        let x = Tensor::<3>::random([1, 6, 16], Distribution::Normal(0.0, 1.0), &device);
        let changed = Tensor::cat(
            vec![
                x.clone().narrow(1, 0, 4),
                Tensor::random([1, 2, 16], Distribution::Normal(0.0, 1.0), &device),
            ],
            1,
        );
        let mask = causal_mask(1, 4, 6, &device);
        let a = model.forward(x, Some(mask.clone())).narrow(1, 0, 4);
        let b = model.forward(changed, Some(mask)).narrow(1, 0, 4);
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-5));
    }
}
