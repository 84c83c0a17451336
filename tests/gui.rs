//! The editor as a person uses it, through egui_kittest: strokes, undo/redo and an
//! edit that runs on the worker.

mod common;

use std::time::{Duration, Instant};

use eframe::egui::{self, Event, Key, Modifiers, PointerButton, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tessera::backend::BackendChoice;
use tessera::data::faces::load_folder;
use tessera::editor::EditorApp;

fn editor(tag: &str) -> Harness<'static, EditorApp> {
    let face = load_folder(&common::sample_faces(), 64)
        .expect("samples")
        .remove(1);
    let app = EditorApp::new(face, common::tiny_models(tag), BackendChoice::Cpu);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 640.0))
        .build_ui_state(|ui, app: &mut EditorApp| app.ui(ui), app);
    harness.step();
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
    let start = Instant::now();
    while harness.state().busy() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    let app = harness.state();
    assert!(!app.busy(), "the edit did not finish: {}", app.status());
    let doc = app.document();
    let mut changed = 0;
    for (x, y, p) in doc.image.enumerate_pixels() {
        if doc.mask.get_pixel(x, y).0[0] < 128 {
            assert_eq!(
                p,
                original.get_pixel(x, y),
                "pixel ({x}, {y}) outside the mask"
            );
        } else if p != original.get_pixel(x, y) {
            changed += 1;
        }
    }
    assert!(
        changed > 0,
        "nothing changed inside the mask: {}",
        app.status()
    );
    // The edit itself is one undoable step.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(harness.state().document().image, original);
}
