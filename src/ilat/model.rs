//! The token transformer of iLAT (and of the Taming baseline, which is the same network
//! trained with the vanilla causal mask).
//!
//! The target sequence is `t[s], t_0, …, t_{N−2}`: position `p` holds the start token
//! (p = 0) or token `p − 1`, and its output predicts token `p`. Guidance enters in one
//! of three ways (iLAT §3.3):
//! - a sketch, *aligned*: the sketch patch of token `p` is embedded and added at
//!   position `p`, so the prediction of a token sees the strokes at its own place; the
//!   sequence stays `N` long;
//! - a sketch, *prepended*: the `N` sketch patches become condition rows before the
//!   targets, as in the paper; the sequence is `2N` long;
//! - a pose: the 13 target joints become 13 condition rows through the PointMLP.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use image::GrayImage;

use crate::data::convert::sketch_patches;
use crate::data::poses::JOINTS;
use crate::nn::point_mlp::{PointMlp, PointMlpConfig};
use crate::nn::transformer::{KvCache, Transformer, TransformerConfig};
use crate::store::{self, StoreError};

/// What guides the regenerated tokens.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum GuideKind {
    /// Strokes, dark on white (faces).
    Sketch,
    /// The 13 joints of the wanted pose (people).
    Pose,
}

/// How the sketch reaches the transformer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SketchInput {
    /// Added to the target row of the token it lies on.
    Aligned,
    /// One condition row per token, before the targets.
    Prepended,
}

/// Configuration of an [`Ilat`] model.
#[derive(Config, Debug)]
pub struct IlatConfig {
    /// Codebook size of the tokenizer.
    pub vocab: usize,
    /// Side of the token grid.
    pub grid: usize,
    /// Width of the transformer.
    #[config(default = 256)]
    pub d_model: usize,
    /// Attention heads.
    #[config(default = 8)]
    pub n_heads: usize,
    /// Transformer blocks.
    #[config(default = 6)]
    pub n_layers: usize,
    /// Side of the sketch patch under one token, in pixels (the tokenizer's factor).
    #[config(default = 4)]
    pub patch: usize,
    /// What guides the model.
    #[config(default = "GuideKind::Sketch")]
    pub guidance: GuideKind,
    /// How the sketch enters (sketch guidance only).
    #[config(default = "SketchInput::Aligned")]
    pub sketch: SketchInput,
    /// File name of the tokenizer in the models folder whose tokens the model was
    /// trained on, when not the faces' (the pose models may have the people's own);
    /// an `Option` so that the configurations written before it existed still load.
    pub tokenizer: Option<String>,
}

impl IlatConfig {
    /// File name of the tokenizer whose tokens the model was trained on.
    pub fn tokenizer_name(&self) -> &str {
        self.tokenizer.as_deref().unwrap_or(crate::vqgan::FACES)
    }

    /// Number of tokens in a grid.
    pub fn tokens(&self) -> usize {
        self.grid * self.grid
    }

    /// Number of condition rows before the targets.
    pub fn conditions(&self) -> usize {
        match (self.guidance, self.sketch) {
            (GuideKind::Sketch, SketchInput::Aligned) => 0,
            (GuideKind::Sketch, SketchInput::Prepended) => self.tokens(),
            (GuideKind::Pose, _) => JOINTS,
        }
    }

    /// A tiny model over a 4x4 grid of 2x2-pixel patches, for tests.
    #[cfg(test)]
    pub(crate) fn tiny(vocab: usize, sketch: SketchInput) -> Self {
        Self::new(vocab, 4)
            .with_d_model(32)
            .with_n_heads(4)
            .with_n_layers(2)
            .with_patch(2)
            .with_sketch(sketch)
    }

