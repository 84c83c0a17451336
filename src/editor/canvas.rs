//! The canvas widget: the picture fitted to the panel, zoom (wheel) and pan (middle
//! drag), the mask as a tinted overlay, the sketch strokes and pose skeletons on top,
//! and the brush outline under the pointer. It changes nothing itself: it reports
//! strokes (and drags) in picture pixels and the editor applies them.

use eframe::egui;
use egui::{
    Color32, ColorImage, PointerButton, Pos2, Rect, Sense, Stroke, TextureHandle, TextureOptions,
    Vec2,
};
use image::{GrayImage, RgbImage};

use super::gpu::CanvasPaint;
use super::{face_marks, skeleton};
use crate::data::PicturePoint;
use crate::data::poses::Pose;
use crate::faces::Face;
use eframe::egui_wgpu;
use std::sync::Arc;

/// What the pointer did on the canvas this frame, in picture pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StrokeEvent {
    /// Paint (or with `erase`, clear) a segment.
    Segment {
        from: PicturePoint,
        to: PicturePoint,
        erase: bool,
    },
    /// The button was released: the stroke is complete.
    End,
}

/// The pictures the canvas shows, each with a revision that changes whenever it does
/// (picture, mask, sketch), so only what changed is uploaded again.
pub struct Pictures<'a> {
    pub image: &'a RgbImage,
    pub mask: &'a GrayImage,
    pub sketch: &'a GrayImage,
    pub revisions: [u64; 3],
}

/// Zoom, pan, the uploaded textures and the stroke in progress.
#[derive(Default)]
pub struct CanvasView {
    /// 1 = the picture fits the panel.
    zoom: f32,
    /// Offset of the picture's centre from the panel's, in points.
    pan: Vec2,
    /// The uploaded picture, mask tint and sketch, with the revision each shows.
    textures: [Option<(u64, TextureHandle)>; 3],
    /// Last pointer position of the stroke in progress, in picture pixels.
    last: Option<PicturePoint>,
    /// Where the picture was shown in the last frame, in points.
    shown: Option<Rect>,
    /// Whether the canvas is drawn by the WGSL shader (`gpu`), and the revisions and
    /// size its textures hold.
    gpu: bool,
    gpu_revisions: [Option<u64>; 3],
    gpu_size: [u32; 2],
}

