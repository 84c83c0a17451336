//! The editor window: a toolbar, the canvas and a status bar. Every model call goes to
//! the worker thread; the window only paints and reads events back.

use eframe::egui;
use std::path::PathBuf;
use std::time::Instant;

use egui::{Key, KeyboardShortcut, Modifiers};
use image::RgbImage;

use super::canvas::{CanvasView, Pictures, StrokeEvent};
use super::demo::{Demo, DemoAction};
use super::document::{Document, Layer};
use super::history::History;
use crate::backend::BackendChoice;
use crate::engine::{EditRequest, Engine, Method};
use crate::ilat::sample::Sampling;
use crate::worker::{Event, Worker};

/// Undo, redo and generate from the keyboard.
const UNDO: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Z);
const REDO: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z);
const GENERATE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::G);

/// The canvas's pictures, as indices into the revisions.
const PICTURE: usize = 0;
const MASK: usize = 1;
const SKETCH: usize = 2;

/// The job the worker runs for us.
struct Job {
    id: u64,
    done: usize,
    total: usize,
    /// The latest preview, shown instead of the picture while the job runs.
    preview: Option<RgbImage>,
}

/// The editor's state.
pub struct EditorApp {
    document: Document,
    /// Revisions of the picture shown, the mask and the sketch (see `Pictures`).
    revisions: [u64; 3],
    history: History,
    view: CanvasView,
    tool: Layer,
    /// Brush radius in picture pixels.
    brush: f32,
    show_mask: bool,
    /// Regenerate when a stroke ends.
    live: bool,
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
    /// Whether the stroke in progress has been recorded in the history.
    stroke_recorded: bool,
    /// A scripted run, if one drives the editor.
    demo: Option<Demo>,
}

