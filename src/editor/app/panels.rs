//! The panels around the canvas: the toolbar, the status bar, the strip of candidates,
//! and the keyboard shortcuts.

use eframe::egui;

use super::{EXPORT, EditorApp, GENERATE, HELP, OPEN, PICTURE, PoseMode, REDO, SAVE, Tool, UNDO};
use crate::editor::document::Document;
use crate::engine::Method;

impl EditorApp {
    pub(super) fn toolbar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            if ui.button("Open…").clicked() {
                self.open_dialog();
            }
            if ui.button("Save").clicked() {
                self.save();
            }
            if ui.button("Export…").clicked() {
                self.export();
            }
            ui.separator();
            ui.selectable_value(&mut self.tool, Tool::Mask, "Mask");
            ui.selectable_value(&mut self.tool, Tool::Sketch, "Sketch");
            let posing = matches!(self.tool, Tool::Pose(_));
            if ui.selectable_label(posing, "Pose").clicked() && !posing {
                self.pose_tool(PoseMode::Fit);
            }
            ui.selectable_value(&mut self.tool, Tool::Sample, "Sample");
            match self.tool {
                Tool::Pose(mode) => self.pose_controls(ui, mode),
                Tool::Sample => self.sample_controls(ui),
                Tool::Mask | Tool::Sketch => {
                    ui.add(egui::Slider::new(&mut self.brush, 0.5..=32.0).text("brush"));
                }
            }
            ui.separator();
            if ui
                .add_enabled(self.history.can_undo(), egui::Button::new("Undo"))
                .clicked()
            {
                self.undo();
            }
            if ui
                .add_enabled(self.history.can_redo(), egui::Button::new("Redo"))
                .clicked()
            {
                self.redo();
            }
            if ui.button("Clear mask").clicked() {
                self.change(|doc| doc.mask.fill(0));
            }
            if ui.button("Clear sketch").clicked() {
                self.change(|doc| doc.sketch.fill(255));
            }
            ui.separator();
            egui::ComboBox::from_label("method")
                .selected_text(self.method.name())
                .show_ui(ui, |ui| {
                    for method in [
                        Method::Ilat,
                        Method::Taming,
                        Method::TamingStar,
                        Method::Imagebart,
                    ] {
                        ui.selectable_value(&mut self.method, method, method.name());
                    }
                });
            if self.method == Method::Imagebart {
                ui.add(
                    egui::DragValue::new(&mut self.cycles)
                        .range(1..=10)
                        .prefix("cycles "),
                );
            }
            ui.add(egui::DragValue::new(&mut self.sampling.seed).prefix("seed "));
            ui.add(egui::DragValue::new(&mut self.sampling.top_k).prefix("top-k "));
            ui.add(
                egui::DragValue::new(&mut self.candidates)
                    .range(1..=6)
                    .prefix("candidates "),
            );
            ui.checkbox(&mut self.live, "Live");
            if ui.button("Generate").clicked() {
                self.generate(ui.ctx());
            }
            ui.separator();
            ui.checkbox(&mut self.show_mask, "Mask overlay");
            ui.checkbox(&mut self.show_faces, "Faces").on_hover_text(
                "the faces found: an edit on one works on its aligned crop (bright green); \
                 drag an eye, the nose or the mouth to correct it",
            );
            ui.toggle_value(&mut self.show_help, "?")
                .on_hover_text("Shortcuts (F1)");
            let can_compare = self.before.is_some();
            if ui
                .add_enabled(
                    can_compare,
                    egui::Checkbox::new(&mut self.show_before, "Before"),
                )
                .changed()
            {
                self.touched(PICTURE);
            }
        });
    }

    pub(super) fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some(job) = &self.job {
                ui.spinner();
                if self.candidates > 1 {
                    let k = (job.candidates.len() + 1).min(self.candidates);
                    ui.label(format!("candidate {k}/{}", self.candidates));
                }
                ui.label(format!("token {}/{}", job.done, job.total));
            }
            ui.label(&self.status);
        });
    }

    /// Thumbnails of the last job's candidates; a click puts one in the picture.
    pub(super) fn candidates_strip(&mut self, ui: &mut egui::Ui) {
        let title = if self.gallery { "faces" } else { "candidates" };
        if let Some(k) = self.choices.ui(ui, title) {
            let image = self.choices.image(k).clone();
            self.choices.choose(k);
            if self.gallery {
                self.change(|doc| *doc = Document::new(image));
                self.faces_wanted = true;
                self.before = None;
                self.status = format!("face {} is the picture now", k + 1);
            } else {
                self.change(|doc| doc.image = image);
                self.status = format!("candidate {} of {}", k + 1, self.choices.len());
            }
        }
    }

    pub(super) fn shortcuts(&mut self, ui: &mut egui::Ui) {
        let (undo, redo, generate) = ui.input_mut(|i| {
            // Redo first: its shortcut contains undo's.
            let redo = i.consume_shortcut(&REDO);
            (
                i.consume_shortcut(&UNDO),
                redo,
                i.consume_shortcut(&GENERATE),
            )
        });
        let (open, save, export, help) = ui.input_mut(|i| {
            (
                i.consume_shortcut(&OPEN),
                i.consume_shortcut(&SAVE),
                i.consume_shortcut(&EXPORT),
                i.consume_shortcut(&HELP),
            )
        });
        if help {
            self.show_help = !self.show_help;
        }
        if open {
            self.open_dialog();
        }
        if save {
            self.save();
        }
        if export {
            self.export();
        }
        if redo {
            self.redo();
        } else if undo {
            self.undo();
        }
        if generate {
            self.generate(ui.ctx());
        }
    }
}
