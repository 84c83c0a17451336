//! Masked scaled dot-product attention, `softmax(QKᵀ/√d_h, mask)·V`.
//!
//! Under autodiff, burn's `attention` is its decomposed fallback, and each of its
//! element-wise steps (scale, mask fill, max, subtract, exp, sum, divide) is a graph
//! node with a `[B, H, T, T]` tensor of its own, forward and again backward: at the
//! training shape most of a layer's time went to those nodes, not to the matrix
//! products. Here the matrix products stay burn-flex's GEMM and everything between
//! them is one pass over the scores forward and one backward, with a backward of our
//! own that keeps only the probabilities (timings: BENCHMARKS.md, "Fused attention
//! and layer norm").

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::ops::AttentionModuleOptions;
use rayon::prelude::*;

use super::{exp, lane_dot, lane_fold, owned_contiguous, primitives, record, rows_per_task, wide};

/// `softmax(QKᵀ/√d_h)·V`, where `mask` is `true` the score is excluded; a row whose
/// scores are all excluded attends to nothing and yields zeros.
///
/// # Shapes
/// - queries: `[B, H, t, d_h]`; keys, values: `[B, H, T, d_h]`; mask: broadcastable
///   to `[B, H, t, T]`
/// - output: `[B, H, t, d_h]`
pub fn attention(
    queries: Tensor<4>,
    keys: Tensor<4>,
    values: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
) -> Tensor<4> {
    let [batch, heads, rows, width] = queries.dims();
    let columns = keys.dims()[2];
    let mask = mask.map(|m| m.expand([batch, heads, rows, columns]));
    // The kernels read every input at the queries' batch and heads (no broadcasting).
    let (k, v) = (keys.dims(), values.dims());
    if k[..2] != [batch, heads] || v[..3] != k[..3] {
        return fallback(queries, keys, values, mask);
    }
    // No mask, keys and values of the queries' width, and a few keys (at least one).
    let plain = mask.is_none()
        && k[3] == width
        && v[3] == width
        && width > 0
        && (1..=MANY_ROWS_KEYS).contains(&k[2]);
    let inputs = [&queries, &keys, &values];
    let flex_mask = match &mask {
        Some(m) => match bool_primitive(m) {
            Some(m) => Some(m),
            None => return fallback(queries, keys, values, mask),
        },
        None => None,
    };
    if let Some([q, k, v]) = primitives::<Flex, 4, 3>(inputs) {
        let block = ROWS.into_iter().find(|b| rows % b == 0);
        if let (true, Some(block)) = (plain, block) {
            return Tensor::from_primitive::<Flex>(many_rows(q, k, v, block));
        }
        let (output, _) = forward(q, k, v, flex_mask.as_ref());
        return Tensor::from_primitive::<Flex>(output);
    }
    if let Some(inputs) = primitives::<Autodiff<Flex>, 4, 3>(inputs) {
        let output = record(FusedAttention, inputs, |[q, k, v]| {
            let (output, probabilities) =
                forward(q.clone(), k.clone(), v.clone(), flex_mask.as_ref());
            (output, (q, k, v, probabilities))
        });
        return Tensor::from_primitive::<Autodiff<Flex>>(output);
    }
    fallback(queries, keys, values, mask)
}

/// burn's own op, for tensors this module has no kernel for.
fn fallback(
    queries: Tensor<4>,
    keys: Tensor<4>,
    values: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
) -> Tensor<4> {
    burn::tensor::module::attention(
        queries,
        keys,
        values,
        mask,
        None,
        AttentionModuleOptions::default(),
    )
}

/// A mask's burn-flex primitive, whether it was made on a plain or an autodiff device.
fn bool_primitive(mask: &Tensor<4, Bool>) -> Option<FlexTensor> {
    mask.clone()
        .try_into_primitive::<Flex>()
        .or_else(|_| mask.clone().try_into_primitive::<Autodiff<Flex>>())
        .ok()
}

/// The output and the attention probabilities `[B, H, t, T]`.
fn forward(
    queries: FlexTensor,
    keys: FlexTensor,
    values: FlexTensor,
    mask: Option<&FlexTensor>,
) -> (FlexTensor, FlexTensor) {
    let scale = scale(&queries);
    let scores = Flex::float_matmul(queries, Flex::float_transpose(keys));
    let probabilities = softmax_rows(scores, mask, scale);
    (
        Flex::float_matmul(probabilities.clone(), values),
        probabilities,
    )
}

