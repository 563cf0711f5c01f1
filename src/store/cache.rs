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
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache};

use super::{ServiceAccount, StoreError, User, UserRef, UserStore};
use crate::{
    domain::{Login, OrgName, Principal, ServiceAccountName, SubjectRef},
    freshness::{Freshness, Stamped},
    policy::rbac::Grants,
};

/// Lookups that find a value loaded before their key's last invalidation
/// load again; the load they then join began after they did (so it is
/// accepted), unless moka coalesced them with an older one: a few attempts
/// always suffice. The bound only guards against a bug looping forever.
const ATTEMPTS: usize = 8;

/// `try_get_with` (concurrent misses coalesced, errors not cached) that
/// never serves a value whose load began before its key's last
/// invalidation.
async fn get_fresh<K, V, Fut>(
    cache: &Cache<K, Stamped<V>>,
    freshness: &Freshness<K>,
    key: &K,
    load: impl Fn() -> Fut,
) -> Result<V, Arc<StoreError>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<V, StoreError>>,
{
    // What this lookup accepts is fixed when it begins: loads begun after
    // every invalidation so far, or else after its key's stamp.
    let latest = freshness.start();
    let mut required = None;
    for _ in 0..ATTEMPTS {
        let entry = cache
            .try_get_with_by_ref(key, async {
                let started = freshness.start();
                Ok(Stamped {
                    value: load().await?,
                    started,
                })
            })
            .await?;
        if entry.started >= latest
            || entry.started >= *required.get_or_insert_with(|| freshness.required(key))
        {
            return Ok(entry.value);
        }
        // Read before an invalidation of this key: load again.
        cache.invalidate(key).await;
    }
    Err(Arc::new(StoreError::Superseded))
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
    fn freshness<K: Hash + Eq + Clone + Send + Sync + 'static>(&self) -> Freshness<K> {
        Freshness::new(self.capacity, self.ttl.max(self.negative_ttl))
    }
}

/// Users by principal, positive and negative entries, with concurrent misses
/// for one principal coalesced into a single query. Errors are not cached:
/// the next check asks the database again.
#[derive(Clone)]
pub struct UserCache {
    store: Arc<dyn UserStore>,
    cache: Cache<Arc<Principal>, Stamped<Entry>>,
    freshness: Freshness<Arc<Principal>>,
}

impl UserCache {
    pub fn new(store: Arc<dyn UserStore>, settings: CacheSettings) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(PositiveOrNegative(settings))
            .build();
        Self {
            store,
            cache,
            freshness: settings.freshness(),
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
        let principal = Arc::new(Principal {
            issuer: user.issuer.clone(),
            subject: user.subject.clone(),
        });
        self.freshness.invalidate(principal.clone());
        self.cache.invalidate(&principal).await;
    }

    pub async fn find(&self, principal: &Arc<Principal>) -> Result<Entry, Arc<StoreError>> {
        get_fresh(&self.cache, &self.freshness, principal, || async {
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
    store: Arc<dyn UserStore>,
    cache: Cache<SubjectRef, Stamped<Arc<Grants>>>,
    freshness: Freshness<SubjectRef>,
}

impl GrantsCache {
    pub fn new(store: Arc<dyn UserStore>, settings: CacheSettings) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_live(settings.ttl)
            .build();
        Self {
            store,
            cache,
            freshness: settings.freshness(),
        }
    }

    pub async fn get(&self, subject: SubjectRef) -> Result<Arc<Grants>, Arc<StoreError>> {
        get_fresh(&self.cache, &self.freshness, &subject, || async {
            Ok(Arc::new(self.store.grants(subject).await?))
        })
        .await
    }

    pub async fn invalidate(&self, subject: SubjectRef) {
        self.freshness.invalidate(subject);
        self.cache.invalidate(&subject).await;
    }
}

/// Whether each organization exists (`Some(())`), asked only when a global
/// role decides in an organization the subject is not a member of.
/// Invalidated by the admin API when an organization is created or deleted.
#[derive(Clone)]
pub struct OrgCache {
    store: Arc<dyn UserStore>,
    cache: Cache<OrgName, Stamped<Option<()>>>,
    freshness: Freshness<OrgName>,
}

impl OrgCache {
    pub fn new(store: Arc<dyn UserStore>, settings: CacheSettings) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(PositiveOrNegative(settings))
            .build();
        Self {
            store,
            cache,
            freshness: settings.freshness(),
        }
    }

    pub async fn exists(&self, org: &OrgName) -> Result<bool, Arc<StoreError>> {
        let found = get_fresh(&self.cache, &self.freshness, org, || async {
            Ok(self.store.org_exists(org).await?.then_some(()))
        })
        .await?;
        Ok(found.is_some())
    }

    pub async fn invalidate(&self, org: &OrgName) {
        self.freshness.invalidate(org.clone());
        self.cache.invalidate(org).await;
    }
}

type AccountEntry = Option<Arc<ServiceAccount>>;

/// Service accounts with their keys, by `(org, name)`: what verifying a
/// service account's token needs. Unknown accounts are remembered briefly.
#[derive(Clone)]
pub struct ServiceAccountCache {
    store: Arc<dyn UserStore>,
    cache: Cache<(OrgName, ServiceAccountName), Stamped<AccountEntry>>,
    freshness: Freshness<(OrgName, ServiceAccountName)>,
}

impl ServiceAccountCache {
    pub fn new(store: Arc<dyn UserStore>, settings: CacheSettings) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(PositiveOrNegative(settings))
            .build();
        Self {
            store,
            cache,
            freshness: settings.freshness(),
        }
    }

