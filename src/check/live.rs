//! The checker in force. A configuration reload builds a new [`Checker`]
//! over the same caches and swaps it in whole: a check in flight finishes
//! with the checker it began with, the next one starts with the new, and no
//! check ever sees half of each.
//!
//! Beside it, whether those caches follow the other replicas' writes: that
//! outlives any one checker, as the caches do.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::{Checker, Readiness};

pub struct Live {
    checker: ArcSwap<Checker>,
    replicas: watch::Sender<Replicas>,
}

/// Whether this replica hears the writes of the others (PostgreSQL only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// One SQLite file: every write goes through this process.
    Alone,
    /// Not listening yet. Whatever is cached now is forgotten once it
    /// listens (a change may have gone unheard), so the replica does not
    /// call itself ready: a cache filled now would not be served.
    Starting,
    Following,
    /// The feed was lost: caches are emptied at every retry until it is
    /// back, so checks are decided on the database (still ready).
    Lost,
}

impl Replicas {
    pub fn describe(self) -> &'static str {
        match self {
            Replicas::Alone => "alone",
            Replicas::Starting => "not following the other replicas yet",
            Replicas::Following => "following",
            Replicas::Lost => "change feed lost: caches emptied until it is back",
        }
    }
}

impl Live {
    pub fn new(checker: Checker, replicas: Replicas) -> Self {
        Self {
            checker: ArcSwap::from_pointee(checker),
            replicas: watch::Sender::new(replicas),
        }
    }

    /// The checker for one check (or one admin call): kept by the caller
    /// until it is done, whatever is swapped in meanwhile.
    pub fn current(&self) -> Arc<Checker> {
        self.checker.load_full()
    }

    pub fn replace(&self, checker: Checker) {
        self.checker.store(Arc::new(checker));
    }

    pub fn set_replicas(&self, state: Replicas) {
        self.replicas.send_replace(state);
    }

    pub fn replicas(&self) -> watch::Receiver<Replicas> {
        self.replicas.subscribe()
    }

    /// Whether checks can be decided (`/readyz`, the gRPC health status).
    pub async fn readiness(&self) -> Readiness {
        let mut readiness = self.current().readiness().await;
        readiness.replicas = *self.replicas.borrow();
        readiness
    }
}
