//! HiT's generator (Algorithm 1): a latent code becomes an 8x8 feature map
//! and an 8x8 latent embedding `Z`; every stage adds learned positions and attends to
//! `Z` (cross-attention with multi-query heads: the self-modulation by the latent);
//! low-resolution stages then run multi-axis blocked self-attention and an MLP,
//! high-resolution stages an MLP only; every stage from 32 px up (and every MLP-only
//! stage) adds an RGB image that is summed with the nearest-upsampled sum of the
//! earlier ones; pixel shuffle and a linear layer carry a stage's map to the next. No
//! convolution anywhere.
//!
//! Layer norms stand where the paper has batch norms (App. A.1): at the batch sizes
//! this CPU trains with (8-16), batch statistics are noisy and tie the samples of a
//! batch together, and a sample must not depend on what else is in its batch.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::tanh;

use crate::nn::fused::{attention, feed_forward, layer_norm};

use super::blocks::{
    MultiAxisAttention, MultiAxisAttentionConfig, block, dense, pixel_shuffle, unblock, zeroed,
};

/// One stage: its side, width, heads, self-attention layers (0 = MLP only) and block.
#[derive(Config, Debug, Copy)]
pub struct StageConfig {
    pub side: usize,
    pub d_model: usize,
    pub n_heads: usize,
    /// Multi-axis attention layers; 0 makes a high-resolution (MLP-only) stage.
    pub attention_layers: usize,
    /// Side of a block for the multi-axis attention.
    #[config(default = 4)]
    pub block: usize,
}

/// The side from which every stage draws RGB, attending or not: below it the maps
/// are too coarse to be worth a picture of their own.
const RGB_FROM: usize = 32;

impl StageConfig {
    /// Whether the stage adds an RGB image (the paper's `SkipToRGB`): MLP-only stages
    /// do, and so does an attention stage at 32 px or more.
    fn draws_rgb(&self) -> bool {
        self.attention_layers == 0 || self.side >= RGB_FROM
    }
}

/// Configuration of a [`HitGenerator`].
#[derive(Config, Debug)]
pub struct HitGeneratorConfig {
    /// Size of the latent code.
    #[config(default = 128)]
    pub latent: usize,
    /// Width of the latent embedding `Z` (64 tokens).
    #[config(default = 128)]
    pub z_dim: usize,
    /// The stages, from 8x8 up; each doubles the side.
    pub stages: Vec<StageConfig>,
}

impl HitGeneratorConfig {
    /// The 64x64 generator sized for this CPU: two attention stages (8x8 and 16x16),
    /// two MLP stages (32x32 and 64x64).
    pub fn small() -> Self {
        Self::small_at(64)
    }

    /// The generator sized for this CPU at `side` (a power of two, at least 32): the
    /// attention stages of [`small`](Self::small), then stages up to `side` each half
    /// as wide as the one before (at least 16), MLP-only except the 32 px stage of a
    /// generator of 128 px or more, which attends too: with three MLP-only stages
    /// after 16 px, every 16 px token drew its own 8x8 tile of the picture and the
    /// tiles showed (the paper's 128 px generator attends up to 64 px). A doubled
    /// side costs one more cheap stage, not a wider network (HiT §3.2).
    pub fn small_at(side: usize) -> Self {
        let mut stages = vec![
            StageConfig::new(8, 256, 4, 2),
            StageConfig::new(16, 128, 4, 2),
        ];
        let mut width = 64;
        let mut s = 32;
        while s <= side {
            let attention = if s == 32 && side >= 128 { 2 } else { 0 };
            stages.push(StageConfig::new(s, width, 4, attention));
            width = (width / 2).max(16);
            s *= 2;
        }
        Self::new(stages)
    }

    /// Side of the pictures it makes.
    pub fn side(&self) -> usize {
        self.stages.last().map_or(8, |s| s.side)
    }

