//! Differentiable augmentation for a small dataset (DiffAugment, Zhao et al. 2020):
//! the same random flip, colour change, translation and cutout are applied to real
//! and generated pictures before the discriminator sees them, so it cannot memorise
//! 900 faces, and the generator's gradient passes through the augmentation.

use burn::prelude::*;
use rand::Rng;

/// Augments `[B, 3, H, W]` pictures in [-1, 1]: each picture independently flipped,
/// its brightness, saturation and contrast jittered, shifted by up to 1/8 of its side
/// (the border filled with zeros) and a square of half its side cut out.
pub fn diff_augment(x: Tensor<4>, rng: &mut impl Rng) -> Tensor<4> {
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
}
