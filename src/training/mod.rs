//! The one training loop every model goes through: the tokenizer, the token models
//! and the GANs. Each model supplies a [`Trainer`] (its step, its evaluation and its
//! state); the loop owns the rest: the run folder, resuming from a checkpoint or warm
//! starting from an exported model, the learning-rate schedule, the loss log, periodic
//! evaluations and checkpoints, the progress bar, and the exported model at the end.

mod run;
pub mod token_cache;
mod token_trainer;
mod trainee;

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::tensor::TensorReadError;
use rand::SeedableRng;
use rand::rngs::StdRng;

pub use run::{Progress, Run, RunError, copy_progress, io_error, read_progress, save_config};
pub use token_cache::{CachePlace, TokenCache};
pub use token_trainer::TokenTrainer;
pub use trainee::Trainee;

/// Why a training run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    FeatureNet(#[from] crate::nn::mobilenet::MobileNetError),
    #[error("reading a result from the compute device: {0}")]
    Device(#[from] TensorReadError),
    #[error("cannot write {}: {reason}", path.display())]
    Image { path: PathBuf, reason: String },
    #[error("the token cache {}: {reason}", path.display())]
    Cache { path: PathBuf, reason: String },
    #[error(transparent)]
    Tokenizer(#[from] crate::tokens::tokenizer::TokenizerMismatch),
    /// The configuration does not fit the data or the command.
    #[error("{0}")]
    Config(String),
}

/// Values for the loss log, by name.
pub type Logged = Vec<(&'static str, f64)>;

/// A model in training, as the loop drives it.
pub trait Trainer {
    /// One optimisation step (the `step`-th, from 0) at learning rate `lr`, drawing
    /// its batch with `rng`; returns the values to log.
    fn step(&mut self, step: usize, lr: f64, rng: &mut StdRng) -> Result<Logged, TrainError>;

    /// The held-out evaluation at a checkpoint (sample figures go into `run`'s
    /// folder); returns the values to log.
    fn evaluate(&mut self, step: usize, run: &Run) -> Result<Logged, TrainError>;

    /// Writes everything a resume needs (weights, optimiser moments, …) into `dir`.
    fn write_checkpoint(&self, dir: &Path) -> Result<(), TrainError>;

    /// Reads back what [`Trainer::write_checkpoint`] wrote.
    fn resume(self, dir: &Path) -> Result<Self, TrainError>
    where
        Self: Sized;

    /// Starts from the model exported as `name` into `dir` (weights only; optimiser
    /// moments start anew): a machine with only the committed models goes on from
    /// them.
    fn warm_start(self, dir: &Path, name: &str) -> Result<Self, TrainError>
    where
        Self: Sized;

    /// Writes the model as `name` into `dir`, as `models/` ships it.
    fn export(&self, dir: &Path, name: &str) -> Result<(), TrainError>;
}

/// The options every training run has: how long, how big a batch, how fast, how
/// often it logs and checkpoints, and its seed. Each model has its own defaults.
#[derive(Config, Debug)]
pub struct Schedule {
    /// Total optimisation steps.
    #[config(default = 2500)]
    pub steps: usize,
    /// Examples per step.
    #[config(default = 8)]
    pub batch: usize,
    /// Peak learning rate.
    #[config(default = 3e-4)]
    pub lr: f64,
    /// Steps of linear warm-up.
    #[config(default = 200)]
    pub warmup: usize,
    /// After the warm-up the learning rate falls along a cosine to `lr_floor`·`lr`
    /// (1: constant).
    #[config(default = 0.1)]
    pub lr_floor: f64,
    /// Steps between checkpoints (and held-out evaluations).
    #[config(default = 250)]
    pub checkpoint_every: usize,
    /// Steps between loss-log lines.
    #[config(default = 10)]
    pub log_every: usize,
    /// Seed of initialisation, data order, augmentation and noise.
    #[config(default = 23)]
    pub seed: u64,
}

impl Schedule {
    /// The learning rate of step `step`.
    pub fn learning_rate(&self, step: usize) -> f64 {
        learning_rate(step, self.steps, self.warmup, self.lr, self.lr_floor)
    }
}

/// Linear warm-up then cosine decay to `floor`·`peak`.
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64, floor: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos());
    peak * (floor + (1.0 - floor) * cosine)
}

