//! A network in training and its optimiser: stepped, written into a checkpoint and
//! read back, or started from an exported model. Every trainer holds its networks as
//! trainees.

use std::path::Path;

use burn::module::Module;

use super::{RunError, TrainError, io_error, scalar};

/// A network and its optimiser.
pub struct Trainee<M> {
    pub model: M,
    pub optim: burn::optim::ModuleOptimizer,
}

impl<M: Module + Clone> Trainee<M> {
    /// Loads the weights and optimiser state of a checkpoint folder.
    pub fn resume(self, dir: &Path) -> Result<Self, TrainError> {
        Ok(Self {
            model: crate::store::load_weights(self.model, &dir.join("model.bpk"))?,
            optim: self
                .optim
                .load_record(crate::store::load_optimizer(&dir.join("optim.bpk"))?),
        })
    }

    /// Starts from the model `name` written into `dir` (weights only, the optimiser
    /// anew).
    pub fn warm_start(self, dir: &Path, name: &str) -> Result<Self, TrainError> {
        let weights = dir.join(format!("{name}.bpk"));
        let model = crate::store::load_weights(self.model, &weights)?;
        Ok(Self { model, ..self })
    }

    /// Writes the weights and optimiser state into a checkpoint folder.
    pub fn write_into(&self, dir: &Path) -> Result<(), RunError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        crate::store::save_record(&dir.join("model.bpk"), self.model.clone().into_record())?;
        crate::store::save_optimizer(&self.optim, &dir.join("optim.bpk"))?;
        Ok(())
    }

    /// One optimisation step on `loss`; returns the loss's value.
    pub fn step(&mut self, lr: f64, loss: burn::prelude::Tensor<1>) -> f64 {
        let value = scalar(&loss);
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        value
    }
}
