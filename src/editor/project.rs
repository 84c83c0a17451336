//! The project file: the picture, mask, sketch and poses, the recent undo and redo
//! steps and the editor's settings, in one file that reopens exactly as it was.
//!
//! Layout: the 8-byte magic `TESSERA\x01`, the header's length (u64, little endian),
//! the header (JSON), then the layers as PNG blobs. The header names each blob's
//! length and SHA-256, so a truncated or damaged file is refused with a reason instead
//! of opening half a picture. Files are written atomically: a temporary file beside
//! the target, flushed to disk, then renamed over it, so a crash (or SIGKILL) at any
//! moment leaves either the old project or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageFormat, RgbImage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::document::Document;
use crate::data::poses::Pose;
use crate::engine::Method;
use crate::engine::Sampling;
use crate::faces::Face;

/// The first bytes of every project file; the last one is the format's version.
const MAGIC: &[u8; 8] = b"TESSERA\x01";

/// Largest header accepted (a damaged length must not allocate gigabytes).
const MAX_HEADER: u64 = 16 << 20;

/// Undo steps kept in a saved project (the editor's own history may hold more).
pub const SAVED_STEPS: usize = 16;

/// The extension of project files.
pub const EXTENSION: &str = "tessera";

/// The editor's settings that a project remembers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub method: Method,
    pub sampling: Sampling,
    /// Brush radius in picture pixels.
    pub brush: f32,
    pub live: bool,
    pub show_mask: bool,
    /// Results per Generate.
    #[serde(default = "one")]
    pub candidates: usize,
    /// Show the located faces (absent in older projects: shown).
    #[serde(default = "yes")]
    pub show_faces: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// Everything a project holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub document: Document,
    /// Oldest first, as the history keeps them.
    pub undo: Vec<Document>,
    pub redo: Vec<Document>,
    pub settings: Settings,
}

/// Why a project could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read the project {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} is not a Tessera project or is damaged: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot write the project {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

/// One document in the header: blob indices and poses.
#[derive(Serialize, Deserialize)]
struct Entry {
    image: usize,
    mask: usize,
    sketch: usize,
    pose: Option<Pose>,
    target: Option<Pose>,
    /// Absent in projects saved before faces were located.
    #[serde(default)]
    faces: Vec<Face>,
}

/// A blob's length and SHA-256 (hex).
#[derive(Serialize, Deserialize)]
struct Blob {
    length: u64,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    settings: Settings,
    document: Entry,
    undo: Vec<Entry>,
    redo: Vec<Entry>,
    blobs: Vec<Blob>,
}

