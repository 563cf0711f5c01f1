//! Whether an organization exists.

use std::sync::Arc;

use super::{CacheSettings, FreshCache};
use crate::{
    domain::OrgName,
    store::{CheckStore, StoreError},
};

/// Whether each organization exists (`Some(())`), asked only when a global
/// role decides in an organization the subject is not a member of.
/// Invalidated by the admin API when an organization is created or deleted.
#[derive(Clone)]
pub struct OrgCache {
    pub(super) store: Arc<dyn CheckStore>,
    pub(super) cache: FreshCache<OrgName, Option<()>>,
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
