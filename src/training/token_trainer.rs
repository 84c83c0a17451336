//! The trainer of every token model (iLAT, the Taming baseline, each ImageBART step):
//! a network, AdamW, a batch drawn per step and one loss, evaluated on a fixed
//! held-out batch.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::prelude::*;
use rand::rngs::StdRng;

use super::{Logged, Run, TrainError, Trainee, Trainer, scalar};

/// A token model in training: `draw` makes a step's batch, `loss` scores the model on a
/// batch; `config` is the network's, written beside the exported weights.
pub struct TokenTrainer<'a, M, B, C, D, L> {
    trainee: Trainee<M>,
    config: &'a C,
    held_out: B,
    draw: D,
    loss: L,
}

impl<'a, M, B, C, D, L> TokenTrainer<'a, M, B, C, D, L>
where
    M: Module + Clone,
    C: Config,
    D: FnMut(&mut StdRng) -> Result<B, TrainError>,
    L: Fn(&M, &B) -> Tensor<1>,
{
    /// A fresh `model` under AdamW (β = (0.9, 0.95), decoupled `weight_decay`).
    pub fn new(
        model: M,
        (config, weight_decay): (&'a C, f32),
        held_out: B,
        draw: D,
        loss: L,
    ) -> Self {
        let optim = burn::optim::AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.95)
            .with_weight_decay(weight_decay)
            .init();
        Self {
            trainee: Trainee { model, optim },
            config,
            held_out,
            draw,
            loss,
        }
    }
}

impl<M, B, C, D, L> Trainer for TokenTrainer<'_, M, B, C, D, L>
where
    M: Module + Clone,
    C: Config,
    D: FnMut(&mut StdRng) -> Result<B, TrainError>,
    L: Fn(&M, &B) -> Tensor<1>,
{
    fn step(&mut self, _step: usize, lr: f64, rng: &mut StdRng) -> Result<Logged, TrainError> {
        let batch = (self.draw)(rng)?;
        let loss = (self.loss)(&self.trainee.model, &batch);
        Ok(vec![("nll", self.trainee.step(lr, loss))])
    }

    fn evaluate(&mut self, _step: usize, _run: &Run) -> Result<Logged, TrainError> {
        let loss = (self.loss)(&self.trainee.model.valid(), &self.held_out);
        Ok(vec![("test_nll", scalar(&loss))])
    }

    fn write_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.trainee.write_into(dir)?)
    }

    fn resume(self, dir: &Path) -> Result<Self, TrainError> {
        Ok(Self {
            trainee: self.trainee.resume(dir)?,
            ..self
        })
    }

    fn warm_start(self, dir: &Path, name: &str) -> Result<Self, TrainError> {
        Ok(Self {
            trainee: self.trainee.warm_start(dir, name)?,
            ..self
        })
    }

    fn export(&self, dir: &Path, name: &str) -> Result<(), TrainError> {
        crate::store::save_model(dir, name, self.config, self.trainee.model.valid())?;
        Ok(())
    }
}
