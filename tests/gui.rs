//! The editor as a person uses it, through egui_kittest: strokes, undo/redo, joint
//! drags, and edits and reposes that run on the worker.

mod common;

use std::time::{Duration, Instant};

use eframe::egui::{self, Event, Key, Modifiers, PointerButton, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tessera::backend::BackendChoice;
use tessera::data::faces::load_folder;
use tessera::data::people::{DILATION, repose_region};
use tessera::data::poses::Pose;
use tessera::editor::project::Project;
use tessera::editor::{EditorApp, PoseMode, Tool};

fn editor(tag: &str) -> Harness<'static, EditorApp> {
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(1);
    editor_on(face, tag)
}

fn editor_on(picture: image::RgbImage, tag: &str) -> Harness<'static, EditorApp> {
    let app = EditorApp::new(picture, common::tiny_models(tag), BackendChoice::Cpu);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 640.0))
        .build_ui_state(|ui, app: &mut EditorApp| app.ui(ui), app);
    harness.step();
    // The editor first looks for the picture's faces; the tests start once it has.
    wait_for_the_job(&mut harness);
    harness
}

/// Drags with `button` from `from` to `to` across the canvas, a frame per point.
fn drag(harness: &mut Harness<'_, EditorApp>, button: PointerButton, from: Pos2, to: Pos2) {
    let press = |pos, pressed| Event::PointerButton {
        pos,
        button,
        pressed,
        modifiers: Modifiers::NONE,
    };
    harness.event(Event::PointerMoved(from));
    harness.step();
    harness.event(press(from, true));
    harness.step();
    for i in 1..=8 {
        harness.event(Event::PointerMoved(from + (to - from) * (i as f32 / 8.0)));
        harness.step();
    }
    harness.event(press(to, false));
    harness.step();
    harness.step();
}

fn masked(app: &EditorApp) -> usize {
    app.document()
        .mask
        .pixels()
        .filter(|p| p.0[0] == 255)
        .count()
}

const LEFT: Pos2 = Pos2::new(300.0, 330.0);
const RIGHT: Pos2 = Pos2::new(500.0, 330.0);

#[test]
fn a_stroke_fills_the_mask_and_a_right_drag_erases_it() {
    let mut harness = editor("gui-paint");
    assert_eq!(masked(harness.state()), 0);
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    let painted = masked(harness.state());
    assert!(painted > 100, "{painted} pixels masked");
    drag(
        &mut harness,
        PointerButton::Secondary,
        Pos2::new(250.0, 330.0),
        Pos2::new(550.0, 330.0),
    );
    assert!(
        masked(harness.state()) < painted / 4,
        "the eraser left {}",
        masked(harness.state())
    );
}

#[test]
fn undo_restores_the_mask_and_redo_reapplies_it() {
    let mut harness = editor("gui-undo");
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    let painted = harness.state().document().clone();
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(masked(harness.state()), 0, "undo");
    harness.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    harness.step();
    assert_eq!(harness.state().document(), &painted, "redo");
    harness.get_by_label("Undo").click();
    harness.step();
    assert_eq!(masked(harness.state()), 0, "the Undo button");
}

#[test]
fn a_finished_edit_changes_pixels_only_inside_the_mask() {
    let mut harness = editor("gui-edit");
    let original = harness.state().document().image.clone();
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    harness.get_by_label("Generate").click();
    harness.step();
    assert!(harness.state().busy(), "{}", harness.state().status());
    wait_for_the_job(&mut harness);
    let app = harness.state();
    let doc = app.document();
    common::assert_only_masked_pixels_change(&original, &doc.mask, &doc.image);
    // The edit itself is one undoable step.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(harness.state().document().image, original);
}

/// Picks `item` in the drop-down list labelled `list`.
fn choose(harness: &mut Harness<'_, EditorApp>, list: &str, item: &str) {
    harness.get_by_label(list).click();
    harness.step();
    harness.step(); // the list opens, then lays out its entries
    harness.get_by_label(item).click();
    harness.step();
}

/// Presses Generate and waits for the job to finish.
fn generate(harness: &mut Harness<'_, EditorApp>) {
    harness.get_by_label("Generate").click();
    harness.step();
    wait_for_the_job(harness);
}

fn wait_for_the_job(harness: &mut Harness<'_, EditorApp>) {
    let start = Instant::now();
    while harness.state().busy() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    assert!(!harness.state().busy(), "{}", harness.state().status());
}

