//! The command line: options in [`options`], and one module per family of verbs, each
//! a thin layer over the engine, the evaluations or a trainer. Errors become the
//! messages a user reads here.

mod data;
mod eval;
mod faces;
mod generate;
mod halve;
pub mod options;
mod output;
mod train;
pub mod values;

use std::path::Path;

use crate::backend::BackendChoice;
use crate::engine::Engine;
use crate::paths;
use options::Command;
pub use options::Opts;

/// Runs the command the options name.
pub fn run(opts: Opts) -> anyhow::Result<()> {
    let models = opts.models.clone().unwrap_or_else(paths::models_dir);
    let backend = BackendChoice::from(opts.backend);
    match opts.command.unwrap_or(Command::Gui {
        image: None,
        demo: None,
    }) {
        Command::Data(d) => data::run(d),
        Command::Train(t) => train::run(t, models, backend),
        Command::Eval(e) => eval::run(e, &models, backend),
        Command::Bench(b) => eval::bench(b, &models, backend),
        Command::Faces(f) => faces::faces(f, &models, backend),
        Command::Halve => halve::halve(&models),
        Command::Edit(e) => generate::edit(e, &models, backend),
        Command::Repose(r) => generate::repose(r, &models, backend),
        Command::Sample(s) => generate::sample(s, &models, backend),
        Command::Gui { image, demo } => crate::editor::run(models, backend, image.as_deref(), demo),
    }
}

/// The engine over `models` on the chosen backend.
fn engine(models: &Path, backend: BackendChoice) -> anyhow::Result<Engine> {
    Ok(Engine::new(models, backend)?)
}
