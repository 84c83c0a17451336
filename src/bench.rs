//! Speed measurements behind `tessera bench …`.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use serde::Serialize;

use crate::backend::Backend;
use crate::nn::transformer::{TransformerConfig, causal_mask};
use crate::vqgan::VqganConfig;

/// Median seconds of one training step (forward, backward, optimiser) of each model.
#[derive(Debug, Clone, Serialize)]
pub struct StepTiming {
    /// Backend measured.
    pub backend: String,
    /// TS-VQGAN (default size), 16 images of 64x64, no mask: L1 + codebook loss.
    pub vqgan_step_seconds: f64,
    /// The same with a random mask on every image (both encoder streams computed).
    pub vqgan_masked_step_seconds: f64,
    /// Transformer d=256, 8 heads, 8 layers, 8 sequences of 256 tokens, causal mask,
    /// cross-entropy over 512 classes.
    pub transformer_step_seconds: f64,
    /// Its effective rate: analytic FLOPs (3x the forward's) per second.
    pub transformer_gflops: f64,
}

/// Times both models.
pub fn steps(backend: &Backend, repeat: usize) -> StepTiming {
    let (vqgan_step_seconds, vqgan_masked_step_seconds) = vqgan_step(backend, repeat);
    let (transformer_step_seconds, flops) = transformer_step(backend, repeat);
    StepTiming {
        backend: backend.name.clone(),
        vqgan_step_seconds,
        vqgan_masked_step_seconds,
        transformer_step_seconds,
        transformer_gflops: flops / transformer_step_seconds / 1e9,
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

/// Seconds per transformer training step and the step's analytic FLOPs: per layer
/// and token the forward costs `2·12·D²` in projections and MLP and `4·T·D` in
/// attention; backward twice the forward.
fn transformer_step(backend: &Backend, repeat: usize) -> (f64, f64) {
    let (batch, tokens, d, layers, heads, classes) = (8, 256, 256, 8, 8, 512);
    let device = backend.device.clone().autodiff();
    device.seed(0);
    let mut model = TokenModel {
        transformer: TransformerConfig::new(d, heads, layers).init(&device),
        head: burn::nn::LinearConfig::new(d, classes).init(&device),
    };
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<3>::random([batch, tokens, d], Distribution::Normal(0.0, 1.0), &device);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..batch * tokens)
                .map(|i| (i * 7 % classes) as i64)
                .collect::<Vec<_>>(),
            [batch * tokens],
        ),
        &device,
    );
    let mask = causal_mask(batch, heads, tokens, &device);
    let loss_fn = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let seconds = median_time(&device, repeat, || {
        let hidden = model.transformer.forward(x.clone(), Some(mask.clone()));
        let logits = model
            .head
            .forward(hidden)
            .reshape([batch * tokens, classes]);
        let loss = loss_fn.forward(logits, targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model.clone(), grads);
    });
    let (d, t) = (d as f64, tokens as f64);
    let forward = (batch as f64)
        * t
        * (layers as f64 * (24.0 * d * d + 4.0 * t * d) + 2.0 * d * classes as f64);
    (seconds, 3.0 * forward)
}

/// A transformer with a classification head, as the token models use it.
#[derive(Module, Debug)]
struct TokenModel {
    transformer: crate::nn::transformer::Transformer,
    head: burn::nn::Linear,
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
