//! Service accounts and their keys, for the service-account token source.

use std::sync::Arc;

use super::{CacheSettings, FreshCache};
use crate::{
    domain::{OrgName, ServiceAccountName},
    store::{CheckStore, ServiceAccount, StoreError},
};

type AccountEntry = Option<Arc<ServiceAccount>>;

/// Service accounts with their keys, by `(org, name)`: what verifying a
/// service account's token needs. Unknown accounts are remembered briefly.
#[derive(Clone)]
pub struct ServiceAccountCache {
    pub(super) store: Arc<dyn CheckStore>,
    pub(super) cache: FreshCache<(OrgName, ServiceAccountName), AccountEntry>,
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