    pub async fn find(
        &self,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<AccountEntry, Arc<StoreError>> {
        let key = (org.clone(), name.clone());
        get_fresh(&self.cache, &self.freshness, &key, || async {
            Ok(self.store.service_account(org, name).await?.map(Arc::new))
        })
        .await
    }

    /// Whether a lookup would be answered from memory.
    pub fn is_cached(&self, org: &OrgName, name: &ServiceAccountName) -> bool {
        self.cache.contains_key(&(org.clone(), name.clone()))
    }

    pub async fn invalidate(&self, org: &OrgName, name: &ServiceAccountName) {
        let key = (org.clone(), name.clone());
        self.freshness.invalidate(key.clone());
        self.cache.invalidate(&key).await;
    }
}

#[cfg(test)]
mod stress;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::{
        domain::{IssuerName, Subject, UserId},
        store::{Actor, NewUser},
    };

    /// A store that counts queries and answers slowly, to observe coalescing.
    #[derive(Default)]
    struct CountingStore {
        queries: AtomicUsize,
        /// What `grants` reports; read when the query starts, as a
        /// transaction's snapshot would be.
        disabled: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl UserStore for CountingStore {
        async fn find_by_identity(
            &self,
            issuer: &IssuerName,
            subject: &Subject,
        ) -> Result<Option<User>, StoreError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok((subject.as_str() == "known").then(|| User {
                id: UserId::new(),
                issuer: issuer.clone(),
                subject: subject.clone(),
                login: Login::parse("octocat").unwrap(),
                email: None,
                display_name: None,
                enabled: true,
                created_at: 0,
                updated_at: 0,
            }))
        }
        async fn get(&self, _: &UserRef) -> Result<Option<User>, StoreError> {
            unimplemented!("not used by the cache")
        }
        async fn list(&self) -> Result<Vec<User>, StoreError> {
            unimplemented!("not used by the cache")
        }
        async fn add(&self, _: &Actor, _: NewUser) -> Result<User, StoreError> {
            unimplemented!("not used by the cache")
        }
        async fn set_enabled(&self, _: &Actor, _: &UserRef, _: bool) -> Result<User, StoreError> {
            unimplemented!("not used by the cache")
        }
        async fn update_login(&self, _: &UserRef, _: &Login) -> Result<User, StoreError> {
            unimplemented!("not used by these tests")
        }
        async fn remove(&self, _: &Actor, _: &UserRef) -> Result<User, StoreError> {
            unimplemented!("not used by the cache")
        }
        async fn grants(&self, _: SubjectRef) -> Result<Grants, StoreError> {
            let enabled = !self.disabled.load(Ordering::SeqCst);
            self.queries.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Grants {
                enabled,
                ..Grants::default()
            })
        }
        async fn service_account(
            &self,
            _: &OrgName,
            _: &ServiceAccountName,
        ) -> Result<Option<ServiceAccount>, StoreError> {
            unimplemented!("not used by these tests")
        }
        async fn org_exists(&self, _: &OrgName) -> Result<bool, StoreError> {
            unimplemented!("not used by these tests")
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn principal(subject: &str) -> Arc<Principal> {
        Arc::new(Principal {
            issuer: IssuerName::parse("dex").unwrap(),
            subject: Subject::parse(subject).unwrap(),
        })
    }

    fn cache(store: Arc<CountingStore>) -> UserCache {
        UserCache::new(
            store,
            CacheSettings {
                capacity: 100,
                ttl: Duration::from_secs(60),
                negative_ttl: Duration::from_millis(200),
            },
        )
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_query() {
        let store = Arc::new(CountingStore::default());
        let users = cache(store.clone());
        let p = principal("known");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let (users, p) = (users.clone(), p.clone());
            tasks.spawn(async move { users.find(&p).await });
        }
        while let Some(result) = tasks.join_next().await {
            assert!(matches!(result.unwrap(), Ok(Some(_))));
        }
        assert_eq!(store.queries.load(Ordering::SeqCst), 1);
        users.find(&p).await.unwrap();
        assert_eq!(
            store.queries.load(Ordering::SeqCst),
            1,
            "hit went to the store"
        );
    }

    /// Regression: a load that read the database before an admin write and
    /// finished after its invalidation must not leave the old value cached,
    /// or the "very next check" after the write would still see it.
    #[tokio::test]
    async fn an_invalidation_beats_a_load_already_in_flight() {
        let store = Arc::new(CountingStore::default());
        let settings = CacheSettings {
            capacity: 100,
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(1),
        };
        let grants = GrantsCache::new(store.clone(), settings);
        let subject = SubjectRef::User(UserId::new());
        let in_flight = {
            let grants = grants.clone();
            tokio::spawn(async move { grants.get(subject).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        store.disabled.store(true, Ordering::SeqCst); // the admin commit...
        grants.invalidate(subject).await; // ...and its invalidation
        let _ = in_flight.await.unwrap();
        let next = grants.get(subject).await.unwrap();
        assert!(!next.enabled, "a stale load outlived the invalidation");
    }

    #[tokio::test]
    async fn unknown_subjects_are_remembered_briefly() {
        let store = Arc::new(CountingStore::default());
        let users = cache(store.clone());
        let p = principal("unknown");
        assert!(users.find(&p).await.unwrap().is_none());
        assert!(users.find(&p).await.unwrap().is_none());
        assert_eq!(store.queries.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        users.find(&p).await.unwrap();
        assert_eq!(
            store.queries.load(Ordering::SeqCst),
            2,
            "negative entry outlived its ttl"
        );
    }
}
