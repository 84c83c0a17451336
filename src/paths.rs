//! Where Tessera finds its data, models, runs and assets unless told otherwise: every
//! path of the data folder is named here and nowhere else.

use std::path::{Path, PathBuf};

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

/// The shipped samples (`assets/samples/`): `faces/` (held-out CelebA faces, 128x128),
/// `edit/` (a mask and a sketch for one of them), `people/`, `imagenet/`.
pub fn samples() -> PathBuf {
    assets().join("samples")
}

/// The sample faces.
pub fn sample_faces() -> PathBuf {
    samples().join("faces")
}

/// The hand-checked keypoints of the people's frames (`assets/poses/keypoints.json`).
pub fn pose_keypoints() -> PathBuf {
    assets().join("poses/keypoints.json")
}

/// The pieces of a data folder, as `scripts/fetch-data.sh` lays them out.
#[derive(Debug, Clone)]
pub struct Data {
    root: PathBuf,
}

impl Default for Data {
    /// The data folder of [`data_dir`].
    fn default() -> Self {
        Self::at(&data_dir())
    }
}

impl Data {
    /// The data folder at `root`.
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The training faces (CelebA).
    pub fn faces_train(&self) -> PathBuf {
        self.root.join(Self::FACES_TRAIN)
    }

    /// The held-out faces.
    pub fn faces_test(&self) -> PathBuf {
        self.root.join(Self::FACES_TEST)
    }

    /// The training and held-out faces at `side` pixels, where the data script makes
    /// them (64 and 128).
    pub fn faces_at(&self, side: usize) -> Option<(PathBuf, PathBuf)> {
        let (train, test) = match side {
            64 => (Self::FACES_TRAIN, Self::FACES_TEST),
            128 => (Self::FACES128_TRAIN, Self::FACES128_TEST),
            _ => return None,
        };
        Some((self.root.join(train), self.root.join(test)))
    }

    /// The Olivetti faces.
    pub fn olivetti(&self) -> PathBuf {
        self.root.join(Self::OLIVETTI)
    }

    /// The people's video frames, a folder per video.
    pub fn pose_frames(&self) -> PathBuf {
        self.root.join("poses/frames")
    }

    /// MobileNetV2's weights (the tokenizer's perceptual loss).
    pub fn mobilenet(&self) -> PathBuf {
        self.root.join("nets/mobilenet_v2.safetensors")
    }

    /// The FID InceptionV3's weights (FID and KID).
    pub fn inception(&self) -> PathBuf {
        self.root.join("nets/inception_v3_fid.safetensors")
    }

    /// The token models' caches of the training faces' tokens (see
    /// [`crate::training::TokenCache`]).
    pub fn token_caches(&self) -> PathBuf {
        self.root.join("token-cache")
    }

    /// Real photos with faces (`tessera eval photos`).
    pub fn photos(&self) -> PathBuf {
        self.root.join("photos")
    }

    /// The folders of pictures, relative to the root, that `tessera data check` counts.
    pub const FACES_TRAIN: &str = "faces/train";
    pub const FACES_TEST: &str = "faces/test";
    pub const FACES128_TRAIN: &str = "faces128/train";
    pub const FACES128_TEST: &str = "faces128/test";
    pub const OLIVETTI: &str = "olivetti";
}
