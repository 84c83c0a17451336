//! `tessera faces`: the faces the locator finds in a picture or in every picture of a
//! folder, with their boxes, points and scores. Over a folder of aligned crops it also
//! reports where the points lie on average, in units of the picture's side: that is
//! how the alignment template ([`crate::faces::TEMPLATE`]) was measured.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::options::FacesOpts;
use crate::backend::BackendChoice;
use crate::data::convert::open_image;
use crate::data::faces::list_images;
use crate::faces::{Face, POINT_NAMES, POINTS};
use crate::report;

/// One face of one picture, rounded to a tenth of a pixel.
#[derive(Serialize)]
struct Row {
    picture: String,
    face: usize,
    score: f64,
    #[serde(rename = "box")]
    bbox: [f64; 4],
    #[serde(flatten)]
    points: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Report {
    rows: Vec<Row>,
    pictures: usize,
    pictures_without_a_face: usize,
    /// Per point, the mean over the pictures of the best face's point divided by the
    /// picture's width and height (only with several pictures).
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_points: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Runs the locator on the picture or folder `opts.image`.
pub fn faces(opts: FacesOpts, models: &Path, backend: BackendChoice) -> anyhow::Result<()> {
    let files: Vec<PathBuf> = if opts.image.is_dir() {
        list_images(&opts.image)?
    } else {
        vec![opts.image.clone()]
    };
    let mut engine = super::engine(models, backend)?;
    let (mut rows, mut sums, mut with_face) = (Vec::new(), [[0.0f64; 2]; POINTS], 0usize);
    for file in &files {
        let image = open_image(file)?.to_rgb8();
        let found = engine
            .faces(&image)
            .with_context(|| format!("locating faces in {}", file.display()))?;
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        if let Some(best) = found.first() {
            with_face += 1;
            let (w, h) = (image.width() as f64, image.height() as f64);
            for (sum, p) in sums.iter_mut().zip(best.points) {
                sum[0] += p[0] as f64 / w;
                sum[1] += p[1] as f64 / h;
            }
        }
        rows.extend(
            found
                .iter()
                .enumerate()
                .map(|(i, face)| row(&name, i, face)),
        );
    }
    let mean_points = (files.len() > 1 && with_face > 0).then(|| {
        named(
            sums.map(|[x, y]| [x / with_face as f64, y / with_face as f64]),
            4,
        )
    });
    let title = format!("faces in {}", opts.image.display());
    report::emit(
        &title,
        &Report {
            rows,
            pictures: files.len(),
            pictures_without_a_face: files.len() - with_face,
            mean_points,
        },
        opts.json,
    )
}

fn row(picture: &str, face: usize, found: &Face) -> Row {
    Row {
        picture: picture.to_string(),
        face,
        score: round(found.score as f64, 3),
        bbox: found.bbox.map(|v| round(v as f64, 1)),
        points: named(found.points.map(|[x, y]| [x as f64, y as f64]), 1),
    }
}

/// The points by name, rounded to `digits` decimals.
fn named(points: [[f64; 2]; POINTS], digits: i32) -> serde_json::Map<String, serde_json::Value> {
    POINT_NAMES
        .iter()
        .zip(points)
        .map(|(name, [x, y])| {
            (
                name.to_string(),
                serde_json::json!([round(x, digits), round(y, digits)]),
            )
        })
        .collect()
}

fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}
