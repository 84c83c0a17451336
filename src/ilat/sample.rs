//! Sampling tokens with the KV cache: iLAT's local order (only the masked tokens, every
//! kept token seen at once) and the vanilla order of the Taming baseline (every token
//! from the first masked one on, each seeing only what precedes it).
//!
//! Local order: the condition rows and the *global* target rows (iLAT Eq. 7-8) run
//! once, as one pass. Then the *causal* rows run in raster order; a causal row whose
//! output predicts a kept token (it holds the last masked token of a run) is not
//! needed for its output, only for its keys and values, so it rides along with the
//! next needed row. Each masked token therefore costs exactly one cached step.

use std::ops::ControlFlow;

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::mask::{causal_positions, network_mask};
use super::model::{Embedded, Guide, Ilat, shift_right};
use crate::nn::transformer::KvCache;

/// Which tokens are generated, and with which attention mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Only the masked tokens, with the LA mask (iLAT; "Taming*" with vanilla weights).
    Local,
    /// Every token from the first masked one on, causally (Taming).
    Full,
}

/// How tokens are drawn from the logits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampling {
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f32,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            top_k: 100,
            temperature: 1.0,
            seed: 0,
        }
    }
}

/// The sampler stopped because its caller asked it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// Generates tokens of `tokens` (a raster grid) where `token_mask` says so, in `order`.
/// After each new token `on_token(grid, position)` is called with the grid so far; it
/// may stop the sampler by returning `Break`.
///
/// The guide is one sequence's (batch 1) and of the model's kind.
pub fn sample(
    model: &Ilat,
    tokens: &[usize],
    token_mask: &[bool],
    guide: Guide,
    order: Order,
    sampling: &Sampling,
    on_token: &mut dyn FnMut(&[usize], usize) -> ControlFlow<()>,
) -> Result<Vec<usize>, Cancelled> {
    let mut grid = tokens.to_vec();
    let Some(first) = token_mask.iter().position(|&m| m) else {
        return Ok(grid);
    };
    let mut rng = StdRng::seed_from_u64(sampling.seed);
    let device = guide.device();
    let conditions = model.conditions();
    // The guidance and the whole sequence embedded once (the first pass takes its rows
    // from it; the rows built one by one later reuse the guidance).
    let guide = model.embed_guide(guide);
    let ids: Vec<i64> = grid.iter().map(|&t| t as i64).collect();
    let inputs = shift_right(&ids, model.start_token() as i64);
    let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, grid.len()]), &device);
    let sequence = model.embed(inputs, &guide);
    let mut cache = KvCache::default();
    let (prefix, rest) = plan(order, token_mask, conditions, first);
    // The first pass; in the full order its last row predicts `first`. (In the local
    // order it is empty only when every token is masked and nothing is prepended.)
    if !prefix.is_empty() {
        let picked = prefix.iter().map(|&row| row as i64).collect::<Vec<_>>();
        let picked = Tensor::<1, Int>::from_data(TensorData::new(picked, [prefix.len()]), &device);
        let rows = sequence.select(1, picked);
        let mask = prefix_mask(
            order,
            token_mask,
            conditions,
            &prefix,
            model.heads(),
            &device,
        );
        let logits = model.step(rows, &prefix, mask, &mut cache);
        if order == Order::Full {
            grid[first] = draw(logits, sampling, &mut rng);
            proceed(on_token(&grid, first))?;
        }
    }
    let mut pending = Vec::new();
    for target in rest {
        pending.push(conditions + target);
        let predicts = match order {
            Order::Local => token_mask[target],
            Order::Full => true,
        };
        if !predicts {
            continue;
        }
        let rows: Vec<Tensor<3>> = pending
            .iter()
            .map(|&row| sequence_row(model, &grid, conditions, row, &guide))
            .collect();
        let mask = pending_mask(pending.len(), cache.len(), model.heads(), &device);
        let logits = model.step(Tensor::cat(rows, 1), &pending, mask, &mut cache);
        pending.clear();
        grid[target] = draw(logits, sampling, &mut rng);
        proceed(on_token(&grid, target))?;
    }
    Ok(grid)
}

/// A caller's answer as a result.
fn proceed(flow: ControlFlow<()>) -> Result<(), Cancelled> {
    match flow {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(Cancelled),
    }
}

