//! The engine: the one API through which the editor, the command line and the tests
//! reach the models. It takes and returns plain images and masks; tensors never leave
//! it. Models are loaded on first use and kept ([`models`]).

mod models;
mod regenerate;
mod request;

use std::ops::ControlFlow;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::TensorReadError;
use image::{GrayImage, Luma, RgbImage};

pub use crate::hit::Arch;
pub use crate::ilat::model::GuideKind;
pub use crate::tokens::Sampling;
pub use request::{
    DEFAULT_CYCLES, EditProgress, EditRequest, FaceChoice, Method, ReposeRequest, SampleSource,
    TokenGrid,
};

use crate::backend::{self, Backend, BackendChoice};
use crate::data::convert::{
    grids_to_tensor, images_to_tensor, masks_to_tensor, tensor_to_grids, tensor_to_images,
};
use crate::data::people::{DILATION, repose_region};
use crate::data::sketch::Xdog;
use crate::faces::{self, Face};
use crate::hit;
use crate::ilat::model::GuideBatch;
use crate::region::{Aligned, Region, Square};
use crate::store::StoreError;
use crate::tokens::DecodeError;
use crate::vqgan;
use models::ModelCache;
use regenerate::{How, Job, LastEncoding};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A model file is missing, damaged or does not fit its config.
    #[error(transparent)]
    Model(#[from] StoreError),
    /// No GPU where one was demanded.
    #[error(transparent)]
    Backend(#[from] backend::NoGpu),
    /// The face locator's files are missing or damaged.
    #[error(
        "the face locator cannot be used: {0}; restore `face-locator.json` and \
         `face-locator.safetensors` in the models folder (`git checkout -- models/`), or copy \
         `data/nets/blazeface_full.*` there after `scripts/fetch-data.sh`"
    )]
    Locator(crate::nn::weights::FeatureNetError),
    /// An input does not fit what the call expects.
    #[error("{0}")]
    Input(String),
    /// A result could not be read back from the compute device.
    #[error("reading a result from the compute device: {0}")]
    Device(#[from] TensorReadError),
    /// The computation itself failed (a bug or a device fault), with what it said.
    #[error("the computation failed: {0}")]
    Failed(String),
    /// The caller stopped the call.
    #[error("cancelled")]
    Cancelled,
}

impl From<DecodeError> for EngineError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Cancelled => EngineError::Cancelled,
            DecodeError::Read(err) => EngineError::Device(err),
        }
    }
}

/// Previews per edit (besides the final picture).
const PREVIEWS: usize = 6;

/// Loaded models on one device.
pub struct Engine {
    backend: Backend,
    models: ModelCache,
    last_encoding: Option<LastEncoding>,
}

impl Engine {
    /// Chooses the backend; models are read from `models_dir` when first needed.
    pub fn new(models_dir: &Path, choice: BackendChoice) -> Result<Self, EngineError> {
        Ok(Self::on(models_dir, backend::select(choice)?))
    }

    /// An engine on `backend`, models read from `models_dir` when first needed.
    pub fn on(models_dir: &Path, backend: Backend) -> Self {
        Self {
            models: ModelCache::new(models_dir, backend.device.clone()),
            backend,
            last_encoding: None,
        }
    }

    /// Moves to the CPU after the GPU failed (the models load again there when next
    /// needed); false when already on the CPU.
    pub fn fall_back_to_cpu(&mut self) -> bool {
        if !self.backend.gpu {
            return false;
        }
        tracing::warn!(
            "{} failed; running on the CPU from now on",
            self.backend.name
        );
        let dir = self.models.dir().to_path_buf();
        *self = Self::on(&dir, Backend::cpu());
        true
    }

    /// The backend in use.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Loads every model `method` needs for `kind` of guidance, so the first edit is
    /// not slower than the rest.
    pub fn prepare(&mut self, method: Method, kind: GuideKind) -> Result<(), EngineError> {
        if method == Method::Imagebart {
            return self.models.chain().map(|_| ());
        }
        let name = method.model_name(kind);
        let found = self.models.token_model(name)?.guidance;
        if found != kind {
            return Err(EngineError::Input(format!(
                "the model {name} in {} is guided by {found:?}, not {kind:?}",
                self.models.dir().display()
            )));
        }
        Ok(())
    }

