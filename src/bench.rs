//! Speed measurements behind `tessera bench …`.

use std::ops::ControlFlow;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use image::{GrayImage, Luma};

use crate::backend::Backend;
use crate::engine::{DEFAULT_CYCLES, EditProgress, EditRequest, Engine, FaceChoice, Method};
use crate::evaluate::EvalError;
use crate::ilat::model::{Guide, GuideKind, Ilat, IlatConfig};
use crate::ilat::sample::{self, Order};
use crate::ilat::train::{Objective, TokenBatch, attention_masks, batch_loss};
use crate::tokens::Sampling;
use crate::vqgan::VqganConfig;

/// Where the CPU's time goes, in one run (`tessera bench throughput`).
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Backend measured.
    pub backend: String,
    /// GEMM rate over the matrix products of the shared transformer's training step
    /// (forward and backward shapes, see [`gemm_rate`]).
    pub gemm_gflops: f64,
    /// TS-VQGAN (default size), 16 images of 64x64, no mask: L1 + codebook loss.
    pub vqgan_step_seconds: f64,
    /// The same with a random mask on every image (both encoder streams computed).
    pub vqgan_masked_step_seconds: f64,
    /// One iLAT training step at the shipped size (8 sequences of 256 tokens, LA mask,
    /// NLL on the masked tokens, AdamW).
    pub transformer_step_seconds: f64,
    /// Its effective rate: analytic FLOPs per second (see [`transformer_flops`]).
    pub transformer_gflops: f64,
    /// `transformer_gflops / gemm_gflops`.
    pub transformer_ratio: f64,
    /// Milliseconds per generated token of a 10 % local edit (26 tokens), the first
    /// pass over the kept tokens included.
    pub ms_per_token: f64,
    /// The same without the KV cache (the whole sequence re-run for every token).
    pub ms_per_token_recomputed: f64,
}

/// Measures everything [`Throughput`] holds; the token models at `model`'s size.
pub fn throughput(backend: &Backend, model: &IlatConfig, repeat: usize) -> Throughput {
    let gemm_gflops = gemm_rate(backend, model, repeat);
    let (vqgan_step_seconds, vqgan_masked_step_seconds) = vqgan_step(backend, repeat);
    let transformer_step_seconds = transformer_step(backend, model, repeat);
    let transformer_gflops = transformer_flops(model, TRAIN_BATCH) / transformer_step_seconds / 1e9;
    let ilat = fresh_model(backend, model);
    let local = sampling_seconds(&ilat, model, 0.10, Order::Local, true, repeat);
    let recomputed = sampling_seconds(&ilat, model, 0.10, Order::Local, false, 1);
    let masked = (0.10 * model.tokens() as f64).round();
    Throughput {
        backend: backend.name.clone(),
        gemm_gflops,
        vqgan_step_seconds,
        vqgan_masked_step_seconds,
        transformer_step_seconds,
        transformer_gflops,
        transformer_ratio: transformer_gflops / gemm_gflops,
        ms_per_token: 1e3 * local / masked,
        ms_per_token_recomputed: 1e3 * recomputed / masked,
    }
}

/// Sequences per training step.
const TRAIN_BATCH: usize = 8;

/// GFLOP/s of the matrix products a training step of the shared transformer runs, at
/// the shipped size: for each weight `W` (`[D, 3D]`, `[D, D]`, `[D, 4D]`, `[4D, D]`) the
/// forward `X·W` with `X` of `B·T` rows, and the two backward products `G·Wᵀ` and
/// `Xᵀ·G`, with the transposes as autodiff makes them. Each costs `2·m·k·n` FLOPs; the
/// rate is all their FLOPs over all their (median) times.
fn gemm_rate(backend: &Backend, model: &IlatConfig, repeat: usize) -> f64 {
    let device = &backend.device;
    let (m, d) = (TRAIN_BATCH * model.tokens(), model.d_model);
    let random = |rows: usize, cols: usize| {
        Tensor::<2>::random([rows, cols], Distribution::Normal(0.0, 1.0), device)
    };
    let (mut flops, mut seconds) = (0.0, 0.0);
    for (k, n) in [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)] {
        let (x, w, g) = (random(m, k), random(k, n), random(m, n));
        let products: [(Tensor<2>, Tensor<2>); 3] = [
            (x.clone(), w.clone()),
            (g.clone(), w.transpose()),
            (x.transpose(), g),
        ];
        for (a, b) in products {
            let [rows, inner] = a.dims();
            let cols = b.dims()[1];
            seconds += median_time(device, repeat.max(5), || {
                std::hint::black_box(a.clone().matmul(b.clone()));
            });
            flops += 2.0 * (rows * inner * cols) as f64;
        }
    }
    flops / seconds / 1e9
}

