//! Sampling iLAT's tokens with the shared KV-cached decode ([`crate::tokens::decode`]):
//! iLAT's local order (only the masked tokens, every kept token seen at once) and the
//! vanilla order of the Taming baseline (every token from the first masked one on, each
//! seeing only what precedes it).
//!
//! Local order: the condition rows and the *global* target rows (iLAT Eq. 7-8) run
//! once, as the first pass. Then the *causal* rows run in raster order; a causal row
//! whose output predicts a kept token (it holds the last masked token of a run) rides
//! along with the next needed row.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::mask::{causal_positions, network_mask};
use super::model::{Embedded, Guide, Ilat};
use crate::nn::transformer::KvCache;
use crate::tokens::decode::{
    self, CachedModel, DecodeError, OnToken, Pending, Plan, blocked_tensor,
};
use crate::tokens::objective::shift_right;
use crate::tokens::sampling::{Sampling, draw};

/// Which tokens are generated, and with which attention mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Only the masked tokens, with the LA mask (iLAT; "Taming*" with vanilla weights).
    Local,
    /// Every token from the first masked one on, causally (Taming).
    Full,
}

/// Generates tokens of `tokens` (a raster grid) where `token_mask` says so, in `order`,
/// for `candidates` candidates at once: candidate k draws as a lone run with seed
/// `sampling.seed + k` would. After each step `on_token(grids, position)` is called
/// with every candidate's grid so far; it may stop the sampler by returning `Break`.
///
/// The guide is one sequence's (batch 1) and of the model's kind; every candidate
/// shares it, and shares the first pass over the known tokens.
pub fn sample(
    model: &Ilat,
    (tokens, token_mask): (&[usize], &[bool]),
    guide: Guide,
    order: Order,
    (sampling, candidates): (&Sampling, usize),
    on_token: &mut OnToken<'_>,
) -> Result<Vec<Vec<usize>>, DecodeError> {
    let candidates = candidates.max(1);
    let mut grids = vec![tokens.to_vec(); candidates];
    let Some(first) = token_mask.iter().position(|&m| m) else {
        return Ok(grids);
    };
    let mut rngs = decode::candidate_rngs(sampling.seed, candidates);
    let device = guide.device();
    // The guidance and the whole sequence embedded once (the first pass takes its rows
    // from it; the rows built one by one later reuse the guidance).
    let guide = model.embed_guide(guide);
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let inputs = shift_right(&ids, model.start_token() as i64);
    let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, tokens.len()]), &device);
    let sequence = model.embed(inputs, &guide);
    let decoder = IlatDecoder {
        model,
        sequence,
        guide,
        order,
        token_mask,
    };
    let plan = plan(order, token_mask, model.conditions(), first);
    decode::decode(&decoder, &mut grids, plan, sampling, &mut rngs, on_token)?;
    Ok(grids)
}

/// iLAT as the shared decode sees it: one sequence's embedding and guidance.
struct IlatDecoder<'a> {
    model: &'a Ilat,
    /// The whole sequence embedded with the grid as it was given.
    sequence: Tensor<3>,
    guide: Embedded,
    order: Order,
    token_mask: &'a [bool],
}

impl CachedModel for IlatDecoder<'_> {
    /// Runs once: the first pass reads only tokens every candidate shares.
    fn first_pass(&self, rows: &[usize], grids: &[Vec<usize>], cache: &mut KvCache) -> Tensor<2> {
        let device = self.device();
        let picked = rows.iter().map(|&row| row as i64).collect::<Vec<_>>();
        let picked = Tensor::<1, Int>::from_data(TensorData::new(picked, [rows.len()]), &device);
        let embedded = self.sequence.clone().select(1, picked);
        let mask = prefix_mask(
            self.order,
            self.token_mask,
            self.model.conditions(),
            rows,
            self.model.heads(),
            &device,
        );
        let logits = self.model.step(embedded, rows, mask, cache);
        let n = grids.len();
        if n > 1 {
            *cache = std::mem::take(cache).repeat(n);
        }
        let vocab = logits.dims()[1];
        logits.expand([n, vocab])
    }

    fn next_rows(&self, pending: Pending<'_>, cache: &mut KvCache) -> Tensor<2> {
        let conditions = self.model.conditions();
        let candidates: Vec<Tensor<3>> = pending
            .grids
            .iter()
            .map(|grid| {
                let rows = pending
                    .rows
                    .iter()
                    .map(|&row| sequence_row(self.model, grid, conditions, row, &self.guide))
                    .collect();
                Tensor::cat(rows, 1)
            })
            .collect();
        let rows = Tensor::cat(candidates, 0);
        self.model.step(rows, pending.rows, pending.mask, cache)
    }

    fn heads(&self) -> usize {
        self.model.heads()
    }

    fn device(&self) -> Device {
        self.sequence.device()
    }
}

