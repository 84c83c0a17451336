//! Training the token transformers: iLAT with the local-autoregressive mask and NLL on
//! the masked tokens only (Eq. 6), and the Taming baseline with the vanilla causal
//! mask and NLL on every token. Both see the same data (see `training_data`), tokenised by
//! the shipped TS-VQGAN: faces with free-form masks and sketches, or pairs of frames
//! of a person with skeleton masks and the target pose.
//!
//! iLAT's context tokens come from the leak-free encoder run on the source picture
//! with the mask, exactly what an edit sees; its targets (and the inputs of masked
//! positions, teacher forced) are the tokens of the whole target picture.

use std::path::PathBuf;

use burn::prelude::*;
use image::{GrayImage, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::mask::network_mask;
use super::model::{Guide, GuideKind, Ilat, IlatConfig};
use super::training_data::{Dataset, Examples};
use crate::data::convert::{images_to_tensor, masks_to_tensor};
use crate::data::faces::{MAX_SHIFT, load_folder};
use crate::data::people::{Part, People};
use crate::tokens::Tokenizer;
use crate::tokens::objective::{masked_nll, shift_right};
use crate::training::{
    self, CachePlace, Destination, Logged, Schedule, TokenCache, TokenTrainer, TrainError,
};

/// What the network learns to predict, and with which attention mask.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Objective {
    /// iLAT: masked tokens only, LA mask.
    LocalAr,
    /// Taming: every token, causal mask.
    Causal,
}

/// Everything a token-transformer run needs besides data.
#[derive(Config, Debug)]
pub struct IlatTrainingConfig {
    /// The network.
    pub model: IlatConfig,
    /// iLAT or the Taming baseline.
    #[config(default = "Objective::LocalAr")]
    pub objective: Objective,
    /// Least fraction of tokens a training mask covers.
    #[config(default = 0.05)]
    pub min_masked: f32,
    /// Largest fraction of tokens a training mask covers.
    #[config(default = 0.5)]
    pub max_masked: f32,
    /// Steps, batch, learning rate, seed.
    #[config(default = "Schedule::new()")]
    pub schedule: Schedule,
    /// AdamW's decoupled weight decay.
    #[config(default = 0.01)]
    pub weight_decay: f32,
    /// Fraction of training examples whose mask is the whole picture (iLAT only; the
    /// held-out examples keep their masks). A whole mask makes the LA mask the vanilla
    /// causal one and every token a target, so these examples carry Taming's objective:
    /// the next-token signal of the whole grid, where an ordinary example's targets are
    /// its masked 5-50 %. The lever for iLAT against Taming*, which is trained on every
    /// token.
    #[config(default = 0.0)]
    pub whole_fraction: f64,
}

/// Where a run's data is.
#[derive(Debug, Clone)]
pub enum TrainingData {
    /// Training and held-out faces (sketch guidance).
    Faces { train: PathBuf, test: PathBuf },
    /// Demo-video frames and their keypoints (pose guidance).
    People { frames: PathBuf, keypoints: PathBuf },
}

impl TrainingData {
    /// The training and the held-out examples' source.
    fn load(&self, size: u32) -> Result<(Dataset, Dataset), TrainError> {
        Ok(match self {
            TrainingData::Faces { train, test } => (
                Dataset::Faces(load_folder(train, size)?),
                Dataset::Faces(load_folder(test, size)?),
            ),
            TrainingData::People { frames, keypoints } => (
                Dataset::People(People::load(frames, keypoints, Part::Train)?),
                Dataset::People(People::load(frames, keypoints, Part::Test)?),
            ),
        })
    }

    /// The guidance this data carries.
    pub fn guidance(&self) -> GuideKind {
        match self {
            TrainingData::Faces { .. } => GuideKind::Sketch,
            TrainingData::People { .. } => GuideKind::Pose,
        }
    }
}

/// Where a run reads and writes.
#[derive(Debug, Clone)]
pub struct IlatTrainingPaths {
    /// The examples.
    pub data: TrainingData,
    /// The run and the finished model (`ilat`, `taming`, `pose-ilat`, …).
    pub to: Destination,
    /// Where the training faces' clean tokens are cached (faces only; none: tokenised
    /// at every step).
    pub token_cache: Option<CachePlace>,
}

