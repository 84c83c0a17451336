//! The editor window: a toolbar, the canvas and a status bar. Every model call goes to
//! the worker thread; the window only paints and reads events back.

mod faces;
mod jobs;
mod panels;
mod posing;
mod saving;

use jobs::WorkerSlot;

use eframe::egui;
use std::path::PathBuf;

use egui::{Key, KeyboardShortcut, Modifiers};
use image::RgbImage;

use super::canvas::{CanvasView, Overlay, Pictures, StrokeEvent};
use super::demo::{Demo, DemoAction};
use super::document::{Document, Layer};
use super::face_marks;
use super::files::ProjectFile;
use super::help;
use super::history::History;
use super::strip::Strip;
use crate::backend::BackendChoice;
use crate::data::PicturePoint;
use crate::data::poses::Pose;
use crate::engine::Method;
use crate::engine::Sampling;

/// Undo, redo and generate from the keyboard.
const UNDO: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Z);
const REDO: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z);
const GENERATE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::G);
const OPEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
const SAVE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
const EXPORT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
const HELP: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F1);

/// The canvas's pictures, as indices into the revisions.
const PICTURE: usize = 0;
const MASK: usize = 1;
const SKETCH: usize = 2;

/// What the pointer does on the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Paint what to regenerate.
    Mask,
    /// Draw guiding strokes.
    Sketch,
    /// Place the skeleton on the person (`Fit`) or move it where they should stand.
    Pose(PoseMode),
    /// New faces from a generator, to click into the canvas.
    Sample,
}

/// What a job makes, and what its result does to the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    /// The picture with the masked part regenerated.
    Edit,
    /// The picture with the person reposed (the pose moves to the target).
    Repose,
    /// A gallery of faces; the document changes only when one is clicked.
    Gallery,
    /// The faces of the picture.
    Faces,
}

/// Which skeleton the Pose tool drags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoseMode {
    /// Where the person stands now.
    Fit,
    /// Where they should stand.
    Move,
}

/// Skeleton colours: the pose being fitted, the old pose as a ghost, the target.
const FIT_COLOR: egui::Color32 = egui::Color32::from_rgb(80, 200, 255);
const GHOST_COLOR: egui::Color32 = egui::Color32::from_rgb(150, 150, 150);
const TARGET_COLOR: egui::Color32 = egui::Color32::from_rgb(255, 170, 40);

/// The job the worker runs for us.
struct Job {
    id: u64,
    kind: JobKind,
    done: usize,
    total: usize,
    /// The latest preview, shown instead of the picture while the job runs.
    preview: Option<RgbImage>,
    /// Results so far, one per seed.
    candidates: Vec<RgbImage>,
    /// ImageBART's stages so far: cycle, level, picture.
    stages: Vec<(usize, usize, RgbImage)>,
}

/// The editor's state.
pub struct EditorApp {
    document: Document,
    /// Revisions of the picture shown, the mask and the sketch (see `Pictures`).
    revisions: [u64; 3],
    history: History,
    view: CanvasView,
    tool: Tool,
    /// The joint being dragged.
    dragging: Option<usize>,
    /// The face point being dragged: which face, which point.
    dragging_face: Option<(usize, usize)>,
    /// Show the located faces (box, eyes, nose, mouth) on the canvas.
    show_faces: bool,
    /// The picture changed: find its faces once the worker is free.
    faces_wanted: bool,
    /// The face under the mask, for the mask revision and faces it was found for: the
    /// search reads every mask pixel, so it runs when they change, not every frame.
    active_face: Option<faces::ActiveFace>,
    /// Brush radius in picture pixels.
    brush: f32,
    show_mask: bool,
    /// Regenerate when a stroke ends.
    live: bool,
    /// Results per Generate, one per seed from the seed field on.
    candidates: usize,
    /// ImageBART's refinement cycles.
    cycles: usize,
    /// The generator of the Sample tool.
    generator: crate::engine::SampleSource,
    /// Whether the candidates strip holds a gallery (a click replaces the picture).
    gallery: bool,
    /// The last job's candidates, and ImageBART's trajectory.
    choices: Strip,
    trajectory: Strip,
    method: Method,
    sampling: Sampling,
    models: PathBuf,
    backend: BackendChoice,
    worker: Option<WorkerSlot>,
    job: Option<Job>,
    /// The picture before the last edit, for the before/after toggle.
    before: Option<RgbImage>,
    show_before: bool,
    status: String,
    /// The GPU failed and the worker moved to the CPU: said in the next status.
    fell_back: Option<String>,
    /// Whether the stroke in progress has been recorded in the history.
    stroke_recorded: bool,
    /// A scripted run, if one drives the editor.
    demo: Option<Demo>,
    /// Where the project is saved and autosaved.
    file: ProjectFile,
    show_help: bool,
}

