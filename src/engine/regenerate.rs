//! The regeneration every edit and repose comes down to: the square the models see
//! is tokenised with its mask by the leak-free encoder, the masked tokens are redrawn
//! (sampled by a token model, or refined by ImageBART's chain), and every grid is
//! decoded with the kept features (Eq. 4) and blended back only inside the mask.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use burn::prelude::*;
use image::{GrayImage, RgbImage, imageops};

use super::{EditProgress, Engine, EngineError, PREVIEWS, TokenGrid, token_grids};
use crate::data::convert::{grids_to_tensor, images_to_tensor, masks_to_tensor, tensor_to_images};
use crate::ilat::model::{Guide, GuideKind};
use crate::ilat::sample::{self, Order};
use crate::imagebart::sample::Chain;
use crate::region::{Region, Window};
use crate::tokens::Sampling;
use crate::tokens::decode::candidate_rngs;
use crate::vqgan::{self, Vqgan};

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

/// What the leak-free encoder makes of a square under its mask.
#[derive(Clone)]
struct Encoding {
    tokens: Vec<usize>,
    token_mask: Vec<bool>,
    /// The encoder's continuous features and the token mask as a tensor (Eq. 4).
    continuous: Tensor<4>,
    token_mask_tensor: Tensor<4>,
}

/// The last square encoded, kept for the next job: the editor edits the same square
/// under the same mask again and again (each sketch stroke of a live edit, each
/// Generate), and the encoding depends only on the square's pixels, its mask and the
/// tokenizer, while it is a quarter of a 128 px edit (BENCHMARKS).
pub(super) struct LastEncoding {
    tokenizer: String,
    picture: RgbImage,
    mask: GrayImage,
    encoding: Encoding,
}

/// The tokenised square and what decoding needs.
struct Tokenised<'a> {
    vqgan: Vqgan,
    encoding: Encoding,
    /// The part of the square the way back reads (model pixels).
    reads: Window,
    grid_side: usize,
    device: Device,
    job: &'a Job<'a>,
}

impl Tokenised<'_> {
    /// The whole picture with each grid decoded into the square (one batched decode),
    /// inside the mask only. Only the part of the square the way back reads is decoded
    /// (the mask's box and the blend's reach); the rest is the square's own picture,
    /// which the composite never reads.
    fn pictures(&self, grids: &[Vec<usize>]) -> Result<Vec<RgbImage>, EngineError> {
        let (job, reads) = (self.job, self.reads);
        if reads.is_empty() {
            return Ok(vec![job.image.clone(); grids.len()]);
        }
        let n = grids.len();
        let rows: Vec<&[usize]> = grids.iter().map(Vec::as_slice).collect();
        let indices = grids_to_tensor(&rows, self.grid_side, &self.device);
        let expand = |t: Tensor<4>| {
            let [_, c, h, w] = t.dims();
            t.expand([n, c, h, w])
        };
        let decoded = self.vqgan.decode_mixed(
            indices,
            expand(self.encoding.continuous.clone()),
            expand(self.encoding.token_mask_tensor.clone()),
            reads,
        );
        Ok(tensor_to_images(decoded)?
            .iter()
            .map(|part| {
                let mut edited = job.picture.clone();
                imageops::replace(&mut edited, part, reads.x0.into(), reads.y0.into());
                job.region.composite(job.image, job.mask, &edited)
            })
            .collect())
    }

    fn token_grid(&self, grid: &[usize]) -> TokenGrid {
        TokenGrid {
            side: self.grid_side,
            indices: grid.to_vec(),
        }
    }

    /// Reports the first candidate's picture with `grid` as a preview.
    fn preview(
        &self,
        grid: &[usize],
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, EngineError> {
        let image = self.pictures(&[grid.to_vec()])?.remove(0);
        Ok(progress(EditProgress::Preview(image)))
    }
}

/// When a preview is worth its decode, which costs several token steps: the first as
/// soon as the first token is drawn, then each only after three times as long as the
/// last preview took, so previews take at most about a quarter of an edit on any
/// machine, and at most [`PREVIEWS`] in all; and none when the tokens left, at the
/// pace since the last preview, take less time than a preview costs (the finished
/// picture comes about as soon, and the preview would only delay it). Previews show
/// the first candidate, the one the canvas shows: decoding a picture costs as much per
/// candidate as it does for one (the decoder's work grows with its pixels), so
/// previews of every candidate would cost as much as the candidates save
/// (BENCHMARKS, "Candidates").
struct PreviewClock {
    shown: usize,
    last: Option<LastPreview>,
}

