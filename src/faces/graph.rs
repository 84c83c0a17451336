//! A converted TFLite graph run on burn: the op list `scripts/fetch-data.sh` writes
//! beside the weights (`format: tessera-tflite-graph`), executed in order on named
//! tensors. The face detector is a frozen network of a few op kinds (convolutions,
//! padding, additions, pooling, upsampling), so a small interpreter over its recorded
//! graph is exact and shorter than a hand-built copy of its 150 layers.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::module::{conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{
    ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode,
};
use serde::Deserialize;

use crate::nn::weights::{FeatureNetError, Weights};

/// The graph file's version this interpreter reads.
const FORMAT: &str = "tessera-tflite-graph 1";

/// The graph as written by the converter (fields the interpreter does not need, such
/// as recorded shapes and TFLite names, are ignored).
#[derive(Debug, Deserialize)]
pub struct GraphFile {
    pub format: String,
    pub input: Port,
    pub outputs: Vec<Port>,
    pub ops: Vec<Op>,
}

/// A named graph input or output.
#[derive(Debug, Deserialize)]
pub struct Port {
    pub name: String,
    pub shape: Vec<usize>,
}

/// One operation on NCHW tensors.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Constant padding, `(before, after)` per NCHW axis.
    Pad {
        input: String,
        pads: [[usize; 2]; 4],
        value: f32,
        output: String,
    },
    /// A convolution with explicit padding `[top, bottom, left, right]`.
    Conv2d {
        input: String,
        weight: String,
        bias: Option<String>,
        groups: usize,
        stride: [usize; 2],
        dilation: [usize; 2],
        pad: [usize; 4],
        activation: Activation,
        output: String,
    },
    Add {
        inputs: [String; 2],
        activation: Activation,
        output: String,
    },
    Relu {
        input: String,
        output: String,
    },
    /// Max pooling with explicit padding `[top, bottom, left, right]`.
    MaxPool2d {
        input: String,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 4],
        output: String,
    },
    /// Bilinear resizing with half-pixel centres (TFLite's `half_pixel_centers`).
    ResizeBilinear {
        input: String,
        size: [usize; 2],
        output: String,
    },
    /// TFLite's depth-to-space (DCR order): `out[c, b h + i, b w + j] =
    /// in[(b i + j) C + c, h, w]`.
    DepthToSpace {
        input: String,
        block_size: usize,
        output: String,
    },
    /// A reshape of the tensor taken in `permute_before` order (TFLite reshapes NHWC
    /// data); the result `[1, rows, width]` is kept as `[1, rows, width, 1]`.
    Reshape {
        input: String,
        permute_before: Option<[usize; 4]>,
        shape: [usize; 3],
        output: String,
    },
    Concat {
        inputs: Vec<String>,
        axis: usize,
        output: String,
    },
}

/// The activation fused into an op.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    None,
    Relu,
    Relu6,
}

impl Activation {
    fn apply(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Activation::None => x,
            Activation::Relu => burn::tensor::activation::relu(x),
            Activation::Relu6 => x.clamp(0.0, 6.0),
        }
    }
}

/// A loaded graph on one device.
pub struct Graph {
    file: GraphFile,
    /// Every weight tensor by name, on the device.
    weights: HashMap<String, Tensor<4>>,
    biases: HashMap<String, Tensor<1>>,
    /// For each op, the tensors it uses for the last time (freed after it).
    frees: Vec<Vec<String>>,
}

