//! People and their poses (iLAT §3.3): the 13-joint keypoints committed in
//! `assets/poses/keypoints.json` for every demo-video frame, a split that holds out the
//! last fifth of every video with a gap before it (so no test frame has a training
//! neighbour), the tracks of one person through a video and the pairs of frames drawn
//! from them, and the skeleton mask that a repose regenerates (iLAT §3.3: the union of
//! the old and the new skeleton, dilated).

use std::collections::BTreeMap;
use std::path::Path;

use image::GrayImage;
use serde::Deserialize;

use super::DataError;
use super::masks::{disc, segment};

/// Joints of a pose.
pub const JOINTS: usize = 13;

/// Joint names in Penn Action's order (as in pose JSON files).
pub const JOINT_NAMES: [&str; JOINTS] = [
    "head",
    "left shoulder",
    "right shoulder",
    "left elbow",
    "right elbow",
    "left wrist",
    "right wrist",
    "left hip",
    "right hip",
    "left knee",
    "right knee",
    "left ankle",
    "right ankle",
];

/// The bones drawn between joints: head to shoulders, arms, torso, legs.
pub const LIMBS: [(usize, usize); 14] = [
    (0, 1),
    (0, 2),
    (1, 2),
    (1, 3),
    (3, 5),
    (2, 4),
    (4, 6),
    (1, 7),
    (2, 8),
    (7, 8),
    (7, 9),
    (9, 11),
    (8, 10),
    (10, 12),
];

/// One joint: a position in pixels and whether it is visible.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize)]
pub struct Joint {
    pub x: f32,
    pub y: f32,
    pub visible: bool,
}

/// A person's 13 joints, in Penn Action's order: head, left and right shoulder, elbow,
/// wrist, hip, knee, ankle (left = the person's left). As a file:
/// `{"joints": [{"x": 512.0, "y": 130.5, "visible": true}, …13]}`, in pixels of the
/// picture.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Pose {
    pub joints: [Joint; JOINTS],
}

impl Pose {
    /// A person standing upright with arms a little out, `height` pixels tall, feet
    /// centred at (`x`, `feet`): the skeleton the editor starts from on a picture
    /// without a pose, for the user to drag onto the person.
    pub fn standing(x: f32, feet: f32, height: f32) -> Self {
        let points = [
            (0.0, 1.0),
            (-0.12, 0.85),
            (0.12, 0.85),
            (-0.25, 0.8),
            (0.25, 0.8),
            (-0.38, 0.78),
            (0.38, 0.78),
            (-0.08, 0.45),
            (0.08, 0.45),
            (-0.09, 0.22),
            (0.09, 0.22),
            (-0.1, 0.0),
            (0.1, 0.0),
        ];
        Self {
            joints: points.map(|(dx, up)| Joint {
                x: x + dx * height,
                y: feet - up * height,
                visible: true,
            }),
        }
    }

    /// Reads a pose file, naming the file and the fault when it is not one.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::BadPose {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let pose: Pose = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "{e} (expected {{\"joints\": [13 x {{\"x\", \"y\", \"visible\"}}]}} in the order {})",
                JOINT_NAMES.join(", ")
            ))
        })?;
        if let Some(i) = pose
            .joints
            .iter()
            .position(|j| !j.x.is_finite() || !j.y.is_finite())
        {
            return Err(bad(format!(
                "the {} is not at a finite place",
                JOINT_NAMES[i]
            )));
        }
        if !pose.joints.iter().any(|j| j.visible) {
            return Err(bad("no joint is visible".into()));
        }
        Ok(pose)
    }

    /// Writes the pose as JSON.
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Every joint through `f`, visibility kept.
    pub fn map(&self, f: impl Fn(f32, f32) -> (f32, f32)) -> Self {
        Self {
            joints: self.joints.map(|j| {
                let (x, y) = f(j.x, j.y);
                Joint { x, y, ..j }
            }),
        }
    }

    /// The pose in a picture mirrored left to right (`width` wide): positions flipped
    /// and the person's left and right joints exchanged.
    pub fn mirrored(&self, width: f32) -> Self {
        let flipped = self.map(|x, y| (width - x, y));
        let mut joints = flipped.joints;
        for pair in (1..JOINTS).step_by(2) {
            joints.swap(pair, pair + 1);
        }
        Self { joints }
    }

    /// The box around the visible joints: `(x0, y0, x1, y1)`.
    pub fn bounds(&self) -> Option<(f32, f32, f32, f32)> {
        self.joints
            .iter()
            .filter(|j| j.visible)
            .fold(None, |acc, j| {
                let (x0, y0, x1, y1) = acc.unwrap_or((j.x, j.y, j.x, j.y));
                Some((x0.min(j.x), y0.min(j.y), x1.max(j.x), y1.max(j.y)))
            })
    }

    /// The larger side of [`Pose::bounds`] (at least one pixel): the person's scale.
    pub fn extent(&self) -> f32 {
        self.bounds()
            .map_or(1.0, |(x0, y0, x1, y1)| (x1 - x0).max(y1 - y0).max(1.0))
    }

    /// The model's view of the pose: `[x, y, visible]` per joint, x and y relative to
    /// a square (`left`, `top`, `side`), an invisible joint all zeros.
    pub fn features(&self, left: f32, top: f32, side: f32) -> [[f32; 3]; JOINTS] {
        self.joints.map(|j| {
            if j.visible {
                [(j.x - left) / side, (j.y - top) / side, 1.0]
            } else {
                [0.0; 3]
            }
        })
    }
}