    /// Builds the generator with fresh weights.
    pub fn init(&self, device: &Device) -> HitGenerator {
        let first = self.stages.first().map_or(64, |s| s.d_model);
        let stages: Vec<Stage> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let next = self.stages.get(i + 1).map(|n| n.d_model);
                Stage::new(s, self.z_dim, next, device)
            })
            .collect();
        HitGenerator {
            to_map: dense(self.latent, 64 * first, device),
            to_z: dense(self.latent, 64 * self.z_dim, device),
            z_positions: Param::from_tensor(Tensor::zeros([1, 64, self.z_dim], device)),
            z_norm: LayerNormConfig::new(self.z_dim).init(device),
            stages,
            latent: self.latent,
            z_dim: self.z_dim,
        }
    }
}

/// Cross-attention from the map to `Z`, one key and value for every head.
#[derive(Module, Debug)]
struct CrossAttention {
    norm: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    n_heads: usize,
}

impl CrossAttention {
    /// # Shapes
    /// - x: `[B, T, C]`; z: `[B, 64, Z]` → `[B, T, C]`
    fn forward(&self, x: Tensor<3>, z: &Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, k) = (self.n_heads, d / self.n_heads);
        let q = self
            .query
            .forward(layer_norm(&self.norm, x.clone()))
            .reshape([b, t, h, k])
            .swap_dims(1, 2); // [B, h, T, k]
        let keys = self.key.forward(z.clone()).unsqueeze_dim::<4>(1); // [B, 1, 64, k]
        let values = self.value.forward(z.clone()).unsqueeze_dim::<4>(1);
        let s = z.dims()[1];
        let o = attention(
            q,
            keys.expand([b, h, s, k]),
            values.expand([b, h, s, k]),
            None,
        ); // [B, h, T, k]
        x + self.out.forward(o.swap_dims(1, 2).reshape([b, t, d]))
    }
}

/// `x + fc2(relu(fc1(norm(x))))`.
#[derive(Module, Debug)]
struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn new(d: usize, device: &Device) -> Self {
        Self {
            norm: LayerNormConfig::new(d).init(device),
            fc1: dense(d, 4 * d, device),
            fc2: dense(4 * d, d, device),
        }
    }

    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let normed = layer_norm(&self.norm, x.clone());
        feed_forward(&self.fc1, &self.fc2, normed, x)
    }
}

/// Multi-axis attention and an MLP, on a blocked map.
#[derive(Module, Debug)]
struct AttentionLayer {
    norm: LayerNorm,
    attention: MultiAxisAttention,
    mlp: Mlp,
}

/// One stage of the generator.
#[derive(Module, Debug)]
struct Stage {
    positions: Param<Tensor<3>>,
    cross: CrossAttention,
    layers: Vec<AttentionLayer>,
    /// MLP of a high-resolution (MLP-only) stage.
    mlp: Option<Mlp>,
    /// RGB output of a stage that draws ([`StageConfig::draws_rgb`]), normalised
    /// first (the paper's `SkipToRGB`): the residual stream's scale grows with depth.
    rgb: Option<(LayerNorm, Linear)>,
    /// After the pixel shuffle, to the next stage's width.
    next: Option<Linear>,
    side: usize,
    block: usize,
}

impl Stage {
    fn new(s: &StageConfig, z_dim: usize, next: Option<usize>, device: &Device) -> Self {
        let d = s.d_model;
        let high = s.attention_layers == 0;
        Self {
            positions: Param::from_tensor(Tensor::zeros([1, s.side * s.side, d], device)),
            cross: CrossAttention {
                norm: LayerNormConfig::new(d).init(device),
                query: dense(d, d, device),
                key: dense(z_dim, d / s.n_heads, device),
                value: dense(z_dim, d / s.n_heads, device),
                out: dense(d, d, device),
                n_heads: s.n_heads,
            },
            layers: (0..s.attention_layers)
                .map(|_| AttentionLayer {
                    norm: LayerNormConfig::new(d).init(device),
                    attention: MultiAxisAttentionConfig::new(d, s.n_heads).init(device),
                    mlp: Mlp::new(d, device),
                })
                .collect(),
            mlp: high.then(|| Mlp::new(d, device)),
            rgb: s
                .draws_rgb()
                .then(|| (LayerNormConfig::new(d).init(device), dense(d, 3, device))),
            next: next.map(|n| dense(d / 4, n, device)),
            side: s.side,
            block: s.block,
        }
    }

