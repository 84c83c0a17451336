//! The engine's models, each read from the models folder the first time a call needs
//! it and kept: one lazy cache, one rule for every kind of model.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use super::EngineError;
use crate::faces::FaceLocator;
use crate::hit::{Arch, GanGenerator, GanGeneratorConfig};
use crate::ilat::model::{GuideKind, Ilat};
use crate::imagebart::{self, model::Reverse, schedule::Schedule};
use crate::store::{self, StoreError};
use crate::vqgan::{self, Vqgan, VqganConfig};

/// The face locator's file name in the models folder.
pub const LOCATOR: &str = "face-locator";

/// ImageBART's chain and its reverse steps (`steps[t − 1]`: step `t`).
pub(super) struct Chain {
    pub schedule: Schedule,
    pub steps: Vec<Reverse>,
}

/// A GAN generator, the size of its latent code and the side of its pictures.
pub(super) struct Gan {
    pub generator: GanGenerator,
    pub latent: usize,
    pub side: usize,
}

/// A token model, the kind of guidance it was trained with and the file name of the
/// tokenizer whose tokens it models.
pub(super) struct TokenModel {
    pub model: Ilat,
    pub guidance: GuideKind,
    pub tokenizer: String,
}

/// Models loaded from one folder onto one device.
pub(super) struct ModelCache {
    dir: PathBuf,
    device: Device,
    tokenizers: Vec<(String, (Vqgan, VqganConfig))>,
    token_models: Vec<(&'static str, TokenModel)>,
    chain: Vec<((), Chain)>,
    gans: Vec<(Arch, Gan)>,
    locator: Vec<((), FaceLocator)>,
}

/// The entry under `key`, loaded by `load` the first time it is asked for.
fn cached<K: PartialEq, V>(
    entries: &mut Vec<(K, V)>,
    key: K,
    load: impl FnOnce() -> Result<V, EngineError>,
) -> Result<&V, EngineError> {
    let at = match entries.iter().position(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            entries.push((key, load()?));
            entries.len() - 1
        }
    };
    Ok(&entries[at].1)
}

impl ModelCache {
    /// Nothing loaded yet.
    pub fn new(dir: &Path, device: Device) -> Self {
        Self {
            dir: dir.to_path_buf(),
            device,
            tokenizers: Vec::new(),
            token_models: Vec::new(),
            chain: Vec::new(),
            gans: Vec::new(),
            locator: Vec::new(),
        }
    }

    /// The folder models are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The faces' tokenizer and its configuration.
    pub fn tokenizer(&mut self) -> Result<&(Vqgan, VqganConfig), EngineError> {
        self.tokenizer_named(vqgan::FACES)
    }

    /// A tokenizer by its file name, and its configuration.
    pub fn tokenizer_named(&mut self, name: &str) -> Result<&(Vqgan, VqganConfig), EngineError> {
        let (dir, device) = (&self.dir, &self.device);
        cached(&mut self.tokenizers, name.to_string(), || {
            let loaded = Vqgan::load(dir, name, device)?;
            tracing::info!("loaded the tokenizer {name} from {}", dir.display());
            Ok(loaded)
        })
    }

    /// A token model by its file name, checked against the tokenizer it was trained
    /// on.
    pub fn token_model(&mut self, name: &'static str) -> Result<&TokenModel, EngineError> {
        let at = match self.token_models.iter().position(|(k, _)| *k == name) {
            Some(at) => at,
            None => {
                let (model, config) = Ilat::load(&self.dir, name, &self.device)?;
                let side = self.tokenizer()?.1.image_size;
                let tokenizer_name = config.tokenizer_name().to_string();
                let tokenizer = self.tokenizer_named(&tokenizer_name)?.1.clone();
                let mismatch = |reason: String| {
                    EngineError::Model(StoreError::Mismatch {
                        weights: self.dir.join(format!("{name}.bpk")),
                        config: self.dir.join(format!("{tokenizer_name}.json")),
                        reason,
                    })
                };
                if config.vocab != tokenizer.codebook_size
                    || config.grid != tokenizer.grid()
                    || config.patch != tokenizer.factor()
                {
                    return Err(mismatch(
                        "the token model was trained on another tokenizer".into(),
                    ));
                }
                if tokenizer.image_size != side {
                    return Err(mismatch(format!(
                        "the tokenizer works at {0}x{0}, the faces' at {side}x{side}",
                        tokenizer.image_size
                    )));
                }
                let entry = TokenModel {
                    model,
                    guidance: config.guidance,
                    tokenizer: tokenizer_name,
                };
                self.token_models.push((name, entry));
                self.token_models.len() - 1
            }
        };
        Ok(&self.token_models[at].1)
    }

    /// ImageBART's chain; every step must fit the tokenizer.
    pub fn chain(&mut self) -> Result<&Chain, EngineError> {
        let tokenizer = self.tokenizer()?.1.clone();
        let (dir, device) = (&self.dir, &self.device);
        cached(&mut self.chain, (), || {
            let path = imagebart::chain_path(dir);
            let schedule = imagebart::read_chain(&path)?;
            let codes = tokenizer.codebook_size;
            let mut steps = Vec::new();
            for t in 1..=schedule.steps() {
                let name = imagebart::step_name(t);
                let (model, config) = Reverse::load(dir, &name, device)?;
                if config.vocab != codes
                    || config.grid != tokenizer.grid()
                    || schedule.codes != codes
                {
                    return Err(EngineError::Model(StoreError::Mismatch {
                        weights: dir.join(format!("{name}.bpk")),
                        config: path.clone(),
                        reason: "the chain was trained on another tokenizer".into(),
                    }));
                }
                steps.push(model);
            }
            Ok(Chain { schedule, steps })
        })
    }

    /// The face locator (`face-locator.json` with its `.safetensors`).
    pub fn locator(&mut self) -> Result<&FaceLocator, EngineError> {
        let (dir, device) = (&self.dir, &self.device);
        cached(&mut self.locator, (), || {
            let json = dir.join(format!("{LOCATOR}.json"));
            FaceLocator::load(&json, &json.with_extension("safetensors"), device)
                .map_err(EngineError::Locator)
        })
    }

    /// A GAN generator (`hit` or `conv`).
    pub fn gan(&mut self, arch: Arch) -> Result<&Gan, EngineError> {
        let (dir, device) = (&self.dir, &self.device);
        cached(&mut self.gans, arch, || {
            let (generator, config) = store::load_model(
                dir,
                arch.name(),
                device,
                |config: &GanGeneratorConfig, device| config.init(device),
            )?;
            Ok(Gan {
                generator,
                latent: config.latent(),
                side: config.side(),
            })
        })
    }
}
