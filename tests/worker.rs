//! The background worker: the latest job wins, and a worker without models says so.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use burn::prelude::Device;
use image::{GrayImage, Luma};
use tessera::backend::BackendChoice;
use tessera::data::faces::load_folder;
use tessera::data::poses::Pose;
use tessera::engine::Sampling;
use tessera::engine::{DEFAULT_CYCLES, EditRequest, Engine, FaceChoice, Method, ReposeRequest};
use tessera::ilat::model::{GuideKind, IlatConfig};
use tessera::store;
use tessera::worker::{Event, Request, Worker};

/// An iLAT edit of `face` where `mask` is white, default sampling.
fn ilat_edit(face: image::RgbImage, mask: GrayImage) -> Request {
    Request::Edit(EditRequest {
        image: face,
        mask,
        sketch: None,
        method: Method::Ilat,
        sampling: Sampling::default(),
        cycles: DEFAULT_CYCLES,
        face: FaceChoice::Off,
    })
}

#[test]
fn a_burst_of_jobs_ends_with_the_last_ones_result_only() {
    let models = common::tiny_models("worker-burst");
    let worker = Worker::spawn(move || Engine::new(&models, BackendChoice::Cpu), || {})
        .expect("worker thread");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(0);
    let mask = GrayImage::from_fn(64, 64, |x, y| {
        Luma([if (16..48).contains(&x) && (20..40).contains(&y) {
            255
        } else {
            0
        }])
    });
    let ids: Vec<u64> = (0..300)
        .map(|seed| {
            let sampling = Sampling {
                seed,
                ..Sampling::default()
            };
            // Edits and reposes alternate; the last is a repose.
            let request = if seed % 2 == 0 {
                Request::Edit(EditRequest {
                    image: face.clone(),
                    mask: mask.clone(),
                    sketch: None,
                    method: Method::Ilat,
                    sampling,
                    cycles: DEFAULT_CYCLES,
                    face: FaceChoice::Off,
                })
            } else {
                Request::Repose(ReposeRequest {
                    image: face.clone(),
                    pose: Pose::standing(32.0, 60.0, 50.0),
                    new_pose: Pose::standing(30.0, 60.0, 45.0),
                    method: Method::Ilat,
                    sampling,
                })
            };
            worker.submit(request, 1)
        })
        .collect();
    let last = *ids.last().expect("ids");
    let mut ends: HashMap<u64, &'static str> = HashMap::new();
    let mut started = std::collections::HashSet::new();
    while ends.len() < ids.len() {
        let event = worker
            .next_event(Duration::from_secs(120))
            .expect("the worker answers every job");
        let end = match &event {
            Event::Finished { image, .. } => {
                assert_eq!(image.dimensions(), (64, 64));
                "finished"
            }
            Event::Cancelled { .. } => "cancelled",
            Event::Candidate { .. } | Event::Stage { .. } => continue,
            Event::Failed { error, .. } => panic!("job failed: {error}"),
            Event::Faces { .. } => panic!("no faces were asked for"),
            Event::Unavailable(why) | Event::FellBack(why) => panic!("no engine: {why}"),
            Event::Token { id, .. } | Event::Preview { id, .. } => {
                assert!(!ends.contains_key(id), "progress after the end of job {id}");
                started.insert(*id);
                continue;
            }
        };
        let id = event.job().expect("a job event");
        assert!(ends.insert(id, end).is_none(), "job {id} ended twice");
    }
    for id in &ids {
        let expected = if *id == last { "finished" } else { "cancelled" };
        assert_eq!(ends[id], expected, "job {id}");
    }
    // Superseded jobs are dropped unstarted: the queue does not run the storm.
    assert!(started.len() <= 3, "{} of 300 jobs ran", started.len());
}