/// Query rows per pass of [`many_rows`], the largest that divides the rows: its
/// transposed scores (`[T, rows]`) stay in the first-level cache for HiT's 64 keys.
const ROWS: [usize; 3] = [64, 32, 16];

/// Most keys [`many_rows`] takes. Its products run at a fraction of GEMM's rate, which
/// costs nothing against 64 keys and a narrow head (HiT) and would against the
/// transformer's 256 keys and 32-wide heads, where the score tensor is small anyway.
const MANY_ROWS_KEYS: usize = 64;

/// The output alone, for sampling without a mask when each head has a multiple of 16
/// queries and at most [`MANY_ROWS_KEYS`] keys (HiT's stages: 1,024 to 16,384 pixels attending to 64 latent tokens, or a
/// block's 16-64 pixels to each other, with 4- to 64-wide heads). The general path
/// writes a `[B, H, t, T]` score tensor (840 MB for a batch of 50 at HiT's 128 px
/// stage, written, page-faulted in and read four times) and reduces every row across
/// a vector, which at 64 columns is mostly horizontal sums. Here a block of rows is
/// held transposed, `[T, n]`, so every step (scores, maximum, exponent, sum,
/// output) runs along the rows, one vector lane per query, with no horizontal sum at
/// all (BENCHMARKS.md, "Sampling HiT and the baseline at 128 px").
fn many_rows(
    queries: FlexTensor,
    keys: FlexTensor,
    values: FlexTensor,
    block: usize,
) -> FlexTensor {
    if heads_interleaved(&queries) {
        return many_rows_interleaved(queries, keys, values, block);
    }
    let scale = scale(&queries);
    let shape = queries.layout().shape().clone();
    let [rows, width] = [shape[2], shape[3]];
    let columns = keys.layout().shape()[2];
    let (queries, keys, values) = (
        queries.to_contiguous(),
        keys.to_contiguous(),
        values.to_contiguous(),
    );
    let [queries, keys, values] =
        [&queries, &keys, &values].map(|t| t.as_slice::<f32>().expect("contiguous"));
    let matrix = columns * width;
    let contiguous = Rows {
        width,
        stride: width,
        n: block,
    };
    let mut output = vec![0.0f32; queries.len()];
    output
        .par_chunks_mut(block * width)
        .zip(queries.par_chunks(block * width))
        .enumerate()
        .for_each(|(task, (out, queries))| {
            // Blocks never straddle two heads: `rows` is a multiple of `block`.
            let pair = task * block / rows;
            let keys = &keys[pair * matrix..(pair + 1) * matrix];
            let values = &values[pair * matrix..(pair + 1) * matrix];
            wide(
                #[inline(always)]
                || block_of_rows(queries, keys, values, out, contiguous, scale),
            )
        });
    FlexTensor::from_data(TensorData::new(output, shape))
}

/// Whether `queries` (`[B, H, t, d_h]`) is the heads-split view of a contiguous
/// `[B, t, H·d_h]` map (`reshape` then `swap_dims(1, 2)`: how HiT's layers split their
/// heads), whose rows [`many_rows_interleaved`] reads where they lie.
fn heads_interleaved(queries: &FlexTensor) -> bool {
    let layout = queries.layout();
    let &[_, heads, rows, width] = layout.shape().as_slice() else {
        return false;
    };
    let expected = [rows * heads * width, width, heads * width, 1].map(|s| s as isize);
    heads > 1
        && layout.strides() == expected
        && layout.start_offset() == 0
        && queries.storage::<f32>().len() == layout.num_elements()
}