/// One step's tensors.
pub struct TokenBatch {
    /// Input ids of the target positions: `[B, N]`.
    pub inputs: Tensor<2, Int>,
    /// Token to predict at each position: `[B, N]`.
    pub targets: Tensor<2, Int>,
    /// Guidance (sketch patches or poses).
    pub guide: Guide,
    /// Attention mask, `true` = blocked: `[B, H, C + N, C + N]`.
    pub mask: Tensor<4, Bool>,
    /// 1 where the loss counts: `[B, N]`.
    pub weights: Tensor<2>,
}

/// Tokenises examples and builds the step's tensors for `objective`; the targets'
/// clean tokens come from `cache` when the examples are its faces.
pub fn make_batch(
    examples: &Examples,
    (tokenizer, cache): (&impl Tokenizer, Option<&TokenCache>),
    model: &IlatConfig,
    objective: Objective,
    device: &Device,
) -> Result<TokenBatch, TrainError> {
    let tokenizer_device = tokenizer.device();
    let masks = masks_to_tensor(&examples.masks, &tokenizer_device);
    let clean: Vec<i64> = match cache {
        Some(_) if examples.drawn.len() != examples.targets.len() => {
            return Err(TrainError::Config(
                "the token cache holds training faces; these examples are not".into(),
            ));
        }
        Some(cache) => examples
            .drawn
            .iter()
            .flat_map(|&(face, augmentation)| cache.grid(face, augmentation))
            .map(|&id| id as i64)
            .collect(),
        None => {
            let targets = images_to_tensor(&examples.targets, &tokenizer_device);
            tokenizer.tokenize(targets, None).try_into_vec_as::<i64>()?
        }
    };
    let token_masks = tokenizer.token_mask_flags(masks)?;
    let n = model.tokens();
    let batch = examples.targets.len();
    let (grid, weights): (Vec<i64>, Vec<f32>) = match objective {
        Objective::LocalAr => {
            let context = masked_context(examples, &token_masks, n, tokenizer)?;
            (0..batch * n)
                .map(|i| {
                    if token_masks[i] {
                        (clean[i], 1.0)
                    } else {
                        (context[i], 0.0)
                    }
                })
                .unzip()
        }
        Objective::Causal => (clean.clone(), vec![1.0; batch * n]),
    };
    let inputs: Vec<i64> = grid
        .chunks(n)
        .flat_map(|g| shift_right(g, model.vocab as i64))
        .collect();
    let token_masks: Vec<&[bool]> = token_masks.chunks(n).collect();
    Ok(TokenBatch {
        inputs: Tensor::from_data(TensorData::new(inputs, [batch, n]), device),
        targets: Tensor::from_data(TensorData::new(clean, [batch, n]), device),
        guide: examples.guides.to_guide(model.patch, device),
        mask: attention_masks(&token_masks, model, objective, device),
        weights: Tensor::from_data(TensorData::new(weights, [batch, n]), device),
    })
}

/// The leak-free encoder's tokens of each example's source under its mask (`B·N` ids,
/// read at the unmasked positions only). An example whose every token is masked (a whole
/// mask, see `whole_fraction`) reads none, so it is not encoded and its entries are 0:
/// at 128 px the encoder is a third of an iLAT step.
fn masked_context(
    examples: &Examples,
    token_masks: &[bool],
    n: usize,
    tokenizer: &impl Tokenizer,
) -> Result<Vec<i64>, TrainError> {
    let partial: Vec<usize> = token_masks
        .chunks(n)
        .enumerate()
        .filter(|(_, flags)| !flags.iter().all(|&masked| masked))
        .map(|(b, _)| b)
        .collect();
    let mut context = vec![0; token_masks.len()];
    if partial.is_empty() {
        return Ok(context);
    }
    let device = tokenizer.device();
    let sources: Vec<RgbImage> = partial
        .iter()
        .map(|&b| examples.sources[b].clone())
        .collect();
    let masks: Vec<GrayImage> = partial.iter().map(|&b| examples.masks[b].clone()).collect();
    let ids = tokenizer
        .tokenize(
            images_to_tensor(&sources, &device),
            Some(masks_to_tensor(&masks, &device)),
        )
        .try_into_vec_as::<i64>()?;
    for (k, &b) in partial.iter().enumerate() {
        context[b * n..(b + 1) * n].copy_from_slice(&ids[k * n..(k + 1) * n]);
    }
    Ok(context)
}

