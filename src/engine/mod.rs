//! The engine: the one API through which the editor, the command line and the tests
//! reach the models. It takes and returns plain images and masks; tensors never leave
//! it. Models are loaded on first use and kept.

mod regenerate;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use image::{GrayImage, Luma, RgbImage};

use crate::backend::{self, Backend, BackendChoice};
use crate::data::convert::{images_to_tensor, masks_to_tensor, tensor_to_images};
use crate::data::people::{DILATION, repose_region};
use crate::data::poses::Pose;
use crate::data::sketch::Xdog;
use crate::hit::{self, Arch, Sampler, SamplerConfig};
use crate::ilat::examples::Guides;
use crate::ilat::model::{Guidance, Ilat};
use crate::ilat::sample::{Order, Sampling};
use crate::imagebart::{self, model::Reverse, schedule::Schedule};
use crate::region::Region;
use crate::store::{self, StoreError};
use crate::vqgan::{Vqgan, VqganConfig};
use regenerate::{How, Job};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A model file is missing, damaged or does not fit its config.
    #[error(transparent)]
    Model(#[from] StoreError),
    /// No GPU where one was demanded.
    #[error(transparent)]
    Backend(#[from] backend::NoGpu),
    /// An input does not fit what the call expects.
    #[error("{0}")]
    Input(String),
    /// The caller stopped the call.
    #[error("cancelled")]
    Cancelled,
}

/// How the masked part is regenerated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
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
    /// The model file it runs for `guidance`: `ilat`/`taming` for sketches (faces),
    /// `pose-ilat`/`pose-taming` for poses (people).
    /// (ImageBART's chain has several files; its first step is named.)
    pub fn model(self, guidance: Guidance) -> &'static str {
        match (self, guidance) {
            (Method::Ilat, Guidance::Sketch) => "ilat",
            (Method::Taming | Method::TamingStar, Guidance::Sketch) => "taming",
            (Method::Ilat, Guidance::Pose) => "pose-ilat",
            (Method::Taming | Method::TamingStar, Guidance::Pose) => "pose-taming",
            (Method::Imagebart, _) => "imagebart-step1",
        }
    }

    fn order(self) -> Order {
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
    /// A token was generated: the grid so far, how many of how many are done.
    Token {
        grid: TokenGrid,
        done: usize,
        total: usize,
    },
    /// The picture as it would look with the tokens so far.
    Preview(RgbImage),
    /// A grid of ImageBART's refinement (every one, for the trajectory): which cycle,
    /// which chain level (`T` just diffused, 0 denoised), and the picture with it.
    Stage {
        cycle: usize,
        level: usize,
        image: RgbImage,
    },
}

/// What the Sample tool draws new pictures from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// A GAN generator: HiT or its convolutional baseline.
    Gan(Arch),
    /// ImageBART's whole reverse chain from noise (the token-model gallery).
    Imagebart,
}

impl Generator {
    /// Every generator, in the order the editor lists them.
    pub const ALL: [Generator; 3] = [
        Generator::Gan(Arch::Hit),
        Generator::Gan(Arch::Conv),
        Generator::Imagebart,
    ];

    /// Its name (the model's, for the GANs).
    pub fn name(self) -> &'static str {
        match self {
            Generator::Gan(arch) => arch.name(),
            Generator::Imagebart => "imagebart",
        }
    }

    /// The GAN behind it: only a GAN has a latent space to interpolate in.
    pub fn gan(self) -> Option<Arch> {
        match self {
            Generator::Gan(arch) => Some(arch),
            Generator::Imagebart => None,
        }
    }
}

/// ImageBART's refinement cycles unless asked otherwise: upper-half completion of the
/// held-out faces gains 0.8 dB from 3 cycles to 6 and 0.4 dB more at 10, each cycle
/// costing ~0.16 s (models/README.md).
pub const DEFAULT_CYCLES: usize = 6;

/// Previews per edit (besides the final picture).
const PREVIEWS: usize = 6;

/// Width of the blend at the mask's inner edge, in model pixels.
const FEATHER: f32 = 2.0;

/// A grid of codebook indices, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrid {
    /// Side of the grid.
    pub side: usize,
    /// `side * side` indices.
    pub indices: Vec<usize>,
}

