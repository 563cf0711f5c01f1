//! Service accounts and their public keys.

use super::*;

#[async_trait]
impl AccountAdmin for SqlStore {
    /// Creates an account with its first keys (each already checked by the
    /// caller to parse for its algorithm), in one transaction.
    async fn create_service_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        keys: &[(String, String)],
    ) -> Result<ServiceAccount, StoreError> {
        let mut tx = self.begin().await?;
        org_in(&mut tx, org).await?;
        let at = now();
        let id = ServiceAccountId::new();
        sqlx::query(
            "INSERT INTO service_accounts (id, org, name, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, TRUE, $4, $4)",
        )
        .bind(id.to_string())
        .bind(org.as_str())
        .bind(name.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("service account {org}/{name}")))?;
        for (algorithm, pem) in keys {
            insert_key(&mut tx, id, algorithm, pem).await?;
        }
        let account = service_account_in(&mut tx, org, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("service account {org}/{name}")))?;
        let change = Change {
            action: "serviceaccount.create",
            org: Some(org),
            target: account.issuer(),
            before: None,
            after: Some(account.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(account)
    }

    async fn list_service_accounts(
        &self,
        org: &OrgName,
    ) -> Result<Vec<ServiceAccount>, StoreError> {
        let names: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM service_accounts WHERE org = $1 ORDER BY name")
                .bind(org.as_str())
                .fetch_all(&self.pool)
                .await?;
        let mut accounts = Vec::with_capacity(names.len());
        for (name,) in names {
            let name = ServiceAccountName::parse(&name).map_err(corrupt(&name))?;
            if let Some(account) = self.service_account(org, &name).await? {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    async fn delete_service_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<ServiceAccount, StoreError> {
        let (mut tx, before) = self
            .service_account_for_change(actor, org, name, Action::Delete)
            .await?;
        sqlx::query("DELETE FROM service_accounts WHERE id = $1")
            .bind(before.id.to_string())
            .execute(&mut *tx)
            .await?;
        finish_service_account_change(tx, actor, "serviceaccount.delete", before, false).await
    }

    async fn set_service_account_enabled(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        enabled: bool,
    ) -> Result<ServiceAccount, StoreError> {
        let action = if enabled {
            "serviceaccount.enable"
        } else {
            "serviceaccount.disable"
        };
        let (mut tx, before) = self
            .service_account_for_change(actor, org, name, Action::Update)
            .await?;
        sqlx::query("UPDATE service_accounts SET enabled = $2, updated_at = $3 WHERE id = $1")
            .bind(before.id.to_string())
            .bind(enabled)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        finish_service_account_change(tx, actor, action, before, true).await
    }

    /// Registers a public key (already checked by the caller to parse for
    /// `algorithm`); its id is the `kid` tokens may name.
    async fn add_service_account_key(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        algorithm: &str,
        public_key_pem: &str,
    ) -> Result<ServiceAccount, StoreError> {
        let (mut tx, before) = self
            .service_account_for_change(actor, org, name, Action::Update)
            .await?;
        insert_key(&mut tx, before.id, algorithm, public_key_pem).await?;
        finish_service_account_change(tx, actor, "serviceaccount.key.add", before, true).await
    }

    async fn remove_service_account_key(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        key_id: &str,
    ) -> Result<ServiceAccount, StoreError> {
        let (mut tx, before) = self
            .service_account_for_change(actor, org, name, Action::Update)
            .await?;
        let deleted = sqlx::query(
            "DELETE FROM service_account_keys WHERE id = $1 AND service_account_id = $2",
        )
        .bind(key_id)
        .bind(before.id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(format!(
                "key {key_id} of service account {}",
                before.issuer()
            )));
        }
        finish_service_account_change(tx, actor, "serviceaccount.key.remove", before, true).await
    }
}

impl SqlStore {
    /// Opens the transaction of a change to a service account, with the
    /// account as it is before. Keys, enabling and deletion decide who can
    /// act as the account: the actor needs authority over every role it
    /// holds, read in this very transaction.
    async fn service_account_for_change(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        action: Action,
    ) -> Result<(Transaction<'static, Any>, ServiceAccount), StoreError> {
        let mut tx = self.begin().await?;
        let before = service_account_in(&mut tx, org, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("service account {org}/{name}")))?;
        let roles = bound_roles(&mut tx, SubjectRef::ServiceAccount(before.id)).await?;
        actor.authority().over_holder(&roles, action)?;
        Ok((tx, before))
    }
}

pub(super) async fn service_account_in(
    conn: &mut AnyConnection,
    org: &OrgName,
    name: &ServiceAccountName,
) -> Result<Option<ServiceAccount>, StoreError> {
    let row: Option<(String, Flag, i64, i64)> = sqlx::query_as(
        "SELECT id, enabled, created_at, updated_at FROM service_accounts WHERE org = $1 AND name = $2",
    )
    .bind(org.as_str())
    .bind(name.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, enabled, created_at, updated_at)) = row else {
        return Ok(None);
    };
    let keys: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, algorithm, public_key_pem, created_at FROM service_account_keys \
         WHERE service_account_id = $1 ORDER BY created_at, id",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(ServiceAccount {
        id: ServiceAccountId::parse(&id).map_err(corrupt(&id))?,
        org: org.clone(),
        name: name.clone(),
        enabled: enabled.into(),
        keys: keys
            .into_iter()
            .map(
                |(id, algorithm, public_key_pem, created_at)| ServiceAccountKey {
                    id,
                    algorithm,
                    public_key_pem,
                    created_at,
                },
            )
            .collect(),
        created_at,
        updated_at,
    }))
}

/// Audits and commits a change to a service account; returns it as it is
/// now (or as it was, when deleted).
pub(super) async fn finish_service_account_change(
    mut tx: Transaction<'static, Any>,
    actor: &Actor,
    action: &'static str,
    before: ServiceAccount,
    still_there: bool,
) -> Result<ServiceAccount, StoreError> {
    let after = if still_there {
        service_account_in(&mut tx, &before.org, &before.name).await?
    } else {
        None
    };
    let entry = Change {
        action,
        org: Some(&before.org),
        target: before.issuer(),
        before: Some(before.snapshot()),
        after: after.as_ref().map(Snapshot::snapshot),
    };
    commit_audited(tx, actor, entry).await?;
    Ok(after.unwrap_or(before))
}

pub(super) async fn insert_key(
    conn: &mut AnyConnection,
    account: ServiceAccountId,
    algorithm: &str,
    pem: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO service_account_keys \
         (id, service_account_id, algorithm, public_key_pem, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(account.to_string())
    .bind(algorithm)
    .bind(pem)
    .bind(now())
    .execute(conn)
    .await?;
    Ok(())
}
