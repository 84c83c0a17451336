//! The background worker that owns the engine: the editor sends it jobs
//! and reads back progress, so the interface never waits on a model.
//!
//! The latest job wins: a new job cancels the running one at its next token, and jobs
//! queued behind it are dropped unstarted. Every event carries its job's id, so the
//! editor ignores what belongs to a job it has moved past.

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use image::RgbImage;

use crate::engine::{
    Arch, EditProgress, EditRequest, Engine, EngineError, GuideKind, Method, ReposeRequest,
    SampleSource, TokenGrid,
};
use crate::faces::Face;

/// A job for the models.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // it travels boxed (`Command::Run`)
pub enum Request {
    /// Regenerate the masked part of a picture.
    Edit(EditRequest),
    /// Regenerate a person in a new pose.
    Repose(ReposeRequest),
    /// New pictures from a generator, one per seed from `seed` on (one candidate each).
    Sample {
        generator: SampleSource,
        seed: u64,
        count: usize,
    },
    /// Faces on the way from seed `from`'s face to seed `from + 1`'s.
    Interpolate { arch: Arch, from: u64, steps: usize },
}

impl Request {
    /// The same job with another seed.
    fn with_seed(&self, seed: u64) -> Self {
        let mut request = self.clone();
        match &mut request {
            Request::Edit(r) => r.sampling.seed = seed,
            Request::Repose(r) => r.sampling.seed = seed,
            Request::Sample { seed: s, .. } | Request::Interpolate { from: s, .. } => *s = seed,
        }
        request
    }

    fn seed(&self) -> u64 {
        match self {
            Request::Edit(r) => r.sampling.seed,
            Request::Repose(r) => r.sampling.seed,
            Request::Sample { seed, .. } | Request::Interpolate { from: seed, .. } => *seed,
        }
    }
}

/// What the worker is asked to do.
#[derive(Debug)]
pub enum Command {
    /// Run a job `candidates` times, with seeds from the request's on.
    Run {
        id: u64,
        request: Box<Request>,
        candidates: usize,
    },
    /// Find the faces in a picture (answered by [`Event::Faces`]).
    Faces { id: u64, image: RgbImage },
    /// Stop the thread.
    Shutdown,
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// The engine could not start (no model, no device); no job will run.
    Unavailable(String),
    /// The GPU failed during a job, which ran again on the CPU; every later job runs
    /// there too. Says what failed, once.
    FellBack(String),
    /// A token was generated.
    Token {
        id: u64,
        grid: TokenGrid,
        done: usize,
        total: usize,
    },
    /// The first candidate's picture with the tokens so far.
    Preview { id: u64, image: RgbImage },
    /// A grid of the first candidate's ImageBART refinement, decoded (for the
    /// trajectory strip).
    Stage {
        id: u64,
        cycle: usize,
        level: usize,
        image: RgbImage,
    },
    /// One candidate result (seed + `index`), as each is done.
    Candidate {
        id: u64,
        index: usize,
        image: RgbImage,
    },
    /// The job's result: the first candidate, once every candidate is done.
    Finished {
        id: u64,
        image: RgbImage,
        seconds: f64,
    },
    /// The faces of a [`Worker::find_faces`] job, best first.
    Faces { id: u64, faces: Vec<Face> },
    /// The job failed; the message says why.
    Failed { id: u64, error: String },
    /// The job was superseded before it finished (or before it started).
    Cancelled { id: u64 },
}

impl Event {
    /// The job the event belongs to, if any.
    pub fn job(&self) -> Option<u64> {
        match self {
            Event::Unavailable(_) | Event::FellBack(_) => None,
            Event::Token { id, .. }
            | Event::Preview { id, .. }
            | Event::Candidate { id, .. }
            | Event::Stage { id, .. }
            | Event::Finished { id, .. }
            | Event::Faces { id, .. }
            | Event::Failed { id, .. }
            | Event::Cancelled { id } => Some(*id),
        }
    }
}

