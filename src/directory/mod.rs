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
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache};

use crate::{
    domain::{Login, OrgName, Principal, ServiceAccountName, SubjectRef},
    freshness::{Freshness, Stamped},
    policy::rbac::{Grants, GroupGrant},
    shared::Shared,
    store::{CheckStore, ServiceAccount, StoreError, User, UserRef},
    telemetry::metrics,
};

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

/// Lookups that find a value loaded before their key's last invalidation
/// load again; the load they then join began after they did (so it is
/// accepted), unless moka coalesced them with an older one: a few attempts
/// always suffice. The bound only guards against a bug looping forever.
const ATTEMPTS: usize = 8;

/// A moka cache whose values carry the generation their load began at,
/// with its keys' invalidation stamps: what each cache below is built on.
#[derive(Clone)]
struct FreshCache<K: Hash + Eq + Send + Sync + 'static, V> {
    /// For metrics: `users`, `grants`, `orgs`, `service_accounts`.
    name: &'static str,
    cache: Cache<K, Stamped<V>>,
    freshness: Freshness<K>,
}

impl<K, V> FreshCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(name: &'static str, cache: Cache<K, Stamped<V>>, settings: &CacheSettings) -> Self {
        Self {
            name,
            cache,
            freshness: Freshness::new(settings.capacity, settings.ttl.max(settings.negative_ttl)),
        }
    }

    /// `try_get_with` (concurrent misses coalesced, errors not cached) that
    /// never serves a value whose load began before its key's last
    /// invalidation.
    async fn get<Fut>(&self, key: &K, load: impl Fn() -> Fut) -> Result<V, Arc<StoreError>>
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
    fn generation(&self) -> u64 {
        self.freshness.start()
    }

    /// Whether a value of `key` that a lookup begun at `generation`
    /// returned may still be served: what a cache built on this one (the
    /// check's per-token answers) asks instead of looking up again.
    fn is_fresh(&self, key: &K, generation: u64) -> bool {
        self.freshness.is_fresh(key, generation)
    }

    /// Drops `key`'s value to save memory (a cache built on this one holds
    /// it now). Not an invalidation: the value is not stale.
    async fn release(&self, key: &K) {
        self.cache.invalidate(key).await;
    }

    /// After this returns, no lookup serves a value of `key` loaded before.
    async fn invalidate(&self, key: K) {
        self.freshness.invalidate(key.clone());
        self.cache.invalidate(&key).await;
    }

    fn entries(&self) -> (&'static str, u64) {
        (self.name, self.cache.entry_count())
    }

    /// After this returns, no lookup serves any value loaded before.
    fn invalidate_all(&self) {
        self.freshness.invalidate_all();
        self.cache.invalidate_all();
    }
}

