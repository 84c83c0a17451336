//! The GAN objective of HiT (App. A.4): the non-saturating logistic loss, and an R1
//! penalty on real pictures. burn computes first-order gradients only, so R1
//! (`γ/2 · E‖∇ₓD(x)‖²`) is estimated by a directional finite difference: for `v` with
//! independent unit-variance entries, `E_v[(∇ₓD · v)²] = ‖∇ₓD‖²`, and
//! `∇ₓD · v ≈ (D(x + εv) − D(x)) / ε`; both evaluations stay differentiable in D's
//! weights, so the penalty trains D as R1 does.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::softplus;

use super::discriminator::Discriminator;

/// Step of the finite difference, in picture units (pictures span [-1, 1]).
const EPSILON: f64 = 1e-2;

/// The discriminator's loss: `softplus(−D(real)) + softplus(D(fake))`, averaged.
pub fn discriminator_loss(real_logits: Tensor<1>, fake_logits: Tensor<1>) -> Tensor<1> {
    (softplus(real_logits.neg(), 1.0) + softplus(fake_logits, 1.0)).mean()
}

/// The generator's non-saturating loss: `softplus(−D(fake))`, averaged.
pub fn generator_loss(fake_logits: Tensor<1>) -> Tensor<1> {
    softplus(fake_logits.neg(), 1.0).mean()
}

/// `γ/2 · ‖∇ₓD(x)‖²` on real pictures, estimated as above; `real_logits` is `D(real)`.
pub fn r1_penalty(
    discriminator: &Discriminator,
    real: Tensor<4>,
    real_logits: Tensor<1>,
    gamma: f64,
) -> Tensor<1> {
    let v = Tensor::<4>::random(real.dims(), Distribution::Normal(0.0, 1.0), &real.device());
    let moved = discriminator.forward(real + v * EPSILON);
    let slope = (moved - real_logits) / EPSILON;
    slope.powi_scalar(2).mean() * (gamma / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::discriminator::DiscriminatorConfig;

    #[test]
    fn the_losses_fall_as_the_discriminator_gets_it_right() {
        let device = Device::flex();
        let confident = discriminator_loss(
            Tensor::from_floats([5.0, 6.0], &device),
            Tensor::from_floats([-5.0, -4.0], &device),
        );
        let wrong = discriminator_loss(
            Tensor::from_floats([-5.0, -6.0], &device),
            Tensor::from_floats([5.0, 4.0], &device),
        );
        assert!(confident.into_scalar::<f32>() < 0.05);
        assert!(wrong.into_scalar::<f32>() > 4.0);
        let fooled = generator_loss(Tensor::from_floats([5.0], &device)).into_scalar::<f32>();
        let caught = generator_loss(Tensor::from_floats([-5.0], &device)).into_scalar::<f32>();
        assert!(fooled < caught);
    }

    #[test]
    fn the_r1_estimate_matches_the_gradient_norm_of_a_known_slope() {
        // A discriminator of fresh weights is close to linear at this scale: compare
        // the estimate with the squared gradient norm from autodiff, averaged over draws.
        let device = Device::flex().autodiff();
        device.seed(5);
        let d = DiscriminatorConfig::new()
            .with_width(4)
            .with_max_width(8)
            .with_blocks(2)
            .init(&device);
        let x = Tensor::<4>::random([1, 3, 8, 8], Distribution::Uniform(-1.0, 1.0), &device)
            .require_grad();
        let logits = d.forward(x.clone());
        let grads = logits.clone().sum().backward();
        let exact: f64 = x
            .grad(&grads)
            .map(|g| g.powi_scalar(2).sum().into_scalar::<f32>() as f64)
            .unwrap_or(0.0);
        let draws = 400;
        let mut estimate = 0.0;
        for _ in 0..draws {
            let plain = x.clone().detach();
            let logits = d.forward(plain.clone());
            estimate += r1_penalty(&d, plain, logits, 2.0).into_scalar::<f32>() as f64;
        }
        estimate /= draws as f64;
        assert!(exact > 0.0);
        assert!(
            (estimate - exact).abs() < 0.25 * exact,
            "{estimate} vs {exact}"
        );
    }
}
