//! Command-line options (clap derive), with every rule on them that clap can state
//! (value ranges), and the one it cannot, checked before anything runs
//! ([`Opts::check`]). The values of the flags are in [`super::values`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::values::{
    ArchArg, BackendArg, MethodArg, SampleModel, SideArg, SketchInputArg, TrainedMethod,
};
use crate::engine::{SampleSource, Sampling};

/// Tessera: regenerate only the masked part of a picture, with small generative models.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Opts {
    /// Folder of trained models (default: the shipped `models/`).
    #[arg(long, global = true, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Compute backend: a hardware GPU if present, else the CPU (auto); or force one.
    #[arg(long, global = true, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// What to do (default: open the editor).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the editor.
    Gui {
        /// Picture (PNG, JPEG) or project (.tessera) to open (default: a sample face).
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        /// Scripted run: edit the sample face's mouth, save a screenshot of the
        /// window to FILE and close (logs frame times while the edit runs).
        #[arg(long, value_name = "FILE")]
        demo: Option<PathBuf>,
    },
    /// Check the fetched data.
    Data(DataOpts),
    /// Train a model.
    Train(TrainOpts),
    /// Evaluate a model on held-out data.
    Eval(EvalOpts),
    /// Regenerate the masked part of an image.
    Edit(EditOpts),
    /// Sample new pictures into a grid.
    Sample(SampleOpts),
    /// Repose a person: regenerate them standing in a new pose.
    Repose(ReposeOpts),
    /// Measure speed.
    Bench(BenchOpts),
    /// Store every model of the models folder (`--models`) in half precision, in
    /// place (what `train` writes anyway; for files written before).
    Halve,
    /// Find the faces in a picture (or in every picture of a folder): box, eyes,
    /// nose, mouth and ears, and the locator's confidence.
    Faces(FacesOpts),
}

