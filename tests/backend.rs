//! The GPU path computes what the CPU path computes: the tokenizer, a cached
//! token-model sampling run, an ImageBART step and the HiT generator, each on wgpu and
//! on burn-flex with the same weights. Runs wherever wgpu finds an adapter, software
//! ones included (lavapipe from Mesa, which CI installs); says so and stops where there
//! is none. The models are small so that the GPU kernels (each shape compiled once,
//! seconds apiece on lavapipe) stay within a test's time; on wgpu the fused CPU kernels
//! fall back to burn's own operations, which is what runs there.

mod common;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use tessera::backend::{self, BackendChoice};
use tessera::data::faces::load_folder;
use tessera::engine::{Engine, EngineError, Sampling};
use tessera::hit::generator::{HitGeneratorConfig, StageConfig};
use tessera::ilat::model::{Guide, IlatConfig};
use tessera::ilat::sample::{self, Order};
use tessera::imagebart::model::ReverseConfig;
use tessera::imagebart::sample::reverse_step;
use tessera::tokens::decode::candidate_rngs;

/// The wgpu device, or none (with a note) where wgpu finds no adapter.
fn gpu() -> Option<Device> {
    match backend::select(BackendChoice::Gpu) {
        Ok(backend) => Some(backend.device),
        Err(err) => {
            eprintln!("skipped: {err}");
            None
        }
    }
}

/// The largest absolute difference between two tensors' values.
fn gap<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let a: Vec<f32> = a
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .expect("f32 values");
    let b: Vec<f32> = b
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .expect("f32 values");
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn gpu_and_cpu_reconstructions_agree() {
    let models = common::tiny_models("backend");
    let mut gpu = match Engine::new(&models, BackendChoice::Gpu) {
        Ok(engine) => engine,
        Err(EngineError::Backend(err)) => {
            eprintln!("skipped: {err}");
            return;
        }
        Err(err) => panic!("{err}"),
    };
    let mut cpu = Engine::new(&models, BackendChoice::Cpu).expect("cpu engine");
    let faces = load_folder(&common::sample_faces(), 64).expect("samples");
    let (on_gpu, gpu_tokens) = gpu.reconstruct(&faces[..2]).expect("gpu reconstruct");
    let (on_cpu, cpu_tokens) = cpu.reconstruct(&faces[..2]).expect("cpu reconstruct");
    for (a, b) in on_gpu.iter().zip(&on_cpu) {
        let worst = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        assert!(worst <= 2, "pixels differ by {worst} levels");
    }
    // Float rounding may flip a near-tie between two codes, rarely.
    let same = gpu_tokens
        .iter()
        .zip(&cpu_tokens)
        .flat_map(|(a, b)| a.indices.iter().zip(&b.indices))
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        same >= 2 * 256 * 98 / 100,
        "only {same} of 512 tokens agree"
    );
}

/// iLAT's logits agree within 1e-3, and a cached sampling run of two candidates
/// (fixed seeds, local order, then full order) draws the same tokens on both.
#[test]
fn gpu_and_cpu_token_models_agree() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    cpu.seed(21);
    let config = IlatConfig::new(24, 4)
        .with_d_model(32)
        .with_n_heads(4)
        .with_n_layers(2)
        .with_patch(2);
    let on_cpu = config.init(&cpu);
    let on_gpu = on_cpu.clone().fork(&gpu);
    let sketch = Tensor::<3>::random([1, 16, 4], Distribution::Bernoulli(0.3), &cpu);
    let guide = |device: &Device| Guide::Sketch(sketch.clone().to_device(device));
    let tokens: Vec<usize> = (0..16).map(|i| (i * 5) % 24).collect();
    let token_mask: Vec<bool> = (0..16).map(|i| [2, 3, 6, 11, 15].contains(&i)).collect();
    let ids = |device: &Device| {
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        Tensor::<2, Int>::from_data(TensorData::new(ids, [1, 16]), device)
    };
    let logits = |model: &tessera::ilat::model::Ilat, device: &Device| {
        let embedded = model.embed(ids(device), &model.embed_guide(guide(device)));
        let mask = Tensor::<4, Bool>::tril_mask([1, 4, 16, 16], 0, device);
        model.logits(embedded, mask)
    };
    let difference = gap(logits(&on_gpu, &gpu).to_device(&cpu), logits(&on_cpu, &cpu));
    assert!(difference < 1e-3, "logits differ by {difference}");
    let sampling = Sampling {
        top_k: 8,
        temperature: 1.0,
        seed: 3,
    };
    for order in [Order::Local, Order::Full] {
        let run = |model, device: &Device| {
            sample::sample(
                model,
                (&tokens, &token_mask),
                guide(device),
                order,
                (&sampling, 2),
                &mut |_, _| std::ops::ControlFlow::Continue(()),
            )
            .expect("sampled")
        };
        assert_eq!(run(&on_gpu, &gpu), run(&on_cpu, &cpu), "{order:?}");
    }
}

/// One ImageBART reverse step draws the same tokens on both (greedy).
#[test]
fn gpu_and_cpu_imagebart_steps_agree() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    cpu.seed(22);
    let config = ReverseConfig::new(10, 4)
        .with_d_model(16)
        .with_n_heads(2)
        .with_encoder_layers(1)
        .with_decoder_layers(2);
    let on_cpu = config.init(&cpu);
    let on_gpu = on_cpu.clone().fork(&gpu);
    let x_t = vec![(0..16).map(|i| i * 3 % 10).collect::<Vec<usize>>()];
    let greedy = Sampling {
        temperature: 0.0,
        ..Sampling::default()
    };
    let step = |model| {
        reverse_step(model, &x_t, None, &greedy, &mut candidate_rngs(0, 1)).expect("a step")
    };
    assert_eq!(step(&on_gpu), step(&on_cpu));
}

/// The HiT generator draws the same pictures on both (within 1e-3 of [-1, 1]).
#[test]
fn gpu_and_cpu_generators_agree() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    cpu.seed(23);
    let config = HitGeneratorConfig::new(vec![
        StageConfig::new(8, 16, 2, 1),
        StageConfig::new(16, 8, 2, 0),
    ])
    .with_latent(8)
    .with_z_dim(8);
    let on_cpu = config.init(&cpu);
    let on_gpu = on_cpu.clone().fork(&gpu);
    let z = Tensor::<2>::random([2, 8], Distribution::Normal(0.0, 1.0), &cpu);
    let difference = gap(
        on_gpu.forward(z.clone().to_device(&gpu)).to_device(&cpu),
        on_cpu.forward(z),
    );
    assert!(difference < 1e-3, "pictures differ by {difference}");
}