#[test]
fn dragging_a_joint_moves_the_target_and_generate_reposes_inside_both_skeletons() {
    let people = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/samples/people");
    let picture = image::open(people.join("single_cam03.png"))
        .expect("sample")
        .to_rgb8();
    let pose = Pose::read(&people.join("single_cam03.pose.json")).expect("sample pose");
    let app = EditorApp::new(
        picture.clone(),
        common::tiny_models("gui-pose"),
        BackendChoice::Cpu,
    )
    .with_pose(pose.clone());
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 640.0))
        .build_ui_state(|ui, app: &mut EditorApp| app.ui(ui), app);
    harness.step();
    harness.get_by_label("Pose").click();
    harness.step();
    harness.get_by_label("Move").click();
    harness.step();
    assert_eq!(harness.state().tool(), Tool::Pose(PoseMode::Move));
    // Drag the right wrist 40 points to the right.
    let wrist = pose.joints[6];
    let from = harness.state().screen_point((wrist.x, wrist.y));
    drag(
        &mut harness,
        PointerButton::Primary,
        from,
        from + egui::vec2(40.0, 0.0),
    );
    let doc = harness.state().document();
    let target = doc.target.as_ref().expect("a target");
    assert!(
        target.joints[6].x > wrist.x + 5.0,
        "moved to {}",
        target.joints[6].x
    );
    assert!((target.joints[6].y - wrist.y).abs() < 2.0);
    assert_eq!(doc.pose.as_ref(), Some(&pose), "the pose itself stays");
    // A right-click hides a joint; undo shows it again.
    let knee = pose.joints[9];
    let at = harness.state().screen_point((knee.x, knee.y));
    drag(&mut harness, PointerButton::Secondary, at, at);
    assert!(
        !harness
            .state()
            .document()
            .target
            .as_ref()
            .expect("target")
            .joints[9]
            .visible
    );
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    let doc = harness.state().document();
    assert!(doc.target.as_ref().expect("target").joints[9].visible);
    let new_pose = doc.target.clone().expect("target");
    // Generate reposes: only pixels inside the union of both skeletons change.
    generate(&mut harness);
    let doc = harness.state().document();
    let (mask, _) = repose_region(&pose, &new_pose, picture.dimensions(), DILATION, 64)
        .expect("visible joints");
    common::assert_only_masked_pixels_change(&picture, &mask, &doc.image);
    assert_eq!(
        doc.pose.as_ref(),
        Some(&new_pose),
        "the person stands there now"
    );
}

/// A file dropped on the window, as the windowing layer reports it.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(harness: &mut Harness<'_, EditorApp>, path: &std::path::Path) {
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(path.to_path_buf())));
    harness.step();
}

#[test]
fn a_saved_project_dropped_on_the_window_comes_back_with_its_history() {
    let dir = common::temp_dir("gui-project-files");
    let path = dir.join("work.tessera");
    let mut harness = editor("gui-project");
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    harness.get_by_label("Live").click();
    harness.step();
    harness.state_mut().save_to(path.clone());
    let saved = harness.state().document().clone();
    assert!(
        harness.state().status().contains("saved"),
        "{}",
        harness.state().status()
    );
    let mut other = editor("gui-project-other");
    drop_file(&mut other, &path);
    assert_eq!(
        other.state().document(),
        &saved,
        "{}",
        other.state().status()
    );
    assert_eq!(
        other.state().snapshot().settings,
        harness.state().snapshot().settings
    );
    other.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    other.step();
    assert_eq!(
        masked(other.state()),
        0,
        "the stroke's undo step came with it"
    );
}

#[test]
fn a_change_is_autosaved_into_the_project_within_seconds() {
    let dir = common::temp_dir("gui-autosave-files");
    let path = dir.join("auto.tessera");
    let mut harness = editor("gui-autosave");
    harness.state_mut().save_to(path.clone());
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    let painted = harness.state().document().clone();
    let start = Instant::now();
    let mut on_disk = None;
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        harness.step();
        on_disk = Project::load(&path).ok().map(|p| p.document);
        if on_disk.as_ref() == Some(&painted) {
            break;
        }
    }
    assert_eq!(
        on_disk.as_ref(),
        Some(&painted),
        "{}",
        harness.state().status()
    );
}

#[test]
fn a_damaged_project_is_refused_and_neither_file_nor_work_is_lost() {
    let dir = common::temp_dir("gui-damaged-files");
    let path = dir.join("broken.tessera");
    std::fs::write(&path, b"TESSERA\x01 not really").expect("write");
    let mut harness = editor("gui-damaged");
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    let work = harness.state().document().clone();
    drop_file(&mut harness, &path);
    let status = harness.state().status().to_string();
    assert!(
        status.contains("broken.tessera") && status.contains("damaged"),
        "{status}"
    );
    assert_eq!(harness.state().document(), &work);
    assert_eq!(
        std::fs::read(&path).expect("file"),
        b"TESSERA\x01 not really"
    );
}

