//! Invalidation that is linearizable with cache loads.
//!
//! A cache load reads the database, then inserts; an admin write commits,
//! then invalidates. If the load read before the commit and inserts after
//! the invalidation, the old value would be served until it expires (a
//! removed key valid for minutes). Checking "was I overtaken?" before the
//! insert leaves a window between the check and the insert; so instead the
//! check is made when a value is *read*:
//!
//! - a global generation counts invalidations;
//! - a load notes the generation when it begins and stores it with the
//!   value ([`Stamped`]);
//! - an invalidation bumps the generation and stamps the key with the new
//!   value;
//! - a value is served only if its load began at or after its key's stamp
//!   as it was when the lookup began ([`Freshness::required`]).
//!
//! After `invalidate(k)` returns, every value of `k` whose load began before
//! it is refused on read, wherever it is (in the cache, or still on its way
//! in), so nothing stale is served; a load that began after it read the
//! committed write. Reads of other keys are unaffected, and a read costs one
//! more hash lookup (of the stamp, usually absent).
//!
//! Stamps are kept long enough to outlive the values they judge; should one
//! be evicted early (many invalidations), its generation becomes a floor
//! below which no value is served at all (safe, merely a reload).

use std::{
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use moka::notification::RemovalCause;

/// A cached value and the generation at which its load began.
#[derive(Debug, Clone)]
pub struct Stamped<V> {
    pub value: V,
    pub started: u64,
}

/// One cache's invalidation stamps.
#[derive(Clone)]
pub struct Freshness<K: Hash + Eq + Send + Sync + 'static> {
    generation: Arc<AtomicU64>,
    stamps: moka::sync::Cache<K, u64>,
    /// Values whose load began below this are never served.
    floor: Arc<AtomicU64>,
}

impl<K: Hash + Eq + Send + Sync + Clone + 'static> Freshness<K> {
    /// `lifetime`: the longest a value of the cache may be kept (its TTL);
    /// stamps are kept longer than that.
    pub fn new(capacity: u64, lifetime: Duration) -> Self {
        let floor = Arc::new(AtomicU64::new(0));
        let raise = floor.clone();
        let stamps = moka::sync::Cache::builder()
            .max_capacity(capacity.max(1024))
            .time_to_live(lifetime * 2 + Duration::from_secs(60))
            .eviction_listener(move |_, stamp: u64, cause| {
                if cause != RemovalCause::Replaced && cause != RemovalCause::Explicit {
                    raise.fetch_max(stamp, Ordering::SeqCst);
                }
            })
            .build();
        Self {
            generation: Arc::new(AtomicU64::new(0)),
            stamps,
            floor,
        }
    }

    /// To be called when a load begins, before it reads anything.
    pub fn start(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Every value of `key` whose load began before now is stale. Returns
    /// the stamp (values loaded from it on are fresh).
    pub fn invalidate(&self, key: K) -> u64 {
        let stamp = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.stamps.insert(key, stamp);
        stamp
    }

    /// Every value of every key whose load began before now is stale.
    pub fn invalidate_all(&self) {
        let stamp = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(stamp, Ordering::SeqCst);
    }

    /// The generation a value of `key` must have been loaded at (or after)
    /// to be served to a lookup that begins now. An invalidation that comes
    /// later, while the lookup runs, may be ordered after the lookup, so it
    /// does not raise what that lookup accepts: each lookup is served by the
    /// first load begun after it began, at the latest, and never starves.
    pub fn required<Q>(&self, key: &Q) -> u64
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let stamp = self.stamps.get(key).unwrap_or(0);
        stamp.max(self.floor.load(Ordering::SeqCst))
    }

    /// Whether a value of `key` whose load began at `started` may be served
    /// to a lookup that begins now.
    pub fn is_fresh(&self, key: &K, started: u64) -> bool {
        self.is_fresh_by::<K, _>(started, || key)
    }

    /// [`Freshness::is_fresh`] with the key made only when needed: a load
    /// begun after every invalidation so far needs no stamp lookup, the
    /// common case, since admin writes are rare.
    pub fn is_fresh_by<Q, R>(&self, started: u64, key: impl FnOnce() -> R) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        R: std::borrow::Borrow<Q>,
    {
        started >= self.start() || started >= self.required(key().borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_loaded_before_an_invalidation_is_stale() {
        let fresh = Freshness::new(10, Duration::from_secs(60));
        let old = fresh.start();
        assert!(fresh.is_fresh(&"a", old));
        fresh.invalidate("a");
        assert!(!fresh.is_fresh(&"a", old), "began before the invalidation");
        assert!(fresh.is_fresh(&"b", old), "another key");
        let new = fresh.start();
        assert!(fresh.is_fresh(&"a", new), "began after it");
        fresh.invalidate_all();
        assert!(!fresh.is_fresh(&"b", new));
        assert!(fresh.is_fresh(&"b", fresh.start()));
    }
}