/// What the last preview cost, when it ended, and how many tokens were drawn by then.
struct LastPreview {
    cost: Duration,
    ended: Instant,
    done: usize,
}

impl PreviewClock {
    fn new() -> Self {
        Self {
            shown: 0,
            last: None,
        }
    }

    /// Whether a preview is due at `now`, `done` of `total` tokens drawn.
    fn due(&self, now: Instant, done: usize, total: usize) -> bool {
        let Some(last) = &self.last else {
            return true;
        };
        if self.shown >= PREVIEWS || now < last.ended + last.cost * 3 {
            return false;
        }
        let pace = (now - last.ended) / (done.saturating_sub(last.done).max(1) as u32);
        pace * (total.saturating_sub(done) as u32) > last.cost
    }

    /// A preview that ran from `started` to `ended` has been shown, `done` tokens in.
    fn shown(&mut self, started: Instant, ended: Instant, done: usize) {
        self.shown += 1;
        self.last = Some(LastPreview {
            cost: ended - started,
            ended,
            done,
        });
    }
}

impl Engine {
    /// Runs a job for `candidates` candidates together: tokenise, redraw the masked
    /// tokens, decode and blend; previews and stages on the way through `progress`,
    /// which may cancel. Candidate k is the picture the job with seed `seed + k` makes
    /// alone.
    pub(super) fn regenerate(
        &mut self,
        job: Job,
        candidates: usize,
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<Vec<RgbImage>, EngineError> {
        match &job.how {
            How::Sample { guide, model, .. } => {
                let kind = self.models.token_model(model)?.guidance;
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
        let candidates = candidates.max(1);
        let grids = match &job.how {
            How::Sample {
                guide,
                model,
                order,
            } => self.sample_tokens(
                &tokenised,
                guide.clone(),
                (model, *order, candidates),
                progress,
            )?,
            How::Refine { cycles } => self.refine(&tokenised, (*cycles, candidates), progress)?,
        };
        tokenised.pictures(&grids)
    }

    /// The job's square through the leak-free encoder with its mask (the last
    /// encoding again when the square, its mask and the tokenizer are the last job's).
    fn tokenise<'a>(&mut self, job: &'a Job<'a>) -> Result<Tokenised<'a>, EngineError> {
        let device = self.backend.device.clone();
        let tokenizer = match &job.how {
            How::Sample { model, .. } => self.models.token_model(model)?.tokenizer.clone(),
            How::Refine { .. } => vqgan::FACES.to_string(),
        };
        let (vqgan, config) = self.models.tokenizer_named(&tokenizer)?;
        let (vqgan, grid_side) = (vqgan.clone(), config.grid());
        let kept = self.last_encoding.as_ref().filter(|last| {
            last.tokenizer == tokenizer
                && last.mask == job.small_mask
                && last.picture == job.picture
        });
        let encoding = match kept {
            Some(last) => last.encoding.clone(),
            None => {
                let encoding = encode(&vqgan, &job.picture, &job.small_mask, &device)?;
                self.last_encoding = Some(LastEncoding {
                    tokenizer,
                    picture: job.picture.clone(),
                    mask: job.small_mask.clone(),
                    encoding: encoding.clone(),
                });
                encoding
            }
        };
        Ok(Tokenised {
            vqgan,
            encoding,
            reads: job.region.reads(&job.small_mask),
            grid_side,
            device,
            job,
        })
    }

    /// A token model samples the masked tokens of every candidate; previews on the way
    /// (the first right after the pass over the known tokens, see [`PreviewClock`]).
    fn sample_tokens(
        &mut self,
        t: &Tokenised<'_>,
        guide: Guide,
        (model, order, candidates): (&'static str, Order, usize),
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<usize>>, EngineError> {
        let total = match order {
            Order::Local => t.encoding.token_mask.iter().filter(|&&m| m).count(),
            Order::Full => {
                t.encoding.token_mask.len()
                    - t.encoding.token_mask.iter().position(|&m| m).unwrap_or(0)
            }
        };
        let model = &self.models.token_model(model)?.model;
        let mut clock = PreviewClock::new();
        let mut done = 0;
        let mut failed = None;
        let grids = sample::sample(
            model,
            (&t.encoding.tokens, &t.encoding.token_mask),
            guide,
            order,
            (&t.job.sampling, candidates),
            &mut |grids, _| {
                done += 1;
                progress(EditProgress::Token {
                    grid: t.token_grid(&grids[0]),
                    done,
                    total,
                })?;
                let started = Instant::now();
                if !clock.due(started, done, total) || done == total {
                    return ControlFlow::Continue(());
                }
                let flow = t.preview(&grids[0], progress);
                clock.shown(started, Instant::now(), done);
                flow.unwrap_or_else(|err| stop(&mut failed, err))
            },
        );
        failed.map_or(Ok(()), Err)?;
        Ok(grids?)
    }

    /// ImageBART refines the masked tokens of every candidate; every stage of the first
    /// is decoded and reported.
    fn refine(
        &mut self,
        t: &Tokenised<'_>,
        (cycles, candidates): (usize, usize),
        progress: &mut dyn FnMut(EditProgress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<usize>>, EngineError> {
        let chain = self.models.chain()?;
        let chain = Chain {
            models: &chain.steps,
            schedule: &chain.schedule,
        };
        let total = chain.stages(cycles);
        let mut done = 0;
        let mut rngs = candidate_rngs(t.job.sampling.seed, candidates);
        let mut failed = None;
        let grids = chain.refine(
            &t.encoding.tokens,
            &t.encoding.token_mask,
            (cycles, &t.job.sampling),
            &mut rngs,
            &mut |stage| {
                done += 1;
                progress(EditProgress::Token {
                    grid: t.token_grid(&stage.grids[0]),
                    done,
                    total,
                })?;
                match t.pictures(&stage.grids[..1]) {
                    Ok(mut pictures) => progress(EditProgress::Stage {
                        cycle: stage.cycle,
                        level: stage.level,
                        image: pictures.remove(0),
                    }),
                    Err(err) => stop(&mut failed, err),
                }
            },
        );
        failed.map_or(Ok(()), Err)?;
        Ok(grids?)
    }
}

/// `picture` through `vqgan`'s leak-free encoder under `mask`.
fn encode(
    vqgan: &Vqgan,
    picture: &RgbImage,
    mask: &GrayImage,
    device: &Device,
) -> Result<Encoding, EngineError> {
    let mask = masks_to_tensor(std::slice::from_ref(mask), device);
    let (indices, continuous) = vqgan.encode(
        images_to_tensor(std::slice::from_ref(picture), device),
        Some(mask.clone()),
    );
    Ok(Encoding {
        tokens: token_grids(indices)?.remove(0).indices,
        token_mask: vqgan.token_mask_flags(mask.clone())?,
        token_mask_tensor: vqgan.token_mask(mask),
        continuous,
    })
}

/// Keeps the error a progress callback met and stops the decode, whose caller then
/// reports that error rather than a cancellation.
fn stop(failed: &mut Option<EngineError>, err: EngineError) -> ControlFlow<()> {
    *failed = Some(err);
    ControlFlow::Break(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first preview comes at once; later ones wait three times the last one's
    /// cost, and do not come when the tokens left would be drawn sooner than a preview.
    #[test]
    fn previews_wait_and_are_skipped_near_the_end() {
        let ms = Duration::from_millis;
        let mut clock = PreviewClock::new();
        let start = Instant::now();
        assert!(clock.due(start, 1, 25));
        clock.shown(start, start + ms(20), 1);
        let ended = start + ms(20);
        assert!(
            !clock.due(ended + ms(50), 12, 25),
            "too soon after the last"
        );
        // 3 ms a token since: 19 tokens left take 57 ms, more than a preview costs.
        assert!(clock.due(ended + ms(60), 21, 40));
        // 5 tokens left take 15 ms: the finished picture is nearer than a preview.
        assert!(!clock.due(ended + ms(60), 21, 26));
    }
}
