//! Helpers shared by the integration tests.

use std::path::PathBuf;

use burn::prelude::Device;
use image::{GrayImage, Rgb, RgbImage};
use tessera::hit::conv::ConvGeneratorConfig;
use tessera::hit::generator::{HitGeneratorConfig, StageConfig};
use tessera::hit::{Arch, GanGeneratorConfig};
use tessera::ilat::model::{GuideKind, IlatConfig};
use tessera::imagebart::{self, model::ReverseConfig};
use tessera::store;
use tessera::vqgan::VqganConfig;

/// A fresh temporary folder for one test.
#[allow(dead_code)] // not every test binary writes files
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes a small untrained tokenizer (64x64 images, 16x16 tokens) and token models
/// (sketch- and pose-guided), ImageBART's chain and the two generators into a new
/// models folder, with the shipped face locator: enough to exercise every path
/// without the shipped weights.
#[allow(dead_code)] // not every test binary runs the engine
pub fn tiny_models(tag: &str) -> PathBuf {
    let dir = temp_dir(tag);
    let config = VqganConfig::new()
        .with_widths(vec![8, 16, 16])
        .with_codebook_size(64)
        .with_code_dim(8);
    let device = Device::flex();
    device.seed(5);
    store::save_model(&dir, "vqgan", &config, config.init(&device)).expect("save tiny model");
    let tokens = IlatConfig::new(64, 16)
        .with_d_model(32)
        .with_n_heads(4)
        .with_n_layers(2);
    for name in ["ilat", "taming"] {
        store::save_model(&dir, name, &tokens, tokens.init(&device)).expect("save tiny model");
    }
    let posed = tokens.with_guidance(GuideKind::Pose);
    for name in ["pose-ilat", "pose-taming"] {
        store::save_model(&dir, name, &posed, posed.init(&device)).expect("save tiny model");
    }
    let generators = GanGeneratorConfig::new(Arch::Hit)
        .with_hit(
            HitGeneratorConfig::new(vec![
                StageConfig::new(8, 16, 2, 1),
                StageConfig::new(16, 8, 2, 0),
                StageConfig::new(32, 8, 2, 0),
                StageConfig::new(64, 8, 2, 0),
            ])
            .with_latent(8)
            .with_z_dim(8),
        )
        .with_conv(
            ConvGeneratorConfig::new()
                .with_width(16)
                .with_min_width(8)
                .with_latent(8),
        );
    for arch in [Arch::Hit, Arch::Conv] {
        let mut config = generators.clone();
        config.arch = arch;
        store::save_model(&dir, arch.name(), &config, config.init(&device))
            .expect("save tiny model");
    }
    let chain = imagebart::default_chain(64);
    imagebart::write_chain(&imagebart::chain_path(&dir), &chain).expect("save tiny chain");
    for t in 1..=chain.steps() {
        let encoder = if t == chain.steps() { 0 } else { 1 };
        let step = ReverseConfig::new(64, 16)
            .with_d_model(32)
            .with_n_heads(4)
            .with_encoder_layers(encoder)
            .with_decoder_layers(1);
        store::save_model(&dir, &imagebart::step_name(t), &step, step.init(&device))
            .expect("save tiny model");
    }
    // The face locator is a converted network, not a trained one: the shipped copy.
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    for file in ["face-locator.json", "face-locator.safetensors"] {
        std::fs::copy(shipped.join(file), dir.join(file)).expect("copy the face locator");
    }
    dir
}

/// The repository's sample faces.
#[allow(dead_code)] // not every test binary edits faces
pub fn sample_faces() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples/faces")
}

/// Every pixel outside the mask is bit-identical; some pixel inside changed.
#[allow(dead_code)] // used by the test binaries that edit, not by every one
pub fn assert_only_masked_pixels_change(input: &RgbImage, mask: &GrayImage, output: &RgbImage) {
    assert_eq!(output.dimensions(), input.dimensions());
    let mut changed_inside = 0;
    for (x, y, p) in output.enumerate_pixels() {
        if mask.get_pixel(x, y).0[0] < 128 {
            assert_eq!(
                p,
                input.get_pixel(x, y),
                "pixel ({x}, {y}) outside the mask"
            );
        } else if p != input.get_pixel(x, y) {
            changed_inside += 1;
        }
    }
    assert!(changed_inside > 0, "nothing inside the mask changed");
}

/// `face` turned by `degrees` about its centre, enlarged `scale` times and put at
/// `(left, top)` of a `width`x`height` grey photo, sampled bilinearly: a smooth copy,
/// whose aligned crop differs from the original's only by interpolation and by the
/// locator.
#[allow(dead_code)] // used by the test binaries that place faces
pub fn turned_copy(
    face: &RgbImage,
    degrees: f32,
    scale: f32,
    (width, height): (u32, u32),
    (left, top): (f32, f32),
) -> RgbImage {
    let (cos, sin) = (degrees.to_radians().cos(), degrees.to_radians().sin());
    let (fw, fh) = (face.width() as f32, face.height() as f32);
    let (cx, cy) = (left + fw * scale / 2.0, top + fh * scale / 2.0);
    RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        let u = (cos * dx + sin * dy) / scale + fw / 2.0 - 0.5;
        let v = (-sin * dx + cos * dy) / scale + fh / 2.0 - 0.5;
        if u < 0.0 || v < 0.0 || u > fw - 1.0 || v > fh - 1.0 {
            return Rgb([128, 128, 128]);
        }
        let (u0, v0) = (u.floor() as u32, v.floor() as u32);
        let (u1, v1) = (
            (u0 + 1).min(face.width() - 1),
            (v0 + 1).min(face.height() - 1),
        );
        let (fu, fv) = (u - u0 as f32, v - v0 as f32);
        let p = |x, y| face.get_pixel(x, y).0.map(|c| c as f32);
        let (a, b, c, d) = (p(u0, v0), p(u1, v0), p(u0, v1), p(u1, v1));
        Rgb(std::array::from_fn(|k| {
            ((a[k] * (1.0 - fu) + b[k] * fu) * (1.0 - fv) + (c[k] * (1.0 - fu) + d[k] * fu) * fv)
                .round() as u8
        }))
    })
}