/// The part of the picture a repose regenerates: the skeletons of every pose given
/// (iLAT §3.3: the old and the new), bones `dilation` x the person's extent in
/// radius, the head a disc twice that, the torso filled. 255 inside, 0 outside.
pub fn skeleton_mask(poses: &[&Pose], width: u32, height: u32, dilation: f32) -> GrayImage {
    let mut mask = GrayImage::new(width, height);
    let extent = poses.iter().map(|p| p.extent()).fold(1.0, f32::max);
    let radius = (dilation * extent).max(1.0);
    for pose in poses {
        let j = &pose.joints;
        for &(a, b) in &LIMBS {
            if j[a].visible && j[b].visible {
                segment(&mut mask, (j[a].x, j[a].y), (j[b].x, j[b].y), radius, 255);
            }
        }
        for joint in j.iter().filter(|j| j.visible) {
            disc(&mut mask, joint.x, joint.y, radius, 255);
        }
        if j[0].visible {
            disc(&mut mask, j[0].x, j[0].y, 2.0 * radius, 255);
        }
        fill_torso(&mut mask, pose);
    }
    mask
}

/// Fills the quadrilateral of the shoulders and hips when all four are visible.
fn fill_torso(mask: &mut GrayImage, pose: &Pose) {
    let corners = [1, 2, 8, 7].map(|i| pose.joints[i]);
    if !corners.iter().all(|c| c.visible) {
        return;
    }
    let (w, h) = mask.dimensions();
    let x0 = corners
        .iter()
        .map(|c| c.x)
        .fold(f32::MAX, f32::min)
        .max(0.0) as u32;
    let y0 = corners
        .iter()
        .map(|c| c.y)
        .fold(f32::MAX, f32::min)
        .max(0.0) as u32;
    let x1 = (corners.iter().map(|c| c.x).fold(0.0, f32::max).ceil() as u32).min(w);
    let y1 = (corners.iter().map(|c| c.y).fold(0.0, f32::max).ceil() as u32).min(h);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            // Inside a convex quadrilateral: on the same side of every edge.
            let sides = (0..4).map(|k| {
                let (a, b) = (corners[k], corners[(k + 1) % 4]);
                (b.x - a.x) * (py - a.y) - (b.y - a.y) * (px - a.x)
            });
            let (mut pos, mut neg) = (false, false);
            for s in sides {
                pos |= s > 0.0;
                neg |= s < 0.0;
            }
            if !(pos && neg) {
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
    }
}

/// An annotated frame of a demo video.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Video id (`single_cam01`, …).
    pub video: String,
    /// Frame number, from 1.
    pub number: usize,
    /// The person's pose, in pixels of the frame.
    pub pose: Pose,
}

#[derive(Deserialize)]
struct File {
    videos: BTreeMap<String, Video>,
}

#[derive(Deserialize)]
struct Video {
    frames: BTreeMap<String, Option<Vec<[f32; 3]>>>,
}