impl EditorApp {
    /// An editor on `image`, with the models of `models` on `backend`.
    pub fn new(image: RgbImage, models: PathBuf, backend: BackendChoice) -> Self {
        Self {
            document: Document::new(image.clone()),
            revisions: [0; 3],
            history: History::new(),
            view: CanvasView::default(),
            tool: Tool::Mask,
            dragging: None,
            dragging_face: None,
            show_faces: true,
            faces_wanted: true,
            active_face: None,
            brush: saving::default_brush(&image),
            show_mask: true,
            live: false,
            candidates: 3,
            cycles: crate::engine::DEFAULT_CYCLES,
            generator: crate::engine::SampleSource::Gan(crate::engine::Arch::Hit),
            gallery: false,
            choices: Strip::default(),
            trajectory: Strip::default(),
            method: Method::Ilat,
            sampling: Sampling::default(),
            models,
            backend,
            worker: None,
            job: None,
            before: None,
            show_before: false,
            status: "paint a mask over what to regenerate, then Generate (G)".into(),
            fell_back: None,
            stroke_recorded: false,
            demo: None,
            file: ProjectFile::new("untitled", None),
            show_help: false,
        }
    }

    /// Starts with the person's pose known (e.g. read from a `.pose.json` beside the
    /// picture).
    pub fn with_pose(mut self, pose: Pose) -> Self {
        self.document.target = Some(pose.clone());
        self.document.pose = Some(pose);
        self
    }

    /// Draws the canvas with the WGSL shader when the window renders with wgpu (its
    /// render state given); otherwise with egui textures.
    /// `TESSERA_CANVAS=egui` keeps the egui textures (for a driver that misdraws).
    pub fn with_gpu(mut self, render_state: Option<&eframe::egui_wgpu::RenderState>) -> Self {
        let wanted = std::env::var("TESSERA_CANVAS").map_or(true, |v| v != "egui");
        let gpu = wanted && super::gpu::install(render_state);
        tracing::info!(
            "canvas drawn by {}",
            if gpu {
                "the WGSL shader"
            } else {
                "egui textures"
            }
        );
        self.view.use_gpu(gpu);
        self
    }

    /// The tool in use.
    pub fn tool(&self) -> Tool {
        self.tool
    }

    /// Where picture pixel `(x, y)` was on screen in the last frame, in points.
    pub fn screen_point(&self, picture: PicturePoint) -> egui::Pos2 {
        self.view.to_screen(self.document.image.width(), picture)
    }

    /// Lets a scripted run drive the editor (`tessera gui --demo`).
    pub fn with_demo(mut self, demo: Demo) -> Self {
        self.demo = Some(demo);
        self
    }

    /// The document being edited.
    pub fn document(&self) -> &Document {
        &self.document
    }

