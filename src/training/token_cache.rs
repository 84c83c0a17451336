//! The clean token grids of every augmented training face under one tokenizer, made
//! once and kept on disk. The token models' trainers tokenise the same faces in the
//! same 50 augmentations (a flip or not, shifts of up to ±2 px) for tens of thousands
//! of steps, with a frozen tokenizer: at 128 px that encoding was a third of an iLAT
//! step and most of a Taming or ImageBART step. A cache is made for one tokenizer's
//! weights and configuration and one set of faces (all hashed into its file name) and
//! is read back by every later run on them; anything else makes a new one. The grids
//! are those of a batch of 16: the encoder's sums may round differently in another
//! batch, which can move a code at a near-tie, never the picture's content.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};

use super::TrainError;
use crate::data::convert::images_to_tensor;
use crate::data::faces::Augmentation;
use crate::tokens::Tokenizer;

/// First bytes of a cache file.
const MAGIC: &[u8; 8] = b"TSTOKC1\n";

/// Part of every cache's key: raise it when what a cached grid means changes without
/// the tokenizer's files changing (how a picture is augmented or tokenised), so the
/// old caches are no longer read.
const VERSION: u32 = 1;

/// Faces tokenised in one call while the cache is made.
const CHUNK: usize = 16;

/// Where caches are kept and the tokenizer weights a run's cache is made with.
#[derive(Debug, Clone)]
pub struct CachePlace {
    /// The folder of the caches (`data/token-cache/`).
    pub dir: PathBuf,
    /// The tokenizer's weights file.
    pub weights: PathBuf,
}

impl CachePlace {
    /// The cache of `faces` under `tokenizer` kept here ([`TokenCache::open`]).
    pub fn open(
        &self,
        faces: &[RgbImage],
        max_shift: i32,
        tokenizer: &impl Tokenizer,
    ) -> Result<TokenCache, TrainError> {
        TokenCache::open(&self.dir, &self.weights, faces, max_shift, tokenizer)
    }
}

/// Token grids of `faces` × `variants` augmentations, `tokens` each.
pub struct TokenCache {
    tokens: usize,
    max_shift: i32,
    variants: usize,
    grids: Vec<u16>,
}

impl TokenCache {
    /// The cache of `faces` in every augmentation with shifts up to `max_shift` under
    /// `tokenizer`, whose weights are the file `weights`: read from `dir` when it was
    /// made before, else made (with a progress bar) and written there.
    pub fn open(
        dir: &Path,
        weights: &Path,
        faces: &[RgbImage],
        max_shift: i32,
        tokenizer: &impl Tokenizer,
    ) -> Result<Self, TrainError> {
        let key = key(weights, faces, max_shift)?;
        let path = dir.join(format!("faces-{key:016x}.tokens"));
        let variants = Augmentation::all(max_shift).len();
        if path.exists() {
            let (tokens, grids) = read(&path, faces.len() * variants)?;
            tracing::info!("clean tokens of the training faces from {}", path.display());
            return Ok(Self {
                tokens,
                max_shift,
                variants,
                grids,
            });
        }
        let cache = Self::make(faces, max_shift, tokenizer, &path)?;
        cache.write(dir, &path)?;
        Ok(cache)
    }

