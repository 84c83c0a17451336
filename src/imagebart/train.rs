//! Training one reverse step of ImageBART (`tessera train imagebart --step t`): each
//! step is its own model, trained independently (§3.3, "parallel learning of
//! hierarchies"). A batch is augmented faces tokenised by the shipped TS-VQGAN
//! (`x_0`), then `x_{t−1} ~ q(x_{t−1} | x_0)` in closed form and `x_t ~ q(x_t |
//! x_{t−1})` by one forward step; the decoder learns `x_{t−1}` given the encoded
//! `x_t`. The loss is the single-sample maximum-likelihood form of Eq. 8 for every
//! step (it differs from the KL of Eq. 7 by the posterior's entropy, a constant of
//! the data, so both have the same minimiser).

use std::path::PathBuf;

use burn::prelude::*;
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::model::{Reverse, ReverseConfig};
use super::schedule::Schedule;
use crate::data::convert::{images_to_tensor, tensor_to_grids};
use crate::data::faces::{Augmentation, MAX_SHIFT, load_folder};
use crate::tokens::Tokenizer;
use crate::tokens::objective::{masked_nll, shift_right};
use crate::training::{
    self, CachePlace, Destination, Logged, TokenCache, TokenTrainer, TrainError,
};

/// Everything a run of one reverse step needs besides data.
#[derive(Config, Debug)]
pub struct ImagebartTrainingConfig {
    /// The step's network (`encoder_layers` 0 for the last step).
    pub model: ReverseConfig,
    /// The forward chain.
    pub chain: Schedule,
    /// Which step, `1..=T`: the model learns `p(x_{t−1} | x_t)`.
    pub step: usize,
    /// Steps, batch, learning rate, seed.
    #[config(default = "training::Schedule::new()")]
    pub schedule: training::Schedule,
    /// AdamW's decoupled weight decay.
    #[config(default = 0.01)]
    pub weight_decay: f32,
}

/// Where a run reads and writes.
#[derive(Debug, Clone)]
pub struct ImagebartTrainingPaths {
    pub train: PathBuf,
    pub test: PathBuf,
    /// The run and the finished model (`imagebart-step1`, …).
    pub to: Destination,
    /// Where the training faces' clean tokens are cached (none: tokenised at every
    /// step).
    pub token_cache: Option<CachePlace>,
}

/// One batch: the decoder's inputs and targets (`x_{t−1}`) and the encoder's `x_t`.
pub struct StepBatch {
    pub x_t: Tensor<2, Int>,
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
}

/// Noises clean token grids into a batch for step `t`.
pub fn make_batch(
    x_0: &[Vec<usize>],
    schedule: &Schedule,
    t: usize,
    start: usize,
    rng: &mut impl Rng,
    device: &Device,
) -> StepBatch {
    let (batch, n) = (x_0.len(), x_0.first().map_or(0, Vec::len));
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for grid in x_0 {
        let x_prev = schedule.diffuse(grid, t - 1, None, rng);
        let x_t = schedule.step(&x_prev, t, rng);
        before.extend(x_prev.iter().map(|&k| k as i64));
        after.extend(x_t.iter().map(|&k| k as i64));
    }
    let inputs: Vec<i64> = before
        .chunks(n.max(1))
        .flat_map(|g| shift_right(g, start as i64))
        .collect();
    let tensor = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [batch, n]), device);
    StepBatch {
        x_t: tensor(after),
        inputs: tensor(inputs),
        targets: tensor(before),
    }
}

/// Mean NLL of `x_{t−1}` over every token.
pub fn batch_loss(model: &Reverse, batch: &StepBatch) -> Tensor<1> {
    let memory = model.encode(batch.x_t.clone());
    let logits = model.logits(batch.inputs.clone(), memory.as_ref());
    let weights = Tensor::ones(batch.targets.dims(), &batch.targets.device());
    masked_nll(logits, batch.targets.clone(), weights)
}

/// Tokenises augmented faces drawn from `set`, or reads their tokens from `cache`
/// (made for `set`).
fn draw_grids(
    set: &[RgbImage],
    count: usize,
    (tokenizer, cache): (&impl Tokenizer, Option<&TokenCache>),
    rng: &mut impl Rng,
) -> Result<Vec<Vec<usize>>, TrainError> {
    let drawn: Vec<(usize, Augmentation)> = (0..count)
        .map(|_| {
            let face = rng.random_range(0..set.len());
            (face, Augmentation::draw(MAX_SHIFT, rng))
        })
        .collect();
    if let Some(cache) = cache {
        return Ok(drawn
            .iter()
            .map(|&(face, a)| cache.grid(face, a).iter().map(|&id| id as usize).collect())
            .collect());
    }
    let faces: Vec<RgbImage> = drawn.iter().map(|&(face, a)| a.apply(&set[face])).collect();
    let device = tokenizer.device();
    let indices = tokenizer.tokenize(images_to_tensor(&faces, &device), None);
    Ok(tensor_to_grids(indices)?)
}