/// `tessera faces …`
#[derive(Debug, Args)]
pub struct FacesOpts {
    /// A picture, or a folder of pictures.
    #[arg(long, value_name = "FILE|DIR")]
    pub image: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `tessera edit …`
#[derive(Debug, Args)]
pub struct EditOpts {
    /// The picture (PNG, JPEG, WebP, BMP, TIFF or a GIF's first frame; any size).
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// The mask, same size: white = regenerate.
    #[arg(long, value_name = "FILE")]
    pub mask: PathBuf,
    /// Strokes guiding the regenerated part, same size: dark on white (iLAT, Taming).
    #[arg(long, value_name = "FILE")]
    pub sketch: Option<PathBuf>,
    /// ImageBART's cycles: the first denoises the masked part from noise through the
    /// whole chain, each further one diffuses it to level 1 and denoises it again.
    #[arg(long, default_value_t = crate::engine::DEFAULT_CYCLES)]
    pub cycles: usize,
    /// Write every stage of ImageBART's refinement into DIR as PNGs.
    #[arg(long, value_name = "DIR")]
    pub trajectory: Option<PathBuf>,
    /// Work on the square around the mask even when it lies on a face (by default the
    /// face under the mask is found and its aligned crop is regenerated).
    #[arg(long)]
    pub no_align: bool,
    #[command(flatten)]
    pub generate: GenerateOpts,
}

/// How a regeneration runs and where it goes: flags shared by `edit` and `repose`.
#[derive(Debug, Args)]
pub struct GenerateOpts {
    /// How to regenerate.
    #[arg(long, value_enum, default_value_t = MethodArg::Ilat)]
    pub method: MethodArg,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sample among the K most likely tokens (0 = all).
    #[arg(long, default_value_t = 100)]
    pub top_k: usize,
    /// Softmax temperature (0 = always the most likely token).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Where to write the result (PNG, JPEG or lossless WebP by extension); never one of
    /// the inputs.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

impl GenerateOpts {
    /// The sampler's settings.
    pub fn sampling(&self) -> Sampling {
        Sampling {
            top_k: self.top_k,
            temperature: self.temperature,
            seed: self.seed,
        }
    }
}

/// `tessera sample …`
#[derive(Debug, Args)]
pub struct SampleOpts {
    /// Which generator.
    #[arg(long, value_enum, default_value_t = SampleModel::Imagebart)]
    pub model: SampleModel,
    /// Seed of the first picture (the k-th uses seed + k).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How many pictures (laid out in a square grid).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub n: u32,
    /// Sample among the K most likely tokens (0 = all).
    #[arg(long, default_value_t = 100)]
    pub top_k: usize,
    /// Instead of a grid, a strip of --n faces on the way from --seed's face to this
    /// seed's (HiT and conv: only a GAN has a latent space to walk; ImageBART has no
    /// latent space).
    #[arg(long, value_name = "SEED")]
    pub interpolate_to: Option<u64>,
    /// Where to write the grid (PNG, JPEG or lossless WebP by extension).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `tessera repose …`
#[derive(Debug, Args)]
pub struct ReposeOpts {
    /// The picture (PNG, JPEG, WebP, BMP, TIFF or a GIF's first frame; any size).
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// The person's pose now: JSON, `{"joints": [13 x {"x", "y", "visible"}]}` in the
    /// picture's pixels, Penn Action order (head, left/right shoulder, elbow, wrist,
    /// hip, knee, ankle).
    #[arg(long, value_name = "FILE")]
    pub pose: PathBuf,
    /// The pose to move them to, the same format.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    #[command(flatten)]
    pub generate: GenerateOpts,
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
    /// The iLAT token transformer (LA mask, masked tokens only), on `data/faces`
    /// tokenised by the models folder's tokenizer.
    Ilat(TokenTrainOpts),
    /// The Taming baseline: the same network with the vanilla causal mask.
    Taming(TokenTrainOpts),
    /// A pose-guided token model (iLAT or the Taming baseline) on pairs of frames of
    /// `data/poses`, tokenised by the models folder's tokenizer; written as
    /// `pose-ilat` or `pose-taming`.
    Pose(PoseTrainOpts),
    /// One reverse step of ImageBART on `data/faces`, tokenised by the models folder's
    /// tokenizer; written as `imagebart-step<T>` with the chain in `imagebart-chain.json`.
    Imagebart(ImagebartTrainOpts),
    /// A generator for click-to-sample, HiT or the convolutional baseline, against
    /// the ResNet discriminator on `data/faces/train`; written as `hit` or `conv`.
    Hit(HitTrainOpts),
}

/// Options of `tessera train hit`.
#[derive(Debug, Args)]
pub struct HitTrainOpts {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Which generator.
    #[arg(long, value_enum, default_value_t = ArchArg::Hit)]
    pub arch: ArchArg,
    /// Side of the pictures, 64 or 128 (sizes the default configuration).
    #[arg(long, value_enum, default_value_t = SideArg::Px128)]
    pub size: SideArg,
    /// When the run folder has no checkpoint, start from the same generator trained
    /// at half the side in DIR (with its discriminator), grown by one level, or from
    /// one at this side with attention at fewer stages, given that attention.
    #[arg(long, value_name = "DIR", conflicts_with = "warm_start")]
    pub grow_from: Option<PathBuf>,
}

/// Options of `tessera train imagebart`.
#[derive(Debug, Args)]
pub struct ImagebartTrainOpts {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Which reverse step, 1..=T: the model learns p(x_{t-1} | x_t).
    #[arg(long)]
    pub step: usize,
}

/// Options of `tessera train pose`.
#[derive(Debug, Args)]
pub struct PoseTrainOpts {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Which objective: iLAT (LA mask, masked tokens) or Taming (causal, all tokens).
    #[arg(long, value_enum, default_value_t = TrainedMethod::Ilat)]
    pub method: TrainedMethod,
}

/// Options every `tessera train` verb takes.
#[derive(Debug, Args)]
pub struct TrainCommon {
    /// Training configuration (JSON, as written to the run folder); defaults otherwise.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Total steps (overrides the configuration).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Examples per step (overrides the configuration).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Run folder for checkpoints, loss log and samples; an existing run resumes.
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// Where to write the finished model (default: the models folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// When the run folder has no checkpoint, start from the trained model in DIR
    /// (e.g. the committed `models/`), keeping its step count; the optimiser's
    /// moments start anew.
    #[arg(long, value_name = "DIR")]
    pub warm_start: Option<PathBuf>,
    /// Stop after this many steps, the schedule of `--steps` unchanged (a run taken
    /// part way and resumed to its end later).
    #[arg(long, value_name = "STEP")]
    pub stop_at: Option<usize>,
    /// Only evaluate the model the run would start from (its checkpoint, else
    /// `--warm-start`) on the held-out data, and print the values; nothing is trained
    /// or written but the run folder's configuration.
    #[arg(long, conflicts_with = "stop_at")]
    pub evaluate: bool,
}

/// Options of `tessera train ilat|taming`.
#[derive(Debug, Args)]
pub struct TokenTrainOpts {
    #[command(flatten)]
    pub common: TrainCommon,
    /// How the sketch enters the network (overrides the configuration).
    #[arg(long, value_enum)]
    pub sketch_input: Option<SketchInputArg>,
    /// Name of the written model (default: the verb, `ilat` or `taming`).
    #[arg(long)]
    pub name: Option<String>,
}

/// Options of `tessera train vqgan`.
#[derive(Debug, Args)]
pub struct VqganTrainOpts {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Name of the written model: `vqgan` (the faces' tokenizer, the default) or
    /// `people-vqgan` (the pose models' own, usually trained with `people_fraction` 1).
    #[arg(long)]
    pub name: Option<String>,
}

/// `tessera eval …`
#[derive(Debug, Args)]
pub struct EvalOpts {
    #[command(subcommand)]
    pub task: EvalTask,
}

/// Evaluations: of a model (the tokenizer, the GANs) or of a task (editing,
/// completion, reposing) done by every method.
#[derive(Debug, Subcommand)]
pub enum EvalTask {
    /// Tokenizer reconstruction: PSNR, SSIM, L1, codebook usage.
    Vqgan {
        /// Folder of images (centre-cropped and resized); default: the held-out faces.
        #[arg(long, value_name = "DIR", conflicts_with = "people")]
        images: Option<PathBuf>,
        /// Held-out person crops (as a repose cuts them from the video frames) instead.
        #[arg(long)]
        people: bool,
        /// Also write the first eight pictures above their reconstructions to FILE
        /// (.png, .jpg or .webp).
        #[arg(long, value_name = "FILE")]
        figure: Option<PathBuf>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Editing quality of iLAT, Taming and Taming* on held-out faces: masks over 10-40 %
    /// of each image, sketches from the originals; PSNR, SSIM and MAE of the masked
    /// region against the original, and seconds per edit.
    Edit {
        /// Folder of faces; default: the held-out faces.
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Evaluate only the first N images.
        #[arg(long)]
        limit: Option<usize>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Upper-half completion on held-out faces (ImageBART §4.3): the lower half given,
    /// the upper half regenerated by ImageBART and by Taming; PSNR, SSIM and MAE of
    /// the upper half against the original, and seconds per completion.
    Completion {
        /// Folder of faces; default: the held-out faces.
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Evaluate only the first N faces.
        #[arg(long)]
        limit: Option<usize>,
        /// ImageBART's refinement cycles.
        #[arg(long, default_value_t = crate::engine::DEFAULT_CYCLES)]
        cycles: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// FID and KID of HiT's and the baseline's samples against the held-out and
    /// training faces (InceptionV3 features), and samples per second.
    Hit {
        /// Samples per generator.
        #[arg(long, default_value_t = 1000)]
        samples: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Editing real photos: on each photo's best face, a mask over its mouth, an eye,
    /// its nose or its jaw (in turn) regenerated on the face's aligned crop and on the
    /// square around the mask; PSNR inside the mask and the seam at its border (1 = as
    /// smooth as the photo), with OpenCV's Telea inpainting when
    /// `scripts/telea-inpaint.py OUT` has been run on the masks written to OUT.
    Photos {
        /// Folder of photos; default: the fetched `data/photos`.
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Where the masks and results are written (and Telea's read from `OUT/telea`).
        #[arg(long, value_name = "DIR", default_value = "runs/photos")]
        out: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Reposing quality of iLAT, Taming and Taming* on held-out pairs of frames: the
    /// source frame reposed to the target frame's pose, compared with the target frame
    /// inside the skeleton mask (PSNR, SSIM, MAE), and seconds per repose.
    Pose {
        /// Evaluate only N pairs (spread over the held-out pairs).
        #[arg(long, default_value_t = 60)]
        limit: usize,
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
    /// GEMM rate, training steps of the TS-VQGAN and of the transformer at the shipped
    /// iLAT size, and milliseconds per generated token.
    Throughput {
        /// Repetitions after one warm-up run.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Local (masked tokens only) against full autoregressive sampling at 5, 10 and
    /// 30 % masks.
    LocalAr {
        /// Repetitions after one warm-up run.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One face edit at the models' side with a 10 % mask, end to end, models loaded.
    Edit {
        /// Timed runs after one warm-up run.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Candidates per edit, made together as the editor makes them.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
        candidates: u32,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

impl Opts {
    /// The rules on the options that clap cannot state on its own.
    pub fn check(&self) -> Result<(), clap::Error> {
        match &self.command {
            Some(Command::Sample(sample)) => sample.check(),
            _ => Ok(()),
        }
    }
}

impl SampleOpts {
    /// The rule clap cannot state on its own: only a GAN can be interpolated. Reported
    /// as clap reports its own rules.
    pub fn check(&self) -> Result<(), clap::Error> {
        if self.interpolate_to.is_some() && SampleSource::from(self.model).gan().is_none() {
            return Err(<Opts as clap::CommandFactory>::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--interpolate-to needs a GAN (--model hit or conv): ImageBART has no latent space",
            ));
        }
        Ok(())
    }
}