/// A handle on the worker thread.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<Event>,
    latest: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// A worker over the models in `models` on `backend`. The face models load at
    /// once, on the worker, while the person looks at the picture, so the first edit
    /// neither waits for them nor takes the window's frames; a model that is missing
    /// is named when a job needs it.
    pub fn for_models(
        models: &std::path::Path,
        backend: crate::backend::BackendChoice,
        notify: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let models = models.to_path_buf();
        Self::spawn(
            move || {
                let started = Instant::now();
                let mut engine = Engine::new(&models, backend)?;
                if let Err(err) = engine.prepare(Method::Ilat, GuideKind::Sketch) {
                    tracing::warn!("the face models are not ready: {err}");
                }
                tracing::info!("engine ready in {:.1} s", started.elapsed().as_secs_f64());
                Ok(engine)
            },
            notify,
        )
    }

    /// Starts the thread; `open` builds the engine there (models load lazily), and
    /// `notify` is called after every event (the editor passes `request_repaint`).
    pub fn spawn(
        open: impl FnOnce() -> Result<Engine, EngineError> + Send + 'static,
        notify: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (commands, inbox) = mpsc::channel();
        let (outbox, events) = mpsc::channel();
        let latest = Arc::new(AtomicU64::new(0));
        let shared = Arc::clone(&latest);
        let thread = std::thread::Builder::new()
            .name("tessera-worker".into())
            .spawn(move || {
                let run = move || {
                    // When the editor has gone, nobody listens: the job ends unheard.
                    let send = |event: Event| {
                        if outbox.send(event).is_ok() {
                            notify();
                        }
                    };
                    match open() {
                        Ok(engine) => serve(engine, &inbox, &shared, &send),
                        Err(err) => send(Event::Unavailable(err.to_string())),
                    }
                };
                match model_pool() {
                    Ok(pool) => pool.install(run),
                    Err(err) => {
                        tracing::warn!(
                            "no separate thread pool for the models ({err}); sharing all cores"
                        );
                        run();
                    }
                }
            })?;
        Ok(Self {
            commands,
            events,
            latest,
            thread: Some(thread),
        })
    }

    /// Queues a job of `candidates` results (at least one) and returns its id; any
    /// earlier job is cancelled.
    pub fn submit(&self, request: Request, candidates: usize) -> u64 {
        self.queue(|id| Command::Run {
            id,
            request: Box::new(request),
            candidates: candidates.max(1),
        })
    }

    /// Queues a search for the faces in `image` and returns its id; any earlier job is
    /// cancelled (a new picture's faces make its old jobs moot).
    pub fn find_faces(&self, image: RgbImage) -> u64 {
        self.queue(|id| Command::Faces { id, image })
    }

    /// Sends the job `command(id)` under a new id, which cancels every earlier one.
    fn queue(&self, command: impl FnOnce(u64) -> Command) -> u64 {
        let id = self.latest.fetch_add(1, Ordering::SeqCst) + 1;
        if self.commands.send(command(id)).is_err() {
            tracing::warn!("the worker thread has stopped; job {id} will not run");
        }
        id
    }

    /// Cancels whatever runs or waits.
    pub fn cancel(&self) {
        self.latest.fetch_add(1, Ordering::SeqCst);
    }

    /// The events that arrived since the last call.
    pub fn events(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// Waits for the next event (for the command line and tests).
    pub fn next_event(&self, timeout: std::time::Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel();
        // A worker that already stopped needs no shutdown command.
        if self.commands.send(Command::Shutdown).is_ok()
            && let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the worker thread panicked");
        }
    }
}

/// The models' threads: every core but one, which stays with the window, so painting
/// and scrolling never wait for a job (on 2 cores the models get one).
fn model_pool() -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores.saturating_sub(1).max(1))
        .thread_name(|i| format!("tessera-model-{i}"))
        .build()
}

/// The thread's loop: take the newest job, run it while it is still the latest.
fn serve(mut engine: Engine, inbox: &Receiver<Command>, latest: &AtomicU64, send: &dyn Fn(Event)) {
    while let Ok(command) = inbox.recv() {
        let (id, request, candidates) = match command {
            Command::Run {
                id,
                request,
                candidates,
            } => (id, request, candidates),
            Command::Faces { id, image } => {
                send(faces(&mut engine, id, &image, latest));
                continue;
            }
            Command::Shutdown => return,
        };
        let start = Instant::now();
        let job = Job { id, latest, send };
        let mut outcome = candidate_results(&mut engine, &request, candidates, &job);
        if let Err(err @ (EngineError::Failed(_) | EngineError::Device(_))) = &outcome {
            let from = engine.backend().name.clone();
            if engine.fall_back_to_cpu() {
                send(Event::FellBack(format!(
                    "{from} failed ({err}); running on the CPU from now on"
                )));
                outcome = candidate_results(&mut engine, &request, candidates, &job);
            }
        }
        send(match outcome {
            Ok(Some(image)) => Event::Finished {
                id,
                image,
                seconds: start.elapsed().as_secs_f64(),
            },
            Err(EngineError::Cancelled) | Ok(None) => Event::Cancelled { id },
            Err(err) => Event::Failed {
                id,
                error: err.to_string(),
            },
        });
    }
}