/// The attention masks of a batch (`true` = blocked): per sequence
/// [`network_mask`] of its token mask, LA for iLAT, vanilla for Taming.
///
/// # Shapes
/// - output: `[B, H, C + N, C + N]`
pub fn attention_masks(
    token_masks: &[&[bool]],
    model: &IlatConfig,
    objective: Objective,
    device: &Device,
) -> Tensor<4, Bool> {
    let (conditions, batch) = (model.conditions(), token_masks.len());
    let length = conditions + model.tokens();
    let local = objective == Objective::LocalAr;
    let blocked: Vec<bool> = token_masks
        .iter()
        .flat_map(|token_mask| network_mask(conditions, token_mask, local))
        .collect();
    Tensor::<3, Bool>::from_data(TensorData::new(blocked, [batch, length, length]), device)
        .reshape([batch, 1, length, length])
        .expand([batch, model.n_heads, length, length])
}

/// The batch's loss under `model`.
pub fn batch_loss(model: &Ilat, batch: &TokenBatch) -> Tensor<1> {
    let sequence = model.embed(
        batch.inputs.clone(),
        &model.embed_guide(batch.guide.clone()),
    );
    let logits = model.logits(sequence, batch.mask.clone());
    masked_nll(logits, batch.targets.clone(), batch.weights.clone())
}

/// Trains (or resumes) a run on pictures tokenised by `tokenizer` and writes the model
/// to `paths.to`. Returns the last held-out evaluation.
pub fn train(
    config: &IlatTrainingConfig,
    paths: &IlatTrainingPaths,
    tokenizer: &impl Tokenizer,
    device: &Device,
) -> Result<Logged, TrainError> {
    tokenizer.check_fits(config.model.vocab, config.model.patch)?;
    if paths.data.guidance() != config.model.guidance {
        return Err(TrainError::Config(format!(
            "the model is guided by {:?} but the data carries {:?}",
            config.model.guidance,
            paths.data.guidance()
        )));
    }
    let shape = (
        (config.model.grid * config.model.patch) as u32,
        config.model.patch as u32,
    );
    let (train_set, test_set) = paths.data.load(shape.0)?;
    let o = &config.schedule;
    let range = (config.min_masked, config.max_masked);
    let mut test_rng = StdRng::seed_from_u64(o.seed);
    let test_examples = test_set.draw(32, range, shape, &mut test_rng);
    let held_out = make_batch(
        &test_examples,
        (tokenizer, None),
        &config.model,
        config.objective,
        &device.clone().inner(),
    )?;
    let cache = match (&train_set, &paths.token_cache) {
        (Dataset::Faces(faces), Some(place)) => Some(place.open(faces, MAX_SHIFT, tokenizer)?),
        _ => None,
    };
    device.seed(o.seed);
    let trainer = TokenTrainer::new(
        config.model.init(device),
        (&config.model, config.weight_decay),
        held_out,
        |rng: &mut StdRng| {
            let mut examples = train_set.draw(o.batch, range, shape, rng);
            if config.objective == Objective::LocalAr {
                whole_masks(&mut examples.masks, config.whole_fraction, rng);
            }
            make_batch(
                &examples,
                (tokenizer, cache.as_ref()),
                &config.model,
                config.objective,
                device,
            )
        },
        batch_loss,
    );
    training::fit(trainer, o, &paths.to, config)
}