    /// Whether a job is running.
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// The status line.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The whole window.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.start_worker(ui.ctx());
        self.read_events();
        self.locate_faces(ui.ctx());
        self.run_demo(ui.ctx());
        self.shortcuts(ui);
        self.dropped_files(ui.ctx());
        self.autosave(ui.ctx());
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if self.choices.len() > 1 {
            egui::Panel::bottom("candidates").show(ui, |ui| self.candidates_strip(ui));
        }
        if !self.trajectory.is_empty() {
            egui::Panel::bottom("refinement").show(ui, |ui| {
                self.trajectory.ui(ui, "refinement");
            });
        }
        egui::CentralPanel::default().show(ui, |ui| self.canvas(ui));
        help::window(ui.ctx(), &mut self.show_help);
    }

    fn run_demo(&mut self, ctx: &egui::Context) {
        let busy = self.busy();
        let Some(demo) = &mut self.demo else {
            return;
        };
        let action = demo.frame(ctx, busy);
        if let DemoAction::HideMask = action {
            self.show_mask = false;
        }
        if let DemoAction::Edit(mask, sketch) = action {
            let fits = mask.dimensions() == self.document.mask.dimensions();
            if !fits {
                self.status = "the demo mask does not fit the picture".into();
                return;
            }
            self.change(|doc| {
                doc.mask = mask;
                if let Some(sketch) = sketch {
                    doc.sketch = sketch;
                }
            });
            self.generate(ctx);
        }
    }

    fn canvas(&mut self, ui: &mut egui::Ui) {
        let active = self.active_face();
        let image = match (&self.job, self.show_before, &self.before) {
            (
                Some(Job {
                    preview: Some(preview),
                    ..
                }),
                _,
                _,
            ) => preview,
            (_, true, Some(before)) => before,
            _ => &self.document.image,
        };
        let pictures = Pictures {
            image,
            mask: &self.document.mask,
            sketch: &self.document.sketch,
            revisions: self.revisions,
        };
        let skeletons = match (self.tool, &self.document.pose, &self.document.target) {
            (Tool::Pose(PoseMode::Fit), Some(pose), _) => vec![(pose, FIT_COLOR)],
            (Tool::Pose(PoseMode::Move), Some(pose), Some(target)) => {
                vec![(pose, GHOST_COLOR), (target, TARGET_COLOR)]
            }
            _ => Vec::new(),
        };
        let faces = match self.tool {
            Tool::Mask | Tool::Sketch if self.show_faces => self
                .document
                .faces
                .iter()
                .enumerate()
                .map(|(i, face)| {
                    let color = if Some(i) == active {
                        face_marks::ACTIVE
                    } else {
                        face_marks::IDLE
                    };
                    (face, color)
                })
                .collect(),
            _ => Vec::new(),
        };
        let overlay = Overlay {
            mask: self.show_mask,
            brush: matches!(self.tool, Tool::Mask | Tool::Sketch).then_some(self.brush),
            skeletons,
            faces,
        };
        let strokes = self.view.ui(ui, &pictures, &overlay);
        for stroke in strokes {
            match (stroke, self.tool) {
                (StrokeEvent::Segment { from, to, erase }, Tool::Pose(mode)) => {
                    self.drag_joint(mode, from, to, erase);
                }
                (StrokeEvent::Segment { .. }, Tool::Sample) => {}
                (StrokeEvent::Segment { from, to, .. }, Tool::Mask | Tool::Sketch)
                    if self.drag_face_point(from, to) => {}
                (StrokeEvent::Segment { from, to, erase }, Tool::Mask | Tool::Sketch) => {
                    let layer = match self.tool {
                        Tool::Sketch => Layer::Sketch,
                        _ => Layer::Mask,
                    };
                    if !self.stroke_recorded {
                        self.history.record(&self.document);
                        self.stroke_recorded = true;
                    }
                    self.document.paint(layer, from, to, self.brush, erase);
                    self.touched(match layer {
                        Layer::Mask => MASK,
                        Layer::Sketch => SKETCH,
                    });
                }
                (StrokeEvent::End, _) => {
                    if self.stroke_recorded {
                        self.file.changed();
                    }
                    self.stroke_recorded = false;
                    self.dragging = None;
                    self.dragging_face = None;
                    if self.live {
                        self.generate(ui.ctx());
                    }
                }
            }
        }
    }

    /// Applies a change to the document, recorded for undo.
    fn change(&mut self, apply: impl FnOnce(&mut Document)) {
        self.history.record(&self.document);
        apply(&mut self.document);
        self.touched_all();
        self.file.changed();
    }

    /// Marks one of the canvas's pictures as changed.
    fn touched(&mut self, layer: usize) {
        self.revisions[layer] += 1;
    }

    fn touched_all(&mut self) {
        for layer in [PICTURE, MASK, SKETCH] {
            self.touched(layer);
        }
    }

    fn undo(&mut self) {
        if let Some(previous) = self.history.undo(&self.document) {
            self.document = previous;
            self.touched_all();
            self.file.changed();
        }
    }

    fn redo(&mut self) {
        if let Some(next) = self.history.redo(&self.document) {
            self.document = next;
            self.touched_all();
            self.file.changed();
        }
    }
}

impl eframe::App for EditorApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        EditorApp::ui(self, ui);
        if self.busy() {
            // Events arrive from the worker thread: look again soon.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(30));
        }
    }
}
