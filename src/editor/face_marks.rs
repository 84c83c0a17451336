//! How a located face looks on the canvas and how the pointer picks its points: the
//! box, and a dot on each eye, the nose tip and the mouth (the points the alignment
//! uses), drawn bright on the face an edit of the current mask would align to and dim
//! on the others.

use eframe::egui::{Color32, Pos2, Shape, Stroke};

use crate::data::PicturePoint;
use crate::faces::{Face, TEMPLATE};

/// Radius of a point's dot, in points.
const POINT_RADIUS: f32 = 3.5;

/// How far from a point the pointer may be to grab it, in points.
pub const PICK_RADIUS: f32 = 8.0;

/// The face the edit uses, and the others.
pub const ACTIVE: Color32 = Color32::from_rgb(90, 230, 120);
pub const IDLE: Color32 = Color32::from_rgb(150, 170, 160);

/// The shapes of `face`, with `to_screen` mapping picture pixels to points.
pub fn shapes(face: &Face, to_screen: impl Fn(f32, f32) -> Pos2, color: Color32) -> Vec<Shape> {
    let [x0, y0, x1, y1] = face.bbox;
    let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)].map(|(x, y)| to_screen(x, y));
    let stroke = Stroke::new(1.5, color);
    let outline = corners
        .windows(2)
        .map(|w| Shape::line_segment([w[0], w[1]], stroke));
    let dots = face.points[..TEMPLATE.len()]
        .iter()
        .map(|p| Shape::circle_filled(to_screen(p[0], p[1]), POINT_RADIUS, color));
    outline.chain(dots).collect()
}

/// The aligned point (eyes, nose tip, mouth) of any face nearest to `point` (picture
/// pixels) within `radius` pixels: which face, which point.
pub fn nearest_point(faces: &[Face], point: PicturePoint, radius: f32) -> Option<(usize, usize)> {
    faces
        .iter()
        .enumerate()
        .flat_map(|(f, face)| {
            face.points[..TEMPLATE.len()]
                .iter()
                .enumerate()
                .map(move |(k, p)| ((f, k), (p[0] - point.0).hypot(p[1] - point.1)))
        })
        .filter(|&(_, d)| d <= radius)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faces::POINTS;

    fn face(x: f32) -> Face {
        let mut points = [[0.0; 2]; POINTS];
        for (k, p) in points.iter_mut().enumerate() {
            *p = [x + 10.0 * k as f32, 50.0];
        }
        Face {
            score: 0.9,
            bbox: [x - 5.0, 30.0, x + 60.0, 90.0],
            points,
        }
    }

    #[test]
    fn a_face_is_its_box_and_four_dots() {
        let shapes = shapes(&face(0.0), eframe::egui::pos2, ACTIVE);
        let dots = shapes
            .iter()
            .filter(|s| matches!(s, Shape::Circle(_)))
            .count();
        let lines = shapes
            .iter()
            .filter(|s| matches!(s, Shape::LineSegment { .. }))
            .count();
        assert_eq!((dots, lines), (4, 4));
    }

    #[test]
    fn the_nearest_aligned_point_within_reach_is_picked() {
        let faces = [face(0.0), face(200.0)];
        assert_eq!(nearest_point(&faces, (211.0, 51.0), 4.0), Some((1, 1)));
        // The ears (points 4 and 5) are not dragged: they do not align anything.
        assert_eq!(nearest_point(&faces, (40.0, 50.0), 4.0), None);
        assert_eq!(nearest_point(&faces, (100.0, 50.0), 4.0), None);
    }
}
