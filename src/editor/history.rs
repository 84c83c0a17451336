//! Undo and redo of every change to the document, within a memory budget: the oldest
//! states go first, so a large picture keeps fewer steps rather than slowing down.

use super::document::Document;

/// Past and undone states of a document.
#[derive(Debug, Default)]
pub struct History {
    undo: Vec<Document>,
    redo: Vec<Document>,
    budget: usize,
}

/// Memory the history may hold by default.
const DEFAULT_BUDGET: usize = 512 << 20;

impl History {
    /// An empty history holding at most `budget` bytes of past states.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// An empty history with the default budget (512 MiB).
    pub fn new() -> Self {
        Self::with_budget(DEFAULT_BUDGET)
    }

    /// Remembers `before`, the state a change is about to leave; clears the redo list.
    pub fn record(&mut self, before: &Document) {
        self.undo.push(before.clone());
        self.redo.clear();
        let mut held: usize = self.undo.iter().map(Document::bytes).sum();
        while held > self.budget && self.undo.len() > 1 {
            held -= self.undo.remove(0).bytes();
        }
    }

    /// Steps back: returns the previous state and keeps `current` for redo.
    pub fn undo(&mut self, current: &Document) -> Option<Document> {
        let previous = self.undo.pop()?;
        self.redo.push(current.clone());
        Some(previous)
    }

    /// Steps forward again after an undo.
    pub fn redo(&mut self, current: &Document) -> Option<Document> {
        let next = self.redo.pop()?;
        self.undo.push(current.clone());
        Some(next)
    }

    /// Whether there is something to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Whether there is something to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// The newest `keep` undo states (oldest first) and every redo state, for a
    /// project file.
    pub fn steps(&self, keep: usize) -> (Vec<Document>, Vec<Document>) {
        let from = self.undo.len().saturating_sub(keep);
        (self.undo[from..].to_vec(), self.redo.clone())
    }

    /// A history holding the states of a project file, with the default budget.
    pub fn from_steps(undo: Vec<Document>, redo: Vec<Document>) -> Self {
        Self {
            undo,
            redo,
            ..Self::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::document::Layer;
    use image::RgbImage;

    #[test]
    fn undo_and_redo_walk_the_states_and_a_new_change_clears_redo() {
        let mut history = History::new();
        let mut doc = Document::new(RgbImage::new(8, 8));
        let blank = doc.clone();
        history.record(&doc);
        doc.paint(Layer::Mask, (1.0, 1.0), (6.0, 6.0), 1.0, false);
        let painted = doc.clone();
        doc = history.undo(&doc).expect("undo");
        assert_eq!(doc, blank);
        doc = history.redo(&doc).expect("redo");
        assert_eq!(doc, painted);
        doc = history.undo(&doc).expect("undo");
        history.record(&doc);
        assert!(!history.can_redo());
    }

    #[test]
    fn the_budget_drops_the_oldest_states() {
        let doc = Document::new(RgbImage::new(10, 10)); // 500 bytes
        let mut history = History::with_budget(1200);
        for _ in 0..5 {
            history.record(&doc);
        }
        assert_eq!(history.undo.len(), 2);
    }
}
