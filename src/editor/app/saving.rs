//! Files from the editor's side: opening a picture or project (dialog, drop, command
//! line), saving the project, exporting the picture, and autosaving a quiet second
//! after each change.

use eframe::egui;

use super::EditorApp;
use crate::editor::document::Document;
use crate::editor::files::{self, Opened, ProjectFile};
use crate::editor::history::History;
use crate::editor::project::{Project, SAVED_STEPS, Settings};

/// The brush a picture starts with: a fortieth of its shorter side (a stroke that
/// shows on a 1,000 px photo), at least the 4 pixels that suit a 64 px face.
pub(super) fn default_brush(picture: &image::RgbImage) -> f32 {
    (picture.width().min(picture.height()) as f32 / 40.0)
        .round()
        .max(4.0)
}

impl EditorApp {
    /// Replaces the document with a picture or project file; what was there is
    /// autosaved first. Errors leave the editor as it was.
    pub fn open(&mut self, path: &std::path::Path) -> Result<(), files::FileError> {
        let opened = files::open(path)?;
        self.flush_autosave();
        let name = path
            .file_stem()
            .map_or("untitled".into(), |s| s.to_string_lossy().into_owned());
        match opened {
            Opened::Picture(picture, pose) => {
                self.brush = default_brush(&picture);
                self.document = Document::new(picture);
                self.faces_wanted = true;
                if let Some(pose) = pose {
                    self.document.target = Some(pose.clone());
                    self.document.pose = Some(pose);
                }
                self.history = History::new();
                self.file = ProjectFile::new(&name, None);
            }
            Opened::Project(project) => {
                let Project {
                    document,
                    undo,
                    redo,
                    settings,
                } = *project;
                self.document = document;
                self.history = History::from_steps(undo, redo);
                self.apply(settings);
                self.file = ProjectFile::new(&name, Some(path.to_path_buf()));
            }
        }
        self.before = None;
        self.show_before = false;
        self.job = None;
        self.touched_all();
        self.status = format!("opened {}", path.display());
        Ok(())
    }

    /// The project as it stands: document, recent history, settings.
    pub fn snapshot(&self) -> Project {
        let (undo, redo) = self.history.steps(SAVED_STEPS);
        Project {
            document: self.document.clone(),
            undo,
            redo,
            settings: Settings {
                method: self.method,
                sampling: self.sampling,
                brush: self.brush,
                live: self.live,
                show_mask: self.show_mask,
                candidates: self.candidates,
                show_faces: self.show_faces,
            },
        }
    }

    pub(super) fn apply(&mut self, settings: Settings) {
        self.method = settings.method;
        self.sampling = settings.sampling;
        self.brush = settings.brush;
        self.live = settings.live;
        self.show_mask = settings.show_mask;
        self.show_faces = settings.show_faces;
        self.candidates = settings.candidates.clamp(1, 6);
    }

    /// Saves the project where it was saved before, or where the person chooses.
    pub fn save_to(&mut self, path: std::path::PathBuf) {
        let project = self.snapshot();
        self.status = match self.file.save(&project, path.clone()) {
            Ok(()) => format!("saved {}", path.display()),
            Err(err) => err.to_string(),
        };
    }

    /// Autosaves now if a change waits, so nothing is lost when the document goes.
    pub(super) fn flush_autosave(&mut self) {
        if self.file.is_dirty() {
            let project = self.snapshot();
            if let Err(err) = self.file.autosave(project) {
                self.status = err.to_string();
            }
        }
    }

    /// Autosaves a change that has waited its second; reports finished writes.
    pub(super) fn autosave(&mut self, ctx: &egui::Context) {
        if self.file.due() {
            let project = self.snapshot();
            if let Err(err) = self.file.autosave(project) {
                self.status = err.to_string();
            }
        } else if let Some(wait) = self.file.wait() {
            ctx.request_repaint_after(wait);
        }
        if let Some(status) = self.file.poll() {
            tracing::info!("{status}");
            if status.starts_with("autosave failed") {
                self.status = status;
            }
        }
    }

    /// Opens a file dropped on the window.
    pub(super) fn dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_path_buf()));
        if let Some(path) = dropped
            && let Err(err) = self.open(&path)
        {
            self.status = err.to_string();
        }
    }

    pub(super) fn open_dialog(&mut self) {
        if let Some(path) = files::open_dialog()
            && let Err(err) = self.open(&path)
        {
            self.status = err.to_string();
        }
    }

    pub(super) fn save(&mut self) {
        let path = match self.file.path() {
            Some(path) => Some(path.to_path_buf()),
            None => files::save_dialog(self.file.name()),
        };
        if let Some(path) = path {
            self.save_to(path);
        }
    }

    pub(super) fn export(&mut self) {
        if let Some(path) = files::export_dialog(self.file.name()) {
            self.status = match files::export(&self.document.image, &path) {
                Ok(()) => format!("exported {}", path.display()),
                Err(err) => err.to_string(),
            };
        }
    }
}
