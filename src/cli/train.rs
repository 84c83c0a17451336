//! `tessera train …`: builds each model's training configuration from the options
//! and hands it to the model's trainer (all of them go through the one training loop
//! of [`crate::training`]).

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::config::Config;

use super::options::{
    HitTrainOpts, ImagebartTrainOpts, TrainCommon, TrainModel, TrainOpts, VqganTrainOpts,
};
use super::values::{SketchInputArg, TrainedMethod};
use crate::backend::{self, BackendChoice};
use crate::engine::Method;
use crate::hit::discriminator::DiscriminatorConfig as HitDiscriminatorConfig;
use crate::hit::train::HitTrainingConfig;
use crate::hit::{Arch, GanGeneratorConfig};
use crate::ilat::model::{GuideKind, IlatConfig, SketchInput};
use crate::ilat::train::{IlatTrainingConfig, IlatTrainingPaths, Objective, TrainingData};
use crate::imagebart::model::ReverseConfig;
use crate::imagebart::train::{ImagebartTrainingConfig, ImagebartTrainingPaths};
use crate::paths::{self, Data};
use crate::training::{CachePlace, Destination, Logged, Schedule};
use crate::vqgan::train::{VqganTrainingConfig, VqganTrainingData};
use crate::vqgan::{self, DiscriminatorConfig, Vqgan, VqganConfig};

/// Runs a training verb.
pub fn run(opts: TrainOpts, models: PathBuf, backend: BackendChoice) -> anyhow::Result<()> {
    match opts.model {
        TrainModel::Vqgan(v) => vqgan(v, models, backend),
        TrainModel::Ilat(t) => {
            let job = TokenJob::faces(Objective::LocalAr, "ilat", t.name);
            tokens(job, t.common, t.sketch_input, models, backend)
        }
        TrainModel::Taming(t) => {
            let job = TokenJob::faces(Objective::Causal, "taming", t.name);
            tokens(job, t.common, t.sketch_input, models, backend)
        }
        TrainModel::Pose(t) => tokens(TokenJob::people(t.method), t.common, None, models, backend),
        TrainModel::Imagebart(t) => imagebart(t, models, backend),
        TrainModel::Hit(t) => hit(t, models, backend),
    }
}

/// The configuration in `--config`, or `default` when none is given.
fn config_or<C: Config>(common: &TrainCommon, default: impl FnOnce() -> C) -> anyhow::Result<C> {
    match &common.config {
        Some(path) => C::load(path).with_context(|| format!("reading {}", path.display())),
        None => Ok(default()),
    }
}

/// `--steps` and `--batch` over a training schedule.
fn override_schedule(common: &TrainCommon, schedule: &mut Schedule) {
    if let Some(steps) = common.steps {
        schedule.steps = steps;
    }
    if let Some(batch) = common.batch {
        schedule.batch = batch;
    }
}

/// The run folder (`--run`, else `runs/NAME`) and output folder (`--out`, else
/// `default_out`) of a model.
fn destination(common: TrainCommon, name: &str, default_out: PathBuf) -> Destination {
    Destination {
        run: common.run.unwrap_or_else(|| paths::runs_dir().join(name)),
        out: common.out.unwrap_or(default_out),
        name: name.to_string(),
        warm_start: common.warm_start,
        stop_at: common.stop_at,
        evaluate_only: common.evaluate,
    }
}

/// The models folder's tokenizer named `name`, which the token models are trained on
/// (frozen, so on the plain device), and its configuration (the default token models
/// take their codebook, grid and patch from it).
fn tokenizer(
    models: &std::path::Path,
    name: &str,
    device: &burn::prelude::Device,
) -> anyhow::Result<(Vqgan, VqganConfig)> {
    let loaded = Vqgan::load(models, name, device)?;
    tracing::info!("training on the tokens of {}", models.join(name).display());
    Ok(loaded)
}

/// Refuses to resume a run, or to start from a model, trained on another tokenizer's
/// tokens than `tokenizer`'s (the people's own tokenizer may appear in the models
/// folder half-way through a pose model's training).
fn same_tokens(to: &Destination, tokenizer: &str) -> anyhow::Result<()> {
    let earlier = match (to.run.join("config.json"), &to.warm_start) {
        (run, _) if run.exists() => Some(
            IlatTrainingConfig::load(&run)
                .with_context(|| format!("reading {}", run.display()))?
                .model,
        ),
        (_, Some(dir)) => {
            let path = dir.join(format!("{}.json", to.name));
            Some(IlatConfig::load(&path).with_context(|| format!("reading {}", path.display()))?)
        }
        (_, None) => None,
    };
    match earlier {
        Some(model) if model.tokenizer_name() != tokenizer => bail!(
            "{} was trained on the tokens of {}, the models folder's tokenizer for it is {tokenizer}: give the run another --run, or put that tokenizer back",
            to.name,
            model.tokenizer_name()
        ),
        _ => Ok(()),
    }
}