/// Loaded models on one device.
pub struct Engine {
    backend: Backend,
    models_dir: PathBuf,
    vqgan: Option<(Vqgan, VqganConfig)>,
    token_models: Vec<(&'static str, Ilat, Guidance)>,
    /// ImageBART's chain and its reverse steps (`models[t − 1]`: step `t`).
    chain: Option<(Schedule, Vec<Reverse>)>,
    /// Generators for click-to-sample, with their latent size.
    samplers: Vec<(Arch, Sampler, usize)>,
}

impl Engine {
    /// Chooses the backend; models are read from `models_dir` when first needed.
    pub fn new(models_dir: &Path, choice: BackendChoice) -> Result<Self, EngineError> {
        Ok(Self {
            backend: backend::select(choice)?,
            models_dir: models_dir.to_path_buf(),
            vqgan: None,
            token_models: Vec::new(),
            chain: None,
            samplers: Vec::new(),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The tokenizer, loaded on first use.
    fn vqgan(&mut self) -> Result<&(Vqgan, VqganConfig), EngineError> {
        if self.vqgan.is_none() {
            let loaded = Vqgan::load(&self.models_dir, "vqgan", &self.backend.device)?;
            tracing::info!("loaded the tokenizer from {}", self.models_dir.display());
            self.vqgan = Some(loaded);
        }
        self.vqgan
            .as_ref()
            .ok_or_else(|| EngineError::Input("tokenizer unavailable".into()))
    }

    /// A token model (see [`Method::model`]), loaded on first use.
    fn token_model(&mut self, name: &'static str) -> Result<(&Ilat, Guidance), EngineError> {
        if !self.token_models.iter().any(|(n, ..)| *n == name) {
            let (model, config) = Ilat::load(&self.models_dir, name, &self.backend.device)?;
            let (_, tokenizer) = self.vqgan()?;
            if config.vocab != tokenizer.codebook_size
                || config.grid != tokenizer.grid()
                || config.patch != tokenizer.factor()
            {
                return Err(EngineError::Model(StoreError::Mismatch {
                    weights: self.models_dir.join(format!("{name}.bpk")),
                    config: self.models_dir.join("vqgan.json"),
                    reason: "the token model was trained on another tokenizer".into(),
                }));
            }
            self.token_models.push((name, model, config.guidance));
        }
        self.token_models
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, m, g)| (m, *g))
            .ok_or_else(|| EngineError::Input(format!("model {name} unavailable")))
    }

    /// Loads every model `method` needs for `guidance`, so the first edit is not
    /// slower than the rest.
    pub fn prepare(&mut self, method: Method, guidance: Guidance) -> Result<(), EngineError> {
        if method == Method::Imagebart {
            return self.chain().map(|_| ());
        }
        let name = method.model(guidance);
        let (_, found) = self.token_model(name)?;
        if found != guidance {
            return Err(EngineError::Input(format!(
                "the model {name} in {} is guided by {found:?}, not {guidance:?}",
                self.models_dir.display()
            )));
        }
        Ok(())
    }

    /// ImageBART's chain, loaded on first use; every step must fit the tokenizer.
    fn chain(&mut self) -> Result<&(Schedule, Vec<Reverse>), EngineError> {
        if self.chain.is_none() {
            let path = imagebart::chain_path(&self.models_dir);
            let schedule = imagebart::read_chain(&path)?;
            let codes = self.codebook_size()?;
            let grid = self.vqgan()?.1.grid();
            let mut steps = Vec::new();
            for t in 1..=schedule.steps() {
                let name = imagebart::step_name(t);
                let (model, config) = Reverse::load(&self.models_dir, &name, &self.backend.device)?;
                if config.vocab != codes || config.grid != grid || schedule.codes != codes {
                    return Err(EngineError::Model(StoreError::Mismatch {
                        weights: self.models_dir.join(format!("{name}.bpk")),
                        config: path.clone(),
                        reason: "the chain was trained on another tokenizer".into(),
                    }));
                }
                steps.push(model);
            }
            self.chain = Some((schedule, steps));
        }
        self.chain
            .as_ref()
            .ok_or_else(|| EngineError::Input("ImageBART unavailable".into()))
    }

    /// Regenerates the masked part of a picture of any size (DESIGN §2): the square
    /// around the mask goes to the models' side, its masked tokens are sampled, the
    /// result is decoded with the kept features (Eq. 4), resized back and blended in
    /// only inside the mask. `progress` hears of every token and of a few previews,
    /// and may cancel between tokens.
    pub fn edit(
        &mut self,
        request: &EditRequest,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<RgbImage, EngineError> {
        let EditRequest {
            image,
            mask,
            sketch,
            ..
        } = request;
        if mask.dimensions() != image.dimensions() {
            return Err(EngineError::Input(format!(
                "the mask is {}x{} but the image {}x{}",
                mask.width(),
                mask.height(),
                image.width(),
                image.height()
            )));
        }
        if let Some(s) = sketch
            && s.dimensions() != image.dimensions()
        {
            return Err(EngineError::Input(format!(
                "the sketch is {}x{} but the image {}x{}",
                s.width(),
                s.height(),
                image.width(),
                image.height()
            )));
        }
        let size = self.image_size()?;
        let Some(region) = Region::around(mask, size) else {
            return Ok(image.clone()); // nothing to regenerate
        };
        let picture = region.crop(image, size);
        let small_mask = region.crop_mask(mask, size);
        let guide = guide_sketch(
            &picture,
            &small_mask,
            sketch.as_ref().map(|s| region.crop_sketch(s, size)),
        );
        let factor = self.vqgan()?.1.factor();
        let how = match request.method {
            Method::Imagebart => How::Refine {
                cycles: request.cycles.max(1),
            },
            method => How::Sample {
                guide: Guides::Sketches(vec![guide]).to_guide(factor, &self.backend.device),
                model: method.model(Guidance::Sketch),
                order: method.order(),
            },
        };
        self.regenerate(
            Job {
                image,
                mask,
                region,
                picture,
                small_mask,
                how,
                sampling: request.sampling,
            },
            progress,
        )
    }

    /// Regenerates the person of a picture of any size in a new pose: the union of
    /// the old and the new skeleton (dilated) is the mask, the new pose guides the
    /// pose model (iLAT §3.3). Progress and cancellation as [`Engine::edit`].
    pub fn repose(
        &mut self,
        request: &ReposeRequest,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<RgbImage, EngineError> {
        let ReposeRequest {
            image,
            pose,
            new_pose,
            ..
        } = request;
        let size = self.image_size()?;
        let Some((mask, region)) =
            repose_region(pose, new_pose, image.dimensions(), DILATION, size)
        else {
            return Err(EngineError::Input(
                "neither pose has a visible joint".into(),
            ));
        };
        if request.method == Method::Imagebart {
            return Err(EngineError::Input(
                "ImageBART is not pose-guided: repose with iLAT or Taming".into(),
            ));
        }
        let features = new_pose.features(region.x as f32, region.y as f32, region.side as f32);
        let how = How::Sample {
            guide: Guides::Poses(vec![features]).to_guide(1, &self.backend.device),
            model: request.method.model(Guidance::Pose),
            order: request.method.order(),
        };
        self.regenerate(
            Job {
                image,
                mask: &mask,
                region,
                picture: region.crop(image, size),
                small_mask: region.crop_mask(&mask, size),
                how,
                sampling: request.sampling,
            },
            progress,
        )
    }

    /// `n` pictures sampled through ImageBART's whole chain, from seed `seed` on (one
    /// seed each), at the models' side.
    pub fn sample_imagebart(
        &mut self,
        seed: u64,
        n: usize,
        top_k: usize,
    ) -> Result<Vec<RgbImage>, EngineError> {
        let device = self.backend.device.clone();
        let (vqgan, config) = self.vqgan()?;
        let (vqgan, side) = (vqgan.clone(), config.grid());
        let (schedule, models) = self.chain()?;
        let chain = imagebart::sample::Chain { models, schedule };
        let mut pictures = Vec::with_capacity(n);
        for k in 0..n as u64 {
            let sampling = Sampling {
                top_k,
                temperature: 1.0,
                seed: seed + k,
            };
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed + k);
            let grid = chain.sample(side * side, &sampling, &mut rng);
            let indices = Tensor::<3, Int>::from_data(
                TensorData::new(grid.iter().map(|&t| t as i64).collect(), [1, side, side]),
                &device,
            );
            pictures.extend(tensor_to_images(vqgan.decode(indices)));
        }
        Ok(pictures)
    }

    /// A generator (`hit` or `conv`), loaded on first use.
    fn sampler(&mut self, arch: Arch) -> Result<(&Sampler, usize), EngineError> {
        if !self.samplers.iter().any(|(a, ..)| *a == arch) {
            let (model, config) = store::load_model(
                &self.models_dir,
                arch.name(),
                &self.backend.device,
                |config: &SamplerConfig, device| config.init(device),
            )?;
            self.samplers.push((arch, model, config.latent()));
        }
        self.samplers
            .iter()
            .find(|(a, ..)| *a == arch)
            .map(|(_, s, size)| (s, *size))
            .ok_or_else(|| EngineError::Input(format!("generator {} unavailable", arch.name())))
    }

    /// `n` new pictures from `generator`, the k-th from seed `seed + k`: the same seed
    /// gives the same picture (ImageBART's with top-k as in edits).
    pub fn sample(
        &mut self,
        generator: Generator,
        seed: u64,
        n: usize,
    ) -> Result<Vec<RgbImage>, EngineError> {
        let arch = match generator {
            Generator::Gan(arch) => arch,
            Generator::Imagebart => {
                return self.sample_imagebart(seed, n, Sampling::default().top_k);
            }
        };
        let device = self.backend.device.clone();
        let (sampler, size) = self.sampler(arch)?;
        let codes: Vec<Tensor<1>> = (0..n as u64)
            .map(|k| hit::latent(seed + k, size, &device))
            .collect();
        Ok(tensor_to_images(sampler.forward(Tensor::stack(codes, 0))))
    }

    /// `steps` faces on the way from seed `a`'s face to seed `b`'s (both included),
    /// along the great circle between their latent codes (slerp keeps every code at
    /// the norm the generator was trained on).
    pub fn interpolate(
        &mut self,
        arch: Arch,
        (a, b): (u64, u64),
        steps: usize,
    ) -> Result<Vec<RgbImage>, EngineError> {
        let device = self.backend.device.clone();
        let (sampler, size) = self.sampler(arch)?;
        let (za, zb) = (hit::latent(a, size, &device), hit::latent(b, size, &device));
        let dot = (za.clone() * zb.clone()).sum().into_scalar::<f32>();
        let norms = (za.clone().powi_scalar(2).sum().into_scalar::<f32>()
            * zb.clone().powi_scalar(2).sum().into_scalar::<f32>())
        .sqrt()
        .max(f32::EPSILON);
        let omega = (dot / norms).clamp(-1.0, 1.0).acos();
        let codes: Vec<Tensor<1>> = (0..steps.max(2))
            .map(|i| {
                let t = i as f32 / (steps.max(2) - 1) as f32;
                let (wa, wb) = if omega.abs() < 1e-4 {
                    (1.0 - t, t)
                } else {
                    (
                        ((1.0 - t) * omega).sin() / omega.sin(),
                        (t * omega).sin() / omega.sin(),
                    )
                };
                za.clone() * wa + zb.clone() * wb
            })
            .collect();
        Ok(tensor_to_images(sampler.forward(Tensor::stack(codes, 0))))
    }

    /// Side of the images the models work at.
    pub fn image_size(&mut self) -> Result<u32, EngineError> {
        Ok(self.vqgan()?.1.image_size as u32)
    }

    /// Codebook size of the tokenizer.
    pub fn codebook_size(&mut self) -> Result<usize, EngineError> {
        Ok(self.vqgan()?.1.codebook_size)
    }

    /// Tokenizes and decodes model-sized images (every token quantised): what the
    /// tokenizer keeps of a picture. Returns the reconstructions and token grids.
    pub fn reconstruct(
        &mut self,
        images: &[RgbImage],
    ) -> Result<(Vec<RgbImage>, Vec<TokenGrid>), EngineError> {
        let size = self.image_size()?;
        check_sizes(images.iter().map(|i| i.dimensions()), size)?;
        let device = self.backend.device.clone();
        let (vqgan, _) = self.vqgan()?;
        let out = vqgan.forward(images_to_tensor(images, &device), None);
        Ok((
            tensor_to_images(out.images),
            token_grids(out.quantized.indices),
        ))
    }

    /// Tokenizes model-sized images with the leak-free encoder: token grids whose
    /// entries outside `masks` do not depend on the pixels inside them.
    pub fn tokenize(
        &mut self,
        images: &[RgbImage],
        masks: &[GrayImage],
    ) -> Result<Vec<TokenGrid>, EngineError> {
        let size = self.image_size()?;
        check_sizes(images.iter().map(|i| i.dimensions()), size)?;
        check_sizes(masks.iter().map(|m| m.dimensions()), size)?;
        if images.len() != masks.len() {
            return Err(EngineError::Input(format!(
                "{} images but {} masks",
                images.len(),
                masks.len()
            )));
        }
        let device = self.backend.device.clone();
        let (vqgan, _) = self.vqgan()?;
        let mask = masks_to_tensor(masks, &device);
        let (indices, _) = vqgan.encode(images_to_tensor(images, &device), Some(mask));
        Ok(token_grids(indices))
    }
}

/// The sketch the model is given: the picture's own XDoG sketch outside the mask, the
/// person's strokes (if any) inside it.
fn guide_sketch(picture: &RgbImage, mask: &GrayImage, strokes: Option<GrayImage>) -> GrayImage {
    let own = Xdog::default().sketch(picture);
    GrayImage::from_fn(picture.width(), picture.height(), |x, y| {
        if mask.get_pixel(x, y).0[0] < 128 {
            *own.get_pixel(x, y)
        } else {
            strokes.as_ref().map_or(Luma([255]), |s| *s.get_pixel(x, y))
        }
    })
}

fn check_sizes(dims: impl Iterator<Item = (u32, u32)>, size: u32) -> Result<(), EngineError> {
    for (w, h) in dims {
        if (w, h) != (size, size) {
            return Err(EngineError::Input(format!(
                "expected {size}x{size} inputs, got {w}x{h}"
            )));
        }
    }
    Ok(())
}

fn token_grids(indices: Tensor<3, Int>) -> Vec<TokenGrid> {
    let [batch, side, _] = indices.dims();
    let flat: Vec<i64> = indices
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .unwrap_or_default();
    flat.chunks(side * side)
        .take(batch)
        .map(|chunk| TokenGrid {
            side,
            indices: chunk.iter().map(|&i| i as usize).collect(),
        })
        .collect()
}
