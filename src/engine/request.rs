//! What callers ask of the engine and what it reports back: plain images, masks,
//! poses and settings, never tensors.

use image::{GrayImage, RgbImage};

use crate::data::poses::Pose;
use crate::faces::Face;
use crate::hit::Arch;
use crate::ilat::model::GuideKind;
use crate::ilat::sample::Order;
use crate::tokens::Sampling;

/// How the masked part is regenerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Method {
    /// iLAT: only the masked tokens, each seeing every kept token (model `ilat`).
    Ilat,
    /// The Taming baseline: every token from the first masked one on, causally (model
    /// `taming`).
    Taming,
    /// The Taming model run with iLAT's mask and order ("Taming*").
    TamingStar,
    /// ImageBART: the masked tokens diffused and denoised by the reverse chain, for
    /// `cycles` rounds (models `imagebart-step1…T`, unguided).
    Imagebart,
}

impl Method {
    /// The file name of the model it runs for `kind` of guidance: `ilat`/`taming` for
    /// sketches (faces), `pose-ilat`/`pose-taming` for poses (people). (ImageBART's
    /// chain has several files; its first step is named.)
    pub fn model_name(self, kind: GuideKind) -> &'static str {
        match (self, kind) {
            (Method::Ilat, GuideKind::Sketch) => "ilat",
            (Method::Taming | Method::TamingStar, GuideKind::Sketch) => "taming",
            (Method::Ilat, GuideKind::Pose) => "pose-ilat",
            (Method::Taming | Method::TamingStar, GuideKind::Pose) => "pose-taming",
            (Method::Imagebart, _) => "imagebart-step1",
        }
    }

    /// The order its tokens are generated in.
    pub(super) fn order(self) -> Order {
        match self {
            Method::Ilat | Method::TamingStar | Method::Imagebart => Order::Local,
            Method::Taming => Order::Full,
        }
    }

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ilat => "ilat",
            Method::Taming => "taming",
            Method::TamingStar => "taming-star",
            Method::Imagebart => "imagebart",
        }
    }
}

/// One edit: regenerate `image` where `mask` is white.
#[derive(Debug, Clone)]
pub struct EditRequest {
    /// The picture, any size.
    pub image: RgbImage,
    /// Same size; pixels ≥ 128 are regenerated.
    pub mask: GrayImage,
    /// Optional strokes (dark on white, same size) guiding the regenerated part; only
    /// strokes inside the mask count, outside it the picture's own sketch is used.
    pub sketch: Option<GrayImage>,
    /// Which model and order.
    pub method: Method,
    /// Top-k, temperature, seed.
    pub sampling: Sampling,
    /// Refinement cycles of ImageBART (the other methods ignore it).
    pub cycles: usize,
    /// Which face the models' crop is aligned to.
    pub face: FaceChoice,
}

/// Which face an edit's crop is aligned to. When the mask does not lie inside that
/// face's aligned crop, the edit works on the square around the mask instead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaceChoice {
    /// The located face under the mask, if there is one (the engine runs the face
    /// locator).
    Auto,
    /// This face (the editor's, with any points the user moved).
    Given(Face),
    /// No face: the square around the mask.
    Off,
}

/// One repose: the person standing in `pose` in `image` is regenerated standing in
/// `new_pose`; the union of both skeletons is the regenerated part.
#[derive(Debug, Clone)]
pub struct ReposeRequest {
    /// The picture, any size.
    pub image: RgbImage,
    /// Where the person's joints are now, in the picture's pixels.
    pub pose: Pose,
    /// Where they should be.
    pub new_pose: Pose,
    /// Which model and order.
    pub method: Method,
    /// Top-k, temperature, seed.
    pub sampling: Sampling,
}

/// What an edit reports while it runs.
#[derive(Debug, Clone)]
pub enum EditProgress {
    /// A token was generated (one for every candidate): the first candidate's grid so
    /// far, how many of how many are done.
    Token {
        grid: TokenGrid,
        done: usize,
        total: usize,
    },
    /// The first candidate's picture as it would look with the tokens so far (the
    /// first preview right after the pass over the known tokens).
    Preview(RgbImage),
    /// A grid of the first candidate's ImageBART refinement (every one, for the
    /// trajectory): which cycle, which chain level (`T` just diffused, 0 denoised),
    /// and the picture with it.
    Stage {
        cycle: usize,
        level: usize,
        image: RgbImage,
    },
}

/// What the Sample tool draws new pictures from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleSource {
    /// A GAN generator: HiT or its convolutional baseline.
    Gan(Arch),
    /// ImageBART's whole reverse chain from noise (the token-model gallery).
    Imagebart,
}

impl SampleSource {
    /// Every source, in the order the editor lists them.
    pub const ALL: [SampleSource; 3] = [
        SampleSource::Gan(Arch::Hit),
        SampleSource::Gan(Arch::Conv),
        SampleSource::Imagebart,
    ];

    /// Its name (the model's, for the GANs).
    pub fn name(self) -> &'static str {
        match self {
            SampleSource::Gan(arch) => arch.name(),
            SampleSource::Imagebart => "imagebart",
        }
    }

    /// The GAN behind it: only a GAN has a latent space to interpolate in.
    pub fn gan(self) -> Option<Arch> {
        match self {
            SampleSource::Gan(arch) => Some(arch),
            SampleSource::Imagebart => None,
        }
    }
}

/// ImageBART's refinement cycles unless asked otherwise (the trade-off of quality
/// against time is measured in models/README.md).
pub const DEFAULT_CYCLES: usize = 6;

/// A grid of codebook indices, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrid {
    /// Side of the grid.
    pub side: usize,
    /// `side * side` indices.
    pub indices: Vec<usize>,
}