    /// Tokenises every face in every augmentation (for the file `path`).
    fn make(
        faces: &[RgbImage],
        max_shift: i32,
        tokenizer: &impl Tokenizer,
        path: &Path,
    ) -> Result<Self, TrainError> {
        let augmentations = Augmentation::all(max_shift);
        let pictures: Vec<(usize, Augmentation)> = (0..faces.len())
            .flat_map(|f| augmentations.iter().map(move |&a| (f, a)))
            .collect();
        let bar = ProgressBar::new(pictures.len() as u64).with_style(
            ProgressStyle::with_template(
                "tokenising the training faces once {bar:30} {pos}/{len} {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let device = tokenizer.device();
        let mut grids = Vec::new();
        for chunk in pictures.chunks(CHUNK) {
            let images: Vec<RgbImage> = chunk.iter().map(|(f, a)| a.apply(&faces[*f])).collect();
            let ids = tokenizer
                .tokenize(images_to_tensor(&images, &device), None)
                .try_into_vec_as::<i64>()?;
            for id in ids {
                grids.push(u16::try_from(id).map_err(|_| TrainError::Cache {
                    path: path.to_path_buf(),
                    reason: format!("token id {id} does not fit the cache's 16 bits"),
                })?);
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let tokens = grids.len() / pictures.len().max(1);
        Ok(Self {
            tokens,
            max_shift,
            variants: augmentations.len(),
            grids,
        })
    }

    /// The clean token grid of face `face` (in the order the cache was made with) in
    /// `augmentation`.
    pub fn grid(&self, face: usize, augmentation: Augmentation) -> &[u16] {
        let at = (face * self.variants + augmentation.index(self.max_shift)) * self.tokens;
        &self.grids[at..at + self.tokens]
    }

    /// Writes the cache to `path` in `dir` (through a temporary file, so a run stopped
    /// half-way leaves no truncated cache behind).
    fn write(&self, dir: &Path, path: &Path) -> Result<(), TrainError> {
        let failed = |reason: std::io::Error| TrainError::Cache {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        let mut bytes = Vec::with_capacity(16 + 2 * self.grids.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.tokens as u64).to_le_bytes());
        bytes.extend(self.grids.iter().flat_map(|id| id.to_le_bytes()));
        let mut file = std::fs::File::create(&partial).map_err(failed)?;
        file.write_all(&bytes).map_err(failed)?;
        std::fs::rename(&partial, path).map_err(failed)?;
        tracing::info!(
            "clean tokens of the training faces kept in {}",
            path.display()
        );
        Ok(())
    }
}

/// Reads a cache file holding `grids` token grids: tokens per grid, and the grids.
fn read(path: &Path, grids: usize) -> Result<(usize, Vec<u16>), TrainError> {
    let damaged = |reason: String| TrainError::Cache {
        path: path.to_path_buf(),
        reason: format!("{reason}; delete it and it is made anew"),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| damaged(e.to_string()))?;
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(damaged("not a token cache".into()));
    }
    let tokens = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()) as usize;
    let body = &bytes[16..];
    if body.len() != 2 * grids * tokens || tokens == 0 {
        return Err(damaged(format!(
            "{} bytes of tokens for {grids} grids of {tokens}",
            body.len()
        )));
    }
    let ids = body
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok((tokens, ids))
}

/// FNV-1a over what the cache depends on: the tokenizer's weights and configuration
/// (`NAME.bpk` and `NAME.json`), the faces, the shift and [`VERSION`].
fn key(weights: &Path, faces: &[RgbImage], max_shift: i32) -> Result<u64, TrainError> {
    let mut hash = Fnv::default();
    hash.write(&VERSION.to_le_bytes());
    for file in [weights.to_path_buf(), weights.with_extension("json")] {
        let bytes = std::fs::read(&file).map_err(|e| TrainError::Cache {
            path: file.clone(),
            reason: format!("reading the tokenizer: {e}"),
        })?;
        hash.write(&bytes);
    }
    for face in faces {
        hash.write(&face.width().to_le_bytes());
        hash.write(&face.height().to_le_bytes());
        hash.write(face.as_raw());
    }
    hash.write(&max_shift.to_le_bytes());
    Ok(hash.0)
}

/// The 64-bit FNV-1a hash.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vqgan::VqganConfig;
    use burn::prelude::*;

    #[test]
    fn a_cached_grid_is_the_grid_of_the_augmented_face_and_is_read_back() {
        let device = Device::flex();
        device.seed(3);
        let config = VqganConfig::tiny(16);
        let tokenizer = config.init(&device);
        let dir = std::env::temp_dir().join(format!("tessera-token-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::store::save_model(&dir, "vqgan", &config, tokenizer.clone()).expect("save");
        let weights = dir.join("vqgan.bpk");
        let faces: Vec<RgbImage> = (0..3)
            .map(|i| {
                RgbImage::from_fn(16, 16, |x, y| {
                    image::Rgb([x as u8 * 15, y as u8 * 9, i * 80])
                })
            })
            .collect();
        let made = TokenCache::open(&dir, &weights, &faces, 1, &tokenizer).expect("made");
        let files = || std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(files(), 3, "weights, config and the cache");
        let read = TokenCache::open(&dir, &weights, &faces, 1, &tokenizer).expect("read");
        assert_eq!(files(), 3, "read back, not made again");
        for (face, a) in [
            (
                0,
                Augmentation {
                    flip: true,
                    dx: -1,
                    dy: 1,
                },
            ),
            (
                2,
                Augmentation {
                    flip: false,
                    dx: 0,
                    dy: 0,
                },
            ),
        ] {
            let alone = tokenizer
                .tokenize(images_to_tensor(&[a.apply(&faces[face])], &device), None)
                .try_into_vec_as::<i64>()
                .expect("ids");
            let alone: Vec<u16> = alone.into_iter().map(|id| id as u16).collect();
            assert_eq!(made.grid(face, a), alone.as_slice());
            assert_eq!(read.grid(face, a), alone.as_slice());
        }
        // Other faces are another cache; a damaged file is named, not trusted.
        TokenCache::open(&dir, &weights, &faces[..2], 1, &tokenizer).expect("another");
        assert_eq!(files(), 4);
        let path = dir.join(format!(
            "faces-{:016x}.tokens",
            key(&weights, &faces, 1).expect("key")
        ));
        std::fs::write(&path, b"TSTOKC1\n\x04\0\0\0\0\0\0\0\x01").expect("damage");
        let err = TokenCache::open(&dir, &weights, &faces, 1, &tokenizer)
            .err()
            .expect("damaged");
        assert!(err.to_string().contains("delete it"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