/// Analytic FLOPs of one training step (forward + backward = 3x forward). Per token
/// and layer the forward costs `2·12·D²` in the projections and the MLP and `4·T·D`
/// in attention (`QKᵀ` and the weighted sum of values); the head `2·D·V` per token.
pub fn transformer_flops(model: &IlatConfig, batch: usize) -> f64 {
    let (d, t, v) = (
        model.d_model as f64,
        (model.conditions() + model.tokens()) as f64,
        model.vocab as f64,
    );
    let per_token = model.n_layers as f64 * (24.0 * d * d + 4.0 * t * d) + 2.0 * d * v;
    3.0 * batch as f64 * t * per_token
}

/// Seconds per iLAT training step on random tokens with a random quarter masked.
fn transformer_step(backend: &Backend, config: &IlatConfig, repeat: usize) -> f64 {
    let device = backend.device.clone().autodiff();
    device.seed(0);
    let mut model = config.init(&device);
    let mut optim = AdamWConfig::new().init();
    let mut rng = StdRng::seed_from_u64(0);
    let n = config.tokens();
    let token_masks: Vec<Vec<bool>> = (0..TRAIN_BATCH)
        .map(|_| (0..n).map(|_| rng.random_bool(0.25)).collect())
        .collect();
    let views: Vec<&[bool]> = token_masks.iter().map(Vec::as_slice).collect();
    let ids = |rng: &mut StdRng| -> Vec<i64> {
        (0..TRAIN_BATCH * n)
            .map(|_| rng.random_range(0..config.vocab as i64))
            .collect()
    };
    let batch = TokenBatch {
        inputs: Tensor::from_data(TensorData::new(ids(&mut rng), [TRAIN_BATCH, n]), &device),
        targets: Tensor::from_data(TensorData::new(ids(&mut rng), [TRAIN_BATCH, n]), &device),
        guide: Guide::Sketch(Tensor::random(
            [TRAIN_BATCH, n, config.patch * config.patch],
            Distribution::Bernoulli(0.1),
            &device,
        )),
        mask: attention_masks(&views, config, Objective::LocalAr, &device),
        weights: Tensor::from_data(
            TensorData::new(
                token_masks
                    .iter()
                    .flatten()
                    .map(|&m| if m { 1.0f32 } else { 0.0 })
                    .collect::<Vec<_>>(),
                [TRAIN_BATCH, n],
            ),
            &device,
        ),
    };
    median_time(&device, repeat, || {
        let loss = batch_loss(&model, &batch);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model.clone(), grads);
    })
}

/// A token model of `config`'s size with fresh weights (speed does not depend on them).
fn fresh_model(backend: &Backend, config: &IlatConfig) -> Ilat {
    backend.device.seed(0);
    config.init(&backend.device)
}

