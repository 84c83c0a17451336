//! Running the reverse chain: one step `x_t → x_{t−1}` decodes token by token with the
//! KV cache, and the masked forward-backward process of App. A.3 refines an edit: the
//! masked tokens are diffused to `x_T` and denoised back to `x_0` while every unmasked
//! token stays what it was, cycle after cycle.

use std::ops::ControlFlow;

use burn::prelude::*;
use rand::Rng;

use super::model::Reverse;
use super::schedule::Schedule;
use crate::nn::transformer::{KvCache, causal_mask};
use crate::tokens::decode::{self, CachedModel, DecodeError, Pending, Plan, proceed};
use crate::tokens::sampling::Sampling;

/// Tokens fixed during a masked step: where `free` is false, `x_{t−1}` is `known`.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub tokens: &'a [usize],
    pub free: &'a [bool],
}

/// One reverse step: draws `x_{t−1}` given `x_t` (a raster grid), token by token;
/// where `known` fixes a token it is taken, not drawn (the decoder still reads it).
pub fn reverse_step(
    model: &Reverse,
    x_t: &[usize],
    known: Option<Known<'_>>,
    sampling: &Sampling,
    rng: &mut impl Rng,
) -> Result<Vec<usize>, DecodeError> {
    let device = model_device(model);
    let n = x_t.len();
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(x_t.iter().map(|&t| t as i64).collect(), [1, n]),
        &device,
    );
    let decoder = ReverseDecoder {
        model,
        memory: model.encode(ids),
        device,
    };
    let free = |p: usize| known.is_none_or(|k| k.free[p]);
    let mut out: Vec<usize> = match known {
        Some(k) => k.tokens.to_vec(),
        None => vec![0; n],
    };
    let Some(first) = (0..n).find(|&p| free(p)) else {
        return Ok(out);
    };
    // Rows 0..=first in one pass (their inputs are known); its last row predicts `first`.
    // Then rows in order; a known token's row rides along with the next free one.
    let plan = Plan {
        first_pass: (0..=first).collect(),
        first_target: Some(first),
        rows: (first + 1..n).map(|p| (p, free(p).then_some(p))).collect(),
    };
    let mut ignore = |_: &[usize], _| ControlFlow::Continue(());
    decode::decode(&decoder, &mut out, plan, sampling, rng, &mut ignore)?;
    Ok(out)
}

/// A reverse step as the shared decode sees it: the decoder with `x_t` encoded.
struct ReverseDecoder<'a> {
    model: &'a Reverse,
    memory: Option<Tensor<3>>,
    device: Device,
}

impl CachedModel for ReverseDecoder<'_> {
    fn first_pass(&self, rows: &[usize], grid: &[usize], cache: &mut KvCache) -> Tensor<1> {
        let heads = self.model.heads();
        let mask = (rows.len() > 1).then(|| causal_mask(1, heads, rows.len(), &self.device));
        self.next_rows(Pending { rows, grid, mask }, cache)
    }

    fn next_rows(&self, pending: Pending<'_>, cache: &mut KvCache) -> Tensor<1> {
        let inputs: Vec<usize> = pending
            .rows
            .iter()
            .map(|&p| input_at(self.model, pending.grid, p))
            .collect();
        let memory = self.memory.as_ref();
        self.model
            .step(&inputs, pending.rows, pending.mask, cache, memory)
    }

    fn heads(&self) -> usize {
        self.model.heads()
    }

    fn device(&self) -> Device {
        self.device.clone()
    }
}

/// The decoder's input at position `p`: the start token, or token `p − 1`.
fn input_at(model: &Reverse, grid: &[usize], p: usize) -> usize {
    if p == 0 {
        model.start_token()
    } else {
        grid[p - 1]
    }
}

fn model_device(model: &Reverse) -> Device {
    burn::module::Module::devices(model)
        .first()
        .cloned()
        .unwrap_or_else(Device::flex)
}

/// One grid of a refinement's trajectory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Which cycle (from 0).
    pub cycle: usize,
    /// The chain level the grid is at (`T` after diffusing, 0 when denoised).
    pub level: usize,
    pub grid: Vec<usize>,
}

/// The level every refinement cycle after the first diffuses to: the lowest, which
/// keeps the most of the sample (`ᾱ_1` of its tokens).
pub const REFINE_LEVEL: usize = 1;

/// The reverse chain: `models[t − 1]` is the step `t → t − 1`.
#[derive(Clone, Copy)]
pub struct Chain<'a> {
    pub models: &'a [Reverse],
    pub schedule: &'a Schedule,
}