    /// Runs the stage; returns its map `[B, side², C]` and its RGB output
    /// `[B, side, side, 3]` (stages that draw).
    fn forward(&self, x: Tensor<3>, z: &Tensor<3>) -> (Tensor<3>, Option<Tensor<4>>) {
        let [b, t, d] = x.dims();
        let x = x + self.positions.val();
        let mut x = self.cross.forward(x, z);
        if !self.layers.is_empty() {
            let mut blocked = block(x.reshape([b, self.side, self.side, d]), self.block);
            for layer in &self.layers {
                let normed = layer_norm(&layer.norm, blocked.clone());
                blocked = blocked + layer.attention.forward(normed);
                blocked = layer.mlp.forward(blocked);
            }
            x = unblock(blocked, self.side).reshape([b, t, d]);
        }
        if let Some(mlp) = &self.mlp {
            x = mlp.forward(x);
        }
        let rgb = self.rgb.as_ref().map(|(norm, rgb)| {
            rgb.forward(layer_norm(norm, x.clone()))
                .reshape([b, self.side, self.side, 3])
        });
        (x, rgb)
    }

    /// The map for the next stage: pixel shuffle, then a linear layer.
    fn upsample(&self, x: Tensor<3>) -> Option<Tensor<3>> {
        let next = self.next.as_ref()?;
        let [b, _, d] = x.dims();
        let up = pixel_shuffle(x.reshape([b, self.side, self.side, d])); // [B, 2s, 2s, d/4]
        let side = 2 * self.side;
        Some(next.forward(up.reshape([b, side * side, d / 4])))
    }
}

impl Stage {
    /// This MLP-only stage given `layers` of attention that change nothing yet: every
    /// attention output at zero, the stage's own MLP in the first layer, the later
    /// layers' MLPs adding zero (see [`HitGenerator::attend`]).
    fn attending(self, layers: Vec<AttentionLayer>) -> Stage {
        let mut own = self.mlp;
        let layers = layers
            .into_iter()
            .map(|layer| AttentionLayer {
                attention: layer.attention.silenced(),
                mlp: own.take().unwrap_or_else(|| layer.mlp.silenced()),
                norm: layer.norm,
            })
            .collect();
        Stage {
            layers,
            mlp: own,
            ..self
        }
    }
}

impl Mlp {
    /// The same MLP adding zero: its last layer at zero.
    fn silenced(self) -> Mlp {
        Mlp {
            fc2: zeroed(self.fc2),
            ..self
        }
    }
}

/// Stage `a` in the place of its counterpart `b` of a larger generator (see
/// [`HitGenerator::fits`]): given `b`'s attention when it has none.
fn adopt((a, b): (Stage, Stage)) -> Stage {
    match a.layers.len() < b.layers.len() {
        true => a.attending(b.layers),
        false => a,
    }
}

/// Nearest-neighbour upsampling by 2 of `[B, H, W, C]`.
fn upsample_nearest(x: Tensor<4>) -> Tensor<4> {
    let [b, h, w, c] = x.dims();
    x.reshape([b, h, 1, w, 1, c])
        .expand([b, h, 2, w, 2, c])
        .reshape([b, 2 * h, 2 * w, c])
}

/// The HiT generator.
#[derive(Module, Debug)]
pub struct HitGenerator {
    to_map: Linear,
    to_z: Linear,
    z_positions: Param<Tensor<3>>,
    /// Normalises the latent embedding, as the paper's code does.
    z_norm: LayerNorm,
    stages: Vec<Stage>,
    latent: usize,
    z_dim: usize,
}

impl HitGenerator {
    /// This generator with one more stage, taken from `larger`: a fresh generator
    /// whose configuration is this one's plus a high-resolution stage (and attention
    /// where `larger` attends and this one does not, see [`HitGenerator::attend`]).
    /// The new stage's RGB output starts at zero, so the grown generator first draws
    /// this one's pictures upsampled, and training goes on from them rather than from
    /// noise (progressive growing, Karras et al. 2018). `None` when `larger` does not
    /// extend this generator's stages.
    pub fn grow(self, larger: HitGenerator) -> Option<HitGenerator> {
        if larger.stages.len() != self.stages.len() + 1 || !self.fits(&larger) {
            return None;
        }
        let mut added = larger.stages;
        let mut new = added.pop()?;
        new.rgb = new.rgb.map(|(norm, rgb)| (norm, zeroed(rgb)));
        let joint = added.last_mut()?.next.take();
        let mut stages: Vec<Stage> = self.stages.into_iter().zip(added).map(adopt).collect();
        if let Some(last) = stages.last_mut() {
            last.next = joint;
        }
        stages.push(new);
        Some(HitGenerator { stages, ..self })
    }

