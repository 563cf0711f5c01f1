//! Each subject's memberships and roles, as the policy reads them.

use std::sync::Arc;

use moka::future::Cache;

use super::{CacheSettings, FreshCache, count_evictions};
use crate::{
    domain::SubjectRef,
    policy::rbac::{Grants, GroupGrant},
    shared::Shared,
    store::{CheckStore, StoreError},
};

/// What each subject may do, by subject, with concurrent misses coalesced.
/// Entries live `ttl` (changes made by another process take effect within
/// it); the admin API in this process invalidates exactly the subjects a
/// write touches.
#[derive(Clone)]
pub struct GrantsCache {
    pub(super) store: Arc<dyn CheckStore>,
    pub(super) cache: FreshCache<SubjectRef, Arc<Grants>>,
    /// Subjects with equal grants share one copy (`crate::shared`).
    shared: Arc<Shared<Grants>>,
}

impl GrantsCache {
    pub fn new(store: Arc<dyn CheckStore>, settings: CacheSettings) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_live(settings.ttl)
            .eviction_listener(count_evictions("grants"))
            .build();
        Self {
            store,
            cache: FreshCache::new("grants", cache, &settings),
            shared: Arc::default(),
        }
    }

    /// To be read before [`GrantsCache::get`], for [`GrantsCache::is_fresh`].
    pub fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Whether the grants a `get` begun at `generation` returned have not
    /// been invalidated since.
    pub fn is_fresh(&self, subject: SubjectRef, generation: u64) -> bool {
        self.cache.is_fresh(&subject, generation)
    }

    /// Drops grants that the check's per-token cache now holds.
    pub async fn release(&self, subject: SubjectRef) {
        self.cache.release(&subject).await;
    }

    pub async fn get(&self, subject: SubjectRef) -> Result<Arc<Grants>, Arc<StoreError>> {
        self.cache
            .get(&subject, || async {
                Ok(self.shared.intern(self.store.grants(subject).await?))
            })
            .await
    }

    pub async fn invalidate(&self, subject: SubjectRef) {
        self.cache.invalidate(subject).await;
    }

    /// `own` plus the linked groups an identity proves, shared with every
    /// subject whose grants come to the same (a team's members, often).
    pub fn with_linked(&self, own: &Grants, linked: Vec<Arc<GroupGrant>>) -> Arc<Grants> {
        self.shared.intern(own.with_linked(linked))
    }
}
