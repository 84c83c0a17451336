//! `tessera data check`: counts what `scripts/fetch-data.sh` produced and names
//! whatever is missing.

use std::path::Path;

use serde::Serialize;

use super::faces::list_images;

/// One expected piece of data.
#[derive(Debug, Clone, Serialize)]
pub struct Piece {
    /// Path relative to the data folder.
    pub path: String,
    /// Files found.
    pub found: usize,
    /// Files expected (at least).
    pub expected: usize,
}

/// What `scripts/fetch-data.sh` produces: image folders with their counts, and files.
const FOLDERS: [(&str, usize); 3] = [("faces/train", 900), ("faces/test", 99), ("olivetti", 400)];
const FILES: [&str; 2] = [
    "nets/mobilenet_v2.safetensors",
    "poses/frames/manifest.json",
];

/// Counts every expected piece under `data`.
pub fn check(data: &Path) -> Vec<Piece> {
    let folders = FOLDERS.iter().map(|&(path, expected)| Piece {
        path: path.into(),
        found: list_images(&data.join(path)).map_or(0, |files| files.len()),
        expected,
    });
    let files = FILES.iter().map(|&path| Piece {
        path: path.into(),
        found: usize::from(data.join(path).is_file()),
        expected: 1,
    });
    folders.chain(files).collect()
}
