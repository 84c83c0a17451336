//! The command line as a user meets it: results on stdout, clear errors on stderr,
//! never a panic.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use tessera::data::poses::Pose;

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .expect("run tessera")
}

/// `tessera eval vqgan --backend cpu --models M --images I [extra…]`.
fn eval_vqgan(models: &Path, images: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["eval", "vqgan", "--backend", "cpu"];
    args.extend(["--models", models.to_str().expect("utf8")]);
    args.extend(["--images", images.to_str().expect("utf8")]);
    args.extend(extra);
    tessera(&args)
}

/// `tessera VERB --backend cpu --models M --FLAG FILE… --out OUT`.
fn generate(verb: &str, models: &Path, files: &[(&str, &Path)], out: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args([verb, "--backend", "cpu", "--models"])
        .arg(models);
    for (flag, file) in files {
        command.arg(format!("--{flag}")).arg(file);
    }
    command.arg("--out").arg(out).output().expect("run tessera")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A report's rows and the value of `key` in each, in order.
fn rows_by(report: &serde_json::Value, key: &str) -> (Vec<serde_json::Value>, Vec<String>) {
    let rows = report["rows"].as_array().expect("rows").clone();
    let names = rows
        .iter()
        .map(|r| r[key].as_str().expect(key).to_owned())
        .collect();
    (rows, names)
}

/// With `--figure`, stdout stays the one JSON object and the figure shows the eight
/// faces above their reconstructions.
#[test]
fn eval_vqgan_prints_one_json_object_with_the_documented_keys() {
    let models = common::tiny_models("cli-json");
    let figure = common::temp_dir("cli-json-figure").join("figure.png");
    let figure_arg = figure.to_str().expect("utf8");
    let out = eval_vqgan(
        &models,
        &common::sample_faces(),
        &["--json", "--figure", figure_arg],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let figure = image::open(&figure).expect("the figure").to_rgb8();
    assert_eq!(figure.dimensions(), (8 * 64, 2 * 64));
    for key in [
        "psnr",
        "ssim",
        "l1",
        "live_codes",
        "codebook_size",
        "perplexity",
        "images",
    ] {
        assert!(value.get(key).is_some(), "missing key {key} in {value}");
    }
    assert_eq!(value["images"], 8);
    assert_eq!(value["codebook_size"], 64);
}

#[test]
fn eval_vqgan_prints_a_table_without_json() {
    let models = common::tiny_models("cli-table");
    let out = eval_vqgan(&models, &common::sample_faces(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("psnr") && text.contains("live_codes"),
        "{text}"
    );
}

#[test]
fn a_missing_model_is_named_not_a_panic() {
    let empty = common::temp_dir("cli-missing");
    let out = eval_vqgan(&empty, &common::sample_faces(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("vqgan.json") && err.contains("missing"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_corrupt_image_folder_entry_is_named() {
    let models = common::tiny_models("cli-corrupt");
    let images = common::temp_dir("cli-corrupt-images");
    std::fs::write(images.join("broken.png"), b"\x89PNG not really").expect("write");
    let out = eval_vqgan(&models, &images, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("broken.png"), "{}", stderr(&out));
}

#[test]
fn a_wrong_flag_is_a_usage_error() {
    let out = tessera(&["eval", "vqgan", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--no-such-flag"), "{}", stderr(&out));
}

#[test]
fn edit_writes_the_result_and_refuses_to_overwrite_its_input() {
    let models = common::tiny_models("cli-edit");
    let dir = common::temp_dir("cli-edit-files");
    let face = common::sample_faces().join("000901.png");
    let (side, _) = image::image_dimensions(&face).expect("a sample face");
    let mask = dir.join("mask.png");
    image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([if x > side * 5 / 8 && y > side / 3 {
            255
        } else {
            0
        }])
    })
    .save(&mask)
    .expect("mask");
    let out = dir.join("edited.png");
    let args = |out: &Path| -> Vec<String> {
        [
            "edit",
            "--backend",
            "cpu",
            "--models",
            models.to_str().expect("utf8"),
            "--image",
            face.to_str().expect("utf8"),
            "--mask",
            mask.to_str().expect("utf8"),
            "--method",
            "taming-star",
            "--seed",
            "3",
            "--top-k",
            "20",
            "--out",
            out.to_str().expect("utf8"),
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |args: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .output()
            .expect("run")
    };
    let result = run(args(&out));
    assert!(result.status.success(), "{}", stderr(&result));
    let edited = image::open(&out).expect("output").to_rgb8();
    assert_eq!(edited.dimensions(), (side, side));
    let before = std::fs::read(&mask).expect("mask bytes");
    let refused = run(args(&mask));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("overwrite"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read(&mask).expect("mask bytes"),
        before,
        "the input survived"
    );
}

#[test]
fn repose_writes_the_result_and_names_a_malformed_pose_file() {
    let models = common::tiny_models("cli-repose");
    let dir = common::temp_dir("cli-repose-files");
    let picture = dir.join("person.png");
    image::RgbImage::from_fn(200, 260, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&picture)
    .expect("picture");
    let (old, new, bad) = (
        dir.join("old.json"),
        dir.join("new.json"),
        dir.join("bad.json"),
    );
    Pose::standing(90.0, 240.0, 180.0)
        .write(&old)
        .expect("pose");
    Pose::standing(110.0, 240.0, 170.0)
        .write(&new)
        .expect("pose");
    std::fs::write(&bad, r#"{"joints": [{"x": 3, "y": 4, "visible": true}]}"#).expect("bad");
    let out = dir.join("reposed.png");
    let run = |to: &Path| {
        let files = [("image", picture.as_path()), ("pose", &old), ("to", to)];
        generate("repose", &models, &files, &out)
    };
    let result = run(&new);
    assert!(result.status.success(), "{}", stderr(&result));
    let reposed = image::open(&out).expect("output").to_rgb8();
    assert_eq!(reposed.dimensions(), (200, 260));
    let refused = run(&bad);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("bad.json") && stderr(&refused).contains("13"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn sample_writes_a_square_grid_for_every_generator() {
    let models = common::tiny_models("cli-sample");
    let dir = common::temp_dir("cli-sample-files");
    let out = dir.join("grid.png");
    let run = |model: &str| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["sample", "--backend", "cpu", "--models"])
            .arg(&models)
            .args(["--model", model, "--seed", "4", "--n", "4", "--out"])
            .arg(&out)
            .output()
            .expect("run")
    };
    for model in ["imagebart", "hit", "conv"] {
        let result = run(model);
        assert!(result.status.success(), "{model}: {}", stderr(&result));
        let grid = image::open(&out).expect("grid").to_rgb8();
        assert_eq!(grid.dimensions(), (128, 128), "{model}");
    }
}

/// A 128 px HiT of the shipped shape, scaled down: attention at 8, 16 and 32 px
/// (multi-axis blocks and the latent cross-attention of the fused kernels), MLP-only
/// above, so every kernel the sampler runs at 128 px is in it.
fn tiny_hit_at_128(tag: &str) -> std::path::PathBuf {
    use tessera::hit::generator::{HitGeneratorConfig, StageConfig};
    use tessera::hit::{Arch, GanGeneratorConfig};
    let dir = common::temp_dir(tag);
    let stages = [
        (8, 32, 2),
        (16, 32, 1),
        (32, 16, 1),
        (64, 16, 0),
        (128, 16, 0),
    ]
    .map(|(side, width, attention)| StageConfig::new(side, width, 4, attention));
    let config = GanGeneratorConfig::new(Arch::Hit).with_hit(
        HitGeneratorConfig::new(stages.to_vec())
            .with_latent(16)
            .with_z_dim(16),
    );
    let device = burn::prelude::Device::flex();
    device.seed(3);
    tessera::store::save_model(&dir, Arch::Hit.name(), &config, config.init(&device))
        .expect("save the generator");
    dir
}

/// What a user sees as "the same seed, the same face": two separate runs, one on one
/// thread (the editor's worker) and one on two, write the same bytes at 128 px, and
/// another seed writes another face.
#[test]
fn a_seed_draws_the_same_128_px_face_in_every_run_and_thread_count() {
    let models = tiny_hit_at_128("cli-seed-128");
    let dir = common::temp_dir("cli-seed-128-files");
    let run = |seed: &str, threads: &str, out: &str| {
        let result = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .env("RAYON_NUM_THREADS", threads)
            .args(["sample", "--backend", "cpu", "--models"])
            .arg(&models)
            .args(["--model", "hit", "--seed", seed, "--n", "1", "--out"])
            .arg(dir.join(out))
            .output()
            .expect("run");
        assert!(result.status.success(), "{}", stderr(&result));
        image::open(dir.join(out)).expect("a face").to_rgb8()
    };
    let first = run("11", "1", "a.png");
    assert_eq!(first.dimensions(), (128, 128));
    assert_eq!(
        run("11", "2", "b.png"),
        first,
        "the same seed, the same face"
    );
    assert_ne!(run("12", "1", "c.png"), first, "another seed, another face");
}

#[test]
fn sample_interpolate_to_writes_a_strip_from_one_seeds_face_to_the_others() {
    let models = common::tiny_models("cli-interpolate");
    let dir = common::temp_dir("cli-interpolate-files");
    let run = |args: &[&str], out: &str| {
        let result = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["sample", "--backend", "cpu", "--models"])
            .arg(&models)
            .args(args)
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .expect("run");
        (result, image::open(dir.join(out)).map(|i| i.to_rgb8()))
    };
    let (_, first) = run(&["--model", "hit", "--seed", "4", "--n", "1"], "a.png");
    let (_, last) = run(&["--model", "hit", "--seed", "9", "--n", "1"], "b.png");
    let (result, strip) = run(
        &[
            "--model",
            "hit",
            "--seed",
            "4",
            "--interpolate-to",
            "9",
            "--n",
            "5",
        ],
        "strip.png",
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let strip = strip.expect("strip");
    assert_eq!(strip.dimensions(), (5 * 64, 64));
    let at = |x: u32| image::imageops::crop_imm(&strip, x, 0, 64, 64).to_image();
    let close = |a: &image::RgbImage, b: &image::RgbImage| {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .all(|(p, q)| p.abs_diff(*q) <= 1)
    };
    let (first, last) = (first.expect("seed 4"), last.expect("seed 9"));
    assert!(close(&at(0), &first), "the strip starts at seed 4's face");
    assert!(close(&at(4 * 64), &last), "and ends at seed 9's");
    let distance = |a: &image::RgbImage, b: &image::RgbImage| -> u64 {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(p, q)| u64::from(p.abs_diff(*q)))
            .sum()
    };
    let middle = at(2 * 64);
    assert!(
        distance(&middle, &first) > 0 && distance(&middle, &last) > 0,
        "the middle is neither end: {} {} (ends {} apart)",
        distance(&middle, &first),
        distance(&middle, &last),
        distance(&first, &last)
    );
    let (refused, _) = run(
        &["--model", "imagebart", "--interpolate-to", "9"],
        "never.png",
    );
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a usage error, as clap's own"
    );
    assert!(stderr(&refused).contains("latent"), "{}", stderr(&refused));
}

#[test]
fn option_values_out_of_range_are_usage_errors() {
    let out = tessera(&["sample", "--model", "hit", "--n", "0", "--out", "never.png"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--n"), "{}", stderr(&out));
}

/// A data folder with four held-out and four training faces from the repository's
/// samples and the InceptionV3 weights of the real one (`scripts/fetch-data.sh`).
fn small_face_data(tag: &str) -> std::path::PathBuf {
    let data = common::temp_dir(tag);
    let mut faces: Vec<_> = std::fs::read_dir(common::sample_faces())
        .expect("sample faces")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    faces.sort();
    for (part, files) in [("test", &faces[..4]), ("train", &faces[4..8])] {
        let folder = data.join("faces").join(part);
        std::fs::create_dir_all(&folder).expect("faces folder");
        for file in files {
            std::fs::copy(file, folder.join(file.file_name().expect("name"))).expect("copy");
        }
    }
    let weights = "nets/inception_v3_fid.safetensors";
    std::fs::create_dir_all(data.join("nets")).expect("nets folder");
    std::fs::copy(tessera::paths::data_dir().join(weights), data.join(weights))
        .expect("run scripts/fetch-data.sh first");
    data
}

#[test]
fn eval_hit_reports_both_generators_with_the_kid_as_distance_and_names_missing_weights() {
    let models = common::tiny_models("cli-eval-hit");
    let data = small_face_data("cli-eval-hit-data");
    let eval = |data: &Path| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args([
                "eval",
                "hit",
                "--backend",
                "cpu",
                "--samples",
                "4",
                "--json",
            ])
            .arg("--models")
            .arg(&models)
            .env("TESSERA_DATA", data)
            .output()
            .expect("run")
    };
    let result = eval(&data);
    assert!(result.status.success(), "{}", stderr(&result));
    let report: serde_json::Value =
        serde_json::from_slice(&result.stdout).expect("one JSON object");
    assert_eq!(
        (&report["samples"], &report["held_out"], &report["train"]),
        (&4.into(), &4.into(), &4.into())
    );
    let (rows, names) = rows_by(&report, "model");
    assert_eq!(names, ["hit", "conv"]);
    for row in &rows {
        for key in ["fid", "kid", "fid_train", "kid_train", "samples_per_second"] {
            let value = row[key].as_f64().unwrap_or(f64::NAN);
            assert!(value.is_finite(), "{key} in {row}");
        }
        assert_eq!(row["distance"], row["kid"], "{row}");
        assert!(row["fid"].as_f64().expect("fid") > 0.0, "{row}");
    }

    std::fs::remove_file(data.join("nets/inception_v3_fid.safetensors")).expect("remove");
    let refused = eval(&data);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("inception_v3_fid"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn an_imagebart_edit_writes_its_trajectory_and_eval_completion_reports_both_methods() {
    let models = common::tiny_models("cli-imagebart");
    let dir = common::temp_dir("cli-imagebart-files");
    let face = common::sample_faces().join("000920.png");
    let (side, _) = image::image_dimensions(&face).expect("a sample face");
    let mask = dir.join("mask.png");
    image::GrayImage::from_fn(side, side, |_, y| {
        image::Luma([if y < side * 3 / 8 { 255 } else { 0 }])
    })
    .save(&mask)
    .expect("mask");
    let trajectory = dir.join("steps");
    let result = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["edit", "--backend", "cpu", "--models"])
        .arg(&models)
        .arg("--image")
        .arg(&face)
        .arg("--mask")
        .arg(&mask)
        .args(["--method", "imagebart", "--cycles", "2", "--trajectory"])
        .arg(&trajectory)
        .arg("--out")
        .arg(dir.join("out.png"))
        .output()
        .expect("run");
    assert!(result.status.success(), "{}", stderr(&result));
    let mut written: Vec<String> = std::fs::read_dir(&trajectory)
        .expect("trajectory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "cycle0-level0.png",
            "cycle0-level1.png",
            "cycle0-level2.png",
            "cycle1-level0.png",
            "cycle1-level1.png"
        ]
    );
    let eval = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["eval", "completion", "--backend", "cpu", "--models"])
        .arg(&models)
        .arg("--images")
        .arg(common::sample_faces())
        .args(["--limit", "2", "--cycles", "1", "--json"])
        .output()
        .expect("run");
    assert!(eval.status.success(), "{}", stderr(&eval));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).expect("one JSON object");
    assert_eq!(report["images"], 2);
    let (rows, methods) = rows_by(&report, "method");
    assert_eq!(methods, ["imagebart", "taming"]);
    for row in &rows {
        for key in ["psnr", "ssim", "mae", "seconds"] {
            assert!(row[key].as_f64().is_some(), "{key} in {row}");
        }
    }
}

#[test]
fn an_empty_mask_is_a_no_op_that_says_so_and_a_mask_of_another_size_an_error() {
    let models = common::tiny_models("cli-masks");
    let dir = common::temp_dir("cli-masks-files");
    let face = common::sample_faces().join("000901.png");
    let (empty, small) = (dir.join("empty.png"), dir.join("small.png"));
    image::GrayImage::new(64, 64).save(&empty).expect("mask");
    image::GrayImage::from_pixel(32, 32, image::Luma([255]))
        .save(&small)
        .expect("mask");
    let out = dir.join("out.png");
    let run = |mask: &Path| generate("edit", &models, &[("image", &face), ("mask", mask)], &out);
    let result = run(&empty);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(
        stderr(&result).contains("the mask is empty"),
        "{}",
        stderr(&result)
    );
    let original = image::open(&face).expect("face").to_rgb8();
    assert_eq!(image::open(&out).expect("out").to_rgb8(), original);
    let result = run(&small);
    assert_eq!(result.status.code(), Some(1));
    assert!(stderr(&result).contains("32x32"), "{}", stderr(&result));
}

#[test]
fn faces_lists_each_face_with_its_points_and_eval_photos_compares_both_paths() {
    let models = common::tiny_models("cli-faces");
    let photo = common::sample_faces().join("../faces_full/000910.jpg");
    let out = tessera(&[
        "faces",
        "--backend",
        "cpu",
        "--models",
        models.to_str().expect("utf8"),
        "--image",
        photo.to_str().expect("utf8"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{report}");
    for key in [
        "score",
        "box",
        "right_eye",
        "left_eye",
        "nose_tip",
        "mouth_centre",
    ] {
        assert!(!rows[0][key].is_null(), "{key} in {report}");
    }
    // Two photos in a folder (one without a face): both paths, one row each.
    let dir = common::temp_dir("cli-photos");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).expect("dir");
    std::fs::copy(&photo, photos.join("face.jpg")).expect("copy");
    image::RgbImage::from_pixel(90, 60, image::Rgb([40, 90, 200]))
        .save(photos.join("sky.png"))
        .expect("save");
    let out = tessera(&[
        "eval",
        "photos",
        "--backend",
        "cpu",
        "--models",
        models.to_str().expect("utf8"),
        "--images",
        photos.to_str().expect("utf8"),
        "--out",
        dir.join("out").to_str().expect("utf8"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["photos"], 2);
    assert_eq!(report["photos_without_a_face"], 1);
    let methods: Vec<&str> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["method"].as_str().expect("method"))
        .collect();
    assert_eq!(methods, ["aligned", "square"]);
    assert!(report["aligned_seam"].as_f64().is_some() && report["telea_psnr"].is_null());
    assert!(dir.join("out/masks/face.png").is_file());
}