    /// Builds the model with fresh weights.
    pub fn init(&self, device: &Device) -> Ilat {
        let length = self.conditions() + self.tokens();
        let sketch = (self.guidance == GuideKind::Sketch)
            .then(|| LinearConfig::new(self.patch * self.patch, self.d_model).init(device));
        let pose = (self.guidance == GuideKind::Pose)
            .then(|| PointMlpConfig::new(JOINTS, self.d_model).init(device));
        Ilat {
            tokens: EmbeddingConfig::new(self.vocab + 1, self.d_model).init(device),
            sketch,
            pose,
            transformer: TransformerConfig::new(self.d_model, self.n_heads, self.n_layers, length)
                .init(device),
            head: LinearConfig::new(self.d_model, self.vocab).init(device),
            vocab: self.vocab,
            conditions: self.conditions(),
        }
    }
}

/// The guidance of a batch, as the network takes it.
#[derive(Debug, Clone)]
pub enum Guide {
    /// Sketch patches, `[B, N, patch²]`, 1 on strokes.
    Sketch(Tensor<3>),
    /// Joints, `[B, 13, 3]`: x and y in [0, 1] of the picture, visible 0 or 1.
    Pose(Tensor<3>),
}

impl Guide {
    /// Random guidance of one sequence for a model of `config`, for tests.
    #[cfg(test)]
    pub(crate) fn random(config: &IlatConfig, device: &Device) -> Self {
        use burn::tensor::Distribution;
        match config.guidance {
            GuideKind::Sketch => Guide::Sketch(Tensor::random(
                [1, config.tokens(), config.patch * config.patch],
                Distribution::Bernoulli(0.3),
                device,
            )),
            GuideKind::Pose => Guide::Pose(Tensor::random(
                [1, JOINTS, 3],
                Distribution::Uniform(0.0, 1.0),
                device,
            )),
        }
    }

    /// The device its tensor lives on.
    pub fn device(&self) -> Device {
        match self {
            Guide::Sketch(t) | Guide::Pose(t) => t.device(),
        }
    }
}

/// Guidance after embedding: condition rows and additions to the target rows.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// `[B, C, D]`, when the model has condition rows.
    conditions: Option<Tensor<3>>,
    /// `[B, N, D]`, when guidance is added to the target rows.
    aligned: Option<Tensor<3>>,
}

/// The token transformer: embeddings, the shared transformer, a classification head.
#[derive(Module, Debug)]
pub struct Ilat {
    tokens: Embedding,
    /// Sketch patch embedding (sketch guidance).
    sketch: Option<Linear>,
    /// Joints to condition rows (pose guidance).
    pose: Option<PointMlp>,
    transformer: Transformer,
    head: Linear,
    vocab: usize,
    conditions: usize,
}

impl Ilat {
    /// Loads `NAME.json` + `NAME.bpk` from `dir`.
    pub fn load(
        dir: &std::path::Path,
        name: &str,
        device: &Device,
    ) -> Result<(Self, IlatConfig), StoreError> {
        store::load_model(dir, name, device, |config: &IlatConfig, device| {
            config.init(device)
        })
    }

    /// Condition rows before the targets.
    pub fn conditions(&self) -> usize {
        self.conditions
    }

    /// The id of the start token.
    pub fn start_token(&self) -> usize {
        self.vocab
    }

    /// Embeds the guidance.
    ///
    /// # Panics
    /// When the guide is of another kind than the model's (a bug of the caller: the
    /// engine and the training check the kind first).
    pub fn embed_guide(&self, guide: Guide) -> Embedded {
        match (guide, &self.sketch, &self.pose) {
            (Guide::Sketch(sketch), Some(linear), _) => {
                let rows = linear.forward(sketch); // [B, N, D]
                if self.conditions == 0 {
                    Embedded {
                        conditions: None,
                        aligned: Some(rows),
                    }
                } else {
                    Embedded {
                        conditions: Some(rows),
                        aligned: None,
                    }
                }
            }
            (Guide::Pose(joints), _, Some(mlp)) => Embedded {
                conditions: Some(mlp.forward(joints)), // [B, 13, D]
                aligned: None,
            },
            (guide, _, _) => panic!("a {guide:?} given to a model guided otherwise"),
        }
    }

