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

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
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

    #[test]
    fn learning_rate_warms_up_then_decays() {
        assert!(learning_rate(0, 100, 10, 1.0, 0.1) < 0.2);
        assert!((learning_rate(10, 100, 10, 1.0, 0.1) - 1.0).abs() < 1e-9);
        assert!((learning_rate(100, 100, 10, 1.0, 0.1) - 0.1).abs() < 1e-9);
    }
}
