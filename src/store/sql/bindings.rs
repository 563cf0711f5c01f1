//! Role bindings, and `bootstrap`: the first global administrator.

use super::*;

#[async_trait]
impl BindingAdmin for SqlStore {
    /// Binds a role. A user must be a member of an org role's organization;
    /// a service account must belong to it.
    async fn bind_role(
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

    async fn unbind_role(
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
            "DELETE FROM role_bindings WHERE role_id = $1 \
             AND user_id IS NOT DISTINCT FROM $2 \
             AND service_account_id IS NOT DISTINCT FROM $3",
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
    async fn list_bindings(
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
             WHERE COALESCE(r.org, '') = $1 ORDER BY r.name, b.created_at",
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

    /// Whether any subject holds a global role that grants `iam`.
    async fn has_global_admin(&self) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        has_global_admin(&mut conn).await
    }

    /// Makes `user` the first global admin: the global role `admin` (`*:*`)
    /// is created if missing and bound to the user, in one transaction that
    /// first re-checks that no global admin exists.
    async fn bootstrap(&self, actor: &Actor, user: &UserRef) -> Result<Role, StoreError> {
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
}

pub(super) async fn insert_binding(
    conn: &mut AnyConnection,
    role_id: &str,
    binding: &RoleBinding,
) -> Result<(), StoreError> {
    let (user_id, sa_id) = subject_columns(binding.subject);
    sqlx::query(
        "INSERT INTO role_bindings (id, role_id, user_id, service_account_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
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

/// Who holds the role: those bound to it, and the members of the groups
/// bound to it.
pub(super) async fn holders(
    conn: &mut AnyConnection,
    role_id: &str,
) -> Result<Vec<SubjectRef>, StoreError> {
    let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT user_id, service_account_id FROM role_bindings WHERE role_id = $1 \
         UNION SELECT m.user_id, m.service_account_id FROM group_members m \
         JOIN group_role_bindings b ON b.group_id = m.group_id WHERE b.role_id = $1",
    )
    .bind(role_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|(u, s)| subject_row(u.as_deref(), s.as_deref()))
        .collect()
}

/// The roles bound to `subject`, each a copy of its own (admin writes).
pub(super) async fn bound_roles(
    conn: &mut AnyConnection,
    subject: SubjectRef,
) -> Result<Vec<Arc<Role>>, StoreError> {
    let roles = bound_role_values(conn, subject).await?;
    Ok(roles.into_iter().map(Arc::new).collect())
}

/// The roles bound to `subject`, as read.
pub(super) async fn bound_role_values(
    conn: &mut AnyConnection,
    subject: SubjectRef,
) -> Result<Vec<Role>, StoreError> {
    // One statement per kind of subject, so each uses its index.
    let (sql, id) = match subject {
        SubjectRef::User(id) => (
            roles_where!("r.id IN (SELECT role_id FROM role_bindings WHERE user_id = $1)"),
            id.to_string(),
        ),
        SubjectRef::ServiceAccount(id) => (
            roles_where!(
                "r.id IN (SELECT role_id FROM role_bindings WHERE service_account_id = $1)"
            ),
            id.to_string(),
        ),
    };
    super::roles::roles(conn, sql, &id).await
}