    /// Embeds every row of the sequence: conditions, then targets.
    ///
    /// # Shapes
    /// - inputs: `[B, N]` input ids of the target positions (start token, then tokens
    ///   shifted by one)
    /// - output: `[B, C + N, D]`
    pub fn embed(&self, inputs: Tensor<2, Int>, guide: &Embedded) -> Tensor<3> {
        let mut targets = self.tokens.forward(inputs);
        if let Some(aligned) = &guide.aligned {
            targets = targets + aligned.clone();
        }
        match &guide.conditions {
            Some(conditions) => Tensor::cat(vec![conditions.clone(), targets], 1),
            None => targets,
        }
    }

    /// Condition row `row` of one sequence's embedded guidance.
    ///
    /// # Shapes
    /// - output: `[1, 1, D]`
    pub fn condition_row(&self, row: usize, guide: &Embedded) -> Option<Tensor<3>> {
        let conditions = guide.conditions.as_ref()?;
        (row < conditions.dims()[1]).then(|| conditions.clone().narrow(1, row, 1))
    }

    /// One target row as [`Ilat::embed`] makes it: input id `input` at target position
    /// `position` of one sequence.
    ///
    /// # Shapes
    /// - output: `[1, 1, D]`
    pub fn target_row(&self, input: usize, position: usize, guide: &Embedded) -> Tensor<3> {
        let device = self.head.weight.val().device();
        let id = Tensor::<2, Int>::from_data(TensorData::new(vec![input as i64], [1, 1]), &device);
        let token = self.tokens.forward(id);
        match &guide.aligned {
            Some(aligned) => token + aligned.clone().narrow(1, position, 1),
            None => token,
        }
    }

    /// Logits of every target position.
    ///
    /// # Shapes
    /// - sequence: `[B, C + N, D]` from [`Ilat::embed`]; mask: `[B, H, C + N, C + N]`
    ///   (`true` = blocked)
    /// - output: `[B, N, vocab]`
    pub fn logits(&self, sequence: Tensor<3>, mask: Tensor<4, Bool>) -> Tensor<3> {
        let [_, length, _] = sequence.dims();
        let hidden = self.transformer.forward(sequence, Some(mask));
        let targets = hidden.narrow(1, self.conditions, length - self.conditions);
        self.head.forward(targets)
    }

    /// Runs rows of `B` sequences against the cache (see
    /// [`Transformer::forward_cached`]) and returns the logits of each one's last row.
    ///
    /// # Shapes
    /// - rows: `[B, t, D]`; positions: the rows' sequence indices (`t` of them); mask:
    ///   `[1 or B, H, t, T_cached + t]` (`true` = blocked)
    /// - output: `[B, vocab]`
    pub fn step(
        &self,
        rows: Tensor<3>,
        positions: &[usize],
        mask: Option<Tensor<4, Bool>>,
        cache: &mut KvCache,
    ) -> Tensor<2> {
        let device = rows.device();
        let t = positions.len();
        let positions = Tensor::<1, Int>::from_data(
            TensorData::new(positions.iter().map(|&p| p as i64).collect(), [t]),
            &device,
        );
        let batch = rows.dims()[0];
        let hidden = self
            .transformer
            .forward_cached(rows, positions, mask, cache, None);
        self.head.forward(hidden).reshape([batch, self.vocab])
    }

    /// Attention heads, the second axis of every mask.
    pub fn heads(&self) -> usize {
        self.transformer.heads()
    }
}

/// The guidance of a batch of examples on the host, before it becomes a [`Guide`].
pub enum GuideBatch {
    /// Dark strokes on white, one per example.
    Sketches(Vec<GrayImage>),
    /// Target poses in the crop (see `Pose::features`).
    Poses(Vec<[[f32; 3]; JOINTS]>),
}