/// The rows of the first pass, then the target rows one by one with what each predicts.
fn plan(order: Order, token_mask: &[bool], conditions: usize, first: usize) -> Plan {
    let n = token_mask.len();
    match order {
        Order::Local => {
            let causal = &causal_positions(token_mask)[..n];
            Plan {
                first_pass: (0..conditions)
                    .chain((0..n).filter(|&p| !causal[p]).map(|p| conditions + p))
                    .collect(),
                first_target: None,
                rows: (0..n)
                    .filter(|&p| causal[p])
                    .map(|p| (conditions + p, token_mask[p].then_some(p)))
                    .collect(),
            }
        }
        Order::Full => Plan {
            first_pass: (0..conditions + first + 1).collect(),
            first_target: Some(first),
            rows: (first + 1..n).map(|p| (conditions + p, Some(p))).collect(),
        },
    }
}

/// The embedded row `row` of the sequence for the tokens of `grid`.
fn sequence_row(
    model: &Ilat,
    grid: &[usize],
    conditions: usize,
    row: usize,
    guide: &Embedded,
) -> Tensor<3> {
    match row.checked_sub(conditions) {
        None => model
            .condition_row(row, guide)
            .unwrap_or_else(|| unreachable!("condition rows are all in the first pass")),
        Some(0) => model.target_row(model.start_token(), 0, guide),
        Some(p) => model.target_row(grid[p - 1], p, guide),
    }
}

/// The attention mask among the rows of the first pass (a sub-matrix of the full LA or
/// vanilla mask), or none when every row may see every other.
fn prefix_mask(
    order: Order,
    token_mask: &[bool],
    conditions: usize,
    rows: &[usize],
    heads: usize,
    device: &Device,
) -> Option<Tensor<4, Bool>> {
    let full = network_mask(conditions, token_mask, order == Order::Local);
    let length = conditions + token_mask.len();
    let blocked: Vec<bool> = rows
        .iter()
        .flat_map(|&i| rows.iter().map(move |&j| i * length + j))
        .map(|k| full[k])
        .collect();
    blocked
        .iter()
        .any(|&b| b)
        .then(|| blocked_tensor(blocked, rows.len(), rows.len(), heads, device))
}

