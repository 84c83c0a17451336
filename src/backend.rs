//! The one place where the compute device is chosen: burn-wgpu on a GPU adapter when a
//! real one exists, burn-flex on the CPU otherwise. The adapter is picked here and
//! handed to burn by its kind and index, so the name reported is the adapter in use.

use burn::prelude::Device;
use burn::tensor::DeviceKind;

/// What the user asked for with `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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
    /// Whether it is a GPU (which can fail at run time, and then gives way to the CPU).
    pub gpu: bool,
}

impl Backend {
    /// burn-flex on the CPU.
    pub fn cpu() -> Self {
        Self {
            device: Device::flex(),
            name: "cpu (burn-flex)".into(),
            gpu: false,
        }
    }
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
        BackendChoice::Cpu => Backend::cpu(),
        BackendChoice::Gpu => gpu(best_adapter(true).ok_or(NoGpu)?),
        BackendChoice::Auto => best_adapter(false).map_or_else(Backend::cpu, gpu),
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
            gpu: false,
        },
    };
    tracing::info!("compute backend: {}", backend.name);
    Ok(backend)
}

/// An adapter and how burn addresses it.
struct Adapter {
    info: wgpu::AdapterInfo,
    kind: DeviceKind,
}

fn gpu(adapter: Adapter) -> Backend {
    Backend {
        device: Device::wgpu(adapter.kind),
        name: format!("gpu: {} ({:?})", adapter.info.name, adapter.info.backend),
        gpu: true,
    }
}

/// The graphics APIs in the order burn's wgpu runtime tries them: it comes up on the
/// first one that has an adapter (Vulkan wherever Vulkan exists).
const APIS: [wgpu::Backends; 4] = [
    wgpu::Backends::VULKAN,
    wgpu::Backends::METAL,
    wgpu::Backends::DX12,
    wgpu::Backends::GL,
];

/// The best adapter of the graphics API burn will use: discrete, then integrated, then
/// virtual GPUs; software rasterisers only when `software`.
fn best_adapter(software: bool) -> Option<Adapter> {
    let found = APIS
        .iter()
        .map(|&api| enumerate(api))
        .find(|a| !a.is_empty())?;
    addressed(found)
        .into_iter()
        .filter(|a| software || a.info.device_type != wgpu::DeviceType::Cpu)
        .min_by_key(|a| rank(a.info.device_type))
}

/// The adapters of one graphics API, in enumeration order.
fn enumerate(api: wgpu::Backends) -> Vec<wgpu::AdapterInfo> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    descriptor.backends = api;
    let instance = wgpu::Instance::new(descriptor);
    pollster::block_on(instance.enumerate_adapters(api))
        .iter()
        .map(|adapter| adapter.get_info())
        .collect()
}

/// Burn's address of each adapter: every device type counts from zero on its own, in
/// enumeration order (`DiscreteGpu(1)` is the second discrete GPU). Adapters of no
/// known type are left out.
fn addressed(infos: Vec<wgpu::AdapterInfo>) -> Vec<Adapter> {
    let mut counts = [0usize; 3];
    let mut next = |slot: usize| {
        counts[slot] += 1;
        counts[slot] - 1
    };
    infos
        .into_iter()
        .filter_map(|info| {
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(next(0)),
                wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(next(1)),
                wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(next(2)),
                wgpu::DeviceType::Cpu => DeviceKind::Cpu,
                wgpu::DeviceType::Other => return None,
            };
            Some(Adapter { info, kind })
        })
        .collect()
}

fn rank(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        _ => 3,
    }
}
