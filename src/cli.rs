//! Command-line options (clap derive). `main` validates nothing itself: each verb's
//! options are handed to the code that runs it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::BackendChoice;

/// Tessera: regenerate only the masked part of a picture, with small generative models.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Opts {
    /// Folder of trained models (default: the shipped `models/`).
    #[arg(long, global = true, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Compute backend: a hardware GPU if present, else the CPU (auto); or force one.
    #[arg(long, global = true, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// What to do (default: open the editor).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the editor.
    Gui,
    /// Check the fetched data.
    Data(DataOpts),
    /// Train a model.
    Train(TrainOpts),
    /// Evaluate a model on held-out data.
    Eval(EvalOpts),
    /// Regenerate the masked part of an image.
    Edit,
    /// Sample new images.
    Sample,
    /// Repose a person by moving skeleton joints.
    Repose,
    /// Measure speed.
    Bench(BenchOpts),
}

/// `tessera data …`
#[derive(Debug, Args)]
pub struct DataOpts {
    #[command(subcommand)]
    pub command: DataCommand,
}

/// Data verbs.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Count the images of each split and name whatever is missing.
    Check,
}

/// `tessera train …`
#[derive(Debug, Args)]
pub struct TrainOpts {
    #[command(subcommand)]
    pub model: TrainModel,
}

/// Trainable models.
#[derive(Debug, Subcommand)]
pub enum TrainModel {
    /// The TS-VQGAN tokenizer, on `data/faces`.
    Vqgan(VqganTrainOpts),
}

/// Options of `tessera train vqgan`.
#[derive(Debug, Args)]
pub struct VqganTrainOpts {
    /// Training configuration (JSON, as written to the run folder); defaults otherwise.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Total steps (overrides the configuration).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images per step (overrides the configuration).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Run folder for checkpoints, loss log and samples; an existing run resumes.
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// Where to write the finished model (default: the models folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// When the run folder has no checkpoint, start from the trained model in DIR
    /// (e.g. the committed `models/`), keeping its step count.
    #[arg(long, value_name = "DIR")]
    pub warm_start: Option<PathBuf>,
}

/// `tessera eval …`
#[derive(Debug, Args)]
pub struct EvalOpts {
    #[command(subcommand)]
    pub model: EvalModel,
}

/// Evaluations.
#[derive(Debug, Subcommand)]
pub enum EvalModel {
    /// Tokenizer reconstruction: PSNR, SSIM, L1, codebook usage.
    Vqgan {
        /// Folder of images (centre-cropped and resized); default: the held-out faces.
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `tessera bench …`
#[derive(Debug, Args)]
pub struct BenchOpts {
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// One training step of the TS-VQGAN and of the shared transformer.
    Step {
        /// Repetitions after one warm-up step.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}
