//! The one transformer of Tessera (pre-norm, ReLU MLP), shared by iLAT, the Taming
//! baseline and ImageBART. Attention masks are inputs, never baked in: the same
//! weights run causal, local-autoregressive (iLAT Eq. 7-8) or bidirectional.
//!
//! Queries, keys and values share one `[D, 3D]` projection weight, and attention is
//! [`super::fused::attention`] (fused on the CPU), which takes a boolean mask (`true` =
//! may not attend).
//!
//! Positions are learned embeddings added at the input; a caller names the position of
//! every input row, so a sampler can feed positions in any order (iLAT runs the kept
//! tokens first and the masked ones after).
//!
//! With `cross_attention`, every block also attends to a *memory* (the output of an
//! encoder) between its self-attention and its MLP: ImageBART's decoder reads the
//! encoded noisier grid that way.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::fused::{attention, layer_norm};

/// Configuration of a [`Transformer`].
#[derive(Config, Debug)]
pub struct TransformerConfig {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Attention heads (`d_model` must be a multiple).
    pub n_heads: usize,
    /// Blocks.
    pub n_layers: usize,
    /// Learned positions (the longest sequence).
    pub max_positions: usize,
    /// Hidden width of the MLP, as a multiple of `d_model`.
    #[config(default = 4)]
    pub mlp_ratio: usize,
    /// Whether blocks attend to a memory (an encoder-decoder's decoder).
    #[config(default = false)]
    pub cross_attention: bool,
}

/// Attention from the stream to a memory: `x + proj(attn(q(norm(x)), kv(memory)))`.
#[derive(Module, Debug)]
struct CrossAttention {
    norm: LayerNorm,
    q: Linear,
    kv: Linear,
    proj: Linear,
}

/// One pre-norm block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
#[derive(Module, Debug)]
struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    cross: Option<CrossAttention>,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    n_heads: usize,
}

/// Learned positions, a stack of blocks and a final norm.
#[derive(Module, Debug)]
pub struct Transformer {
    positions: Embedding,
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
                cross: self.cross_attention.then(|| CrossAttention {
                    norm: LayerNormConfig::new(d).init(device),
                    q: LinearConfig::new(d, d).init(device),
                    kv: LinearConfig::new(d, 2 * d).init(device),
                    proj: LinearConfig::new(d, d).init(device),
                }),
                norm2: LayerNormConfig::new(d).init(device),
                fc1: LinearConfig::new(d, self.mlp_ratio * d).init(device),
                fc2: LinearConfig::new(self.mlp_ratio * d, d).init(device),
                n_heads: self.n_heads,
            })
            .collect();
        Transformer {
            positions: EmbeddingConfig::new(self.max_positions, d).init(device),
            blocks,
            norm: LayerNormConfig::new(d).init(device),
        }
    }
}

/// Keys and values of the positions already run, per layer (and, for a decoder, those
/// of the memory, computed once).
///
/// Sampling runs the known context once and then one new position per step, each
/// attending to everything cached: O(T) work per generated token instead of O(T²). The
/// keys and values live in buffers with room for the model's longest sequence
/// (`[B, H, max_positions, d_h]`), written in place: appending by concatenation would
/// copy the whole cache at every step and layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor<4>, Tensor<4>)>,
    memory: Vec<(Tensor<4>, Tensor<4>)>,
    len: usize,
}

impl KvCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cache of one sequence made the cache of `n` sequences that share its rows
    /// (the context pass of `n` candidates, run once).
    pub fn repeat(self, n: usize) -> Self {
        let repeat = |pairs: Vec<(Tensor<4>, Tensor<4>)>| {
            pairs
                .into_iter()
                .map(|(k, v)| (k.repeat_dim(0, n), v.repeat_dim(0, n)))
                .collect()
        };
        Self {
            layers: repeat(self.layers),
            memory: repeat(self.memory),
            len: self.len,
        }
    }
}

