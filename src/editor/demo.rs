//! The scripted run behind `tessera gui --demo`: load a mask and a sketch, regenerate,
//! take a screenshot of the window and close. It shows on a machine without a person
//! (Xvfb) that the real editor works, and logs how long frames took while the job ran.

use std::path::PathBuf;
use std::time::Instant;

use eframe::egui;
use image::GrayImage;

/// Where a scripted run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Generating,
    /// Frames left before the screenshot, so the result is painted.
    Settle(u32),
    Shot,
}

/// A scripted run and its frame-time log.
pub struct Demo {
    mask: GrayImage,
    sketch: Option<GrayImage>,
    screenshot: PathBuf,
    stage: Stage,
    /// Seconds between frames while the job ran.
    frame_times: Vec<f64>,
    last_frame: Option<Instant>,
    /// When the window opened.
    opened: Instant,
}

/// How long the script waits before it generates.
const GLANCE: std::time::Duration = std::time::Duration::from_millis(1500);

/// What the demo asks the editor to do this frame.
pub enum DemoAction {
    /// Nothing.
    Wait,
    /// Paint this mask and sketch, then generate.
    Edit(GrayImage, Option<GrayImage>),
    /// Hide the mask tint, so the screenshot shows the result.
    HideMask,
}

impl Demo {
    /// A run that edits with `mask` (and `sketch`) and saves the window to `screenshot`.
    pub fn new(mask: GrayImage, sketch: Option<GrayImage>, screenshot: PathBuf) -> Self {
        Self {
            mask,
            sketch,
            screenshot,
            stage: Stage::Start,
            frame_times: Vec::new(),
            last_frame: None,
            opened: Instant::now(),
        }
    }

    /// Advances the script by one frame; `busy` says whether the edit still runs.
    pub fn frame(&mut self, ctx: &egui::Context, busy: bool) -> DemoAction {
        let now = Instant::now();
        if busy && let Some(last) = self.last_frame {
            self.frame_times.push((now - last).as_secs_f64());
        }
        self.last_frame = Some(now);
        ctx.request_repaint();
        match self.stage {
            // A person looks at the picture before they generate: the script waits as
            // long as a short glance, which is when the models load in the background.
            Stage::Start if self.opened.elapsed() < GLANCE => {}
            Stage::Start => {
                self.stage = Stage::Generating;
                return DemoAction::Edit(self.mask.clone(), self.sketch.clone());
            }
            Stage::Generating if !busy => {
                self.report();
                self.stage = Stage::Settle(5);
                return DemoAction::HideMask;
            }
            Stage::Settle(0) => {
                self.stage = Stage::Shot;
                let path = self.screenshot.clone();
                let closer = ctx.clone();
                ctx.request_screenshot(move |shot| {
                    save(&shot, &path);
                    closer.send_viewport_cmd(egui::ViewportCommand::Close);
                });
            }
            Stage::Settle(n) => self.stage = Stage::Settle(n - 1),
            Stage::Generating | Stage::Shot => {}
        }
        DemoAction::Wait
    }

    /// Logs the frame times seen while the job ran.
    fn report(&self) {
        let mut times = self.frame_times.clone();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| {
            times
                .get(((times.len() as f64 - 1.0) * q) as usize)
                .copied()
        };
        tracing::info!(
            "frames while the edit ran: {} over {:.2} s, median {:.1} ms, 95th percentile {:.1} ms, worst {:.1} ms",
            times.len(),
            times.iter().sum::<f64>(),
            1e3 * at(0.5).unwrap_or(f64::NAN),
            1e3 * at(0.95).unwrap_or(f64::NAN),
            1e3 * at(1.0).unwrap_or(f64::NAN),
        );
    }
}

fn save(shot: &egui::ColorImage, path: &std::path::Path) {
    let [w, h] = shot.size;
    let rgba: Vec<u8> = shot.pixels.iter().flat_map(|c| c.to_array()).collect();
    match image::RgbaImage::from_raw(w as u32, h as u32, rgba).map(|img| img.save(path)) {
        Some(Ok(())) => tracing::info!("screenshot written to {}", path.display()),
        Some(Err(err)) => tracing::error!("cannot write the screenshot {}: {err}", path.display()),
        None => tracing::error!("the screenshot had an unexpected size"),
    }
}