/// The answer to a search for faces: none if a newer job has come since (the faces of
/// a picture no longer shown are moot); a panic becomes an error, as a job's does.
fn faces(engine: &mut Engine, id: u64, image: &RgbImage, latest: &AtomicU64) -> Event {
    if latest.load(Ordering::SeqCst) != id {
        return Event::Cancelled { id };
    }
    let found = catch_unwind(AssertUnwindSafe(|| engine.faces(image)))
        .unwrap_or_else(|panic| Err(EngineError::Failed(panic_message(&*panic))));
    match found {
        Ok(faces) => Event::Faces { id, faces },
        Err(err) => Event::Failed {
            id,
            error: err.to_string(),
        },
    }
}

/// The running job as its progress sees it: its id, the latest id, the events' way out.
struct Job<'a> {
    id: u64,
    latest: &'a AtomicU64,
    send: &'a dyn Fn(Event),
}

impl Job<'_> {
    /// Whether a newer job has been submitted.
    fn superseded(&self) -> bool {
        self.latest.load(Ordering::SeqCst) != self.id
    }
}

/// Runs a job's candidates and sends each as it is done; returns the first. An edit's
/// or a repose's candidates are made together; a sampling job's one after another
/// (seed + k each), since each already draws a batch of pictures.
fn candidate_results(
    engine: &mut Engine,
    request: &Request,
    candidates: usize,
    job: &Job,
) -> Result<Option<RgbImage>, EngineError> {
    let Job { id, send, .. } = *job;
    let rounds = match request {
        Request::Edit(_) | Request::Repose(_) => 1,
        Request::Sample { .. } | Request::Interpolate { .. } => candidates,
    };
    let mut first = None;
    let mut index = 0;
    for k in 0..rounds {
        if job.superseded() {
            return Err(EngineError::Cancelled);
        }
        let request = request.with_seed(request.seed().wrapping_add(k as u64));
        for image in run(engine, &request, candidates, job)? {
            first.get_or_insert_with(|| image.clone());
            send(Event::Candidate { id, index, image });
            index += 1;
        }
    }
    Ok(first)
}

/// Runs one round of a job (an edit's or a repose's `candidates` together, or one
/// sampling job: one picture per face), reporting its progress; a panic becomes an
/// error.
fn run(
    engine: &mut Engine,
    request: &Request,
    candidates: usize,
    job: &Job,
) -> Result<Vec<RgbImage>, EngineError> {
    let Job { id, send, .. } = *job;
    // A bug in a model must not take the editor down: the job fails, the next runs.
    catch_unwind(AssertUnwindSafe(|| {
        let mut progress = |progress| {
            if job.superseded() {
                return ControlFlow::Break(());
            }
            send(match progress {
                EditProgress::Token { grid, done, total } => Event::Token {
                    id,
                    grid,
                    done,
                    total,
                },
                EditProgress::Preview(image) => Event::Preview { id, image },
                EditProgress::Stage {
                    cycle,
                    level,
                    image,
                } => Event::Stage {
                    id,
                    cycle,
                    level,
                    image,
                },
            });
            ControlFlow::Continue(())
        };
        match request {
            Request::Edit(edit) => engine.edit_candidates(edit, candidates, &mut progress),
            Request::Repose(repose) => engine.repose_candidates(repose, candidates, &mut progress),
            Request::Sample {
                generator,
                seed,
                count,
            } => engine.sample(*generator, *seed, *count),
            Request::Interpolate { arch, from, steps } => {
                engine.interpolate(*arch, (*from, from.wrapping_add(1)), *steps)
            }
        }
    }))
    .unwrap_or_else(|panic| Err(EngineError::Failed(panic_message(&*panic))))
}

/// What a caught panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    format!("internal error (a bug; please report it): {text}")
}
