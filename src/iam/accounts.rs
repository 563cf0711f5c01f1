//! Service accounts, their keys, and the audit log.

use super::{Iam, IamError, Stale, in_org, in_org_or_global};
use crate::{
    domain::{OrgName, ServiceAccountName},
    identity::keys,
    policy::Action,
    store::{Actor, AuditEntry, ServiceAccount},
};

/// A public key that parses for its (asymmetric) algorithm: what a service
/// account may register. Checked when the request is read, so a bad key
/// never reaches the store.
#[derive(Debug, Clone)]
pub struct PublicKey {
    algorithm: String,
    pem: String,
}

impl PublicKey {
    /// `field` names the key in messages (`keys[0]`, `key`).
    pub fn parse(field: &str, algorithm: &str, pem: &str) -> Result<Self, String> {
        let alg = keys::parse_public_algorithm(algorithm)
            .map_err(|e| format!("{field}.algorithm: {e}"))?;
        keys::parse_pem(pem.as_bytes(), alg, None, field)
            .map_err(|e| format!("{field}.pem: {e}"))?;
        Ok(Self {
            algorithm: format!("{alg:?}"),
            pem: pem.to_owned(),
        })
    }
}

impl Iam {
    pub async fn create_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        keys: &[PublicKey],
    ) -> Result<ServiceAccount, IamError> {
        in_org(actor, org, Action::Create)?;
        let keys: Vec<(String, String)> = keys
            .iter()
            .map(|k| (k.algorithm.clone(), k.pem.clone()))
            .collect();
        let account = self
            .store
            .create_service_account(actor, org, name, &keys)
            .await?;
        self.forget_account(account).await
    }

    pub async fn get_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<ServiceAccount, IamError> {
        in_org(actor, org, Action::Get)?;
        let account = self.store.service_account(org, name).await?;
        account.ok_or_else(|| IamError::not_found(format!("service account {org}/{name}")))
    }

    pub async fn list_accounts(
        &self,
        actor: &Actor,
        org: &OrgName,
    ) -> Result<Vec<ServiceAccount>, IamError> {
        in_org(actor, org, Action::Get)?;
        Ok(self.store.list_service_accounts(org).await?)
    }

    pub async fn delete_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<ServiceAccount, IamError> {
        in_org(actor, org, Action::Delete)?;
        let account = self.store.delete_service_account(actor, org, name).await?;
        self.forget_account(account).await
    }

    pub async fn set_account_enabled(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        enabled: bool,
    ) -> Result<ServiceAccount, IamError> {
        in_org(actor, org, Action::Update)?;
        let account = self
            .store
            .set_service_account_enabled(actor, org, name, enabled)
            .await?;
        self.forget_account(account).await
    }

    pub async fn add_account_key(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        key: &PublicKey,
    ) -> Result<ServiceAccount, IamError> {
        in_org(actor, org, Action::Update)?;
        let account = self
            .store
            .add_service_account_key(actor, org, name, &key.algorithm, &key.pem)
            .await?;
        self.forget_account(account).await
    }

    pub async fn remove_account_key(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        key_id: &str,
    ) -> Result<ServiceAccount, IamError> {
        in_org(actor, org, Action::Update)?;
        let account = self
            .store
            .remove_service_account_key(actor, org, name, key_id)
            .await?;
        self.forget_account(account).await
    }

    /// Newest first, at most `limit` (1000; 0 means 100).
    pub async fn audit_log(
        &self,
        actor: &Actor,
        org: Option<&OrgName>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, IamError> {
        in_org_or_global(actor, org, Action::Get)?;
        let limit = match limit {
            0 => 100,
            n => n.min(1000),
        };
        Ok(self.store.list_audit(org, limit).await?)
    }

    async fn forget_account(&self, account: ServiceAccount) -> Result<ServiceAccount, IamError> {
        self.forget(&[Stale::Account(account.clone())]).await;
        Ok(account)
    }
}
