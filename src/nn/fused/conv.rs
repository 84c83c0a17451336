//! 2-D convolution for sampling on the CPU, a band of output rows at a time.
//!
//! burn-flex convolves by writing the whole im2col matrix of a picture (`[C_in·k², H·W]`:
//! 19 MB for the 128 px tokenizer's 32-channel layers) and multiplying it in one GEMM;
//! the matrix leaves the caches before the product reads it back, and the layer runs at
//! about a third of the GEMM's rate. Here the matrix is made for a band of output rows
//! small enough to stay in the second-level cache, and multiplied there, by the same
//! GEMM crate burn-flex uses (BENCHMARKS.md, "Convolutions in bands"). The bands of a
//! picture are independent tasks. In an autodiff graph (training) the forward pass is
//! the same and the backward pass burn's own (burn-flex's `conv2d_x_backward` and
//! `conv2d_weight_backward`, what burn's autodiff convolution calls). Convolutions other
//! than a plain one (groups, dilation, "same" padding, no bias under autodiff) take
//! burn's.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use rayon::prelude::*;

use super::{accumulate_product, primitives, record};

/// Bytes of a band's im2col matrix: about half the second-level cache, so the matrix
/// is still there when the product reads it (the probe of BENCHMARKS.md ran at the same
/// rate from 256 to 1,024 positions a band for 32-128 channels).
const BAND_BYTES: usize = 512 << 10;

/// `conv.forward(x)`, in bands when `x` is a burn-flex tensor, plain or in an autodiff
/// graph.
///
/// # Shapes
/// - x: `[B, C_in, H, W]`
/// - output: `[B, C_out, H_out, W_out]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(geometry) = Geometry::of(conv, x.dims()) else {
        return conv.forward(x);
    };
    let weight = conv.weight.val();
    let bias = conv.bias.as_ref().map(|b| b.val());
    if let Some([x, weight]) = primitives::<Flex, 4, 2>([&x, &weight]) {
        let bias = match bias.as_ref().map(|b| primitives::<Flex, 1, 1>([b])) {
            None => None,
            Some(Some([bias])) => Some(bias),
            Some(None) => return conv.forward(Tensor::from_primitive::<Flex>(x)),
        };
        return Tensor::from_primitive::<Flex>(forward(x, weight, bias, &geometry));
    }
    let tracked = primitives::<Autodiff<Flex>, 4, 2>([&x, &weight]);
    let tracked_bias = bias
        .as_ref()
        .and_then(|b| primitives::<Autodiff<Flex>, 1, 1>([b]));
    match (tracked, tracked_bias) {
        (Some([x, weight]), Some([bias])) => {
            let op = FusedConv(geometry.options(conv));
            let output = record(op, [x, weight, bias], |[x, weight, bias]| {
                let output = forward(x.clone(), weight.clone(), Some(bias.clone()), &geometry);
                (output, (x, weight, bias))
            });
            Tensor::from_primitive::<Autodiff<Flex>>(output)
        }
        _ => conv.forward(x),
    }
}

/// The backward pass of a convolution with bias on burn-flex: burn-flex's own, given
/// the input, weight and bias the forward pass saw.
#[derive(Debug)]
struct FusedConv(ConvOptions<2>);

impl Backward<Flex, 3> for FusedConv {
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, bias) = ops.state;
        let [x_node, weight_node, bias_node] = ops.parents;
        let options = self.0;
        if let Some(node) = x_node {
            let x_grad =
                Flex::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<Flex>(node.id, x_grad);
        }
        if let Some(node) = weight_node {
            let weight_grad =
                Flex::conv2d_weight_backward(x.clone(), weight, grad.clone(), options);
            grads.register::<Flex>(node.id, weight_grad);
        }
        if let Some(node) = bias_node {
            grads.register::<Flex>(node.id, Flex::conv2d_bias_backward(x, bias, grad));
        }
    }
}