    /// This generator with attention where `larger` (a fresh generator of the same
    /// stages) attends and this one does not: such a stage takes `larger`'s attention
    /// layers with their outputs at zero, the first layer's MLP being the stage's own
    /// and the others' adding zero, so the generator first draws exactly what it drew
    /// and training goes on from its pictures. `None` when `larger` differs otherwise
    /// or adds no attention.
    pub fn attend(self, larger: HitGenerator) -> Option<HitGenerator> {
        let gains = self
            .stages
            .iter()
            .zip(&larger.stages)
            .any(|(a, b)| a.layers.len() < b.layers.len());
        if larger.stages.len() != self.stages.len() || !gains || !self.fits(&larger) {
            return None;
        }
        let stages = self
            .stages
            .into_iter()
            .zip(larger.stages)
            .map(adopt)
            .collect();
        Some(HitGenerator { stages, ..self })
    }

    /// Whether every stage of this generator can become the stage of `larger` at its
    /// place and still draw what it draws: the same latent, map, heads, block and RGB
    /// head, and the same attention or none where `larger` has some.
    fn fits(&self, larger: &HitGenerator) -> bool {
        self.latent == larger.latent
            && self.z_dim == larger.z_dim
            && self.stages.iter().zip(&larger.stages).all(|(a, b)| {
                a.positions.dims() == b.positions.dims()
                    && a.block == b.block
                    && a.cross.n_heads == b.cross.n_heads
                    && a.rgb.is_some() == b.rgb.is_some()
                    && (a.layers.len() == b.layers.len() || a.layers.is_empty())
            })
    }