/// [`many_rows`] on queries laid out as `[B, t, H, d_h]` (see [`heads_interleaved`]),
/// with the output in the same layout, returned as the same `[B, H, t, d_h]` view: the
/// two transposing copies of the map around the attention (52 MB each for a batch of
/// 50 at HiT's 128 px stage) are not made. A task takes a block of rows of one
/// picture, all heads.
fn many_rows_interleaved(
    queries: FlexTensor,
    keys: FlexTensor,
    values: FlexTensor,
    block: usize,
) -> FlexTensor {
    let scale = scale(&queries);
    let &[batch, heads, rows, width] = queries.layout().shape().as_slice() else {
        unreachable!("heads_interleaved checked four dimensions")
    };
    let columns = keys.layout().shape()[2];
    let (keys, values) = (keys.to_contiguous(), values.to_contiguous());
    let queries = queries.storage::<f32>();
    let [keys, values] = [&keys, &values].map(|t| t.as_slice::<f32>().expect("contiguous"));
    let (matrix, chunk) = (columns * width, block * heads * width);
    let strided = Rows {
        width,
        stride: heads * width,
        n: block,
    };
    let mut output = vec![0.0f32; queries.len()];
    output
        .par_chunks_mut(chunk)
        .zip(queries.par_chunks(chunk))
        .enumerate()
        .for_each(|(task, (out, queries))| {
            // Blocks never straddle two pictures: `rows` is a multiple of `block`.
            let picture = task * block / rows;
            for head in 0..heads {
                let pair = picture * heads + head;
                let keys = &keys[pair * matrix..(pair + 1) * matrix];
                let values = &values[pair * matrix..(pair + 1) * matrix];
                let (queries, out) = (&queries[head * width..], &mut out[head * width..]);
                wide(
                    #[inline(always)]
                    || block_of_rows(queries, keys, values, out, strided, scale),
                )
            }
        });
    let output = FlexTensor::from_data(TensorData::new(output, [batch, rows, heads, width]));
    Flex::float_swap_dims(output, 1, 2)
}

/// Where a block's rows lie in a slice: `n` rows of `width` values, each `stride` after
/// the one before.
#[derive(Clone, Copy)]
struct Rows {
    width: usize,
    stride: usize,
    n: usize,
}

impl Rows {
    /// Row `r` of `values`.
    #[inline(always)]
    fn row(self, values: &[f32], r: usize) -> &[f32] {
        &values[r * self.stride..][..self.width]
    }

    /// Row `r` of `values`, to write.
    #[inline(always)]
    fn row_mut(self, values: &mut [f32], r: usize) -> &mut [f32] {
        &mut values[r * self.stride..][..self.width]
    }
}

/// A block of query rows (`rows`: n ≤ 64 rows of d_h) against one head's keys and
/// values (`[T, d_h]`), into the same rows of `out`.
#[inline(always)]
fn block_of_rows(
    queries: &[f32],
    keys: &[f32],
    values: &[f32],
    out: &mut [f32],
    rows: Rows,
    scale: f32,
) {
    let (width, n) = (rows.width, rows.n);
    let columns = keys.len() / width;
    // The queries transposed and scaled: `[d_h, n]`.
    let mut transposed = vec![0.0f32; width * n];
    for r in 0..n {
        for (d, &x) in rows.row(queries, r).iter().enumerate() {
            transposed[d * n + r] = x * scale;
        }
    }
    let mut scores = vec![0.0f32; columns * n];
    for (score, key) in scores.chunks_exact_mut(n).zip(keys.chunks_exact(width)) {
        for (query, &k) in transposed.chunks_exact(n).zip(key) {
            for (s, q) in score.iter_mut().zip(query) {
                *s += q * k;
            }
        }
    }
    let mut max = [f32::NEG_INFINITY; ROWS[0]];
    let max = &mut max[..n];
    for score in scores.chunks_exact(n) {
        for (m, &s) in max.iter_mut().zip(score) {
            *m = if s > *m { s } else { *m };
        }
    }
    let mut sum = [0.0f32; ROWS[0]];
    let sum = &mut sum[..n];
    for score in scores.chunks_exact_mut(n) {
        for ((s, m), z) in score.iter_mut().zip(max.iter()).zip(sum.iter_mut()) {
            *s = exp(*s - m);
            *z += *s;
        }
    }
    // The output transposed, `[d_h, n]`, reusing the queries' buffer.
    transposed.fill(0.0);
    for (score, value) in scores.chunks_exact(n).zip(values.chunks_exact(width)) {
        for (o, &v) in transposed.chunks_exact_mut(n).zip(value) {
            for (o, s) in o.iter_mut().zip(score) {
                *o += s * v;
            }
        }
    }
    for r in 0..n {
        let inverse = sum[r].recip();
        for (d, o) in rows.row_mut(out, r).iter_mut().enumerate() {
            *o = transposed[d * n + r] * inverse;
        }
    }
}