impl Transformer {
    /// Runs new rows that attend to all cached rows and, through `mask`, to each
    /// other (and to `memory`, for a decoder); their keys and values are appended to
    /// `cache`, and the output of the last new row is returned. A sampler reads no other
    /// (the rows before it are context: the kept tokens of an edit, a known token riding
    /// along), so the last block makes only their keys and values: a seventh less work
    /// on them in a 6-block model.
    ///
    /// # Shapes
    /// - x: `[B, t, D]`; positions: `[t]`; mask: `[B, H, t, T_cached + t]` (`true` =
    ///   blocked), or none; memory: `[B, S, D]`
    /// - output: `[B, 1, D]`
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        positions: Tensor<1, Int>,
        mask: Option<Tensor<4, Bool>>,
        cache: &mut KvCache,
        memory: Option<&Tensor<3>>,
    ) -> Tensor<3> {
        let [batch, tokens, d] = x.dims();
        let capacity = self.positions.weight.dims()[0];
        let (start, end) = (cache.len, cache.len + tokens);
        assert!(end <= capacity, "{end} positions, the model has {capacity}");
        let mut x = self.add_positions(x, positions);
        let mut buffers = std::mem::take(&mut cache.layers).into_iter();
        for (i, block) in self.blocks.iter().enumerate() {
            let (keys, values) = buffers.next().unwrap_or_else(|| {
                let shape = [batch, block.n_heads, capacity, d / block.n_heads];
                let empty = || Tensor::zeros(shape, &x.device());
                (empty(), empty())
            });
            let mut written = None;
            // The last block's output is read for the last row only.
            let outputs = if i + 1 == self.blocks.len() {
                1
            } else {
                tokens
            };
            x = block.self_attention(x, mask.clone(), outputs, |new_keys, new_values| {
                let rows = [0..batch, 0..block.n_heads, start..end, 0..d / block.n_heads];
                let keys = keys.slice_assign(rows.clone(), new_keys);
                let values = values.slice_assign(rows, new_values);
                let seen = (
                    keys.clone().narrow(2, 0, end),
                    values.clone().narrow(2, 0, end),
                );
                written = Some((keys, values));
                seen
            });
            cache
                .layers
                .push(written.expect("the block wrote its keys and values"));
            if let (Some(cross), Some(memory)) = (&block.cross, memory) {
                if cache.memory.len() <= i {
                    cache.memory.push(cross.memory(memory, block.n_heads));
                }
                x = cross.forward(x, &cache.memory[i], block.n_heads);
            }
            x = block.mlp(x);
        }
        cache.len = end;
        layer_norm(&self.norm, x)
    }

    /// Attention heads, the second axis of every mask.
    pub fn heads(&self) -> usize {
        self.blocks.first().map_or(1, |b| b.n_heads)
    }

    /// Runs a whole sequence, row `i` at position `i`.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`; mask: `[B, H, T, T]` (`true` = blocked), or none for full attention
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4, Bool>>) -> Tensor<3> {
        self.forward_with_memory(x, mask, None)
    }

    /// [`Transformer::forward`] of a decoder, every block also attending to `memory`
    /// (without a mask).
    ///
    /// # Shapes
    /// - memory: `[B, S, D]`
    pub fn forward_with_memory(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        memory: Option<&Tensor<3>>,
    ) -> Tensor<3> {
        let [_, tokens, _] = x.dims();
        let positions = Tensor::arange(0..tokens as i64, &x.device());
        let mut x = self.add_positions(x, positions);
        for block in &self.blocks {
            x = block.self_attention(x, mask.clone(), tokens, |keys, values| (keys, values));
            if let (Some(cross), Some(memory)) = (&block.cross, memory) {
                x = cross.forward(x, &cross.memory(memory, block.n_heads), block.n_heads);
            }
            x = block.mlp(x);
        }
        layer_norm(&self.norm, x)
    }

    /// # Shapes
    /// - x: `[B, t, D]`; positions: `[t]`
    fn add_positions(&self, x: Tensor<3>, positions: Tensor<1, Int>) -> Tensor<3> {
        let [tokens, d] = [positions.dims()[0], x.dims()[2]];
        x + self
            .positions
            .weight
            .val()
            .select(0, positions)
            .reshape([1, tokens, d])
    }
}

/// `linear` applied to `[B, T, D]` as one `[B·T, D]` matrix: burn keeps a batch of
/// 256-row blocks as a batched product against the broadcast weight (`B` small
/// GEMMs), slower here than the one large product.
fn flat(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [batch, tokens, d] = x.dims();
    let out = linear.weight.dims()[1];
    linear
        .forward(x.reshape([batch * tokens, d]))
        .reshape([batch, tokens, out])
}

/// Splits `[B, T, D]` into heads, `[B, H, T, d_h]`.
fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [batch, tokens, d] = x.dims();
    x.reshape([batch, tokens, heads, d / heads]).swap_dims(1, 2)
}

impl CrossAttention {
    /// The memory's keys and values, `[B, H, S, d_h]` each.
    fn memory(&self, memory: &Tensor<3>, heads: usize) -> (Tensor<4>, Tensor<4>) {
        let d = memory.dims()[2];
        let kv = flat(&self.kv, memory.clone()); // [B, S, 2D]
        (
            split_heads(kv.clone().narrow(2, 0, d), heads),
            split_heads(kv.narrow(2, d, d), heads),
        )
    }

    /// # Shapes
    /// - x: `[B, t, D]` → `[B, t, D]`
    fn forward(
        &self,
        x: Tensor<3>,
        (keys, values): &(Tensor<4>, Tensor<4>),
        heads: usize,
    ) -> Tensor<3> {
        let [batch, tokens, d] = x.dims();
        let queries = split_heads(flat(&self.q, layer_norm(&self.norm, x.clone())), heads);
        let context = attention(queries, keys.clone(), values.clone(), None); // [B, H, t, d_h]
        x + flat(
            &self.proj,
            context.swap_dims(1, 2).reshape([batch, tokens, d]),
        )
    }
}

