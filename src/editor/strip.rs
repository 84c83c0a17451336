//! A row of thumbnails under the canvas: the candidates of the last job (a click puts
//! one in the picture) or the stages of ImageBART's refinement (its trajectory).

use eframe::egui;
use image::RgbImage;

/// Thumbnails with labels; one may be marked as chosen.
#[derive(Default)]
pub struct Strip {
    images: Vec<RgbImage>,
    labels: Vec<String>,
    /// Uploaded when first shown.
    textures: Vec<Option<egui::TextureHandle>>,
    chosen: Option<usize>,
}

/// Height of a thumbnail, in points.
const HEIGHT: f32 = 72.0;

impl Strip {
    /// A strip of `images` labelled `labels`, with `chosen` marked.
    pub fn new(images: Vec<RgbImage>, labels: Vec<String>, chosen: Option<usize>) -> Self {
        Self {
            textures: vec![None; images.len()],
            images,
            labels,
            chosen,
        }
    }

    /// Thumbnails held.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether the strip is empty.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The picture of thumbnail `k`.
    pub fn image(&self, k: usize) -> &RgbImage {
        &self.images[k]
    }

    /// Marks thumbnail `k` as chosen.
    pub fn choose(&mut self, k: usize) {
        self.chosen = Some(k);
    }

    /// Shows the strip after `title`; returns the thumbnail clicked, if another than
    /// the chosen one.
    pub fn ui(&mut self, ui: &mut egui::Ui, title: &str) -> Option<usize> {
        let mut clicked = None;
        egui::ScrollArea::horizontal().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(title);
                let items = self
                    .images
                    .iter()
                    .zip(&self.labels)
                    .zip(self.textures.iter_mut());
                for (k, ((image, label), texture)) in items.enumerate() {
                    let texture = texture.get_or_insert_with(|| {
                        let size = [image.width() as usize, image.height() as usize];
                        let pixels = egui::ColorImage::from_rgb(size, image.as_raw());
                        ui.ctx()
                            .load_texture(format!("{title}-{k}"), pixels, Default::default())
                    });
                    let width = HEIGHT * image.width() as f32 / image.height().max(1) as f32;
                    let button = egui::Button::image_and_text(
                        egui::Image::new((texture.id(), egui::vec2(width, HEIGHT))),
                        label.as_str(),
                    )
                    .selected(self.chosen == Some(k));
                    if ui.add(button).clicked() && self.chosen != Some(k) {
                        clicked = Some(k);
                    }
                }
            });
        });
        clicked
    }
}
