//! Layer norm over the last axis, `γ·(x − μ)/√(σ² + ε) + β`.
//!
//! Under autodiff, burn's layer norm is nine tensor operations (mean, subtract, square,
//! mean, add, square root, divide, scale, shift), each a graph node; here it is one pass
//! per row forward and one backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::LayerNorm;
use burn::prelude::*;
use rayon::prelude::*;

use super::{lane_dot, lane_fold, owned_contiguous, primitives, record, rows_per_task, wide};

/// burn's `LayerNormConfig` default ε, which every layer norm in Tessera uses. burn
/// keeps a module's ε private, so a norm built with another ε would get this one on
/// the CPU: build them with the default.
const EPSILON: f32 = 1e-5;

/// `norm` applied to `x`, normalising over the last axis.
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let Some(beta) = &norm.beta else {
        return norm.forward(x);
    };
    let (gamma, beta) = (norm.gamma.val(), beta.val());
    if let (Some([x]), Some(params)) = (
        primitives::<Flex, D, 1>([&x]),
        primitives::<Flex, 1, 2>([&gamma, &beta]),
    ) {
        let [gamma, beta] = params;
        return Tensor::from_primitive::<Flex>(forward(x, &gamma, &beta).0);
    }
    if let (Some([x]), Some([gamma, beta])) = (
        primitives::<Autodiff<Flex>, D, 1>([&x]),
        primitives::<Autodiff<Flex>, 1, 2>([&gamma, &beta]),
    ) {
        let output = record(FusedLayerNorm, [x, gamma, beta], |[x, gamma, beta]| {
            let (output, normalized, inverse_std) = forward(x, &gamma, &beta);
            (output, (normalized, inverse_std, gamma))
        });
        return Tensor::from_primitive::<Autodiff<Flex>>(output);
    }
    norm.forward(x)
}

/// The output, the normalised input `x̂` and `1/√(σ² + ε)` of every row.
fn forward(
    x: FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
) -> (FlexTensor, FlexTensor, Vec<f32>) {
    let mut normalized = owned_contiguous(x);
    let width = *normalized
        .layout()
        .shape()
        .last()
        .expect("a non-scalar tensor");
    let rows = normalized.layout().num_elements() / width.max(1);
    let (gamma, beta) = (gamma.to_contiguous(), beta.to_contiguous());
    let (gamma, beta) = (
        gamma.as_slice::<f32>().expect("contiguous"),
        beta.as_slice::<f32>().expect("contiguous"),
    );
    assert!(
        gamma.len() == width && beta.len() == width,
        "layer norm of width {width} with a scale of {} and a shift of {}",
        gamma.len(),
        beta.len()
    );
    let mut output = vec![0.0f32; rows * width];
    let mut inverse_std = vec![0.0f32; rows];
    let task_rows = rows_per_task(width);
    normalized
        .storage_mut::<f32>()
        .par_chunks_mut(task_rows * width)
        .zip(output.par_chunks_mut(task_rows * width))
        .zip(inverse_std.par_chunks_mut(task_rows))
        .for_each(|((xs, ys), inverses)| {
            wide(
                #[inline(always)]
                || {
                    for ((x, y), inverse) in xs
                        .chunks_exact_mut(width)
                        .zip(ys.chunks_exact_mut(width))
                        .zip(inverses)
                    {
                        let mean = lane_fold(x, 0.0, |a, v| a + v) / width as f32;
                        x.iter_mut().for_each(|v| *v -= mean);
                        let variance = lane_dot(x, x) / width as f32;
                        *inverse = (variance + EPSILON).sqrt().recip();
                        for (((v, y), g), b) in x.iter_mut().zip(y.iter_mut()).zip(gamma).zip(beta)
                        {
                            *v *= *inverse;
                            *y = *v * g + b;
                        }
                    }
                },
            )
        });
    let shape = normalized.layout().shape().clone();
    let output = FlexTensor::from_data(TensorData::new(output, shape));
    (output, normalized, inverse_std)
}

/// The backward pass of [`layer_norm`] on burn-flex; its state is `(x̂, 1/σ, γ)`.
#[derive(Debug)]
struct FusedLayerNorm;

impl Backward<Flex, 3> for FusedLayerNorm {
    type State = (FlexTensor, Vec<f32>, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let output_grad = grads.consume::<Flex>(&ops.node);
        let (normalized, inverse_std, gamma) = ops.state;
        let [x_node, gamma_node, beta_node] = ops.parents;
        let (x_grad, params) = gradients(output_grad, &normalized, &inverse_std, &gamma);
        let width = params.gamma.len();
        let vector = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [width]));
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, x_grad);
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, vector(params.gamma));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, vector(params.beta));
        }
    }
}

/// The gradients of `γ` and `β`, summed over rows.
struct ParamGrads {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl ParamGrads {
    fn zeros(width: usize) -> Self {
        Self {
            gamma: vec![0.0; width],
            beta: vec![0.0; width],
        }
    }

