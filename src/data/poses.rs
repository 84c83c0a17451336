//! People and their poses (DESIGN §4a, iLAT §3.3): the 13-joint keypoints committed in
//! `assets/poses/keypoints.json` for every demo-video frame, a split that holds out the
//! last fifth of every video with a gap before it (so no test frame has a training
//! neighbour), and the square crop around a person that the models see.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::DataError;

/// One joint: a position in pixels and whether it is visible.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize)]
pub struct Joint {
    pub x: f32,
    pub y: f32,
    pub visible: bool,
}

/// A person's 13 joints, in Penn Action's order: head, left and right shoulder, elbow,
/// wrist, hip, knee, ankle (left = the person's left).
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Pose {
    pub joints: [Joint; 13],
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

/// The committed annotations.
pub fn keypoints_path() -> PathBuf {
    crate::paths::assets().join("poses/keypoints.json")
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
            let joints: [Joint; 13] = joints
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_keypoints_load_and_every_pose_lies_in_its_frame() {
        let frames = load(&keypoints_path()).expect("committed keypoints");
        assert!(frames.len() > 900, "{} frames", frames.len());
        for frame in &frames {
            for joint in frame.pose.joints.iter().filter(|j| j.visible) {
                assert!(joint.x > -50.0 && joint.x < 2000.0 && joint.y > -50.0 && joint.y < 2000.0);
            }
        }
    }

    #[test]
    fn held_out_frames_never_neighbour_training_frames() {
        let frames = load(&keypoints_path()).expect("committed keypoints");
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
