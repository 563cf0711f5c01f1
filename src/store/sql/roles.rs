//! Roles and their permissions; every role is read by one query shape.

use super::*;

#[async_trait]
impl RoleAdmin for SqlStore {
    async fn create_role(&self, actor: &Actor, role: &Role) -> Result<Role, StoreError> {
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

    async fn get_role(&self, key: &RoleKey) -> Result<Option<Role>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(id) = role_id(&mut conn, key).await? else {
            return Ok(None);
        };
        Ok(Some(role_by_id(&mut conn, &id).await?))
    }

    /// Roles of one organization, or the global ones.
    async fn list_roles(&self, org: Option<&OrgName>) -> Result<Vec<Role>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let org = org.map_or("", OrgName::as_str);
        roles(&mut conn, roles_where!("COALESCE(r.org, '') = $1"), org).await
    }

    /// Deletes a role and its bindings; returns the subjects that held it,
    /// whose cached grants are now stale.
    async fn delete_role(
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
        sqlx::query("DELETE FROM roles WHERE id = $1")
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
}

pub(super) async fn role_id(
    conn: &mut AnyConnection,
    key: &RoleKey,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM roles WHERE COALESCE(org, '') = $1 AND name = $2")
            .bind(key.org.as_ref().map_or("", OrgName::as_str))
            .bind(key.name.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(id,)| id))
}

/// Whether any subject holds, through its global roles, every `iam` action:
/// someone who can administer everything. (A global role granting only some
/// of `iam`, such as an auditor's `*:get`, does not count: `bootstrap` must
/// stay possible while nobody can write.)
pub(super) async fn has_global_admin(conn: &mut AnyConnection) -> Result<bool, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM ( \
           SELECT COALESCE(b.user_id, b.service_account_id) AS subject \
           FROM role_bindings b JOIN roles r ON r.id = b.role_id \
           JOIN role_permissions p ON p.role_id = r.id \
           WHERE r.org IS NULL AND p.resource IN ('iam', '*') \
           GROUP BY subject \
           HAVING COUNT(CASE WHEN p.action = '*' THEN 1 END) > 0 \
               OR (COUNT(CASE WHEN p.action = 'get' THEN 1 END) > 0 \
                   AND COUNT(CASE WHEN p.action = 'create' THEN 1 END) > 0 \
                   AND COUNT(CASE WHEN p.action = 'update' THEN 1 END) > 0 \
                   AND COUNT(CASE WHEN p.action = 'delete' THEN 1 END) > 0)) AS admins",
    )
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Inserts a role with its permissions; returns its id.
pub(super) async fn insert_role(
    conn: &mut AnyConnection,
    role: &Role,
) -> Result<String, StoreError> {
    let key = RoleKey::of(role);
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO roles (id, org, name, created_at) VALUES ($1, $2, $3, $4)")
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

pub(super) async fn insert_permissions(
    conn: &mut AnyConnection,
    role_id: &str,
    permissions: &[Permission],
) -> Result<(), StoreError> {
    for p in permissions {
        sqlx::query(
            "INSERT INTO role_permissions (role_id, resource, action) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(role_id)
        .bind(p.resource_str())
        .bind(p.action_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(super) fn role_key(org: Option<&str>, name: &str) -> Result<RoleKey, StoreError> {
    Ok(RoleKey {
        org: org
            .map(|o| OrgName::parse(o).map_err(corrupt(o)))
            .transpose()?,
        name: RoleName::parse(name).map_err(corrupt(name))?,
    })
}

pub(super) async fn role_by_id(conn: &mut AnyConnection, id: &str) -> Result<Role, StoreError> {
    roles(conn, roles_where!("r.id = $1"), id)
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("role {id}")))
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

/// Runs a [`roles_where!`] query (one `$1`) and folds its rows, one per
/// permission, into roles.
pub(super) async fn roles(
    conn: &mut AnyConnection,
    sql: &'static str,
    bind: &str,
) -> Result<Vec<Role>, StoreError> {
    let roles = roles_with_ids(conn, sql, bind).await?;
    Ok(roles.into_iter().map(|(_, role)| role).collect())
}

/// [`roles`], each with its id.
async fn roles_with_ids(
    conn: &mut AnyConnection,
    sql: &'static str,
    bind: &str,
) -> Result<Vec<(String, Role)>, StoreError> {
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
    Ok(roles)
}