/// The sizes of one convolution.
struct Geometry {
    batch: usize,
    channels: [usize; 2],
    input: [usize; 2],
    output: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    /// Zeros before the first row and column.
    pad: [usize; 2],
    /// Zeros after the last row and column.
    pad_end: [usize; 2],
}

impl Geometry {
    /// The convolution's sizes on an input of `dims`, if it is one this module does:
    /// one group, no dilation, explicit (or no) padding, a non-empty input, output and
    /// kernel.
    fn of(conv: &Conv2d, [batch, c_in, h, w]: [usize; 4]) -> Option<Self> {
        let [c_out, c_in_weight, kh, kw] = conv.weight.dims();
        let (top, left, bottom, right) = match conv.padding {
            PaddingConfig2d::Explicit(top, left, bottom, right) => (top, left, bottom, right),
            PaddingConfig2d::Valid => (0, 0, 0, 0),
            PaddingConfig2d::Same => return None,
        };
        let [sh, sw] = conv.stride;
        let plain = conv.groups == 1 && conv.dilation == [1, 1] && c_in_weight == c_in;
        let empty = [h, w, c_out, kh, kw, sh, sw].contains(&0);
        if !plain || empty || h + top + bottom < kh || w + left + right < kw {
            return None;
        }
        Some(Self {
            batch,
            channels: [c_in, c_out],
            input: [h, w],
            output: [
                (h + top + bottom - kh) / sh + 1,
                (w + left + right - kw) / sw + 1,
            ],
            kernel: [kh, kw],
            stride: [sh, sw],
            pad: [top, left],
            pad_end: [bottom, right],
        })
    }

    /// burn's options for `conv` of this geometry, which its backward functions take.
    fn options(&self, conv: &Conv2d) -> ConvOptions<2> {
        let ([top, left], [bottom, right]) = (self.pad, self.pad_end);
        ConvOptions::new_with_padding(
            self.stride,
            [(top, bottom), (left, right)],
            conv.dilation,
            conv.groups,
        )
    }

    /// Rows of the im2col matrix: one per input channel and kernel position.
    fn depth(&self) -> usize {
        self.channels[0] * self.kernel[0] * self.kernel[1]
    }

    /// Output rows per band: as many as keep its im2col within [`BAND_BYTES`], at least one.
    fn band_rows(&self) -> usize {
        let positions = BAND_BYTES / (std::mem::size_of::<f32>() * self.depth());
        (positions / self.output[1]).clamp(1, self.output[0])
    }
}

/// The convolution of contiguous copies of the inputs, band by band.
fn forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    g: &Geometry,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let bias = bias.map(|b| b.to_contiguous());
    let x = x.as_slice::<f32>().expect("contiguous");
    let weight = weight.as_slice::<f32>().expect("contiguous");
    let bias = bias
        .as_ref()
        .map(|b| b.as_slice::<f32>().expect("contiguous"));
    let [_, c_out] = g.channels;
    let [ho, wo] = g.output;
    let mut output = vec![0.0f32; g.batch * c_out * ho * wo];
    let bands = ho.div_ceil(g.band_rows());
    let tasks = g.batch * bands;
    // Too few bands for every thread (the coarse levels): the product itself in parallel.
    let parallelism = if tasks < rayon::current_num_threads() {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let out = SharedOutput(output.as_mut_ptr());
    (0..tasks)
        .into_par_iter()
        .for_each_init(Vec::new, |columns, task| {
            let (picture, band) = (task / bands, task % bands);
            // SAFETY: `output` holds every picture's band and outlives the loop, and each
            // (picture, band) is one task.
            unsafe {
                one_band(
                    g,
                    (x, weight, bias),
                    out,
                    (picture, band),
                    columns,
                    parallelism,
                )
            }
        });
    FlexTensor::from_data(TensorData::new(output, [g.batch, c_out, ho, wo]))
}

