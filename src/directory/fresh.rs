//! The cache every directory cache is built on: moka, with the
//! generation each value's load began at ([`crate::freshness`]), so that
//! nothing loaded before an invalidation is served after it.

use std::{
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use moka::future::Cache;

use super::CacheSettings;
use crate::{
    freshness::{Freshness, Stamped},
    store::StoreError,
    telemetry::metrics,
};

/// Lookups that find a value loaded before their key's last invalidation
/// load again; the load they then join began after they did (so it is
/// accepted), unless moka coalesced them with an older one: a few attempts
/// always suffice. The bound only guards against a bug looping forever.
const ATTEMPTS: usize = 8;

/// A moka cache whose values carry the generation their load began at,
/// with its keys' invalidation stamps: what each cache here is built on.
#[derive(Clone)]
pub(super) struct FreshCache<K: Hash + Eq + Send + Sync + 'static, V> {
    /// For metrics: `users`, `grants`, `orgs`, `service_accounts`.
    name: &'static str,
    pub(super) cache: Cache<K, Stamped<V>>,
    pub(super) freshness: Freshness<K>,
}

impl<K, V> FreshCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn new(
        name: &'static str,
        cache: Cache<K, Stamped<V>>,
        settings: &CacheSettings,
    ) -> Self {
        Self {
            name,
            cache,
            freshness: Freshness::new(settings.capacity, settings.ttl.max(settings.negative_ttl)),
        }
    }

    /// `try_get_with` (concurrent misses coalesced, errors not cached) that
    /// never serves a value whose load began before its key's last
    /// invalidation.
    pub(super) async fn get<Fut>(
        &self,
        key: &K,
        load: impl Fn() -> Fut,
    ) -> Result<V, Arc<StoreError>>
    where
        Fut: Future<Output = Result<V, StoreError>>,
    {
        // What this lookup accepts is fixed when it begins: loads begun after
        // every invalidation so far, or else after its key's stamp.
        let latest = self.freshness.start();
        let mut required = None;
        // A lookup that waited on another's load counts as a hit.
        let loaded = AtomicBool::new(false);
        for _ in 0..ATTEMPTS {
            let entry = self
                .cache
                .try_get_with_by_ref(key, async {
                    loaded.store(true, Ordering::Relaxed);
                    let started = self.freshness.start();
                    // A child span of the check (exported traces): the
                    // cold path's database query.
                    let query = tracing::Instrument::instrument(
                        load(),
                        tracing::debug_span!("database", cache = self.name),
                    );
                    Ok(Stamped {
                        value: query.await?,
                        started,
                    })
                })
                .await?;
            if entry.started >= latest
                || entry.started >= *required.get_or_insert_with(|| self.freshness.required(key))
            {
                metrics::cache_lookup(self.name, !loaded.load(Ordering::Relaxed));
                return Ok(entry.value);
            }
            // Read before an invalidation of this key: load again.
            self.cache.invalidate(key).await;
        }
        Err(Arc::new(StoreError::Superseded))
    }

    /// To be read before a lookup begins; see [`FreshCache::is_fresh`].
    pub(super) fn generation(&self) -> u64 {
        self.freshness.start()
    }

    /// Whether a value of `key` that a lookup begun at `generation`
    /// returned may still be served: what a cache built on this one (the
    /// check's per-token answers) asks instead of looking up again.
    pub(super) fn is_fresh(&self, key: &K, generation: u64) -> bool {
        self.freshness.is_fresh(key, generation)
    }

    /// Drops `key`'s value to save memory (a cache built on this one holds
    /// it now). Not an invalidation: the value is not stale.
    pub(super) async fn release(&self, key: &K) {
        self.cache.invalidate(key).await;
    }

    /// After this returns, no lookup serves a value of `key` loaded before.
    pub(super) async fn invalidate(&self, key: K) {
        self.freshness.invalidate(key.clone());
        self.cache.invalidate(&key).await;
    }

    pub(super) fn entries(&self) -> (&'static str, u64) {
        (self.name, self.cache.entry_count())
    }

    /// After this returns, no lookup serves any value loaded before.
    pub(super) fn invalidate_all(&self) {
        self.freshness.invalidate_all();
        self.cache.invalidate_all();
    }
}

/// Counts the entries `cache` pushes out for capacity (metrics).
pub(super) fn count_evictions<K, V>(
    cache: &'static str,
) -> impl Fn(Arc<K>, V, moka::notification::RemovalCause) + Send + Sync + 'static {
    move |_, _, cause| {
        if cause == moka::notification::RemovalCause::Size {
            metrics::cache_evicted(cache);
        }
    }
}
