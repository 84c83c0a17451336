//! Differentiable augmentation for a small dataset (DiffAugment, Zhao et al. 2020):
//! the same random flip, colour change, translation and cutout are applied to real
//! and generated pictures before the discriminator sees them, so it cannot memorise
//! 900 faces, and the generator's gradient passes through the augmentation. How many
//! pictures are augmented adapts to how much the discriminator overfits, as in
//! StyleGAN2-ADA (Karras et al. 2020): augmenting every picture from the first step
//! left a fresh discriminator unable to tell even blocky generated faces from real
//! ones, its loss soon fell to chance and the generators drifted.

use std::path::Path;

use burn::prelude::*;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The overfitting measure `E[sign D(augmented real)]` the probability steers to: 0
/// when the discriminator cannot tell, 1 when it is sure of every training picture.
const TARGET: f64 = 0.6;
/// Real pictures seen between adjustments.
const ADJUST_EVERY: usize = 64;
/// Real pictures over which the probability can go from 0 to 1. StyleGAN2-ADA takes
/// 500k; a run here sees ~50k, so the probability must be able to move in a tenth.
const PICTURES_TO_FULL: f64 = 20_000.0;

/// The probability that a picture is augmented, and the evidence for the next change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AdaptiveAugment {
    /// Probability of augmenting each picture, in [0, 1].
    pub p: f64,
    #[serde(skip)]
    signs: f64,
    #[serde(skip)]
    seen: usize,
}

impl AdaptiveAugment {
    /// Takes the discriminator's logits on augmented real pictures into account, and
    /// every [`ADJUST_EVERY`] pictures raises the probability if the discriminator is
    /// surer than [`TARGET`] of the real pictures, lowers it otherwise.
    pub fn observe(&mut self, real_logits: &[f32]) {
        self.signs += real_logits
            .iter()
            .map(|&l| f64::from(l > 0.0) - f64::from(l < 0.0))
            .sum::<f64>();
        self.seen += real_logits.len();
        if self.seen >= ADJUST_EVERY {
            let overfit = self.signs / self.seen as f64;
            let change = self.seen as f64 / PICTURES_TO_FULL;
            let direction = if overfit > TARGET { 1.0 } else { -1.0 };
            self.p = (self.p + direction * change).clamp(0.0, 1.0);
            (self.signs, self.seen) = (0.0, 0);
        }
    }

    /// Reads a probability written by [`AdaptiveAugment::save`]; none augments nothing.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(std::io::Error::other),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(err),
        }
    }

    /// Writes the probability (the pending evidence is a few steps' worth, and dropped).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            serde_json::to_string(self).map_err(std::io::Error::other)?,
        )
    }

    /// Augments each of the `[B, 3, H, W]` pictures with probability `p`.
    pub fn apply(&self, x: Tensor<4>, rng: &mut impl Rng) -> Tensor<4> {
        if self.p <= 0.0 {
            return x;
        }
        let b = x.dims()[0];
        let picked: Vec<f32> = (0..b).map(|_| f32::from(rng.random_bool(self.p))).collect();
        let picked = Tensor::<1>::from_floats(picked.as_slice(), &x.device()).reshape([b, 1, 1, 1]);
        diff_augment(x.clone(), rng) * picked.clone() + x * (picked.neg() + 1.0)
    }
}