impl Graph {
    /// Reads the op list `json` and its weights `safetensors`.
    pub fn load(json: &Path, safetensors: &Path, device: &Device) -> Result<Self, FeatureNetError> {
        let damaged = |reason: String| FeatureNetError::Damaged {
            path: json.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(json)
            .map_err(|_| FeatureNetError::Missing(json.to_path_buf()))?;
        let file: GraphFile = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if file.format != FORMAT {
            return Err(damaged(format!(
                "format {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        check_wiring(&file).map_err(damaged)?;
        let stored = Weights::read(safetensors)?;
        let (mut weights, mut biases) = (HashMap::new(), HashMap::new());
        for op in &file.ops {
            if let Op::Conv2d { weight, bias, .. } = op {
                let (shape, values) = stored.get(weight)?;
                let [o, i, h, w] = shape[..] else {
                    return Err(damaged(format!("{weight} has shape {shape:?}, not 4 axes")));
                };
                weights.insert(
                    weight.clone(),
                    Tensor::from_data(TensorData::new(values.clone(), [o, i, h, w]), device),
                );
                if let Some(bias) = bias {
                    let (_, values) = stored.get(bias)?;
                    biases.insert(
                        bias.clone(),
                        Tensor::from_data(TensorData::new(values.clone(), [values.len()]), device),
                    );
                }
            }
        }
        let frees = last_uses(&file);
        Ok(Self {
            file,
            weights,
            biases,
            frees,
        })
    }

    /// The input's shape `[1, channels, height, width]`.
    pub fn input_shape(&self) -> &[usize] {
        &self.file.input.shape
    }

    /// Whether the graph has an output called `name`.
    pub fn has_output(&self, name: &str) -> bool {
        self.file.outputs.iter().any(|port| port.name == name)
    }

    /// Runs the graph on `input` and returns its outputs by name (a reshaped output
    /// `[1, rows, width]` as `[1, rows, width, 1]`).
    pub fn run(&self, input: Tensor<4>) -> HashMap<String, Tensor<4>> {
        let mut values: HashMap<String, Tensor<4>> = HashMap::new();
        values.insert(self.file.input.name.clone(), input);
        for (op, frees) in self.file.ops.iter().zip(&self.frees) {
            let (name, value) = self.step(op, &values);
            values.insert(name.to_string(), value);
            for gone in frees {
                values.remove(gone);
            }
        }
        self.file
            .outputs
            .iter()
            .filter_map(|port| values.remove_entry(&port.name))
            .collect()
    }

    /// One op: the name of its output and its value.
    fn step<'a>(&self, op: &'a Op, values: &HashMap<String, Tensor<4>>) -> (&'a str, Tensor<4>) {
        let get = |name: &String| values[name].clone();
        match op {
            Op::Pad {
                input,
                pads,
                value,
                output,
            } => (
                output,
                get(input).pad(pads.map(|[a, b]| (a, b)), PadMode::Constant(*value)),
            ),
            Op::Conv2d {
                input,
                weight,
                bias,
                groups,
                stride,
                dilation,
                pad: [top, bottom, left, right],
                activation,
                output,
            } => {
                let options = ConvOptions::new_with_padding(
                    *stride,
                    [(*top, *bottom), (*left, *right)],
                    *dilation,
                    *groups,
                );
                let bias = bias.as_ref().map(|b| self.biases[b].clone());
                let y = conv2d(get(input), self.weights[weight].clone(), bias, options);
                (output, activation.apply(y))
            }
            Op::Add {
                inputs: [a, b],
                activation,
                output,
            } => (output, activation.apply(get(a) + get(b))),
            Op::Relu { input, output } => (output, Activation::Relu.apply(get(input))),
            Op::MaxPool2d {
                input,
                kernel,
                stride,
                pad: [top, bottom, left, right],
                output,
            } => {
                // Padding by -inf so that it never wins the maximum.
                let x = get(input).pad(
                    [(*top, *bottom), (*left, *right)],
                    PadMode::Constant(f32::NEG_INFINITY),
                );
                let options = MaxPoolOptions::new(*kernel).with_stride(*stride);
                (output, max_pool2d(x, options))
            }
            Op::ResizeBilinear {
                input,
                size,
                output,
            } => {
                let options = InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size(*size);
                (output, interpolate(get(input), options))
            }
            Op::DepthToSpace {
                input,
                block_size: b,
                output,
            } => {
                let x = get(input);
                let [n, c, h, w] = x.dims();
                let co = c / (b * b);
                let y = x
                    .reshape([n, *b, *b, co, h, w])
                    .permute([0, 3, 4, 1, 5, 2])
                    .reshape([n, co, h * b, w * b]);
                (output, y)
            }
            Op::Reshape {
                input,
                permute_before,
                shape: [a, rows, width],
                output,
            } => {
                let mut x = get(input);
                if let Some(order) = permute_before {
                    x = x.permute(*order);
                }
                (output, x.reshape([*a, *rows, *width, 1]))
            }
            Op::Concat {
                inputs,
                axis,
                output,
            } => (output, Tensor::cat(inputs.iter().map(get).collect(), *axis)),
        }
    }
}

/// Checks that every op reads only tensors made before it and that every output is
/// made, so that running the graph cannot miss a tensor.
fn check_wiring(file: &GraphFile) -> Result<(), String> {
    let mut made = std::collections::HashSet::from([file.input.name.as_str()]);
    for (i, op) in file.ops.iter().enumerate() {
        if let Some(missing) = op.inputs().into_iter().find(|name| !made.contains(name)) {
            return Err(format!("op {i} reads {missing:?} before it is made"));
        }
        made.insert(op.output());
    }
    match file
        .outputs
        .iter()
        .find(|port| !made.contains(port.name.as_str()))
    {
        Some(port) => Err(format!("output {:?} is never made", port.name)),
        None => Ok(()),
    }
}

/// The names of the tensors each op uses for the last time (never a graph output).
fn last_uses(file: &GraphFile) -> Vec<Vec<String>> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, op) in file.ops.iter().enumerate() {
        for name in op.inputs() {
            last.insert(name, i);
        }
    }
    let mut frees = vec![Vec::new(); file.ops.len()];
    for (name, i) in last {
        if file.outputs.iter().all(|port| port.name != name) {
            frees[i].push(name.to_string());
        }
    }
    frees
}

impl Op {
    /// The tensor the op makes.
    fn output(&self) -> &str {
        match self {
            Op::Pad { output, .. }
            | Op::Conv2d { output, .. }
            | Op::Add { output, .. }
            | Op::Relu { output, .. }
            | Op::MaxPool2d { output, .. }
            | Op::ResizeBilinear { output, .. }
            | Op::DepthToSpace { output, .. }
            | Op::Reshape { output, .. }
            | Op::Concat { output, .. } => output,
        }
    }

    /// The tensors the op reads.
    fn inputs(&self) -> Vec<&str> {
        match self {
            Op::Pad { input, .. }
            | Op::Conv2d { input, .. }
            | Op::Relu { input, .. }
            | Op::MaxPool2d { input, .. }
            | Op::ResizeBilinear { input, .. }
            | Op::DepthToSpace { input, .. }
            | Op::Reshape { input, .. } => vec![input],
            Op::Add { inputs, .. } => inputs.iter().map(String::as_str).collect(),
            Op::Concat { inputs, .. } => inputs.iter().map(String::as_str).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_one(op: Op, input: Tensor<4>) -> Tensor<4> {
        let file = GraphFile {
            format: FORMAT.into(),
            input: Port {
                name: "x".into(),
                shape: input.dims().to_vec(),
            },
            outputs: vec![Port {
                name: "y".into(),
                shape: vec![],
            }],
            ops: vec![op],
        };
        let frees = last_uses(&file);
        let graph = Graph {
            file,
            weights: HashMap::new(),
            biases: HashMap::new(),
            frees,
        };
        graph.run(input).remove("y").expect("output")
    }

    #[test]
    fn depth_to_space_takes_channels_in_tflite_order() {
        let device = Device::flex();
        // Four channels of one pixel: the 2x2 block is channel 0 1 / 2 3.
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &device).reshape([1, 4, 1, 1]);
        let op = Op::DepthToSpace {
            input: "x".into(),
            block_size: 2,
            output: "y".into(),
        };
        let y = run_one(op, x);
        assert_eq!(y.dims(), [1, 1, 2, 2]);
        assert_eq!(
            y.try_into_vec_as::<f32>().expect("read"),
            vec![1.0, 2.0, 3.0, 4.0]
        );
    }

    #[test]
    fn max_pooling_ignores_its_padding() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([-5.0, -6.0, -7.0, -8.0], &device).reshape([1, 1, 2, 2]);
        let op = Op::MaxPool2d {
            input: "x".into(),
            kernel: [2, 2],
            stride: [2, 2],
            pad: [0, 1, 0, 1],
            output: "y".into(),
        };
        let y = run_one(op, x);
        assert_eq!(y.try_into_vec_as::<f32>().expect("read"), vec![-5.0]);
    }
}