impl Block {
    /// `x + mlp(norm(x))`.
    fn mlp(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = relu(flat(&self.fc1, layer_norm(&self.norm2, x.clone())));
        x + flat(&self.fc2, hidden)
    }

    /// Queries (`part` 0), keys (1) or values (2) of `x`, split into heads
    /// `[B, H, t, d_h]`: the fused projection's weight is sliced, not its output, so
    /// the backward pass accumulates into a `[D, 3D]` weight instead of a
    /// `[B, t, 3D]` activation (slicing the output costs a zero-filled copy of it per
    /// part and layer in the backward pass).
    fn projection(&self, x: &Tensor<3>, part: usize) -> Tensor<4> {
        let [batch, tokens, d] = x.dims();
        let weight = self.qkv.weight.val().narrow(1, part * d, d);
        let mut out = x.clone().reshape([batch * tokens, d]).matmul(weight);
        if let Some(bias) = &self.qkv.bias {
            out = out + bias.val().narrow(0, part * d, d).unsqueeze();
        }
        split_heads(out.reshape([batch, tokens, d]), self.n_heads)
    }

    /// The self-attention half of the block, `x + attn(norm(x))`, for the last `outputs`
    /// rows of `x`: every row still gets keys and values (later rows attend to them),
    /// but only the rows whose output is read need queries, attention and the output
    /// projection. `seen` turns the new rows' keys and values into those they attend to
    /// (a cache prepends the earlier positions').
    ///
    /// # Shapes
    /// - x: `[B, t, D]`; mask: `[B, H, t, T]` with `T` the positions `seen` returns
    /// - output: `[B, outputs, D]`
    fn self_attention(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        outputs: usize,
        seen: impl FnOnce(Tensor<4>, Tensor<4>) -> (Tensor<4>, Tensor<4>),
    ) -> Tensor<3> {
        let [batch, tokens, d] = x.dims();
        let normed = layer_norm(&self.norm1, x.clone());
        let [keys, values] = [1, 2].map(|i| self.projection(&normed, i));
        let (keys, values) = seen(keys, values);
        // Every row wanted (training, a whole pass): no narrowing, which under autodiff
        // would add three slice nodes whose backward pass zero-fills a full-size tensor.
        let (x, normed, mask) = match tokens - outputs {
            0 => (x, normed, mask),
            skip => (
                x.narrow(1, skip, outputs),
                normed.narrow(1, skip, outputs),
                mask.map(|m| m.narrow(2, skip, outputs)),
            ),
        };
        let context = attention(self.projection(&normed, 0), keys, values, mask);
        let context = context.swap_dims(1, 2).reshape([batch, outputs, d]); // [B, outputs, D]
        x + flat(&self.proj, context)
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
        let model = TransformerConfig::new(16, 4, 2, 8).init(&device);
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

    #[test]
    fn cached_steps_equal_one_causal_pass_with_and_without_a_memory() {
        let device = Device::flex();
        device.seed(32);
        for cross in [false, true] {
            let model = TransformerConfig::new(16, 4, 3, 8)
                .with_cross_attention(cross)
                .init(&device);
            let x = Tensor::<3>::random([2, 7, 16], Distribution::Normal(0.0, 1.0), &device);
            let memory = Tensor::<3>::random([2, 5, 16], Distribution::Normal(0.0, 1.0), &device);
            let memory = cross.then_some(&memory);
            let full =
                model.forward_with_memory(x.clone(), Some(causal_mask(2, 4, 7, &device)), memory);
            // A prefix of three positions at once (its last row's output), then one
            // position per step.
            let mut cache = KvCache::default();
            let mut outputs = vec![model.forward_cached(
                x.clone().narrow(1, 0, 3),
                Tensor::arange(0..3, &device),
                Some(causal_mask(2, 4, 3, &device)),
                &mut cache,
                memory,
            )];
            for t in 3..7 {
                let position = Tensor::arange(t as i64..t as i64 + 1, &device);
                outputs.push(model.forward_cached(
                    x.clone().narrow(1, t, 1),
                    position,
                    None,
                    &mut cache,
                    memory,
                ));
            }
            assert_eq!(cache.len(), 7);
            Tensor::cat(outputs, 1).into_data().assert_approx_eq::<f32>(
                &full.narrow(1, 2, 5).into_data(),
                Tolerance::absolute(1e-5),
            );
        }
    }

    #[test]
    fn a_decoder_reads_its_memory() {
        let device = Device::flex();
        device.seed(33);
        let model = TransformerConfig::new(16, 4, 2, 8)
            .with_cross_attention(true)
            .init(&device);
        let x = Tensor::<3>::random([1, 4, 16], Distribution::Normal(0.0, 1.0), &device);
        let a = Tensor::<3>::random([1, 6, 16], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<3>::random([1, 6, 16], Distribution::Normal(0.0, 1.0), &device);
        let diff = (model.forward_with_memory(x.clone(), None, Some(&a))
            - model.forward_with_memory(x, None, Some(&b)))
        .abs()
        .max()
        .into_scalar::<f32>();
        assert!(diff > 1e-3, "{diff}");
    }
}
