//! What the operations side reads of the checker: readiness (`/readyz`,
//! the gRPC health status), cache sizes (metrics), the mode (the start-up
//! line). Nothing here is on the check path.

use super::{Authorization, Checker};

/// What `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Every identity source can verify tokens (remote keys fetched).
    pub keys: bool,
    /// The database answered a ping; else why not.
    pub database: Result<(), String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.keys && self.database.is_ok()
    }
}

impl Checker {
    /// `rbac` or `registered`, for the start-up line.
    pub fn mode(&self) -> &'static str {
        match self.authorization {
            Authorization::Registered => "registered",
            Authorization::Rbac(_) => "rbac",
        }
    }

    /// Entries held by each cache of the check path, for the metrics.
    pub fn cache_entries(&self) -> Vec<(&'static str, u64)> {
        let mut entries = vec![
            ("settled", self.settled.entry_count() as u64),
            ("tokens", self.identity.cached_tokens()),
        ];
        entries.extend(self.directory.entries());
        entries
    }

    /// Whether checks can be decided: every identity source has keys and
    /// the database answers (`/readyz`, the gRPC health status).
    pub async fn readiness(&self) -> Readiness {
        Readiness {
            keys: self.identity.is_ready(),
            database: self.directory.ping().await.map_err(|e| e.to_string()),
        }
    }
}
