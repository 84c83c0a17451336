//! `tessera eval …` and `tessera bench …`: each prints a table, or one JSON object
//! with `--json`.

use std::path::Path;

use super::options::{BenchOpts, BenchWhat, EvalOpts, EvalTask};
use crate::backend::{self, BackendChoice};
use crate::ilat::model::IlatConfig;
use crate::paths::Data;
use crate::{bench as measure, evaluate, report};

/// Runs an evaluation.
pub fn run(opts: EvalOpts, models: &Path, backend: BackendChoice) -> anyhow::Result<()> {
    let data = Data::default();
    let mut engine = super::engine(models, backend)?;
    let faces = |images: Option<std::path::PathBuf>| images.unwrap_or_else(|| data.faces_test());
    match opts.task {
        EvalTask::Vqgan { images, json } => {
            let images = faces(images);
            let title = format!("TS-VQGAN reconstruction on {}", images.display());
            report::emit(&title, &evaluate::vqgan(&mut engine, &images)?, json)
        }
        EvalTask::Edit {
            images,
            limit,
            json,
        } => {
            let images = faces(images);
            let title = format!("Editing the masked region, faces of {}", images.display());
            report::emit(&title, &evaluate::edit(&mut engine, &images, limit)?, json)
        }
        EvalTask::Completion {
            images,
            limit,
            cycles,
            json,
        } => {
            let report = evaluate::completion(&mut engine, &faces(images), limit, cycles)?;
            report::emit("Upper-half completion of held-out faces", &report, json)
        }
        EvalTask::Hit { samples, json } => {
            let report = evaluate::hit(&mut engine, &data, samples)?;
            report::emit("Generated faces against real ones", &report, json)
        }
        EvalTask::Pose { limit, json } => {
            let report = evaluate::pose(&mut engine, &data, limit)?;
            report::emit("Reposing held-out pairs of frames", &report, json)
        }
    }
}

/// Runs a benchmark.
pub fn bench(opts: BenchOpts, models: &Path, backend: BackendChoice) -> anyhow::Result<()> {
    match opts.what {
        BenchWhat::Throughput { repeat, json } => {
            let backend = backend::select(backend)?;
            let result = measure::throughput(&backend, &shipped_ilat(models)?, repeat);
            report::emit("Throughput", &result, json)
        }
        BenchWhat::LocalAr { repeat, json } => {
            let backend = backend::select(backend)?;
            let result = measure::local_ar(&backend, &shipped_ilat(models)?, repeat);
            report::emit("Local against full autoregression", &result, json)
        }
        BenchWhat::Edit { runs, json } => {
            let mut engine = super::engine(models, backend)?;
            let side = engine.image_size()?;
            let result = measure::edit(&mut engine, runs)?;
            let title = format!("One {side}x{side} face edit, 10 % mask");
            report::emit(&title, &result, json)
        }
    }
}

/// The iLAT configuration in the models folder, or the default one when none is there.
fn shipped_ilat(models: &Path) -> anyhow::Result<IlatConfig> {
    let path = models.join("ilat.json");
    if path.exists() {
        Ok(crate::store::load_config(&path)?)
    } else {
        Ok(IlatConfig::new(512, 16))
    }
}