/// Makes each mask the whole picture with probability `fraction`; with none, draws
/// nothing from `rng`, so a run without whole masks draws the examples it always did.
fn whole_masks(masks: &mut [GrayImage], fraction: f64, rng: &mut StdRng) {
    if fraction.is_nan() || fraction <= 0.0 {
        return;
    }
    for mask in masks {
        if rng.random_bool(fraction.min(1.0)) {
            mask.pixels_mut().for_each(|p| p.0[0] = 255);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ilat::training_data::token_coverage;
    use crate::vqgan::{Vqgan, VqganConfig};
    use burn::optim::{AdamWConfig, GradientsParams};

    fn tiny() -> (Vqgan, IlatConfig, Dataset) {
        let device = Device::flex();
        device.seed(8);
        let tokenizer = VqganConfig::tiny(16).init(&device);
        let config = IlatConfig::new(32, 4)
            .with_d_model(32)
            .with_n_heads(4)
            .with_n_layers(2);
        let faces = (0..4)
            .map(|i| {
                image::RgbImage::from_fn(16, 16, |x, y| {
                    image::Rgb([(x * 16) as u8, (y * 16) as u8, i * 60])
                })
            })
            .collect();
        (tokenizer, config, Dataset::Faces(faces))
    }

    /// A batch tokenised at the step, without a cache.
    fn plain_batch(
        examples: &Examples,
        tokenizer: &Vqgan,
        config: &IlatConfig,
        objective: Objective,
        device: &Device,
    ) -> TokenBatch {
        make_batch(examples, (tokenizer, None), config, objective, device).expect("a batch")
    }

    #[test]
    fn local_batches_weigh_only_masked_tokens_and_feed_context_elsewhere() {
        let (tokenizer, config, faces) = tiny();
        let mut rng = StdRng::seed_from_u64(1);
        let examples = faces.draw(3, (0.1, 0.5), (16, 4), &mut rng);
        let batch_of =
            |objective| plain_batch(&examples, &tokenizer, &config, objective, &Device::flex());
        let batch = batch_of(Objective::LocalAr);
        let weights = batch.weights.try_into_vec_as::<f32>().expect("weights");
        let masked = weights.iter().filter(|&&w| w > 0.0).count();
        assert!(
            masked > 0 && masked < weights.len(),
            "{masked} of {}",
            weights.len()
        );
        for b in 0..3 {
            let cover = token_coverage(&examples.masks[b], 4);
            let weighted = weights[b * 16..(b + 1) * 16].iter().sum::<f32>() / 16.0;
            assert!(
                (cover - weighted).abs() < 1e-6,
                "weights follow the token mask"
            );
        }
        let causal = batch_of(Objective::Causal);
        assert_eq!(training::scalar(&causal.weights.sum()), 48.0);
    }

    /// An iLAT example with a whole mask is a Taming example: the same inputs,
    /// targets, weights and attention mask; a fraction of 0 keeps every mask.
    #[test]
    fn whole_masks_carry_tamings_objective() {
        let (tokenizer, config, faces) = tiny();
        let mut rng = StdRng::seed_from_u64(2);
        let mut examples = faces.draw(3, (0.1, 0.5), (16, 4), &mut rng);
        let drawn = examples.masks.clone();
        let before = rng.clone();
        whole_masks(&mut examples.masks, 0.0, &mut rng);
        assert_eq!(examples.masks, drawn);
        assert_eq!(rng, before, "no whole masks, no draws");
        whole_masks(&mut examples.masks, 1.0, &mut rng);
        let device = Device::flex();
        let local = plain_batch(&examples, &tokenizer, &config, Objective::LocalAr, &device);
        let causal = plain_batch(&examples, &tokenizer, &config, Objective::Causal, &device);
        let ints = |t: Tensor<2, Int>| t.try_into_vec_as::<i64>().expect("ids");
        assert_eq!(ints(local.inputs), ints(causal.inputs));
        assert_eq!(ints(local.targets), ints(causal.targets));
        let floats = |t: Tensor<2>| t.try_into_vec_as::<f32>().expect("weights");
        assert_eq!(floats(local.weights), floats(causal.weights));
        let bools = |t: Tensor<4, Bool>| t.try_into_vec_as::<bool>().expect("a mask");
        assert_eq!(bools(local.mask), bools(causal.mask));
    }

    /// Leaving a whole-masked example out of the leak-free encoding changes nothing:
    /// the other examples' context is what encoding the whole batch gives.
    #[test]
    fn whole_masked_examples_are_not_encoded_and_change_nothing() {
        let (tokenizer, config, faces) = tiny();
        let mut rng = StdRng::seed_from_u64(3);
        let mut examples = faces.draw(3, (0.1, 0.5), (16, 4), &mut rng);
        examples.masks[1].pixels_mut().for_each(|p| p.0[0] = 255);
        let device = Device::flex();
        let batch = plain_batch(&examples, &tokenizer, &config, Objective::LocalAr, &device);
        let masks = masks_to_tensor(&examples.masks, &device);
        let flags = tokenizer.token_mask_flags(masks.clone()).expect("flags");
        let context = tokenizer
            .tokenize(images_to_tensor(&examples.sources, &device), Some(masks))
            .try_into_vec_as::<i64>()
            .expect("ids");
        let clean = tokenizer
            .tokenize(images_to_tensor(&examples.targets, &device), None)
            .try_into_vec_as::<i64>()
            .expect("ids");
        let grid: Vec<i64> = (0..flags.len())
            .map(|i| if flags[i] { clean[i] } else { context[i] })
            .collect();
        let expected: Vec<i64> = grid
            .chunks(16)
            .flat_map(|g| shift_right(g, config.vocab as i64))
            .collect();
        let inputs = batch.inputs.try_into_vec_as::<i64>().expect("ids");
        assert_eq!(inputs, expected);
        assert!(flags[16..32].iter().all(|&m| m) && !flags[..16].iter().all(|&m| m));
    }

    /// The cached clean tokens are the ones tokenising would give: the same batch.
    #[test]
    fn a_batch_from_the_token_cache_is_the_batch_tokenising_makes() {
        let (tokenizer, config, faces) = tiny();
        let Dataset::Faces(pictures) = &faces else {
            unreachable!("faces")
        };
        let dir = std::env::temp_dir().join(format!("tessera-ilat-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tokenizer_config = VqganConfig::tiny(16);
        crate::store::save_model(&dir, "vqgan", &tokenizer_config, tokenizer.clone())
            .expect("save");
        let place = CachePlace {
            dir: dir.join("cache"),
            weights: dir.join("vqgan.bpk"),
        };
        let cache = place.open(pictures, MAX_SHIFT, &tokenizer).expect("cache");
        let mut rng = StdRng::seed_from_u64(6);
        let examples = faces.draw(4, (0.1, 0.5), (16, 4), &mut rng);
        assert_eq!(examples.drawn.len(), 4);
        let device = Device::flex();
        let ints = |t: Tensor<2, Int>| t.try_into_vec_as::<i64>().expect("ids");
        for objective in [Objective::LocalAr, Objective::Causal] {
            let made = |cache| {
                make_batch(&examples, (&tokenizer, cache), &config, objective, &device)
                    .expect("a batch")
            };
            let (plain, cached) = (made(None), made(Some(&cache)));
            assert_eq!(ints(plain.inputs), ints(cached.inputs), "{objective:?}");
            assert_eq!(ints(plain.targets), ints(cached.targets), "{objective:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_few_steps_lower_the_loss() {
        let (tokenizer, config, faces) = tiny();
        let device = Device::flex().autodiff();
        device.seed(2);
        let mut model = config.init(&device);
        let mut optim = AdamWConfig::new().init();
        let mut rng = StdRng::seed_from_u64(4);
        let examples = faces.draw(4, (0.2, 0.5), (16, 4), &mut rng);
        let batch = plain_batch(&examples, &tokenizer, &config, Objective::LocalAr, &device);
        let first = training::scalar(&batch_loss(&model, &batch));
        for _ in 0..30 {
            let loss = batch_loss(&model, &batch);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        let last = training::scalar(&batch_loss(&model, &batch));
        assert!(last < first * 0.5, "loss {first} -> {last}");
    }
}
