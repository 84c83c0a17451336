//! Jobs on the worker: what Generate asks for (an edit, or a repose with the Pose
//! tool), and what the worker reports back.

use eframe::egui;

use super::{EditorApp, Job, JobKind, PICTURE, Tool};
use crate::backend::BackendChoice;
use crate::editor::strip::Strip;
use crate::engine::{EditRequest, FaceChoice, ReposeRequest, SampleSource};
use crate::worker::{Event, Request, Worker};

/// Faces per Sample.
const GALLERY: usize = 8;

impl EditorApp {
    /// The status after a job, with the note of a GPU that gave way to the CPU on the
    /// way (said once).
    fn finish_status(&mut self, text: String) {
        self.status = match self.fell_back.take() {
            Some(why) => format!("{text} ({why})"),
            None => text,
        };
    }

    /// The Sample tool's controls: the generator, and interpolation between the faces of
    /// the seed and the next seed.
    pub(super) fn sample_controls(&mut self, ui: &mut egui::Ui) {
        egui::ComboBox::from_label("generator")
            .selected_text(self.generator.name())
            .show_ui(ui, |ui| {
                for generator in SampleSource::ALL {
                    ui.selectable_value(&mut self.generator, generator, generator.name());
                }
            });
        let Some(arch) = self.generator.gan() else {
            return; // ImageBART's pictures have no latent space to walk through
        };
        if ui
            .button("Interpolate")
            .on_hover_text("the faces between this seed's and the next seed's")
            .clicked()
        {
            let request = Request::Interpolate {
                arch,
                from: self.sampling.seed,
                steps: GALLERY,
            };
            self.submit(request, ui.ctx());
        }
    }

    /// Sends the current picture, mask and sketch to the worker; a running job is
    /// superseded.
    pub(super) fn generate(&mut self, ctx: &egui::Context) {
        if let Some(request) = self.request() {
            self.submit(request, ctx);
        }
    }

    /// Hands a job to the worker (started on first use).
    pub(super) fn submit(&mut self, request: Request, ctx: &egui::Context) {
        let kind = match request {
            Request::Edit(_) => JobKind::Edit,
            Request::Repose(_) => JobKind::Repose,
            Request::Sample { .. } | Request::Interpolate { .. } => JobKind::Gallery,
        };
        let candidates = match kind {
            JobKind::Gallery => 1,
            _ => self.candidates,
        };
        self.start(kind, ctx, |worker| worker.submit(request, candidates));
    }

    /// Starts a job of `kind`: `queue` hands it to the worker (started on first use)
    /// and returns its id.
    pub(super) fn start(
        &mut self,
        kind: JobKind,
        ctx: &egui::Context,
        queue: impl FnOnce(&Worker) -> u64,
    ) {
        if self.locating() {
            self.faces_wanted = true; // superseded: look again when the worker is free
        }
        let worker = self
            .worker
            .get_or_insert_with(|| spawn_worker(&self.models, self.backend, ctx.clone()));
        match worker {
            Ok(worker) => {
                let id = queue(worker);
                self.job = Some(Job {
                    id,
                    kind,
                    done: 0,
                    total: 0,
                    preview: None,
                    candidates: Vec::new(),
                    stages: Vec::new(),
                });
                self.status = match kind {
                    JobKind::Gallery => format!("sampling with {}", self.generator.name()),
                    JobKind::Faces => super::faces::LOCATING.into(),
                    _ => format!("regenerating with {}", self.method.name()),
                };
            }
            Err(why) => self.status = format!("cannot start the models: {why}"),
        }
    }

    /// The job the current tool asks for: a repose with the Pose tool, else an edit;
    /// none (and a status saying why) when there is nothing to do.
    pub(super) fn request(&mut self) -> Option<Request> {
        let doc = &self.document;
        if self.tool == Tool::Sample {
            return Some(Request::Sample {
                generator: self.generator,
                seed: self.sampling.seed,
                count: GALLERY,
            });
        }
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
            cycles: self.cycles,
            face: match doc.face_under_mask() {
                Some(i) => FaceChoice::Given(doc.faces[i]),
                None => FaceChoice::Off,
            },
        }))
    }

    /// Starts the worker (and its model loading) if it is not running yet.
    pub(super) fn start_worker(&mut self, ctx: &egui::Context) {
        if self.worker.is_none() {
            self.worker = Some(spawn_worker(&self.models, self.backend, ctx.clone()));
        }
    }

    /// Applies what the worker reported since the last frame.
    pub(super) fn read_events(&mut self) {
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
                Event::FellBack(why) => self.fell_back = Some(why),
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
                Event::Stage {
                    cycle,
                    level,
                    image,
                    ..
                } => {
                    if let Some(job) = &mut self.job {
                        job.preview = Some(image.clone());
                        job.stages.push((cycle, level, image));
                        self.revisions[PICTURE] += 1;
                    }
                }
                Event::Candidate { image, .. } => {
                    if let Some(job) = &mut self.job {
                        job.candidates.push(image);
                    }
                }
                Event::Finished { image, seconds, .. } => {
                    let before = self.document.image.clone();
                    let kind = self.job.as_ref().map_or(JobKind::Edit, |j| j.kind);
                    let (candidates, stages) = self
                        .job
                        .take()
                        .map(|j| (j.candidates, j.stages))
                        .unwrap_or_default();
                    let labels = (1..=candidates.len()).map(|k| k.to_string()).collect();
                    self.gallery = kind == JobKind::Gallery;
                    if self.gallery {
                        self.choices = Strip::new(candidates, labels, None);
                        self.touched(PICTURE);
                        let text =
                            format!("{} faces in {seconds:.2} s: click one", self.choices.len());
                        self.finish_status(text);
                        continue;
                    }
                    self.choices = Strip::new(candidates, labels, Some(0));
                    let (labels, images) = stages
                        .into_iter()
                        .map(|(cycle, level, image)| (format!("{}·t{level}", cycle + 1), image))
                        .unzip();
                    self.trajectory = Strip::new(images, labels, None);
                    let repose = kind == JobKind::Repose;
                    self.change(|doc| {
                        doc.image = image;
                        if repose {
                            doc.pose = doc.target.clone(); // the person stands there now
                        }
                    });
                    self.before = Some(before);
                    self.job = None;
                    let what = if repose { "repose" } else { "edit" };
                    self.finish_status(format!("{} {what} in {seconds:.2} s", self.method.name()));
                }
                Event::Faces { faces, .. } => {
                    self.job = None;
                    self.faces_found(faces);
                }
                Event::Failed { error, .. } => {
                    self.status = if self.locating() {
                        format!(
                            "finding faces failed ({error}): edits work on the square around the mask"
                        )
                    } else {
                        format!("the edit failed: {error}")
                    };
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
pub(super) type WorkerSlot = Result<Worker, String>;

pub(super) fn spawn_worker(
    models: &std::path::Path,
    backend: BackendChoice,
    ctx: egui::Context,
) -> WorkerSlot {
    Worker::for_models(models, backend, move || ctx.request_repaint())
        .map_err(|err| err.to_string())
}
