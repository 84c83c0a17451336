//! The training loop's bookkeeping, shared by every model: a progress bar, a loss log
//! (`loss.jsonl`, one JSON object per logged step), and checkpoints that a run resumes
//! from. A checkpoint is written to a staging folder and swapped in by renames, so a
//! run killed at any moment leaves the previous checkpoint intact.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// Why a run's files could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// File system trouble in the run folder.
    #[error("run folder {}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    /// A model part could not be stored.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

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
    #[error("cannot write {}: {reason}", path.display())]
    Image { path: PathBuf, reason: String },
    #[error(
        "the tokenizer has {tokenizer} codes on a {grid}x{grid} grid, the model expects {vocab} codes on {expected}x{expected}"
    )]
    Tokenizer {
        tokenizer: usize,
        grid: usize,
        vocab: usize,
        expected: usize,
    },
    /// The configuration does not fit the data or the command.
    #[error("{0}")]
    Config(String),
}

pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |err| RunError::Io {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}

/// What a checkpoint remembers besides the weights.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Steps completed.
    pub step: usize,
    /// Wall-clock seconds spent training, over all sessions.
    pub seconds: f64,
}

/// One training run's folder.
pub struct Run {
    dir: PathBuf,
    log: BufWriter<File>,
    bar: ProgressBar,
    started: Instant,
    resumed: Progress,
}

impl Run {
    /// Opens (or creates) a run folder for a run of `total_steps`, and says where a
    /// previous session stopped: the checkpoint folder and its progress, if any.
    pub fn open(
        dir: &Path,
        total_steps: usize,
    ) -> Result<(Self, Option<(PathBuf, Progress)>), RunError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let resume = Self::latest_checkpoint(dir)?;
        let log_path = dir.join("loss.jsonl");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_error(&log_path))?;
        let resumed = resume.as_ref().map(|(_, p)| *p).unwrap_or_default();
        let bar = ProgressBar::new(total_steps as u64).with_position(resumed.step as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let run = Self {
            dir: dir.to_path_buf(),
            log: BufWriter::new(log),
            bar,
            started: Instant::now(),
            resumed,
        };
        Ok((run, resume))
    }

    /// The newest complete checkpoint: `checkpoint/`, or `checkpoint.old/` when a swap
    /// was interrupted.
    fn latest_checkpoint(dir: &Path) -> Result<Option<(PathBuf, Progress)>, RunError> {
        for name in ["checkpoint", "checkpoint.old"] {
            let path = dir.join(name);
            let state = path.join("progress.json");
            if state.exists() {
                let text = std::fs::read_to_string(&state).map_err(io_error(&state))?;
                let progress = serde_json::from_str(&text).map_err(|err| RunError::Io {
                    path: state.clone(),
                    reason: err.to_string(),
                })?;
                return Ok(Some((path, progress)));
            }
        }
        Ok(None)
    }

    /// Counts `progress` as done before this session (a warm start from a model).
    pub fn set_resumed(&mut self, progress: Progress) {
        self.resumed = progress;
        self.bar.set_position(progress.step as u64);
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Labels the progress bar.
    pub fn set_prefix(&self, prefix: &str) {
        self.bar.set_prefix(prefix.to_string());
    }

    /// Progress as of `step` steps done, counting earlier sessions.
    pub fn progress(&self, step: usize) -> Progress {
        Progress {
            step,
            seconds: self.resumed.seconds + self.started.elapsed().as_secs_f64(),
        }
    }

    /// Appends one line to the loss log and shows the values on the bar.
    pub fn log(&mut self, step: usize, values: &[(&str, f64)]) -> Result<(), RunError> {
        let mut line = serde_json::Map::new();
        line.insert("step".into(), step.into());
        line.insert(
            "seconds".into(),
            serde_json::json!(self.progress(step).seconds.round()),
        );
        for (key, value) in values {
            line.insert((*key).into(), serde_json::json!(value));
        }
        let path = self.dir.join("loss.jsonl");
        writeln!(self.log, "{}", serde_json::Value::Object(line)).map_err(io_error(&path))?;
        self.log.flush().map_err(io_error(&path))?;
        let shown: Vec<String> = values
            .iter()
            .take(4)
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect();
        self.bar.set_message(shown.join(" "));
        Ok(())
    }

    /// Advances the bar by one step.
    pub fn tick(&self) {
        self.bar.inc(1);
    }

    /// Writes a checkpoint: `write` fills a staging folder with the model parts, then
    /// the folder is swapped in.
    pub fn checkpoint(
        &self,
        step: usize,
        write: impl FnOnce(&Path) -> Result<(), RunError>,
    ) -> Result<(), RunError> {
        let staging = self.dir.join("checkpoint.new");
        let current = self.dir.join("checkpoint");
        let old = self.dir.join("checkpoint.old");
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
        write(&staging)?;
        let state = staging.join("progress.json");
        let json = serde_json::to_string(&self.progress(step)).unwrap_or_default();
        std::fs::write(&state, json).map_err(io_error(&state))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
        }
        if current.exists() {
            std::fs::rename(&current, &old).map_err(io_error(&current))?;
        }
        std::fs::rename(&staging, &current).map_err(io_error(&staging))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
        }
        Ok(())
    }

    /// Writes `NAME.progress.json` beside the model exported into the run folder, so a
    /// copied model says how far it was trained.
    pub fn write_progress(&self, name: &str, step: usize) -> Result<(), RunError> {
        let path = self.dir.join(format!("{name}.progress.json"));
        let progress = serde_json::to_string(&self.progress(step)).unwrap_or_default();
        std::fs::write(&path, progress).map_err(io_error(&path))
    }

    /// Closes the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

