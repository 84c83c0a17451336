//! The editor (DESIGN §1, §6): paint a mask and a sketch over a picture and let the
//! models regenerate the masked part on a background worker.
//!
//! Still to come (the editor issue): the WGSL canvas shaders.

use eframe::egui;
mod app;
mod autosave;
mod canvas;
mod demo;
pub mod document;
pub mod files;
mod gpu;
mod help;
pub mod history;
pub mod project;
mod skeleton;
mod strip;

use std::path::{Path, PathBuf};

pub use app::{EditorApp, PoseMode, Tool};
pub use demo::Demo;

use crate::backend::BackendChoice;

/// Opens the editor window on `image`, a picture or a project (default: a sample
/// face). With `demo`, a scripted run edits the sample face and writes a screenshot to
/// that path.
pub fn run(
    models: PathBuf,
    backend: BackendChoice,
    image: Option<&Path>,
    demo: Option<PathBuf>,
) -> anyhow::Result<()> {
    let sample = crate::paths::sample_faces().join("000910.png");
    let path = match (&demo, image) {
        (None, Some(image)) => image.to_path_buf(),
        _ => sample,
    };
    // Opened before the window, so a bad file is a clear error on the terminal.
    let mut app = EditorApp::new(image::RgbImage::new(1, 1), models, backend);
    app.open(&path).map_err(anyhow::Error::msg)?;
    let demo = match demo {
        Some(screenshot) => {
            let edit = crate::paths::samples().join("edit");
            let mask = crate::data::convert::open_image(&edit.join("000910-mask.png"))?;
            let sketch = crate::data::convert::open_image(&edit.join("000910-smile.png"))?;
            Some(Demo::new(
                mask.to_luma8(),
                Some(sketch.to_luma8()),
                screenshot,
            ))
        }
        None => None,
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tessera")
            .with_inner_size([960.0, 720.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Tessera",
        options,
        Box::new(move |cc| {
            let app = app.with_gpu(cc.wgpu_render_state.as_ref());
            Ok(Box::new(match demo {
                Some(demo) => app.with_demo(demo),
                None => app,
            }))
        }),
    )
    .map_err(|err| anyhow::anyhow!("the editor window could not open: {err}"))
}
