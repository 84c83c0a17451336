//! Runs one command line: the application edge, where errors become messages.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::config::Config;

use crate::cli::{BenchWhat, Command, DataCommand, EvalModel, Opts, TrainModel, VqganTrainOpts};
use crate::engine::Engine;
use crate::vqgan::train::{VqganTrainingConfig, VqganTrainingPaths};
use crate::vqgan::{DiscriminatorConfig, VqganConfig};
use crate::{backend, bench, data, evaluate, paths, report};

/// Runs the command the options name.
pub fn run(opts: Opts) -> anyhow::Result<()> {
    let models = opts.models.clone().unwrap_or_else(paths::models_dir);
    match opts.command.unwrap_or(Command::Gui) {
        Command::Data(d) => match d.command {
            DataCommand::Check => data_check(),
        },
        Command::Train(t) => match t.model {
            TrainModel::Vqgan(v) => train_vqgan(v, models, opts.backend),
        },
        Command::Eval(e) => match e.model {
            EvalModel::Vqgan { images, json } => {
                let images = images.unwrap_or_else(|| paths::data_dir().join("faces/test"));
                let mut engine = Engine::new(&models, opts.backend)?;
                let report = evaluate::vqgan(&mut engine, &images)?;
                report::emit(
                    &format!("TS-VQGAN reconstruction on {}", images.display()),
                    &report,
                    json,
                )
            }
        },
        Command::Bench(b) => match b.what {
            BenchWhat::Step { repeat, json } => {
                let backend = backend::select(opts.backend)?;
                let result = bench::steps(&backend, repeat);
                report::emit("Training steps", &result, json)
            }
        },
        Command::Gui => bail!("the editor is not available yet: see `tessera --help` for what is"),
        Command::Edit | Command::Sample | Command::Repose => {
            bail!("this command is not available yet: see `tessera --help` for what is")
        }
    }
}

fn data_check() -> anyhow::Result<()> {
    let dir = paths::data_dir();
    let pieces = data::check::check(&dir);
    println!("data in {}", dir.display());
    println!("{:<36} {:>12} {:>12}", "piece", "found", "expected");
    for piece in &pieces {
        let mark = if piece.ok { "" } else { "  <- wrong" };
        println!(
            "{:<36} {:>12} {:>12}{mark}",
            piece.path, piece.found, piece.expected
        );
    }
    let bad: Vec<&str> = pieces
        .iter()
        .filter(|p| !p.ok)
        .map(|p| p.path.as_str())
        .collect();
    if !bad.is_empty() {
        bail!(
            "missing or damaged: {} (run scripts/fetch-data.sh)",
            bad.join(", ")
        );
    }
    Ok(())
}

fn train_vqgan(
    opts: VqganTrainOpts,
    models: PathBuf,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let mut config = match &opts.config {
        Some(path) => VqganTrainingConfig::load(path)
            .with_context(|| format!("reading {}", path.display()))?,
        None => VqganTrainingConfig::new(VqganConfig::new(), DiscriminatorConfig::new()),
    };
    if let Some(steps) = opts.steps {
        config.steps = steps;
    }
    if let Some(batch) = opts.batch {
        config.batch = batch;
    }
    let data = paths::data_dir();
    let train_paths = VqganTrainingPaths {
        train: data.join("faces/train"),
        test: data.join("faces/test"),
        mobilenet: data.join("nets/mobilenet_v2.safetensors"),
        run: opts.run.unwrap_or_else(|| paths::runs_dir().join("vqgan")),
        out: opts.out.unwrap_or(models),
        warm_start: opts.warm_start,
    };
    let backend = backend::select(choice)?;
    let psnr = crate::vqgan::train::train(&config, &train_paths, &backend.device.autodiff())?;
    println!(
        "trained; held-out PSNR {psnr:.2} dB; model written to {}",
        train_paths.out.display()
    );
    Ok(())
}