/// Where the training faces' tokens under the models folder's tokenizer `name` are
/// cached.
fn token_cache(models: &std::path::Path, name: &str) -> CachePlace {
    CachePlace {
        dir: Data::default().token_caches(),
        weights: models.join(format!("{name}.bpk")),
    }
}

/// Says how a finished run went.
fn report(evaluation: &Logged, to: &Destination) {
    if to.evaluate_only {
        // Every digit: the values are compared across precisions and snapshots.
        let values: Vec<String> = evaluation.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("evaluated, nothing trained; held-out {}", values.join(", "));
        return;
    }
    let values: Vec<String> = evaluation
        .iter()
        .map(|(key, value)| format!("{key} {value:.3}"))
        .collect();
    println!(
        "trained; held-out {}; model written to {}",
        if values.is_empty() {
            "evaluation: no step was left".to_string()
        } else {
            values.join(", ")
        },
        to.out.display()
    );
}

fn vqgan(opts: VqganTrainOpts, models: PathBuf, backend: BackendChoice) -> anyhow::Result<()> {
    let mut config = config_or(&opts.common, || {
        VqganTrainingConfig::new(VqganConfig::new(), DiscriminatorConfig::new())
    })?;
    override_schedule(&opts.common, &mut config.schedule);
    let data = Data::default();
    let side = config.model.image_size;
    let (train, test) = faces_at(side)?;
    let mobilenet = data.mobilenet();
    let name = opts.name.unwrap_or_else(|| vqgan::FACES.to_string());
    let to = destination(opts.common, &name, models);
    let device = backend::select(backend)?.device.autodiff();
    let (frames, keypoints) = (data.pose_frames(), paths::pose_keypoints());
    let sources = VqganTrainingData {
        train: &train,
        test: &test,
        mobilenet: &mobilenet,
        people: (&frames, &keypoints),
    };
    let evaluation = crate::vqgan::train::train(&config, &sources, &to, &device)?;
    report(&evaluation, &to);
    Ok(())
}

/// What a token-model training command trains: objective, data, name.
struct TokenJob {
    objective: Objective,
    verb: &'static str,
    name: String,
    data: TokenData,
}

/// Which data a token model trains on; the faces' folders follow the tokenizer's side.
enum TokenData {
    Faces,
    People,
}

impl TokenData {
    /// The guidance the model is built for.
    fn guidance(&self) -> GuideKind {
        match self {
            TokenData::Faces => GuideKind::Sketch,
            TokenData::People => GuideKind::Pose,
        }
    }

    /// The tokenizer in the models folder `models` whose tokens the model learns.
    fn tokenizer(&self, models: &std::path::Path) -> &'static str {
        match self {
            TokenData::Faces => vqgan::FACES,
            TokenData::People => vqgan::for_people(models),
        }
    }

    /// The folders, for a tokenizer working at `side`.
    fn folders(&self, side: usize) -> anyhow::Result<TrainingData> {
        Ok(match self {
            TokenData::Faces => {
                let (train, test) = faces_at(side)?;
                TrainingData::Faces { train, test }
            }
            TokenData::People => TrainingData::People {
                frames: Data::default().pose_frames(),
                keypoints: paths::pose_keypoints(),
            },
        })
    }
}

/// The training and held-out faces at `side`.
fn faces_at(side: usize) -> anyhow::Result<(PathBuf, PathBuf)> {
    match Data::default().faces_at(side) {
        Some(folders) => Ok(folders),
        None => bail!("no faces at {side}x{side} in the data (64 or 128)"),
    }
}

impl TokenJob {
    /// Sketch-guided, on the faces.
    fn faces(objective: Objective, verb: &'static str, name: Option<String>) -> Self {
        Self {
            objective,
            verb,
            name: name.unwrap_or_else(|| verb.to_string()),
            data: TokenData::Faces,
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
            name: method.model_name(GuideKind::Pose).to_string(),
            data: TokenData::People,
        }
    }
}

fn tokens(
    job: TokenJob,
    common: TrainCommon,
    sketch_input: Option<SketchInputArg>,
    models: PathBuf,
    backend: BackendChoice,
) -> anyhow::Result<()> {
    let TokenJob {
        objective,
        verb,
        name,
        data,
    } = job;
    let tokenizer_name = data.tokenizer(&models);
    let device = backend::select(backend)?.device;
    let (tokenizer, tokens) = tokenizer(&models, tokenizer_name, &device)?;
    let mut config = config_or(&common, || {
        let model = IlatConfig::new(tokens.codebook_size, tokens.grid())
            .with_patch(tokens.factor())
            .with_guidance(data.guidance());
        IlatTrainingConfig::new(model).with_objective(objective)
    })?;
    if config.objective != objective {
        bail!(
            "the configuration trains {:?}, but `train {verb}` here trains {objective:?}",
            config.objective
        );
    }
    override_schedule(&common, &mut config.schedule);
    if let Some(input) = sketch_input {
        config.model.sketch = match input {
            SketchInputArg::Aligned => SketchInput::Aligned,
            SketchInputArg::Prepended => SketchInput::Prepended,
        };
    }
    config.model.tokenizer = (tokenizer_name != vqgan::FACES).then(|| tokenizer_name.to_string());
    let paths = IlatTrainingPaths {
        data: data.folders(tokens.image_size)?,
        token_cache: Some(token_cache(&models, tokenizer_name)),
        to: destination(common, &name, models),
    };
    same_tokens(&paths.to, tokenizer_name)?;
    let evaluation = crate::ilat::train::train(&config, &paths, &tokenizer, &device.autodiff())?;
    report(&evaluation, &paths.to);
    Ok(())
}

