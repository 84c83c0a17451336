//! The KV-cached decode of a grid's masked tokens, shared by every token model.
//!
//! A decode runs in two parts. The *first pass* runs every row whose input is already
//! known at once (iLAT's kept tokens, the prefix before the first free token of a
//! causal model) and fills the cache. Then rows run one by one in order; a row whose
//! output predicts nothing wanted (it holds a known token) is needed only for its keys
//! and values, so it *rides along* with the next row that predicts a wanted token.
//! Each wanted token therefore costs exactly one cached step.
//!
//! Several *candidates* of one job decode together: every step runs one row of each
//! (a batch of N rows costs about what one row does on this CPU: the step is bound by
//! reading the weights), and candidate k draws with its own random stream, so it is the
//! same picture whether it was made alone or beside others (up to the rounding of
//! batched products; `tests` count how often that flips a draw).

use std::ops::ControlFlow;

use burn::prelude::*;
use burn::tensor::TensorReadError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::sampling::{Sampling, choose};
use crate::nn::transformer::KvCache;

/// A token model seen by the decode: it embeds the rows it is asked for, for every
/// candidate, and runs them against the cache.
pub trait CachedModel {
    /// Runs the first pass over sequence rows `rows` of every candidate's grid (under
    /// whatever mask the model's order needs among them); returns the logits of each
    /// candidate's last row, `[N, vocab]`. A model whose first pass is the same for
    /// every candidate runs it once and shares the cache.
    fn first_pass(&self, rows: &[usize], grids: &[Vec<usize>], cache: &mut KvCache) -> Tensor<2>;

    /// Runs new rows of every candidate against the cache; returns the logits of each
    /// candidate's last one, `[N, vocab]`.
    fn next_rows(&self, rows: Pending<'_>, cache: &mut KvCache) -> Tensor<2>;

    /// Attention heads (the second axis of every mask).
    fn heads(&self) -> usize;

    /// The device the model lives on.
    fn device(&self) -> Device;
}

/// Rows run one after another against the cache.
pub struct Pending<'a> {
    /// Their sequence rows.
    pub rows: &'a [usize],
    /// Each candidate's grid as drawn so far (a row's input is a token of it).
    pub grids: &'a [Vec<usize>],
    /// What they may see of each other, for every candidate alike (none: a single
    /// row sees everything cached).
    pub mask: Option<Tensor<4, Bool>>,
}

/// What hears of every step: each candidate's grid so far and the position just drawn;
/// `Break` stops the decode.
pub type OnToken<'a> = dyn FnMut(&[Vec<usize>], usize) -> ControlFlow<()> + 'a;

/// Which rows a decode runs, in which order, and what each predicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Sequence rows of the first pass (empty: no first pass).
    pub first_pass: Vec<usize>,
    /// The grid position the first pass's last row predicts, if any.
    pub first_target: Option<usize>,
    /// Then each row in order with the grid position it predicts (none: it rides
    /// along with the next row that predicts one).
    pub rows: Vec<(usize, Option<usize>)>,
}

/// Why a decode stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The caller asked it to stop.
    #[error("cancelled")]
    Cancelled,
    /// The logits could not be read back from the device.
    #[error("reading the logits: {0}")]
    Read(#[from] TensorReadError),
}

/// Runs `plan` over every candidate's grid, writing each drawn token into it;
/// candidate k draws with `rngs[k]`. After each step `on_token(grids, position)`
/// hears of the token every candidate drew at `position` and may stop the decode with
/// `Break`.
pub fn decode<R: Rng>(
    model: &impl CachedModel,
    grids: &mut [Vec<usize>],
    plan: Plan,
    sampling: &Sampling,
    rngs: &mut [R],
    on_token: &mut OnToken<'_>,
) -> Result<(), DecodeError> {
    let mut cache = KvCache::default();
    if !plan.first_pass.is_empty() {
        let logits = model.first_pass(&plan.first_pass, grids, &mut cache);
        if let Some(target) = plan.first_target {
            draw_each(logits, grids, target, sampling, rngs)?;
            proceed(on_token(grids, target))?;
        }
    }
    let device = model.device();
    let mut pending = Vec::new();
    for (row, target) in plan.rows {
        pending.push(row);
        let Some(target) = target else {
            continue;
        };
        let mask = pending_mask(pending.len(), cache.len(), model.heads(), &device);
        let rows = Pending {
            rows: &pending,
            grids,
            mask,
        };
        let logits = model.next_rows(rows, &mut cache);
        pending.clear();
        draw_each(logits, grids, target, sampling, rngs)?;
        proceed(on_token(grids, target))?;
    }
    Ok(())
}

/// Candidate k's token at `target` from row k of `logits` (`[N, vocab]`, read back
/// once), drawn with `rngs[k]`.
fn draw_each<R: Rng>(
    logits: Tensor<2>,
    grids: &mut [Vec<usize>],
    target: usize,
    sampling: &Sampling,
    rngs: &mut [R],
) -> Result<(), DecodeError> {
    let vocab = logits.dims()[1];
    let values = logits.try_into_vec_as::<f32>()?;
    for ((grid, rng), row) in grids.iter_mut().zip(rngs).zip(values.chunks(vocab)) {
        grid[target] = choose(row, sampling, rng);
    }
    Ok(())
}

/// The random streams of `n` candidates from `seed`: candidate k's is seed `seed + k`'s,
/// the stream it would draw with alone at that seed.
pub fn candidate_rngs(seed: u64, n: usize) -> Vec<StdRng> {
    (0..n as u64)
        .map(|k| StdRng::seed_from_u64(seed.wrapping_add(k)))
        .collect()
}

/// A caller's answer as a result.
pub fn proceed(flow: ControlFlow<()>) -> Result<(), DecodeError> {
    match flow {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(DecodeError::Cancelled),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_rows_see_the_cache_and_their_predecessors() {
        let device = Device::flex();
        assert!(pending_mask(1, 5, 2, &device).is_none());
        let mask = pending_mask(2, 3, 1, &device).expect("two rows");
        let blocked = mask
            .try_into_vec_as::<bool>()
            .expect("a boolean mask on the host");
        assert_eq!(
            blocked,
            vec![
                false, false, false, false, true, false, false, false, false, false
            ]
        );
    }
}
