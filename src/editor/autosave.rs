//! Autosave on a thread of its own: the editor hands over a snapshot after every
//! finished change and goes on; the thread writes the newest one atomically (see
//! `project`), skipping snapshots that a newer one already replaces.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::project::{EXTENSION, Project};

/// The autosave thread and where it writes.
pub struct Autosaver {
    path: PathBuf,
    snapshots: Option<Sender<Project>>,
    results: Receiver<Result<(), String>>,
    thread: Option<JoinHandle<()>>,
}

impl Autosaver {
    /// Starts the thread writing to `path`.
    pub fn spawn(path: PathBuf) -> std::io::Result<Self> {
        let (snapshots, inbox) = mpsc::channel::<Project>();
        let (outbox, results) = mpsc::channel();
        let target = path.clone();
        let thread = std::thread::Builder::new()
            .name("tessera-autosave".into())
            .spawn(move || {
                while let Ok(mut project) = inbox.recv() {
                    while let Ok(newer) = inbox.try_recv() {
                        project = newer;
                    }
                    let result = project.save(&target).map_err(|e| e.to_string());
                    if outbox.send(result).is_err() {
                        return; // the editor has gone
                    }
                }
            })?;
        Ok(Self {
            path,
            snapshots: Some(snapshots),
            results,
            thread: Some(thread),
        })
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a snapshot.
    pub fn save(&self, project: Project) {
        if let Some(snapshots) = &self.snapshots
            && snapshots.send(project).is_err()
        {
            tracing::error!(
                "the autosave thread has stopped: {} is not updated",
                self.path.display()
            );
        }
    }

    /// The outcomes of the writes finished since the last call.
    pub fn results(&self) -> Vec<Result<(), String>> {
        self.results.try_iter().collect()
    }
}

impl Drop for Autosaver {
    /// Lets the last snapshot reach the disk before the editor closes.
    fn drop(&mut self) {
        self.snapshots = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the autosave thread panicked");
        }
    }
}

/// Where a picture's project is autosaved until the person saves it somewhere:
/// `$XDG_DATA_HOME/tessera/autosave/<picture name>.tessera` (or `~/.local/share/…`).
pub fn autosave_path(picture: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tessera/autosave")
        .join(format!("{picture}.{EXTENSION}"))
}
