//! Files the editor reads and writes: pictures and projects to open (dialog, drag and
//! drop or the command line), the project file (Save, Ctrl+S), the exported picture,
//! and the autosave a second after every finished change.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;

use super::autosave::{Autosaver, autosave_path};
use super::project::{EXTENSION, Project, ProjectError, write_atomically};
use crate::data::DataError;
use crate::data::convert::open_image;
use crate::data::poses::Pose;

/// Why a file could not be opened, saved, exported or autosaved.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A project that could not be read or written.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// A picture or pose that could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// An export to a format the editor does not write.
    #[error("{}: export as .png, .jpg, .jpeg or .webp", .0.display())]
    ExportFormat(PathBuf),
    /// A file or folder that could not be written while `doing` (export, autosave).
    #[error("{doing} failed: {}: {reason}", path.display())]
    Write {
        doing: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// Quiet time after a change before it is autosaved.
const AUTOSAVE_DELAY: Duration = Duration::from_secs(1);

/// What an opened file holds.
pub enum Opened {
    /// A picture, and the pose saved beside it (`photo.pose.json` for `photo.png`).
    Picture(RgbImage, Option<Pose>),
    /// A whole project.
    Project(Box<Project>),
}

/// Reads a picture or a project, by its extension.
pub fn open(path: &Path) -> Result<Opened, FileError> {
    if path.extension().is_some_and(|e| e == EXTENSION) {
        return Ok(Opened::Project(Box::new(Project::load(path)?)));
    }
    let picture = open_image(path)?.to_rgb8();
    let pose_file = path.with_extension("pose.json");
    let pose = match pose_file.exists() {
        true => Some(Pose::read(&pose_file)?),
        false => None,
    };
    Ok(Opened::Picture(picture, pose))
}

/// Asks for a picture or project to open.
pub fn open_dialog() -> Option<PathBuf> {
    rfd::FileDialog::new()
        .set_title("Open a picture or a project")
        .add_filter(
            "Pictures and projects",
            &[
                "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", EXTENSION,
            ],
        )
        .pick_file()
}

/// Asks where to save the project.
pub fn save_dialog(name: &str) -> Option<PathBuf> {
    rfd::FileDialog::new()
        .set_title("Save the project")
        .add_filter("Tessera project", &[EXTENSION])
        .set_file_name(format!("{name}.{EXTENSION}"))
        .save_file()
}

/// Asks where to export the picture.
pub fn export_dialog(name: &str) -> Option<PathBuf> {
    rfd::FileDialog::new()
        .set_title("Export the picture")
        .add_filter("PNG", &["png"])
        .add_filter("JPEG", &["jpg", "jpeg"])
        .add_filter("WebP (lossless)", &["webp"])
        .set_file_name(format!("{name}.png"))
        .save_file()
}

/// Writes the picture as PNG, JPEG or WebP (lossless; by extension), atomically.
pub fn export(picture: &RgbImage, path: &Path) -> Result<(), FileError> {
    let format = image::ImageFormat::from_path(path)
        .ok()
        .filter(|f| crate::data::convert::WRITE_FORMATS.contains(f))
        .ok_or_else(|| FileError::ExportFormat(path.to_path_buf()))?;
    let failed = |reason: String| FileError::Write {
        doing: "export",
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut bytes, format)
        .map_err(|e| failed(e.to_string()))?;
    write_atomically(path, bytes.get_ref()).map_err(|e| failed(e.to_string()))
}

/// The project's place on disk and its autosave.
pub struct ProjectFile {
    /// Name of the picture (for file names).
    name: String,
    /// Where Save writes; none until the person chooses a place.
    path: Option<PathBuf>,
    autosaver: Option<Autosaver>,
    /// When the first unsaved change happened.
    dirty: Option<Instant>,
}

impl ProjectFile {
    /// A project for picture `name`, saved at `path` if it has a place yet.
    pub fn new(name: &str, path: Option<PathBuf>) -> Self {
        Self {
            name: name.to_string(),
            path,
            autosaver: None,
            dirty: None,
        }
    }

    /// The picture's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where Save writes, if chosen.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Notes a finished change, to be autosaved after a quiet second.
    pub fn changed(&mut self) {
        self.dirty.get_or_insert_with(Instant::now);
    }

    /// Whether a change waits for autosave.
    pub fn is_dirty(&self) -> bool {
        self.dirty.is_some()
    }

    /// Whether a change has waited long enough to be autosaved.
    pub fn due(&self) -> bool {
        self.dirty.is_some_and(|t| t.elapsed() >= AUTOSAVE_DELAY)
    }

    /// How long until the waiting change is due (for a repaint then).
    pub fn wait(&self) -> Option<Duration> {
        self.dirty
            .map(|t| AUTOSAVE_DELAY.saturating_sub(t.elapsed()))
    }

    /// Hands a snapshot to the autosave thread (started on first use).
    pub fn autosave(&mut self, project: Project) -> Result<(), FileError> {
        self.dirty = None;
        if self.autosaver.is_none() {
            let target = self
                .path
                .clone()
                .unwrap_or_else(|| autosave_path(&self.name));
            let failed = |path: &Path, e: std::io::Error| FileError::Write {
                doing: "autosave",
                path: path.to_path_buf(),
                reason: e.to_string(),
            };
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
            }
            let saver = Autosaver::spawn(target.clone()).map_err(|e| failed(&target, e))?;
            self.autosaver = Some(saver);
        }
        if let Some(saver) = &self.autosaver {
            saver.save(project);
        }
        Ok(())
    }

    /// A status line for the autosave writes finished since the last call.
    pub fn poll(&self) -> Option<String> {
        let saver = self.autosaver.as_ref()?;
        saver
            .results()
            .into_iter()
            .last()
            .map(|result| match result {
                Ok(()) => format!("autosaved to {}", saver.path().display()),
                Err(err) => format!("autosave failed: {err}"),
            })
    }

    /// Saves now to `path` (which becomes the project's place and its autosave's).
    pub fn save(&mut self, project: &Project, path: PathBuf) -> Result<(), FileError> {
        project.save(&path)?;
        if self.path.as_ref() != Some(&path) {
            self.autosaver = None; // the next autosave goes to the new place
        }
        self.path = Some(path);
        self.dirty = None;
        Ok(())
    }
}
