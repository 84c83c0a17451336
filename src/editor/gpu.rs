//! The canvas drawn by `shaders/canvas.wgsl` through egui's wgpu paint callback, when
//! the window renders with wgpu: the picture, mask tint and sketch live in GPU
//! textures that are rewritten only when their layer changes, and the tint, its
//! feathered edge and the brush outline are computed per pixel. Without wgpu (the glow
//! renderer, or the tests' headless harness) the canvas paints egui textures instead.

use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu::{self, wgpu};

/// What one frame of the canvas needs on the GPU.
pub struct CanvasPaint {
    /// Picture size in pixels.
    pub size: [u32; 2],
    /// Layers that changed since the last upload: index (picture, mask, sketch) and
    /// tightly packed bytes (RGBA for the picture, one byte per pixel otherwise).
    pub uploads: Vec<(usize, Arc<Vec<u8>>)>,
    /// Tint (straight alpha), brush (x, y, radius in picture pixels; radius < 0 hides
    /// it), points per picture pixel, whether the mask shows.
    pub tint: [f32; 4],
    pub brush: [f32; 3],
    pub scale: f32,
    pub show_mask: bool,
}

/// The pipeline and the textures, kept in egui's callback resources.
struct Resources {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    uniforms: wgpu::Buffer,
    samplers: [wgpu::Sampler; 2],
    /// The layers' textures, their size, and the bind group over them.
    layers: Option<([u32; 2], [wgpu::Texture; 3], wgpu::BindGroup)>,
}

/// Builds the pipeline into the renderer's callback resources; false when there is no
/// wgpu renderer (the canvas then paints egui textures).
pub fn install(render_state: Option<&egui_wgpu::RenderState>) -> bool {
    let Some(state) = render_state else {
        return false;
    };
    let device = &state.device;
    // A driver that rejects the shader or pipeline leaves the canvas on the CPU path
    // instead of taking the editor down.
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("canvas"),
        source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/canvas.wgsl").into()),
    });
    let texture_entry = |binding| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: true },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    };
    let sampler_entry = |binding| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
        count: None,
    };
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("canvas"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            texture_entry(1),
            texture_entry(2),
            texture_entry(3),
            sampler_entry(4),
            sampler_entry(5),
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("canvas"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("canvas"),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &shader,
            entry_point: Some("vs_main"),
            buffers: &[],
            compilation_options: Default::default(),
        },
        fragment: Some(wgpu::FragmentState {
            module: &shader,
            entry_point: Some("fs_main"),
            targets: &[Some(state.target_format.into())],
            compilation_options: Default::default(),
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("canvas"),
        size: 48,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let sampler = |filter| {
        device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("canvas"),
            mag_filter: filter,
            min_filter: filter,
            ..Default::default()
        })
    };
    let samplers = [
        sampler(wgpu::FilterMode::Nearest),
        sampler(wgpu::FilterMode::Linear),
    ];
    if let Some(err) = pollster::block_on(scope.pop()) {
        tracing::warn!("the canvas shader was refused ({err}); drawing with egui textures");
        return false;
    }
    state.renderer.write().callback_resources.insert(Resources {
        pipeline,
        layout,
        uniforms,
        samplers,
        layers: None,
    });
    true
}

impl Resources {
    /// Textures of `size`, made anew when the size changed (every layer is then
    /// uploaded by the caller, whose revisions start over).
    fn ensure_layers(&mut self, device: &wgpu::Device, size: [u32; 2]) {
        if self.layers.as_ref().is_some_and(|(s, ..)| *s == size) {
            return;
        }
        let texture = |format| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some("canvas layer"),
                size: wgpu::Extent3d {
                    width: size[0],
                    height: size[1],
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        let textures = [
            texture(wgpu::TextureFormat::Rgba8Unorm),
            texture(wgpu::TextureFormat::R8Unorm),
            texture(wgpu::TextureFormat::R8Unorm),
        ];
        let views: Vec<wgpu::TextureView> = textures
            .iter()
            .map(|t| t.create_view(&Default::default()))
            .collect();
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("canvas"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&views[0]),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&views[1]),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(&views[2]),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: wgpu::BindingResource::Sampler(&self.samplers[0]),
                },
                wgpu::BindGroupEntry {
                    binding: 5,
                    resource: wgpu::BindingResource::Sampler(&self.samplers[1]),
                },
            ],
        });
        self.layers = Some((size, textures, group));
    }
}

impl egui_wgpu::CallbackTrait for CanvasPaint {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(res) = resources.get_mut::<Resources>() else {
            return Vec::new();
        };
        res.ensure_layers(device, self.size);
        if let Some((_, textures, _)) = &res.layers {
            for (layer, bytes) in &self.uploads {
                let bytes_per_pixel = if *layer == 0 { 4 } else { 1 };
                queue.write_texture(
                    textures[*layer].as_image_copy(),
                    bytes,
                    wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(bytes_per_pixel * self.size[0]),
                        rows_per_image: Some(self.size[1]),
                    },
                    wgpu::Extent3d {
                        width: self.size[0],
                        height: self.size[1],
                        depth_or_array_layers: 1,
                    },
                );
            }
        }
        let values: [f32; 12] = [
            self.tint[0],
            self.tint[1],
            self.tint[2],
            self.tint[3],
            self.brush[0],
            self.brush[1],
            self.brush[2],
            0.0,
            self.size[0] as f32,
            self.size[1] as f32,
            self.scale,
            if self.show_mask { 1.0 } else { 0.0 },
        ];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        queue.write_buffer(&res.uniforms, 0, &bytes);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(res) = resources.get::<Resources>() else {
            return;
        };
        if let Some((_, _, group)) = &res.layers {
            render_pass.set_pipeline(&res.pipeline);
            render_pass.set_bind_group(0, group, &[]);
            render_pass.draw(0..6, 0..1);
        }
    }
}
