//! Runs one command line: the application edge, where errors become messages.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::config::Config;

use crate::cli::{
    BenchWhat, Command, DataCommand, EditOpts, EvalModel, HitTrainOpts, ImagebartTrainOpts, Opts,
    ReposeOpts, SampleModel, SampleOpts, SketchInputArg, TrainCommon, TrainModel, TrainedMethod,
    VqganTrainOpts,
};
use crate::hit::train::{HitTrainingConfig, HitTrainingPaths};
use crate::hit::{Arch, SamplerConfig};
use crate::ilat::model::{Guidance, IlatConfig, SketchInput};
use crate::ilat::train::{IlatTrainingConfig, IlatTrainingPaths, Objective, TrainingData};
use crate::imagebart::model::ReverseConfig;
use crate::imagebart::train::{ImagebartTrainingConfig, ImagebartTrainingPaths};
use crate::training::Destination;
use std::ops::ControlFlow;

use crate::data::convert::{open_image, tile};
use crate::data::poses::Pose;
use crate::engine::{EditProgress, EditRequest, Engine, Generator, Method, ReposeRequest};
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
                let job = TokenJob::faces(Objective::LocalAr, "ilat", t.name);
                train_tokens(job, t.common, t.sketch_input, models, opts.backend)
            }
            TrainModel::Taming(t) => {
                let job = TokenJob::faces(Objective::Causal, "taming", t.name);
                train_tokens(job, t.common, t.sketch_input, models, opts.backend)
            }
            TrainModel::Pose(t) => {
                let job = TokenJob::people(t.method);
                train_tokens(job, t.common, None, models, opts.backend)
            }
            TrainModel::Imagebart(t) => train_imagebart(t, models, opts.backend),
            TrainModel::Hit(t) => train_hit(t, models, opts.backend),
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
            EvalModel::Completion {
                images,
                limit,
                cycles,
                json,
            } => {
                let images = images.unwrap_or_else(|| paths::data_dir().join("faces/test"));
                let mut engine = Engine::new(&models, opts.backend)?;
                let report = evaluate::completion(&mut engine, &images, limit, cycles)?;
                report::emit("Upper-half completion of held-out faces", &report, json)
            }
            EvalModel::Hit { samples, json } => {
                let mut engine = Engine::new(&models, opts.backend)?;
                let report = evaluate::hit(&mut engine, &paths::data_dir(), samples)?;
                report::emit("Generated faces against real ones", &report, json)
            }
            EvalModel::Pose { limit, json } => {
                let mut engine = Engine::new(&models, opts.backend)?;
                let report = evaluate::pose(&mut engine, &paths::data_dir(), limit)?;
                report::emit("Reposing held-out pairs of frames", &report, json)
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
        Command::Repose(r) => repose(r, &models, opts.backend),
        Command::Sample(s) => sample(s, &models, opts.backend),
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
        warm_start: opts.common.warm_start,
    };
    let backend = backend::select(choice)?;
    let psnr = crate::vqgan::train::train(&config, &train_paths, &backend.device.autodiff())?;
    println!(
        "trained; held-out PSNR {psnr:.2} dB; model written to {}",
        train_paths.out.display()
    );
    Ok(())
}

/// What a token-model training command trains: objective, guidance, data, name.
struct TokenJob {
    objective: Objective,
    verb: &'static str,
    name: String,
    data: TrainingData,
}

impl TokenJob {
    /// Sketch-guided, on the faces.
    fn faces(objective: Objective, verb: &'static str, name: Option<String>) -> Self {
        let data = paths::data_dir();
        Self {
            objective,
            verb,
            name: name.unwrap_or_else(|| verb.to_string()),
            data: TrainingData::Faces {
                train: data.join("faces/train"),
                test: data.join("faces/test"),
            },
        }
    }

    /// Pose-guided, on pairs of frames.
    fn people(method: TrainedMethod) -> Self {
        let (objective, method) = match method {
            TrainedMethod::Ilat => (Objective::LocalAr, Method::Ilat),
            TrainedMethod::Taming => (Objective::Causal, Method::Taming),
        };
        Self {
            objective,
            verb: "pose",
            name: method.model(Guidance::Pose).to_string(),
            data: TrainingData::People {
                frames: paths::data_dir().join("poses/frames"),
                keypoints: crate::data::poses::keypoints_path(),
            },
        }
    }
}