/// Every frame in which a person was found, by video and frame number.
pub fn load(path: &Path) -> Result<Vec<Frame>, DataError> {
    let bad = |reason: String| DataError::Io {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let file: File = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut frames = Vec::new();
    for (video, content) in file.videos {
        for (name, joints) in content.frames {
            let Some(joints) = joints else { continue };
            let number = name
                .parse()
                .map_err(|_| bad(format!("frame name {name:?} is not a number")))?;
            let joints: [Joint; JOINTS] = joints
                .iter()
                .map(|&[x, y, v]| Joint {
                    x,
                    y,
                    visible: v > 0.5,
                })
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|_| bad(format!("{video} frame {name}: not 13 joints")))?;
            frames.push(Frame {
                video: video.clone(),
                number,
                pose: Pose { joints },
            });
        }
    }
    frames.sort_by(|a, b| (&a.video, a.number).cmp(&(&b.video, b.number)));
    Ok(frames)
}

/// Frames left out between the training and test parts of a video.
const GAP: usize = 5;

/// Splits by video: the last fifth of every video's frames is held out, and the `GAP`
/// frames before it belong to neither part.
pub fn split(frames: &[Frame]) -> (Vec<Frame>, Vec<Frame>) {
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for frame in frames {
        let entry = last.entry(frame.video.as_str()).or_default();
        *entry = (*entry).max(frame.number);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for frame in frames {
        let start = last[frame.video.as_str()] * 4 / 5 + 1;
        if frame.number >= start {
            test.push(frame.clone());
        } else if frame.number + GAP < start {
            train.push(frame.clone());
        }
    }
    (train, test)
}

/// Runs of frames that show one person: consecutive annotated frames of a video
/// (at most `MAX_SKIP` numbers apart) whose person keeps its place and size. A jump
/// means the annotator switched to another person (Trial_2 has two) or lost them.
/// Returns indices into `frames`, which must be sorted by video and number.
pub fn tracks(frames: &[Frame]) -> Vec<Vec<usize>> {
    let mut tracks: Vec<Vec<usize>> = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let continues = tracks.last().and_then(|t| t.last()).is_some_and(|&p| {
            let prev = &frames[p];
            prev.video == frame.video
                && frame.number <= prev.number + MAX_SKIP
                && same_person(&prev.pose, &frame.pose)
        });
        match tracks.last_mut() {
            Some(track) if continues => track.push(i),
            _ => tracks.push(vec![i]),
        }
    }
    tracks
}

/// Frame numbers a track may skip (frames where nobody was found).
const MAX_SKIP: usize = 3;

/// Whether two poses of neighbouring frames plausibly show the same person.
fn same_person(a: &Pose, b: &Pose) -> bool {
    let (Some(ba), Some(bb)) = (a.bounds(), b.bounds()) else {
        return false;
    };
    let (ea, eb) = (a.extent(), b.extent());
    let centre = |(x0, y0, x1, y1): (f32, f32, f32, f32)| ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let (ca, cb) = (centre(ba), centre(bb));
    let moved = (ca.0 - cb.0).hypot(ca.1 - cb.1);
    moved < 0.25 * ea.max(eb) && ea.min(eb) / ea.max(eb) > 0.75
}

