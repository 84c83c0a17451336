// The editor's canvas on the GPU: the picture, the mask as a tint whose edge is
// feathered by linear filtering of the mask, the sketch strokes, and the brush
// outline under the pointer, in one pass over the picture's rectangle.

struct Uniforms {
    // Tint colour (straight alpha) and whether the mask is shown (w of `options`).
    tint: vec4<f32>,
    // Brush centre and radius in picture pixels; z < 0 hides it.
    brush: vec4<f32>,
    // Picture size in pixels (xy), points per picture pixel (z), show mask (w).
    options: vec4<f32>,
};

@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var picture: texture_2d<f32>;
@group(0) @binding(2) var mask: texture_2d<f32>;
@group(0) @binding(3) var sketch: texture_2d<f32>;
@group(0) @binding(4) var nearest_sampler: sampler;
@group(0) @binding(5) var linear_sampler: sampler;

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Two triangles covering the viewport (egui sets it to the canvas rectangle).
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> Varyings {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    let uv = corners[i];
    var out: Varyings;
    out.position = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.uv = uv;
    return out;
}

@fragment
fn fs_main(in: Varyings) -> @location(0) vec4<f32> {
    var color = textureSample(picture, nearest_sampler, in.uv).rgb;
    if (u.options.w > 0.5) {
        // Linear filtering of the 0/1 mask gives a one-pixel feather at its edge.
        let m = textureSample(mask, linear_sampler, in.uv).r;
        color = mix(color, u.tint.rgb, m * u.tint.a);
    }
    let stroke = 1.0 - textureSample(sketch, nearest_sampler, in.uv).r;
    color = mix(color, vec3<f32>(0.08, 0.08, 0.08), stroke);
    if (u.brush.z > 0.0) {
        // A ring one point wide at the brush radius: white inside, black outside.
        let d = distance(in.uv * u.options.xy, u.brush.xy) - u.brush.z;
        let width = 1.0 / u.options.z;
        if (abs(d) < width) {
            color = vec3<f32>(1.0, 1.0, 1.0);
        } else if (d >= width && d < 2.0 * width) {
            color = vec3<f32>(0.0, 0.0, 0.0);
        }
    }
    // egui's targets expect premultiplied, gamma-encoded colour, as the textures are.
    return vec4<f32>(color, 1.0);
}