/// The sequence rows of the first pass, and the target positions run one by one after
/// it, in order.
fn plan(
    order: Order,
    token_mask: &[bool],
    conditions: usize,
    first: usize,
) -> (Vec<usize>, Vec<usize>) {
    let n = token_mask.len();
    match order {
        Order::Local => {
            let causal = &causal_positions(token_mask)[..n];
            let prefix = (0..conditions)
                .chain((0..n).filter(|&p| !causal[p]).map(|p| conditions + p))
                .collect();
            let rest = (0..n).filter(|&p| causal[p]).collect();
            (prefix, rest)
        }
        Order::Full => (
            (0..conditions + first + 1).collect(),
            (first + 1..n).collect(),
        ),
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

/// New rows see every cached row and, causally, each other.
pub fn pending_mask(
    rows: usize,
    cached: usize,
    heads: usize,
    device: &Device,
) -> Option<Tensor<4, Bool>> {
    (rows > 1).then(|| {
        let width = cached + rows;
        let blocked = (0..rows * width)
            .map(|k| {
                let (row, col) = (k / width, k % width);
                col >= cached && col - cached > row
            })
            .collect();
        blocked_tensor(blocked, rows, width, heads, device)
    })
}

/// A `[1, heads, rows, cols]` mask from a row-major `rows x cols` grid.
pub fn blocked_tensor(
    blocked: Vec<bool>,
    rows: usize,
    cols: usize,
    heads: usize,
    device: &Device,
) -> Tensor<4, Bool> {
    Tensor::<2, Bool>::from_data(TensorData::new(blocked, [rows, cols]), device)
        .reshape([1, 1, rows, cols])
        .expand([1, heads, rows, cols])
}

/// Draws a token from logits with top-k and temperature.
pub fn draw(logits: Tensor<1>, sampling: &Sampling, rng: &mut impl Rng) -> usize {
    let logits: Vec<f32> = logits
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .unwrap_or_default();
    choose(&logits, sampling, rng)
}

/// Top-k, temperature, then one uniform draw over the cumulative weights.
pub fn choose(logits: &[f32], sampling: &Sampling, rng: &mut impl Rng) -> usize {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if sampling.temperature <= 0.0 || order.len() < 2 {
        return order.first().copied().unwrap_or(0);
    }
    let k = if sampling.top_k == 0 {
        order.len()
    } else {
        sampling.top_k.min(order.len())
    };
    let best = logits[order[0]];
    let weights: Vec<f64> = order[..k]
        .iter()
        .map(|&i| (((logits[i] - best) / sampling.temperature) as f64).exp())
        .collect();
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (&i, w) in order.iter().zip(&weights) {
        if u < *w {
            return i;
        }
        u -= w;
    }
    order[k - 1]
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
) -> Vec<usize> {
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
        let inputs = super::model::shift_right(&ids, model.start_token() as i64);
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, n]), &device);
        let logits = model.logits(model.embed(inputs, &guide), mask.clone());
        let vocab = logits.dims()[2];
        let row = logits.narrow(1, target, 1).reshape([vocab]);
        grid[target] = draw(row, sampling, &mut rng);
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ilat::model::{Guidance, IlatConfig, SketchInput};

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
            IlatConfig::tiny(24, SketchInput::Aligned).with_guidance(Guidance::Pose),
        ];
        for config in configs {
            let name = format!("{:?} {:?}", config.guidance, config.sketch);
            let (model, tokens, token_mask, guide) = setup(config);
            for order in [Order::Local, Order::Full] {
                let cached = sample(
                    &model,
                    &tokens,
                    &token_mask,
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
                );
                assert_eq!(cached, reference, "{name} {order:?}");
            }
        }
    }

    #[test]
    fn local_order_changes_only_masked_tokens_and_full_order_all_after_the_first() {
        let (model, tokens, token_mask, guide) = sketched();
        let sampling = Sampling::default();
        let mut seen = Vec::new();
        let local = sample(
            &model,
            &tokens,
            &token_mask,
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
        sample(
            &model,
            &tokens,
            &token_mask,
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
        let result = sample(
            &model,
            &tokens,
            &token_mask,
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
        assert_eq!(result, Err(Cancelled));
        assert_eq!(calls, 2);
    }

    #[test]
    fn top_one_is_the_most_likely_token() {
        let mut rng = StdRng::seed_from_u64(0);
        let sampling = Sampling {
            top_k: 1,
            temperature: 1.0,
            seed: 0,
        };
        assert_eq!(choose(&[0.1, 3.0, -1.0], &sampling, &mut rng), 1);
        let greedy = Sampling {
            temperature: 0.0,
            ..sampling
        };
        assert_eq!(choose(&[0.1, -3.0, 2.0], &greedy, &mut rng), 2);
    }
}
