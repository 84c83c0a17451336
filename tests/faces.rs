//! The face locator against MediaPipe's own outputs (exported once by
//! `scripts/blazeface-reference.py` into `tests/corpus/faces`), and the aligned crop of
//! a face that was turned and enlarged.

mod common;

use std::path::PathBuf;

use burn::prelude::Device;
use image::RgbImage;
use serde_json::Value;
use tessera::faces::FaceLocator;
use tessera::metrics::psnr;
use tessera::paths::models_dir;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/faces")
}

fn locator() -> FaceLocator {
    let json = models_dir().join("face-locator.json");
    FaceLocator::load(&json, &json.with_extension("safetensors"), &Device::flex()).expect("locator")
}

/// `|a - b| / max(1, |b|)`: the reference's own measure (far-off anchors have logits
/// near -3e4, where absolute differences are float noise).
fn relative(a: f32, b: f64) -> f64 {
    (a as f64 - b).abs() / b.abs().max(1.0)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Tolerances: the network's outputs within 1e-3 relative (the reference's NumPy
/// port was within 1.5e-4 of the interpreter), decoded faces within 2e-3 of the input's
/// side.
#[test]
fn the_locator_matches_mediapipe_on_the_exported_photos() {
    let locator = locator();
    let reference: Value = serde_json::from_slice(
        &std::fs::read(corpus().join("reference.json")).expect("reference.json"),
    )
    .expect("json");
    let cases: Vec<&Value> = reference["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["model"] == "full")
        .collect();
    assert!(cases.len() >= 5, "{} full-range cases", cases.len());
    for case in cases {
        let name = case["photo"].as_str().expect("photo");
        let input = image::open(corpus().join(case["png"].as_str().expect("png")))
            .expect("png")
            .to_rgb8();
        let (regressors, logits) = locator.raw(&input).expect("run");
        let scores: Vec<f32> =
            std::fs::read(corpus().join(case["scores"].as_str().expect("scores")))
                .expect("scores")
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
        assert_eq!(logits.len(), scores.len(), "{name}");
        let worst = logits
            .iter()
            .zip(&scores)
            .map(|(a, &b)| relative(*a, b as f64))
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "{name}: logits off by {worst:e}");
        for anchor in case["anchors"].as_array().expect("anchors") {
            let i = anchor["index"].as_u64().expect("index") as usize;
            for (k, want) in floats(&anchor["regressors"]).into_iter().enumerate() {
                let got = regressors[i * 16 + k];
                assert!(
                    relative(got, want) < 1e-3,
                    "{name} anchor {i} value {k}: {got} vs {want}"
                );
            }
        }
        let size = locator.input_size() as f64;
        let found = locator.detect(&input).expect("detect");
        let wanted = case["detections"].as_array().expect("detections");
        assert_eq!(found.len(), wanted.len(), "{name}: faces");
        for (face, want) in found.iter().zip(wanted) {
            assert!((face.score as f64 - want["score"].as_f64().expect("score")).abs() < 1e-3);
            let got_box = face.bbox.map(|v| v as f64 / size);
            for (g, w) in got_box.iter().zip(floats(&want["box"])) {
                assert!((g - w).abs() < 2e-3, "{name}: box {got_box:?}");
            }
            for (p, w) in face
                .points
                .iter()
                .zip(want["keypoints"].as_array().expect("points"))
            {
                let w = floats(w);
                assert!((p[0] as f64 / size - w[0]).abs() < 2e-3, "{name}: point x");
                assert!((p[1] as f64 / size - w[1]).abs() < 2e-3, "{name}: point y");
            }
        }
    }
}

#[test]
fn the_aligned_crop_of_a_turned_enlarged_copy_is_the_crop_of_the_original() {
    let locator = locator();
    let original = image::open(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples/faces_full/000910.jpg"),
    )
    .expect("sample")
    .to_rgb8();
    let copy = common::turned_copy(&original, 22.0, 3.5, (1400, 1000), (500.0, 150.0));
    let crop = |photo: &RgbImage| {
        let faces = locator.locate(photo).expect("locate");
        let face = faces.first().expect("a face");
        face.alignment().expect("points").crop(photo, 128)
    };
    let (a, b) = (crop(&original), crop(&copy));
    let db = psnr(&a, &b);
    // 32 dB here: the enlarged copy's interpolation; without finding the face again on
    // its crop the detector's wobble leaves 18 dB.
    assert!(db > 28.0, "{db:.1} dB");
}
