//! The checker in force. A configuration reload builds a new [`Checker`]
//! over the same caches and swaps it in whole: a check in flight finishes
//! with the checker it began with, the next one starts with the new, and no
//! check ever sees half of each.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Checker;

pub struct Live(ArcSwap<Checker>);

impl Live {
    pub fn new(checker: Checker) -> Self {
        Self(ArcSwap::from_pointee(checker))
    }

    /// The checker for one check (or one admin call): kept by the caller
    /// until it is done, whatever is swapped in meanwhile.
    pub fn current(&self) -> Arc<Checker> {
        self.0.load_full()
    }

    pub fn replace(&self, checker: Checker) {
        self.0.store(Arc::new(checker));
    }
}
