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

/// Tokens fixed during a masked step: where `free` is false, candidate k's `x_{t−1}` is
/// `tokens[k]`.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub tokens: &'a [Vec<usize>],
    pub free: &'a [bool],
}

/// One reverse step of every candidate: draws each `x_{t−1}` given its `x_t` (raster
/// grids), token by token, candidate k with `rngs[k]`, in one batch; where `known`
/// fixes a token it is taken, not drawn (the decoder still reads it).
pub fn reverse_step<R: Rng>(
    model: &Reverse,
    x_t: &[Vec<usize>],
    known: Option<Known<'_>>,
    sampling: &Sampling,
    rngs: &mut [R],
) -> Result<Vec<Vec<usize>>, DecodeError> {
    let device = model_device(model);
    let (candidates, n) = (x_t.len(), x_t.first().map_or(0, Vec::len));
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(
            x_t.iter().flatten().map(|&t| t as i64).collect(),
            [candidates, n],
        ),
        &device,
    );
    let decoder = ReverseDecoder {
        model,
        memory: model.encode(ids),
        device,
    };
    let free = |p: usize| known.is_none_or(|k| k.free[p]);
    let mut out: Vec<Vec<usize>> = match known {
        Some(k) => k.tokens.to_vec(),
        None => vec![vec![0; n]; candidates],
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
    let mut ignore = |_: &[Vec<usize>], _| ControlFlow::Continue(());
    decode::decode(&decoder, &mut out, plan, sampling, rngs, &mut ignore)?;
    Ok(out)
}

/// A reverse step as the shared decode sees it: the decoder with every candidate's
/// `x_t` encoded.
struct ReverseDecoder<'a> {
    model: &'a Reverse,
    memory: Option<Tensor<3>>,
    device: Device,
}

impl CachedModel for ReverseDecoder<'_> {
    /// Runs for every candidate: each reads its own `x_t` through the memory.
    fn first_pass(&self, rows: &[usize], grids: &[Vec<usize>], cache: &mut KvCache) -> Tensor<2> {
        let heads = self.model.heads();
        let mask = (rows.len() > 1).then(|| causal_mask(1, heads, rows.len(), &self.device));
        self.next_rows(Pending { rows, grids, mask }, cache)
    }

    fn next_rows(&self, pending: Pending<'_>, cache: &mut KvCache) -> Tensor<2> {
        let inputs: Vec<Vec<usize>> = pending
            .grids
            .iter()
            .map(|grid| {
                pending
                    .rows
                    .iter()
                    .map(|&p| input_at(self.model, grid, p))
                    .collect()
            })
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

/// The grids of a refinement's trajectory at one point, one per candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Which cycle (from 0).
    pub cycle: usize,
    /// The chain level the grids are at (`T` after diffusing, 0 when denoised).
    pub level: usize,
    pub grids: Vec<Vec<usize>>,
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
    /// The masked forward-backward process (App. A.3), for one candidate per random
    /// stream in `rngs`, advancing together. The first cycle starts the `free` tokens
    /// of the grid as random codes (`x_T`) and denoises them level by level; every
    /// later cycle diffuses them to level [`REFINE_LEVEL`] only and denoises that
    /// level again, so a cycle keeps part of the sample and redraws the rest in view
    /// of everything around it, and the sample settles (diffusing to `T` every cycle
    /// would draw independent samples, as a left-to-right model does). Every other
    /// token never changes. `on_stage` sees each stage and may cancel. Returns each
    /// candidate's final grid.
    pub fn refine<R: Rng>(
        &self,
        grid: &[usize],
        free: &[bool],
        (cycles, sampling): (usize, &Sampling),
        rngs: &mut [R],
        on_stage: &mut dyn FnMut(&Stage) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<usize>>, DecodeError> {
        let mut x_0 = vec![grid.to_vec(); rngs.len()];
        for cycle in 0..cycles {
            let top = self.start_level(cycle);
            let mut x: Vec<Vec<usize>> = x_0
                .iter()
                .zip(rngs.iter_mut())
                .map(|(x, rng)| self.schedule.diffuse(x, top, Some(free), rng))
                .collect();
            report(on_stage, cycle, top, &x)?;
            for t in (1..=top).rev() {
                let known = Known { tokens: &x_0, free };
                x = reverse_step(&self.models[t - 1], &x, Some(known), sampling, rngs)?;
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

    /// How many stages a refinement of `cycles` reports.
    pub fn stages(&self, cycles: usize) -> usize {
        (0..cycles).map(|c| self.start_level(c) + 1).sum()
    }

    /// A sample of the whole chain: `x_T` uniform noise, then every reverse step.
    pub fn sample<R: Rng>(
        &self,
        tokens: usize,
        sampling: &Sampling,
        rng: &mut R,
    ) -> Result<Vec<usize>, DecodeError> {
        let codes = self.schedule.codes;
        let mut x = vec![(0..tokens).map(|_| rng.random_range(0..codes)).collect()];
        for t in (1..=self.schedule.steps()).rev() {
            x = reverse_step(
                &self.models[t - 1],
                &x,
                None,
                sampling,
                std::slice::from_mut(rng),
            )?;
        }
        Ok(x.pop().unwrap_or_default())
    }
}

fn report(
    on_stage: &mut dyn FnMut(&Stage) -> ControlFlow<()>,
    cycle: usize,
    level: usize,
    grids: &[Vec<usize>],
) -> Result<(), DecodeError> {
    let stage = Stage {
        cycle,
        level,
        grids: grids.to_vec(),
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
                    std::slice::from_mut(&mut rng),
                    &mut |stage| {
                        stages += 1;
                        for p in 0..16 {
                            if !free[p] {
                                assert_eq!(
                                    stage.grids[0][p], grid[p],
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
            assert_eq!((out.len(), out[0].len()), (1, 16));
        }
    }

    /// Candidate k of a refinement of 3 is the refinement with seed k alone (up to a
    /// near-tie flipped by batched rounding: at most one token each).
    #[test]
    fn a_batch_of_refinements_makes_what_each_seed_makes_alone() {
        let device = Device::flex();
        let (models, schedule) = chain(&device);
        let chain = Chain {
            models: &models,
            schedule: &schedule,
        };
        let grid: Vec<usize> = (0..16).map(|i| i * 7 % 10).collect();
        let free: Vec<bool> = (0..16).map(|i| i % 3 != 0).collect();
        let mut continue_ = |_: &Stage| ControlFlow::Continue(());
        let sampling = (2, &Sampling::default());
        let mut rngs = crate::tokens::decode::candidate_rngs(30, 3);
        let batch = chain
            .refine(&grid, &free, sampling, &mut rngs, &mut continue_)
            .expect("not cancelled");
        for (k, together) in batch.iter().enumerate() {
            let mut rng = crate::tokens::decode::candidate_rngs(30 + k as u64, 1);
            let alone = chain
                .refine(&grid, &free, sampling, &mut rng, &mut continue_)
                .expect("not cancelled")
                .remove(0);
            let differ = together.iter().zip(&alone).filter(|(a, b)| a != b).count();
            assert!(differ <= 1, "candidate {k}: {differ} tokens");
        }
        assert_ne!(batch[0], batch[1]);
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
        let out = reverse_step(
            model,
            std::slice::from_ref(&x_t),
            None,
            &greedy,
            std::slice::from_mut(&mut rng),
        )
        .expect("decoded")
        .remove(0);
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