/// Median seconds to sample the tokens of a blob covering `rate` of the grid (the
/// tokens nearest the centre), in `order`, with the KV cache or (`cached` false) with
/// the whole sequence re-run for every token.
fn sampling_seconds(
    model: &Ilat,
    config: &IlatConfig,
    rate: f64,
    order: Order,
    cached: bool,
    repeat: usize,
) -> f64 {
    let device = &model.devices()[0];
    let n = config.tokens();
    let token_mask = central_blob(config.grid, (rate * n as f64).round() as usize);
    let tokens: Vec<usize> = (0..n).map(|i| i * 7 % config.vocab).collect();
    let sketch = Guide::Sketch(Tensor::<3>::zeros(
        [1, n, config.patch * config.patch],
        device,
    ));
    let sampling = Sampling::default();
    median_time(device, repeat, || {
        let sketch = sketch.clone();
        // The callback never breaks and the CPU backend reads back, so neither sampler
        // can fail here.
        let grid = if cached {
            sample::sample(
                model,
                (&tokens, &token_mask),
                sketch,
                order,
                (&sampling, 1),
                &mut |_, _| ControlFlow::Continue(()),
            )
            .expect("a benchmark's sampler is never cancelled")
            .remove(0)
        } else {
            sample::sample_recomputed(model, &tokens, &token_mask, sketch, order, &sampling)
                .expect("logits read back from the CPU")
        };
        std::hint::black_box(grid);
    })
}

/// The `count` tokens of a `side`x`side` grid nearest its centre.
fn central_blob(side: usize, count: usize) -> Vec<bool> {
    let centre = (side as f64 - 1.0) / 2.0;
    let mut order: Vec<usize> = (0..side * side).collect();
    let distance = |i: usize| {
        let (x, y) = ((i % side) as f64, (i / side) as f64);
        (x - centre).hypot(y - centre)
    };
    order.sort_by(|&a, &b| distance(a).total_cmp(&distance(b)).then(a.cmp(&b)));
    let mut mask = vec![false; side * side];
    for &i in order.iter().take(count) {
        mask[i] = true;
    }
    mask
}

/// One row of `tessera bench local-ar`.
#[derive(Debug, Clone, Serialize)]
pub struct LocalArRow {
    /// Fraction of tokens masked.
    pub mask_rate: f64,
    /// Seconds to sample the masked tokens in iLAT's local order.
    pub local_seconds: f64,
    /// Seconds to sample every token of the grid autoregressively (Taming's whole-image
    /// generation), with the same KV cache.
    pub full_seconds: f64,
    /// `full_seconds / local_seconds`.
    pub speedup: f64,
}

/// `tessera bench local-ar`: local against full autoregression at 5, 10 and 30 %.
#[derive(Debug, Clone, Serialize)]
pub struct LocalAr {
    /// One row per mask rate.
    pub rows: Vec<LocalArRow>,
}

/// Times local and full sampling with a model of `config`'s size.
pub fn local_ar(backend: &Backend, config: &IlatConfig, repeat: usize) -> LocalAr {
    let model = fresh_model(backend, config);
    let full_seconds = sampling_seconds(&model, config, 1.0, Order::Full, true, repeat);
    let rows = [0.05, 0.10, 0.30]
        .into_iter()
        .map(|mask_rate| {
            let local_seconds =
                sampling_seconds(&model, config, mask_rate, Order::Local, true, repeat);
            LocalArRow {
                mask_rate,
                local_seconds,
                full_seconds,
                speedup: full_seconds / local_seconds,
            }
        })
        .collect();
    LocalAr { rows }
}

/// `tessera bench edit`: one face edit end to end.
#[derive(Debug, Clone, Serialize)]
pub struct EditTiming {
    /// Median wall-clock seconds of the whole edit (every candidate), a new seed each
    /// time under the same mask: the editor's live loop (each sketch stroke, each
    /// Generate), in which the engine reuses the picture's encoding.
    pub median_seconds: f64,
    /// The same with the mask moved by a token each time, so that every edit encodes
    /// its picture anew (a new mask, a new picture).
    pub new_mask_seconds: f64,
    /// Median seconds until the first preview reached the caller (the live loop).
    pub first_preview_seconds: f64,
    /// Candidates made per edit.
    pub candidates: usize,
    /// Side of the pictures the models work at.
    pub image_size: u32,
    /// Timed runs of each kind.
    pub runs: usize,
}

