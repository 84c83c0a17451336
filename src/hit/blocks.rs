//! The feature-map operations of HiT's generator (Zhao et al. 2022, App. A.3): blocking
//! a map into non-overlapping patches and back (Algorithm 3), multi-axis blocked
//! self-attention with multi-query heads (Algorithm 2: half of the heads attend within
//! a block, *regional*; half across blocks at the same place in every block,
//! *dilated*), and pixel shuffle (Algorithm 1's upsampling).
//!
//! Maps are channels-last, `[B, H, W, C]`; a blocked map is `[B, m, n, C]` with `m`
//! blocks of `n = p²` positions.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

use crate::nn::fused::attention;

/// A dense layer initialised as HiT's (truncated normal, σ = 0.02, in the paper's
/// code): burn's default Kaiming init starts the generator with outputs so large that
/// its pictures begin saturated.
pub fn dense(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        })
        .init(device)
}

/// A linear layer of the same shape whose output is zero.
pub fn zeroed(linear: Linear) -> Linear {
    Linear {
        weight: Param::from_tensor(linear.weight.val().zeros_like()),
        bias: linear
            .bias
            .map(|b| Param::from_tensor(b.val().zeros_like())),
    }
}

/// Blocks a map into `p`x`p` patches: `[B, H, W, C]` → `[B, (H/p)(W/p), p², C]`, blocks
/// in raster order, positions within a block in raster order.
pub fn block(x: Tensor<4>, p: usize) -> Tensor<4> {
    let [b, h, w, c] = x.dims();
    x.reshape([b * h / p, p, w / p, p * c]) // [B·H/p, p, W/p, p·C]
        .swap_dims(1, 2) // [B·H/p, W/p, p, p·C]
        .reshape([b, (h / p) * (w / p), p * p, c])
}

/// The inverse of [`block`] for a map of height `h` (square blocks).
pub fn unblock(x: Tensor<4>, h: usize) -> Tensor<4> {
    let [b, m, n, c] = x.dims();
    let p = (n as f64).sqrt().round() as usize;
    let w = m / (h / p) * p;
    x.reshape([b * h / p, w / p, p, p * c])
        .swap_dims(1, 2) // [B·H/p, p, W/p, p·C]
        .reshape([b, h, w, c])
}

/// Pixel shuffle by 2: `[B, H, W, 4C]` → `[B, 2H, 2W, C]`; channel `(i·2 + j)·C + c`
/// goes to sub-pixel `(i, j)` (TensorFlow's `depth_to_space`).
pub fn pixel_shuffle(x: Tensor<4>) -> Tensor<4> {
    let [b, h, w, c4] = x.dims();
    let c = c4 / 4;
    x.reshape([b, h, w, 2, 2, c])
        .permute([0, 1, 3, 2, 4, 5]) // [B, H, 2, W, 2, C]
        .reshape([b, 2 * h, 2 * w, c])
}

/// Configuration of a [`MultiAxisAttention`].
#[derive(Config, Debug)]
pub struct MultiAxisAttentionConfig {
    /// Channels.
    pub d_model: usize,
    /// Query heads (even: half regional, half dilated).
    pub n_heads: usize,
}

/// Multi-axis blocked self-attention with one shared key and value (multi-query).
#[derive(Module, Debug)]
pub struct MultiAxisAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    n_heads: usize,
}

impl MultiAxisAttentionConfig {
    /// Builds the module with fresh weights.
    pub fn init(&self, device: &Device) -> MultiAxisAttention {
        let d = self.d_model;
        let head = d / self.n_heads;
        MultiAxisAttention {
            query: dense(d, d, device),
            key: dense(d, head, device),
            value: dense(d, head, device),
            out: dense(d, d, device),
            n_heads: self.n_heads,
        }
    }
}

impl MultiAxisAttention {
    /// The same attention adding zero: its output projection at zero.
    pub fn silenced(self) -> Self {
        Self {
            out: zeroed(self.out),
            ..self
        }
    }

    /// # Shapes
    /// - x: `[B, m, n, C]` (blocked) → `[B, m, n, C]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, m, n, d] = x.dims();
        let (heads, half) = (self.n_heads, self.n_heads / 2);
        let k = d / heads;
        let q = self.query.forward(x.clone()).reshape([b, m, n, heads, k]); // [B, m, n, h, k]
        let keys = self.key.forward(x.clone()); // [B, m, n, k]
        let values = self.value.forward(x); // [B, m, n, k]
        // Dilated: for each position n, across the m blocks.
        let q1 = q
            .clone()
            .narrow(3, 0, half)
            .permute([0, 2, 3, 1, 4]) // [B, n, h/2, m, k]
            .reshape([b * n, half, m, k]);
        let across = |t: Tensor<4>| {
            t.swap_dims(1, 2)
                .reshape([b * n, 1, m, k])
                .expand([b * n, half, m, k])
        };
        let o1 = attention(q1, across(keys.clone()), across(values.clone()), None) // [B·n, h/2, m, k]
            .reshape([b, n, half, m, k])
            .permute([0, 3, 1, 2, 4]); // [B, m, n, h/2, k]
        // Regional: for each block m, across its n positions.
        let q2 = q
            .narrow(3, half, heads - half)
            .permute([0, 1, 3, 2, 4]) // [B, m, h/2, n, k]
            .reshape([b * m, heads - half, n, k]);
        let within = |t: Tensor<4>| {
            t.reshape([b * m, 1, n, k])
                .expand([b * m, heads - half, n, k])
        };
        let o2 = attention(q2, within(keys), within(values), None) // [B·m, h/2, n, k]
            .reshape([b, m, heads - half, n, k])
            .permute([0, 1, 3, 2, 4]); // [B, m, n, h/2, k]
        let o = Tensor::cat(vec![o1, o2], 3).reshape([b, m, n, d]);
        self.out.forward(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec()
            .expect("values on the host")
    }