/// What the canvas draws over the pictures.
pub struct Overlay<'a> {
    /// Show the mask tint.
    pub mask: bool,
    /// The brush radius in picture pixels, for its outline (none: no outline).
    pub brush: Option<f32>,
    /// Skeletons with their colours.
    pub skeletons: Vec<(&'a Pose, Color32)>,
    /// Located faces with their colours.
    pub faces: Vec<(&'a Face, Color32)>,
}

/// Mask tint: a translucent red, as most inpainting tools show it.
const MASK_TINT: [u8; 4] = [230, 40, 60, 120];

impl CanvasView {
    /// Draws with the WGSL shader from now on (when the renderer is wgpu).
    pub fn use_gpu(&mut self, gpu: bool) {
        self.gpu = gpu;
    }

    /// Points per picture pixel as last shown (to turn a reach in points into pixels).
    pub fn scale(&self, picture_width: u32) -> f32 {
        self.shown
            .map_or(1.0, |shown| shown.width() / picture_width.max(1) as f32)
            .max(f32::EPSILON)
    }

    /// Where picture pixel `(x, y)` was shown in the last frame, in points.
    pub fn to_screen(&self, picture_width: u32, (x, y): PicturePoint) -> Pos2 {
        let origin = self.shown.map_or(Pos2::ZERO, |shown| shown.min);
        origin + Vec2::new(x, y) * self.scale(picture_width)
    }

    /// Shows the pictures and what lies over them, and returns this frame's strokes.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        pictures: &Pictures<'_>,
        overlay: &Overlay<'_>,
    ) -> Vec<StrokeEvent> {
        if self.zoom <= 0.0 {
            self.zoom = 1.0;
        }
        let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::click_and_drag());
        let (w, h) = pictures.image.dimensions();
        let fit = (response.rect.width() / w as f32).min(response.rect.height() / h as f32);
        if response.dragged_by(PointerButton::Middle) {
            self.pan += response.drag_delta();
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                let old = self.zoom;
                self.zoom = (self.zoom * (scroll * 0.002).exp()).clamp(0.1, 64.0);
                // Zoom about the pointer: the picture point under it stays put.
                if let Some(pointer) = response.hover_pos() {
                    let centre = response.rect.center() + self.pan;
                    self.pan += (pointer - centre) * (1.0 - self.zoom / old);
                }
            }
        }
        let scale = fit * self.zoom;
        let shown = Rect::from_center_size(
            response.rect.center() + self.pan,
            Vec2::new(w as f32, h as f32) * scale,
        );
        self.shown = Some(shown);
        let to_picture = |p: Pos2| ((p.x - shown.min.x) / scale, (p.y - shown.min.y) / scale);
        let pointer = response.hover_pos().or(response.interact_pointer_pos());
        if self.gpu {
            let brush = match (pointer, overlay.brush) {
                (Some(p), Some(radius)) => {
                    let (x, y) = to_picture(p);
                    [x, y, radius]
                }
                _ => [0.0, 0.0, -1.0],
            };
            let paint = self.gpu_paint(pictures, overlay.mask, brush, scale);
            painter.add(egui_wgpu::Callback::new_paint_callback(shown, paint));
        } else {
            self.paint_textures(ui.ctx(), &painter, pictures, shown, overlay.mask);
            if let (Some(pointer), Some(brush)) = (pointer, overlay.brush) {
                painter.circle_stroke(pointer, brush * scale, Stroke::new(1.0, Color32::WHITE));
                painter.circle_stroke(
                    pointer,
                    brush * scale + 1.0,
                    Stroke::new(1.0, Color32::BLACK),
                );
            }
        }
        let to_screen = |x: f32, y: f32| shown.min + Vec2::new(x, y) * scale;
        for (pose, color) in &overlay.skeletons {
            painter.extend(skeleton::shapes(pose, to_screen, *color));
        }
        for (face, color) in &overlay.faces {
            painter.extend(face_marks::shapes(face, to_screen, *color));
        }
        self.strokes(ui, &response, to_picture)
    }

    /// The CPU path: the layers as egui textures, one image each.
    fn paint_textures(
        &mut self,
        ctx: &egui::Context,
        painter: &egui::Painter,
        pictures: &Pictures<'_>,
        shown: Rect,
        show_mask: bool,
    ) {
        let textures = self.textures(ctx, pictures);
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        painter.image(textures[0].id(), shown, uv, Color32::WHITE);
        if show_mask {
            painter.image(textures[1].id(), shown, uv, Color32::WHITE);
        }
        painter.image(textures[2].id(), shown, uv, Color32::WHITE);
    }

    /// The GPU path's frame: the layers whose revision changed (all of them after a
    /// change of size), the tint, the brush and the scale.
    fn gpu_paint(
        &mut self,
        pictures: &Pictures<'_>,
        show_mask: bool,
        brush: [f32; 3],
        scale: f32,
    ) -> CanvasPaint {
        let size = [pictures.image.width(), pictures.image.height()];
        if size != self.gpu_size {
            self.gpu_revisions = [None; 3];
            self.gpu_size = size;
        }
        let mut uploads = Vec::new();
        for layer in 0..3 {
            let revision = pictures.revisions[layer];
            if self.gpu_revisions[layer] == Some(revision) {
                continue;
            }
            self.gpu_revisions[layer] = Some(revision);
            let bytes = match layer {
                0 => pictures
                    .image
                    .pixels()
                    .flat_map(|p| [p.0[0], p.0[1], p.0[2], 255])
                    .collect(),
                1 => pictures.mask.as_raw().clone(),
                _ => pictures.sketch.as_raw().clone(),
            };
            uploads.push((layer, Arc::new(bytes)));
        }
        let [r, g, b, a] = MASK_TINT;
        CanvasPaint {
            size,
            uploads,
            tint: [r, g, b, a].map(|c| c as f32 / 255.0),
            brush,
            scale,
            show_mask,
        }
    }

    /// Turns the pointer into segments: the primary button paints, the secondary one
    /// erases; the stroke continues when the pointer leaves the canvas.
    fn strokes(
        &mut self,
        ui: &egui::Ui,
        response: &egui::Response,
        to_picture: impl Fn(Pos2) -> PicturePoint,
    ) -> Vec<StrokeEvent> {
        let (primary, secondary) =
            ui.input(|i| (i.pointer.primary_down(), i.pointer.secondary_down()));
        match response.interact_pointer_pos() {
            Some(pointer) if primary || secondary => {
                let to = to_picture(pointer);
                let from = self.last.replace(to).unwrap_or(to);
                vec![StrokeEvent::Segment {
                    from,
                    to,
                    erase: secondary && !primary,
                }]
            }
            _ => match self.last.take() {
                Some(_) => vec![StrokeEvent::End],
                None => Vec::new(),
            },
        }
    }

    /// The picture, mask tint and sketch textures; each is uploaded again when its
    /// revision changed.
    fn textures(&mut self, ctx: &egui::Context, pictures: &Pictures<'_>) -> [TextureHandle; 3] {
        let (w, h) = pictures.image.dimensions();
        let size = [w as usize, h as usize];
        let overlay = |on: &dyn Fn(u8) -> bool, color: [u8; 4], layer: &GrayImage| {
            let rgba: Vec<u8> = layer
                .pixels()
                .flat_map(|p| if on(p.0[0]) { color } else { [0; 4] })
                .collect();
            ColorImage::from_rgba_unmultiplied(size, &rgba)
        };
        let build = |layer: usize| match layer {
            0 => ColorImage::from_rgb(size, pictures.image.as_raw()),
            1 => overlay(&|v| v >= 128, MASK_TINT, pictures.mask),
            _ => overlay(&|v| v < 128, [20, 20, 20, 255], pictures.sketch),
        };
        std::array::from_fn(|layer| {
            let revision = pictures.revisions[layer];
            match &self.textures[layer] {
                Some((shown, texture)) if *shown == revision => texture.clone(),
                _ => {
                    let name = ["canvas-image", "canvas-mask", "canvas-sketch"][layer];
                    let texture = ctx.load_texture(name, build(layer), TextureOptions::NEAREST);
                    self.textures[layer] = Some((revision, texture.clone()));
                    texture
                }
            }
        })
    }
}
