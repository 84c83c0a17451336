//! The engine API that the editor and the command line share.

mod common;

use image::{GrayImage, Luma, RgbImage};
use tessera::backend::BackendChoice;
use tessera::data::faces::load_folder;
use tessera::engine::{Engine, EngineError};

fn engine(tag: &str) -> Engine {
    Engine::new(&common::tiny_models(tag), BackendChoice::Cpu).expect("engine")
}

#[test]
fn reconstruct_keeps_size_and_gives_a_token_grid_per_image() {
    let mut engine = engine("engine-recon");
    let faces = load_folder(&common::sample_faces(), 64).expect("samples");
    let (images, grids) = engine.reconstruct(&faces[..3]).expect("reconstruct");
    assert_eq!(images.len(), 3);
    assert!(images.iter().all(|i| i.dimensions() == (64, 64)));
    assert!(
        grids
            .iter()
            .all(|g| g.side == 16 && g.indices.len() == 256 && g.indices.iter().all(|&i| i < 64))
    );
}

#[test]
fn tokens_outside_the_mask_ignore_what_is_under_it() {
    let mut engine = engine("engine-leak");
    let faces = load_folder(&common::sample_faces(), 64).expect("samples");
    // A box over the lower half of the face, on token boundaries plus a ragged edge.
    let mask = GrayImage::from_fn(64, 64, |x, y| {
        Luma([if y >= 30 && (10..50).contains(&x) {
            255
        } else {
            0
        }])
    });
    let scribbled: Vec<RgbImage> = faces
        .iter()
        .map(|face| {
            RgbImage::from_fn(64, 64, |x, y| {
                if mask.get_pixel(x, y).0[0] > 0 {
                    image::Rgb([(x * 37 % 256) as u8, 255, (y * 91 % 256) as u8])
                } else {
                    *face.get_pixel(x, y)
                }
            })
        })
        .collect();
    let masks = vec![mask; faces.len()];
    let before = engine.tokenize(&faces, &masks).expect("tokenize");
    let after = engine.tokenize(&scribbled, &masks).expect("tokenize");
    for (a, b) in before.iter().zip(&after) {
        for ty in 0..16 {
            for tx in 0..16 {
                // A token is masked when any pixel of its 4x4 patch is.
                let masked = (ty * 4..ty * 4 + 4)
                    .any(|y| (tx * 4..tx * 4 + 4).any(|x| y >= 30 && (10..50).contains(&x)));
                if !masked {
                    assert_eq!(
                        a.indices[ty * 16 + tx],
                        b.indices[ty * 16 + tx],
                        "token ({tx}, {ty})"
                    );
                }
            }
        }
    }
}

#[test]
fn wrong_sizes_and_counts_are_input_errors() {
    let mut engine = engine("engine-sizes");
    let small = RgbImage::new(32, 32);
    assert!(matches!(
        engine.reconstruct(&[small]),
        Err(EngineError::Input(_))
    ));
    let face = RgbImage::new(64, 64);
    let err = engine
        .tokenize(&[face.clone(), face], &[GrayImage::new(64, 64)])
        .expect_err("count mismatch");
    assert!(matches!(err, EngineError::Input(_)), "{err}");
}
