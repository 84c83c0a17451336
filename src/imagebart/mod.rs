//! ImageBART (Esser et al. 2021): multinomial diffusion over token grids, reversed by
//! a short chain of transformers; its masked forward-backward process refines an edit
//! step by step (App. A.3).

pub mod model;
pub mod sample;
pub mod schedule;
pub mod train;

use std::path::{Path, PathBuf};

use schedule::Schedule;

/// Steps in the default chain. Two, at this scale: each step is a model to train
/// and an edit runs every step once per cycle, so a third step would cost half again
/// in both for a finer hierarchy.
pub const DEFAULT_STEPS: usize = 2;

/// The default chain over `codes` codes: `ᾱ_t` falls linearly to 0, so `x_T` is
/// uniform noise and the last step is decoder-only (§3.3).
pub fn default_chain(codes: usize) -> Schedule {
    Schedule::linear_keep(DEFAULT_STEPS, codes, 0.0)
}

/// The models folder's chain file.
pub fn chain_path(models: &Path) -> PathBuf {
    models.join("imagebart-chain.json")
}

/// The model name of reverse step `t`.
pub fn step_name(t: usize) -> String {
    format!("imagebart-step{t}")
}

/// Reads a chain file.
pub fn read_chain(path: &Path) -> Result<Schedule, crate::store::StoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|_| crate::store::StoreError::Missing(path.to_path_buf()))?;
    serde_json::from_str(&text).map_err(|e| crate::store::StoreError::Damaged {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes a chain file.
pub fn write_chain(path: &Path, schedule: &Schedule) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(schedule).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}