    /// Regenerates the masked part of a picture of any size: the square around the
    /// mask goes to the models' side, its masked tokens are sampled, the result is
    /// decoded with the kept features (Eq. 4), resized back and blended in only inside
    /// the mask. `progress` hears of every token and of a few previews, and may cancel
    /// between tokens.
    pub fn edit(
        &mut self,
        request: &EditRequest,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<RgbImage, EngineError> {
        Ok(self.edit_candidates(request, 1, progress)?.remove(0))
    }

    /// [`Engine::edit`] for `candidates` candidates made together (one pass over the
    /// known tokens, then every step one row of each): candidate k is the edit with
    /// seed `seed + k`. Previews come for each candidate.
    pub fn edit_candidates(
        &mut self,
        request: &EditRequest,
        candidates: usize,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<Vec<RgbImage>, EngineError> {
        let EditRequest {
            image,
            mask,
            sketch,
            ..
        } = request;
        check_same_size("mask", mask.dimensions(), image.dimensions())?;
        if let Some(s) = sketch {
            check_same_size("sketch", s.dimensions(), image.dimensions())?;
        }
        let size = self.image_size()?;
        let Some(square) = Square::around(mask, size) else {
            return Ok(vec![image.clone(); candidates.max(1)]); // nothing to regenerate
        };
        let region = match self.aligned_crop(request.face, image, mask)? {
            Some(aligned) => Region::Aligned(aligned),
            None => Region::Square(square),
        };
        let picture = region.crop(image, size);
        let small_mask = region.crop_mask(mask, size);
        let guide = guide_sketch(
            &picture,
            &small_mask,
            sketch.as_ref().map(|s| region.crop_sketch(s, size)),
        );
        let factor = self.models.tokenizer()?.1.factor();
        let how = match request.method {
            Method::Imagebart => How::Refine {
                cycles: request.cycles.max(1),
            },
            method => How::Sample {
                guide: GuideBatch::Sketches(vec![guide]).to_guide(factor, &self.backend.device),
                model: method.model_name(GuideKind::Sketch),
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
            candidates,
            progress,
        )
    }

    /// Every face in `image`, best first, in its pixel coordinates.
    pub fn faces(&mut self, image: &RgbImage) -> Result<Vec<Face>, EngineError> {
        Ok(self.models.locator()?.locate(image)?)
    }

    /// The aligned crop an edit of `mask` uses: `choice`'s face when the mask lies
    /// inside its crop, else none (the square around the mask).
    fn aligned_crop(
        &mut self,
        choice: FaceChoice,
        image: &RgbImage,
        mask: &GrayImage,
    ) -> Result<Option<Aligned>, EngineError> {
        Ok(match choice {
            FaceChoice::Auto => faces::under_mask(&self.faces(image)?, mask).map(|(_, a)| a),
            FaceChoice::Given(face) => face.holds(mask),
            FaceChoice::Off => None,
        })
    }

    /// Regenerates the person of a picture of any size in a new pose: the union of
    /// the old and the new skeleton (dilated) is the mask, the new pose guides the
    /// pose model (iLAT §3.3). Progress and cancellation as [`Engine::edit`].
    pub fn repose(
        &mut self,
        request: &ReposeRequest,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<RgbImage, EngineError> {
        Ok(self.repose_candidates(request, 1, progress)?.remove(0))
    }

    /// [`Engine::repose`] for `candidates` candidates made together, as
    /// [`Engine::edit_candidates`].
    pub fn repose_candidates(
        &mut self,
        request: &ReposeRequest,
        candidates: usize,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<Vec<RgbImage>, EngineError> {
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
        let region = Region::Square(region);
        let how = How::Sample {
            guide: GuideBatch::Poses(vec![features]).to_guide(1, &self.backend.device),
            model: request.method.model_name(GuideKind::Pose),
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
            candidates,
            progress,
        )
    }

    /// `n` new pictures from `source`, the k-th from seed `seed + k`: the same seed
    /// gives the same picture (ImageBART's with top-k as in edits).
    pub fn sample(
        &mut self,
        source: SampleSource,
        seed: u64,
        n: usize,
    ) -> Result<Vec<RgbImage>, EngineError> {
        match source {
            SampleSource::Gan(arch) => {
                let device = self.backend.device.clone();
                let gan = self.models.gan(arch)?;
                let codes: Vec<Tensor<1>> = (0..n as u64)
                    .map(|k| hit::latent(seed + k, gan.latent, &device))
                    .collect();
                Ok(tensor_to_images(
                    gan.generator.forward(Tensor::stack(codes, 0)),
                )?)
            }
            SampleSource::Imagebart => self.sample_imagebart(seed, n, Sampling::default().top_k),
        }
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
        let (vqgan, config) = self.models.tokenizer()?;
        let (vqgan, side) = (vqgan.clone(), config.grid());
        let chain = self.models.chain()?;
        let chain = crate::imagebart::sample::Chain {
            models: &chain.steps,
            schedule: &chain.schedule,
        };
        let mut pictures = Vec::with_capacity(n);
        for k in 0..n as u64 {
            let sampling = Sampling {
                top_k,
                temperature: 1.0,
                seed: seed + k,
            };
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed + k);
            let grid = chain.sample(side * side, &sampling, &mut rng)?;
            let indices = grids_to_tensor(&[&grid], side, &device);
            pictures.extend(tensor_to_images(vqgan.decode(indices))?);
        }
        Ok(pictures)
    }

    /// `steps` faces on the way from seed `a`'s face to seed `b`'s (both included),
    /// along the great circle between their latent codes.
    pub fn interpolate(
        &mut self,
        arch: Arch,
        (a, b): (u64, u64),
        steps: usize,
    ) -> Result<Vec<RgbImage>, EngineError> {
        let device = self.backend.device.clone();
        let gan = self.models.gan(arch)?;
        let (za, zb) = (
            hit::latent(a, gan.latent, &device),
            hit::latent(b, gan.latent, &device),
        );
        let codes = hit::slerp(za, zb, steps.max(2));
        Ok(tensor_to_images(gan.generator.forward(codes))?)
    }

    /// Side of the images the models work at.
    pub fn image_size(&mut self) -> Result<u32, EngineError> {
        Ok(self.models.tokenizer()?.1.image_size as u32)
    }

    /// Side of the pictures a GAN generator draws.
    pub fn gan_side(&mut self, arch: Arch) -> Result<usize, EngineError> {
        Ok(self.models.gan(arch)?.side)
    }

    /// Codebook size of the tokenizer named `tokenizer` (see [`vqgan::FACES`]).
    pub fn codebook_size(&mut self, tokenizer: &str) -> Result<usize, EngineError> {
        Ok(self.models.tokenizer_named(tokenizer)?.1.codebook_size)
    }

    /// The tokenizer a pose model trained on this models folder learns the tokens of
    /// ([`vqgan::for_people`]): what `tessera eval vqgan --people` measures. (A pose
    /// model names its own in its configuration.)
    pub fn people_tokenizer(&self) -> &'static str {
        vqgan::for_people(self.models.dir())
    }

    /// Tokenizes and decodes model-sized images (every token quantised) with the faces'
    /// tokenizer: what it keeps of a picture. Returns the reconstructions and token
    /// grids.
    pub fn reconstruct(
        &mut self,
        images: &[RgbImage],
    ) -> Result<(Vec<RgbImage>, Vec<TokenGrid>), EngineError> {
        self.reconstruct_with(vqgan::FACES, images)
    }

    /// [`Engine::reconstruct`] with the tokenizer named `tokenizer`.
    pub fn reconstruct_with(
        &mut self,
        tokenizer: &str,
        images: &[RgbImage],
    ) -> Result<(Vec<RgbImage>, Vec<TokenGrid>), EngineError> {
        let size = self.image_size()?;
        check_sizes(images.iter().map(|i| i.dimensions()), size)?;
        let device = self.backend.device.clone();
        let (vqgan, config) = self.models.tokenizer_named(tokenizer)?;
        if config.image_size as u32 != size {
            return Err(EngineError::Input(format!(
                "the tokenizer {tokenizer} works at {0}x{0}, the faces' at {size}x{size}",
                config.image_size
            )));
        }
        let out = vqgan.forward(images_to_tensor(images, &device), None);
        Ok((
            tensor_to_images(out.images)?,
            token_grids(out.quantized.indices)?,
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
        let (vqgan, _) = self.models.tokenizer()?;
        let mask = masks_to_tensor(masks, &device);
        let (indices, _) = vqgan.encode(images_to_tensor(images, &device), Some(mask));
        token_grids(indices)
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

/// Refuses a `what` (mask, sketch) whose size is not the picture's.
fn check_same_size(
    what: &str,
    (w, h): (u32, u32),
    (iw, ih): (u32, u32),
) -> Result<(), EngineError> {
    if (w, h) == (iw, ih) {
        return Ok(());
    }
    Err(EngineError::Input(format!(
        "the {what} is {w}x{h} but the image {iw}x{ih}"
    )))
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

/// Token grids of a batch of indices `[B, side, side]`.
fn token_grids(indices: Tensor<3, Int>) -> Result<Vec<TokenGrid>, EngineError> {
    let side = indices.dims()[1];
    Ok(tensor_to_grids(indices)?
        .into_iter()
        .map(|indices| TokenGrid { side, indices })
        .collect())
}
