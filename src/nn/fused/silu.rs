//! SiLU (`x·σ(x)`) for sampling on the CPU, in one vectorised pass.
//!
//! burn-flex computes the sigmoid with a scalar `expf` call per value; at 128 px the
//! tokenizer's SiLUs (before every convolution of its residual blocks) were 8 % of an
//! edit. Here the exponent is [`exp`](super::exp)'s polynomial, which the compiler
//! vectorises, in place on the tensor's own buffer. Tensors in an autodiff graph take
//! burn's `silu`.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::activation;
use rayon::prelude::*;

use super::{exp, owned_contiguous, primitives, wide};

/// Values per parallel task.
const CHUNK: usize = 1 << 16;

/// `x·σ(x)` element-wise.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let Some([primitive]) = primitives::<Flex, D, 1>([&x]) else {
        return activation::silu(x);
    };
    // The primitive is a second handle on `x`'s buffer: with `x` gone, a buffer nobody
    // else holds is rewritten in place rather than copied.
    drop(x);
    let mut out = owned_contiguous(primitive);
    out.storage_mut::<f32>()
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| {
            wide(
                #[inline(always)]
                || chunk.iter_mut().for_each(|x| *x = one(*x)),
            )
        });
    Tensor::from_primitive::<Flex>(out)
}

/// `x·σ(x)` from `e^−|x|` (never overflowing): `x / (1 + e^−x)` for `x ≥ 0`, and
/// `x·eˣ / (1 + eˣ)` below, −0 where `eˣ` underflows (so −∞ gives −0, not −∞·0 = NaN).
/// NaN stays NaN.
#[inline(always)]
fn one(x: f32) -> f32 {
    let e = exp(-x.abs());
    let numerator = match (x >= 0.0, e == 0.0) {
        (true, _) => x,
        (false, true) => -0.0,
        (false, false) => x * e,
    };
    numerator / (1.0 + e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn silu_is_burns_silu_over_the_whole_range() {
        let device = Device::flex();
        device.seed(2);
        let x = Tensor::<3>::random([3, 50, 700], Distribution::Normal(0.0, 20.0), &device);
        let error = (silu(x.clone()) - activation::silu(x))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(error < 1e-5, "off by {error}");
        let inf = f32::INFINITY;
        let edges = [f32::MAX, -f32::MAX, 0.0, -0.0, 200.0, -200.0, inf, -inf];
        let ours = silu(Tensor::<1>::from_data(TensorData::from(edges), &device));
        let ours = ours.into_data().try_to_vec::<f32>().expect("f32");
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let expected = [f32::MAX, -0.0, 0.0, -0.0, 200.0, -0.0, inf, -0.0];
        assert_eq!(bits(&ours), bits(&expected), "{ours:?}");
    }

    #[test]
    fn a_nan_stays_nan_and_a_view_is_not_written_through() {
        let device = Device::flex();
        let x = Tensor::<1>::from_data(TensorData::from([f32::NAN, 1.0, -1.0, 2.0]), &device);
        let slice = x.clone().slice(1..3);
        let out = silu(slice).into_data().try_to_vec::<f32>().expect("f32");
        assert!((out[0] - 0.731_058_6).abs() < 1e-6 && (out[1] + 0.268_941_4).abs() < 1e-6);
        let whole = silu(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert!(whole[0].is_nan());
        assert_eq!(
            x.into_data().try_to_vec::<f32>().expect("f32")[1],
            1.0,
            "input kept"
        );
    }
}
