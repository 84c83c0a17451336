//! The Pose tool: a skeleton fitted onto the person (Fit) and a target dragged to where
//! they should stand (Move); a right-click shows or hides a joint.

use eframe::egui;

use super::{EditorApp, PoseMode, Tool};
use crate::data::PicturePoint;
use crate::editor::skeleton;

impl EditorApp {
    /// Fit or Move, and Reset, for the Pose tool.
    pub(super) fn pose_controls(&mut self, ui: &mut egui::Ui, mode: PoseMode) {
        if ui.selectable_label(mode == PoseMode::Fit, "Fit").clicked() {
            self.pose_tool(PoseMode::Fit);
        }
        if ui
            .selectable_label(mode == PoseMode::Move, "Move")
            .clicked()
        {
            self.pose_tool(PoseMode::Move);
        }
        if ui
            .button("Reset")
            .on_hover_text("Fit: a standing figure again; Move: back onto the person")
            .clicked()
        {
            self.change(|doc| match mode {
                PoseMode::Fit => (doc.pose, doc.target) = (None, None),
                PoseMode::Move => doc.target = doc.pose.clone(),
            });
            self.document.poses_or_standing();
        }
    }

    /// Switches to the Pose tool, placing a skeleton when the picture has none.
    pub(super) fn pose_tool(&mut self, mode: PoseMode) {
        if self.document.pose.is_none() {
            self.change(|doc| {
                doc.poses_or_standing();
            });
            self.status =
                "drag the joints onto the person (right-click: hidden or not), then Move".into();
        } else if mode == PoseMode::Move {
            self.status = "drag joints to where they should go, then Generate (G)".into();
        }
        self.tool = Tool::Pose(mode);
    }

    /// A drag of the Pose tool: the first segment grabs the joint under the pointer
    /// (or, with the right button, shows or hides it); later ones move the grabbed
    /// joint. While fitting, the target follows the pose.
    pub(super) fn drag_joint(
        &mut self,
        mode: PoseMode,
        from: PicturePoint,
        to: PicturePoint,
        erase: bool,
    ) {
        let reach = skeleton::PICK_RADIUS / self.view.scale(self.document.image.width());
        if !self.stroke_recorded {
            self.stroke_recorded = true;
            let (pose, target) = self.document.poses_or_standing();
            let active = if mode == PoseMode::Fit { pose } else { target };
            let Some(joint) = skeleton::nearest_joint(active, from, reach) else {
                return;
            };
            self.history.record(&self.document);
            if erase {
                let (pose, target) = self.document.poses_or_standing();
                for p in [pose, target] {
                    p.joints[joint].visible = !p.joints[joint].visible;
                }
                return;
            }
            self.dragging = Some(joint);
        }
        let Some(joint) = self.dragging else {
            return;
        };
        let (pose, target) = self.document.poses_or_standing();
        for p in match mode {
            PoseMode::Fit => vec![pose, target],
            PoseMode::Move => vec![target],
        } {
            (p.joints[joint].x, p.joints[joint].y) = to;
        }
    }
}
