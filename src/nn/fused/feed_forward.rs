//! The feed-forward half of a transformer layer, `x + fc2(relu(fc1(n)))`, for sampling
//! on the CPU, a block of rows at a time.
//!
//! Done as burn's three operations, the hidden layer (four times the width) is a tensor
//! of its own, written by `fc1`, rewritten by the ReLU and read by `fc2`: at HiT's 128 px
//! stage, 210 MB for a batch of 50, three passes through memory and fresh pages each
//! time, for products whose 16-wide inputs keep the GEMM's kernels thin. Here a block of
//! rows goes through both products and the ReLU while its hidden values stay in cache,
//! and the output is written once, onto the residual's buffer. Tensors in an autodiff
//! graph take burn's operations.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;
use rayon::prelude::*;

use super::{accumulate_product, owned_contiguous, primitives};

/// Rows per block: their hidden values (`4·d` each) stay in the first two cache levels
/// for widths up to 64.
const BLOCK_ROWS: usize = 256;

/// `residual + fc2(relu(fc1(normed)))` over the last axis.
///
/// # Shapes
/// - normed, residual: `[..., d]`; fc1: `d → h`; fc2: `h → d`
pub fn feed_forward<const D: usize>(
    fc1: &Linear,
    fc2: &Linear,
    normed: Tensor<D>,
    residual: Tensor<D>,
) -> Tensor<D> {
    let weights = [fc1.weight.val(), fc2.weight.val()];
    let biases = [&fc1.bias, &fc2.bias].map(|b| b.as_ref().map(|b| b.val()));
    let [d, hidden] = weights[0].dims();
    let bias_fits =
        |bias: &Option<Tensor<1>>, len| bias.as_ref().is_some_and(|b| b.dims() == [len]);
    let fits = d > 0
        && normed.dims() == residual.dims()
        && normed.dims()[D - 1] == d
        && weights[1].dims() == [hidden, d]
        && bias_fits(&biases[0], hidden)
        && bias_fits(&biases[1], d);
    let primitive_inputs = primitives::<Flex, D, 2>([&normed, &residual]);
    let primitive_weights = primitives::<Flex, 2, 2>([&weights[0], &weights[1]]);
    let primitive_biases = match &biases {
        [Some(b1), Some(b2)] => primitives::<Flex, 1, 2>([b1, b2]),
        _ => None,
    };
    match (fits, primitive_inputs, primitive_weights, primitive_biases) {
        (true, Some([normed_p, residual_p]), Some(weights), Some(biases)) => {
            // The primitive is a second handle on the residual's buffer: with the tensor
            // gone, a buffer nobody else holds takes the output in place.
            drop(residual);
            Tensor::from_primitive::<Flex>(forward(normed_p, residual_p, weights, biases))
        }
        _ => residual + fc2.forward(relu(fc1.forward(normed))),
    }
}

/// The feed-forward pass on contiguous buffers, block by block in parallel.
fn forward(
    normed: FlexTensor,
    residual: FlexTensor,
    [w1, w2]: [FlexTensor; 2],
    [b1, b2]: [FlexTensor; 2],
) -> FlexTensor {
    let normed = normed.to_contiguous();
    let mut out = owned_contiguous(residual);
    let [w1, w2, b1, b2] = [w1, w2, b1, b2].map(|t| t.to_contiguous());
    let [d, hidden] = [w1.layout().shape()[0], w1.layout().shape()[1]];
    let normed = normed.as_slice::<f32>().expect("contiguous");
    let [w1, w2, b1, b2] = [&w1, &w2, &b1, &b2].map(|t| t.as_slice::<f32>().expect("contiguous"));
    out.storage_mut::<f32>()
        .par_chunks_mut(BLOCK_ROWS * d)
        .zip(normed.par_chunks(BLOCK_ROWS * d))
        .for_each_init(Vec::new, |buffer, (out, normed)| {
            let rows = normed.len() / d;
            // The hidden layer: bias, then `+= n·W1`, then the ReLU.
            buffer.clear();
            buffer.extend((0..rows).flat_map(|_| b1.iter().copied()));
            product(buffer, normed, w1, (rows, d, hidden));
            // As burn's ReLU: a NaN stays NaN (a diverged model shows in its pictures).
            buffer
                .iter_mut()
                .for_each(|h| *h = if *h <= 0.0 { 0.0 } else { *h });
            // The output: the residual plus bias, then `+= h·W2`.
            for row in out.chunks_exact_mut(d) {
                row.iter_mut().zip(b2).for_each(|(o, b)| *o += b);
            }
            product(out, buffer, w2, (rows, hidden, d));
        });
    out
}

/// `dst += lhs·rhs` for row-major `lhs` `[m, k]`, `rhs` `[k, n]` and `dst` `[m, n]`.
fn product(dst: &mut [f32], lhs: &[f32], rhs: &[f32], (m, k, n): (usize, usize, usize)) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    // SAFETY: `dst` holds `m` rows of `n` values, `n` apart (just checked).
    unsafe {
        accumulate_product(
            dst.as_mut_ptr(),
            n,
            lhs,
            rhs,
            (m, k, n),
            gemm::Parallelism::None,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::{Distribution, Tolerance};

    /// The blocked pass against burn's three operations, for widths of HiT's stages and
    /// row counts that leave a ragged last block; the residual's buffer is not changed
    /// for another holder.
    #[test]
    fn blocked_feed_forward_is_burns() {
        let device = Device::flex();
        device.seed(9);
        for (d, rows) in [(16, 700), (32, 256), (64, 5), (8, 1)] {
            let (fc1, fc2) = (
                LinearConfig::new(d, 4 * d).init(&device),
                LinearConfig::new(4 * d, d).init(&device),
            );
            let normal = Distribution::Normal(0.0, 1.0);
            let normed = Tensor::<3>::random([2, rows, d], normal, &device);
            let residual = Tensor::<3>::random([2, rows, d], normal, &device);
            let kept = residual.clone().into_data();
            let expected = residual.clone() + fc2.forward(relu(fc1.forward(normed.clone())));
            let expected = expected.into_data();
            // The blocked path itself, on a residual still held elsewhere (so copied)…
            let [n, r] = primitives::<Flex, 3, 2>([&normed, &residual]).expect("flex");
            let params = |l: &Linear| (l.weight.val(), l.bias.as_ref().expect("bias").val());
            let ((w1, b1), (w2, b2)) = (params(&fc1), params(&fc2));
            let weights = primitives::<Flex, 2, 2>([&w1, &w2]).expect("flex");
            let biases = primitives::<Flex, 1, 2>([&b1, &b2]).expect("flex");
            Tensor::<3>::from_primitive::<Flex>(forward(n, r, weights, biases))
                .into_data()
                .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
            assert_eq!(
                residual.clone().into_data(),
                kept,
                "the held residual is unchanged"
            );
            // … and through the public function with the residual handed over.
            let fresh = Tensor::<3>::from_data(kept, &device);
            feed_forward(&fc1, &fc2, normed, fresh)
                .into_data()
                .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
        }
    }
}
