//! The SQLite side of organizations, roles, bindings, service accounts and
//! the audit log.
//!
//! **Invariant:** every write is one transaction that also appends its audit
//! entry, so a change and its record exist together or not at all.

use serde_json::Value;
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::{
    SqliteStore, StoreError, User, UserRef, UserStore,
    iam::{
        Actor, AuditEntry, Membership, Organization, RoleBinding, RoleKey, ServiceAccount,
        ServiceAccountKey, Snapshot,
    },
    sqlite::now,
};
use crate::{
    domain::{
        InvalidValue, OrgName, RoleName, ServiceAccountId, ServiceAccountName, SubjectRef, UserId,
    },
    policy::{
        Action,
        authority::Overreach,
        rbac::{Grants, Permission, Role, Scope},
    },
};

/// What one audit entry records.
struct Change<'a> {
    action: &'static str,
    org: Option<&'a OrgName>,
    target: String,
    before: Option<Value>,
    after: Option<Value>,
}

async fn audit(
    tx: &mut SqliteConnection,
    actor: &Actor,
    change: Change<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, org, target, before, after) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(now())
    .bind(actor.as_str())
    .bind(change.action)
    .bind(change.org.map(OrgName::as_str))
    .bind(change.target)
    .bind(change.before.map(|v| v.to_string()))
    .bind(change.after.map(|v| v.to_string()))
    .execute(tx)
    .await?;
    Ok(())
}

/// Appends the change's audit entry and commits: how every admin write
/// ends, so that no write can be committed without its entry.
async fn commit_audited(
    mut tx: Transaction<'static, Sqlite>,
    actor: &Actor,
    change: Change<'_>,
) -> Result<(), StoreError> {
    audit(&mut tx, actor, change).await?;
    tx.commit().await?;
    Ok(())
}

fn corrupt(id: &str) -> impl Fn(InvalidValue) -> StoreError + '_ {
    move |e| StoreError::Corrupt {
        id: id.to_owned(),
        reason: e.to_string(),
    }
}

/// Maps a unique-constraint violation to `AlreadyExists(what)`.
fn unique(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists(what()),
        other => other.into(),
    }
}

impl SqliteStore {
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    // ---- organizations -------------------------------------------------

    pub async fn create_org(
        &self,
        actor: &Actor,
        name: &OrgName,
    ) -> Result<Organization, StoreError> {
        let mut tx = self.begin().await?;
        let org = Organization {
            name: name.clone(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO organizations (name, created_at) VALUES (?1, ?2)")
            .bind(name.as_str())
            .bind(org.created_at)
            .execute(&mut *tx)
            .await
            .map_err(unique(|| format!("organization {name}")))?;
        let change = Change {
            action: "organization.create",
            org: Some(name),
            target: name.to_string(),
            before: None,
            after: Some(org.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(org)
    }

    pub async fn get_org(&self, name: &OrgName) -> Result<Option<Organization>, StoreError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT name, created_at FROM organizations WHERE name = ?1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(n, at)| org_row(&n, at)).transpose()
    }

    pub async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, created_at FROM organizations ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|(n, at)| org_row(n, *at)).collect()
    }

