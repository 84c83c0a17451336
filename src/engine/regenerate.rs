//! The regeneration every edit and repose comes down to: the square the models see
//! is tokenised with its mask by the leak-free encoder, the masked tokens are redrawn
//! (sampled by a token model, or refined by ImageBART's chain), and every grid is
//! decoded with the kept features (Eq. 4) and blended back only inside the mask.

use std::ops::ControlFlow;

use burn::prelude::*;
use image::{GrayImage, RgbImage};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{EditProgress, Engine, EngineError, FEATHER, PREVIEWS, TokenGrid, token_grids};
use crate::data::convert::{grids_to_tensor, images_to_tensor, masks_to_tensor, tensor_to_images};
use crate::ilat::model::{Guide, GuideKind};
use crate::ilat::sample::{self, Order};
use crate::imagebart::sample::Chain;
use crate::region::Region;
use crate::tokens::Sampling;
use crate::vqgan::Vqgan;

/// How the masked tokens are redrawn.
#[allow(clippy::large_enum_variant)] // one per job, on the stack for a moment
pub(super) enum How {
    /// By a token model (iLAT, Taming) in `order`, guided by `guide`.
    Sample {
        guide: Guide,
        model: &'static str,
        order: Order,
    },
    /// By ImageBART's masked forward-backward process.
    Refine { cycles: usize },
}

/// One regeneration.
pub(super) struct Job<'a> {
    /// The whole picture and its mask.
    pub image: &'a RgbImage,
    pub mask: &'a GrayImage,
    /// The square the models see, and its picture and mask at the models' side.
    pub region: Region,
    pub picture: RgbImage,
    pub small_mask: GrayImage,
    pub how: How,
    pub sampling: Sampling,
}

/// The tokenised square and what decoding needs.
struct Tokenised<'a> {
    vqgan: Vqgan,
    tokens: Vec<usize>,
    token_mask: Vec<bool>,
    /// The encoder's continuous features and the token mask as a tensor (Eq. 4).
    continuous: Tensor<4>,
    token_mask_tensor: Tensor<4>,
    grid_side: usize,
    device: Device,
    job: &'a Job<'a>,
    size: u32,
}

impl Tokenised<'_> {
    /// The whole picture with `grid` decoded into the square, inside the mask only.
    fn picture(&self, grid: &[usize]) -> Result<RgbImage, EngineError> {
        let indices = grids_to_tensor(&[grid], self.grid_side, &self.device);
        let decoded = self.vqgan.decode_mixed(
            indices,
            self.continuous.clone(),
            self.token_mask_tensor.clone(),
        );
        let edited = tensor_to_images(decoded)?.remove(0);
        let job = self.job;
        let feather = FEATHER * job.region.side as f32 / self.size as f32;
        Ok(job.region.composite(job.image, job.mask, &edited, feather))
    }

    fn token_grid(&self, grid: &[usize]) -> TokenGrid {
        TokenGrid {
            side: self.grid_side,
            indices: grid.to_vec(),
        }
    }
}

