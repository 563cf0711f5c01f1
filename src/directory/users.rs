//! Users by principal: the check's subject lookup.

use std::sync::Arc;

use super::{CacheSettings, FreshCache};
use crate::{
    domain::{Login, Principal},
    store::{CheckStore, StoreError, User, UserRef},
};

type Entry = Option<Arc<User>>;

/// Users by principal, positive and negative entries, with concurrent misses
/// for one principal coalesced into a single query. Errors are not cached:
/// the next check asks the database again.
#[derive(Clone)]
pub struct UserCache {
    pub(super) store: Arc<dyn CheckStore>,
    pub(super) cache: FreshCache<Arc<Principal>, Entry>,
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
