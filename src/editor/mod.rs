//! The editor: paint a mask and a sketch over a picture and let the
//! models regenerate the masked part on a background worker.
//!
//! The window renders with wgpu (the canvas then runs `shaders/canvas.wgsl`) or, when
//! wgpu cannot start, with glow (the canvas paints egui textures).

use eframe::egui;
mod app;
mod autosave;
mod canvas;
mod demo;
pub mod document;
mod face_marks;
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
    app.open(&path)?;
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
    // wgpu first (the WGSL canvas), glow when wgpu cannot start; `TESSERA_RENDERER=glow`
    // asks for glow directly.
    let app = std::rc::Rc::new(std::cell::RefCell::new(Some(match demo {
        Some(demo) => app.with_demo(demo),
        None => app,
    })));
    let glow_only = std::env::var("TESSERA_RENDERER").is_ok_and(|v| v == "glow");
    let renderers: &[eframe::Renderer] = if glow_only {
        &[eframe::Renderer::Glow]
    } else {
        &[eframe::Renderer::Wgpu, eframe::Renderer::Glow]
    };
    let mut failures = Vec::new();
    for &renderer in renderers {
        if app.borrow().is_none() {
            break; // the window ran (or failed after starting): no second try
        }
        let options = eframe::NativeOptions {
            viewport: egui::ViewportBuilder::default()
                .with_title("Tessera")
                .with_inner_size([960.0, 720.0]),
            renderer,
            ..Default::default()
        };
        let slot = std::rc::Rc::clone(&app);
        let result = eframe::run_native(
            "Tessera",
            options,
            Box::new(move |cc| {
                let app = slot
                    .borrow_mut()
                    .take()
                    .ok_or("the editor was already started")?;
                Ok(Box::new(app.with_gpu(cc.wgpu_render_state.as_ref())))
            }),
        );
        match result {
            Ok(()) => return Ok(()),
            Err(err) => {
                tracing::warn!("the {renderer:?} renderer did not start: {err}");
                failures.push(format!("{renderer:?}: {err}"));
            }
        }
    }
    anyhow::bail!("the editor window could not open ({})", failures.join("; "))
}
