//! `tessera data check`: counts what `scripts/fetch-data.sh` produced, verifies the
//! feature networks against `data/CHECKSUMS`, and names whatever is missing or wrong.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::faces::list_images;
use crate::paths::Data;

/// One expected piece of data and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Path relative to the data folder.
    pub path: String,
    /// What was found: a file count, or "ok".
    pub found: String,
    /// What is expected.
    pub expected: String,
    /// Whether the two agree.
    pub ok: bool,
}

/// Image folders and their sizes: CelebA's first 999 aligned faces split 900/99 (at
/// 64 and at 128 pixels), and the 400 Olivetti faces.
const FOLDERS: [(&str, usize); 5] = [
    (Data::FACES_TRAIN, 900),
    (Data::FACES_TEST, 99),
    (Data::FACES128_TRAIN, 900),
    (Data::FACES128_TEST, 99),
    (Data::OLIVETTI, 400),
];

/// Checks every piece under `data`.
pub fn check(data: &Path) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = FOLDERS
        .iter()
        .map(|&(path, expected)| {
            let found = list_images(&data.join(path)).map_or(0, |files| files.len());
            Piece {
                path: path.into(),
                found: found.to_string(),
                expected: expected.to_string(),
                ok: found == expected,
            }
        })
        .collect();
    pieces.extend(pose_pieces());
    match std::fs::read_to_string(data.join("CHECKSUMS")) {
        Ok(text) => pieces.extend(text.lines().filter_map(|line| check_file_line(data, line))),
        Err(_) => pieces.push(Piece {
            path: "CHECKSUMS".into(),
            found: "missing".into(),
            expected: "present".into(),
            ok: false,
        }),
    }
    pieces
}

/// Frames with a person in the committed keypoints (`assets/poses/keypoints.json`):
/// 788 of the 800 Pose2Sim frames (mediapipe missed 12 of Trial_2's, where two people
/// dance) and 137 of the 230 Sports2D frames.
const POSE_FRAMES: usize = 925;

/// Of those, the frames held out for testing (the last fifth of each video).
const POSE_TEST_FRAMES: usize = 187;

fn pose_pieces() -> Vec<Piece> {
    let piece = |path: &str, found: String, expected: usize| Piece {
        path: path.into(),
        ok: found == expected.to_string(),
        found,
        expected: expected.to_string(),
    };
    match super::poses::load(&crate::paths::pose_keypoints()) {
        Ok(frames) => {
            let (_, test) = super::poses::split(&frames);
            vec![
                piece(
                    "poses: frames with a person",
                    frames.len().to_string(),
                    POSE_FRAMES,
                ),
                piece("poses: held out", test.len().to_string(), POSE_TEST_FRAMES),
            ]
        }
        Err(err) => vec![piece("poses: keypoints", err.to_string(), POSE_FRAMES)],
    }
}

/// Verifies a `file <path> <size> <sha256>` line of CHECKSUMS (other lines: none).
fn check_file_line(data: &Path, line: &str) -> Option<Piece> {
    let mut fields = line.split_whitespace();
    if fields.next() != Some("file") {
        return None;
    }
    let (path, _size, sha) = (fields.next()?, fields.next()?, fields.next()?);
    let found = match std::fs::read(data.join(path)) {
        Ok(bytes) => format!("{:x}", Sha256::digest(&bytes)),
        Err(_) => "missing".into(),
    };
    let ok = found == sha;
    let short = |s: &str| s.chars().take(12).collect::<String>();
    Some(Piece {
        path: path.into(),
        found: short(&found),
        expected: short(sha),
        ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_and_corrupt_pieces() {
        let dir = std::env::temp_dir().join(format!("tessera-check-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nets")).expect("dir");
        std::fs::write(dir.join("nets/a.bin"), b"abc").expect("write");
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        std::fs::write(
            dir.join("CHECKSUMS"),
            format!("file nets/a.bin 3 {abc}\nfile nets/b.bin 3 {abc}\n"),
        )
        .expect("write");
        let pieces = check(&dir);
        let get = |path: &str| pieces.iter().find(|p| p.path == path).expect(path).clone();
        assert!(get("nets/a.bin").ok);
        assert!(!get("nets/b.bin").ok);
        assert!(!get("faces/train").ok);
        std::fs::write(dir.join("nets/a.bin"), b"abd").expect("corrupt");
        assert!(!check(&dir).iter().any(|p| p.path == "nets/a.bin" && p.ok));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