/// Band `band` of picture `picture`: its im2col into `columns`, then its product into
/// `out`.
///
/// # Safety
/// `out` must hold `[B, C_out, H_out, W_out]` values, and no other thread may write
/// this band (rows `first..first + rows` of every channel of this picture) meanwhile.
unsafe fn one_band(
    g: &Geometry,
    (x, weight, bias): (&[f32], &[f32], Option<&[f32]>),
    out: SharedOutput,
    (picture, band): (usize, usize),
    columns: &mut Vec<f32>,
    parallelism: gemm::Parallelism,
) {
    let ([c_in, c_out], [h, w], [ho, wo]) = (g.channels, g.input, g.output);
    let band_rows = g.band_rows();
    let first = band * band_rows;
    let rows = band_rows.min(ho - first);
    let input = &x[picture * c_in * h * w..(picture + 1) * c_in * h * w];
    im2col(input, g, first, rows, columns);
    let plane = ho * wo;
    // SAFETY: as the caller guarantees; the band starts inside the picture's output.
    unsafe {
        let at = out.at(picture * c_out * plane + first * wo);
        let sizes = (c_out, rows * wo, g.depth());
        band_product(at, plane, (weight, bias), columns, sizes, parallelism);
    }
}

/// The output buffer, written by disjoint bands from several threads.
#[derive(Clone, Copy)]
struct SharedOutput(*mut f32);
// SAFETY: every task writes only its own band of the buffer (see `one_band`).
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// The buffer from `offset` on (a method, so a closure captures the whole wrapper
    /// and not its raw pointer).
    ///
    /// # Safety
    /// `offset` must lie within the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: as the caller guarantees.
        unsafe { self.0.add(offset) }
    }
}

/// The band's im2col matrix into `columns`: `[C_in·kh·kw, rows·W_out]`, zeros where
/// the kernel reads the padding. Every value is written, so the buffer is reused
/// between bands as it is.
fn im2col(input: &[f32], g: &Geometry, first: usize, rows: usize, columns: &mut Vec<f32>) {
    let ([h, w], [_, wo]) = (g.input, g.output);
    let ([kh, kw], [sh, sw], [top, left]) = (g.kernel, g.stride, g.pad);
    let n = rows * wo;
    columns.resize(g.depth() * n, 0.0);
    for (c, plane) in input.chunks_exact(h * w).enumerate() {
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &mut columns[((c * kh + ky) * kw + kx) * n..][..n];
                for (r, out) in row.chunks_exact_mut(wo).enumerate() {
                    let y = ((first + r) * sh + ky).checked_sub(top).filter(|&y| y < h);
                    match y {
                        Some(y) => {
                            gather(&plane[y * w..][..w], out, kx as isize - left as isize, sw)
                        }
                        None => out.fill(0.0),
                    }
                }
            }
        }
    }
}

/// `out[i] = line[i·stride + offset]`, zero where that falls outside `line`.
#[inline]
fn gather(line: &[f32], out: &mut [f32], offset: isize, stride: usize) {
    // The outputs whose input index falls inside the line: `lo..hi`.
    let lo = ((-offset).max(0) as usize).div_ceil(stride).min(out.len());
    let hi = ((line.len() as isize - offset).max(0) as usize)
        .div_ceil(stride)
        .clamp(lo, out.len());
    out[..lo].fill(0.0);
    out[hi..].fill(0.0);
    if lo == hi {
        return;
    }
    let start = (lo as isize * stride as isize + offset) as usize;
    if stride == 1 {
        out[lo..hi].copy_from_slice(&line[start..start + (hi - lo)]);
    } else {
        for (o, &v) in out[lo..hi]
            .iter_mut()
            .zip(line[start..].iter().step_by(stride))
        {
            *o = v;
        }
    }
}

