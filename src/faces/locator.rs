//! The face locator: MediaPipe's full-range BlazeFace detector (192x192 input, one
//! anchor per 4x4 cell, a box and six points per face), run through [`Graph`] on the
//! weights converted at data-fetch time. The photo is letterboxed into the input with
//! an antialiased downscale (so faces in a large group photo survive it), the anchors'
//! regressions decoded and overlapping detections merged by MediaPipe's weighted
//! non-maximum suppression.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::TensorReadError;
use image::RgbImage;
use image::imageops::{self, FilterType};
use serde::Deserialize;

use super::graph::Graph;
use super::{Face, POINTS};
use crate::nn::weights::{FeatureNetError, Weights};

/// The graph's outputs: per anchor 16 regressors, and a score logit.
const OUTPUTS: [&str; 2] = ["regressors", "classificators"];

/// Times a face is found again on its aligned crop ([`FaceLocator::refine`]): the
/// crop of a face turned by 22° and enlarged 3.5 times matches the crop of the
/// original at 18 dB PSNR with none, 25 dB with one, 32 dB with two (what is left is
/// the interpolation of the enlarged copy) and no better with three
/// (`tests/faces.rs`).
const REFINEMENTS: usize = 2;

/// How the raw outputs become boxes, as the converter records it (`decode` in the
/// graph file).
#[derive(Debug, Deserialize)]
struct DecodeSpec {
    num_keypoints: usize,
    x_scale: f32,
    y_scale: f32,
    w_scale: f32,
    h_scale: f32,
    min_score_thresh: f32,
    score_clipping_thresh: f32,
    nms: NmsSpec,
}

#[derive(Debug, Deserialize)]
struct NmsSpec {
    min_suppression_threshold: f32,
}

/// The decode parameters of the graph file (its other parts are read by [`Graph`]).
#[derive(Debug, Deserialize)]
struct DecodeFile {
    decode: DecodeSpec,
}

/// The detector on one device.
pub struct FaceLocator {
    graph: Graph,
    decode: DecodeSpec,
    /// Per anchor: centre x, centre y, width, height (input units, 0..1).
    anchors: Vec<[f32; 4]>,
    /// Side of the square input.
    size: u32,
    device: Device,
}

/// Where the photo lies in the letterboxed input: `input = photo · scale + offset`.
#[derive(Debug, Clone, Copy)]
pub struct Letterbox {
    pub scale: f32,
    pub offset: [f32; 2],
}

