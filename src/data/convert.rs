//! Images ⇄ tensors. Models see `[B, 3, H, W]` floats in [-1, 1] and `[B, 1, H, W]`
//! masks of 0/1; everything outside the models sees `image` buffers.

use burn::prelude::*;
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, RgbImage};

/// Stacks same-sized RGB images into a `[B, 3, H, W]` tensor in [-1, 1].
pub fn images_to_tensor(images: &[RgbImage], device: &Device) -> Tensor<4> {
    let (w, h) = images.first().map_or((0, 0), |img| img.dimensions());
    let (w, h) = (w as usize, h as usize);
    let mut data = Vec::with_capacity(images.len() * 3 * h * w);
    for img in images {
        for c in 0..3 {
            data.extend(img.pixels().map(|p| p.0[c] as f32 / 127.5 - 1.0));
        }
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, h, w]), device)
}

/// Splits a `[B, 3, H, W]` tensor in [-1, 1] into RGB images (values clamped, rounded).
pub fn tensor_to_images(tensor: Tensor<4>) -> Vec<RgbImage> {
    let [batch, _, h, w] = tensor.dims();
    let data: Vec<f32> = tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .unwrap_or_default();
    let plane = h * w;
    (0..batch)
        .map(|b| {
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                let at = |c: usize| to_byte(data[(b * 3 + c) * plane + i]);
                image::Rgb([at(0), at(1), at(2)])
            })
        })
        .collect()
}

fn to_byte(v: f32) -> u8 {
    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// Stacks same-sized masks into a `[B, 1, H, W]` tensor: 1 where the pixel is ≥ 128.
pub fn masks_to_tensor(masks: &[GrayImage], device: &Device) -> Tensor<4> {
    let (w, h) = masks.first().map_or((0, 0), |m| m.dimensions());
    let data: Vec<f32> = masks
        .iter()
        .flat_map(|m| m.pixels().map(|p| if p.0[0] >= 128 { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_data(
        TensorData::new(data, [masks.len(), 1, h as usize, w as usize]),
        device,
    )
}

/// The largest centred square of an image, resized to `size` (Lanczos).
pub fn center_square(image: &DynamicImage, size: u32) -> RgbImage {
    let (w, h) = (image.width(), image.height());
    let side = w.min(h);
    let square = image
        .crop_imm((w - side) / 2, (h - side) / 2, side, side)
        .to_rgb8();
    if side == size {
        square
    } else {
        image::imageops::resize(&square, size, size, FilterType::Lanczos3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_through_tensors() {
        let device = Device::flex();
        let img = RgbImage::from_fn(5, 4, |x, y| {
            image::Rgb([(x * 50) as u8, (y * 60) as u8, 255])
        });
        let back = tensor_to_images(images_to_tensor(&[img.clone(), img.clone()], &device));
        assert_eq!(back, vec![img.clone(), img]);
    }

    #[test]
    fn center_square_keeps_the_middle() {
        let img = RgbImage::from_fn(30, 10, |x, _| {
            image::Rgb([if (10..20).contains(&x) { 200 } else { 0 }, 0, 0])
        });
        let square = center_square(&DynamicImage::ImageRgb8(img), 10);
        assert!(square.pixels().all(|p| p.0[0] == 200));
    }
}