impl Chain<'_> {
    /// The masked forward-backward process (App. A.3). The first cycle starts the
    /// `free` tokens of the grid as random codes (`x_T`) and denoises them level by
    /// level; every later cycle diffuses them to level [`REFINE_LEVEL`] only and
    /// denoises that level again, so a cycle keeps part of the sample and redraws the
    /// rest in view of everything around it, and the sample settles (diffusing to `T`
    /// every cycle would draw independent samples, as a left-to-right model does).
    /// Every other token never changes. `on_stage` sees each grid and may cancel.
    /// Returns the final grid.
    pub fn refine(
        &self,
        grid: &[usize],
        free: &[bool],
        (cycles, sampling): (usize, &Sampling),
        rng: &mut impl Rng,
        on_stage: &mut dyn FnMut(&Stage) -> ControlFlow<()>,
    ) -> Result<Vec<usize>, DecodeError> {
        let mut x_0 = grid.to_vec();
        for cycle in 0..cycles {
            let top = self.start_level(cycle);
            let mut x = self.schedule.diffuse(&x_0, top, Some(free), rng);
            report(on_stage, cycle, top, &x)?;
            for t in (1..=top).rev() {
                let known = Known { tokens: &x_0, free };
                x = reverse_step(&self.models[t - 1], &x, Some(known), sampling, rng)?;
                report(on_stage, cycle, t - 1, &x)?;
            }
            x_0 = x;
        }
        Ok(x_0)
    }

    /// The level cycle `cycle` of a refinement diffuses to.
    fn start_level(&self, cycle: usize) -> usize {
        match cycle {
            0 => self.schedule.steps(),
            _ => REFINE_LEVEL.min(self.schedule.steps()),
        }
    }

    /// How many grids a refinement of `cycles` reports.
    pub fn stages(&self, cycles: usize) -> usize {
        (0..cycles).map(|c| self.start_level(c) + 1).sum()
    }

    /// A sample of the whole chain: `x_T` uniform noise, then every reverse step.
    pub fn sample(
        &self,
        tokens: usize,
        sampling: &Sampling,
        rng: &mut impl Rng,
    ) -> Result<Vec<usize>, DecodeError> {
        let codes = self.schedule.codes;
        let mut x: Vec<usize> = (0..tokens).map(|_| rng.random_range(0..codes)).collect();
        for t in (1..=self.schedule.steps()).rev() {
            x = reverse_step(&self.models[t - 1], &x, None, sampling, rng)?;
        }
        Ok(x)
    }
}

fn report(
    on_stage: &mut dyn FnMut(&Stage) -> ControlFlow<()>,
    cycle: usize,
    level: usize,
    grid: &[usize],
) -> Result<(), DecodeError> {
    let stage = Stage {
        cycle,
        level,
        grid: grid.to_vec(),
    };
    proceed(on_stage(&stage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagebart::model::ReverseConfig;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn chain(device: &Device) -> (Vec<Reverse>, Schedule) {
        device.seed(12);
        let models = vec![
            ReverseConfig::tiny(10, 1).init(device),
            ReverseConfig::tiny(10, 0).init(device),
        ];
        (models, Schedule::linear_keep(2, 10, 0.0))
    }

    #[test]
    fn the_masked_process_never_changes_an_unmasked_token() {
        let device = Device::flex();
        let (models, schedule) = chain(&device);
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..8 {
            let grid: Vec<usize> = (0..16).map(|_| rng.random_range(0..10)).collect();
            let free: Vec<bool> = (0..16).map(|_| rng.random_bool(0.4)).collect();
            let mut stages = 0;
            let chain = Chain {
                models: &models,
                schedule: &schedule,
            };
            let out = chain
                .refine(
                    &grid,
                    &free,
                    (2, &Sampling::default()),
                    &mut rng,
                    &mut |stage| {
                        stages += 1;
                        for p in 0..16 {
                            if !free[p] {
                                assert_eq!(
                                    stage.grid[p], grid[p],
                                    "level {} token {p}",
                                    stage.level
                                );
                            }
                        }
                        ControlFlow::Continue(())
                    },
                )
                .expect("not cancelled");
            assert_eq!(
                (stages, chain.stages(2)),
                (3 + 2, 3 + 2),
                "the first cycle: the noise and two denoised grids; the next: one of each"
            );
            assert_eq!(out.len(), 16);
        }
    }

    #[test]
    fn greedy_cached_decoding_follows_the_teacher_forced_logits() {
        let device = Device::flex();
        let (models, _) = chain(&device);
        let model = &models[0];
        let x_t: Vec<usize> = (0..16).map(|i| i * 3 % 10).collect();
        let greedy = Sampling {
            temperature: 0.0,
            ..Sampling::default()
        };
        let mut rng = StdRng::seed_from_u64(0);
        let out = reverse_step(model, &x_t, None, &greedy, &mut rng).expect("decoded");
        // Teacher forcing the decoded grid must make each position's argmax the token.
        let inputs: Vec<i64> = (0..16).map(|p| input_at(model, &out, p) as i64).collect();
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, 16]), &device);
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(x_t.iter().map(|&t| t as i64).collect(), [1, 16]),
            &device,
        );
        let memory = model.encode(ids);
        let best: Vec<i64> = model
            .logits(inputs, memory.as_ref())
            .argmax(2)
            .into_data()
            .convert::<i64>()
            .try_into_vec()
            .expect("argmax on the host");
        assert_eq!(best, out.iter().map(|&t| t as i64).collect::<Vec<_>>());
    }
}
