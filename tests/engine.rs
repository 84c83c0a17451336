//! The engine API that the editor and the command line share.

mod common;

use std::ops::ControlFlow;

use image::{GrayImage, Luma, RgbImage};
use tessera::backend::BackendChoice;
use tessera::data::faces::load_folder;
use tessera::data::people::{DILATION, repose_region};
use tessera::data::poses::Pose;
use tessera::engine::Sampling;
use tessera::engine::{
    DEFAULT_CYCLES, EditProgress, EditRequest, Engine, EngineError, FaceChoice, Method,
    ReposeRequest, SampleSource,
};
use tessera::evaluate::feature_mask;
use tessera::faces::TEMPLATE;
use tessera::hit::Arch;
use tessera::ilat::model::{GuideKind, IlatConfig};
use tessera::store;
use tessera::vqgan::{self, VqganConfig};

fn engine(tag: &str) -> Engine {
    Engine::new(&common::tiny_models(tag), BackendChoice::Cpu).expect("engine")
}

#[test]
fn reconstruct_keeps_size_and_gives_a_token_grid_per_image() {
    let mut engine = engine("engine-recon");
    let faces = load_folder(&common::sample_faces(), 64).expect("samples");
    let (images, grids) = engine.reconstruct(&faces[..3]).expect("reconstruct");
    assert_eq!(images.len(), 3);
    assert!(images.iter().all(|i| i.dimensions() == (64, 64)));
    assert!(
        grids
            .iter()
            .all(|g| g.side == 16 && g.indices.len() == 256 && g.indices.iter().all(|&i| i < 64))
    );
}

#[test]
fn tokens_outside_the_mask_ignore_what_is_under_it() {
    let mut engine = engine("engine-leak");
    let faces = load_folder(&common::sample_faces(), 64).expect("samples");
    // A box over the lower half of the face, on token boundaries plus a ragged edge.
    let mask = GrayImage::from_fn(64, 64, |x, y| {
        Luma([if y >= 30 && (10..50).contains(&x) {
            255
        } else {
            0
        }])
    });
    let scribbled: Vec<RgbImage> = faces
        .iter()
        .map(|face| {
            RgbImage::from_fn(64, 64, |x, y| {
                if mask.get_pixel(x, y).0[0] > 0 {
                    image::Rgb([(x * 37 % 256) as u8, 255, (y * 91 % 256) as u8])
                } else {
                    *face.get_pixel(x, y)
                }
            })
        })
        .collect();
    let masks = vec![mask; faces.len()];
    let before = engine.tokenize(&faces, &masks).expect("tokenize");
    let after = engine.tokenize(&scribbled, &masks).expect("tokenize");
    for (a, b) in before.iter().zip(&after) {
        for ty in 0..16 {
            for tx in 0..16 {
                // A token is masked when any pixel of its 4x4 patch is.
                let masked = (ty * 4..ty * 4 + 4)
                    .any(|y| (tx * 4..tx * 4 + 4).any(|x| y >= 30 && (10..50).contains(&x)));
                if !masked {
                    assert_eq!(
                        a.indices[ty * 16 + tx],
                        b.indices[ty * 16 + tx],
                        "token ({tx}, {ty})"
                    );
                }
            }
        }
    }
}

#[test]
fn wrong_sizes_and_counts_are_input_errors() {
    let mut engine = engine("engine-sizes");
    let small = RgbImage::new(32, 32);
    assert!(matches!(
        engine.reconstruct(&[small]),
        Err(EngineError::Input(_))
    ));
    let face = RgbImage::new(64, 64);
    let err = engine
        .tokenize(&[face.clone(), face], &[GrayImage::new(64, 64)])
        .expect_err("count mismatch");
    assert!(matches!(err, EngineError::Input(_)), "{err}");
}

fn request(image: RgbImage, mask: GrayImage, method: Method) -> EditRequest {
    EditRequest {
        image,
        mask,
        sketch: None,
        method,
        sampling: Sampling::default(),
        cycles: DEFAULT_CYCLES,
        face: FaceChoice::Off,
    }
}

#[test]
fn edits_change_only_masked_pixels_of_a_face() {
    let mut engine = engine("engine-edit-face");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(0);
    let mask = GrayImage::from_fn(64, 64, |x, y| {
        Luma([if (x as i32 - 30).pow(2) + (y as i32 - 40).pow(2) < 150 {
            255
        } else {
            0
        }])
    });
    for method in [Method::Ilat, Method::Taming, Method::TamingStar] {
        let out = engine
            .edit(&request(face.clone(), mask.clone(), method), &mut |_| {
                ControlFlow::Continue(())
            })
            .expect("edit");
        common::assert_only_masked_pixels_change(&face, &mask, &out);
    }
}