/// Trains (or resumes) a run on faces tokenised by `tokenizer` and writes the model to
/// `paths.to`. Returns the last held-out evaluation.
pub fn train(
    config: &ImagebartTrainingConfig,
    paths: &ImagebartTrainingPaths,
    tokenizer: &impl Tokenizer,
    device: &Device,
) -> Result<Logged, TrainError> {
    let t = config.step;
    if !(1..=config.chain.steps()).contains(&t) {
        return Err(TrainError::Config(format!(
            "step {t} is not in the chain of {} steps",
            config.chain.steps()
        )));
    }
    let last = t == config.chain.steps();
    if last != (config.model.encoder_layers == 0) {
        return Err(TrainError::Config(format!(
            "step {t}: the last step is decoder-only and the others have an encoder ({} encoder layers given)",
            config.model.encoder_layers
        )));
    }
    tokenizer.check_fits(config.model.vocab, tokenizer.factor())?;
    if config.chain.codes != config.model.vocab {
        return Err(TrainError::Config(format!(
            "the chain diffuses over {} codes, the model has {}",
            config.chain.codes, config.model.vocab
        )));
    }
    let size = (config.model.grid * tokenizer.factor()) as u32;
    let train_set = load_folder(&paths.train, size)?;
    let test_set = load_folder(&paths.test, size)?;
    let o = &config.schedule;
    let start_token = config.model.vocab;
    let mut test_rng = StdRng::seed_from_u64(o.seed);
    let test_grids = draw_grids(&test_set, 32, (tokenizer, None), &mut test_rng)?;
    let cache = match &paths.token_cache {
        Some(place) => Some(place.open(&train_set, MAX_SHIFT, tokenizer)?),
        None => None,
    };
    let held_out = make_batch(
        &test_grids,
        &config.chain,
        t,
        start_token,
        &mut test_rng,
        &device.clone().inner(),
    );
    device.seed(o.seed);
    let trainer = TokenTrainer::new(
        config.model.init(device),
        (&config.model, config.weight_decay),
        held_out,
        |rng: &mut StdRng| {
            let grids = draw_grids(&train_set, o.batch, (tokenizer, cache.as_ref()), rng)?;
            Ok(make_batch(
                &grids,
                &config.chain,
                t,
                start_token,
                rng,
                device,
            ))
        },
        batch_loss,
    );
    training::fit(trainer, o, &paths.to, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::Trainee;
    use burn::optim::AdamWConfig;

    /// A tensor of token ids on the host.
    fn ids(t: Tensor<2, Int>) -> Vec<i64> {
        t.try_into_vec_as::<i64>().expect("ids on the host")
    }

    #[test]
    fn a_step_batch_holds_the_noisier_grid_and_the_target_shifted() {
        let schedule = Schedule::linear_keep(2, 8, 0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let x_0 = vec![vec![3usize; 16]; 2];
        let batch = make_batch(&x_0, &schedule, 1, 8, &mut rng, &Device::flex());
        let targets = ids(batch.targets);
        // Step 1: x_{t−1} is x_0 itself.
        assert!(targets.iter().all(|&k| k == 3));
        let inputs = ids(batch.inputs);
        assert_eq!(inputs[0], 8, "the start token");
        assert_eq!(inputs[16], 8);
        let x_t = ids(batch.x_t);
        let changed = x_t.iter().filter(|&&k| k != 3).count();
        assert!(
            changed > 0 && changed < 32,
            "half the tokens resampled: {changed}"
        );
    }

    #[test]
    fn a_few_steps_lower_the_loss() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let schedule = Schedule::linear_keep(2, 10, 0.0);
        let mut state = Trainee {
            model: ReverseConfig::tiny(10, 1).init(&device),
            optim: AdamWConfig::new().init(),
        };
        let mut rng = StdRng::seed_from_u64(5);
        let x_0: Vec<Vec<usize>> = (0..4)
            .map(|i| (0..16).map(|p| (p + i) % 10).collect())
            .collect();
        let batch = make_batch(&x_0, &schedule, 1, 10, &mut rng, &device);
        let first = training::scalar(&batch_loss(&state.model, &batch));
        for _ in 0..40 {
            state.step(3e-3, batch_loss(&state.model, &batch));
        }
        let last = training::scalar(&batch_loss(&state.model, &batch));
        assert!(last < first * 0.6, "loss {first} -> {last}");
    }
}
