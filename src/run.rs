//! Runs one command line: the application edge, where errors become messages.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::config::Config;

use crate::cli::{
    BenchWhat, Command, DataCommand, EditOpts, EvalModel, Opts, SketchInputArg, TokenTrainOpts,
    TrainCommon, TrainModel, VqganTrainOpts,
};
use crate::ilat::model::{IlatConfig, SketchInput};
use crate::ilat::train::{IlatTrainingConfig, IlatTrainingPaths, Objective};
use std::ops::ControlFlow;

use crate::data::convert::open_image;
use crate::engine::{EditProgress, EditRequest, Engine};
use crate::ilat::sample::Sampling;
use crate::vqgan::train::{VqganTrainingConfig, VqganTrainingPaths};
use crate::vqgan::{DiscriminatorConfig, VqganConfig};
use crate::{backend, bench, data, evaluate, paths, report};

/// Runs the command the options name.
pub fn run(opts: Opts) -> anyhow::Result<()> {
    let models = opts.models.clone().unwrap_or_else(paths::models_dir);
    match opts.command.unwrap_or(Command::Gui {
        image: None,
        demo: None,
    }) {
        Command::Data(d) => match d.command {
            DataCommand::Check => data_check(),
        },
        Command::Train(t) => match t.model {
            TrainModel::Vqgan(v) => train_vqgan(v, models, opts.backend),
            TrainModel::Ilat(t) => {
                train_tokens(t, Objective::LocalAr, "ilat", models, opts.backend)
            }
            TrainModel::Taming(t) => {
                train_tokens(t, Objective::Causal, "taming", models, opts.backend)
            }
        },
        Command::Edit(e) => edit(e, &models, opts.backend),
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
            EvalModel::Edit {
                images,
                limit,
                json,
            } => {
                let images = images.unwrap_or_else(|| paths::data_dir().join("faces/test"));
                let mut engine = Engine::new(&models, opts.backend)?;
                let report = evaluate::edit(&mut engine, &images, limit)?;
                report::emit(
                    &format!("Editing the masked region, faces of {}", images.display()),
                    &report,
                    json,
                )
            }
        },
        Command::Bench(b) => match b.what {
            BenchWhat::Throughput { repeat, json } => {
                let backend = backend::select(opts.backend)?;
                let result = bench::throughput(&backend, &shipped_ilat(&models)?, repeat);
                report::emit("Throughput", &result, json)
            }
            BenchWhat::LocalAr { repeat, json } => {
                let backend = backend::select(opts.backend)?;
                let result = bench::local_ar(&backend, &shipped_ilat(&models)?, repeat);
                report::emit("Local against full autoregression", &result, json)
            }
            BenchWhat::Edit { runs, json } => {
                let mut engine = Engine::new(&models, opts.backend)?;
                let result = bench::edit(&mut engine, runs)?;
                report::emit("One 64x64 face edit, 10 % mask", &result, json)
            }
        },
        Command::Gui { image, demo } => {
            crate::editor::run(models, opts.backend, image.as_deref(), demo)
        }
        Command::Sample | Command::Repose => {
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
    let mut config = match &opts.common.config {
        Some(path) => VqganTrainingConfig::load(path)
            .with_context(|| format!("reading {}", path.display()))?,
        None => VqganTrainingConfig::new(VqganConfig::new(), DiscriminatorConfig::new()),
    };
    overrides(&opts.common, &mut config.steps, &mut config.batch);
    let data = paths::data_dir();
    let train_paths = VqganTrainingPaths {
        train: data.join("faces/train"),
        test: data.join("faces/test"),
        mobilenet: data.join("nets/mobilenet_v2.safetensors"),
        run: opts
            .common
            .run
            .unwrap_or_else(|| paths::runs_dir().join("vqgan")),
        out: opts.common.out.unwrap_or(models),
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

fn train_tokens(
    opts: TokenTrainOpts,
    objective: Objective,
    verb: &str,
    models: PathBuf,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let mut config = match &opts.common.config {
        Some(path) => {
            IlatTrainingConfig::load(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => IlatTrainingConfig::new(IlatConfig::new(512, 16)).with_objective(objective),
    };
    if config.objective != objective {
        bail!(
            "the configuration trains {:?}, but `train {verb}` trains {objective:?}",
            config.objective
        );
    }
    overrides(&opts.common, &mut config.steps, &mut config.batch);
    if let Some(input) = opts.sketch_input {
        config.model.sketch = match input {
            SketchInputArg::Aligned => SketchInput::Aligned,
            SketchInputArg::Prepended => SketchInput::Prepended,
        };
    }
    let name = opts.name.unwrap_or_else(|| verb.to_string());
    let data = paths::data_dir();
    let train_paths = IlatTrainingPaths {
        train: data.join("faces/train"),
        test: data.join("faces/test"),
        tokenizer: models.clone(),
        run: opts
            .common
            .run
            .unwrap_or_else(|| paths::runs_dir().join(&name)),
        out: opts.common.out.unwrap_or(models),
        name,
    };
    let backend = backend::select(choice)?;
    let nll = crate::ilat::train::train(&config, &train_paths, &backend.device.autodiff())?;
    println!(
        "trained; held-out NLL {nll:.3}; model written to {}",
        train_paths.out.display()
    );
    Ok(())
}

/// The iLAT configuration in the models folder, or the default one when none is there.
fn shipped_ilat(models: &std::path::Path) -> anyhow::Result<IlatConfig> {
    let path = models.join("ilat.json");
    if path.exists() {
        Ok(crate::store::load_config(&path)?)
    } else {
        Ok(IlatConfig::new(512, 16))
    }
}

fn edit(
    opts: EditOpts,
    models: &std::path::Path,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let format = image::ImageFormat::from_path(&opts.out)
        .ok()
        .filter(|f| matches!(f, image::ImageFormat::Png | image::ImageFormat::Jpeg))
        .with_context(|| {
            format!(
                "{}: the output must end in .png, .jpg or .jpeg",
                opts.out.display()
            )
        })?;
    for input in [Some(&opts.image), Some(&opts.mask), opts.sketch.as_ref()]
        .into_iter()
        .flatten()
    {
        if same_file(input, &opts.out) {
            bail!(
                "refusing to overwrite the input {} (choose another --out)",
                input.display()
            );
        }
    }
    let image = open_image(&opts.image)?.to_rgb8();
    let mask = open_image(&opts.mask)?.to_luma8();
    let sketch = match &opts.sketch {
        Some(path) => Some(open_image(path)?.to_luma8()),
        None => None,
    };
    let mut engine = Engine::new(models, choice)?;
    let request = EditRequest {
        image,
        mask,
        sketch,
        method: opts.method,
        sampling: Sampling {
            top_k: opts.top_k,
            temperature: opts.temperature,
            seed: opts.seed,
        },
    };
    let result = engine.edit(&request, &mut |event| {
        if let EditProgress::Token { done, total, .. } = event {
            eprint!("\rtoken {done}/{total}");
        }
        ControlFlow::Continue(())
    })?;
    eprintln!();
    let tmp = opts
        .out
        .with_extension(format!("tmp.{}", format.extensions_str()[0]));
    result
        .save_with_format(&tmp, format)
        .and_then(|()| std::fs::rename(&tmp, &opts.out).map_err(image::ImageError::IoError))
        .with_context(|| format!("writing {}", opts.out.display()))?;
    println!("wrote {}", opts.out.display());
    Ok(())
}

/// Whether two paths name the same file (the second may not exist yet).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `--steps` and `--batch` over a training configuration's values.
fn overrides(common: &TrainCommon, steps: &mut usize, batch: &mut usize) {
    if let Some(value) = common.steps {
        *steps = value;
    }
    if let Some(value) = common.batch {
        *batch = value;
    }
}
