//! The caches in front of the store: the check path's only way to users,
//! grants, service accounts and organizations.
//!
//! **Invariant:** after `invalidate` returns, no lookup returns what the
//! database held before the write that prompted it, not even a value a
//! concurrent load read just before the write and inserts just after:
//! every value carries the generation at which its load began, and is
//! served only if that is not older than its key's last invalidation
//! ([`crate::freshness`]).

use std::{
    hash::Hash,
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache};

use crate::{freshness::Stamped, store::StoreError};

/// The caches a check reads, beside the token cache inside `identity`.
#[derive(Clone)]
pub struct Directory {
    pub users: UserCache,
    pub grants: GrantsCache,
    /// Also read by the service-account token source.
    pub accounts: ServiceAccountCache,
    pub orgs: OrgCache,
    /// Groups linked to identity sources, matched against each identity.
    pub linked: LinkedCache,
}

impl Directory {
    /// Entries held by each cache, for the metrics.
    pub fn entries(&self) -> [(&'static str, u64); 4] {
        [
            self.users.cache.entries(),
            self.grants.cache.entries(),
            self.orgs.cache.entries(),
            self.accounts.cache.entries(),
        ]
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.users.store.ping().await
    }

    /// Every cached entry is stale: what another replica changed while
    /// nobody listened is unknown (`iam/replicas.rs`).
    pub fn invalidate_all(&self) {
        self.users.cache.invalidate_all();
        self.grants.cache.invalidate_all();
        self.accounts.cache.invalidate_all();
        self.orgs.cache.invalidate_all();
        self.linked.invalidate_all();
    }

    /// The linked groups changed: whoever an identity source says belongs
    /// to them gained or lost roles. Who that is shows only when their
    /// identities are checked, so every subject's grants are judged stale
    /// (read again on each subject's next check). Linked groups change
    /// rarely, by an admin's hand.
    pub async fn forget_linked(&self) {
        self.linked.invalidate().await;
        self.grants.cache.invalidate_all();
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub capacity: u64,
    /// How long a found user is served from memory. Changes made by another
    /// process (the CLI) take effect within this time.
    pub ttl: Duration,
    /// How long "no such user" is remembered, so a flood of valid tokens of
    /// unknown subjects does not become a flood of queries.
    pub negative_ttl: Duration,
}

/// Found entries live `ttl`, "no such thing" entries `negative_ttl`.
struct PositiveOrNegative(CacheSettings);

impl<K, T> Expiry<K, Stamped<Option<T>>> for PositiveOrNegative {
    fn expire_after_create(
        &self,
        _key: &K,
        entry: &Stamped<Option<T>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match entry.value {
            Some(_) => self.0.ttl,
            None => self.0.negative_ttl,
        })
    }
}

impl CacheSettings {
    /// Found entries `ttl`, "no such thing" entries `negative_ttl`.
    fn positive_or_negative<K, T>(&self, name: &'static str) -> FreshCache<K, Option<T>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        T: Clone + Send + Sync + 'static,
    {
        let cache = Cache::builder()
            .max_capacity(self.capacity)
            .expire_after(PositiveOrNegative(*self))
            .eviction_listener(count_evictions(name))
            .build();
        FreshCache::new(name, cache, self)
    }
}

mod accounts;
mod fresh;
mod grants;
mod linked;
mod orgs;
mod users;

pub use accounts::ServiceAccountCache;
use fresh::{FreshCache, count_evictions};
pub use grants::GrantsCache;
pub use linked::LinkedCache;
pub use orgs::OrgCache;
pub use users::UserCache;

#[cfg(test)]
mod stress;

#[cfg(test)]
mod tests;