/// Augments `[B, 3, H, W]` pictures in [-1, 1]: each picture independently flipped,
/// its brightness, saturation and contrast jittered, shifted by up to 1/8 of its side
/// (the border filled with zeros) and a square of half its side cut out.
fn diff_augment(x: Tensor<4>, rng: &mut impl Rng) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let per_picture = |values: Vec<f32>| {
        Tensor::<1>::from_floats(values.as_slice(), &device).reshape([b, 1, 1, 1])
    };
    // Flip.
    let flips: Vec<bool> = (0..b).map(|_| rng.random_bool(0.5)).collect();
    let flip = per_picture(flips.iter().map(|&f| if f { 1.0 } else { 0.0 }).collect());
    let x = x.clone().flip([3]) * flip.clone() + x * (flip.neg() + 1.0);
    // Colour: brightness, saturation, contrast.
    let brightness = per_picture((0..b).map(|_| rng.random_range(-0.5..0.5)).collect());
    let x = x + brightness;
    let grey = x.clone().mean_dim(1); // [B, 1, H, W]
    let saturation = per_picture((0..b).map(|_| rng.random_range(0.0..2.0)).collect());
    let x = (x - grey.clone()) * saturation + grey;
    let mean = x.clone().mean_dim(1).mean_dim(2).mean_dim(3); // [B, 1, 1, 1]
    let contrast = per_picture((0..b).map(|_| rng.random_range(0.5..1.5)).collect());
    let x = (x - mean.clone()) * contrast + mean;
    // Translation and cutout, as per-picture masks over a padded copy.
    let pad = (h / 8).max(1);
    let padded = x.pad((pad, pad, pad, pad), 0.0); // [B, C, H + 2p, W + 2p]
    let mut shifted = Vec::with_capacity(b);
    let mut keep = vec![1.0f32; b * h * w];
    for i in 0..b {
        let (dy, dx) = (rng.random_range(0..=2 * pad), rng.random_range(0..=2 * pad));
        shifted.push(
            padded
                .clone()
                .slice([i..i + 1, 0..c, dy..dy + h, dx..dx + w]),
        );
        let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
        let half = h / 4;
        for y in cy.saturating_sub(half)..(cy + half).min(h) {
            for x in cx.saturating_sub(half)..(cx + half).min(w) {
                keep[(i * h + y) * w + x] = 0.0;
            }
        }
    }
    let keep = Tensor::<1>::from_floats(keep.as_slice(), &device).reshape([b, 1, h, w]);
    Tensor::cat(shifted, 0) * keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn augmentation_keeps_the_shape_changes_the_pictures_and_passes_gradients() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device)
            .require_grad();
        let mut rng = StdRng::seed_from_u64(2);
        let y = diff_augment(x.clone(), &mut rng);
        assert_eq!(y.dims(), [4, 3, 16, 16]);
        let change = (y.clone() - x.clone()).abs().mean().into_scalar::<f32>();
        assert!(change > 0.05, "{change}");
        let grads = y.sum().backward();
        let grad = x.grad(&grads).expect("a gradient reaches the pictures");
        assert!(grad.abs().sum().into_scalar::<f32>() > 0.0);
    }

    #[test]
    fn the_probability_rises_while_the_discriminator_is_sure_and_falls_when_not() {
        let mut augment = AdaptiveAugment::default();
        for _ in 0..40 {
            augment.observe(&[3.0; 16]);
        }
        let raised = augment.p;
        assert!((raised - 10.0 * ADJUST_EVERY as f64 / PICTURES_TO_FULL).abs() < 1e-9);
        // Half the real pictures judged fake: below the target, so it falls again.
        for _ in 0..40 {
            augment.observe(&[1.0, -1.0, 2.0, -2.0]);
        }
        assert!(augment.p < raised);
        for _ in 0..1000 {
            augment.observe(&[-1.0; 16]);
        }
        assert_eq!(augment.p, 0.0, "never below zero");
    }

    #[test]
    fn at_probability_zero_the_pictures_pass_untouched_and_at_one_all_change() {
        let device = Device::flex();
        let x = Tensor::<4>::random([6, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
        let mut rng = StdRng::seed_from_u64(3);
        let none = AdaptiveAugment::default().apply(x.clone(), &mut rng);
        assert_eq!(none.into_data(), x.clone().into_data());
        let all = AdaptiveAugment {
            p: 1.0,
            ..Default::default()
        }
        .apply(x.clone(), &mut rng);
        let changed = (all - x)
            .abs()
            .sum_dim(3)
            .sum_dim(2)
            .sum_dim(1)
            .reshape([6]);
        let changed: Vec<f32> = changed.into_data().try_into_vec().expect("floats");
        assert!(changed.iter().all(|&c| c > 0.0), "{changed:?}");
    }

    #[test]
    fn the_probability_survives_a_save_and_load() {
        let path =
            std::env::temp_dir().join(format!("tessera-augment-{}.json", std::process::id()));
        assert_eq!(AdaptiveAugment::load(&path).expect("absent file").p, 0.0);
        AdaptiveAugment {
            p: 0.25,
            ..Default::default()
        }
        .save(&path)
        .expect("write");
        assert_eq!(AdaptiveAugment::load(&path).expect("read").p, 0.25);
        std::fs::remove_file(&path).expect("cleanup");
    }
}
