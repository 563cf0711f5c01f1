use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_trait::async_trait;

use super::*;
use crate::{
    domain::{
        IssuerName, Login, OrgName, Principal, ServiceAccountName, Subject, SubjectRef, UserId,
    },
    policy::rbac::Grants,
    store::{CheckStore, ServiceAccount, StoreError, User, UserRef, fixtures},
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
impl CheckStore for CountingStore {
    async fn find_by_identity(
        &self,
        issuer: &IssuerName,
        subject: &Subject,
    ) -> Result<Option<User>, StoreError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok((subject.as_str() == "known")
            .then(|| fixtures::user(issuer.as_str(), subject.as_str(), "octocat")))
    }
    async fn update_login(&self, _: &UserRef, _: &Login) -> Result<User, StoreError> {
        unimplemented!("not used by these tests")
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
    async fn linked_groups(&self) -> Result<crate::policy::rbac::LinkedGroups, StoreError> {
        Ok(Default::default())
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

/// Memory (issue 11): subjects with equal grants share one copy, and a
/// change gives the changed subject a copy of its own.
#[tokio::test]
async fn subjects_with_equal_grants_share_one_copy() {
    let store = Arc::new(CountingStore::default());
    let grants = GrantsCache::new(
        store.clone(),
        CacheSettings {
            capacity: 100,
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(1),
        },
    );
    let (a, b, c) = (
        SubjectRef::User(UserId::new()),
        SubjectRef::User(UserId::new()),
        SubjectRef::User(UserId::new()),
    );
    let first = grants.get(a).await.unwrap();
    let second = grants.get(b).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    store.disabled.store(true, Ordering::SeqCst);
    let third = grants.get(c).await.unwrap();
    assert!(!third.enabled && first.enabled);
    assert!(!Arc::ptr_eq(&first, &third));
}