    /// Size of the latent code.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// Pictures in [-1, 1], channels last.
    ///
    /// # Shapes
    /// - z: `[B, latent]` → `[B, side, side, 3]`
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [b, _] = z.dims();
        let first = self.stages.first().map_or(0, |s| s.positions.dims()[2]);
        let latent = layer_norm(
            &self.z_norm,
            self.to_z.forward(z.clone()).reshape([b, 64, self.z_dim]) + self.z_positions.val(),
        );
        let mut x = self.to_map.forward(z).reshape([b, 64, first]);
        let mut image: Option<Tensor<4>> = None;
        for stage in &self.stages {
            let (out, rgb) = stage.forward(x, &latent);
            if let Some(rgb) = rgb {
                image = Some(match image {
                    Some(sum) => upsample_nearest(sum) + rgb,
                    None => rgb,
                });
            }
            match stage.upsample(out) {
                Some(next) => x = next,
                None => break,
            }
        }
        tanh(image.unwrap_or_else(|| Tensor::zeros([b, 8, 8, 3], &latent.device())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn tiny() -> HitGeneratorConfig {
        HitGeneratorConfig::new(vec![
            StageConfig::new(8, 32, 4, 1),
            StageConfig::new(16, 16, 4, 0),
        ])
        .with_latent(8)
        .with_z_dim(8)
    }

    #[test]
    fn pictures_have_the_stage_side_and_lie_in_range() {
        let device = Device::flex();
        device.seed(7);
        let generator = tiny().init(&device);
        let z = Tensor::<2>::random([3, 8], Distribution::Normal(0.0, 1.0), &device);
        let out = generator.forward(z);
        assert_eq!(out.dims(), [3, 16, 16, 3]);
        let (lo, hi) = (
            out.clone().min().into_scalar::<f32>(),
            out.max().into_scalar::<f32>(),
        );
        assert!(lo >= -1.0 && hi <= 1.0 && hi - lo > 1e-3, "{lo}..{hi}");
        let small = HitGeneratorConfig::small();
        assert_eq!(small.side(), 64);
        assert!(
            small
                .stages
                .iter()
                .all(|s| s.side < 32 || s.attention_layers == 0)
        );
        let large = HitGeneratorConfig::small_at(128);
        assert_eq!(large.side(), 128);
        let attending: Vec<usize> = large
            .stages
            .iter()
            .filter(|s| s.attention_layers > 0)
            .map(|s| s.side)
            .collect();
        assert_eq!(attending, [8, 16, 32]);
    }

    /// A grown generator first draws the smaller one's pictures, upsampled.
    #[test]
    fn a_grown_generator_starts_from_the_smaller_ones_pictures() {
        let device = Device::flex();
        device.seed(9);
        let small = tiny().init(&device);
        let mut larger = tiny();
        larger.stages.push(StageConfig::new(32, 16, 4, 0));
        let grown = small
            .clone()
            .grow(larger.init(&device))
            .expect("one stage more");
        let z = Tensor::<2>::random([2, 8], Distribution::Normal(0.0, 1.0), &device);
        let before = upsample_nearest(small.forward(z.clone()));
        let after = grown.forward(z);
        assert_eq!(after.dims(), [2, 32, 32, 3]);
        let diff = (after - before).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
        assert!(
            tiny().init(&device).grow(tiny().init(&device)).is_none(),
            "the same stages are no growth"
        );
    }

    /// The shipped 64 px generator grows into the 128 px one, whose 32 px stage
    /// attends, in one step, and first draws its pictures upsampled.
    #[test]
    fn the_64_px_generator_grows_into_the_128_px_one() {
        let device = Device::flex();
        device.seed(11);
        let small = HitGeneratorConfig::small().init(&device);
        let z = Tensor::<2>::random([2, 128], Distribution::Normal(0.0, 1.0), &device);
        let before = upsample_nearest(small.forward(z.clone()));
        let grown = small
            .clone()
            .grow(HitGeneratorConfig::small_at(128).init(&device))
            .expect("one stage more, and attention at 32 px");
        assert_eq!(grown.stages[2].layers.len(), 2);
        let diff = (grown.forward(z) - before).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
        let mut other = HitGeneratorConfig::small_at(128);
        other.stages[1].n_heads = 8;
        assert!(small.grow(other.init(&device)).is_none(), "other heads");
    }

    /// A generator given attention where it had none draws what it drew, then learns.
    #[test]
    fn attention_added_to_a_stage_starts_from_the_same_pictures() {
        let device = Device::flex();
        device.seed(10);
        let three = |attention| {
            HitGeneratorConfig::new(vec![
                StageConfig::new(8, 32, 4, 1),
                StageConfig::new(16, 16, 4, 0),
                StageConfig::new(32, 16, 4, attention),
            ])
            .with_latent(8)
            .with_z_dim(8)
        };
        assert!(
            !three(2).stages[0].draws_rgb(),
            "an 8 px attention stage draws none"
        );
        assert!(
            three(2).stages[2].draws_rgb(),
            "the 32 px stage draws, attending or not"
        );
        let plain = three(0).init(&device);
        let z = Tensor::<2>::random([2, 8], Distribution::Normal(0.0, 1.0), &device);
        let before = plain.forward(z.clone());
        let attending = plain
            .clone()
            .attend(three(2).init(&device))
            .expect("attention at 32 px");
        assert_eq!(attending.stages[2].layers.len(), 2);
        assert!(attending.stages[2].mlp.is_none());
        let diff = (attending.forward(z) - before)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
        assert!(
            plain.clone().attend(three(0).init(&device)).is_none(),
            "no attention added"
        );
        assert!(plain.attend(tiny().init(&device)).is_none(), "other stages");
    }

    #[test]
    fn each_sample_depends_on_its_own_latent_only() {
        let device = Device::flex();
        device.seed(8);
        let generator = tiny().init(&device);
        let z = Tensor::<2>::random([2, 8], Distribution::Normal(0.0, 1.0), &device);
        let both = generator.forward(z.clone());
        let alone = generator.forward(z.clone().narrow(0, 0, 1));
        let diff = (both.clone().narrow(0, 0, 1) - alone)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
        let other = (both.clone().narrow(0, 0, 1) - both.narrow(0, 1, 1))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(other > 1e-4, "two latents, two pictures");
    }
}