impl GuideBatch {
    /// The guidance as the network takes it (`patch`: the tokenizer's factor).
    pub fn to_guide(&self, patch: usize, device: &Device) -> Guide {
        match self {
            GuideBatch::Sketches(sketches) => {
                Guide::Sketch(sketch_patches(sketches, patch, device))
            }
            GuideBatch::Poses(poses) => {
                let flat: Vec<f32> = poses.iter().flatten().flatten().copied().collect();
                Guide::Pose(Tensor::from_data(
                    TensorData::new(flat, [poses.len(), JOINTS, 3]),
                    device,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ilat::train::{Objective, attention_masks};
    use crate::tokens::objective::shift_right;
    use burn::tensor::Tolerance;

    /// A configuration written before `tokenizer` existed loads, on the faces' tokens.
    #[test]
    fn a_configuration_without_a_tokenizer_is_on_the_faces_tokens() {
        let mut json = serde_json::to_value(IlatConfig::new(64, 16)).expect("json");
        json.as_object_mut().expect("an object").remove("tokenizer");
        let old: IlatConfig = serde_json::from_value(json).expect("an old configuration");
        assert_eq!(old.tokenizer_name(), crate::vqgan::FACES);
        let posed = IlatConfig::new(64, 16).with_tokenizer(Some(crate::vqgan::PEOPLE.into()));
        let json = serde_json::to_string(&posed).expect("json");
        let read: IlatConfig = serde_json::from_str(&json).expect("read back");
        assert_eq!(read.tokenizer_name(), crate::vqgan::PEOPLE);
    }

    /// Logits of every target position for a raster grid of tokens.
    fn logits_for(
        model: &Ilat,
        config: &IlatConfig,
        grid: &[i64],
        token_mask: &[bool],
        guide: &Guide,
    ) -> Tensor<3> {
        let device = guide.device();
        let n = config.tokens();
        let inputs = shift_right(grid, config.vocab as i64);
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, n]), &device);
        let mask = attention_masks(&[token_mask], config, Objective::LocalAr, &device);
        model.logits(model.embed(inputs, &model.embed_guide(guide.clone())), mask)
    }

    #[test]
    fn no_prediction_sees_the_masked_token_it_or_a_later_one_predicts() {
        let configs = [
            IlatConfig::tiny(16, SketchInput::Aligned),
            IlatConfig::tiny(16, SketchInput::Prepended),
            IlatConfig::tiny(16, SketchInput::Aligned).with_guidance(GuideKind::Pose),
        ];
        for config in configs {
            let device = Device::flex();
            device.seed(21);
            let name = format!("{:?} {:?}", config.guidance, config.sketch);
            let model = config.init(&device);
            let token_mask: Vec<bool> =
                (0..16).map(|i| [1, 2, 5, 9, 10, 14].contains(&i)).collect();
            let causal = crate::ilat::mask::causal_positions(&token_mask);
            let grid: Vec<i64> = (0..16).map(|i| (i * 3 % 16) as i64).collect();
            let guide = Guide::random(&config, &device);
            let base = logits_for(&model, &config, &grid, &token_mask, &guide);
            for changed in (0..16).filter(|&j| token_mask[j]) {
                let mut other = grid.clone();
                other[changed] = (other[changed] + 7) % 16;
                let after = logits_for(&model, &config, &other, &token_mask, &guide);
                for (p, &is_causal) in causal.iter().enumerate().take(16) {
                    // Position p predicts token p; it may depend on masked token j only
                    // when j < p, and then only if p is causal.
                    if p <= changed || !is_causal {
                        base.clone()
                            .narrow(1, p, 1)
                            .into_data()
                            .assert_approx_eq::<f32>(
                                &after.clone().narrow(1, p, 1).into_data(),
                                Tolerance::absolute(1e-6),
                            );
                    }
                }
                // And the check can fail: the next causal position does see it.
                let next = (changed + 1..16).find(|&p| causal[p]);
                if let Some(p) = next {
                    let diff = (base.clone().narrow(1, p, 1) - after.narrow(1, p, 1))
                        .abs()
                        .max()
                        .into_scalar::<f32>();
                    assert!(diff > 1e-4, "{name}: position {p} ignores token {changed}");
                }
            }
        }
    }
}