/// `out[c, j] = bias[c] + Σ_k weight[c, k]·columns[k, j]` for the `(C_out, n, K)` band,
/// `out` rows `stride` apart.
///
/// # Safety
/// `out` must be valid for writes of `C_out` rows of `n` values, `stride` apart.
unsafe fn band_product(
    out: *mut f32,
    stride: usize,
    (weight, bias): (&[f32], Option<&[f32]>),
    columns: &[f32],
    (c_out, n, depth): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    for c in 0..c_out {
        let value = bias.map_or(0.0, |b| b[c]);
        // SAFETY: row `c` of the band lies within what the caller guarantees.
        unsafe { std::slice::from_raw_parts_mut(out.add(c * stride), n) }.fill(value);
    }
    // SAFETY: `weight` is `[C_out, K]`, `columns` `[K, n]`, both contiguous; `out` as
    // the caller guarantees.
    unsafe { accumulate_product(out, stride, weight, columns, (c_out, depth, n), parallelism) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    /// One convolution to compare: channels, kernel, stride, padding, input `[B, H, W]`.
    struct Case {
        channels: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: PaddingConfig2d,
        input: [usize; 3],
    }

    impl Case {
        fn new(channels: [usize; 2], kernel: [usize; 2], stride: [usize; 2]) -> Self {
            let padding = PaddingConfig2d::Explicit(1, 1, 1, 1);
            let input = [1, 20, 17];
            Case {
                channels,
                kernel,
                stride,
                padding,
                input,
            }
        }

        fn padding(self, padding: PaddingConfig2d) -> Self {
            Case { padding, ..self }
        }

        fn input(self, input: [usize; 3]) -> Self {
            Case { input, ..self }
        }

        /// Ours against burn's on random input (`transposed`: a non-contiguous view).
        fn check(&self, bias: bool, transposed: bool, device: &Device) {
            let conv = Conv2dConfig::new(self.channels, self.kernel)
                .with_stride(self.stride)
                .with_padding(self.padding.clone())
                .with_bias(bias)
                .init(device);
            let [b, h, w] = self.input;
            let normal = Distribution::Normal(0.0, 1.0);
            let x = match transposed {
                false => Tensor::<4>::random([b, self.channels[0], h, w], normal, device),
                true => {
                    Tensor::<4>::random([b, self.channels[0], w, h], normal, device).swap_dims(2, 3)
                }
            };
            let (ours, theirs) = (conv2d(&conv, x.clone()), conv.forward(x));
            let what = format!("{:?} {:?} {:?}", self.kernel, self.stride, self.padding);
            assert_eq!(ours.dims(), theirs.dims(), "{what}");
            let error = (ours - theirs).abs().max().into_scalar::<f32>();
            assert!(error < 1e-4, "{what}: off by {error}");
        }
    }

    /// The banded convolution against burn's: square and oblong kernels and strides,
    /// padding on one side, wider than the kernel, or none, kernels reaching past the
    /// input into the padding, batches, bands of one row, several and a ragged last,
    /// strided views.
    #[test]
    fn banded_convolution_is_burns_convolution() {
        let device = Device::flex();
        device.seed(4);
        let cases = [
            Case::new([3, 8], [3, 3], [1, 1]).input([2, 37, 20]),
            Case::new([8, 16], [3, 3], [2, 2]).input([1, 64, 33]),
            Case::new([16, 8], [3, 3], [2, 2]).input([3, 33, 18]),
            Case::new([5, 7], [1, 1], [1, 1]).padding(PaddingConfig2d::Valid),
            Case::new([5, 7], [1, 1], [3, 3]).padding(PaddingConfig2d::Valid),
            Case::new([4, 6], [4, 4], [2, 2]).padding(PaddingConfig2d::Explicit(1, 2, 0, 1)),
            Case::new([6, 4], [5, 5], [1, 1])
                .padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .input([1, 600, 302]),
            Case::new([4, 4], [1, 7], [1, 1]).padding(PaddingConfig2d::Explicit(0, 3, 0, 3)),
            Case::new([4, 4], [7, 1], [1, 1]).padding(PaddingConfig2d::Explicit(3, 0, 3, 0)),
            Case::new([4, 5], [3, 3], [2, 1]),
            Case::new([4, 5], [2, 2], [1, 1]).padding(PaddingConfig2d::Explicit(3, 0, 4, 1)),
            Case::new([3, 3], [3, 3], [1, 1]).input([1, 2, 2]),
            Case::new([4, 4], [3, 3], [1, 1])
                .padding(PaddingConfig2d::Valid)
                .input([1, 3, 4]),
        ];
        for case in &cases {
            for (bias, transposed) in [(true, false), (false, true)] {
                case.check(bias, transposed, &device);
            }
        }
    }

    /// A picture of one band on more threads than bands: the product itself parallel.
    #[test]
    fn one_band_on_many_threads_is_burns_convolution() {
        let device = Device::flex();
        device.seed(6);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("a pool");
        pool.install(|| {
            Case::new([64, 64], [3, 3], [1, 1])
                .input([1, 8, 8])
                .check(true, false, &device)
        });
    }

    /// Under autodiff: the same output and the same gradients of the input, the weight
    /// and the bias as burn's convolution (a weighted sum as the loss, so every output position carries
    /// a different gradient), strided and padded on one side. Each path gets a graph of
    /// its own, from the same numbers.
    #[test]
    fn training_convolution_has_burns_gradients() {
        let device = Device::flex().autodiff();
        device.seed(9);
        let normal = Distribution::Normal(0.0, 1.0);
        for (stride, padding) in [
            ([1, 1], PaddingConfig2d::Explicit(1, 1, 1, 1)),
            ([2, 2], PaddingConfig2d::Explicit(1, 0, 1, 1)),
        ] {
            let conv = Conv2dConfig::new([5, 6], [3, 3])
                .with_stride(stride)
                .with_padding(padding)
                .init(&device);
            // Drawn here, not lazily on the first path's first use.
            let _ = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
            let input = Tensor::<4>::random([2, 5, 13, 11], normal, &device).into_data();
            let gradients = |fused: bool| {
                let x = Tensor::<4>::from_data(input.clone(), &device).require_grad();
                let conv = conv.clone();
                let output = match fused {
                    true => conv2d(&conv, x.clone()),
                    false => conv.forward(x.clone()),
                };
                device.seed(1);
                let weights = Tensor::<4>::random(output.dims(), normal, &device);
                let values = output.clone().inner().flatten::<1>(0, 3);
                let grads = (output * weights).sum().backward();
                let flat = |t: Option<Tensor<4>>| t.expect("a gradient").flatten::<1>(0, 3);
                let bias = conv.bias.as_ref().expect("a bias").val();
                [
                    values,
                    flat(x.grad(&grads)),
                    flat(conv.weight.val().grad(&grads)),
                    bias.grad(&grads).expect("a gradient"),
                ]
            };
            let (ours, theirs) = (gradients(true), gradients(false));
            let names = ["output", "x", "weight", "bias"];
            for (what, (a, b)) in names.iter().zip(ours.into_iter().zip(theirs)) {
                let error = (a - b).abs().max().into_scalar::<f32>();
                assert!(error < 1e-4, "{stride:?} {what}: off by {error}");
            }
        }
    }

    /// What this module does not do (same padding, groups, dilation) still convolves.
    #[test]
    fn other_convolutions_take_burns_path() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([1, 4, 9, 9], &device);
        for conv in [
            Conv2dConfig::new([4, 4], [3, 3]).with_padding(PaddingConfig2d::Same),
            Conv2dConfig::new([4, 4], [3, 3]).with_groups(2),
            Conv2dConfig::new([4, 4], [3, 3]).with_dilation([2, 2]),
        ] {
            let conv = conv.init(&device);
            let (ours, theirs) = (conv2d(&conv, x.clone()), conv.forward(x.clone()));
            assert_eq!(ours.into_data(), theirs.into_data());
        }
    }
}