impl FaceLocator {
    /// Loads the graph `json` with its weights `safetensors` (which also hold the
    /// anchors).
    pub fn load(json: &Path, safetensors: &Path, device: &Device) -> Result<Self, FeatureNetError> {
        let graph = Graph::load(json, safetensors, device)?;
        let damaged = |reason: String| FeatureNetError::Damaged {
            path: json.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(json)
            .map_err(|_| FeatureNetError::Missing(json.to_path_buf()))?;
        let DecodeFile { decode } =
            serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if let Some(port) = OUTPUTS.iter().find(|name| !graph.has_output(name)) {
            return Err(damaged(format!("the graph has no output {port:?}")));
        }
        if decode.num_keypoints != POINTS {
            return Err(damaged(format!(
                "{} points per face, expected {POINTS}",
                decode.num_keypoints
            )));
        }
        let (shape, values) = Weights::read(safetensors)?.get("anchors")?.clone();
        if shape.len() != 2 || shape[1] != 4 {
            return Err(damaged(format!("anchors have shape {shape:?}, not [N, 4]")));
        }
        let anchors = values
            .chunks_exact(4)
            .map(|a| [a[0], a[1], a[2], a[3]])
            .collect();
        let size = graph.input_shape().get(2).copied().unwrap_or(0) as u32;
        Ok(Self {
            graph,
            decode,
            anchors,
            size,
            device: device.clone(),
        })
    }

    /// Side of the square input picture.
    pub fn input_size(&self) -> u32 {
        self.size
    }

    /// Every face in `photo`, best first, in the photo's pixel coordinates, each found
    /// again on its own aligned crop ([`FaceLocator::refine`]).
    pub fn locate(&self, photo: &RgbImage) -> Result<Vec<Face>, TensorReadError> {
        let (input, letterbox) = self.letterbox(photo);
        let mut faces = Vec::new();
        for found in self.detect(&input)? {
            let mut face = found.map(|p| letterbox.to_photo(p));
            for _ in 0..REFINEMENTS {
                face = self.refine(photo, face)?;
            }
            faces.push(face);
        }
        Ok(faces)
    }

    /// `face` found again on its aligned crop, where it is upright and as large as the
    /// faces the template was measured on. The detector's points move with a face's
    /// tilt and size by a few percent of its width, so the first alignment of a turned
    /// face is off by that much; on two upright crops of the same face they agree far
    /// better. Kept as it is when the crop shows no face.
    pub fn refine(&self, photo: &RgbImage, face: Face) -> Result<Face, TensorReadError> {
        let Some(aligned) = face.alignment() else {
            return Ok(face);
        };
        let crop = aligned.crop(photo, self.size);
        let size = self.size as f32;
        Ok(match self.detect(&crop)?.first() {
            Some(found) => Face {
                score: face.score,
                ..found.map(|[x, y]| aligned.map.apply([x / size, y / size]))
            },
            None => face,
        })
    }

    /// The photo shrunk (antialiased) to fit the input square, centred on black.
    pub fn letterbox(&self, photo: &RgbImage) -> (RgbImage, Letterbox) {
        let (w, h) = photo.dimensions();
        let scale = self.size as f32 / w.max(h) as f32;
        let (rw, rh) = (
            ((w as f32 * scale).round() as u32).clamp(1, self.size),
            ((h as f32 * scale).round() as u32).clamp(1, self.size),
        );
        let resized = imageops::resize(photo, rw, rh, FilterType::Triangle);
        let (ox, oy) = ((self.size - rw) / 2, (self.size - rh) / 2);
        let mut input = RgbImage::new(self.size, self.size);
        imageops::replace(&mut input, &resized, ox as i64, oy as i64);
        let letterbox = Letterbox {
            scale: rw as f32 / w as f32,
            offset: [ox as f32, oy as f32],
        };
        (input, letterbox)
    }

    /// The faces in an input-sized picture, in its pixel coordinates.
    pub fn detect(&self, input: &RgbImage) -> Result<Vec<Face>, TensorReadError> {
        let (regressors, logits) = self.raw(input)?;
        let size = self.size as f32;
        let faces = self.decode(&regressors, &logits);
        Ok(faces
            .into_iter()
            .map(|f| f.map(|[x, y]| [x * size, y * size]))
            .collect())
    }

    /// The network's outputs for an input-sized picture: 16 regressors and one score
    /// logit per anchor.
    pub fn raw(&self, input: &RgbImage) -> Result<(Vec<f32>, Vec<f32>), TensorReadError> {
        let s = self.size as usize;
        let values: Vec<f32> = input
            .pixels()
            .flat_map(|p| p.0)
            .map(|v| v as f32 * (2.0 / 255.0) - 1.0)
            .collect();
        let x = Tensor::<3>::from_data(TensorData::new(values, [s, s, 3]), &self.device)
            .permute([2, 0, 1])
            .reshape([1, 3, s, s]);
        let mut out = self.graph.run(x);
        // `load` checked that the graph makes both.
        let mut read = |name: &str| match out.remove(name) {
            Some(t) => t.try_into_vec_as::<f32>(),
            None => Ok(Vec::new()),
        };
        let [regressors, logits] = OUTPUTS;
        Ok((read(regressors)?, read(logits)?))
    }

    /// Faces from the raw outputs, in input units (0..1): every anchor above the score
    /// threshold, decoded, then merged.
    fn decode(&self, regressors: &[f32], logits: &[f32]) -> Vec<Face> {
        let d = &self.decode;
        let clip = d.score_clipping_thresh;
        let mut found: Vec<Face> = self
            .anchors
            .iter()
            .zip(regressors.chunks_exact(4 + 2 * POINTS))
            .zip(logits)
            .filter_map(|((&[ax, ay, aw, ah], r), &logit)| {
                let score = 1.0 / (1.0 + (-logit.clamp(-clip, clip)).exp());
                if score < d.min_score_thresh {
                    return None;
                }
                let (cx, cy) = (r[0] / d.x_scale * aw + ax, r[1] / d.y_scale * ah + ay);
                let (w, h) = (r[2] / d.w_scale * aw, r[3] / d.h_scale * ah);
                if w < 0.0 || h < 0.0 {
                    return None;
                }
                let points = std::array::from_fn(|k| {
                    [
                        r[4 + 2 * k] / d.x_scale * aw + ax,
                        r[5 + 2 * k] / d.y_scale * ah + ay,
                    ]
                });
                Some(Face {
                    score,
                    bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                    points,
                })
            })
            .collect();
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        weighted_nms(found, d.nms.min_suppression_threshold)
    }
}

impl Letterbox {
    /// An input pixel coordinate back in the photo.
    pub fn to_photo(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [
            (x - self.offset[0]) / self.scale,
            (y - self.offset[1]) / self.scale,
        ]
    }
}

/// MediaPipe's weighted non-maximum suppression on detections sorted best first: the
/// best remaining one and every other overlapping it by more than `threshold` IoU
/// become one face, with the best one's score and the score-weighted mean box and
/// points.
fn weighted_nms(mut remaining: Vec<Face>, threshold: f32) -> Vec<Face> {
    let mut merged = Vec::new();
    while let Some(seed) = remaining.first().copied() {
        let (cluster, rest): (Vec<Face>, Vec<Face>) = remaining
            .into_iter()
            .partition(|f| iou(&seed.bbox, &f.bbox) > threshold);
        remaining = rest;
        let total: f32 = cluster.iter().map(|f| f.score).sum();
        let mean = |get: &dyn Fn(&Face) -> f32| {
            cluster.iter().map(|f| get(f) * f.score).sum::<f32>() / total
        };
        merged.push(Face {
            score: seed.score,
            bbox: std::array::from_fn(|k| mean(&|f| f.bbox[k])),
            points: std::array::from_fn(|k| [mean(&|f| f.points[k][0]), mean(&|f| f.points[k][1])]),
        });
    }
    merged
}

/// Intersection over union of two boxes `[x0, y0, x1, y1]` (0 when apart).
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if inter <= 0.0 || union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(score: f32, x: f32) -> Face {
        Face {
            score,
            bbox: [x, 0.0, x + 1.0, 1.0],
            points: [[x, 0.5]; POINTS],
        }
    }

    #[test]
    fn overlapping_detections_merge_by_score() {
        let merged = weighted_nms(vec![face(0.9, 0.0), face(0.3, 0.2), face(0.8, 5.0)], 0.3);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].score, 0.9);
        let x = (0.9 * 0.0 + 0.3 * 0.2) / 1.2;
        assert!((merged[0].bbox[0] - x).abs() < 1e-6);
        assert!((merged[0].points[3][0] - x).abs() < 1e-6);
        assert_eq!(merged[1].bbox[0], 5.0);
    }

    #[test]
    fn iou_of_apart_and_equal_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[0.0, 0.0, 1.0, 1.0]), 1.0);
    }
}
