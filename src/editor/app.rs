//! The editor window: a toolbar, the canvas and a status bar. Every model call goes to
//! the worker thread; the window only paints and reads events back.

use eframe::egui;
use std::path::PathBuf;
use std::time::Instant;

use egui::{Key, KeyboardShortcut, Modifiers};
use image::RgbImage;

use super::canvas::{CanvasView, Overlay, Pictures, StrokeEvent};
use super::demo::{Demo, DemoAction};
use super::document::{Document, Layer};
use super::history::History;
use super::skeleton;
use crate::backend::BackendChoice;
use crate::data::poses::Pose;
use crate::engine::{EditRequest, Engine, Method, ReposeRequest};
use crate::ilat::sample::Sampling;
use crate::worker::{Event, Request, Worker};

/// Undo, redo and generate from the keyboard.
const UNDO: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Z);
const REDO: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z);
const GENERATE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::G);

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
    /// A repose (the pose moves to the target when it finishes) or an edit.
    repose: bool,
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
    tool: Tool,
    /// The joint being dragged.
    dragging: Option<usize>,
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
            tool: Tool::Mask,
            dragging: None,
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

    /// Starts with the person's pose known (e.g. read from a `.pose.json` beside the
    /// picture).
    pub fn with_pose(mut self, pose: Pose) -> Self {
        self.document.target = Some(pose.clone());
        self.document.pose = Some(pose);
        self
    }

    /// The tool in use.
    pub fn tool(&self) -> Tool {
        self.tool
    }

    /// Where picture pixel `(x, y)` was on screen in the last frame, in points.
    pub fn screen_point(&self, picture: (f32, f32)) -> egui::Pos2 {
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
            ui.selectable_value(&mut self.tool, Tool::Mask, "Mask");
            ui.selectable_value(&mut self.tool, Tool::Sketch, "Sketch");
            let posing = matches!(self.tool, Tool::Pose(_));
            if ui.selectable_label(posing, "Pose").clicked() && !posing {
                self.pose_tool(PoseMode::Fit);
            }
            match self.tool {
                Tool::Pose(mode) => self.pose_controls(ui, mode),
                _ => {
                    ui.add(egui::Slider::new(&mut self.brush, 0.5..=32.0).text("brush"));
                }
            }
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

    /// Fit or Move, and Reset, for the Pose tool.
    fn pose_controls(&mut self, ui: &mut egui::Ui, mode: PoseMode) {
        if ui.selectable_label(mode == PoseMode::Fit, "Fit").clicked() {
            self.pose_tool(PoseMode::Fit);
        }
        if ui
            .selectable_label(mode == PoseMode::Move, "Move")
            .clicked()
        {
            self.pose_tool(PoseMode::Move);
        }
        if ui
            .button("Reset")
            .on_hover_text("Fit: a standing figure again; Move: back onto the person")
            .clicked()
        {
            self.change(|doc| match mode {
                PoseMode::Fit => (doc.pose, doc.target) = (None, None),
                PoseMode::Move => doc.target = doc.pose.clone(),
            });
            self.document.poses_or_standing();
        }
    }

    /// Switches to the Pose tool, placing a skeleton when the picture has none.
    fn pose_tool(&mut self, mode: PoseMode) {
        if self.document.pose.is_none() {
            self.change(|doc| {
                doc.poses_or_standing();
            });
            self.status =
                "drag the joints onto the person (right-click: hidden or not), then Move".into();
        } else if mode == PoseMode::Move {
            self.status = "drag joints to where they should go, then Generate (G)".into();
        }
        self.tool = Tool::Pose(mode);
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
        let skeletons = match (self.tool, &self.document.pose, &self.document.target) {
            (Tool::Pose(PoseMode::Fit), Some(pose), _) => vec![(pose, FIT_COLOR)],
            (Tool::Pose(PoseMode::Move), Some(pose), Some(target)) => {
                vec![(pose, GHOST_COLOR), (target, TARGET_COLOR)]
            }
            _ => Vec::new(),
        };
        let overlay = Overlay {
            mask: self.show_mask,
            brush: (!matches!(self.tool, Tool::Pose(_))).then_some(self.brush),
            skeletons,
        };
        let strokes = self.view.ui(ui, &pictures, &overlay);
        for stroke in strokes {
            match (stroke, self.tool) {
                (StrokeEvent::Segment { from, to, erase }, Tool::Pose(mode)) => {
                    self.drag_joint(mode, from, to, erase);
                }
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
                    self.stroke_recorded = false;
                    self.dragging = None;
                    if self.live {
                        self.generate(ui.ctx());
                    }
                }
            }
        }
    }

    /// A drag of the Pose tool: the first segment grabs the joint under the pointer
    /// (or, with the right button, shows or hides it); later ones move the grabbed
    /// joint. While fitting, the target follows the pose.
    fn drag_joint(&mut self, mode: PoseMode, from: (f32, f32), to: (f32, f32), erase: bool) {
        let reach = skeleton::PICK_RADIUS / self.view.scale(self.document.image.width());
        if !self.stroke_recorded {
            self.stroke_recorded = true;
            let (pose, target) = self.document.poses_or_standing();
            let active = if mode == PoseMode::Fit { pose } else { target };
            let Some(joint) = skeleton::nearest_joint(active, from, reach) else {
                return;
            };
            self.history.record(&self.document);
            if erase {
                let (pose, target) = self.document.poses_or_standing();
                for p in [pose, target] {
                    p.joints[joint].visible = !p.joints[joint].visible;
                }
                return;
            }
            self.dragging = Some(joint);
        }
        let Some(joint) = self.dragging else {
            return;
        };
        let (pose, target) = self.document.poses_or_standing();
        for p in match mode {
            PoseMode::Fit => vec![pose, target],
            PoseMode::Move => vec![target],
        } {
            (p.joints[joint].x, p.joints[joint].y) = to;
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
        let Some(request) = self.request() else {
            return;
        };
        let repose = matches!(request, Request::Repose(_));
        let worker = self
            .worker
            .get_or_insert_with(|| spawn_worker(&self.models, self.backend, ctx.clone()));
        match worker {
            Ok(worker) => {
                let id = worker.submit(request);
                self.job = Some(Job {
                    id,
                    repose,
                    done: 0,
                    total: 0,
                    preview: None,
                });
                self.status = format!("regenerating with {}", self.method.name());
            }
            Err(why) => self.status = format!("cannot start the models: {why}"),
        }
    }

    /// The job the current tool asks for: a repose with the Pose tool, else an edit;
    /// none (and a status saying why) when there is nothing to do.
    fn request(&mut self) -> Option<Request> {
        let doc = &self.document;
        if let Tool::Pose(_) = self.tool {
            let (Some(pose), Some(target)) = (&doc.pose, &doc.target) else {
                self.status = "place the skeleton first (Pose, Fit)".into();
                return None;
            };
            if pose == target {
                self.status = "the target pose is the pose: drag joints in Move".into();
                return None;
            }
            return Some(Request::Repose(ReposeRequest {
                image: doc.image.clone(),
                pose: pose.clone(),
                new_pose: target.clone(),
                method: self.method,
                sampling: self.sampling,
            }));
        }
        if !doc.has_mask() {
            self.status = "nothing is masked: paint over what to regenerate".into();
            return None;
        }
        Some(Request::Edit(EditRequest {
            image: doc.image.clone(),
            mask: doc.mask.clone(),
            sketch: doc.has_sketch().then(|| doc.sketch.clone()),
            method: self.method,
            sampling: self.sampling,
        }))
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
                    let repose = self.job.as_ref().is_some_and(|j| j.repose);
                    self.change(|doc| {
                        doc.image = image;
                        if repose {
                            doc.pose = doc.target.clone(); // the person stands there now
                        }
                    });
                    self.before = Some(before);
                    self.job = None;
                    let what = if repose { "repose" } else { "edit" };
                    self.status = format!("{} {what} in {seconds:.2} s", self.method.name());
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