/// The progress file of model `name` in `dir` (none: nothing trained).
pub fn read_progress(dir: &Path, name: &str) -> Progress {
    std::fs::read_to_string(dir.join(format!("{name}.progress.json")))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Copies `NAME.progress.json` from a run folder to where the model is exported.
pub fn copy_progress(run: &Path, out: &Path, name: &str) -> Result<(), RunError> {
    let file = format!("{name}.progress.json");
    if run == out {
        return Ok(());
    }
    std::fs::copy(run.join(&file), out.join(&file)).map_err(io_error(out))?;
    Ok(())
}

/// Writes a run's training configuration as `config.json` in its folder.
pub fn save_config<C: burn::config::Config>(config: &C, dir: &Path) -> Result<(), RunError> {
    let path = dir.join("config.json");
    config.save(&path).map_err(io_error(&path))
}

/// A one-element tensor's value, for logs.
pub fn scalar(t: &burn::prelude::Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>() as f64
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

/// How a token model is optimised: shared by iLAT, the Taming baseline and every
/// ImageBART step, so their budgets compare.
#[derive(burn::config::Config, Debug)]
pub struct Optimization {
    /// Total optimisation steps.
    #[config(default = 2500)]
    pub steps: usize,
    /// Examples per step.
    #[config(default = 8)]
    pub batch: usize,
    /// Peak learning rate (AdamW, β = (0.9, 0.95), warm-up then cosine to a tenth).
    #[config(default = 3e-4)]
    pub lr: f64,
    /// Warm-up steps.
    #[config(default = 200)]
    pub warmup: usize,
    /// Decoupled weight decay.
    #[config(default = 0.01)]
    pub weight_decay: f32,
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

/// Where a token model's run and result go.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Checkpoints, loss log, progress.
    pub run: PathBuf,
    /// The folder the finished model is written to.
    pub out: PathBuf,
    /// The model's name there.
    pub name: String,
    /// A folder holding a trained `NAME` to start from when the run has no
    /// checkpoint (a machine with only the committed models).
    pub warm_start: Option<PathBuf>,
}

/// The one training loop of the token models: opens (or resumes) the run, draws a
/// batch per step from `draw` (given the run's random source), minimises `loss`,
/// logs, evaluates `loss` on `held_out` and checkpoints every so often, and writes
/// the model with `model_config` beside it. `training_config` is saved in the run.
/// Returns the last held-out loss.
#[allow(clippy::too_many_arguments)] // each is one of the loop's distinct inputs
pub fn fit<M, B, C, T>(
    optimization: &Optimization,
    to: &Destination,
    (training_config, model_config): (&T, &C),
    model: M,
    held_out: &B,
    mut draw: impl FnMut(&mut rand::rngs::StdRng) -> B,
    loss: impl Fn(&M, &B) -> burn::prelude::Tensor<1>,
) -> Result<f64, TrainError>
where
    M: burn::module::Module + Clone,
    C: burn::config::Config,
    T: burn::config::Config,
{
    use rand::SeedableRng;
    let o = optimization;
    let (mut run, resume) = Run::open(&to.run, o.steps)?;
    run.set_prefix(&to.name);
    save_config(training_config, &to.run)?;
    let optim = burn::optim::AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.95)
        .with_weight_decay(o.weight_decay)
        .init();
    let mut state = Trainee { model, optim };
    let start = match (resume, &to.warm_start) {
        (Some((dir, progress)), _) => {
            state = state.resume(&dir)?;
            progress.step
        }
        (None, Some(dir)) => {
            let step;
            (state, step) = state.warm_start(dir, &to.name, &mut run)?;
            step
        }
        (None, None) => 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed ^ (start as u64).wrapping_mul(0x9e37));
    let mut test_loss = f64::NAN;
    for step in start..o.steps {
        let lr = learning_rate(step, o.steps, o.warmup, o.lr, 0.1);
        let batch = draw(&mut rng);
        let value = state.step(lr, loss(&state.model, &batch));
        if (step + 1) % o.log_every == 0 {
            run.log(step + 1, &[("nll", value), ("lr", lr)])?;
        }
        if (step + 1) % o.checkpoint_every == 0 || step + 1 == o.steps {
            test_loss = scalar(&loss(&state.model.valid(), held_out));
            run.log(step + 1, &[("test_nll", test_loss)])?;
            state.save(&run, &to.name, model_config, step + 1)?;
        }
        run.tick();
    }
    run.finish();
    run.write_progress(&to.name, start.max(o.steps))?;
    crate::store::save_model(&to.out, &to.name, model_config, state.model.valid())?;
    copy_progress(&to.run, &to.out, &to.name)?;
    Ok(test_loss)
}

/// The tokenizer of a models folder, checked against a token model's codebook size
/// and grid.
pub fn load_tokenizer(
    dir: &Path,
    device: &burn::prelude::Device,
    (vocab, grid): (usize, usize),
) -> Result<(crate::vqgan::Vqgan, crate::vqgan::VqganConfig), TrainError> {
    let (tokenizer, config) = crate::vqgan::Vqgan::load(dir, "vqgan", device)?;
    if config.codebook_size != vocab || config.grid() != grid {
        return Err(TrainError::Tokenizer {
            tokenizer: config.codebook_size,
            grid: config.grid(),
            vocab,
            expected: grid,
        });
    }
    Ok((tokenizer, config))
}

/// A model in training and its optimiser: resumed from a run's checkpoint, stepped,
/// and saved into the run (weights and optimiser state, plus the model alone, ready
/// to copy into `models/`). Every token-model trainer uses it.
pub struct Trainee<M> {
    pub model: M,
    pub optim: burn::optim::ModuleOptimizer,
}

impl<M: burn::module::Module + Clone> Trainee<M> {
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
    /// anew) and counts its recorded progress as done in `run`; returns the step.
    pub fn warm_start(
        self,
        dir: &Path,
        name: &str,
        run: &mut Run,
    ) -> Result<(Self, usize), TrainError> {
        let weights = dir.join(format!("{name}.bpk"));
        let model = crate::store::load_weights(self.model, &weights)?;
        let progress = read_progress(dir, name);
        tracing::info!("warm start from {} at {:?}", weights.display(), progress);
        run.set_resumed(progress);
        Ok((Self { model, ..self }, progress.step))
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

    /// Saves a checkpoint of step `step` into the run, and the model as `name` with
    /// its `config` beside it.
    pub fn save<C: burn::config::Config>(
        &self,
        run: &Run,
        name: &str,
        config: &C,
        step: usize,
    ) -> Result<(), TrainError> {
        run.checkpoint(step, |dir| self.write_into(dir))?;
        crate::store::save_model(run.dir(), name, config, self.model.valid())?;
        run.write_progress(name, step)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_resume_where_they_stopped() {
        let dir = std::env::temp_dir().join(format!("tessera-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (run, resume) = Run::open(&dir, 10).expect("open");
        assert!(resume.is_none());
        run.checkpoint(3, |staging| {
            std::fs::write(staging.join("part"), b"three").map_err(io_error(staging))
        })
        .expect("checkpoint");
        run.checkpoint(7, |staging| {
            std::fs::write(staging.join("part"), b"seven").map_err(io_error(staging))
        })
        .expect("checkpoint");
        let (_, resume) = Run::open(&dir, 10).expect("reopen");
        let (path, progress) = resume.expect("a checkpoint");
        assert_eq!(progress.step, 7);
        assert_eq!(std::fs::read(path.join("part")).expect("part"), b"seven");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A least-squares fit of `y = 2x` by one linear unit, in `fit`.
    fn fit_line(to: &Destination, steps: usize) -> burn::nn::Linear {
        use burn::prelude::*;
        let device = Device::flex().autodiff();
        device.seed(5);
        let config = burn::nn::LinearConfig::new(1, 1);
        let optimization = Optimization::new()
            .with_steps(steps)
            .with_warmup(1)
            .with_lr(0.05)
            .with_checkpoint_every(2);
        let xs = Tensor::<2>::from_floats([[1.0], [-0.5], [2.0]], &device);
        let loss = |model: &burn::nn::Linear, x: &Tensor<2>| {
            (model.forward(x.clone()) - x.clone() * 2.0)
                .powi_scalar(2)
                .mean()
        };
        fit(
            &optimization,
            to,
            (&optimization, &config),
            config.init(&device),
            &xs,
            |_| xs.clone(),
            loss,
        )
        .expect("fit");
        let (model, _) = crate::store::load_model(
            &to.out,
            &to.name,
            &device,
            |c: &burn::nn::LinearConfig, d| c.init(d),
        )
        .expect("the written model");
        model
    }

    #[test]
    fn a_warm_start_continues_from_the_written_model() {
        let root = std::env::temp_dir().join(format!("tessera-warm-{}", std::process::id()));
        let first = Destination {
            run: root.join("run-a"),
            out: root.join("models"),
            name: "line".into(),
            warm_start: None,
        };
        let trained = fit_line(&first, 4);
        assert_eq!(read_progress(&first.out, "line").step, 4);
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
        assert_eq!(read_progress(&first.out, "line").step, 8);
        assert_ne!(
            trained.weight.val().into_data(),
            further.weight.val().into_data()
        );
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn learning_rate_warms_up_then_decays() {
        assert!(learning_rate(0, 100, 10, 1.0, 0.1) < 0.2);
        assert!((learning_rate(10, 100, 10, 1.0, 0.1) - 1.0).abs() < 1e-9);
        assert!((learning_rate(100, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-9);
    }
}
