//! How a pose looks on the canvas and how the pointer picks its joints: bones between
//! visible joints, a filled dot on a visible joint, a hollow ring on an invisible one
//! (it still has a place the user can drag, it just does not guide the model).

use eframe::egui::{Color32, Pos2, Shape, Stroke};

use crate::data::PicturePoint;
use crate::data::poses::{LIMBS, Pose};

/// Radius of a joint's dot, in points.
const JOINT_RADIUS: f32 = 4.0;

/// How far from a joint the pointer may be to grab it, in points.
pub const PICK_RADIUS: f32 = 10.0;

/// The shapes of `pose`, with `to_screen` mapping picture pixels to points.
pub fn shapes(pose: &Pose, to_screen: impl Fn(f32, f32) -> Pos2, color: Color32) -> Vec<Shape> {
    let joints = &pose.joints;
    let at = |i: usize| to_screen(joints[i].x, joints[i].y);
    let bones = LIMBS
        .iter()
        .filter(|&&(a, b)| joints[a].visible && joints[b].visible)
        .map(|&(a, b)| Shape::line_segment([at(a), at(b)], Stroke::new(2.0, color)));
    let dots = joints.iter().enumerate().map(|(i, joint)| {
        if joint.visible {
            Shape::circle_filled(at(i), JOINT_RADIUS, color)
        } else {
            Shape::circle_stroke(
                at(i),
                JOINT_RADIUS,
                Stroke::new(1.5, color.gamma_multiply(0.6)),
            )
        }
    });
    bones.chain(dots).collect()
}

/// The joint nearest to `point` (picture pixels) within `radius` pixels.
pub fn nearest_joint(pose: &Pose, point: PicturePoint, radius: f32) -> Option<usize> {
    pose.joints
        .iter()
        .enumerate()
        .map(|(i, j)| (i, (j.x - point.0).hypot(j.y - point.1)))
        .filter(|&(_, d)| d <= radius)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// Whether a shape is a joint drawn as invisible (a ring, not a dot).
#[cfg(test)]
fn is_ring(shape: &Shape) -> bool {
    matches!(shape, Shape::Circle(c) if c.fill == Color32::TRANSPARENT && c.stroke.width > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_joints_are_rings_without_bones() {
        let mut pose = Pose::standing(50.0, 100.0, 80.0);
        pose.joints[6].visible = false; // right wrist
        let shapes = shapes(&pose, eframe::egui::pos2, Color32::YELLOW);
        let rings: Vec<&Shape> = shapes.iter().filter(|s| is_ring(s)).collect();
        assert_eq!(rings.len(), 1);
        assert!(
            matches!(rings[0], Shape::Circle(c) if c.center == eframe::egui::pos2(pose.joints[6].x, pose.joints[6].y))
        );
        let segments = shapes
            .iter()
            .filter(|s| matches!(s, Shape::LineSegment { .. }))
            .count();
        assert_eq!(
            segments,
            LIMBS.len() - 1,
            "the forearm to the hidden wrist is gone"
        );
    }

    #[test]
    fn the_nearest_joint_within_reach_is_picked() {
        let pose = Pose::standing(50.0, 100.0, 80.0);
        let head = (pose.joints[0].x, pose.joints[0].y);
        assert_eq!(nearest_joint(&pose, (head.0 + 2.0, head.1), 5.0), Some(0));
        assert_eq!(
            nearest_joint(&pose, (head.0 + 40.0, head.1 - 30.0), 5.0),
            None
        );
    }
}
