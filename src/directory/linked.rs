//! The groups linked to identity sources, read whole (a small table) and
//! kept like any other cached entry: one value, invalidated by the admin
//! writes that change a linked group, and by other replicas' (`NOTIFY`).

use std::sync::Arc;

use moka::future::Cache;

use super::{CacheSettings, FreshCache, count_evictions};
use crate::{
    policy::rbac::LinkedGroups,
    store::{CheckStore, StoreError},
};

#[derive(Clone)]
pub struct LinkedCache {
    store: Arc<dyn CheckStore>,
    cache: FreshCache<(), Arc<LinkedGroups>>,
}

impl LinkedCache {
    pub fn new(store: Arc<dyn CheckStore>, settings: CacheSettings) -> Self {
        let cache = Cache::builder()
            .max_capacity(1)
            .time_to_live(settings.ttl)
            .eviction_listener(count_evictions("linked_groups"))
            .build();
        Self {
            store,
            cache: FreshCache::new("linked_groups", cache, &settings),
        }
    }

    pub async fn get(&self) -> Result<Arc<LinkedGroups>, Arc<StoreError>> {
        self.cache
            .get(&(), || async {
                Ok(Arc::new(self.store.linked_groups().await?))
            })
            .await
    }

    /// After this returns, no lookup serves the linked groups read before.
    pub(super) async fn invalidate(&self) {
        self.cache.invalidate(()).await;
    }

    pub(super) fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}
