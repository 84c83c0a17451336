//! Images ⇄ tensors. Models see `[B, 3, H, W]` floats in [-1, 1] and `[B, 1, H, W]`
//! masks of 0/1; everything outside the models sees `image` buffers.

use burn::prelude::*;
use burn::tensor::TensorReadError;
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
pub fn tensor_to_images(tensor: Tensor<4>) -> Result<Vec<RgbImage>, TensorReadError> {
    let [batch, _, h, w] = tensor.dims();
    let data: Vec<f32> = tensor.try_into_vec_as::<f32>()?;
    let plane = h * w;
    Ok((0..batch)
        .map(|b| {
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                let at = |c: usize| to_byte(data[(b * 3 + c) * plane + i]);
                image::Rgb([at(0), at(1), at(2)])
            })
        })
        .collect())
}

/// Token grids (`side * side` codebook indices each, row-major) as a `[B, side, side]`
/// tensor.
pub fn grids_to_tensor(grids: &[&[usize]], side: usize, device: &Device) -> Tensor<3, Int> {
    let flat: Vec<i64> = grids
        .iter()
        .flat_map(|g| g.iter().map(|&t| t as i64))
        .collect();
    Tensor::from_data(TensorData::new(flat, [grids.len(), side, side]), device)
}

/// A `[B, side, side]` tensor of codebook indices as `B` row-major grids.
pub fn tensor_to_grids(indices: Tensor<3, Int>) -> Result<Vec<Vec<usize>>, TensorReadError> {
    let [batch, side, _] = indices.dims();
    let flat: Vec<i64> = indices.try_into_vec_as::<i64>()?;
    Ok(flat
        .chunks(side * side)
        .take(batch)
        .map(|chunk| chunk.iter().map(|&i| i as usize).collect())
        .collect())
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

/// Sketches as token-aligned patches, raster order: `[B, (H/p)·(W/p), p²]`, 1 on
/// strokes (dark pixels) and 0 on white, so an empty sketch is all zeros.
pub fn sketch_patches(sketches: &[GrayImage], patch: usize, device: &Device) -> Tensor<3> {
    let (w, h) = sketches
        .first()
        .map_or((0, 0), |s| (s.width() as usize, s.height() as usize));
    let (cols, rows) = (w / patch, h / patch);
    let mut data = Vec::with_capacity(sketches.len() * w * h);
    for sketch in sketches {
        for ty in 0..rows {
            for tx in 0..cols {
                for y in 0..patch {
                    for x in 0..patch {
                        let pixel =
                            sketch.get_pixel((tx * patch + x) as u32, (ty * patch + y) as u32);
                        data.push(if pixel.0[0] < 128 { 1.0f32 } else { 0.0 });
                    }
                }
            }
        }
    }
    Tensor::from_data(
        TensorData::new(data, [sketches.len(), rows * cols, patch * patch]),
        device,
    )
}

/// The most pixels a picture may have (a 10000x10000 photo), so a huge or hostile
/// file is refused before it is decoded into memory.
pub const MAX_PIXELS: u64 = 100_000_000;

/// Opens a picture, naming the file in every error.
pub fn open_image(path: &std::path::Path) -> Result<DynamicImage, super::DataError> {
    let bad = |reason: String| super::DataError::BadImage {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    decode_image(&bytes).map_err(bad)
}

/// The formats a picture may come in (by its content, whatever its name): a GIF
/// gives its first frame.
pub const READ_FORMATS: [image::ImageFormat; 6] = [
    image::ImageFormat::Png,
    image::ImageFormat::Jpeg,
    image::ImageFormat::WebP,
    image::ImageFormat::Bmp,
    image::ImageFormat::Tiff,
    image::ImageFormat::Gif,
];

/// The formats a picture is written in (by the file's extension); WebP is lossless.
pub const WRITE_FORMATS: [image::ImageFormat; 3] = [
    image::ImageFormat::Png,
    image::ImageFormat::Jpeg,
    image::ImageFormat::WebP,
];

/// Decodes a picture held in memory (one of [`READ_FORMATS`]), within
/// [`decoder_limits`] and [`MAX_PIXELS`]; `Err` says why not, never a panic (the fuzz
/// test holds it to that).
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let reader = || -> Result<_, String> {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| e.to_string())?;
        match reader.format() {
            Some(format) if READ_FORMATS.contains(&format) => Ok(reader),
            Some(other) => Err(format!(
                "{other:?} pictures are not supported (PNG, JPEG, WebP, BMP, TIFF or GIF)"
            )),
            None => Err("not a PNG, JPEG, WebP, BMP, TIFF or GIF picture".into()),
        }
    };
    // The size first, from the header: a bomb is refused before anything is decoded.
    let (w, h) = reader()?.into_dimensions().map_err(|e| e.to_string())?;
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!("{w}x{h} is larger than {MAX_PIXELS} pixels"));
    }
    let mut reader = reader()?;
    reader.limits(decoder_limits());
    reader.decode().map_err(|e| e.to_string())
}

/// What a decoder may allocate: a side of at most 50,000 pixels and 2 GiB, so a
/// small file that declares a gigantic picture is refused before memory runs out.
pub fn decoder_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(50_000);
    limits.max_image_height = Some(50_000);
    limits.max_alloc = Some(2 << 30);
    limits
}

/// Pictures of one size laid out row by row, `columns` per row (a square grid when
/// `columns` is 0).
pub fn tile(pictures: &[RgbImage], columns: usize) -> RgbImage {
    let (w, h) = pictures.first().map_or((1, 1), |p| p.dimensions());
    let columns = match columns {
        0 => (pictures.len() as f64).sqrt().ceil().max(1.0) as usize,
        c => c,
    };
    let rows = pictures.len().div_ceil(columns).max(1);
    let mut out = RgbImage::new(w * columns as u32, h * rows as u32);
    for (k, picture) in pictures.iter().enumerate() {
        let (x, y) = ((k % columns) as u32 * w, (k / columns) as u32 * h);
        image::imageops::replace(&mut out, picture, x as i64, y as i64);
    }
    out
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
        assert_eq!(back.expect("read back"), vec![img.clone(), img]);
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
