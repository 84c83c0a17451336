//! Vector quantiser with an L2-normalised codebook (Taming §3.1, with the cosine
//! lookup of ViT-VQGAN that keeps far more codes alive at small scale).
//!
//! Encoder vectors and codes are both projected on the unit sphere, so "nearest code"
//! is nearest in Euclidean distance between unit vectors. Gradients pass to the
//! encoder by the straight-through estimator; the codebook learns from the codebook
//! loss `‖sg(z) − e‖² + β‖z − sg(e)‖²`.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::{Distribution, Int};

/// Configuration of a [`Quantizer`].
#[derive(Config, Debug)]
pub struct QuantizerConfig {
    /// Number of codes `K`.
    pub codebook_size: usize,
    /// Dimension of each code.
    pub code_dim: usize,
    /// Commitment weight β.
    #[config(default = 0.25)]
    pub beta: f64,
}

/// The codebook and its lookup.
#[derive(Module, Debug)]
pub struct Quantizer {
    codebook: Param<Tensor<2>>,
    beta: f64,
}

/// What quantising a feature map gives.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// The encoder features projected on the unit sphere, `[B, D, h, w]` (ẑ of Eq. 4).
    pub continuous: Tensor<4>,
    /// The chosen codes with straight-through gradients, `[B, D, h, w]` (z_q).
    pub codes: Tensor<4>,
    /// The chosen code indices, `[B, h, w]`.
    pub indices: Tensor<3, Int>,
    /// The codebook + commitment loss, a scalar.
    pub loss: Tensor<1>,
}

impl QuantizerConfig {
    /// Builds the codebook with random unit-norm codes.
    pub fn init(&self, device: &Device) -> Quantizer {
        let codebook = Tensor::random(
            [self.codebook_size, self.code_dim],
            Distribution::Normal(0.0, 1.0),
            device,
        );
        Quantizer {
            codebook: Param::from_tensor(codebook),
            beta: self.beta,
        }
    }
}

impl Quantizer {
    /// Number of codes.
    pub fn size(&self) -> usize {
        self.codebook.dims()[0]
    }

    /// The unit-norm codebook, `[K, D]`.
    fn unit_codebook(&self) -> Tensor<2> {
        l2_normalize(self.codebook.val())
    }

    /// Quantises a feature map.
    ///
    /// # Shapes
    /// - z: `[B, D, h, w]`
    pub fn forward(&self, z: Tensor<4>) -> Quantized {
        let [batch, dim, h, w] = z.dims();
        let flat = z.permute([0, 2, 3, 1]).reshape([batch * h * w, dim]); // [N, D]
        let flat = l2_normalize(flat);
        let codebook = self.unit_codebook(); // [K, D]
        // For unit vectors the nearest code is the one of largest dot product.
        let similarity = flat.clone().matmul(codebook.clone().transpose()); // [N, K]
        let indices = similarity.argmax(1).reshape([batch * h * w]); // [N]
        let chosen = codebook.select(0, indices.clone()); // [N, D]
        let loss = (chosen.clone() - flat.clone().detach())
            .powi_scalar(2)
            .mean()
            + (flat.clone() - chosen.clone().detach())
                .powi_scalar(2)
                .mean()
                * self.beta;
        let straight_through = flat.clone() + (chosen - flat.clone()).detach();
        Quantized {
            continuous: to_map(flat, [batch, h, w]),
            codes: to_map(straight_through, [batch, h, w]),
            indices: indices.reshape([batch, h, w]),
            loss,
        }
    }

    /// Looks up the codes of an index grid.
    ///
    /// # Shapes
    /// - indices: `[B, h, w]` → `[B, D, h, w]`
    pub fn lookup(&self, indices: Tensor<3, Int>) -> Tensor<4> {
        let [batch, h, w] = indices.dims();
        let codes = self
            .unit_codebook()
            .select(0, indices.reshape([batch * h * w]));
        to_map(codes, [batch, h, w])
    }

    /// Replaces the codes named in `dead` by the given vectors (rows of `[n, D]`), so
    /// that codes no encoder output chose get a new chance where the data lives.
    pub fn reseed(self, dead: &[usize], replacements: Tensor<2>) -> Self {
        if dead.is_empty() {
            return self;
        }
        let device = replacements.device();
        let [size, dim] = self.codebook.dims();
        let mut order = vec![0i64; size];
        let mut is_dead = vec![false; size];
        for (row, &code) in dead.iter().enumerate() {
            order[code] = (row % replacements.dims()[0]) as i64;
            is_dead[code] = true;
        }
        let rows = Tensor::<1, Int>::from_data(TensorData::new(order, [size]), &device);
        let spread = replacements.select(0, rows); // [K, D]
        let mask = Tensor::<1, Bool>::from_data(TensorData::new(is_dead, [size]), &device)
            .reshape([size, 1])
            .expand([size, dim]);
        let codebook = self.codebook.map(|codes| {
            // A fresh leaf: keep tracking gradients exactly when the old codebook did.
            let tracked = codes.is_require_grad();
            let fresh = codes.mask_where(mask, spread.detach()).detach();
            if tracked { fresh.require_grad() } else { fresh }
        });
        Self { codebook, ..self }
    }
}

