//! The one place where the compute device is chosen: burn-wgpu when a real GPU
//! adapter exists, burn-flex on the CPU otherwise (DESIGN §2).

use burn::prelude::Device;
use burn::tensor::DeviceKind;
use eframe::wgpu;

/// What the user asked for with `--backend`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum BackendChoice {
    /// A hardware GPU if there is one, else the CPU.
    #[default]
    Auto,
    /// burn-flex on the CPU.
    Cpu,
    /// burn-wgpu on any adapter, software ones (lavapipe) included.
    Gpu,
    /// burn-ndarray, for the backend comparison only (feature `bench-ndarray`).
    #[cfg(feature = "bench-ndarray")]
    Ndarray,
}

/// The chosen device and a name for logs and the status bar.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The device every model runs on.
    pub device: Device,
    /// E.g. "cpu (burn-flex)" or "gpu: NVIDIA … (Vulkan)".
    pub name: String,
}

/// No adapter where one was demanded.
#[derive(Debug, thiserror::Error)]
#[error(
    "--backend gpu: no GPU adapter found (is a Vulkan driver installed? lavapipe: apt-get install mesa-vulkan-drivers)"
)]
pub struct NoGpu;

/// Chooses the device once, and logs the choice.
pub fn select(choice: BackendChoice) -> Result<Backend, NoGpu> {
    let backend = match choice {
        BackendChoice::Cpu => cpu(),
        BackendChoice::Gpu => gpu(adapters(true).into_iter().next().ok_or(NoGpu)?),
        BackendChoice::Auto => adapters(false).into_iter().next().map_or_else(cpu, gpu),
        #[cfg(feature = "bench-ndarray")]
        #[allow(deprecated)] // burn-ndarray is measured here, not used
        BackendChoice::Ndarray => Backend {
            device: Device::ndarray(),
            name: format!(
                "cpu (burn-ndarray{})",
                if cfg!(feature = "bench-ndarray-blas") {
                    ", OpenBLAS"
                } else {
                    ""
                }
            ),
        },
    };
    tracing::info!("compute backend: {}", backend.name);
    Ok(backend)
}

fn cpu() -> Backend {
    Backend {
        device: Device::flex(),
        name: "cpu (burn-flex)".into(),
    }
}

fn gpu(adapter: wgpu::AdapterInfo) -> Backend {
    Backend {
        device: Device::wgpu(DeviceKind::DefaultDevice),
        name: format!("gpu: {} ({:?})", adapter.name, adapter.backend),
    }
}

/// The GPU adapters present, best first; software rasterisers only when `software`.
fn adapters(software: bool) -> Vec<wgpu::AdapterInfo> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut found: Vec<wgpu::AdapterInfo> =
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .iter()
            .map(|adapter| adapter.get_info())
            .filter(|info| software || info.device_type != wgpu::DeviceType::Cpu)
            .collect();
    found.sort_by_key(|info| match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        _ => 3,
    });
    found
}