/// `1/√d_h`.
fn scale(queries: &FlexTensor) -> f32 {
    let head = queries.layout().shape()[3];
    (head as f32).sqrt().recip()
}

/// Scales the scores, drops the masked ones and turns each row into probabilities.
fn softmax_rows(scores: FlexTensor, mask: Option<&FlexTensor>, scale: f32) -> FlexTensor {
    let mut scores = owned_contiguous(scores);
    let shape = scores.layout().shape().clone();
    let [_, heads, rows, columns] = [shape[0], shape[1], shape[2], shape[3]];
    // Rows of the mask are read as slices: its last axis must be dense.
    let mask = mask.map(|m| match m.layout().strides()[3] {
        1 => m.clone(),
        _ => m.to_contiguous(),
    });
    let blocked = mask.as_ref().map(|m| {
        (
            m.storage::<u8>(),
            m.layout().strides(),
            m.layout().start_offset(),
        )
    });
    let task_rows = rows_per_task(columns);
    scores
        .storage_mut::<f32>()
        .par_chunks_mut(task_rows * columns)
        .enumerate()
        .for_each(|(task, block)| {
            wide(
                #[inline(always)]
                || {
                    for (i, row) in block.chunks_exact_mut(columns).enumerate() {
                        let r = task * task_rows + i;
                        let (b, h, q) = (r / (heads * rows), r / rows % heads, r % rows);
                        let mask_row = blocked.map(|(data, strides, offset)| {
                            let start = offset as isize
                                + b as isize * strides[0]
                                + h as isize * strides[1]
                                + q as isize * strides[2];
                            &data[start as usize..start as usize + columns]
                        });
                        softmax_row(row, mask_row, scale);
                    }
                },
            )
        });
    scores
}

/// One row: `softmax(scale · row)` over the entries whose `blocked` byte is 0; zeros
/// if all are blocked. Every pass is a straight loop the compiler vectorises.
#[inline(always)]
fn softmax_row(row: &mut [f32], blocked: Option<&[u8]>, scale: f32) {
    match blocked {
        Some(blocked) => {
            for (x, &b) in row.iter_mut().zip(blocked) {
                *x = if b != 0 {
                    f32::NEG_INFINITY
                } else {
                    *x * scale
                };
            }
        }
        None => row.iter_mut().for_each(|x| *x *= scale),
    }
    // The plain comparison vectorises (one `max` instruction); a NaN never wins it,
    // but it makes its row's sum NaN, so a diverging model's NaN still reaches the
    // loss as in burn.
    let max = lane_fold(row, f32::NEG_INFINITY, |a, x| if x > a { x } else { a });
    if max == f32::NEG_INFINITY {
        let nan = row.iter().any(|x| x.is_nan());
        row.fill(if nan { f32::NAN } else { 0.0 });
        return;
    }
    row.iter_mut().for_each(|x| *x = exp(*x - max));
    let inverse = lane_fold(row, 0.0, |a, x| a + x).recip();
    row.iter_mut().for_each(|x| *x *= inverse);
}

/// The backward pass of [`attention`] on burn-flex; its state is `(Q, K, V, P)`.
#[derive(Debug)]
struct FusedAttention;

impl Backward<Flex, 3> for FusedAttention {
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let output_grad = grads.consume::<Flex>(&ops.node);
        let (queries, keys, values, probabilities) = ops.state;
        let [q_node, k_node, v_node] = ops.parents;
        if let Some(node) = v_node {
            let grad = Flex::float_matmul(
                Flex::float_transpose(probabilities.clone()),
                output_grad.clone(),
            );
            grads.register::<Flex>(node.id, grad);
        }
        if q_node.is_none() && k_node.is_none() {
            return;
        }
        let scale = scale(&queries);
        let probability_grad = Flex::float_matmul(output_grad, Flex::float_transpose(values));
        let score_grad = softmax_backward_rows(probability_grad, &probabilities, scale);
        if let Some(node) = q_node {
            grads.register::<Flex>(node.id, Flex::float_matmul(score_grad.clone(), keys));
        }
        if let Some(node) = k_node {
            let grad = Flex::float_matmul(Flex::float_transpose(score_grad), queries);
            grads.register::<Flex>(node.id, grad);
        }
    }
}