    fn add(mut self, other: Self) -> Self {
        self.gamma
            .iter_mut()
            .zip(other.gamma)
            .for_each(|(a, b)| *a += b);
        self.beta
            .iter_mut()
            .zip(other.beta)
            .for_each(|(a, b)| *a += b);
        self
    }
}

/// The gradients of `x`, `γ` and `β` from that of the output (written over it).
fn gradients(
    output_grad: FlexTensor,
    normalized: &FlexTensor,
    inverse_std: &[f32],
    gamma: &FlexTensor,
) -> (FlexTensor, ParamGrads) {
    let mut grad = owned_contiguous(output_grad);
    let gamma = gamma.to_contiguous();
    let gamma = gamma.as_slice::<f32>().expect("contiguous");
    let normalized = normalized.as_slice::<f32>().expect("contiguous");
    let width = gamma.len();
    let task_rows = rows_per_task(width);
    let params = grad
        .storage_mut::<f32>()
        .par_chunks_mut(task_rows * width)
        .zip(normalized.par_chunks(task_rows * width))
        .zip(inverse_std.par_chunks(task_rows))
        .map(|((dys, xs), inverses)| {
            wide(
                #[inline(always)]
                || {
                    let mut params = ParamGrads::zeros(width);
                    let mut scaled = vec![0.0f32; width];
                    let rows = dys.chunks_exact_mut(width).zip(xs.chunks_exact(width));
                    for ((dy, x), &inverse) in rows.zip(inverses) {
                        row_gradients(dy, x, inverse, gamma, &mut params, &mut scaled);
                    }
                    params
                },
            )
        })
        .reduce(|| ParamGrads::zeros(width), ParamGrads::add);
    (grad, params)
}

/// One row: adds `dy·x̂` to `dγ` and `dy` to `dβ`, then with `g = dy·γ` (kept in
/// `scaled`) rewrites `dy` as `dx = (g − mean(g) − x̂·mean(g·x̂))/σ`.
#[inline(always)]
fn row_gradients(
    dy: &mut [f32],
    x: &[f32],
    inverse_std: f32,
    gamma: &[f32],
    params: &mut ParamGrads,
    scaled: &mut [f32],
) {
    let n = dy.len();
    let (gamma_grad, beta_grad) = (&mut params.gamma[..n], &mut params.beta[..n]);
    let (scaled, gamma, x) = (&mut scaled[..n], &gamma[..n], &x[..n]);
    for j in 0..n {
        gamma_grad[j] += dy[j] * x[j];
        beta_grad[j] += dy[j];
        scaled[j] = dy[j] * gamma[j];
    }
    let width = n as f32;
    let mean = lane_fold(scaled, 0.0, |a, v| a + v) / width;
    let mean_x = lane_dot(scaled, x) / width;
    for ((d, s), xv) in dy.iter_mut().zip(scaled.iter()).zip(x) {
        *d = inverse_std * (s - mean - xv * mean_x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Distribution, Tolerance};

    /// A layer norm with a scale and shift other than burn's ones and zeros.
    fn norm(device: &Device) -> LayerNorm {
        let mut norm = LayerNormConfig::new(20).init(device);
        let random = |mean| {
            Param::from_tensor(Tensor::random(
                [20],
                Distribution::Normal(mean, 0.5),
                device,
            ))
        };
        norm.gamma = random(1.0);
        norm.beta = Some(random(0.0));
        norm
    }

    #[test]
    fn fused_layer_norm_equals_burns() {
        let device = Device::flex();
        device.seed(44);
        let norm = norm(&device);
        let x = Tensor::<3>::random([3, 5, 20], Distribution::Normal(2.0, 3.0), &device);
        layer_norm(&norm, x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&norm.forward(x).into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn fused_gradients_equal_burns() {
        let device = Device::flex().autodiff();
        device.seed(45);
        let norm = norm(&device);
        let weights = Tensor::<3>::random([3, 5, 20], Distribution::Normal(0.0, 1.0), &device);
        let x = Tensor::<3>::random([3, 5, 20], Distribution::Normal(2.0, 3.0), &device);
        let grads_of = |fused: bool| {
            let x = x.clone().require_grad();
            let out = if fused {
                layer_norm(&norm, x.clone())
            } else {
                norm.forward(x.clone())
            };
            let grads = (out * weights.clone()).sum().backward();
            let beta = norm.beta.as_ref().expect("a shift").val();
            [
                x.grad(&grads).expect("dx").into_data(),
                norm.gamma.val().grad(&grads).expect("dγ").into_data(),
                beta.grad(&grads).expect("dβ").into_data(),
            ]
        };
        for (a, b) in grads_of(true).iter().zip(&grads_of(false)) {
            a.assert_approx_eq::<f32>(b, Tolerance::absolute(1e-4));
        }
    }
}
