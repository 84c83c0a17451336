//! A training run's folder: a progress bar, a loss log (`loss.jsonl`, one JSON object
//! per logged step), and checkpoints that a run resumes from. A checkpoint is written
//! to a staging folder and swapped in by renames, so a run killed at any moment leaves
//! the previous checkpoint intact.

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

/// Maps an I/O error on `path` to a [`RunError`] naming it.
pub fn io_error(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
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
    pub fn checkpoint<E: From<RunError>>(
        &self,
        step: usize,
        write: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), E> {
        let staging = self.dir.join("checkpoint.new");
        let current = self.dir.join("checkpoint");
        let old = self.dir.join("checkpoint.old");
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
        write(&staging)?;
        write_json(&staging.join("progress.json"), &self.progress(step))?;
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
        write_json(
            &self.dir.join(format!("{name}.progress.json")),
            &self.progress(step),
        )
    }

    /// Closes the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

/// The progress file of model `name` in `dir` (none: nothing trained yet; a damaged
/// one is an error, not a silent restart from step 0).
pub fn read_progress(dir: &Path, name: &str) -> Result<Progress, RunError> {
    let path = dir.join(format!("{name}.progress.json"));
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|err| RunError::Io {
            path,
            reason: err.to_string(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
        Err(err) => Err(io_error(&path)(err)),
    }
}

/// Writes a value as JSON.
fn write_json(path: &Path, value: &impl Serialize) -> Result<(), RunError> {
    let json = serde_json::to_string(value).map_err(|err| RunError::Io {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })?;
    std::fs::write(path, json).map_err(io_error(path))
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
}
