//! A mutation fuzzer for the two loaders that read files from anywhere: pictures
//! (`decode_image`) and project files (`Project::decode`). Seeds are the committed
//! corpus (`tests/corpus/images`, including earlier findings) and a small project;
//! each round flips, inserts, deletes, truncates or splices bytes, and a loader must
//! answer `Ok` or `Err`: never panic. A panicking input is written to
//! `target/fuzz-findings/` and fails the test.
//!
//! The test run fuzzes for a few seconds; `scripts/fuzz.sh` runs it for minutes
//! (`TESSERA_FUZZ_SECONDS`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera::data::convert::decode_image;
use tessera::editor::document::Document;
use tessera::editor::project::{Project, Settings};
use tessera::engine::Method;
use tessera::engine::Sampling;

fn budget() -> Duration {
    let seconds = std::env::var("TESSERA_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

fn picture_seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/images");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("corpus")
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter(|b| b.len() < 64 << 10)
        .collect();
    seeds.sort();
    seeds
}

fn project_seed() -> Vec<u8> {
    let mut doc = Document::new(image::RgbImage::from_fn(12, 9, |x, y| {
        image::Rgb([x as u8 * 20, y as u8 * 25, 3])
    }));
    doc.mask.put_pixel(3, 3, image::Luma([255]));
    Project {
        document: doc.clone(),
        undo: vec![doc],
        redo: Vec::new(),
        settings: Settings {
            method: Method::Ilat,
            sampling: Sampling::default(),
            brush: 2.0,
            live: false,
            show_mask: true,
            candidates: 1,
            show_faces: true,
        },
    }
    .encode()
    .expect("encode")
}

/// One random change to `bytes`.
fn mutate(bytes: &mut Vec<u8>, other: &[u8], rng: &mut StdRng) {
    let at = |rng: &mut StdRng, len: usize| rng.random_range(0..len.max(1));
    match rng.random_range(0..7) {
        0 if !bytes.is_empty() => {
            let i = at(rng, bytes.len());
            bytes[i] ^= 1 << rng.random_range(0..8);
        }
        1 if !bytes.is_empty() => {
            let i = at(rng, bytes.len());
            bytes[i] = [0, 0xff, 0x7f, 0x80, 1][rng.random_range(0..5)];
        }
        2 => {
            let i = at(rng, bytes.len() + 1).min(bytes.len());
            let n = rng.random_range(1..16);
            let fill: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            bytes.splice(i..i, fill);
        }
        3 if !bytes.is_empty() => {
            let i = at(rng, bytes.len());
            let n = rng.random_range(1..32).min(bytes.len() - i);
            bytes.drain(i..i + n);
        }
        4 => bytes.truncate(at(rng, bytes.len())),
        5 if !other.is_empty() => {
            let i = at(rng, bytes.len() + 1).min(bytes.len());
            let j = at(rng, other.len());
            let n = rng.random_range(1..64).min(other.len() - j);
            bytes.splice(i.., other[j..j + n].iter().copied());
        }
        // A 32-bit field (sizes, lengths) set to an extreme value.
        _ if bytes.len() >= 4 => {
            let i = at(rng, bytes.len() - 3);
            let value: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 60_000][rng.random_range(0..5)];
            bytes[i..i + 4].copy_from_slice(&value.to_be_bytes());
        }
        _ => bytes.push(rng.random()),
    }
}

/// Fuzzes `load` from `seeds` for `budget`; returns the rounds run.
fn fuzz(name: &str, seeds: &[Vec<u8>], load: impl Fn(&[u8]) -> bool, seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < budget() {
        let mut input = seeds[rng.random_range(0..seeds.len())].clone();
        let other = &seeds[rng.random_range(0..seeds.len())];
        for _ in 0..rng.random_range(1..5) {
            mutate(&mut input, other, &mut rng);
        }
        if catch_unwind(AssertUnwindSafe(|| load(&input))).is_err() {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
            std::fs::create_dir_all(&dir).expect("findings dir");
            let path = dir.join(format!("{name}-{seed}-{rounds}.bin"));
            std::fs::write(&path, &input).expect("finding");
            panic!("{name} panicked on {}", path.display());
        }
        rounds += 1;
    }
    rounds
}

#[test]
fn the_picture_loader_never_panics() {
    let seeds = picture_seeds();
    let rounds = fuzz("picture", &seeds, |b| decode_image(b).is_ok(), 1);
    eprintln!("{rounds} mutated pictures");
    assert!(rounds > 10);
}

#[test]
fn the_project_loader_never_panics() {
    let seeds = vec![project_seed()];
    let rounds = fuzz("project", &seeds, |b| Project::decode(b).is_ok(), 2);
    eprintln!("{rounds} mutated projects");
    assert!(rounds > 10);
}
