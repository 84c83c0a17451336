//! The GPU path computes what the CPU path computes. Runs wherever wgpu finds an
//! adapter, software ones included (llvmpipe/lavapipe from Mesa); says so and stops
//! where there is none.

mod common;

use tessera::backend::BackendChoice;
use tessera::data::faces::load_folder;
use tessera::engine::{Engine, EngineError};

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