impl Project {
    /// The file's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut blobs: Vec<Vec<u8>> = Vec::new();
        let mut entry = |doc: &Document| -> Result<Entry, String> {
            let mut add = |bytes: Vec<u8>| {
                blobs.push(bytes);
                blobs.len() - 1
            };
            Ok(Entry {
                image: add(png(|w| doc.image.write_to(w, ImageFormat::Png))?),
                mask: add(png(|w| doc.mask.write_to(w, ImageFormat::Png))?),
                sketch: add(png(|w| doc.sketch.write_to(w, ImageFormat::Png))?),
                pose: doc.pose.clone(),
                target: doc.target.clone(),
                faces: doc.faces.clone(),
            })
        };
        let document = entry(&self.document)?;
        let undo = self.undo.iter().map(&mut entry).collect::<Result<_, _>>()?;
        let redo = self.redo.iter().map(&mut entry).collect::<Result<_, _>>()?;
        let header = Header {
            settings: self.settings,
            document,
            undo,
            redo,
            blobs: blobs
                .iter()
                .map(|b| Blob {
                    length: b.len() as u64,
                    sha256: hex(&Sha256::digest(b)),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let mut out =
            Vec::with_capacity(16 + json.len() + blobs.iter().map(Vec::len).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for blob in blobs {
            out.extend_from_slice(&blob);
        }
        Ok(out)
    }

    /// Reads a project from its bytes; `Err` says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("it does not start as a Tessera project does")?;
        let (length, rest) = rest
            .split_at_checked(8)
            .ok_or("it ends inside its header")?;
        let length = u64::from_le_bytes(length.try_into().map_err(|_| "bad header length")?);
        if length > MAX_HEADER || length > rest.len() as u64 {
            return Err("its header is cut off or too long".into());
        }
        let (json, mut data) = rest.split_at(length as usize);
        let header: Header =
            serde_json::from_slice(json).map_err(|e| format!("its header is unreadable: {e}"))?;
        let mut blobs = Vec::with_capacity(header.blobs.len());
        for (i, blob) in header.blobs.iter().enumerate() {
            let (bytes, tail) = data
                .split_at_checked(usize::try_from(blob.length).unwrap_or(usize::MAX))
                .ok_or_else(|| format!("it ends inside layer {i}"))?;
            if hex(&Sha256::digest(bytes)) != blob.sha256 {
                return Err(format!("layer {i} does not match its checksum"));
            }
            blobs.push(bytes);
            data = tail;
        }
        let document = |entry: &Entry| -> Result<Document, String> {
            let blob = |i: usize| blobs.get(i).copied().ok_or(format!("no layer {i}"));
            let image: RgbImage = decode_png(blob(entry.image)?)?.to_rgb8();
            let mask: GrayImage = decode_png(blob(entry.mask)?)?.to_luma8();
            let sketch: GrayImage = decode_png(blob(entry.sketch)?)?.to_luma8();
            if mask.dimensions() != image.dimensions() || sketch.dimensions() != image.dimensions()
            {
                return Err("its layers differ in size".into());
            }
            Ok(Document {
                image,
                mask,
                sketch,
                pose: entry.pose.clone(),
                target: entry.target.clone(),
                faces: entry.faces.clone(),
            })
        };
        Ok(Self {
            document: document(&header.document)?,
            undo: header.undo.iter().map(document).collect::<Result<_, _>>()?,
            redo: header.redo.iter().map(document).collect::<Result<_, _>>()?,
            settings: header.settings,
        })
    }

    /// Reads a project file.
    pub fn load(path: &Path) -> Result<Self, ProjectError> {
        let bytes = std::fs::read(path).map_err(|e| ProjectError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::decode(&bytes).map_err(|reason| ProjectError::Damaged {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Writes the project atomically (see the module's header).
    pub fn save(&self, path: &Path) -> Result<(), ProjectError> {
        let failed = |reason: String| ProjectError::Write {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = self.encode().map_err(failed)?;
        write_atomically(path, &bytes).map_err(|e| failed(e.to_string()))
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it
/// over `path`; then flushes the folder, so the rename itself survives a crash.
/// Writers in one process take turns; each process has its own temporary name, and
/// temporaries left by processes that died (killed mid-write) are removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() && tmp.exists() {
        // The target is untouched; the half-written temporary goes.
        if let Err(err) = std::fs::remove_file(&tmp) {
            tracing::warn!("could not remove {}: {err}", tmp.display());
        }
    }
    if result.is_ok() {
        remove_orphans(dir, &name);
    }
    result
}

/// Removes `.NAME.<pid>.tmp` files of processes that no longer run (Linux: no
/// `/proc/<pid>`); elsewhere nothing is removed.
fn remove_orphans(dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.filter_map(Result::ok) {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"));
        if let Some(pid) = pid.filter(|p| p.chars().all(|c| c.is_ascii_digit()))
            && !proc.join(pid).exists()
            && let Err(err) = std::fs::remove_file(entry.path())
        {
            tracing::warn!("could not remove {}: {err}", entry.path().display());
        }
    }
}

fn png(
    write: impl FnOnce(&mut std::io::Cursor<Vec<u8>>) -> image::ImageResult<()>,
) -> Result<Vec<u8>, String> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    write(&mut cursor).map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

fn decode_png(bytes: &[u8]) -> Result<image::DynamicImage, String> {
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), ImageFormat::Png);
    reader.limits(crate::data::convert::decoder_limits());
    reader
        .decode()
        .map_err(|e| format!("a layer is not a picture: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::document::Layer;

    fn project() -> Project {
        let mut doc = Document::new(RgbImage::from_fn(30, 20, |x, y| {
            image::Rgb([x as u8 * 8, y as u8 * 12, 7])
        }));
        let blank = doc.clone();
        doc.paint(Layer::Mask, (2.0, 2.0), (20.0, 10.0), 2.0, false);
        doc.pose = Some(Pose::standing(15.0, 19.0, 15.0));
        doc.target = doc.pose.clone();
        Project {
            document: doc.clone(),
            undo: vec![blank],
            redo: vec![doc],
            settings: Settings {
                method: Method::TamingStar,
                sampling: Sampling {
                    top_k: 7,
                    temperature: 0.5,
                    seed: 99,
                },
                brush: 3.0,
                live: true,
                show_mask: false,
                show_faces: true,
                candidates: 2,
            },
        }
    }

    #[test]
    fn a_project_reopens_exactly() {
        let dir = std::env::temp_dir().join(format!("tessera-project-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("a.tessera");
        let project = project();
        project.save(&path).expect("save");
        assert_eq!(Project::load(&path).expect("load"), project);
        let leftovers = std::fs::read_dir(&dir).expect("dir").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn damaged_projects_are_refused_with_a_reason() {
        let bytes = project().encode().expect("encode");
        let mut flipped = bytes.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0x40;
        let mut bad_header = bytes.clone();
        bad_header[20] = b'#';
        let cases: [(&str, Vec<u8>); 5] = [
            ("empty", Vec::new()),
            ("not ours", b"\x89PNG\r\n\x1a\n....".to_vec()),
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
            ("a flipped bit", flipped),
            ("a bad header", bad_header),
        ];
        for (what, bytes) in cases {
            let err = Project::decode(&bytes).expect_err(what);
            assert!(!err.is_empty(), "{what}");
        }
    }
}
