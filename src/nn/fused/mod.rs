//! Operations fused for the CPU backend, with backward passes of our own.
//!
//! burn-flex has kernels of its own for attention and layer norm, but burn's autodiff
//! differentiates both through their decompositions, and burn-flex has no fusion: every
//! element-wise step is a graph node with a full-size tensor of its own, written
//! forward and read again backward. At the
//! shared transformer's training size that memory traffic, not arithmetic, set the
//! step's time (BENCHMARKS.md). Each operation here takes the burn-flex primitives of
//! its inputs, does its element-wise work in one pass per row (the matrix products stay
//! burn-flex's GEMM), and records one autodiff node whose backward is written out.
//!
//! Sampling (plain burn-flex tensors) runs the same kernels, except unmasked attention
//! over many queries (HiT's), which has a kernel of its own for the same function (the
//! same numbers to about 1e-7). Convolution runs in cache-sized bands for sampling and,
//! with burn-flex's own backward pass, in training (the GANs' discriminator and the
//! convolutional generator). Two operations are for sampling only, with no backward: SiLU
//! (tokenising and decoding an edit, the convolutional generator) and HiT's feed-forward
//! layers a block of rows at a time. Tensors anywhere else (wgpu, or an autodiff graph
//! with gradient checkpointing) take burn's own operation, which computes the same
//! function.

mod attention;
mod conv;
mod feed_forward;
mod layer_norm;
mod silu;

pub use attention::attention;
pub use conv::conv2d;
pub use feed_forward::feed_forward;
pub use layer_norm::layer_norm;
pub use silu::silu;

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::DType;

/// The tensors' primitives on backend `B`, if all of them live there in `f32`.
fn primitives<B, const D: usize, const N: usize>(
    tensors: [&Tensor<D>; N],
) -> Option<[B::FloatTensorPrimitive; N]>
where
    B: burn::backend::Backend,
    Float: burn::tensor::BackendPrimitive<B, Primitive = B::FloatTensorPrimitive>,
    burn::tensor::DispatchTensor: burn::backend::DispatchKindConversion<B>,
{
    if tensors.iter().any(|t| t.dtype() != DType::F32) {
        return None;
    }
    let converted: Option<Vec<_>> = tensors
        .iter()
        .map(|t| (*t).clone().try_into_primitive::<B>().ok())
        .collect();
    converted?.try_into().ok()
}

/// Runs `forward` on the inputs' burn-flex primitives as one node of the autodiff
/// graph, whose backward is `op`. `forward` returns the output and the state the
/// backward needs; the state is dropped when no input is tracked.
fn record<O, const N: usize>(
    op: O,
    inputs: [FloatTensor<Autodiff<Flex>>; N],
    forward: impl FnOnce([FlexTensor; N]) -> (FlexTensor, O::State),
) -> FloatTensor<Autodiff<Flex>>
where
    O: Backward<Flex, N>,
{
    let nodes = inputs.each_ref().map(|t| t.node());
    let primitives = inputs.map(|t| t.into_primitive());
    match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (output, state) = forward(primitives);
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(primitives).0),
    }
}

/// A contiguous, uniquely owned copy of `tensor` (the tensor itself when it is one),
/// so its rows can be rewritten in place.
fn owned_contiguous(tensor: FlexTensor) -> FlexTensor {
    let elements = tensor.layout().num_elements();
    // A view at offset 0 of a larger buffer is contiguous too, but its storage is not
    // the tensor.
    let whole = tensor.layout().contiguous_offsets() == Some((0, elements))
        && tensor.storage::<f32>().len() == elements;
    if whole && tensor.is_unique() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

/// Rows per parallel task: enough work to be worth a thread.
fn rows_per_task(columns: usize) -> usize {
    (16_384 / columns.max(1)).max(1)
}

/// Runs `work` compiled for AVX-512 (or else AVX2) and FMA when the CPU has them, else
/// as built for the baseline x86-64 (SSE2): the crate is built for the baseline, and
/// these row kernels run twice as fast with AVX2's vectors (a layer norm of 16-wide
/// rows a further 20 % with AVX-512's). The arithmetic is the same at every width (the
/// lanes of [`lane_fold`] are fixed), so these row kernels compute the same numbers on
/// every machine (burn-flex's GEMM picks kernels of its own).
/// `work` and what it calls should be `#[inline(always)]`: only code inlined into it
/// gets the wider build.
#[inline(always)]
fn wide<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        // `avx512f` implies the other three.
        #[target_feature(enable = "avx512f,avx2,fma,f16c")]
        fn avx512<R>(work: impl FnOnce() -> R) -> R {
            work()
        }
        // SAFETY: the CPU was just found to have all four features.
        return unsafe { avx512(work) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(work: impl FnOnce() -> R) -> R {
            work()
        }
        // SAFETY: the CPU was just found to have both features.
        return unsafe { avx2(work) };
    }
    work()
}