/// The gradient of the raw scores `QKᵀ` from that of the probabilities `P`, row by
/// row: `scale · P ⊙ (dP − Σⱼ dPⱼ·Pⱼ)`, rewriting `dP` in place. Masked entries have
/// `P = 0` and get no gradient.
fn softmax_backward_rows(
    probability_grad: FlexTensor,
    probabilities: &FlexTensor,
    scale: f32,
) -> FlexTensor {
    let mut grad = owned_contiguous(probability_grad);
    let probabilities = probabilities.to_contiguous();
    let probabilities = probabilities
        .as_slice::<f32>()
        .expect("a contiguous f32 tensor");
    let columns = grad.layout().shape()[3];
    let task_len = rows_per_task(columns) * columns;
    grad.storage_mut::<f32>()
        .par_chunks_mut(task_len)
        .zip(probabilities.par_chunks(task_len))
        .for_each(|(grads, probs)| {
            wide(
                #[inline(always)]
                || {
                    for (g, p) in grads
                        .chunks_exact_mut(columns)
                        .zip(probs.chunks_exact(columns))
                    {
                        let dot = lane_dot(g, p);
                        for (g, p) in g.iter_mut().zip(p) {
                            *g = scale * p * (*g - dot);
                        }
                    }
                },
            )
        });
    grad
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// `softmax(QKᵀ/√d)·V` written out with burn's tensor ops, as the reference.
    fn reference(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Tensor<4, Bool>) -> Tensor<4> {
        let d = q.dims()[3] as f64;
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar(d.sqrt());
        let scores = scores.mask_fill(mask.clone(), -1e9);
        let p = burn::tensor::activation::softmax(scores, 3);
        // Rows with every score masked attend to nothing.
        let empty = mask.clone().bool_not().int().sum_dim(3).equal_elem(0);
        p.mask_fill(empty.expand(mask.dims()), 0.0).matmul(v)
    }

    /// A standard-normal tensor.
    fn normal(shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    fn inputs(device: &Device) -> [Tensor<4>; 3] {
        [[2, 3, 5, 4], [2, 3, 7, 4], [2, 3, 7, 4]].map(|shape| normal(shape, device))
    }

    /// A random mask with one row (batch 1, every head, query 2) fully blocked.
    fn mask(device: &Device) -> Tensor<4, Bool> {
        let mut blocked: Vec<bool> = (0..2 * 5 * 7).map(|i| (i * 7 + 3) % 5 == 0).collect();
        blocked[7 * 5 + 2 * 7..7 * 5 + 3 * 7].fill(true);
        Tensor::<3, Bool>::from_data(TensorData::new(blocked, [2, 5, 7]), device)
            .reshape([2, 1, 5, 7])
    }

    #[test]
    fn fused_attention_equals_the_written_out_formula() {
        let device = Device::flex();
        device.seed(41);
        let [q, k, v] = inputs(&device);
        let mask = mask(&device);
        let fused = attention(q.clone(), k.clone(), v.clone(), Some(mask.clone()));
        let expected = reference(q, k, v, mask.expand([2, 3, 5, 7]));
        fused
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
    }

    /// Sampling reads broadcast keys and values (HiT's multi-query heads) at every
    /// block size of `many_rows`, and in the general path, with queries contiguous or
    /// split into heads from a `[B, t, H·d_h]` map (HiT's layers; read in place).
    #[test]
    fn sampling_reads_broadcast_keys_and_values() {
        let device = Device::flex();
        device.seed(47);
        let normal = |shape: [usize; 4]| normal(shape, &device);
        // Blocks of 64 rows (two per head), 32 and 16, wide heads; 5 rows, more than 64
        // keys, and values wider than keys take the general path.
        let cases = [
            (128, 4, 7, 4),
            (96, 16, 60, 16),
            (64, 16, 100, 16),
            (48, 4, 7, 4),
            (5, 4, 7, 4),
            (64, 4, 7, 6),
        ];
        for ((rows, width, keys, value_width), split) in
            cases.into_iter().flat_map(|c| [(c, false), (c, true)])
        {
            // A scalar product first: on a view it may make a contiguous tensor.
            let queries = match split {
                false => normal([2, 3, rows, width]).mul_scalar(3.0),
                true => normal([2, rows, 3, width]).mul_scalar(3.0).swap_dims(1, 2),
            };
            let [primitive] = primitives::<Flex, 4, 1>([&queries]).expect("burn-flex");
            assert_eq!(heads_interleaved(&primitive), split);
            let keys = normal([2, 1, keys, width]).expand([2, 3, keys, width]);
            let values = normal([2, 1, keys.dims()[2], value_width]).expand([
                2,
                3,
                keys.dims()[2],
                value_width,
            ]);
            let fused = attention(queries.clone(), keys.clone(), values.clone(), None);
            let expected = fallback(queries, keys, values, None);
            fused
                .into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
        }
    }

    /// A diverging model's NaN reaches the output (and so the loss), in both paths.
    #[test]
    fn a_nan_score_makes_its_row_nan() {
        let device = Device::flex();
        for rows in [16, 5] {
            let mut queries = vec![0.5f32; rows * 4];
            queries[4] = f32::NAN;
            let queries =
                Tensor::<4>::from_data(TensorData::new(queries, [1, 1, rows, 4]), &device);
            let keys = Tensor::<4>::ones([1, 1, 3, 4], &device);
            let out = attention(queries, keys.clone(), keys, None).into_data();
            let out = out.as_slice::<f32>().expect("f32");
            assert!(out[4..8].iter().all(|x| x.is_nan()), "{rows} rows: {out:?}");
            assert!(
                out[..4].iter().all(|x| x.is_finite()),
                "{rows} rows: {out:?}"
            );
        }
    }

    #[test]
    fn broadcast_keys_a_sliced_mask_and_untracked_queries_match_burns_attention() {
        let device = Device::flex().autodiff();
        device.seed(46);
        let normal = |shape: [usize; 4]| normal(shape, &device);
        let queries = normal([2, 3, 5, 4]);
        let (keys, values) = (
            normal([2, 1, 7, 4]).require_grad(),
            normal([2, 1, 7, 4]).require_grad(),
        );
        let weights = normal([2, 3, 5, 4]);
        // Rows 1..6 of a taller mask: a view whose storage starts one row in.
        let taller = Tensor::<4>::random([2, 1, 6, 7], Distribution::Bernoulli(0.3), &device)
            .greater_elem(0.5);
        let mask = taller.narrow(2, 1, 5).expand([2, 3, 5, 7]);
        let grads_of = |fused: bool| {
            let (k, v) = (
                keys.clone().expand([2, 3, 7, 4]),
                values.clone().expand([2, 3, 7, 4]),
            );
            let out = if fused {
                attention(queries.clone(), k, v, Some(mask.clone()))
            } else {
                fallback(queries.clone(), k, v, Some(mask.clone()))
            };
            let grads = (out.clone() * weights.clone()).sum().backward();
            assert!(queries.grad(&grads).is_none());
            [
                out.into_data(),
                keys.grad(&grads).expect("dK").into_data(),
                values.grad(&grads).expect("dV").into_data(),
            ]
        };
        for (a, b) in grads_of(true).iter().zip(&grads_of(false)) {
            a.assert_approx_eq::<f32>(b, Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn fused_gradients_equal_those_of_the_written_out_formula() {
        let device = Device::flex().autodiff();
        device.seed(42);
        let weights = Tensor::<4>::random([2, 3, 5, 4], Distribution::Normal(0.0, 1.0), &device);
        let grads_of = |fused: bool| {
            let [q, k, v] = inputs(&device).map(|t| t.require_grad());
            let mask = mask(&device);
            let out = if fused {
                attention(q.clone(), k.clone(), v.clone(), Some(mask))
            } else {
                reference(q.clone(), k.clone(), v.clone(), mask.expand([2, 3, 5, 7]))
            };
            let grads = (out * weights.clone()).sum().backward();
            [q, k, v].map(|t| t.grad(&grads).expect("a gradient").into_data())
        };
        device.seed(43);
        let fused = grads_of(true);
        device.seed(43);
        let expected = grads_of(false);
        for (a, b) in fused.iter().zip(&expected) {
            a.assert_approx_eq::<f32>(b, Tolerance::absolute(1e-5));
        }
    }
}
