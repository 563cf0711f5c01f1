//! The rows of groups, read inside a transaction: by the group admin
//! writes (`groups.rs`), by the check's grants and linked groups
//! (`reads.rs`), and when a membership ends (`orgs.rs`).

use super::*;

/// A stored link, read back.
pub(super) fn link_column(link: Option<&str>) -> Result<Option<GroupLink>, StoreError> {
    link.map(|l| GroupLink::parse(l).map_err(corrupt(l)))
        .transpose()
}

/// Every linked group with its roles: for [`CheckStore::linked_groups`].
pub(super) async fn linked_groups(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, OrgName, GroupName, GroupLink)>, StoreError> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, org, name, link FROM org_groups WHERE link IS NOT NULL ORDER BY org, name",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, org, name, link)| {
            Ok((
                id,
                OrgName::parse(&org).map_err(corrupt(&org))?,
                GroupName::parse(&name).map_err(corrupt(&name))?,
                GroupLink::parse(&link).map_err(corrupt(&link))?,
            ))
        })
        .collect()
}

/// The group's id and record, if it exists.
pub(super) async fn group_in(
    conn: &mut AnyConnection,
    org: &OrgName,
    name: &GroupName,
) -> Result<Option<(String, Group)>, StoreError> {
    let row: Option<(String, Option<String>, i64)> =
        sqlx::query_as("SELECT id, link, created_at FROM org_groups WHERE org = $1 AND name = $2")
            .bind(org.as_str())
            .bind(name.as_str())
            .fetch_optional(conn)
            .await?;
    let Some((id, link, created_at)) = row else {
        return Ok(None);
    };
    let group = Group {
        org: org.clone(),
        name: name.clone(),
        link: link_column(link.as_deref())?,
        created_at,
    };
    Ok(Some((id, group)))
}

pub(super) async fn existing(
    conn: &mut AnyConnection,
    org: &OrgName,
    name: &GroupName,
) -> Result<(String, Group), StoreError> {
    group_in(conn, org, name)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("group {name} in organization {org}")))
}

/// The roles bound to a group (by its id).
pub(super) async fn group_roles(
    conn: &mut AnyConnection,
    group_id: &str,
) -> Result<Vec<Arc<Role>>, StoreError> {
    let sql = roles_where!("r.id IN (SELECT role_id FROM group_role_bindings WHERE group_id = $1)");
    let roles = super::roles::roles(conn, sql, group_id).await?;
    Ok(roles.into_iter().map(Arc::new).collect())
}

/// A group's members (by its id).
pub(super) async fn members(
    conn: &mut AnyConnection,
    group_id: &str,
) -> Result<Vec<SubjectRef>, StoreError> {
    let rows: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT user_id, service_account_id FROM group_members WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|(u, s)| subject_row(u.as_deref(), s.as_deref()))
        .collect()
}

/// Any user may join a group (it makes them a member of its organization
/// for a check); a service account only a group of its own organization.
pub(super) async fn member_may_join(
    conn: &mut AnyConnection,
    subject: SubjectRef,
    org: &OrgName,
) -> Result<(), StoreError> {
    subject_exists(conn, subject).await?;
    if let SubjectRef::ServiceAccount(id) = subject {
        let (account_org,): (String,) =
            sqlx::query_as("SELECT org FROM service_accounts WHERE id = $1")
                .bind(id.to_string())
                .fetch_one(conn)
                .await?;
        if account_org != org.as_str() {
            return Err(StoreError::Conflict(format!(
                "{subject} belongs to organization {account_org}, not {org}"
            )));
        }
    }
    Ok(())
}

/// The role to bind to a group of `org`: one of `org`'s, or a global one;
/// another organization's would never apply there.
pub(super) async fn role_for_group(
    conn: &mut AnyConnection,
    key: &RoleKey,
    org: &OrgName,
) -> Result<(String, Role), StoreError> {
    if key.org.as_ref().is_some_and(|o| o != org) {
        return Err(StoreError::Conflict(format!(
            "role {key} is another organization's; a group of {org} can hold {org}'s roles \
             or global ones"
        )));
    }
    let id = role_id(conn, key)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("role {key}")))?;
    let role = role_by_id(conn, &id).await?;
    Ok((id, role))
}

/// The groups `subject` belongs to, each with its roles: for its grants.
pub(super) async fn subject_groups(
    conn: &mut AnyConnection,
    subject: SubjectRef,
) -> Result<Vec<(String, OrgName, GroupName)>, StoreError> {
    let (column, id) = match subject {
        SubjectRef::User(id) => ("user", id.to_string()),
        SubjectRef::ServiceAccount(id) => ("account", id.to_string()),
    };
    let sql = if column == "user" {
        "SELECT g.id, g.org, g.name FROM org_groups g JOIN group_members m ON m.group_id = g.id \
         WHERE m.user_id = $1 ORDER BY g.org, g.name"
    } else {
        "SELECT g.id, g.org, g.name FROM org_groups g JOIN group_members m ON m.group_id = g.id \
         WHERE m.service_account_id = $1 ORDER BY g.org, g.name"
    };
    let rows: Vec<(String, String, String)> = sqlx::query_as(sql).bind(id).fetch_all(conn).await?;
    rows.into_iter()
        .map(|(id, org, name)| {
            Ok((
                id,
                OrgName::parse(&org).map_err(corrupt(&org))?,
                GroupName::parse(&name).map_err(corrupt(&name))?,
            ))
        })
        .collect()
}
