//! Where Tessera finds its data and models unless told otherwise.

use std::path::PathBuf;

/// The data folder: `$TESSERA_DATA`, else `data/` in the source tree (where
/// `scripts/fetch-data.sh` puts it).
pub fn data_dir() -> PathBuf {
    std::env::var_os("TESSERA_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// The shipped models: `$TESSERA_MODELS`, else `models/` in the source tree.
pub fn models_dir() -> PathBuf {
    std::env::var_os("TESSERA_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// The training runs: `runs/` in the source tree.
pub fn runs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runs")
}

/// The shipped assets (`assets/`).
pub fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// The shipped samples (`assets/samples/`): `faces/` (held-out CelebA faces, 64x64),
/// `edit/` (a mask and a sketch for one of them), `people/`, `imagenet/`.
pub fn samples() -> PathBuf {
    assets().join("samples")
}

/// The sample faces.
pub fn sample_faces() -> PathBuf {
    samples().join("faces")
}