/// Pairs `(source, target)` of frames of one track, `gaps` frame numbers apart, both
/// orders. Indices into `frames`.
pub fn pairs(frames: &[Frame], gaps: std::ops::RangeInclusive<usize>) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for track in tracks(frames) {
        for (k, &a) in track.iter().enumerate() {
            for &b in &track[k + 1..] {
                if gaps.contains(&(frames[b].number - frames[a].number)) {
                    pairs.push((a, b));
                    pairs.push((b, a));
                }
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing_at(x: f32) -> Pose {
        Pose::standing(x, 140.0, 100.0)
    }

    #[test]
    fn the_skeleton_mask_covers_every_limb_of_both_poses() {
        let old = standing_at(60.0);
        let mut new = standing_at(110.0);
        new.joints[5] = Joint {
            x: 150.0,
            y: 20.0,
            visible: true,
        }; // the left wrist raised
        let mask = skeleton_mask(&[&old, &new], 200, 160, 0.05);
        for pose in [&old, &new] {
            for &(a, b) in &LIMBS {
                let (ja, jb) = (pose.joints[a], pose.joints[b]);
                for k in 0..=20 {
                    let t = k as f32 / 20.0;
                    let (x, y) = (ja.x + (jb.x - ja.x) * t, ja.y + (jb.y - ja.y) * t);
                    assert_eq!(
                        mask.get_pixel(x as u32, y as u32).0[0],
                        255,
                        "limb {a}-{b} at ({x}, {y})"
                    );
                }
            }
        }
        // And it is a skeleton, not the whole picture.
        let covered = mask.pixels().filter(|p| p.0[0] == 255).count();
        assert!(covered < 200 * 160 / 3, "{covered} pixels");
        assert_eq!(mask.get_pixel(199, 159).0[0], 0);
    }

    #[test]
    fn invisible_joints_are_kept_and_their_limbs_are_not_drawn() {
        let mut pose = standing_at(100.0);
        pose.joints[6].visible = false; // right wrist
        let mask = skeleton_mask(&[&pose], 200, 160, 0.03);
        let wrist = pose.joints[6];
        assert_eq!(
            mask.get_pixel(wrist.x as u32, wrist.y as u32).0[0],
            0,
            "nothing is drawn at an invisible joint"
        );
        let dir = std::env::temp_dir().join(format!("tessera-pose-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("pose.json");
        pose.write(&path).expect("write");
        let read = Pose::read(&path).expect("read");
        assert_eq!(read, pose, "the file round-trips, invisible joint included");
        assert!(!read.joints[6].visible);
        assert_eq!(read.features(0.0, 0.0, 200.0)[6], [0.0; 3]);
    }

    #[test]
    fn malformed_pose_files_name_the_file_and_the_fault() {
        let dir = std::env::temp_dir().join(format!("tessera-badpose-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let twelve = serde_json::to_string(&serde_json::json!({
            "joints": vec![serde_json::json!({"x": 1.0, "y": 2.0, "visible": true}); 12]
        }))
        .expect("json");
        let hidden = serde_json::to_string(&serde_json::json!({
            "joints": vec![serde_json::json!({"x": 1.0, "y": 2.0, "visible": false}); 13]
        }))
        .expect("json");
        let cases = [
            ("garbage.json", "not json at all", "expected"),
            ("twelve.json", twelve.as_str(), "13"),
            ("fields.json", r#"{"joints": [{"x": 1}]}"#, "missing field"),
            ("hidden.json", hidden.as_str(), "no joint is visible"),
        ];
        for (name, text, says) in cases {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            let err = Pose::read(&path).expect_err(name).to_string();
            assert!(err.contains(name) && err.contains(says), "{name}: {err}");
        }
        let missing = Pose::read(&dir.join("absent.json")).expect_err("absent");
        assert!(missing.to_string().contains("absent.json"));
    }

    #[test]
    fn mirroring_flips_positions_and_exchanges_sides() {
        let pose = standing_at(50.0);
        let mirrored = pose.mirrored(200.0);
        assert_eq!(mirrored.joints[0].x, 150.0);
        // The person's left wrist was at 50 - 38; mirrored it is their right wrist.
        assert_eq!(mirrored.joints[6].x, 200.0 - (50.0 - 38.0));
        assert_eq!(mirrored.mirrored(200.0), pose);
    }

    #[test]
    fn tracks_split_where_the_annotated_person_jumps() {
        let frame = |number: usize, x: f32| Frame {
            video: "v".into(),
            number,
            pose: standing_at(x),
        };
        let frames = vec![
            frame(1, 60.0),
            frame(2, 62.0),
            frame(3, 64.0),
            frame(4, 300.0), // another person
            frame(5, 302.0),
            frame(20, 304.0), // a long gap
        ];
        assert_eq!(tracks(&frames), vec![vec![0, 1, 2], vec![3, 4], vec![5]]);
        let pairs = pairs(&frames, 2..=2);
        assert_eq!(pairs, vec![(0, 2), (2, 0)]);
    }

    #[test]
    fn the_committed_keypoints_load_and_every_pose_lies_in_its_frame() {
        let frames = load(&crate::paths::pose_keypoints()).expect("committed keypoints");
        assert!(frames.len() > 900, "{} frames", frames.len());
        for frame in &frames {
            for joint in frame.pose.joints.iter().filter(|j| j.visible) {
                assert!(joint.x > -50.0 && joint.x < 2000.0 && joint.y > -50.0 && joint.y < 2000.0);
            }
        }
    }

    #[test]
    fn held_out_frames_never_neighbour_training_frames() {
        let frames = load(&crate::paths::pose_keypoints()).expect("committed keypoints");
        let (train, test) = split(&frames);
        assert!(!test.is_empty() && train.len() > 3 * test.len());
        for t in &test {
            assert!(
                train
                    .iter()
                    .filter(|f| f.video == t.video)
                    .all(|f| f.number + GAP < t.number),
                "{} frame {} is next to training frames",
                t.video,
                t.number
            );
        }
    }
}