#[test]
fn edits_of_a_large_non_square_photo_keep_its_size_and_its_unmasked_pixels() {
    let mut engine = engine("engine-edit-photo");
    let photo = RgbImage::from_fn(1200, 700, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    // A stroke near the right edge, so the region is clamped to the picture.
    let mask = GrayImage::from_fn(1200, 700, |x, y| {
        Luma([if (1100..1190).contains(&x) && (300..420).contains(&y) {
            255
        } else {
            0
        }])
    });
    let mut tokens = 0;
    let mut previews = 0;
    let out = engine
        .edit(
            &request(photo.clone(), mask.clone(), Method::Ilat),
            &mut |event| {
                match event {
                    EditProgress::Token { done, total, grid } => {
                        assert!(done <= total && grid.indices.len() == 256);
                        tokens += 1;
                    }
                    EditProgress::Preview(image) => {
                        assert_eq!(image.dimensions(), (1200, 700));
                        previews += 1;
                    }
                    EditProgress::Stage { .. } => panic!("iLAT has no refinement stages"),
                }
                ControlFlow::Continue(())
            },
        )
        .expect("edit");
    common::assert_only_masked_pixels_change(&photo, &mask, &out);
    assert!(
        tokens > 0 && previews > 0,
        "{tokens} tokens, {previews} previews"
    );
}

#[test]
fn an_edit_can_be_cancelled_and_an_empty_mask_changes_nothing() {
    let mut engine = engine("engine-edit-cancel");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(0);
    let mask = GrayImage::from_fn(64, 64, |x, _| Luma([if x < 20 { 255 } else { 0 }]));
    let result = engine.edit(&request(face.clone(), mask, Method::Ilat), &mut |_| {
        ControlFlow::Break(())
    });
    assert!(matches!(result, Err(EngineError::Cancelled)));
    let same = engine
        .edit(
            &request(face.clone(), GrayImage::new(64, 64), Method::Ilat),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect("edit");
    assert_eq!(same, face);
    let wrong = engine.edit(
        &request(face, GrayImage::new(10, 10), Method::Ilat),
        &mut |_| ControlFlow::Continue(()),
    );
    assert!(matches!(wrong, Err(EngineError::Input(_))));
}

fn repose_request(image: RgbImage, pose: Pose, new_pose: Pose, method: Method) -> ReposeRequest {
    ReposeRequest {
        image,
        pose,
        new_pose,
        method,
        sampling: Sampling::default(),
    }
}

#[test]
fn reposes_change_only_pixels_inside_the_union_of_both_skeletons() {
    let mut engine = engine("engine-repose");
    let photo = RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let old = Pose::standing(120.0, 220.0, 150.0);
    let mut new = Pose::standing(150.0, 220.0, 150.0);
    new.joints[6].y -= 60.0; // the right wrist up
    new.joints[2].visible = false; // an invisible joint is fine
    let (mask, _) = repose_region(&old, &new, (320, 240), DILATION, 64).expect("visible joints");
    for method in [Method::Ilat, Method::Taming, Method::TamingStar] {
        let mut tokens = 0;
        let out = engine
            .repose(
                &repose_request(photo.clone(), old.clone(), new.clone(), method),
                &mut |event| {
                    if let EditProgress::Token { .. } = event {
                        tokens += 1;
                    }
                    ControlFlow::Continue(())
                },
            )
            .expect("repose");
        common::assert_only_masked_pixels_change(&photo, &mask, &out);
        assert!(tokens > 0, "{method:?}");
    }
}

#[test]
fn a_repose_needs_visible_joints_and_a_pose_model() {
    let mut engine = engine("engine-repose-errors");
    let photo = RgbImage::new(100, 100);
    let mut hidden = Pose::standing(50.0, 90.0, 60.0);
    for joint in &mut hidden.joints {
        joint.visible = false;
    }
    let err = engine
        .repose(
            &repose_request(photo.clone(), hidden.clone(), hidden, Method::Ilat),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect_err("no joint");
    assert!(matches!(err, EngineError::Input(_)), "{err}");
    // A sketch model where the pose model should be: refused, not a panic.
    let models = common::tiny_models("engine-repose-wrong-model");
    for ext in ["json", "bpk"] {
        std::fs::copy(
            models.join(format!("ilat.{ext}")),
            models.join(format!("pose-ilat.{ext}")),
        )
        .expect("copy");
    }
    let mut engine = Engine::new(&models, BackendChoice::Cpu).expect("engine");
    let pose = Pose::standing(50.0, 90.0, 60.0);
    let err = engine
        .repose(
            &repose_request(photo, pose.clone(), pose, Method::Ilat),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect_err("a sketch model");
    assert!(err.to_string().contains("guided by Sketch"), "{err}");
}

/// Every shipped model loads with today's code (a field added to a configuration must
/// not make the committed ones unreadable).
#[test]
fn the_shipped_models_load() {
    let mut engine =
        Engine::new(&tessera::paths::models_dir(), BackendChoice::Cpu).expect("engine");
    for kind in [GuideKind::Sketch, GuideKind::Pose] {
        for method in [Method::Ilat, Method::Taming] {
            engine.prepare(method, kind).expect("a token model");
        }
    }
    engine
        .prepare(Method::Imagebart, GuideKind::Sketch)
        .expect("the chain");
    for arch in [Arch::Hit, Arch::Conv] {
        engine.gan_side(arch).expect("a generator");
    }
}

#[test]
fn a_pose_model_on_the_peoples_own_tokenizer_reposes_through_it() {
    let models = common::tiny_models("engine-people-tokenizer");
    let engine = Engine::new(&models, BackendChoice::Cpu).expect("engine");
    assert_eq!(
        engine.people_tokenizer(),
        vqgan::FACES,
        "one tokenizer for all"
    );
    // The people's tokenizer has half the codes of the faces', so a pose model that
    // fits one cannot fit the other.
    let device = burn::prelude::Device::flex();
    let people = VqganConfig::new()
        .with_widths(vec![8, 16, 16])
        .with_codebook_size(32)
        .with_code_dim(8);
    store::save_model(&models, vqgan::PEOPLE, &people, people.init(&device)).expect("save");
    let posed = IlatConfig::new(32, 16)
        .with_d_model(32)
        .with_n_heads(4)
        .with_n_layers(2)
        .with_guidance(GuideKind::Pose);
    let on_people = posed.clone().with_tokenizer(Some(vqgan::PEOPLE.into()));
    store::save_model(&models, "pose-ilat", &on_people, on_people.init(&device)).expect("save");
    store::save_model(&models, "pose-taming", &posed, posed.init(&device)).expect("save");
    let mut engine = Engine::new(&models, BackendChoice::Cpu).expect("engine");
    assert_eq!(engine.people_tokenizer(), vqgan::PEOPLE);
    let photo = RgbImage::from_fn(160, 120, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let old = Pose::standing(60.0, 110.0, 80.0);
    let mut new = old.clone();
    new.joints[6].y -= 30.0;
    let (mask, _) = repose_region(&old, &new, (160, 120), DILATION, 64).expect("visible joints");
    let out = engine
        .repose(
            &repose_request(photo.clone(), old.clone(), new.clone(), Method::Ilat),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect("a repose through the people's tokenizer");
    common::assert_only_masked_pixels_change(&photo, &mask, &out);
    // `pose-taming` says it models the faces' tokens (64 codes), but has 32.
    let err = engine
        .repose(
            &repose_request(photo, old, new, Method::Taming),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect_err("trained on another tokenizer");
    assert!(err.to_string().contains("vqgan.json"), "{err}");
    let (_, grids) = engine
        .reconstruct_with(vqgan::PEOPLE, &[RgbImage::new(64, 64)])
        .expect("the people's reconstruction");
    assert!(grids[0].indices.iter().all(|&i| i < 32));
}

#[test]
fn without_the_pose_models_edits_still_work_and_a_repose_names_the_missing_file() {
    let models = common::tiny_models("engine-no-pose");
    for ext in ["json", "bpk"] {
        std::fs::remove_file(models.join(format!("pose-ilat.{ext}"))).expect("remove");
    }
    let mut engine = Engine::new(&models, BackendChoice::Cpu).expect("engine");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(0);
    let mask = GrayImage::from_fn(64, 64, |x, _| Luma([if x < 20 { 255 } else { 0 }]));
    let pose = Pose::standing(32.0, 60.0, 50.0);
    let err = engine
        .repose(
            &repose_request(face.clone(), pose.clone(), pose, Method::Ilat),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect_err("no pose model");
    assert!(err.to_string().contains("pose-ilat"), "{err}");
    let out = engine
        .edit(
            &request(face.clone(), mask.clone(), Method::Ilat),
            &mut |_| ControlFlow::Continue(()),
        )
        .expect("the sketch model still edits");
    common::assert_only_masked_pixels_change(&face, &mask, &out);
}

#[test]
fn imagebart_refines_only_the_masked_part_and_reports_every_stage() {
    let mut engine = engine("engine-imagebart");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(2);
    let mask = GrayImage::from_fn(64, 64, |x, y| {
        Luma([if y < 32 && (8..56).contains(&x) {
            255
        } else {
            0
        }])
    });
    let mut edit = request(face.clone(), mask.clone(), Method::Imagebart);
    edit.cycles = 2;
    let mut stages = Vec::new();
    let out = engine
        .edit(&edit, &mut |event| {
            if let EditProgress::Stage {
                cycle,
                level,
                image,
            } = event
            {
                common::assert_only_masked_pixels_change(&face, &mask, &image);
                stages.push((cycle, level));
            }
            ControlFlow::Continue(())
        })
        .expect("refine");
    common::assert_only_masked_pixels_change(&face, &mask, &out);
    // Two cycles of a two-step chain: diffused to level 2, then levels 1 and 0; the
    // refinement cycle diffuses to level 1 only.
    assert_eq!(stages, vec![(0, 2), (0, 1), (0, 0), (1, 1), (1, 0)]);
}

#[test]
fn a_seed_gives_the_same_face_another_seed_another_and_interpolation_joins_them() {
    let mut engine = engine("engine-sample");
    for arch in [Arch::Hit, Arch::Conv] {
        let first = engine
            .sample(SampleSource::Gan(arch), 7, 2)
            .expect("sample");
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|p| p.dimensions() == (64, 64)));
        let again = engine
            .sample(SampleSource::Gan(arch), 7, 1)
            .expect("sample");
        assert_eq!(again[0], first[0], "{arch:?}: the same seed, the same face");
        assert_ne!(first[0], first[1], "{arch:?}: seeds 7 and 8 differ");
        let path = engine.interpolate(arch, (7, 8), 5).expect("interpolate");
        assert_eq!(path.len(), 5);
        assert_eq!(path[0], first[0]);
        assert_eq!(path[4], first[1]);
        assert!(path[2] != path[0] && path[2] != path[4]);
    }
}

/// Three candidates made together are the three edits their seeds make alone: the
/// same tokens (a near-tie flipped by batched rounding would change one token's
/// patch), decoded in one batch (whose rounding may move a pixel by a level or two).
#[test]
fn candidates_made_together_are_the_edits_their_seeds_make_alone() {
    let mut engine = engine("engine-candidates");
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(1);
    let mask = GrayImage::from_fn(64, 64, |x, y| {
        Luma([if (20..44).contains(&x) && (24..48).contains(&y) {
            255
        } else {
            0
        }])
    });
    for method in [Method::Ilat, Method::Imagebart] {
        let mut edit = request(face.clone(), mask.clone(), method);
        edit.cycles = 2;
        edit.sampling.seed = 5;
        let mut previews = 0;
        let together = engine
            .edit_candidates(&edit, 3, &mut |event| {
                if let EditProgress::Preview(_) | EditProgress::Stage { .. } = event {
                    previews += 1;
                }
                ControlFlow::Continue(())
            })
            .expect("three candidates");
        assert_eq!(together.len(), 3);
        assert!(previews > 0, "{method:?}: the first candidate's previews");
        for (k, picture) in together.iter().enumerate() {
            edit.sampling.seed = 5 + k as u64;
            let alone = engine
                .edit(&edit, &mut |_| ControlFlow::Continue(()))
                .expect("one edit");
            let moved: Vec<u8> = picture
                .as_raw()
                .iter()
                .zip(alone.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .collect();
            let far = moved.iter().filter(|&&d| d > 2).count();
            // One token is an 4x4 patch: 48 channel values at 64 px.
            assert!(
                far <= 48,
                "{method:?} candidate {k}: {far} values moved by more than 2"
            );
        }
        assert_ne!(
            together[0], together[1],
            "{method:?}: two seeds, two pictures"
        );
    }
}

/// An engine keeps the last square's encoding for the next edit of the same picture
/// under the same mask (the live loop: a sketch stroke, another seed), and an edit of
/// another picture or under another mask is the one a fresh engine makes.
#[test]
fn a_kept_encoding_serves_only_the_same_picture_under_the_same_mask() {
    let models = common::tiny_models("engine-kept-encoding");
    let mut kept = Engine::new(&models, BackendChoice::Cpu).expect("engine");
    let fresh = |edit: &EditRequest| {
        Engine::new(&models, BackendChoice::Cpu)
            .expect("engine")
            .edit(edit, &mut |_| ControlFlow::Continue(()))
            .expect("edit")
    };
    let faces = load_folder(&common::sample_faces(), 64).expect("samples");
    let boxed = |x0: u32, y0: u32| {
        GrayImage::from_fn(64, 64, |x, y| {
            Luma([
                if (x0..x0 + 20).contains(&x) && (y0..y0 + 16).contains(&y) {
                    255
                } else {
                    0
                },
            ])
        })
    };
    let first = request(faces[0].clone(), boxed(22, 30), Method::Ilat);
    let mut stroke = first.clone();
    stroke.sketch = Some(GrayImage::from_fn(64, 64, |x, y| {
        Luma([if x == y { 255 } else { 0 }])
    }));
    stroke.sampling.seed = 3;
    let moved = request(faces[0].clone(), boxed(10, 12), Method::Ilat);
    let other = request(faces[1].clone(), boxed(10, 12), Method::Ilat);
    for edit in [&first, &stroke, &moved, &other] {
        let made = kept
            .edit(edit, &mut |_| ControlFlow::Continue(()))
            .expect("edit");
        assert!(
            made == fresh(edit),
            "an edit after another is the edit alone"
        );
    }
}

/// A mouth mask on the face `engine` finds in `photo`.
fn mouth_mask(engine: &mut Engine, photo: &RgbImage) -> GrayImage {
    let faces = engine.faces(photo).expect("locate");
    let face = faces.first().expect("a face");
    feature_mask(face, photo.dimensions(), TEMPLATE[3], [0.15, 0.065]).expect("aligned")
}

fn sample_photo() -> RgbImage {
    let path = common::sample_faces().join("../faces_full/000910.jpg");
    image::open(path).expect("sample photo").to_rgb8()
}

#[test]
fn a_tilted_face_in_a_large_photo_is_edited_on_its_aligned_crop_and_nothing_else_changes() {
    let mut engine = engine("engine-photo");
    // A 1400x1000 photo with the face turned by 22° and 3.5 times larger.
    let photo = common::turned_copy(&sample_photo(), 22.0, 3.5, (1400, 1000), (500.0, 150.0));
    let mask = mouth_mask(&mut engine, &photo);
    let mut edit = request(photo.clone(), mask.clone(), Method::Ilat);
    edit.face = FaceChoice::Auto;
    let aligned = engine
        .edit(&edit, &mut |_| ControlFlow::Continue(()))
        .expect("edit");
    common::assert_only_masked_pixels_change(&photo, &mask, &aligned);
    edit.face = FaceChoice::Off;
    let square = engine
        .edit(&edit, &mut |_| ControlFlow::Continue(()))
        .expect("edit");
    assert_ne!(
        aligned, square,
        "the face's aligned crop, not the square, was edited"
    );
}

#[test]
fn a_mask_off_the_face_and_a_photo_without_one_take_the_square() {
    let mut engine = engine("engine-no-face");
    let edit_both = |engine: &mut Engine, photo: &RgbImage, mask: &GrayImage| {
        let mut edit = request(photo.clone(), mask.clone(), Method::Ilat);
        edit.face = FaceChoice::Auto;
        let auto = engine
            .edit(&edit, &mut |_| ControlFlow::Continue(()))
            .expect("edit");
        edit.face = FaceChoice::Off;
        let square = engine
            .edit(&edit, &mut |_| ControlFlow::Continue(()))
            .expect("edit");
        (auto, square)
    };
    // A mask in the photo's corner, far from the face.
    let photo = sample_photo();
    let corner = GrayImage::from_fn(photo.width(), photo.height(), |x, y| {
        Luma([if x < 30 && y < 30 { 255 } else { 0 }])
    });
    let (auto, square) = edit_both(&mut engine, &photo, &corner);
    assert_eq!(auto, square);
    // A photo with no face at all.
    let plain = RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    assert!(engine.faces(&plain).expect("locate").is_empty());
    let middle = GrayImage::from_fn(300, 200, |x, y| {
        Luma([if (100..160).contains(&x) && (80..120).contains(&y) {
            255
        } else {
            0
        }])
    });
    let (auto, square) = edit_both(&mut engine, &plain, &middle);
    assert_eq!(auto, square);
}