/// Where a run and its result go.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Checkpoints, loss log, progress, sample figures.
    pub run: PathBuf,
    /// The folder the finished model is written to.
    pub out: PathBuf,
    /// The model's name there.
    pub name: String,
    /// A folder holding a trained `NAME` to start from when the run has no
    /// checkpoint (a machine with only the committed models).
    pub warm_start: Option<PathBuf>,
    /// A step before `schedule.steps` to stop at, the schedule unchanged: a run taken
    /// part way (iLAT starts from Taming's midpoint) and resumed to its end later.
    pub stop_at: Option<usize>,
    /// Only evaluate the model the run starts from (its checkpoint, else the warm
    /// start) on the held-out data: no step, no checkpoint, no export (e.g. a model
    /// against its half-precision copy).
    pub evaluate_only: bool,
}

/// Trains (or resumes) a run: opens the run folder, saves `config` in it, resumes
/// from its checkpoint or warm starts, steps to `schedule.steps` (or `to.stop_at`)
/// with logs, held-out evaluations and checkpoints, and exports the model to `to.out`.
/// Returns the last evaluation's values (none when no step was left), or with
/// `to.evaluate_only` the evaluation of the model it starts from.
pub fn fit(
    mut trainer: impl Trainer,
    schedule: &Schedule,
    to: &Destination,
    config: &impl Config,
) -> Result<Logged, TrainError> {
    let end = to.stop_at.map_or(schedule.steps, |s| s.min(schedule.steps));
    let (mut run, resume) = Run::open(&to.run, end)?;
    run.set_prefix(&to.name);
    save_config(config, &to.run)?;
    let start = match (resume, &to.warm_start) {
        (Some((dir, progress)), _) => {
            trainer = trainer.resume(&dir)?;
            progress.step
        }
        (None, Some(dir)) => {
            trainer = trainer.warm_start(dir, &to.name)?;
            let progress = read_progress(dir, &to.name)?;
            tracing::info!("warm start from {} at {:?}", dir.display(), progress);
            run.set_resumed(progress);
            progress.step
        }
        (None, None) if to.evaluate_only => {
            return Err(TrainError::Config(format!(
                "nothing to evaluate: {} holds no checkpoint and no warm start was given",
                to.run.display()
            )));
        }
        (None, None) => 0,
    };
    if to.evaluate_only {
        return trainer.evaluate(start, &run);
    }
    let mut rng = StdRng::seed_from_u64(schedule.seed ^ (start as u64).wrapping_mul(0x9e37));
    let mut evaluation = Logged::new();
    for step in start..end {
        let lr = schedule.learning_rate(step);
        let mut values = trainer.step(step, lr, &mut rng)?;
        if (step + 1) % schedule.log_every == 0 {
            values.push(("lr", lr));
            run.log(step + 1, &values)?;
        }
        if (step + 1) % schedule.checkpoint_every == 0 || step + 1 == end {
            evaluation = trainer.evaluate(step + 1, &run)?;
            run.log(step + 1, &evaluation)?;
            run.checkpoint(step + 1, |dir| trainer.write_checkpoint(dir))?;
            trainer.export(run.dir(), &to.name)?;
            run.write_progress(&to.name, step + 1)?;
        }
        run.tick();
    }
    run.finish();
    run.write_progress(&to.name, start.max(end))?;
    trainer.export(&to.out, &to.name)?;
    copy_progress(&to.run, &to.out, &to.name)?;
    Ok(evaluation)
}

