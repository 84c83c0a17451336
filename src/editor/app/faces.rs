//! The faces of the picture: found by the worker when a picture is opened, shown on
//! the canvas (the one an edit of the mask aligns to in bright green), and corrected
//! by dragging an eye, the nose tip or the mouth when the locator got one wrong.

use eframe::egui;

use super::{EditorApp, JobKind};
use crate::data::PicturePoint;
use crate::editor::face_marks;

/// The face under the mask (its index), with the mask revision and the faces it was
/// found for.
pub(super) type ActiveFace = ((u64, Vec<crate::faces::Face>), Option<usize>);

/// The status while faces are looked for.
pub(super) const LOCATING: &str = "finding faces";

impl EditorApp {
    /// Asks the worker for the picture's faces once it is free after a new picture.
    pub(super) fn locate_faces(&mut self, ctx: &egui::Context) {
        if self.faces_wanted && self.job.is_none() {
            self.faces_wanted = false;
            let image = self.document.image.clone();
            self.start(JobKind::Faces, ctx, |worker| worker.find_faces(image));
        }
    }

    /// The faces the worker found: they replace the document's (not an undo step:
    /// they come with the picture). The status says so unless it has moved on.
    pub(super) fn faces_found(&mut self, faces: Vec<crate::faces::Face>) {
        if self.status != LOCATING {
            self.document.faces = faces;
            return;
        }
        self.status = match faces.len() {
            0 => "no face found: edits work on the square around the mask".into(),
            n => format!(
                "{n} face{} found: an edit on a face works on its aligned crop \
                 (drag an eye, the nose or the mouth to correct it)",
                if n == 1 { "" } else { "s" }
            ),
        };
        self.document.faces = faces;
    }

    /// A segment of a Mask or Sketch stroke that began on a face's point moves that
    /// point; true when it did (the stroke paints nothing then).
    pub(super) fn drag_face_point(&mut self, from: PicturePoint, to: PicturePoint) -> bool {
        if !self.stroke_recorded && self.show_faces {
            let reach = face_marks::PICK_RADIUS / self.view.scale(self.document.image.width());
            if let Some(grabbed) = face_marks::nearest_point(&self.document.faces, from, reach) {
                self.history.record(&self.document);
                self.stroke_recorded = true;
                self.dragging_face = Some(grabbed);
            }
        }
        let Some((face, point)) = self.dragging_face else {
            return false;
        };
        self.document.faces[face].points[point] = [to.0, to.1];
        true
    }

    /// The face an edit of the mask aligns to, found again only when the mask or the
    /// faces changed since the last frame.
    pub(super) fn active_face(&mut self) -> Option<usize> {
        let key = (self.revisions[super::MASK], self.document.faces.clone());
        match &self.active_face {
            Some((seen, face)) if *seen == key => *face,
            _ => {
                let face = self.document.face_under_mask();
                self.active_face = Some((key, face));
                face
            }
        }
    }

    /// Whether the job running is the search for faces.
    pub(super) fn locating(&self) -> bool {
        self.job
            .as_ref()
            .is_some_and(|job| job.kind == JobKind::Faces)
    }
}