impl Engine {
    /// Runs a job: tokenise, redraw the masked tokens, decode and blend; previews and
    /// stages on the way through `progress`, which may cancel.
    pub(super) fn regenerate(
        &mut self,
        job: Job,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<RgbImage, EngineError> {
        match &job.how {
            How::Sample { guide, model, .. } => {
                let (_, kind) = self.models.token_model(model)?;
                let wanted = match guide {
                    Guide::Sketch(_) => GuideKind::Sketch,
                    Guide::Pose(_) => GuideKind::Pose,
                };
                if kind != wanted {
                    return Err(EngineError::Input(format!(
                        "the model {model} is guided by {kind:?}, not {wanted:?}"
                    )));
                }
            }
            How::Refine { .. } => {
                self.models.chain()?;
            }
        }
        let tokenised = self.tokenise(&job)?;
        let grid = match &job.how {
            How::Sample {
                guide,
                model,
                order,
            } => self.sample_tokens(&tokenised, guide.clone(), (model, *order), progress)?,
            How::Refine { cycles } => self.refine(&tokenised, *cycles, progress)?,
        };
        tokenised.picture(&grid)
    }

    /// The job's square through the leak-free encoder with its mask.
    fn tokenise<'a>(&mut self, job: &'a Job<'a>) -> Result<Tokenised<'a>, EngineError> {
        let size = self.image_size()?;
        let device = self.backend.device.clone();
        let (vqgan, config) = self.models.tokenizer()?;
        let (vqgan, grid_side) = (vqgan.clone(), config.grid());
        let mask = masks_to_tensor(std::slice::from_ref(&job.small_mask), &device);
        let (indices, continuous) = vqgan.encode(
            images_to_tensor(std::slice::from_ref(&job.picture), &device),
            Some(mask.clone()),
        );
        Ok(Tokenised {
            token_mask: vqgan.token_mask_flags(mask.clone())?,
            token_mask_tensor: vqgan.token_mask(mask),
            tokens: token_grids(indices)?.remove(0).indices,
            vqgan,
            continuous,
            grid_side,
            device,
            job,
            size,
        })
    }

    /// A token model samples the masked tokens; a few previews on the way.
    fn sample_tokens(
        &mut self,
        t: &Tokenised<'_>,
        guide: Guide,
        (model, order): (&'static str, Order),
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<Vec<usize>, EngineError> {
        let total = match order {
            Order::Local => t.token_mask.iter().filter(|&&m| m).count(),
            Order::Full => t.token_mask.len() - t.token_mask.iter().position(|&m| m).unwrap_or(0),
        };
        let (model, _) = self.models.token_model(model)?;
        let every = total.div_ceil(PREVIEWS).max(1);
        let mut done = 0;
        let mut failed = None;
        let grid = sample::sample(
            model,
            &t.tokens,
            &t.token_mask,
            guide,
            order,
            &t.job.sampling,
            &mut |grid, _| {
                done += 1;
                progress(EditProgress::Token {
                    grid: t.token_grid(grid),
                    done,
                    total,
                })?;
                if done % every == 0 && done < total {
                    match t.picture(grid) {
                        Ok(preview) => progress(EditProgress::Preview(preview))?,
                        Err(err) => return stop(&mut failed, err),
                    }
                }
                ControlFlow::Continue(())
            },
        );
        failed.map_or(Ok(()), Err)?;
        Ok(grid?)
    }

    /// ImageBART refines the masked tokens; every stage is decoded and reported.
    fn refine(
        &mut self,
        t: &Tokenised<'_>,
        cycles: usize,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<Vec<usize>, EngineError> {
        let chain = self.models.chain()?;
        let chain = Chain {
            models: &chain.steps,
            schedule: &chain.schedule,
        };
        let total = chain.stages(cycles);
        let mut done = 0;
        let mut rng = StdRng::seed_from_u64(t.job.sampling.seed);
        let mut failed = None;
        let grid = chain.refine(
            &t.tokens,
            &t.token_mask,
            (cycles, &t.job.sampling),
            &mut rng,
            &mut |stage| {
                done += 1;
                progress(EditProgress::Token {
                    grid: t.token_grid(&stage.grid),
                    done,
                    total,
                })?;
                match t.picture(&stage.grid) {
                    Ok(image) => progress(EditProgress::Stage {
                        cycle: stage.cycle,
                        level: stage.level,
                        image,
                    }),
                    Err(err) => stop(&mut failed, err),
                }
            },
        );
        failed.map_or(Ok(()), Err)?;
        Ok(grid?)
    }
}

/// Keeps the error a progress callback met and stops the decode, whose caller then
/// reports that error rather than a cancellation.
fn stop(failed: &mut Option<EngineError>, err: EngineError) -> ControlFlow<()> {
    *failed = Some(err);
    ControlFlow::Break(())
}