/// The same tokens as [`sample`] without the cache: before every new token the whole
/// sequence runs again under the full mask, as Taming's sampler does. The reference
/// the cached sampler is tested against, and the "before" of `tessera bench
/// throughput`.
pub fn sample_recomputed(
    model: &Ilat,
    tokens: &[usize],
    token_mask: &[bool],
    guide: Guide,
    order: Order,
    sampling: &Sampling,
) -> Result<Vec<usize>, DecodeError> {
    let device = guide.device();
    let guide = model.embed_guide(guide);
    let n = tokens.len();
    let length = model.conditions() + n;
    let blocked = network_mask(model.conditions(), token_mask, order == Order::Local);
    let mask = blocked_tensor(blocked, length, length, model.heads(), &device);
    let first = token_mask.iter().position(|&m| m).unwrap_or(n);
    let todo: Vec<usize> = match order {
        Order::Local => (0..n).filter(|&p| token_mask[p]).collect(),
        Order::Full => (first..n).collect(),
    };
    let mut grid = tokens.to_vec();
    let mut rng = StdRng::seed_from_u64(sampling.seed);
    for target in todo {
        let ids: Vec<i64> = grid.iter().map(|&t| t as i64).collect();
        let inputs = shift_right(&ids, model.start_token() as i64);
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, n]), &device);
        let logits = model.logits(model.embed(inputs, &guide), mask.clone());
        let vocab = logits.dims()[2];
        let row = logits.narrow(1, target, 1).reshape([vocab]);
        grid[target] = draw(row, sampling, &mut rng)?;
    }
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ilat::model::{GuideKind, IlatConfig, SketchInput};
    use std::ops::ControlFlow;

    fn setup(config: IlatConfig) -> (Ilat, Vec<usize>, Vec<bool>, Guide) {
        let device = Device::flex();
        device.seed(3);
        let model = config.init(&device);
        let tokens: Vec<usize> = (0..16).map(|i| (i * 5) % 24).collect();
        let token_mask: Vec<bool> = (0..16).map(|i| [2, 3, 6, 7, 11, 15].contains(&i)).collect();
        let guide = Guide::random(&config, &device);
        (model, tokens, token_mask, guide)
    }

    fn sketched() -> (Ilat, Vec<usize>, Vec<bool>, Guide) {
        setup(IlatConfig::tiny(24, SketchInput::Aligned))
    }

    /// One candidate's grid, every token reported to `on_token`.
    fn alone(
        model: &Ilat,
        (tokens, token_mask): (&[usize], &[bool]),
        guide: Guide,
        order: Order,
        sampling: &Sampling,
        on_token: &mut OnToken<'_>,
    ) -> Result<Vec<usize>, DecodeError> {
        let mut grids = sample(
            model,
            (tokens, token_mask),
            guide,
            order,
            (sampling, 1),
            on_token,
        )?;
        Ok(grids.remove(0))
    }

    #[test]
    fn cached_sampling_equals_full_recomputation() {
        let sampling = Sampling {
            top_k: 8,
            temperature: 1.0,
            seed: 11,
        };
        let configs = [
            IlatConfig::tiny(24, SketchInput::Aligned),
            IlatConfig::tiny(24, SketchInput::Prepended),
            IlatConfig::tiny(24, SketchInput::Aligned).with_guidance(GuideKind::Pose),
        ];
        for config in configs {
            let name = format!("{:?} {:?}", config.guidance, config.sketch);
            let (model, tokens, token_mask, guide) = setup(config);
            for order in [Order::Local, Order::Full] {
                let cached = alone(
                    &model,
                    (&tokens, &token_mask),
                    guide.clone(),
                    order,
                    &sampling,
                    &mut |_, _| ControlFlow::Continue(()),
                )
                .expect("not cancelled");
                let reference = sample_recomputed(
                    &model,
                    &tokens,
                    &token_mask,
                    guide.clone(),
                    order,
                    &sampling,
                )
                .expect("logits read back");
                assert_eq!(cached, reference, "{name} {order:?}");
            }
        }
    }

    #[test]
    fn local_order_changes_only_masked_tokens_and_full_order_all_after_the_first() {
        let (model, tokens, token_mask, guide) = sketched();
        let sampling = Sampling::default();
        let mut seen = Vec::new();
        let local = alone(
            &model,
            (&tokens, &token_mask),
            guide.clone(),
            Order::Local,
            &sampling,
            &mut |_, p| {
                seen.push(p);
                ControlFlow::Continue(())
            },
        )
        .expect("not cancelled");
        assert_eq!(seen, vec![2, 3, 6, 7, 11, 15]);
        for (p, (&a, &b)) in local.iter().zip(&tokens).enumerate() {
            if !token_mask[p] {
                assert_eq!(a, b, "kept token {p} changed");
            }
        }
        let mut count = 0;
        alone(
            &model,
            (&tokens, &token_mask),
            guide,
            Order::Full,
            &sampling,
            &mut |_, _| {
                count += 1;
                ControlFlow::Continue(())
            },
        )
        .expect("not cancelled");
        assert_eq!(count, 16 - 2);
    }

    #[test]
    fn the_caller_can_cancel_between_tokens() {
        let (model, tokens, token_mask, guide) = sketched();
        let mut calls = 0;
        let result = alone(
            &model,
            (&tokens, &token_mask),
            guide,
            Order::Local,
            &Sampling::default(),
            &mut |_, _| {
                calls += 1;
                if calls == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert!(matches!(result, Err(DecodeError::Cancelled)));
        assert_eq!(calls, 2);
    }

    /// Candidate k of a batch draws the tokens the same seed draws alone: the batch
    /// shares the first pass and runs each step's rows together, but every candidate
    /// keeps its own random stream. Batched products may round differently from
    /// single-row ones and flip a near-tie; over these 3 candidates x 2 orders x 4
    /// seeds none may differ in more than one token.
    #[test]
    fn candidate_k_of_a_batch_draws_what_its_seed_draws_alone() {
        let (model, tokens, token_mask, guide) = sketched();
        let mut flipped = 0;
        for seed in [1, 7, 40, 99] {
            let sampling = Sampling {
                top_k: 8,
                temperature: 1.0,
                seed,
            };
            for order in [Order::Local, Order::Full] {
                let mut heard = 0;
                let batch = sample(
                    &model,
                    (&tokens, &token_mask),
                    guide.clone(),
                    order,
                    (&sampling, 3),
                    &mut |grids, _| {
                        assert_eq!(grids.len(), 3);
                        heard += 1;
                        ControlFlow::Continue(())
                    },
                )
                .expect("not cancelled");
                assert!(heard > 0);
                for (k, grid) in batch.iter().enumerate() {
                    let single = Sampling {
                        seed: seed + k as u64,
                        ..sampling
                    };
                    let by_itself = alone(
                        &model,
                        (&tokens, &token_mask),
                        guide.clone(),
                        order,
                        &single,
                        &mut |_, _| ControlFlow::Continue(()),
                    )
                    .expect("not cancelled");
                    let differ = grid.iter().zip(&by_itself).filter(|(a, b)| a != b).count();
                    assert!(
                        differ <= 1,
                        "seed {seed} candidate {k} {order:?}: {differ} tokens"
                    );
                    flipped += differ;
                }
                assert_ne!(batch[0], batch[1], "two seeds, two candidates");
            }
        }
        assert!(flipped <= 2, "{flipped} tokens flipped in 24 candidates");
    }
}