/// A one-element tensor's value, for logs.
pub fn scalar(t: &burn::prelude::Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::{Device, Tensor};

    /// The points of the least-squares fit below, and its loss.
    fn line_data(device: &Device) -> Tensor<2> {
        Tensor::<2>::from_floats([[1.0], [-0.5], [2.0]], device)
    }

    fn line_loss(model: &burn::nn::Linear, x: &Tensor<2>) -> Tensor<1> {
        (model.forward(x.clone()) - x.clone() * 2.0)
            .powi_scalar(2)
            .mean()
    }

    /// A least-squares fit of `y = 2x` by one linear unit, in `fit`: its last
    /// evaluation.
    fn fit_line_evaluated(to: &Destination, steps: usize) -> Result<Logged, TrainError> {
        let device = Device::flex().autodiff();
        device.seed(5);
        let config = burn::nn::LinearConfig::new(1, 1);
        let schedule = Schedule::new()
            .with_steps(steps)
            .with_warmup(1)
            .with_lr(0.05)
            .with_checkpoint_every(2);
        let xs = line_data(&device);
        let trainer = TokenTrainer::new(
            config.init(&device),
            (&config, 0.01),
            xs.clone(),
            |_: &mut StdRng| Ok(xs.clone()),
            line_loss,
        );
        fit(trainer, &schedule, to, &schedule)
    }

    /// [`fit_line_evaluated`], and the model it wrote.
    fn fit_line(to: &Destination, steps: usize) -> burn::nn::Linear {
        fit_line_evaluated(to, steps).expect("fit");
        let (model, _) = crate::store::load_model(
            &to.out,
            &to.name,
            &Device::flex().autodiff(),
            |c: &burn::nn::LinearConfig, d| c.init(d),
        )
        .expect("the written model");
        model
    }

    /// A run in `root/run-a` written to `root/models`, from scratch to its end.
    fn plain(root: &std::path::Path) -> Destination {
        Destination {
            run: root.join("run-a"),
            out: root.join("models"),
            name: "line".into(),
            warm_start: None,
            stop_at: None,
            evaluate_only: false,
        }
    }

    /// An evaluation-only run scores the model it starts from, and trains and writes
    /// nothing.
    #[test]
    fn an_evaluation_only_run_scores_the_model_it_starts_from() {
        let root = std::env::temp_dir().join(format!("tessera-eval-only-{}", std::process::id()));
        let first = plain(&root);
        let trained = fit_line(&first, 4);
        let only = Destination {
            run: root.join("run-b"),
            out: root.join("untouched"),
            warm_start: Some(first.out.clone()),
            evaluate_only: true,
            ..first.clone()
        };
        let nothing = Destination {
            warm_start: None,
            ..only.clone()
        };
        assert!(
            matches!(fit_line_evaluated(&nothing, 8), Err(TrainError::Config(_))),
            "no checkpoint and no warm start: an error, not a fresh model's score"
        );
        let evaluation = fit_line_evaluated(&only, 8).expect("evaluation");
        let expected = scalar(&line_loss(&trained, &line_data(&Device::flex().autodiff())));
        assert_eq!(evaluation.len(), 1);
        assert!(
            (evaluation[0].1 - expected).abs() < 1e-6,
            "{evaluation:?} against {expected}"
        );
        assert!(!only.out.exists(), "nothing exported");
        assert!(!only.run.join("checkpoint").exists(), "no checkpoint");
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn a_warm_start_continues_from_the_written_model() {
        let root = std::env::temp_dir().join(format!("tessera-warm-{}", std::process::id()));
        let first = plain(&root);
        let trained = fit_line(&first, 4);
        assert_eq!(read_progress(&first.out, "line").expect("progress").step, 4);
        // Another machine: no run folder, only the written model.
        let second = Destination {
            run: root.join("run-b"),
            warm_start: Some(first.out.clone()),
            ..first.clone()
        };
        let continued = fit_line(&second, 4);
        assert_eq!(
            trained.weight.val().into_data(),
            continued.weight.val().into_data(),
            "a run already at its last step keeps the model as it was"
        );
        let further = fit_line(
            &Destination {
                run: root.join("run-c"),
                ..second.clone()
            },
            8,
        );
        assert_eq!(read_progress(&first.out, "line").expect("progress").step, 8);
        assert_ne!(
            trained.weight.val().into_data(),
            further.weight.val().into_data()
        );
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    /// A run stopped part way (`stop_at`) and resumed later ends with the model an
    /// unbroken run makes: the schedule is the whole run's throughout.
    #[test]
    fn a_run_stopped_part_way_resumes_to_the_unbroken_runs_model() {
        let root = std::env::temp_dir().join(format!("tessera-stop-{}", std::process::id()));
        let unbroken = Destination {
            run: root.join("unbroken"),
            out: root.join("unbroken-out"),
            ..plain(&root)
        };
        let parted = Destination {
            run: root.join("parted"),
            out: root.join("parted-out"),
            stop_at: Some(4),
            ..unbroken.clone()
        };
        let straight = fit_line(&unbroken, 6).weight.val().into_data();
        let midway = fit_line(&parted, 6).weight.val().into_data();
        assert_eq!(
            read_progress(&parted.out, "line").expect("progress").step,
            4
        );
        assert_ne!(midway, straight, "stopped at 4 of 6");
        let resumed = fit_line(
            &Destination {
                stop_at: None,
                ..parted
            },
            6,
        );
        assert_eq!(resumed.weight.val().into_data(), straight);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn learning_rate_warms_up_then_decays() {
        assert!(learning_rate(0, 100, 10, 1.0, 0.1) < 0.2);
        assert!((learning_rate(10, 100, 10, 1.0, 0.1) - 1.0).abs() < 1e-9);
        assert!((learning_rate(100, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_floor_of_one_keeps_the_rate_constant() {
        for step in [0, 1, 50, 99] {
            assert_eq!(learning_rate(step, 100, 0, 2e-4, 1.0), 2e-4);
        }
    }
}
