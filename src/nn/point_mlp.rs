//! The PointMLP of iLAT §3.3 ("non-iconic pose guiding"): keypoints become condition
//! tokens through three fully connected layers with ReLU. Each joint is one token; the
//! joint's identity enters as a one-hot code beside its (x, y, visible) triple, so the
//! transformer knows a wrist from an ankle without a second embedding table.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Configuration of a [`PointMlp`].
#[derive(Config, Debug)]
pub struct PointMlpConfig {
    /// Number of points (13 joints).
    pub points: usize,
    /// Width of the tokens it makes.
    pub d_model: usize,
}

/// Three fully connected layers from one point to one token.
#[derive(Module, Debug)]
pub struct PointMlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    points: usize,
}

impl PointMlpConfig {
    /// Builds the network with fresh weights.
    pub fn init(&self, device: &Device) -> PointMlp {
        PointMlp {
            fc1: LinearConfig::new(3 + self.points, self.d_model).init(device),
            fc2: LinearConfig::new(self.d_model, self.d_model).init(device),
            fc3: LinearConfig::new(self.d_model, self.d_model).init(device),
            points: self.points,
        }
    }
}

impl PointMlp {
    /// # Shapes
    /// - points: `[B, P, 3]` (x, y in [0, 1] of the picture, visible 0 or 1; an
    ///   invisible point's x and y are 0) → `[B, P, D]`
    pub fn forward(&self, points: Tensor<3>) -> Tensor<3> {
        let [batch, count, _] = points.dims();
        let identity = Tensor::<2>::eye(self.points, &points.device())
            .narrow(0, 0, count)
            .unsqueeze_dim::<3>(0)
            .expand([batch, count, self.points]); // [B, P, P]
        let x = Tensor::cat(vec![points, identity], 2); // [B, P, 3 + P]
        let x = relu(self.fc1.forward(x)); // [B, P, D]
        let x = relu(self.fc2.forward(x)); // [B, P, D]
        self.fc3.forward(x) // [B, P, D]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn each_token_depends_on_its_own_point_only() {
        let device = Device::flex();
        device.seed(5);
        let mlp = PointMlpConfig::new(13, 16).init(&device);
        let points = Tensor::<3>::random([2, 13, 3], Distribution::Uniform(0.0, 1.0), &device);
        let base = mlp.forward(points.clone());
        assert_eq!(base.dims(), [2, 13, 16]);
        let moved = points.clone().slice_assign(
            [0..1, 4..5, 0..1],
            Tensor::<3>::full([1, 1, 1], 0.9, &device),
        );
        let after = mlp.forward(moved);
        let diff = (base - after).abs().sum_dim(2).reshape([2, 13]);
        let diff: Vec<f32> = diff
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .expect("differences on the host");
        for (i, d) in diff.iter().enumerate() {
            if i == 4 {
                assert!(*d > 1e-6, "the moved joint's token changes");
            } else {
                assert!(*d < 1e-6, "token {i} changed by {d}");
            }
        }
    }

    #[test]
    fn same_point_at_two_joints_gives_two_tokens() {
        let device = Device::flex();
        device.seed(6);
        let mlp = PointMlpConfig::new(13, 16).init(&device);
        let out = mlp.forward(Tensor::<3>::full([1, 13, 3], 0.5, &device));
        let diff = (out.clone().narrow(1, 0, 1) - out.narrow(1, 1, 1))
            .abs()
            .sum()
            .into_scalar::<f32>();
        assert!(diff > 1e-4);
    }
}
