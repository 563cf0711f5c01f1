//! Regression (issue 9, item 13): invalidation is linearizable with loads.
//! Many loads race many writes; a lookup that begins after a write's
//! invalidation returned must never see what the database held before the
//! write.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use async_trait::async_trait;

use super::*;
use crate::{
    domain::{IssuerName, Login, OrgName, ServiceAccountName, Subject, SubjectRef, UserId},
    policy::rbac::Grants,
    store::{CheckStore, ServiceAccount, StoreError, User, UserRef},
};

const SUBJECTS: usize = 4;

/// A database of one version number per subject, read as a transaction's
/// snapshot (when the query starts), answered after a random pause.
struct VersionedStore {
    versions: Vec<AtomicU64>,
    seed: AtomicU64,
}

impl VersionedStore {
    fn index(subject: SubjectRef) -> usize {
        // Subjects are made from small ids: see `subject`.
        (subject
            .id()
            .to_string()
            .as_bytes()
            .last()
            .copied()
            .unwrap_or(0) as usize)
            % SUBJECTS
    }

    /// xorshift: a few yields or a short sleep, differently each time.
    async fn pause(&self) {
        let mut x = self
            .seed
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 8 {
            0 => tokio::time::sleep(Duration::from_millis(1)).await,
            n => {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

#[async_trait]
impl CheckStore for VersionedStore {
    async fn grants(&self, subject: SubjectRef) -> Result<Grants, StoreError> {
        let version = self.versions[Self::index(subject)].load(Ordering::SeqCst);
        self.pause().await;
        Ok(Grants {
            enabled: true,
            default_org: Some(OrgName::parse(&format!("v{version}")).unwrap()),
            ..Grants::default()
        })
    }
    async fn find_by_identity(
        &self,
        _: &IssuerName,
        _: &Subject,
    ) -> Result<Option<User>, StoreError> {
        unimplemented!()
    }
    async fn update_login(&self, _: &UserRef, _: &Login) -> Result<User, StoreError> {
        unimplemented!()
    }
    async fn service_account(
        &self,
        _: &OrgName,
        _: &ServiceAccountName,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        unimplemented!()
    }
    async fn org_exists(&self, _: &OrgName) -> Result<bool, StoreError> {
        unimplemented!()
    }
    async fn linked_groups(&self) -> Result<crate::policy::rbac::LinkedGroups, StoreError> {
        Ok(Default::default())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn version_of(grants: &Grants) -> u64 {
    grants.default_org.as_ref().unwrap().as_str()[1..]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lookup_after_an_invalidation_sees_the_state_before_its_write() {
    let store = Arc::new(VersionedStore {
        versions: (0..SUBJECTS).map(|_| AtomicU64::new(0)).collect(),
        seed: AtomicU64::new(7),
    });
    let settings = CacheSettings {
        capacity: 100,
        ttl: Duration::from_secs(3600),
        negative_ttl: Duration::from_secs(3600),
    };
    let cache = GrantsCache::new(store.clone(), settings);
    // Subject ids whose last character spreads them over the versions.
    let subjects: Vec<SubjectRef> = {
        let mut found: Vec<Option<SubjectRef>> = vec![None; SUBJECTS];
        while found.iter().any(Option::is_none) {
            let s = SubjectRef::User(UserId::new());
            found[VersionedStore::index(s)].get_or_insert(s);
        }
        found.into_iter().map(Option::unwrap).collect()
    };
    // The newest version whose invalidation has returned, per subject.
    let invalidated: Arc<Vec<AtomicU64>> =
        Arc::new((0..SUBJECTS).map(|_| AtomicU64::new(0)).collect());

    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..SUBJECTS {
        let (store, cache, invalidated, subject) = (
            store.clone(),
            cache.clone(),
            invalidated.clone(),
            subjects[w],
        );
        tasks.spawn(async move {
            for _ in 0..400 {
                let version = store.versions[w].fetch_add(1, Ordering::SeqCst) + 1;
                cache.invalidate(subject).await;
                invalidated[w].fetch_max(version, Ordering::SeqCst);
                store.pause().await;
            }
            0
        });
    }
    for r in 0..16 {
        let (cache, invalidated, subjects) = (cache.clone(), invalidated.clone(), subjects.clone());
        tasks.spawn(async move {
            let mut stale = 0;
            for i in 0..1500 {
                let w = (r + i) % SUBJECTS;
                let floor = invalidated[w].load(Ordering::SeqCst);
                let grants = cache.get(subjects[w]).await.expect("no spurious failure");
                if version_of(&grants) < floor {
                    stale += 1;
                }
            }
            stale
        });
    }
    let mut stale = 0;
    while let Some(n) = tasks.join_next().await {
        stale += n.unwrap();
    }
    assert_eq!(
        stale, 0,
        "lookups served a value older than a completed invalidation"
    );
}