    /// Refuses while the organization still has members, roles or service
    /// accounts: deleting them is a decision of its own, made one by one.
    pub async fn delete_org(
        &self,
        actor: &Actor,
        name: &OrgName,
    ) -> Result<Organization, StoreError> {
        let mut tx = self.begin().await?;
        let org = org_in(&mut tx, name).await?;
        let (members, roles, accounts): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM memberships WHERE org = ?1), \
                    (SELECT COUNT(*) FROM roles WHERE org = ?1), \
                    (SELECT COUNT(*) FROM service_accounts WHERE org = ?1)",
        )
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if members + roles + accounts > 0 {
            return Err(StoreError::Conflict(format!(
                "organization {name} still has {members} member(s), {roles} role(s) and \
                 {accounts} service account(s); remove them first"
            )));
        }
        sqlx::query("DELETE FROM organizations WHERE name = ?1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        let change = Change {
            action: "organization.delete",
            org: Some(name),
            target: name.to_string(),
            before: Some(org.snapshot()),
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok(org)
    }

    // ---- memberships ---------------------------------------------------

    /// Adds (or updates, e.g. to make it the default) a membership.
    pub async fn add_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        user: &UserRef,
        is_default: bool,
    ) -> Result<(User, Membership), StoreError> {
        let mut tx = self.begin().await?;
        org_in(&mut tx, org).await?;
        let user = user_in(&mut tx, user).await?;
        let before = membership_in(&mut tx, org, user.id).await?;
        if is_default {
            clear_default_elsewhere(&mut tx, actor, org, user.id).await?;
        }
        sqlx::query(
            "INSERT INTO memberships (org, user_id, is_default, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (org, user_id) DO UPDATE SET is_default = excluded.is_default",
        )
        .bind(org.as_str())
        .bind(user.id.to_string())
        .bind(is_default)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let membership = Membership {
            org: org.clone(),
            user_id: user.id,
            is_default,
        };
        let change = Change {
            action: "member.add",
            org: Some(org),
            target: SubjectRef::User(user.id).to_string(),
            before: before.map(|m| m.snapshot()),
            after: Some(membership.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok((user, membership))
    }

    /// Removes a membership and the user's bindings to roles of that
    /// organization (they could not apply any more).
    pub async fn remove_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        user: &UserRef,
    ) -> Result<(User, Membership), StoreError> {
        let mut tx = self.begin().await?;
        // One answer whether the user is unknown or not a member: an org
        // admin learns nothing about users outside their organization.
        let not_a_member = || StoreError::NotFound(format!("member {user} of {org}"));
        let user = match user_in(&mut tx, user).await {
            Err(StoreError::NotFound(_)) => return Err(not_a_member()),
            other => other?,
        };
        let membership = membership_in(&mut tx, org, user.id)
            .await?
            .ok_or_else(not_a_member)?;
        // The user's bindings in this organization go with the membership.
        let unbound: Vec<_> = bound_roles(&mut tx, SubjectRef::User(user.id))
            .await?
            .into_iter()
            .filter(|r| r.scope == Scope::Org(org.clone()))
            .collect();
        actor.authority().over_holder(&unbound, Action::Delete)?;
        sqlx::query("DELETE FROM memberships WHERE org = ?1 AND user_id = ?2")
            .bind(org.as_str())
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM role_bindings WHERE user_id = ?2 \
             AND role_id IN (SELECT id FROM roles WHERE org = ?1)",
        )
        .bind(org.as_str())
        .bind(user.id.to_string())
        .execute(&mut *tx)
        .await?;
        let change = Change {
            action: "member.remove",
            org: Some(org),
            target: SubjectRef::User(user.id).to_string(),
            before: Some(membership.snapshot()),
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok((user, membership))
    }

    pub async fn list_members(&self, org: &OrgName) -> Result<Vec<(User, Membership)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct MemberRow {
            #[sqlx(flatten)]
            user: super::sqlite::UserRow,
            is_default: bool,
        }
        let rows: Vec<MemberRow> = sqlx::query_as(super::sqlite::SELECT_MEMBERS)
            .bind(org.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                let user = User::try_from(row.user)?;
                let membership = Membership {
                    org: org.clone(),
                    user_id: user.id,
                    is_default: row.is_default,
                };
                Ok((user, membership))
            })
            .collect()
    }

    // ---- roles ---------------------------------------------------------

    pub async fn create_role(&self, actor: &Actor, role: &Role) -> Result<Role, StoreError> {
        let key = RoleKey::of(role);
        let mut tx = self.begin().await?;
        if let Some(org) = &key.org {
            org_in(&mut tx, org).await?;
        }
        insert_role(&mut tx, role).await?;
        let change = Change {
            action: "role.create",
            org: key.org.as_ref(),
            target: key.to_string(),
            before: None,
            after: Some(role.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(role.clone())
    }

    pub async fn get_role(&self, key: &RoleKey) -> Result<Option<Role>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(id) = role_id(&mut conn, key).await? else {
            return Ok(None);
        };
        Ok(Some(role_by_id(&mut conn, &id).await?))
    }

    /// Roles of one organization, or the global ones.
    pub async fn list_roles(&self, org: Option<&OrgName>) -> Result<Vec<Role>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let org = org.map_or("", OrgName::as_str);
        roles(&mut conn, roles_where!("COALESCE(r.org, '') = ?1"), org).await
    }

    /// Deletes a role and its bindings; returns the subjects that held it,
    /// whose cached grants are now stale.
    pub async fn delete_role(
        &self,
        actor: &Actor,
        key: &RoleKey,
    ) -> Result<(Role, Vec<SubjectRef>), StoreError> {
        let mut tx = self.begin().await?;
        let id = role_id(&mut tx, key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {key}")))?;
        let role = role_by_id(&mut tx, &id).await?;
        let holders = holders(&mut tx, &id).await?;
        sqlx::query("DELETE FROM roles WHERE id = ?1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            action: "role.delete",
            org: key.org.as_ref(),
            target: key.to_string(),
            before: Some(role.snapshot()),
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok((role, holders))
    }

    // ---- role bindings -------------------------------------------------

    /// Binds a role. A user must be a member of an org role's organization;
    /// a service account must belong to it.
    pub async fn bind_role(
        &self,
        actor: &Actor,
        binding: &RoleBinding,
    ) -> Result<RoleBinding, StoreError> {
        let key = &binding.role;
        let mut tx = self.begin().await?;
        let id = role_id(&mut tx, key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {key}")))?;
        let role = role_by_id(&mut tx, &id).await?;
        actor.authority().over_role(&role, Action::Create)?;
        if let Some(org) = &key.org {
            subject_in_org(&mut tx, binding.subject, org).await?;
        } else {
            subject_exists(&mut tx, binding.subject).await?;
        }
        insert_binding(&mut tx, &id, binding).await?;
        let change = Change {
            action: "rolebinding.create",
            org: key.org.as_ref(),
            target: binding.subject.to_string(),
            before: None,
            after: Some(binding.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(binding.clone())
    }

    pub async fn unbind_role(
        &self,
        actor: &Actor,
        binding: &RoleBinding,
    ) -> Result<RoleBinding, StoreError> {
        let key = &binding.role;
        let mut tx = self.begin().await?;
        let id = role_id(&mut tx, key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {key}")))?;
        let role = role_by_id(&mut tx, &id).await?;
        actor.authority().over_role(&role, Action::Delete)?;
        let (user_id, sa_id) = subject_columns(binding.subject);
        let deleted = sqlx::query(
            "DELETE FROM role_bindings WHERE role_id = ?1 \
             AND user_id IS ?2 AND service_account_id IS ?3",
        )
        .bind(&id)
        .bind(user_id)
        .bind(sa_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(format!(
                "binding of role {key} to {}",
                binding.subject
            )));
        }
        let change = Change {
            action: "rolebinding.delete",
            org: key.org.as_ref(),
            target: binding.subject.to_string(),
            before: Some(binding.snapshot()),
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok(binding.clone())
    }

    /// Bindings of one organization's roles, or of the global roles.
    /// Bindings of one organization's roles, or of the global roles, each
    /// with its subject's name: a user's id, a service account's `ORG/NAME`.
    pub async fn list_bindings(
        &self,
        org: Option<&OrgName>,
    ) -> Result<Vec<(RoleBinding, String)>, StoreError> {
        type Row = (
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT r.org, r.name, b.user_id, b.service_account_id, sa.org || '/' || sa.name \
             FROM role_bindings b JOIN roles r ON r.id = b.role_id \
             LEFT JOIN service_accounts sa ON sa.id = b.service_account_id \
             WHERE COALESCE(r.org, '') = ?1 ORDER BY r.name, b.created_at",
        )
        .bind(org.map_or("", OrgName::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(org, name, user, sa, sa_name)| {
                let binding = RoleBinding {
                    role: role_key(org.as_deref(), &name)?,
                    subject: subject_row(user.as_deref(), sa.as_deref())?,
                };
                let name = sa_name.or(user).unwrap_or_default();
                Ok((binding, name))
            })
            .collect()
    }

    // ---- service accounts ----------------------------------------------

    /// Creates an account with its first keys (each already checked by the
    /// caller to parse for its algorithm), in one transaction.
    pub async fn create_service_account(
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
             VALUES (?1, ?2, ?3, 1, ?4, ?4)",
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

    pub async fn list_service_accounts(
        &self,
        org: &OrgName,
    ) -> Result<Vec<ServiceAccount>, StoreError> {
        let names: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM service_accounts WHERE org = ?1 ORDER BY name")
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

    pub async fn delete_service_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<ServiceAccount, StoreError> {
        let (mut tx, before) = self
            .service_account_for_change(actor, org, name, Action::Delete)
            .await?;
        sqlx::query("DELETE FROM service_accounts WHERE id = ?1")
            .bind(before.id.to_string())
            .execute(&mut *tx)
            .await?;
        finish_service_account_change(tx, actor, "serviceaccount.delete", before, false).await
    }

    pub async fn set_service_account_enabled(
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
        sqlx::query("UPDATE service_accounts SET enabled = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(before.id.to_string())
            .bind(enabled)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        finish_service_account_change(tx, actor, action, before, true).await
    }

    /// Registers a public key (already checked by the caller to parse for
    /// `algorithm`); its id is the `kid` tokens may name.
    pub async fn add_service_account_key(
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

    pub async fn remove_service_account_key(
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
            "DELETE FROM service_account_keys WHERE id = ?1 AND service_account_id = ?2",
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
    ) -> Result<(Transaction<'static, Sqlite>, ServiceAccount), StoreError> {
        let mut tx = self.begin().await?;
        let before = service_account_in(&mut tx, org, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("service account {org}/{name}")))?;
        let roles = bound_roles(&mut tx, SubjectRef::ServiceAccount(before.id)).await?;
        actor.authority().over_holder(&roles, action)?;
        Ok((tx, before))
    }

    // ---- audit log -----------------------------------------------------

    /// Newest first; one organization's entries, or all.
    pub async fn list_audit(
        &self,
        org: Option<&OrgName>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        type Row = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, at, actor, action, org, target, before, after FROM audit_log \
             WHERE ?1 IS NULL OR org = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .bind(org.map(OrgName::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor, action, org, target, before, after)| AuditEntry {
                    id,
                    at,
                    actor,
                    action,
                    org,
                    target,
                    before,
                    after,
                },
            )
            .collect())
    }

    // ---- bootstrap -----------------------------------------------------

    /// Whether any subject holds a global role that grants `iam`.
    pub async fn has_global_admin(&self) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        has_global_admin(&mut conn).await
    }

    /// Makes `user` the first global admin: the global role `admin` (`*:*`)
    /// is created if missing and bound to the user, in one transaction that
    /// first re-checks that no global admin exists.
    pub async fn bootstrap(&self, actor: &Actor, user: &UserRef) -> Result<Role, StoreError> {
        let mut tx = self.begin().await?;
        if has_global_admin(&mut tx).await? {
            return Err(StoreError::Conflict(
                "a global admin exists already; use the admin API to add more".into(),
            ));
        }
        let user = user_in(&mut tx, user).await?;
        let admin = Role {
            name: RoleName::parse("admin").expect("a valid role name"),
            scope: Scope::Global,
            permissions: vec![Permission::parse("*:*").expect("a valid permission")],
        };
        let key = RoleKey::of(&admin);
        let id = match role_id(&mut tx, &key).await? {
            // Bound as it is when it already grants everything; never
            // widened: its holders would gain every permission with it.
            Some(id) if role_by_id(&mut tx, &id).await?.permissions == admin.permissions => id,
            Some(_) => {
                return Err(StoreError::Conflict(
                    "a global role named admin exists with other permissions; bootstrap will \
                     not widen it (its holders would gain every permission): rename or delete it"
                        .into(),
                ));
            }
            None => insert_role(&mut tx, &admin).await?,
        };
        let binding = RoleBinding {
            role: key,
            subject: SubjectRef::User(user.id),
        };
        insert_binding(&mut tx, &id, &binding).await?;
        let role = role_by_id(&mut tx, &id).await?;
        let change = Change {
            action: "bootstrap",
            org: None,
            target: binding.subject.to_string(),
            before: None,
            after: Some(binding.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(role)
    }

    // ---- the check path's reads ----------------------------------------

    pub(super) async fn load_grants(&self, subject: SubjectRef) -> Result<Grants, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut grants = Grants::default();
        match subject {
            SubjectRef::User(id) => {
                let (enabled,): (bool,) =
                    match sqlx::query_as("SELECT enabled FROM users WHERE id = ?1")
                        .bind(id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?
                    {
                        Some(row) => row,
                        None => return Ok(grants),
                    };
                grants.enabled = enabled;
                let orgs: Vec<(String, bool)> =
                    sqlx::query_as("SELECT org, is_default FROM memberships WHERE user_id = ?1")
                        .bind(id.to_string())
                        .fetch_all(&mut *conn)
                        .await?;
                for (org, is_default) in orgs {
                    let org = OrgName::parse(&org).map_err(corrupt(&org))?;
                    if is_default {
                        grants.default_org = Some(org.clone());
                    }
                    grants.member_of.insert(org);
                }
            }
            SubjectRef::ServiceAccount(id) => {
                let row: Option<(String, bool)> =
                    sqlx::query_as("SELECT org, enabled FROM service_accounts WHERE id = ?1")
                        .bind(id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some((org, enabled)) = row else {
                    return Ok(grants);
                };
                let org = OrgName::parse(&org).map_err(corrupt(&org))?;
                grants.enabled = enabled;
                grants.default_org = Some(org.clone());
                grants.member_of.insert(org);
            }
        }
        grants.roles = bound_roles(&mut conn, subject).await?;
        Ok(grants)
    }

    pub(super) async fn load_service_account(
        &self,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        service_account_in(&mut conn, org, name).await
    }
}

fn org_row(name: &str, created_at: i64) -> Result<Organization, StoreError> {
    Ok(Organization {
        name: OrgName::parse(name).map_err(corrupt(name))?,
        created_at,
    })
}

async fn org_in(conn: &mut SqliteConnection, name: &OrgName) -> Result<Organization, StoreError> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT name, created_at FROM organizations WHERE name = ?1")
            .bind(name.as_str())
            .fetch_optional(conn)
            .await?;
    let (n, at) = row.ok_or_else(|| StoreError::NotFound(format!("organization {name}")))?;
    org_row(&n, at)
}

pub(super) async fn user_in(
    conn: &mut SqliteConnection,
    user: &UserRef,
) -> Result<User, StoreError> {
    let (id, issuer, subject) = super::sqlite::binds(user);
    let row: Option<super::sqlite::UserRow> = sqlx::query_as(super::sqlite::SELECT_USER)
        .bind(id)
        .bind(issuer)
        .bind(subject)
        .fetch_optional(conn)
        .await?;
    row.ok_or_else(|| StoreError::NotFound(format!("user {user}")))?
        .try_into()
}

/// A user has one default organization: making `org` the default clears it
/// in the other one, a row of another organization. That needs `iam:update`
/// there too (an org admin must not redirect a user's org-less requests
/// into their own organization), and gets its own audit entry there.
async fn clear_default_elsewhere(
    tx: &mut SqliteConnection,
    actor: &Actor,
    org: &OrgName,
    user: UserId,
) -> Result<(), StoreError> {
    let others: Vec<(String,)> = sqlx::query_as(
        "SELECT org FROM memberships WHERE user_id = ?1 AND is_default = 1 AND org != ?2",
    )
    .bind(user.to_string())
    .bind(org.as_str())
    .fetch_all(&mut *tx)
    .await?;
    for (other,) in others {
        let other = OrgName::parse(&other).map_err(corrupt(&other))?;
        actor
            .authority()
            .in_org(&other, Action::Update)
            .map_err(|_| Overreach::DefaultElsewhere)?;
        sqlx::query("UPDATE memberships SET is_default = 0 WHERE org = ?1 AND user_id = ?2")
            .bind(other.as_str())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?;
        let row = |is_default| Membership {
            org: other.clone(),
            user_id: user,
            is_default,
        };
        let change = Change {
            action: "member.update",
            org: Some(&other),
            target: SubjectRef::User(user).to_string(),
            before: Some(row(true).snapshot()),
            after: Some(row(false).snapshot()),
        };
        audit(tx, actor, change).await?;
    }
    Ok(())
}

async fn membership_in(
    conn: &mut SqliteConnection,
    org: &OrgName,
    user: UserId,
) -> Result<Option<Membership>, StoreError> {
    let row: Option<(bool,)> =
        sqlx::query_as("SELECT is_default FROM memberships WHERE org = ?1 AND user_id = ?2")
            .bind(org.as_str())
            .bind(user.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(is_default,)| Membership {
        org: org.clone(),
        user_id: user,
        is_default,
    }))
}

async fn role_id(conn: &mut SqliteConnection, key: &RoleKey) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM roles WHERE COALESCE(org, '') = ?1 AND name = ?2")
            .bind(key.org.as_ref().map_or("", OrgName::as_str))
            .bind(key.name.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(id,)| id))
}

/// Whether any subject holds a global role that grants `iam`.
async fn has_global_admin(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM role_bindings b JOIN roles r ON r.id = b.role_id \
         JOIN role_permissions p ON p.role_id = r.id \
         WHERE r.org IS NULL AND p.resource IN ('iam', '*')",
    )
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Inserts a role with its permissions; returns its id.
async fn insert_role(conn: &mut SqliteConnection, role: &Role) -> Result<String, StoreError> {
    let key = RoleKey::of(role);
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO roles (id, org, name, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(&id)
        .bind(key.org.as_ref().map(OrgName::as_str))
        .bind(key.name.as_str())
        .bind(now())
        .execute(&mut *conn)
        .await
        .map_err(unique(|| format!("role {key}")))?;
    insert_permissions(conn, &id, &role.permissions).await?;
    Ok(id)
}

async fn insert_permissions(
    conn: &mut SqliteConnection,
    role_id: &str,
    permissions: &[Permission],
) -> Result<(), StoreError> {
    for p in permissions {
        sqlx::query(
            "INSERT OR IGNORE INTO role_permissions (role_id, resource, action) VALUES (?1, ?2, ?3)",
        )
        .bind(role_id)
        .bind(p.resource_str())
        .bind(p.action_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_binding(
    conn: &mut SqliteConnection,
    role_id: &str,
    binding: &RoleBinding,
) -> Result<(), StoreError> {
    let (user_id, sa_id) = subject_columns(binding.subject);
    sqlx::query(
        "INSERT INTO role_bindings (id, role_id, user_id, service_account_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(role_id)
    .bind(user_id)
    .bind(sa_id)
    .bind(now())
    .execute(conn)
    .await
    .map_err(unique(|| {
        format!("binding of role {} to {}", binding.role, binding.subject)
    }))?;
    Ok(())
}

fn role_key(org: Option<&str>, name: &str) -> Result<RoleKey, StoreError> {
    Ok(RoleKey {
        org: org
            .map(|o| OrgName::parse(o).map_err(corrupt(o)))
            .transpose()?,
        name: RoleName::parse(name).map_err(corrupt(name))?,
    })
}

async fn role_by_id(conn: &mut SqliteConnection, id: &str) -> Result<Role, StoreError> {
    roles(conn, roles_where!("r.id = ?1"), id)
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("role {id}")))
}

async fn holders(
    conn: &mut SqliteConnection,
    role_id: &str,
) -> Result<Vec<SubjectRef>, StoreError> {
    let rows: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT user_id, service_account_id FROM role_bindings WHERE role_id = ?1")
            .bind(role_id)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|(u, s)| subject_row(u.as_deref(), s.as_deref()))
        .collect()
}

/// The roles bound to a subject (the check path's cold miss).
pub(super) async fn bound_roles(
    conn: &mut SqliteConnection,
    subject: SubjectRef,
) -> Result<Vec<std::sync::Arc<Role>>, StoreError> {
    // One statement per kind of subject, so each uses its index.
    let (sql, id) = match subject {
        SubjectRef::User(id) => (
            roles_where!("r.id IN (SELECT role_id FROM role_bindings WHERE user_id = ?1)"),
            id.to_string(),
        ),
        SubjectRef::ServiceAccount(id) => (
            roles_where!(
                "r.id IN (SELECT role_id FROM role_bindings WHERE service_account_id = ?1)"
            ),
            id.to_string(),
        ),
    };
    let roles = roles(conn, sql, &id).await?;
    Ok(roles.into_iter().map(std::sync::Arc::new).collect())
}

/// Roles with their permissions, in one query whatever selects them.
macro_rules! roles_where {
    ($condition:literal) => {
        concat!(
            "SELECT r.id, r.org, r.name, p.resource, p.action \
             FROM roles r LEFT JOIN role_permissions p ON p.role_id = r.id WHERE ",
            $condition,
            " ORDER BY r.name, r.id, p.resource, p.action"
        )
    };
}
use roles_where;

/// Runs a [`roles_where!`] query (one `?1`) and folds its rows, one per
/// permission, into roles.
async fn roles(
    conn: &mut SqliteConnection,
    sql: &'static str,
    bind: &str,
) -> Result<Vec<Role>, StoreError> {
    type Row = (
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(sql).bind(bind).fetch_all(conn).await?;
    let mut roles: Vec<(String, Role)> = Vec::new();
    for (id, org, name, resource, action) in rows {
        if roles.last().is_none_or(|(last, _)| *last != id) {
            let key = role_key(org.as_deref(), &name)?;
            let role = Role {
                name: key.name,
                scope: key.org.map_or(Scope::Global, Scope::Org),
                permissions: Vec::new(),
            };
            roles.push((id.clone(), role));
        }
        if let (Some(r), Some(a), Some((_, role))) = (resource, action, roles.last_mut()) {
            let permission =
                Permission::parse(&format!("{r}:{a}")).ok_or_else(|| StoreError::Corrupt {
                    id: id.clone(),
                    reason: format!("permission {r}:{a}"),
                })?;
            role.permissions.push(permission);
        }
    }
    Ok(roles.into_iter().map(|(_, role)| role).collect())
}

fn subject_columns(subject: SubjectRef) -> (Option<String>, Option<String>) {
    match subject {
        SubjectRef::User(id) => (Some(id.to_string()), None),
        SubjectRef::ServiceAccount(id) => (None, Some(id.to_string())),
    }
}

fn subject_row(user: Option<&str>, sa: Option<&str>) -> Result<SubjectRef, StoreError> {
    match (user, sa) {
        (Some(u), None) => Ok(SubjectRef::User(UserId::parse(u).map_err(corrupt(u))?)),
        (None, Some(s)) => Ok(SubjectRef::ServiceAccount(
            ServiceAccountId::parse(s).map_err(corrupt(s))?,
        )),
        _ => Err(StoreError::Corrupt {
            id: "role binding".into(),
            reason: "neither or both of user and service account".into(),
        }),
    }
}

async fn subject_exists(
    conn: &mut SqliteConnection,
    subject: SubjectRef,
) -> Result<(), StoreError> {
    let (user_id, sa_id) = subject_columns(subject);
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users WHERE id = ?1) + \
                (SELECT COUNT(*) FROM service_accounts WHERE id = ?2)",
    )
    .bind(user_id)
    .bind(sa_id)
    .fetch_one(conn)
    .await?;
    if n == 0 {
        return Err(StoreError::NotFound(subject.to_string()));
    }
    Ok(())
}

/// An org role can only be bound to a member of its organization (or one
/// of its service accounts): no cross-org grants.
async fn subject_in_org(
    conn: &mut SqliteConnection,
    subject: SubjectRef,
    org: &OrgName,
) -> Result<(), StoreError> {
    subject_exists(conn, subject).await?;
    let (user_id, sa_id) = subject_columns(subject);
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM memberships WHERE user_id = ?1 AND org = ?3) + \
                (SELECT COUNT(*) FROM service_accounts WHERE id = ?2 AND org = ?3)",
    )
    .bind(user_id)
    .bind(sa_id)
    .bind(org.as_str())
    .fetch_one(conn)
    .await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "{subject} is not a member of organization {org}; add the membership first"
        )));
    }
    Ok(())
}

async fn service_account_in(
    conn: &mut SqliteConnection,
    org: &OrgName,
    name: &ServiceAccountName,
) -> Result<Option<ServiceAccount>, StoreError> {
    let row: Option<(String, bool, i64, i64)> = sqlx::query_as(
        "SELECT id, enabled, created_at, updated_at FROM service_accounts WHERE org = ?1 AND name = ?2",
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
         WHERE service_account_id = ?1 ORDER BY created_at, id",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(ServiceAccount {
        id: ServiceAccountId::parse(&id).map_err(corrupt(&id))?,
        org: org.clone(),
        name: name.clone(),
        enabled,
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
async fn finish_service_account_change(
    mut tx: Transaction<'static, Sqlite>,
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

pub(super) async fn commit_audited_user(
    tx: Transaction<'static, Sqlite>,
    actor: &Actor,
    action: &'static str,
    before: Option<&User>,
    after: Option<&User>,
) -> Result<(), StoreError> {
    let user = after.or(before).expect("a user before or after");
    let change = Change {
        action,
        org: None,
        target: SubjectRef::User(user.id).to_string(),
        before: before.map(Snapshot::snapshot),
        after: after.map(Snapshot::snapshot),
    };
    commit_audited(tx, actor, change).await
}

async fn insert_key(
    conn: &mut SqliteConnection,
    account: ServiceAccountId,
    algorithm: &str,
    pem: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO service_account_keys \
         (id, service_account_id, algorithm, public_key_pem, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{IssuerName, Login, Subject},
        store::NewUser,
    };

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("iam.db")).await.unwrap();
        (dir, store)
    }

    fn actor() -> Actor {
        Actor::local("test")
    }

    async fn user(store: &SqliteStore, subject: &str) -> User {
        let new = NewUser {
            issuer: IssuerName::parse("dex").unwrap(),
            subject: Subject::parse(subject).unwrap(),
            login: Login::parse(subject).unwrap(),
            email: None,
            display_name: None,
        };
        store.add(&actor(), new).await.unwrap()
    }

    fn org(name: &str) -> OrgName {
        OrgName::parse(name).unwrap()
    }

    fn role(org: Option<&str>, name: &str, permissions: &[&str]) -> Role {
        Role {
            name: RoleName::parse(name).unwrap(),
            scope: org.map_or(Scope::Global, |o| Scope::Org(self::org(o))),
            permissions: permissions
                .iter()
                .map(|p| Permission::parse(p).unwrap())
                .collect(),
        }
    }

    #[tokio::test]
    async fn grants_reflect_memberships_bindings_and_their_removal() {
        let (_dir, store) = store().await;
        let alice = user(&store, "alice").await;
        let subject = SubjectRef::User(alice.id);
        let acme = org("acme");
        store.create_org(&actor(), &acme).await.unwrap();
        store
            .add_member(&actor(), &acme, &UserRef::Id(alice.id), true)
            .await
            .unwrap();
        let dev = role(Some("acme"), "dev", &["function:*", "image:get"]);
        store.create_role(&actor(), &dev).await.unwrap();
        let binding = RoleBinding {
            role: RoleKey::of(&dev),
            subject,
        };
        store.bind_role(&actor(), &binding).await.unwrap();

        let grants = store.load_grants(subject).await.unwrap();
        assert!(grants.enabled);
        assert_eq!(grants.default_org, Some(acme.clone()));
        assert_eq!(grants.roles.len(), 1);
        assert_eq!(*grants.roles[0], dev, "permissions round-trip");

        let again = store.bind_role(&actor(), &binding).await.unwrap_err();
        assert!(matches!(again, StoreError::AlreadyExists(_)), "{again}");

        // Leaving the organization drops its role bindings too.
        store
            .remove_member(&actor(), &acme, &UserRef::Id(alice.id))
            .await
            .unwrap();
        let grants = store.load_grants(subject).await.unwrap();
        assert!(grants.member_of.is_empty() && grants.roles.is_empty());
        assert!(store.list_bindings(Some(&acme)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn removing_a_user_removes_what_it_held_and_is_audited() {
        let (_dir, store) = store().await;
        let bob = user(&store, "bob").await;
        let acme = org("acme");
        store.create_org(&actor(), &acme).await.unwrap();
        store
            .add_member(&actor(), &acme, &UserRef::Id(bob.id), false)
            .await
            .unwrap();
        let viewer = role(Some("acme"), "viewer", &["*:get"]);
        store.create_role(&actor(), &viewer).await.unwrap();
        let binding = RoleBinding {
            role: RoleKey::of(&viewer),
            subject: SubjectRef::User(bob.id),
        };
        store.bind_role(&actor(), &binding).await.unwrap();
        store.remove(&actor(), &UserRef::Id(bob.id)).await.unwrap();
        assert!(store.list_members(&acme).await.unwrap().is_empty());
        assert!(store.list_bindings(Some(&acme)).await.unwrap().is_empty());
        let last = &store.list_audit(None, 1).await.unwrap()[0];
        assert_eq!(last.action, "user.remove");
        assert!(
            last.before
                .as_deref()
                .unwrap()
                .contains("\"login\":\"bob\"")
        );
        assert_eq!(last.after, None);
        // The organization is empty of members but still has a role.
        let err = store.delete_org(&actor(), &acme).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        store
            .delete_role(&actor(), &RoleKey::of(&viewer))
            .await
            .unwrap();
        store.delete_org(&actor(), &acme).await.unwrap();
    }

    #[tokio::test]
    async fn bootstrap_happens_once() {
        let (_dir, store) = store().await;
        let root = user(&store, "root").await;
        assert!(!store.has_global_admin().await.unwrap());
        let admin = store
            .bootstrap(&actor(), &UserRef::Id(root.id))
            .await
            .unwrap();
        assert_eq!(admin, role(None, "admin", &["*:*"]));
        assert!(store.has_global_admin().await.unwrap());
        let grants = store.load_grants(SubjectRef::User(root.id)).await.unwrap();
        assert!(grants.globally_grants("iam", crate::policy::Action::Delete));
        let other = user(&store, "other").await;
        let err = store
            .bootstrap(&actor(), &UserRef::Id(other.id))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    }

    /// Regression (issue 9, item 14): bootstrap widened an existing global
    /// role `admin`, and with it everyone who held it.
    #[tokio::test]
    async fn bootstrap_never_widens_an_existing_role() {
        let (_dir, store) = store().await;
        let viewer = role(None, "admin", &["function:get"]);
        store.create_role(&actor(), &viewer).await.unwrap();
        let holder = user(&store, "holder").await;
        let binding = RoleBinding {
            role: RoleKey::of(&viewer),
            subject: SubjectRef::User(holder.id),
        };
        store.bind_role(&actor(), &binding).await.unwrap();
        let root = user(&store, "root").await;
        let err = store
            .bootstrap(&actor(), &UserRef::Id(root.id))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("will not widen"), "{err}");
        assert_eq!(
            store.get_role(&RoleKey::of(&viewer)).await.unwrap(),
            Some(viewer)
        );
        assert!(!store.has_global_admin().await.unwrap());
    }

    #[tokio::test]
    async fn a_service_account_is_a_member_of_its_org_only() {
        let (_dir, store) = store().await;
        let (acme, globex) = (org("acme"), org("globex"));
        store.create_org(&actor(), &acme).await.unwrap();
        store.create_org(&actor(), &globex).await.unwrap();
        let name = ServiceAccountName::parse("ci").unwrap();
        let account = store
            .create_service_account(&actor(), &acme, &name, &[])
            .await
            .unwrap();
        let subject = SubjectRef::ServiceAccount(account.id);
        let foreign = role(Some("globex"), "admin", &["*:*"]);
        store.create_role(&actor(), &foreign).await.unwrap();
        let binding = RoleBinding {
            role: RoleKey::of(&foreign),
            subject,
        };
        let err = store.bind_role(&actor(), &binding).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let grants = store.load_grants(subject).await.unwrap();
        assert_eq!(grants.default_org, Some(acme.clone()));
        assert_eq!(grants.member_of.into_iter().collect::<Vec<_>>(), [acme]);
    }
}