fn imagebart(
    opts: ImagebartTrainOpts,
    models: PathBuf,
    backend: BackendChoice,
) -> anyhow::Result<()> {
    let device = backend::select(backend)?.device;
    let (tokenizer, tokens) = tokenizer(&models, vqgan::FACES, &device)?;
    let out = opts.common.out.clone().unwrap_or_else(|| models.clone());
    let chain_path = crate::imagebart::chain_path(&out);
    let chain = match chain_path.exists() {
        true => crate::imagebart::read_chain(&chain_path)?,
        false => crate::imagebart::default_chain(tokens.codebook_size),
    };
    let mut config = config_or(&opts.common, || {
        let last = opts.step == chain.steps();
        let model = ReverseConfig::new(tokens.codebook_size, tokens.grid())
            .with_encoder_layers(if last { 0 } else { 3 });
        ImagebartTrainingConfig::new(model, chain.clone(), opts.step)
    })?;
    if config.chain != chain {
        bail!(
            "{} holds another chain than the configuration's; train every step with one chain",
            chain_path.display()
        );
    }
    config.step = opts.step;
    override_schedule(&opts.common, &mut config.schedule);
    let name = crate::imagebart::step_name(opts.step);
    let (train, test) = faces_at(tokens.image_size)?;
    let paths = ImagebartTrainingPaths {
        train,
        test,
        token_cache: Some(token_cache(&models, vqgan::FACES)),
        to: destination(opts.common, &name, out),
    };
    std::fs::create_dir_all(&paths.to.out)?;
    crate::imagebart::write_chain(&chain_path, &config.chain)?;
    let device = device.autodiff();
    let evaluation = crate::imagebart::train::train(&config, &paths, &tokenizer, &device)?;
    report(&evaluation, &paths.to);
    Ok(())
}

fn hit(opts: HitTrainOpts, models: PathBuf, backend: BackendChoice) -> anyhow::Result<()> {
    let arch = Arch::from(opts.arch);
    let side = opts.size.pixels();
    let mut config = config_or(&opts.common, || {
        HitTrainingConfig::new(GanGeneratorConfig::at(arch, side))
            .with_discriminator(HitDiscriminatorConfig::at(side))
    })?;
    config.generator.arch = arch;
    override_schedule(&opts.common, &mut config.schedule);
    let (faces, _) = faces_at(config.generator.side())?;
    let to = destination(opts.common, arch.name(), models);
    let device = backend::select(backend)?.device.autodiff();
    let grow_from = opts.grow_from.as_deref();
    let evaluation = crate::hit::train::train(&config, &faces, grow_from, &to, &device)?;
    report(&evaluation, &to);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pose run on the faces' tokens is not continued on the people's.
    #[test]
    fn a_run_goes_on_only_on_the_tokens_it_was_trained_on() {
        let root = std::env::temp_dir().join(format!("tessera-same-tokens-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let to = |warm_start| Destination {
            run: root.join("run"),
            out: root.join("out"),
            name: "pose-ilat".into(),
            warm_start,
            stop_at: None,
            evaluate_only: false,
        };
        assert!(same_tokens(&to(None), vqgan::PEOPLE).is_ok(), "a new run");
        let model = IlatConfig::new(512, 16).with_guidance(GuideKind::Pose);
        std::fs::create_dir_all(root.join("warm")).expect("dir");
        model
            .save(root.join("warm/pose-ilat.json"))
            .expect("a model's configuration");
        let warm = to(Some(root.join("warm")));
        assert!(same_tokens(&warm, vqgan::FACES).is_ok());
        let err = same_tokens(&warm, vqgan::PEOPLE).expect_err("another tokenizer");
        assert!(err.to_string().contains("people-vqgan"), "{err}");
        std::fs::create_dir_all(root.join("run")).expect("dir");
        let on_people = IlatTrainingConfig::new(model.with_tokenizer(Some(vqgan::PEOPLE.into())));
        crate::training::save_config(&on_people, &root.join("run")).expect("a run's configuration");
        assert!(
            same_tokens(&warm, vqgan::PEOPLE).is_ok(),
            "the run's own decides"
        );
        assert!(same_tokens(&to(None), vqgan::FACES).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
