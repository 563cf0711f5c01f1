//! What the operations side reads of the checker: readiness (`/readyz`,
//! the gRPC health status), cache sizes (metrics), the mode (the start-up
//! line), its parts; and the checker a reload makes from it. Nothing here
//! is on the check path.

use std::sync::{Arc, atomic::AtomicU32};

use super::{Authorization, Checker, Replicas, RequestRules};
use crate::{assertion::Asserter, directory::Directory, identity::IdentityVerifier};

/// What `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Every identity source can verify tokens (remote keys fetched).
    pub keys: bool,
    /// The database answered a ping; else why not.
    pub database: Result<(), String>,
    /// Not ready while [`Replicas::Starting`].
    pub replicas: Replicas,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.keys && self.database.is_ok() && self.replicas != Replicas::Starting
    }
}

impl Checker {
    /// This checker's caches under new rules, for a reload. With new
    /// identity sources, the settled entries go (they were verified by
    /// sources that may be gone) and so do the verified tokens (the new
    /// sources start with a cache of their own); the directory's caches stay.
    pub fn reloaded(
        &self,
        identity: Option<IdentityVerifier>,
        rules: RequestRules,
        authorization: Authorization,
    ) -> Self {
        let (identity, settled) = match identity {
            Some(identity) => (Arc::new(identity), Arc::new(self.settled.empty_like())),
            None => (self.identity.clone(), self.settled.clone()),
        };
        Self {
            identity,
            directory: self.directory.clone(),
            settled,
            rules,
            authorization,
            allows: AtomicU32::new(0),
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Whether every identity source can verify tokens (remote keys fetched).
    pub fn is_ready(&self) -> bool {
        self.identity.is_ready()
    }

    /// The signer of `x-dispatch-identity`, when configured.
    pub fn signed_identity(&self) -> Option<&Arc<Asserter>> {
        self.rules.signed_identity.as_ref()
    }

    pub fn identity(&self) -> &IdentityVerifier {
        &self.identity
    }

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

    /// Whether this checker can decide: every identity source has keys and
    /// the database answers. [`super::Live::readiness`] adds the replicas.
    pub async fn readiness(&self) -> Readiness {
        Readiness {
            keys: self.identity.is_ready(),
            database: self.directory.ping().await.map_err(|e| e.to_string()),
            replicas: Replicas::Alone,
        }
    }
}
