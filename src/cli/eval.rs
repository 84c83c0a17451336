//! `tessera eval …` and `tessera bench …`: each prints a table, or one JSON object
//! with `--json`.

use std::path::{Path, PathBuf};

use super::options::{BenchOpts, BenchWhat, EvalOpts, EvalTask};
use crate::backend::{self, BackendChoice};
use crate::engine::Engine;
use crate::ilat::model::IlatConfig;
use crate::paths::Data;
use crate::{bench as measure, evaluate, report};

/// `--images`, else the held-out faces at the side the tokenizer works at.
fn faces(images: Option<PathBuf>, data: &Data, engine: &mut Engine) -> anyhow::Result<PathBuf> {
    if let Some(dir) = images {
        return Ok(dir);
    }
    let side = engine.image_size()? as usize;
    match data.faces_at(side) {
        Some((_, test)) => Ok(test),
        None => anyhow::bail!("no held-out faces at {side}x{side} in the data: pass --images DIR"),
    }
}

/// The format of `eval vqgan --figure`'s file, checked before the evaluation runs.
fn figure_format(figure: Option<&Path>) -> anyhow::Result<Option<image::ImageFormat>> {
    figure
        .map(|path| super::output::output_format(path, std::iter::empty()))
        .transpose()
}

/// Writes the originals-above-reconstructions figure where `--figure` asked for it.
fn write_figure(
    evaluation: &evaluate::VqganEvaluation,
    to: Option<(&Path, image::ImageFormat)>,
) -> anyhow::Result<()> {
    match to {
        Some((path, format)) => {
            super::output::write_quietly(&evaluation.figure, path, format)?;
            tracing::info!("figure written to {}", path.display());
            Ok(())
        }
        None => Ok(()),
    }
}

/// Runs an evaluation.
pub fn run(opts: EvalOpts, models: &Path, backend: BackendChoice) -> anyhow::Result<()> {
    let data = Data::default();
    let mut engine = super::engine(models, backend)?;
    match opts.task {
        EvalTask::Vqgan {
            people: true,
            json,
            figure,
            ..
        } => {
            let format = figure_format(figure.as_deref())?;
            let evaluation = evaluate::vqgan_people(&mut engine, &data, &data.inception())?;
            write_figure(&evaluation, figure.as_deref().zip(format))?;
            report::emit(
                "TS-VQGAN reconstruction of held-out person crops",
                &evaluation.report,
                json,
            )
        }
        EvalTask::Vqgan {
            images,
            json,
            figure,
            ..
        } => {
            let format = figure_format(figure.as_deref())?;
            let images = faces(images, &data, &mut engine)?;
            let title = format!("TS-VQGAN reconstruction on {}", images.display());
            let evaluation = evaluate::vqgan(&mut engine, &images, &data.inception())?;
            write_figure(&evaluation, figure.as_deref().zip(format))?;
            report::emit(&title, &evaluation.report, json)
        }
        EvalTask::Edit {
            images,
            limit,
            json,
        } => {
            let images = faces(images, &data, &mut engine)?;
            let title = format!("Editing the masked region, faces of {}", images.display());
            report::emit(&title, &evaluate::edit(&mut engine, &images, limit)?, json)
        }
        EvalTask::Completion {
            images,
            limit,
            cycles,
            json,
        } => {
            let images = faces(images, &data, &mut engine)?;
            let report = evaluate::completion(&mut engine, &images, limit, cycles)?;
            report::emit("Upper-half completion of held-out faces", &report, json)
        }
        EvalTask::Hit { samples, json } => {
            let report = evaluate::hit(&mut engine, &data, samples)?;
            report::emit("Generated faces against real ones", &report, json)
        }
        EvalTask::Photos { images, out, json } => {
            let images = images.unwrap_or_else(|| data.photos());
            let report = evaluate::photos(&mut engine, &images, &out)?;
            let title = format!("Editing the faces of the photos in {}", images.display());
            report::emit(&title, &report, json)
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
        BenchWhat::Edit {
            runs,
            candidates,
            json,
        } => {
            let mut engine = super::engine(models, backend)?;
            let side = engine.image_size()?;
            let result = measure::edit(&mut engine, runs, candidates as usize)?;
            let title = format!("One {side}x{side} face edit, 10 % mask, {candidates} candidates");
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
