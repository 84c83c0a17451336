//! The values flags take: clap's stand-ins for the core types (methods, backends,
//! generators), which know nothing of clap, and the choices that exist only on the
//! command line.

use clap::ValueEnum;

use crate::backend::BackendChoice;
use crate::engine::{Arch, Method, SampleSource};

/// `--backend`: see [`BackendChoice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// A hardware GPU if there is one, else the CPU.
    Auto,
    /// burn-flex on the CPU.
    Cpu,
    /// burn-wgpu on any adapter, software ones (lavapipe) included.
    Gpu,
    /// burn-ndarray, for the backend comparison only (feature `bench-ndarray`).
    #[cfg(feature = "bench-ndarray")]
    Ndarray,
}

impl From<BackendArg> for BackendChoice {
    fn from(arg: BackendArg) -> Self {
        match arg {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Cpu => BackendChoice::Cpu,
            BackendArg::Gpu => BackendChoice::Gpu,
            #[cfg(feature = "bench-ndarray")]
            BackendArg::Ndarray => BackendChoice::Ndarray,
        }
    }
}

/// `--size`: the side of the pictures a model is trained at (the data holds faces at
/// these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SideArg {
    #[value(name = "64")]
    Px64,
    #[value(name = "128")]
    Px128,
}

impl SideArg {
    /// The side in pixels.
    pub fn pixels(self) -> usize {
        match self {
            SideArg::Px64 => 64,
            SideArg::Px128 => 128,
        }
    }
}

/// `--method`: see [`Method`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// iLAT: only the masked tokens, each seeing every kept token (model `ilat`).
    Ilat,
    /// The Taming baseline: every token from the first masked one on, causally.
    Taming,
    /// The Taming model run with iLAT's mask and order ("Taming*").
    TamingStar,
    /// ImageBART: the masked tokens diffused and denoised by the reverse chain.
    Imagebart,
}

impl From<MethodArg> for Method {
    fn from(arg: MethodArg) -> Self {
        match arg {
            MethodArg::Ilat => Method::Ilat,
            MethodArg::Taming => Method::Taming,
            MethodArg::TamingStar => Method::TamingStar,
            MethodArg::Imagebart => Method::Imagebart,
        }
    }
}

/// `--arch`: see [`Arch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// The transformer of HiT's Algorithm 1.
    Hit,
    /// The convolutional baseline.
    Conv,
}

impl From<ArchArg> for Arch {
    fn from(arg: ArchArg) -> Self {
        match arg {
            ArchArg::Hit => Arch::Hit,
            ArchArg::Conv => Arch::Conv,
        }
    }
}

impl From<SampleModel> for SampleSource {
    fn from(model: SampleModel) -> Self {
        match model {
            SampleModel::Imagebart => SampleSource::Imagebart,
            SampleModel::Hit => SampleSource::Gan(Arch::Hit),
            SampleModel::Conv => SampleSource::Gan(Arch::Conv),
        }
    }
}

/// Generators `tessera sample` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SampleModel {
    /// ImageBART's whole reverse chain from noise.
    Imagebart,
    /// The HiT generator.
    Hit,
    /// The convolutional baseline generator.
    Conv,
}

/// The two ways a token model is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainedMethod {
    /// iLAT.
    Ilat,
    /// The Taming baseline.
    Taming,
}

/// `--sketch-input`: see [`crate::ilat::model::SketchInput`].
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SketchInputArg {
    /// Sketch patch embedding added at each token's own position (sequence N).
    Aligned,
    /// Sketch patches prepended as condition rows (sequence 2N), as in the paper.
    Prepended,
}