    #[test]
    fn unblock_inverts_block_for_several_sizes() {
        let device = Device::flex();
        for (h, w, p) in [(8, 8, 4), (8, 8, 2), (16, 16, 4), (4, 8, 2), (8, 8, 8)] {
            let x = Tensor::<4>::random([2, h, w, 3], Distribution::Normal(0.0, 1.0), &device);
            let blocked = block(x.clone(), p);
            assert_eq!(blocked.dims(), [2, (h / p) * (w / p), p * p, 3]);
            unblock(blocked, h)
                .into_data()
                .assert_approx_eq::<f32>(&x.into_data(), Tolerance::absolute(0.0));
        }
    }

    #[test]
    fn a_block_holds_a_contiguous_patch() {
        let device = Device::flex();
        // x[y, x] = 10·y + x on an 4x4 map, blocks of 2.
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..16).map(|i| (i / 4 * 10 + i % 4) as f32).collect(),
                [1, 4, 4, 1],
            ),
            &device,
        );
        let v = values(block(x, 2));
        assert_eq!(&v[0..4], &[0.0, 1.0, 10.0, 11.0], "block 0");
        assert_eq!(&v[4..8], &[2.0, 3.0, 12.0, 13.0], "block 1, to its right");
    }

    #[test]
    fn pixel_shuffle_places_channels_as_sub_pixels() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 1, 4]),
            &device,
        );
        assert_eq!(values(pixel_shuffle(x)), vec![1.0, 2.0, 3.0, 4.0]);
        let x = Tensor::<4>::random([1, 2, 3, 8], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(pixel_shuffle(x).dims(), [1, 4, 6, 2]);
    }

    /// Multi-axis attention written as plain loops over each axis.
    fn naive(module: &MultiAxisAttention, x: &Tensor<4>) -> Vec<f32> {
        let [b, m, n, d] = x.dims();
        let heads = module.n_heads;
        let k = d / heads;
        let q = values(module.query.forward(x.clone()));
        let keys = values(module.key.forward(x.clone()));
        let vals = values(module.value.forward(x.clone()));
        let at = |bi: usize, mi: usize, ni: usize| (bi * m + mi) * n + ni;
        let mut out = vec![0.0f32; b * m * n * d];
        for bi in 0..b {
            for mi in 0..m {
                for ni in 0..n {
                    for h in 0..heads {
                        // Dilated heads look across blocks, regional ones within.
                        let others: Vec<usize> = if h < heads / 2 {
                            (0..m).map(|mj| at(bi, mj, ni)).collect()
                        } else {
                            (0..n).map(|nj| at(bi, mi, nj)).collect()
                        };
                        let query = &q[at(bi, mi, ni) * d + h * k..][..k];
                        let logits: Vec<f32> = others
                            .iter()
                            .map(|&o| {
                                let key = &keys[o * k..][..k];
                                query.iter().zip(key).map(|(a, b)| a * b).sum::<f32>()
                                    / (k as f32).sqrt()
                            })
                            .collect();
                        let top = logits.iter().cloned().fold(f32::MIN, f32::max);
                        let weights: Vec<f32> = logits.iter().map(|l| (l - top).exp()).collect();
                        let total: f32 = weights.iter().sum();
                        for (w, &o) in weights.iter().zip(&others) {
                            for c in 0..k {
                                out[at(bi, mi, ni) * d + h * k + c] += w / total * vals[o * k + c];
                            }
                        }
                    }
                }
            }
        }
        let device = x.device();
        let concat = Tensor::<4>::from_data(TensorData::new(out, [b, m, n, d]), &device);
        values(module.out.forward(concat))
    }

    #[test]
    fn multi_axis_attention_equals_a_naive_loop_per_axis() {
        let device = Device::flex();
        device.seed(41);
        let module = MultiAxisAttentionConfig::new(8, 4).init(&device);
        let x = Tensor::<4>::random([2, 4, 4, 8], Distribution::Normal(0.0, 1.0), &device);
        let fast = values(module.forward(x.clone()));
        let slow = naive(&module, &x);
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