/// Times iLAT edits of `candidates` candidates of the first sample face with a
/// centred box mask of 20/64 of the side (25 of 256 tokens, about 10 %), models loaded
/// beforehand: the live loop (same mask, a new seed each run), then new masks.
pub fn edit(engine: &mut Engine, runs: usize, candidates: usize) -> Result<EditTiming, EvalError> {
    let size = engine.image_size()?;
    let face =
        crate::data::faces::load_square(&crate::paths::sample_faces().join("000901.png"), size)?;
    // 22..42 of 64: the same box at every side, moved right by `shift`.
    let (lo, hi) = (size * 22 / 64, size * 42 / 64);
    let boxed = |shift: u32| {
        GrayImage::from_fn(size, size, |x, y| {
            let inside = (lo + shift..hi + shift).contains(&x) && (lo..hi).contains(&y);
            Luma([if inside { 255 } else { 0 }])
        })
    };
    engine.prepare(Method::Ilat, GuideKind::Sketch)?;
    let mut request = EditRequest {
        image: face,
        mask: boxed(0),
        sketch: None,
        method: Method::Ilat,
        sampling: Sampling::default(),
        cycles: DEFAULT_CYCLES,
        face: FaceChoice::Off,
    };
    let live = timed_edits(engine, &mut request, (runs, candidates), |run, r| {
        r.sampling.seed = run as u64;
    })?;
    // A token's width: the box covers as many tokens wherever it is.
    let token = size / 16;
    let moved = timed_edits(engine, &mut request, (runs, candidates), |run, r| {
        r.mask = boxed(token * (run % 2) as u32);
    })?;
    Ok(EditTiming {
        median_seconds: live.0,
        new_mask_seconds: moved.0,
        first_preview_seconds: live.1,
        candidates,
        image_size: size,
        runs,
    })
}

/// The median seconds of `runs` edits of `request` changed by `vary(run, request)`
/// before each, after one to warm up, and the median seconds to their first preview.
fn timed_edits(
    engine: &mut Engine,
    request: &mut EditRequest,
    (runs, candidates): (usize, usize),
    mut vary: impl FnMut(usize, &mut EditRequest),
) -> Result<(f64, f64), EvalError> {
    let device = engine.backend().device.clone();
    let mut failure = None;
    let mut first_previews = Vec::new();
    let mut run = 0;
    let seconds = median_time(&device, runs, || {
        vary(run, request);
        run += 1;
        let start = Instant::now();
        let mut first = None;
        let result = engine.edit_candidates(request, candidates, &mut |event| {
            if let EditProgress::Preview(_) = event {
                first.get_or_insert_with(|| start.elapsed().as_secs_f64());
            }
            ControlFlow::Continue(())
        });
        first_previews.push(first.unwrap_or(f64::NAN));
        if let Err(err) = result {
            failure = Some(err);
        }
    });
    match failure {
        Some(err) => Err(err.into()),
        None => Ok((seconds, median(&mut first_previews[1..].to_vec()))),
    }
}

/// Runs `step` once to warm up, then `repeat` times; the median seconds.
fn median_time(device: &Device, repeat: usize, mut step: impl FnMut()) -> f64 {
    let mut times = Vec::new();
    for _ in 0..repeat + 1 {
        let start = Instant::now();
        step();
        if let Err(err) = device.sync() {
            tracing::warn!("device sync failed: {err:?}");
        }
        times.push(start.elapsed().as_secs_f64());
    }
    median(&mut times[1..].to_vec())
}

/// Seconds per TS-VQGAN training step (L1 + codebook loss), without and with masks.
fn vqgan_step(backend: &Backend, repeat: usize) -> (f64, f64) {
    let device = backend.device.clone().autodiff();
    device.seed(0);
    let batch = 16;
    let config = VqganConfig::new();
    let images = Tensor::<4>::random(
        [batch, 3, 64, 64],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let mask = Tensor::<4>::random([batch, 1, 64, 64], Distribution::Uniform(0.0, 1.0), &device)
        .greater_elem(0.7)
        .float();
    let time = |mask: Option<Tensor<4>>| {
        let mut model = config.init(&device);
        let mut optim = AdamConfig::new().init();
        median_time(&device, repeat, || {
            let out = model.forward(images.clone(), mask.clone());
            let loss = (out.images - images.clone()).abs().mean() + out.quantized.loss;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-4, model.clone(), grads);
        })
    };
    (time(None), time(Some(mask)))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