#[test]
fn picking_another_candidate_puts_it_in_the_picture_as_one_undo_step() {
    let mut harness = editor("gui-candidates");
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    generate(&mut harness);
    harness.step();
    let first = harness.state().document().image.clone();
    harness.get_by_label("2").click();
    harness.step();
    let second = harness.state().document().image.clone();
    assert_ne!(second, first, "{}", harness.state().status());
    let mask = harness.state().document().mask.clone();
    common::assert_only_masked_pixels_change(&first, &mask, &second);
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(harness.state().document().image, first);
}

#[test]
fn a_damaged_picture_dropped_on_the_window_is_named_and_the_work_stays() {
    let mut harness = editor("gui-bad-picture");
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    let work = harness.state().document().clone();
    let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/images");
    for name in ["truncated.png", "bomb-60000x60000.png", "text-named.png"] {
        drop_file(&mut harness, &corpus.join(name));
        let status = harness.state().status().to_string();
        assert!(status.contains(name), "{name}: {status}");
        assert_eq!(harness.state().document(), &work, "{name}");
    }
}

#[test]
fn a_clicked_sample_becomes_the_picture_as_one_undo_step() {
    let mut harness = editor("gui-sample");
    let original = harness.state().document().image.clone();
    harness.get_by_label("Sample").click();
    harness.step();
    assert_eq!(harness.state().tool(), Tool::Sample);
    generate(&mut harness);
    harness.step();
    assert_eq!(
        harness.state().document().image,
        original,
        "sampling alone changes nothing"
    );
    harness.get_by_label("3").click();
    harness.step();
    let picked = harness.state().document().image.clone();
    assert_ne!(picked, original);
    assert_eq!(picked.dimensions(), (64, 64));
    assert!(
        harness
            .state()
            .document()
            .mask
            .pixels()
            .all(|p| p.0[0] == 0)
    );
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(harness.state().document().image, original);
}

#[test]
fn an_imagebart_edit_shows_its_refinement_and_changes_only_the_mask() {
    let mut harness = editor("gui-imagebart");
    let original = harness.state().document().image.clone();
    drag(&mut harness, PointerButton::Primary, LEFT, RIGHT);
    choose(&mut harness, "method", "imagebart");
    generate(&mut harness);
    let doc = harness.state().document();
    common::assert_only_masked_pixels_change(&original, &doc.mask, &doc.image);
    // The first cycle descends from noise through every level; the next ones start
    // from level 1 (thumbnails are labelled cycle·level).
    let shown = |label| harness.query_all_by_label(label).next().is_some();
    for label in ["1·t2", "1·t1", "1·t0", "2·t1", "2·t0"] {
        assert!(shown(label), "stage {label}");
    }
    assert!(!shown("2·t2"));
}

#[test]
fn the_sample_tool_also_draws_from_imagebart_and_a_click_takes_one() {
    let mut harness = editor("gui-sample-imagebart");
    let original = harness.state().document().image.clone();
    harness.get_by_label("Sample").click();
    harness.step();
    assert!(
        harness.query_by_label("Interpolate").is_some(),
        "HiT can interpolate"
    );
    choose(&mut harness, "generator", "imagebart");
    assert!(
        harness.query_by_label("Interpolate").is_none(),
        "ImageBART has no latent to interpolate in"
    );
    generate(&mut harness);
    harness.step();
    assert!(
        harness.state().status().contains("faces"),
        "{}",
        harness.state().status()
    );
    harness.get_by_label("2").click();
    harness.step();
    let picked = harness.state().document().image.clone();
    assert_ne!(picked, original);
    assert_eq!(picked.dimensions(), (64, 64));
}

#[test]
fn the_faces_of_a_photo_are_found_and_a_dragged_eye_moves_as_one_undo_step() {
    let photo = image::open(common::sample_faces().join("../faces_full/000910.jpg"))
        .expect("sample photo")
        .to_rgb8();
    let mut harness = editor_on(photo, "gui-faces");
    let start = Instant::now();
    while harness.state().document().faces.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "no face found");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for_the_job(&mut harness);
    assert!(
        harness.state().status().contains("1 face found"),
        "{}",
        harness.state().status()
    );
    let eye = harness.state().document().faces[0].points[0];
    let at = harness.state().screen_point((eye[0], eye[1]));
    drag(
        &mut harness,
        PointerButton::Primary,
        at,
        at + egui::vec2(12.0, 0.0),
    );
    let moved = harness.state().document().faces[0].points[0];
    assert!(moved[0] > eye[0] + 1.0, "{eye:?} -> {moved:?}");
    assert_eq!(
        masked(harness.state()),
        0,
        "dragging a point paints nothing"
    );
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(harness.state().document().faces[0].points[0], eye);
}