/// `dst += lhs·rhs` by the GEMM burn-flex uses, for row-major `lhs` `[m, k]` and `rhs`
/// `[k, n]`, into `m` rows of `n` values `dst_stride` apart.
///
/// # Safety
/// `dst` must be valid for writes of those rows; `lhs` and `rhs` must hold `m·k` and
/// `k·n` values.
unsafe fn accumulate_product(
    dst: *mut f32,
    dst_stride: usize,
    lhs: &[f32],
    rhs: &[f32],
    (m, k, n): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    debug_assert!(lhs.len() >= m * k && rhs.len() >= k * n);
    // SAFETY: as the caller guarantees; `dst = 1·dst + 1·lhs·rhs` (read_dst).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_stride as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Accumulators side by side, so a reduction vectorises (a float sum in one running
/// total cannot be reordered, and so is not).
const LANES: usize = 16;

/// Folds `values` with `f` in [`LANES`] interleaved accumulators, then folds those;
/// `init` must be `f`'s identity (−∞ for a maximum, 0 for a sum).
#[inline(always)]
fn lane_fold(values: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [init; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = f(*lane, x);
        }
    }
    tail.iter().fold(fold_lanes(lanes, &f), |a, &x| f(a, x))
}

/// The lanes folded pairwise, halves onto halves: four vector steps where a running
/// fold is sixteen dependent scalar ones. On the narrow rows of HiT's high-resolution
/// stages (16 and 32 channels) the running fold was most of a layer norm's time. Each
/// step is an array of its own, so the compiler keeps them in registers.
#[inline(always)]
fn fold_lanes(lanes: [f32; LANES], f: impl Fn(f32, f32) -> f32) -> f32 {
    const { assert!(LANES == 16) };
    let eight: [f32; 8] = std::array::from_fn(|i| f(lanes[i], lanes[i + 8]));
    let four: [f32; 4] = std::array::from_fn(|i| f(eight[i], eight[i + 4]));
    f(f(four[0], four[2]), f(four[1], four[3]))
}

/// `Σ aᵢ·bᵢ` in [`LANES`] accumulators (of equal-length slices).
#[inline(always)]
fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0.0; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in a_chunks.zip(b_chunks) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += a * b;
        }
    }
    fold_lanes(lanes, |a, b| a + b) + tail
}

/// `eˣ` for `x ≤ 0` (a softmax after subtracting the row's maximum, a SiLU's `e^−|x|`),
/// in a form the
/// compiler vectorises: burn-flex's and libm's `expf` are scalar calls, 2.6 ns each
/// here, and the attention of one training step takes 25 million of them.
///
/// `eˣ = 2ⁿ·eʳ` with `n = round(x·log₂e)` and `|r| ≤ ln2/2`; `eʳ` by its Taylor
/// polynomial to degree 7 (within 2 units in the last place of `f32::exp`, tested);
/// `2ⁿ` built in the exponent bits. Below −87 (about where `eˣ` turns subnormal) it returns 0.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // A comparison, not `f32::max`, so NaN stays NaN.
    let underflow = x < -87.0;
    let x = if underflow { -87.0 } else { x };
    // Adding and taking away 1.5·2²³ rounds to the nearest integer (|x·log₂e| < 2²²)
    // without a call to `roundf`, which would keep the loop scalar.
    const ROUND: f32 = 12_582_912.0;
    let rounded = x * std::f32::consts::LOG2_E + ROUND;
    let n = rounded - ROUND;
    // The same integer read from the bits: `rounded` and `ROUND` share their exponent,
    // so their mantissas differ by n. (`n as i32` saturates, and saturating casts
    // compile to one scalar conversion per lane: most of a softmax's time.)
    let n_bits = (rounded.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ]
    .iter()
    .fold(1.0 / 5040.0, |p, c| p * r + c);
    let value = p * f32::from_bits(((n_bits + 127) << 23) as u32);
    if underflow { 0.0 } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library_to_float_precision() {
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (fast, exact) = (exp(x), x.exp());
            // Two units in the last place: 2·2⁻²³ relative, at worst.
            assert!(
                ((fast - exact) / exact).abs() < 2.4e-7,
                "exp({x}) = {fast}, std gives {exact}"
            );
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }
}
