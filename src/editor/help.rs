//! The help panel (F1 or the "?" button): every shortcut and mouse action.

use eframe::egui;

/// The help panel: every shortcut and mouse action.
const SHORTCUTS: [(&str, &str); 14] = [
    ("Left drag", "paint the mask or sketch; drag a joint (Pose)"),
    (
        "Right drag",
        "erase; right-click a joint: hidden or visible (Pose)",
    ),
    ("Middle drag", "pan"),
    ("Wheel", "zoom about the pointer"),
    ("G", "generate (edit, or repose with the Pose tool)"),
    ("Ctrl+Z", "undo"),
    ("Ctrl+Shift+Z", "redo"),
    (
        "Ctrl+O",
        "open a picture or project (or drop a file on the window)",
    ),
    ("Ctrl+S", "save the project"),
    ("Ctrl+E", "export the picture"),
    ("F1", "this help"),
    ("Live", "regenerate when a stroke ends"),
    ("Before", "show the picture before the last edit"),
    (
        "Autosave",
        "a second after each change, to the project or the autosave folder",
    ),
];

/// The panel, while `open`; its close button clears `open`.
pub fn window(ctx: &egui::Context, open: &mut bool) {
    egui::Window::new("Shortcuts")
        .open(open)
        .resizable(false)
        .show(ctx, |ui| {
            egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                for (keys, what) in SHORTCUTS {
                    ui.strong(keys);
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
}