#[test]
fn a_worker_without_models_says_why() {
    let empty = common::temp_dir("worker-empty");
    let worker = Worker::spawn(
        move || {
            let mut engine = Engine::new(&empty, BackendChoice::Cpu)?;
            engine.prepare(Method::Ilat, GuideKind::Sketch)?;
            Ok(engine)
        },
        || {},
    )
    .expect("worker thread");
    match worker.next_event(Duration::from_secs(30)) {
        Some(Event::Unavailable(why)) => assert!(why.contains("missing"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn a_job_of_three_candidates_reports_each_seed_then_the_first() {
    let models = common::tiny_models("worker-candidates");
    let worker = Worker::spawn(move || Engine::new(&models, BackendChoice::Cpu), || {})
        .expect("worker thread");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(0);
    let mask = GrayImage::from_fn(64, 64, |x, _| Luma([if x < 32 { 255 } else { 0 }]));
    worker.submit(ilat_edit(face, mask), 3);
    let mut candidates = Vec::new();
    loop {
        match worker.next_event(Duration::from_secs(120)) {
            Some(Event::Candidate { index, image, .. }) => candidates.push((index, image)),
            Some(Event::Finished { image, .. }) => {
                let indices: Vec<usize> = candidates.iter().map(|(i, _)| *i).collect();
                assert_eq!(indices, vec![0, 1, 2]);
                assert_eq!(image, candidates[0].1, "the result is the first candidate");
                assert_ne!(
                    candidates[0].1, candidates[1].1,
                    "other seeds, other results"
                );
                return;
            }
            Some(Event::Token { .. } | Event::Preview { .. } | Event::Stage { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_panic_inside_a_job_is_reported_and_the_next_job_runs() {
    let models = common::tiny_models("worker-panic");
    // A model the loader accepts but that fails inside: 4 heads do not divide a width
    // of 30, so the attention's reshape panics (a bug, as far as the worker knows).
    let broken = IlatConfig::new(64, 16)
        .with_d_model(30)
        .with_n_heads(4)
        .with_n_layers(1);
    store::save_model(&models, "ilat", &broken, broken.init(&Device::flex())).expect("save");
    let worker = Worker::spawn(move || Engine::new(&models, BackendChoice::Cpu), || {})
        .expect("worker thread");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(0);
    let mask = GrayImage::from_fn(64, 64, |x, _| Luma([if x < 32 { 255 } else { 0 }]));
    let edit = |method| {
        Request::Edit(EditRequest {
            image: face.clone(),
            mask: mask.clone(),
            sketch: None,
            method,
            sampling: Sampling::default(),
            cycles: DEFAULT_CYCLES,
            face: FaceChoice::Off,
        })
    };
    let end = |worker: &Worker| loop {
        match worker.next_event(Duration::from_secs(120)) {
            Some(
                Event::Token { .. }
                | Event::Preview { .. }
                | Event::Candidate { .. }
                | Event::Stage { .. },
            ) => {}
            other => return other,
        }
    };
    worker.submit(edit(Method::Ilat), 1);
    match end(&worker) {
        Some(Event::Failed { error, .. }) => assert!(error.contains("internal error"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    worker.submit(edit(Method::Taming), 1);
    assert!(matches!(end(&worker), Some(Event::Finished { .. })));
}

/// A GPU that fails during a job costs nothing: the job runs again on the CPU, the
/// worker says so once, and later jobs run there from the start. The failure is real:
/// an engine addressed to a GPU adapter that does not exist, as when a GPU goes away
/// after the engine chose it.
#[test]
fn a_failing_gpu_gives_way_to_the_cpu_once() {
    let models = common::tiny_models("worker-gpu-fails");
    let worker = Worker::spawn(
        move || {
            let missing = tessera::backend::Backend {
                device: Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(97)),
                name: "gpu: an adapter that is gone".into(),
                gpu: true,
            };
            Ok(Engine::on(&models, missing))
        },
        || {},
    )
    .expect("worker thread");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(0);
    let mask = GrayImage::from_fn(64, 64, |x, y| {
        Luma([if x > 40 && y > 40 { 255 } else { 0 }])
    });
    let edit = ilat_edit(face, mask);
    let mut notices = Vec::new();
    for _ in 0..2 {
        let id = worker.submit(edit.clone(), 2);
        loop {
            match worker.next_event(Duration::from_secs(300)) {
                Some(Event::FellBack(why)) => notices.push(why),
                Some(Event::Finished { id: done, .. }) if done == id => break,
                Some(Event::Failed { error, .. }) => panic!("the job failed: {error}"),
                Some(Event::Unavailable(why)) => panic!("no engine: {why}"),
                Some(_) => {}
                None => panic!("the worker went quiet"),
            }
        }
    }
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("CPU"), "{}", notices[0]);
}
