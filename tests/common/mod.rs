//! Helpers shared by the integration tests.

use std::path::PathBuf;

use burn::prelude::Device;
use image::{GrayImage, RgbImage};
use tessera::hit::conv::ConvGeneratorConfig;
use tessera::hit::generator::{HitGeneratorConfig, StageConfig};
use tessera::hit::{Arch, GanGeneratorConfig};
use tessera::ilat::model::{GuideKind, IlatConfig};
use tessera::imagebart::{self, model::ReverseConfig};
use tessera::store;
use tessera::vqgan::VqganConfig;

/// A fresh temporary folder for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes a small untrained tokenizer (64x64 images, 16x16 tokens) and token models
/// (sketch- and pose-guided), ImageBART's chain and the two generators into a new
/// models folder: enough to exercise every path without the shipped
/// weights.
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
