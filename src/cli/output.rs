//! Where a verb's picture goes: a PNG, JPEG or WebP path that is none of the inputs,
//! written whole or not at all.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The format of an output path (PNG, JPEG or lossless WebP), refusing a path that is
/// one of the inputs.
pub fn output_format<'a>(
    out: &Path,
    inputs: impl Iterator<Item = &'a PathBuf>,
) -> anyhow::Result<image::ImageFormat> {
    let format = image::ImageFormat::from_path(out)
        .ok()
        .filter(|f| crate::data::convert::WRITE_FORMATS.contains(f))
        .with_context(|| {
            format!(
                "{}: the output must end in .png, .jpg, .jpeg or .webp",
                out.display()
            )
        })?;
    for input in inputs {
        if same_file(input, out) {
            bail!(
                "refusing to overwrite the input {} (choose another --out)",
                input.display()
            );
        }
    }
    Ok(format)
}

/// Writes a picture through a temporary file, so a failed write leaves no half file,
/// and says so on stdout.
pub fn write_output(
    picture: &image::RgbImage,
    out: &Path,
    format: image::ImageFormat,
) -> anyhow::Result<()> {
    write_quietly(picture, out, format)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// [`write_output`] without a word on stdout (for a file beside a `--json` report,
/// whose stdout is the one JSON object).
pub fn write_quietly(
    picture: &image::RgbImage,
    out: &Path,
    format: image::ImageFormat,
) -> anyhow::Result<()> {
    let tmp = out.with_extension(format!("tmp.{}", format.extensions_str()[0]));
    picture
        .save_with_format(&tmp, format)
        .and_then(|()| std::fs::rename(&tmp, out).map_err(image::ImageError::IoError))
        .with_context(|| format!("writing {}", out.display()))
}

/// Whether two paths name the same file (the second may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