/// Counts the entries `cache` pushes out for capacity (metrics).
fn count_evictions<K, V>(
    cache: &'static str,
) -> impl Fn(Arc<K>, V, moka::notification::RemovalCause) + Send + Sync + 'static {
    move |_, _, cause| {
        if cause == moka::notification::RemovalCause::Size {
            metrics::cache_evicted(cache);
        }
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

type Entry = Option<Arc<User>>;

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

/// Users by principal, positive and negative entries, with concurrent misses
/// for one principal coalesced into a single query. Errors are not cached:
/// the next check asks the database again.
#[derive(Clone)]
pub struct UserCache {
    store: Arc<dyn CheckStore>,
    cache: FreshCache<Arc<Principal>, Entry>,
}

impl UserCache {
    pub fn new(store: Arc<dyn CheckStore>, settings: CacheSettings) -> Self {
        Self {
            store,
            cache: settings.positive_or_negative("users"),
        }
    }

    /// Writes a changed login back and forgets the stale entry.
    pub async fn update_login(&self, user: &User, login: &Login) -> Result<User, StoreError> {
        let updated = self
            .store
            .update_login(&UserRef::Id(user.id), login)
            .await?;
        self.invalidate(user).await;
        Ok(updated)
    }

    /// Forgets one user: the next check reads the database.
    pub async fn invalidate(&self, user: &User) {
        self.invalidate_principal(Principal {
            issuer: user.issuer.clone(),
            subject: user.subject.clone(),
        })
        .await;
    }

    /// [`UserCache::invalidate`] by the identity alone (another replica's
    /// change reports no more).
    pub async fn invalidate_principal(&self, principal: Principal) {
        self.cache.invalidate(Arc::new(principal)).await;
    }

    /// To be read before [`UserCache::find`], for [`UserCache::is_fresh`].
    pub fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Whether `user`, returned by a `find` begun at `generation`, has not
    /// been invalidated since. Its issuer and subject are the principal it
    /// was found by (and cached under).
    pub fn is_fresh(&self, user: &User, generation: u64) -> bool {
        self.cache
            .freshness
            .is_fresh_by::<Principal, _>(generation, || Principal {
                issuer: user.issuer.clone(),
                subject: user.subject.clone(),
            })
    }

    /// Drops a found user that the check's per-token cache now holds.
    pub async fn release(&self, principal: &Arc<Principal>) {
        self.cache.release(principal).await;
    }

    pub async fn find(&self, principal: &Arc<Principal>) -> Result<Entry, Arc<StoreError>> {
        self.cache
            .get(principal, || async {
                let user = self
                    .store
                    .find_by_identity(&principal.issuer, &principal.subject)
                    .await?;
                Ok(user.map(Arc::new))
            })
            .await
    }
}

/// What each subject may do, by subject, with concurrent misses coalesced.
/// Entries live `ttl` (changes made by another process take effect within
/// it); the admin API in this process invalidates exactly the subjects a
/// write touches.
#[derive(Clone)]
pub struct GrantsCache {
    store: Arc<dyn CheckStore>,
    cache: FreshCache<SubjectRef, Arc<Grants>>,
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

/// Whether each organization exists (`Some(())`), asked only when a global
/// role decides in an organization the subject is not a member of.
/// Invalidated by the admin API when an organization is created or deleted.
#[derive(Clone)]
pub struct OrgCache {
    store: Arc<dyn CheckStore>,
    cache: FreshCache<OrgName, Option<()>>,
}

impl OrgCache {
    pub fn new(store: Arc<dyn CheckStore>, settings: CacheSettings) -> Self {
        Self {
            store,
            cache: settings.positive_or_negative("orgs"),
        }
    }

    pub async fn exists(&self, org: &OrgName) -> Result<bool, Arc<StoreError>> {
        let found = self
            .cache
            .get(org, || async {
                Ok(self.store.org_exists(org).await?.then_some(()))
            })
            .await?;
        Ok(found.is_some())
    }

    pub async fn invalidate(&self, org: &OrgName) {
        self.cache.invalidate(org.clone()).await;
    }
}

type AccountEntry = Option<Arc<ServiceAccount>>;

/// Service accounts with their keys, by `(org, name)`: what verifying a
/// service account's token needs. Unknown accounts are remembered briefly.
#[derive(Clone)]
pub struct ServiceAccountCache {
    store: Arc<dyn CheckStore>,
    cache: FreshCache<(OrgName, ServiceAccountName), AccountEntry>,
}

impl ServiceAccountCache {
    pub fn new(store: Arc<dyn CheckStore>, settings: CacheSettings) -> Self {
        Self {
            store,
            cache: settings.positive_or_negative("service_accounts"),
        }
    }

    pub async fn find(
        &self,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<AccountEntry, Arc<StoreError>> {
        let key = (org.clone(), name.clone());
        self.cache
            .get(&key, || async {
                Ok(self.store.service_account(org, name).await?.map(Arc::new))
            })
            .await
    }

    /// Whether a lookup would be answered from memory.
    pub fn is_cached(&self, org: &OrgName, name: &ServiceAccountName) -> bool {
        self.cache.cache.contains_key(&(org.clone(), name.clone()))
    }

    pub async fn invalidate(&self, org: &OrgName, name: &ServiceAccountName) {
        self.cache.invalidate((org.clone(), name.clone())).await;
    }
}

mod linked;

pub use linked::LinkedCache;

#[cfg(test)]
mod stress;

#[cfg(test)]
mod tests;