/// Projects each row on the unit sphere.
fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt() + 1e-6; // [N, 1]
    x / norm
}

/// `[B·h·w, D]` rows back to a `[B, D, h, w]` map.
fn to_map(rows: Tensor<2>, [batch, h, w]: [usize; 3]) -> Tensor<4> {
    let dim = rows.dims()[1];
    rows.reshape([batch, h, w, dim]).permute([0, 3, 1, 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tolerance;

    #[test]
    fn picks_the_nearest_code() {
        let device = Device::flex();
        device.seed(3);
        let quantizer = QuantizerConfig::new(16, 4).init(&device);
        let z = Tensor::<4>::random([2, 4, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let quantized = quantizer.forward(z.clone());
        // Brute force on the host: the nearest unit code to each unit vector.
        let codes: Vec<f32> = quantizer
            .unit_codebook()
            .into_data()
            .try_into_vec()
            .expect("codes");
        let flat: Vec<f32> = l2_normalize(z.permute([0, 2, 3, 1]).reshape([18, 4]))
            .into_data()
            .try_into_vec()
            .expect("z");
        let chosen: Vec<i64> = quantized
            .indices
            .into_data()
            .convert::<i64>()
            .try_into_vec()
            .expect("idx");
        for (n, &picked) in chosen.iter().enumerate() {
            let dist = |k: usize| -> f32 {
                (0..4)
                    .map(|d| (flat[n * 4 + d] - codes[k * 4 + d]).powi(2))
                    .sum()
            };
            let best = (0..16)
                .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
                .expect("codes");
            assert!(
                dist(picked as usize) <= dist(best) + 1e-6,
                "row {n}: picked {picked}, nearest {best}"
            );
        }
    }

    #[test]
    fn gradient_passes_straight_through() {
        let device = Device::flex().autodiff();
        device.seed(4);
        let quantizer = QuantizerConfig::new(8, 4).init(&device);
        let z = Tensor::<4>::random([1, 4, 2, 2], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let weights = Tensor::<4>::random([1, 4, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        // d/dz of <w, st(z)> must equal d/dz of <w, normalize(z)>: the lookup is invisible.
        let through_codes = (quantizer.forward(z.clone()).codes * weights.clone()).sum();
        let grad_codes = z.grad(&through_codes.backward()).expect("grad");
        let through_identity = (quantizer.forward(z.clone()).continuous * weights).sum();
        let grad_identity = z.grad(&through_identity.backward()).expect("grad");
        grad_codes
            .into_data()
            .assert_approx_eq::<f32>(&grad_identity.into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn reseeding_replaces_only_dead_codes() {
        let device = Device::flex();
        device.seed(5);
        let quantizer = QuantizerConfig::new(6, 3).init(&device);
        let before: Vec<f32> = quantizer
            .codebook
            .val()
            .into_data()
            .try_into_vec()
            .expect("codes");
        let fresh = Tensor::<2>::ones([2, 3], &device);
        let after: Vec<f32> = quantizer
            .reseed(&[1, 4], fresh)
            .codebook
            .val()
            .into_data()
            .try_into_vec()
            .expect("codes");
        for k in 0..6 {
            let row = &after[k * 3..k * 3 + 3];
            if k == 1 || k == 4 {
                assert_eq!(row, &[1.0, 1.0, 1.0]);
            } else {
                assert_eq!(row, &before[k * 3..k * 3 + 3]);
            }
        }
    }

    #[test]
    fn reseeded_codebook_still_learns() {
        let device = Device::flex().autodiff();
        device.seed(6);
        let quantizer = QuantizerConfig::new(6, 3).init(&device);
        let quantizer = quantizer.reseed(&[0, 2], Tensor::<2>::ones([2, 3], &device));
        let z = Tensor::<4>::random([1, 3, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        let grads = quantizer.forward(z).loss.backward();
        assert!(
            quantizer.codebook.val().grad(&grads).is_some(),
            "codebook lost its gradient"
        );
    }
}
