//! Model files: a config (`NAME.json`) beside its weights (`NAME.bpk`, burn's pack
//! format). Every failure names the file and says what to do, so a missing or
//! damaged model is a message, never a panic.

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::module::Module;
use burn::prelude::Device;
use burn::store::ModuleRecord;

/// Why a model could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is not there.
    #[error("model file {} is missing (run `scripts/fetch-data.sh` and `tessera train …`, or pass --models DIR)", .0.display())]
    Missing(PathBuf),
    /// The file is there but cannot be parsed (truncated, corrupt, wrong format).
    #[error("model file {} is damaged: {reason} (restore the shipped one with `git checkout -- models/`, or retrain it with `tessera train …`)", path.display())]
    Damaged { path: PathBuf, reason: String },
    /// The weights do not fit the architecture its config describes.
    #[error("model file {} does not match its config {}: {reason} (restore both from the same version, or retrain)", weights.display(), config.display())]
    Mismatch {
        weights: PathBuf,
        config: PathBuf,
        reason: String,
    },
    /// Writing failed.
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

/// The config and weights paths of model `name` in `dir`.
pub fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.json")),
        dir.join(format!("{name}.bpk")),
    )
}

/// Loads a config and builds the module it describes with the stored weights.
pub fn load_model<C, M, F>(
    dir: &Path,
    name: &str,
    device: &Device,
    build: F,
) -> Result<(M, C), StoreError>
where
    C: Config,
    M: Module,
    F: FnOnce(&C, &Device) -> M,
{
    let (config_path, weights_path) = paths(dir, name);
    let config = load_config::<C>(&config_path)?;
    let record = load_record(&weights_path)?;
    let module = build(&config, device)
        .try_load_record(record)
        .map_err(|err| StoreError::Mismatch {
            weights: weights_path,
            config: config_path,
            reason: err.to_string(),
        })?;
    Ok((module, config))
}

/// Loads stored weights into a module built from the same config.
pub fn load_weights<M: Module>(module: M, path: &Path) -> Result<M, StoreError> {
    module
        .try_load_record(load_record(path)?)
        .map_err(|err| StoreError::Mismatch {
            weights: path.to_path_buf(),
            config: path.with_file_name("config.json"),
            reason: err.to_string(),
        })
}

/// Reads an optimiser's moments.
pub fn load_optimizer(path: &Path) -> Result<burn::optim::OptimizerRecord, StoreError> {
    burn::optim::OptimizerRecord::load(path).map_err(|err| StoreError::Damaged {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

/// Writes an optimiser's moments.
pub fn save_optimizer(optim: &burn::optim::ModuleOptimizer, path: &Path) -> Result<(), StoreError> {
    optim
        .to_record()
        .save(path)
        .map_err(|err| write_error(path, err))
}

/// Reads a JSON config.
pub fn load_config<C: Config>(path: &Path) -> Result<C, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    C::load(path).map_err(|err| StoreError::Damaged {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

/// Reads a weights file; weights stored in half precision are cast to the module's
/// (full) precision as they load.
pub fn load_record(path: &Path) -> Result<ModuleRecord, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    ModuleRecord::load(path)
        .map(ModuleRecord::cast_to_module_dtype)
        .map_err(|err| StoreError::Damaged {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })
}

/// Writes config and weights, each through a temporary file renamed into place, so a
/// crash mid-write never leaves a half-written model behind. The weights are stored in
/// half precision ([`halve`]): what a model is shipped and warm-started from.
/// Checkpoints (optimiser moments, [`save_record`]) keep full precision.
pub fn save_model<C: Config, M: Module>(
    dir: &Path,
    name: &str,
    config: &C,
    module: M,
) -> Result<(), StoreError> {
    let (config_path, weights_path) = paths(dir, name);
    std::fs::create_dir_all(dir).map_err(|err| write_error(dir, err))?;
    let config_tmp = config_path.with_extension("json.tmp");
    config
        .save(&config_tmp)
        .map_err(|err| write_error(&config_tmp, err))?;
    save_record(&weights_path, module.into_record())?;
    halve(&weights_path)?;
    std::fs::rename(&config_tmp, &config_path).map_err(|err| write_error(&config_path, err))
}

/// Rewrites a weights file with every 32-bit float tensor in 16 bits;
/// returns its sizes before and after. Half precision costs the models nothing
/// measurable (models/README.md) and halves what every model refresh adds to the
/// repository.
pub fn halve(path: &Path) -> Result<(u64, u64), StoreError> {
    let damaged = |err: burn_pack::Error| StoreError::Damaged {
        path: path.to_path_buf(),
        reason: err.to_string(),
    };
    let before = std::fs::metadata(path)
        .map_err(|_| StoreError::Missing(path.to_path_buf()))?
        .len();
    let tensors = burn_pack::Reader::from_file(path)
        .and_then(burn_pack::Reader::into_tensors)
        .map_err(damaged)?;
    let mut halved = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let (name, dtype, shape, id, bytes) = tensor.into_parts().map_err(damaged)?;
        halved.push(if dtype == burn_pack::DType::F32 {
            let half: Vec<u8> = bytes
                .chunks_exact(4)
                .flat_map(|b| {
                    half::f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes()
                })
                .collect();
            let bytes = burn_pack::Bytes::from_bytes_vec(half);
            burn_pack::Tensor::new(name, burn_pack::DType::F16, shape, id, bytes)
        } else {
            burn_pack::Tensor::new(name, dtype, shape, id, bytes)
        });
    }
    // The writer replaces the file atomically (a scratch file, then a rename).
    burn_pack::Writer::new(halved)
        .write_to_file(path)
        .map_err(|err| write_error(path, err))?;
    let after = std::fs::metadata(path).map_or(0, |m| m.len());
    Ok((before, after))
}

/// Writes a record atomically (temporary file, then rename).
pub fn save_record(path: &Path, record: ModuleRecord) -> Result<(), StoreError> {
    let tmp = path.with_extension("bpk.tmp");
    record.save(&tmp).map_err(|err| write_error(&tmp, err))?;
    std::fs::rename(&tmp, path).map_err(|err| write_error(path, err))
}

fn write_error(path: &Path, err: impl std::fmt::Display) -> StoreError {
    StoreError::Write {
        path: path.to_path_buf(),
        reason: err.to_string(),
    }
}
