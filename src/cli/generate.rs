//! `tessera edit`, `repose` and `sample`: a picture in (or a seed), a picture out.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, bail};

use super::options::{EditOpts, ReposeOpts, SampleOpts};
use super::output::{output_format, write_output};
use crate::backend::BackendChoice;
use crate::data::convert::{open_image, tile};
use crate::data::poses::Pose;
use crate::engine::{EditProgress, EditRequest, FaceChoice, ReposeRequest, SampleSource};

/// Regenerates the masked part of a picture; with `--trajectory`, every stage of
/// ImageBART's refinement is written too.
pub fn edit(opts: EditOpts, models: &Path, backend: BackendChoice) -> anyhow::Result<()> {
    let out = &opts.generate.out;
    let inputs = [Some(&opts.image), Some(&opts.mask), opts.sketch.as_ref()];
    let format = output_format(out, inputs.into_iter().flatten())?;
    let image = open_image(&opts.image)?.to_rgb8();
    let mask = open_image(&opts.mask)?.to_luma8();
    let sketch = match &opts.sketch {
        Some(path) => Some(open_image(path)?.to_luma8()),
        None => None,
    };
    let mut engine = super::engine(models, backend)?;
    let request = EditRequest {
        image,
        mask,
        sketch,
        method: opts.generate.method.into(),
        sampling: opts.generate.sampling(),
        cycles: opts.cycles,
        face: if opts.no_align {
            FaceChoice::Off
        } else {
            FaceChoice::Auto
        },
    };
    if !request.mask.pixels().any(|p| p.0[0] >= 128) {
        eprintln!("the mask is empty: nothing to regenerate; the picture is written unchanged");
        return write_output(&request.image, out, format);
    }
    let result = match &opts.trajectory {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut trajectory = Trajectory::new(dir, &request.mask);
            let result = engine.edit(&request, &mut |event| trajectory.hear(event));
            eprintln!();
            if let Some(why) = trajectory.failed {
                bail!(why);
            }
            result?
        }
        None => {
            let result = engine.edit(&request, &mut token_counter);
            eprintln!();
            result?
        }
    };
    write_output(&result, out, format)
}

/// Writes each stage of a refinement into a folder and says on the terminal how much
/// the masked part moved: it settles as the refinement converges.
struct Trajectory<'a> {
    dir: &'a Path,
    mask: &'a image::GrayImage,
    previous: Option<image::RgbImage>,
    last_result: Option<image::RgbImage>,
    failed: Option<String>,
}

impl<'a> Trajectory<'a> {
    fn new(dir: &'a Path, mask: &'a image::GrayImage) -> Self {
        Self {
            dir,
            mask,
            previous: None,
            last_result: None,
            failed: None,
        }
    }

    fn hear(&mut self, event: EditProgress) -> ControlFlow<()> {
        let EditProgress::Stage {
            cycle,
            level,
            image,
        } = event
        else {
            return token_counter(event);
        };
        let mut line = format!(
            "\rcycle {cycle} level {level}: mean change in the mask {} since the last stage",
            self.change(&self.previous, &image)
        );
        if level == 0 {
            let since = self.change(&self.last_result, &image);
            line += &format!(", {since} since the last cycle's result");
        }
        eprintln!("{line}");
        let path = self.dir.join(format!("cycle{cycle}-level{level}.png"));
        let saved = image.save(&path);
        if level == 0 {
            self.last_result = Some(image.clone());
        }
        self.previous = Some(image);
        match saved {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                self.failed = Some(format!("writing {}: {err}", path.display()));
                ControlFlow::Break(())
            }
        }
    }

    /// The mean change inside the mask since `before`, or "-" for the first.
    fn change(&self, before: &Option<image::RgbImage>, now: &image::RgbImage) -> String {
        before.as_ref().map_or(String::from("-"), |b| {
            format!("{:.4}", crate::metrics::mae_masked(b, now, self.mask))
        })
    }
}

/// Regenerates a person in a new pose.
pub fn repose(opts: ReposeOpts, models: &Path, backend: BackendChoice) -> anyhow::Result<()> {
    let out = &opts.generate.out;
    let format = output_format(out, [&opts.image, &opts.pose, &opts.to].into_iter())?;
    let request = ReposeRequest {
        image: open_image(&opts.image)?.to_rgb8(),
        pose: Pose::read(&opts.pose)?,
        new_pose: Pose::read(&opts.to)?,
        method: opts.generate.method.into(),
        sampling: opts.generate.sampling(),
    };
    let mut engine = super::engine(models, backend)?;
    let result = engine.repose(&request, &mut token_counter);
    eprintln!();
    write_output(&result?, out, format)
}

/// Samples a grid of new pictures, or a strip between two seeds' faces.
pub fn sample(opts: SampleOpts, models: &Path, backend: BackendChoice) -> anyhow::Result<()> {
    let format = output_format(&opts.out, std::iter::empty())?;
    let n = opts.n as usize;
    let mut engine = super::engine(models, backend)?;
    let (pictures, columns) = match (SampleSource::from(opts.model), opts.interpolate_to) {
        (SampleSource::Gan(arch), Some(to)) => {
            (engine.interpolate(arch, (opts.seed, to), n)?, n.max(2))
        }
        (SampleSource::Imagebart, _) => (engine.sample_imagebart(opts.seed, n, opts.top_k)?, 0),
        (source, None) => (engine.sample(source, opts.seed, n)?, 0),
    };
    write_output(&tile(&pictures, columns), &opts.out, format)
}

/// Shows a job's token count on the terminal.
fn token_counter(event: EditProgress) -> ControlFlow<()> {
    if let EditProgress::Token { done, total, .. } = event {
        eprint!("\rtoken {done}/{total}");
    }
    ControlFlow::Continue(())
}
