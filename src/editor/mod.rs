//! The editor (DESIGN §1, §6): paint a mask and a sketch over a picture and let the
//! models regenerate the masked part on a background worker.
//!
//! Still to come (the editor issue): open/save dialogs and drag-and-drop, the project
//! file with autosave, several candidates, pose and sample tools, zoom-independent
//! feathered compositing in WGSL, the scripted demo mode.

use eframe::egui;
mod app;
mod canvas;
pub mod document;
pub mod history;

use std::path::{Path, PathBuf};

pub use app::EditorApp;

use crate::backend::BackendChoice;

/// Opens the editor window on `image` (default: a sample face).
pub fn run(models: PathBuf, backend: BackendChoice, image: Option<&Path>) -> anyhow::Result<()> {
    let path = image
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::paths::sample_faces().join("000910.png"));
    let picture = crate::data::convert::open_image(&path)?.to_rgb8();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tessera")
            .with_inner_size([960.0, 720.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Tessera",
        options,
        Box::new(move |_| Ok(Box::new(EditorApp::new(picture, models, backend)))),
    )
    .map_err(|err| anyhow::anyhow!("the editor window could not open: {err}"))
}