fn train_tokens(
    job: TokenJob,
    common: TrainCommon,
    sketch_input: Option<SketchInputArg>,
    models: PathBuf,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let TokenJob {
        objective,
        verb,
        name,
        data,
    } = job;
    let mut config = match &common.config {
        Some(path) => {
            IlatTrainingConfig::load(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => IlatTrainingConfig::new(IlatConfig::new(512, 16).with_guidance(data.guidance()))
            .with_objective(objective),
    };
    if config.objective != objective {
        bail!(
            "the configuration trains {:?}, but `train {verb}` here trains {objective:?}",
            config.objective
        );
    }
    let o = &mut config.optimization;
    overrides(&common, &mut o.steps, &mut o.batch);
    if let Some(input) = sketch_input {
        config.model.sketch = match input {
            SketchInputArg::Aligned => SketchInput::Aligned,
            SketchInputArg::Prepended => SketchInput::Prepended,
        };
    }
    let train_paths = IlatTrainingPaths {
        data,
        tokenizer: models.clone(),
        to: destination(common, &name, models),
    };
    let backend = backend::select(choice)?;
    let nll = crate::ilat::train::train(&config, &train_paths, &backend.device.autodiff())?;
    println!(
        "trained; held-out NLL {nll:.3}; model written to {}",
        train_paths.to.out.display()
    );
    Ok(())
}

fn train_imagebart(
    opts: ImagebartTrainOpts,
    models: PathBuf,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let out = opts.common.out.clone().unwrap_or_else(|| models.clone());
    let chain = crate::imagebart::chain_path(&out);
    let schedule = match chain.exists() {
        true => crate::imagebart::read_chain(&chain)?,
        false => crate::imagebart::default_chain(512),
    };
    let mut config = match &opts.common.config {
        Some(path) => ImagebartTrainingConfig::load(path)
            .with_context(|| format!("reading {}", path.display()))?,
        None => {
            let last = opts.step == schedule.steps();
            let model = ReverseConfig::new(512, 16).with_encoder_layers(if last { 0 } else { 3 });
            ImagebartTrainingConfig::new(model, schedule.clone(), opts.step)
        }
    };
    if config.schedule != schedule {
        bail!(
            "{} holds another chain than the configuration's; train every step with one chain",
            chain.display()
        );
    }
    config.step = opts.step;
    let o = &mut config.optimization;
    overrides(&opts.common, &mut o.steps, &mut o.batch);
    let name = crate::imagebart::step_name(opts.step);
    let data = paths::data_dir();
    let train_paths = ImagebartTrainingPaths {
        train: data.join("faces/train"),
        test: data.join("faces/test"),
        tokenizer: models.clone(),
        to: destination(opts.common, &name, out),
    };
    std::fs::create_dir_all(&train_paths.to.out)?;
    crate::imagebart::write_chain(&chain, &config.schedule)?;
    let backend = backend::select(choice)?;
    let nll = crate::imagebart::train::train(&config, &train_paths, &backend.device.autodiff())?;
    println!(
        "trained; held-out NLL {nll:.3}; model written to {}",
        train_paths.to.out.display()
    );
    Ok(())
}

fn train_hit(
    opts: HitTrainOpts,
    models: PathBuf,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let mut config = match &opts.common.config {
        Some(path) => {
            HitTrainingConfig::load(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => HitTrainingConfig::new(SamplerConfig::new(opts.arch)),
    };
    config.generator.arch = opts.arch;
    overrides(&opts.common, &mut config.steps, &mut config.batch);
    let name = opts.arch.name();
    let train_paths = HitTrainingPaths {
        train: paths::data_dir().join("faces/train"),
        to: destination(opts.common, name, models),
    };
    let backend = backend::select(choice)?;
    crate::hit::train::train(&config, &train_paths, &backend.device.autodiff())?;
    println!(
        "trained; generator written to {}",
        train_paths.to.out.display()
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
    let out = &opts.generate.out;
    let inputs = [Some(&opts.image), Some(&opts.mask), opts.sketch.as_ref()];
    let format = output_format(out, inputs.into_iter().flatten())?;
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
        method: opts.generate.method,
        sampling: opts.generate.sampling(),
        cycles: opts.cycles,
    };
    if !request.mask.pixels().any(|p| p.0[0] >= 128) {
        eprintln!("the mask is empty: nothing to regenerate; the picture is written unchanged");
        return write_output(&request.image, out, format);
    }
    if let Some(dir) = &opts.trajectory {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut failed = None;
    let (mut previous, mut last_result): (Option<image::RgbImage>, Option<image::RgbImage>) =
        (None, None);
    let mask = request.mask.clone();
    let result = engine.edit(&request, &mut |event| match (event, &opts.trajectory) {
        (
            EditProgress::Stage {
                cycle,
                level,
                image,
            },
            Some(dir),
        ) => {
            // How much the masked part moved since the last stage, and since the last
            // cycle's result: it settles as the refinement converges.
            let change = |before: &Option<image::RgbImage>| {
                before.as_ref().map_or(String::from("-"), |b| {
                    format!("{:.4}", crate::metrics::mae_masked(b, &image, &mask))
                })
            };
            let mut line = format!(
                "\rcycle {cycle} level {level}: mean change in the mask {} since the last stage",
                change(&previous)
            );
            if level == 0 {
                line += &format!(", {} since the last cycle's result", change(&last_result));
            }
            eprintln!("{line}");
            let path = dir.join(format!("cycle{cycle}-level{level}.png"));
            let saved = image.save(&path);
            if level == 0 {
                last_result = Some(image.clone());
            }
            previous = Some(image);
            match saved {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    failed = Some(format!("writing {}: {err}", path.display()));
                    ControlFlow::Break(())
                }
            }
        }
        (event, _) => token_counter(event),
    });
    eprintln!();
    if let Some(why) = failed {
        bail!(why);
    }
    write_output(&result?, out, format)
}

fn repose(
    opts: ReposeOpts,
    models: &std::path::Path,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let out = &opts.generate.out;
    let format = output_format(out, [&opts.image, &opts.pose, &opts.to].into_iter())?;
    let request = ReposeRequest {
        image: open_image(&opts.image)?.to_rgb8(),
        pose: Pose::read(&opts.pose)?,
        new_pose: Pose::read(&opts.to)?,
        method: opts.generate.method,
        sampling: opts.generate.sampling(),
    };
    let mut engine = Engine::new(models, choice)?;
    let result = engine.repose(&request, &mut token_counter)?;
    eprintln!();
    write_output(&result, out, format)
}

fn sample(
    opts: SampleOpts,
    models: &std::path::Path,
    choice: backend::BackendChoice,
) -> anyhow::Result<()> {
    let format = output_format(&opts.out, std::iter::empty())?;
    if opts.n == 0 {
        bail!("--n must be at least 1");
    }
    let generator = match opts.model {
        SampleModel::Imagebart => Generator::Imagebart,
        SampleModel::Hit => Generator::Gan(Arch::Hit),
        SampleModel::Conv => Generator::Gan(Arch::Conv),
    };
    if opts.interpolate_to.is_some() && generator.gan().is_none() {
        bail!("--interpolate-to needs a GAN (--model hit or conv): ImageBART has no latent space");
    }
    let mut engine = Engine::new(models, choice)?;
    let (pictures, columns) = match (generator, opts.interpolate_to) {
        (Generator::Gan(arch), Some(to)) => (
            engine.interpolate(arch, (opts.seed, to), opts.n)?,
            opts.n.max(2),
        ),
        (Generator::Imagebart, _) => (engine.sample_imagebart(opts.seed, opts.n, opts.top_k)?, 0),
        (gan, None) => (engine.sample(gan, opts.seed, opts.n)?, 0),
    };
    write_output(&tile(&pictures, columns), &opts.out, format)
}

/// Shows a job's token count on the terminal.
fn token_counter(event: EditProgress) -> ControlFlow<()> {
    if let EditProgress::Token { done, total, .. } = event {
        eprint!("\rtoken {done}/{total}");
    }
    ControlFlow::Continue(())
}

/// The format of an output path (PNG or JPEG), refusing a path that is one of the
/// inputs.
fn output_format<'a>(
    out: &std::path::Path,
    inputs: impl Iterator<Item = &'a PathBuf>,
) -> anyhow::Result<image::ImageFormat> {
    let format = image::ImageFormat::from_path(out)
        .ok()
        .filter(|f| matches!(f, image::ImageFormat::Png | image::ImageFormat::Jpeg))
        .with_context(|| {
            format!(
                "{}: the output must end in .png, .jpg or .jpeg",
                out.display()
            )
        })?;
    for input in inputs {
        if same_file(input, out) {
            bail!(
                "refusing to overwrite the input {} (choose another --out)",
                input.display()
            );
        }
    }
    Ok(format)
}

/// Writes a picture through a temporary file, so a failed write leaves no half file.
fn write_output(
    picture: &image::RgbImage,
    out: &std::path::Path,
    format: image::ImageFormat,
) -> anyhow::Result<()> {
    let tmp = out.with_extension(format!("tmp.{}", format.extensions_str()[0]));
    picture
        .save_with_format(&tmp, format)
        .and_then(|()| std::fs::rename(&tmp, out).map_err(image::ImageError::IoError))
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Whether two paths name the same file (the second may not exist yet).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The run folder (`--run`, else `runs/NAME`) and output folder (`--out`, else
/// `default_out`) of a token model.
fn destination(common: TrainCommon, name: &str, default_out: PathBuf) -> Destination {
    Destination {
        run: common.run.unwrap_or_else(|| paths::runs_dir().join(name)),
        out: common.out.unwrap_or(default_out),
        name: name.to_string(),
        warm_start: common.warm_start,
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
