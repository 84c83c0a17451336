//! Bad input and faults (the reliability issue): every picture a person may open is
//! loaded or refused by name, the command line never panics on it, a project file
//! survives the editor being killed mid-save, and a storm of jobs leaves one result.

mod common;

use std::path::PathBuf;
use std::process::Command;

use tessera::data::convert::open_image;
use tessera::editor::document::Document;
use tessera::editor::project::{Project, Settings};
use tessera::engine::Method;
use tessera::engine::Sampling;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/images")
}

/// What each corpus file must do: `Some(size)` load at that size, `None` be refused.
const EXPECTED: [(&str, Option<(u32, u32)>); 21] = [
    ("rgb.png", Some((48, 32))),
    ("grey.png", Some((48, 32))),
    ("rgba.png", Some((48, 32))),
    ("palette.png", Some((48, 32))),
    ("grey16.png", Some((48, 32))),
    ("rgb.jpg", Some((48, 32))),
    ("grey.jpg", Some((48, 32))),
    ("cmyk.jpg", Some((48, 32))),
    ("tiny-1x1.png", Some((1, 1))),
    ("wide-3000x17.png", Some((3000, 17))),
    ("rgb.webp", Some((48, 32))),
    ("rgb.bmp", Some((48, 32))),
    ("rgb.tiff", Some((48, 32))),
    ("animated.gif", Some((48, 32))),
    ("empty.png", None),
    ("text-named.png", None),
    ("truncated.png", None),
    ("truncated.jpg", None),
    ("corrupt.png", None),
    ("bomb-60000x60000.png", None),
    ("bomb-20000x20000.png", None),
];

#[test]
fn every_kind_of_picture_loads_or_is_refused_by_name() {
    for (name, expected) in EXPECTED {
        let path = corpus().join(name);
        match (open_image(&path), expected) {
            (Ok(image), Some(size)) => {
                assert_eq!((image.width(), image.height()), size, "{name}");
                let rgb = image.to_rgb8();
                assert!(
                    rgb.pixels().any(|p| p.0 != [0, 0, 0]) || name.starts_with("tiny"),
                    "{name} decoded to black"
                );
            }
            (Err(err), None) => assert!(err.to_string().contains(name), "{name}: {err}"),
            (Ok(_), None) => panic!("{name} loaded but should be refused"),
            (Err(err), Some(_)) => panic!("{name} should load: {err}"),
        }
    }
    let found = std::fs::read_dir(corpus()).expect("corpus").count();
    assert!(
        found >= EXPECTED.len(),
        "every file has an expectation ({found} files)"
    );
}

#[test]
fn the_command_line_edits_what_loads_and_names_what_does_not() {
    let models = common::tiny_models("reliability-cli");
    let dir = common::temp_dir("reliability-cli-files");
    for (name, expected) in EXPECTED {
        let (w, h) = expected.unwrap_or((64, 64));
        let mask = dir.join(format!("{name}.mask.png"));
        image::GrayImage::from_fn(w, h, |x, y| {
            image::Luma([if (x + y) % 3 == 0 { 255 } else { 0 }])
        })
        .save(&mask)
        .expect("mask");
        let out = dir.join(format!("{name}.out.png"));
        let result = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["edit", "--backend", "cpu", "--models"])
            .arg(&models)
            .arg("--image")
            .arg(corpus().join(name))
            .arg("--mask")
            .arg(&mask)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&result.stderr);
        match expected {
            Some(size) => {
                assert!(result.status.success(), "{name}: {stderr}");
                let edited = image::open(&out).expect("output").to_rgb8();
                assert_eq!(edited.dimensions(), size, "{name}");
            }
            None => {
                assert_eq!(result.status.code(), Some(1), "{name}: {stderr}");
                assert!(stderr.contains(name), "{name}: {stderr}");
                assert!(!out.exists(), "{name}: no output for a refused input");
            }
        }
    }
}

/// Environment variable that makes this test binary a child that saves forever.
const SAVER: &str = "TESSERA_TEST_SAVE_FOREVER";

fn project(shade: u8) -> Project {
    let document = Document::new(image::RgbImage::from_pixel(
        300,
        200,
        image::Rgb([shade, 30, 90]),
    ));
    Project {
        document: document.clone(),
        undo: vec![document; 3],
        redo: Vec::new(),
        settings: Settings {
            method: Method::Ilat,
            sampling: Sampling::default(),
            brush: 4.0,
            live: false,
            show_mask: true,
            candidates: 1,
            show_faces: true,
        },
    }
}