impl EditorApp {
    /// An editor on `image`, with the models of `models` on `backend`.
    pub fn new(image: RgbImage, models: PathBuf, backend: BackendChoice) -> Self {
        Self {
            document: Document::new(image),
            revisions: [0; 3],
            history: History::new(),
            view: CanvasView::default(),
            tool: Layer::Mask,
            brush: 4.0,
            show_mask: true,
            live: false,
            method: Method::Ilat,
            sampling: Sampling::default(),
            models,
            backend,
            worker: None,
            job: None,
            before: None,
            show_before: false,
            status: "paint a mask over what to regenerate, then Generate (G)".into(),
            stroke_recorded: false,
            demo: None,
        }
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
        self.read_events();
        self.run_demo(ui.ctx());
        self.shortcuts(ui);
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::CentralPanel::default().show(ui, |ui| self.canvas(ui));
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

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.tool, Layer::Mask, "Mask");
            ui.selectable_value(&mut self.tool, Layer::Sketch, "Sketch");
            ui.add(egui::Slider::new(&mut self.brush, 0.5..=32.0).text("brush"));
            ui.separator();
            if ui
                .add_enabled(self.history.can_undo(), egui::Button::new("Undo"))
                .clicked()
            {
                self.undo();
            }
            if ui
                .add_enabled(self.history.can_redo(), egui::Button::new("Redo"))
                .clicked()
            {
                self.redo();
            }
            if ui.button("Clear mask").clicked() {
                self.change(|doc| doc.mask.fill(0));
            }
            if ui.button("Clear sketch").clicked() {
                self.change(|doc| doc.sketch.fill(255));
            }
            ui.separator();
            egui::ComboBox::from_label("method")
                .selected_text(self.method.name())
                .show_ui(ui, |ui| {
                    for method in [Method::Ilat, Method::Taming, Method::TamingStar] {
                        ui.selectable_value(&mut self.method, method, method.name());
                    }
                });
            ui.add(egui::DragValue::new(&mut self.sampling.seed).prefix("seed "));
            ui.add(egui::DragValue::new(&mut self.sampling.top_k).prefix("top-k "));
            ui.checkbox(&mut self.live, "Live");
            if ui.button("Generate").clicked() {
                self.generate(ui.ctx());
            }
            ui.separator();
            ui.checkbox(&mut self.show_mask, "Mask overlay");
            let can_compare = self.before.is_some();
            if ui
                .add_enabled(
                    can_compare,
                    egui::Checkbox::new(&mut self.show_before, "Before"),
                )
                .changed()
            {
                self.touched(PICTURE);
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some(job) = &self.job {
                ui.spinner();
                ui.label(format!("token {}/{}", job.done, job.total));
            }
            ui.label(&self.status);
        });
    }

    fn canvas(&mut self, ui: &mut egui::Ui) {
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
        let strokes = self.view.ui(ui, &pictures, self.brush, self.show_mask);
        for stroke in strokes {
            match stroke {
                StrokeEvent::Segment { from, to, erase } => {
                    if !self.stroke_recorded {
                        self.history.record(&self.document);
                        self.stroke_recorded = true;
                    }
                    self.document.paint(self.tool, from, to, self.brush, erase);
                    self.touched(match self.tool {
                        Layer::Mask => MASK,
                        Layer::Sketch => SKETCH,
                    });
                }
                StrokeEvent::End => {
                    self.stroke_recorded = false;
                    if self.live {
                        self.generate(ui.ctx());
                    }
                }
            }
        }
    }

    fn shortcuts(&mut self, ui: &mut egui::Ui) {
        let (undo, redo, generate) = ui.input_mut(|i| {
            // Redo first: its shortcut contains undo's.
            let redo = i.consume_shortcut(&REDO);
            (
                i.consume_shortcut(&UNDO),
                redo,
                i.consume_shortcut(&GENERATE),
            )
        });
        if redo {
            self.redo();
        } else if undo {
            self.undo();
        }
        if generate {
            self.generate(ui.ctx());
        }
    }

    /// Applies a change to the document, recorded for undo.
    fn change(&mut self, apply: impl FnOnce(&mut Document)) {
        self.history.record(&self.document);
        apply(&mut self.document);
        self.touched_all();
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
        }
    }

    fn redo(&mut self) {
        if let Some(next) = self.history.redo(&self.document) {
            self.document = next;
            self.touched_all();
        }
    }

    /// Sends the current picture, mask and sketch to the worker; a running job is
    /// superseded.
    fn generate(&mut self, ctx: &egui::Context) {
        if !self.document.has_mask() {
            self.status = "nothing is masked: paint over what to regenerate".into();
            return;
        }
        let request = EditRequest {
            image: self.document.image.clone(),
            mask: self.document.mask.clone(),
            sketch: self
                .document
                .has_sketch()
                .then(|| self.document.sketch.clone()),
            method: self.method,
            sampling: self.sampling,
        };
        let worker = self
            .worker
            .get_or_insert_with(|| spawn_worker(&self.models, self.backend, ctx.clone()));
        match worker {
            Ok(worker) => {
                let id = worker.edit(request);
                self.job = Some(Job {
                    id,
                    done: 0,
                    total: 0,
                    preview: None,
                });
                self.status = format!("regenerating with {}", self.method.name());
            }
            Err(why) => self.status = format!("cannot start the models: {why}"),
        }
    }

    /// Applies what the worker reported since the last frame.
    fn read_events(&mut self) {
        let Some(Ok(worker)) = &self.worker else {
            return;
        };
        for event in worker.events() {
            let current = self.job.as_ref().map(|j| j.id);
            if event.job().is_some() && event.job() != current {
                continue; // a job we have moved past
            }
            match event {
                Event::Unavailable(why) => {
                    self.status = format!("the models are not available: {why}");
                    self.job = None;
                }
                Event::Token { done, total, .. } => {
                    if let Some(job) = &mut self.job {
                        (job.done, job.total) = (done, total);
                    }
                }
                Event::Preview { image, .. } => {
                    if let Some(job) = &mut self.job {
                        job.preview = Some(image);
                        self.revisions[PICTURE] += 1;
                    }
                }
                Event::Finished { image, seconds, .. } => {
                    let before = self.document.image.clone();
                    self.change(|doc| doc.image = image);
                    self.before = Some(before);
                    self.job = None;
                    self.status = format!("{} edit in {seconds:.2} s", self.method.name());
                }
                Event::Failed { error, .. } => {
                    self.status = format!("the edit failed: {error}");
                    self.job = None;
                    self.touched(PICTURE); // the preview goes
                }
                Event::Cancelled { .. } => {
                    self.job = None;
                    self.touched(PICTURE);
                }
            }
        }
    }
}

/// What a worker that could not start says instead.
type WorkerSlot = Result<Worker, String>;

fn spawn_worker(
    models: &std::path::Path,
    backend: BackendChoice,
    ctx: egui::Context,
) -> WorkerSlot {
    let models = models.to_path_buf();
    let started = Instant::now();
    Worker::spawn(
        move || {
            let engine = Engine::new(&models, backend);
            tracing::info!("engine ready in {:.1} s", started.elapsed().as_secs_f64());
            engine
        },
        move || ctx.request_repaint(),
    )
    .map_err(|err| err.to_string())
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