#[test]
fn a_project_killed_mid_save_still_loads() {
    if let Some(path) = std::env::var_os(SAVER) {
        // The child: alternate two projects as fast as it can, until killed.
        let path = PathBuf::from(path);
        for shade in (0..=255u8).cycle() {
            project(shade).save(&path).expect("save");
        }
    }
    let dir = common::temp_dir("reliability-kill");
    let path = dir.join("killed.tessera");
    project(7).save(&path).expect("first save");
    for round in 0..12 {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "a_project_killed_mid_save_still_loads",
                "--nocapture",
            ])
            .env(SAVER, &path)
            .spawn()
            .expect("child");
        std::thread::sleep(std::time::Duration::from_millis(150 + 37 * round));
        child.kill().expect("SIGKILL"); // std's kill sends SIGKILL on Unix
        child.wait().expect("reaped");
        let loaded = Project::load(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(loaded.document.image.dimensions(), (300, 200));
        assert_eq!(loaded.undo.len(), 3);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.len() <= 2,
        "at most one temporary beside the project: {leftovers:?}"
    );
}

#[test]
fn damaged_and_foreign_model_files_are_named_with_what_to_do() {
    let face = common::sample_faces().join("000901.png");
    let (side, _) = image::image_dimensions(&face).expect("a sample face");
    let dir = common::temp_dir("reliability-models-files");
    let mask = dir.join("mask.png");
    image::GrayImage::from_fn(side, side, |x, _| {
        image::Luma([if x < side / 3 { 255 } else { 0 }])
    })
    .save(&mask)
    .expect("mask");
    let edit = |models: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["edit", "--backend", "cpu", "--models"])
            .arg(models)
            .arg("--image")
            .arg(&face)
            .arg("--mask")
            .arg(&mask)
            .arg("--out")
            .arg(dir.join("out.png"))
            .output()
            .expect("run")
    };
    // Truncated weights.
    let truncated = common::tiny_models("reliability-truncated");
    let weights = truncated.join("ilat.bpk");
    let bytes = std::fs::read(&weights).expect("weights");
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).expect("truncate");
    // Weights of another architecture under the right name.
    let foreign = common::tiny_models("reliability-foreign");
    std::fs::copy(foreign.join("taming.json"), foreign.join("ilat.json")).expect("config");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(foreign.join("ilat.json")).expect("json"))
            .expect("json");
    config["n_layers"] = serde_json::json!(3);
    std::fs::write(foreign.join("ilat.json"), config.to_string()).expect("config");
    // A config of another version (a field it does not know and one missing).
    let version = common::tiny_models("reliability-version");
    std::fs::write(
        version.join("ilat.json"),
        r#"{"vocab": 64, "grid": 16, "width": 32}"#,
    )
    .expect("config");
    for (models, says) in [
        (&truncated, "ilat.bpk"),
        (&foreign, "ilat"),
        (&version, "ilat.json"),
    ] {
        let out = edit(models);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            stderr.contains("git checkout") || stderr.contains("retrain"),
            "says what to do: {stderr}"
        );
    }
}

/// WebP, BMP and TIFF hold the very pixels of the PNG they were written from; a GIF
/// opens at its first frame (palette-quantised, so close, not equal).
#[test]
fn other_formats_open_with_their_pixels_and_a_gif_at_its_first_frame() {
    let png = open_image(&corpus().join("rgb.png"))
        .expect("png")
        .to_rgb8();
    for name in ["rgb.webp", "rgb.bmp", "rgb.tiff"] {
        let other = open_image(&corpus().join(name)).expect(name).to_rgb8();
        assert_eq!(other, png, "{name}");
    }
    let gif = open_image(&corpus().join("animated.gif"))
        .expect("gif")
        .to_rgb8();
    let mean = gif
        .as_raw()
        .iter()
        .zip(png.as_raw())
        .map(|(a, b)| a.abs_diff(*b) as f64)
        .sum::<f64>()
        / png.as_raw().len() as f64;
    assert!(mean < 8.0, "the first frame, not a rotated one: {mean}");
}

/// A picture exported as PNG, JPEG or WebP reads back (exactly, but for JPEG); any
/// other extension is refused by name.
#[test]
fn exports_are_png_jpeg_or_lossless_webp() {
    let dir = common::temp_dir("reliability-export");
    let picture = open_image(&corpus().join("rgb.png"))
        .expect("png")
        .to_rgb8();
    for name in ["out.png", "out.webp", "out.jpg"] {
        let path = dir.join(name);
        tessera::editor::files::export(&picture, &path).expect(name);
        let back = open_image(&path).expect(name).to_rgb8();
        assert_eq!(back.dimensions(), picture.dimensions(), "{name}");
        if !name.ends_with("jpg") {
            assert_eq!(back, picture, "{name}");
        }
    }
    let refused = tessera::editor::files::export(&picture, &dir.join("out.gif"));
    assert!(
        refused.is_err_and(|e| e.to_string().contains("out.gif")),
        "a GIF export is refused by name"
    );
}
