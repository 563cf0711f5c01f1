//! Groups of an organization: their members and the roles bound to them.
//!
//! The rule against escalation holds through groups: whoever adds or
//! removes a member, or binds or unbinds a role, needs authority over every
//! role involved (the group's roles, checked here against the rows, inside
//! the write's transaction).

use super::*;

#[async_trait]
impl GroupAdmin for SqlStore {
    async fn create_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<Group, StoreError> {
        let mut tx = self.begin().await?;
        org_in(&mut tx, org).await?;
        actor.authority().in_org(org, Action::Create)?;
        let group = Group {
            org: org.clone(),
            name: name.clone(),
            link: None,
            created_at: now(),
        };
        sqlx::query("INSERT INTO org_groups (id, org, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(org.as_str())
            .bind(name.as_str())
            .bind(group.created_at)
            .execute(&mut *tx)
            .await
            .map_err(unique(|| format!("group {group}")))?;
        let change = Change {
            action: "group.create",
            org: Some(org),
            target: group.to_string(),
            before: None,
            after: Some(group.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(group)
    }

    async fn get_group(
        &self,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<Option<Group>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(group_in(&mut conn, org, name).await?.map(|(_, g)| g))
    }

    async fn list_groups(&self, org: &OrgName) -> Result<Vec<Group>, StoreError> {
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT name, link, created_at FROM org_groups WHERE org = $1 ORDER BY name",
        )
        .bind(org.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(name, link, created_at)| {
                Ok(Group {
                    org: org.clone(),
                    name: GroupName::parse(&name).map_err(corrupt(&name))?,
                    link: link_column(link.as_deref())?,
                    created_at,
                })
            })
            .collect()
    }

    async fn delete_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<(Group, Vec<SubjectRef>), StoreError> {
        let mut tx = self.begin().await?;
        let (id, group) = existing(&mut tx, org, name).await?;
        // Deleting takes the group's roles from its members: the same
        // authority as removing each of them.
        let roles = group_roles(&mut tx, &id).await?;
        actor.authority().over_holder(&roles, Action::Delete)?;
        let members = members(&mut tx, &id).await?;
        sqlx::query("DELETE FROM org_groups WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            action: "group.delete",
            org: Some(org),
            target: group.to_string(),
            before: Some(group.snapshot()),
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok((group, members))
    }

    async fn add_group_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        subject: SubjectRef,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let (id, group) = existing(&mut tx, org, name).await?;
        actor.authority().in_org(org, Action::Update)?;
        let roles = group_roles(&mut tx, &id).await?;
        actor.authority().over_holder(&roles, Action::Create)?;
        member_may_join(&mut tx, subject, org).await?;
        let (user_id, sa_id) = subject_columns(subject);
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id, service_account_id, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(sa_id)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(unique(|| format!("{subject} in group {group}")))?;
        let change = Change {
            action: "group.member.add",
            org: Some(org),
            target: subject.to_string(),
            before: None,
            after: Some(
                serde_json::json!({ "group": group.to_string(), "member": subject.to_string() }),
            ),
        };
        commit_audited(tx, actor, change).await
    }

    async fn remove_group_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        subject: SubjectRef,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let (id, group) = existing(&mut tx, org, name).await?;
        actor.authority().in_org(org, Action::Update)?;
        let roles = group_roles(&mut tx, &id).await?;
        actor.authority().over_holder(&roles, Action::Delete)?;
        let (user_id, sa_id) = subject_columns(subject);
        let deleted = sqlx::query(
            "DELETE FROM group_members WHERE group_id = $1 \
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
            return Err(StoreError::NotFound(format!("{subject} in group {group}")));
        }
        let change = Change {
            action: "group.member.remove",
            org: Some(org),
            target: subject.to_string(),
            before: Some(
                serde_json::json!({ "group": group.to_string(), "member": subject.to_string() }),
            ),
            after: None,
        };
        commit_audited(tx, actor, change).await
    }

    async fn list_group_members(
        &self,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<Vec<(SubjectRef, String)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let (id, _) = existing(&mut conn, org, name).await?;
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT m.user_id, m.service_account_id, sa.org || '/' || sa.name \
             FROM group_members m LEFT JOIN service_accounts sa ON sa.id = m.service_account_id \
             WHERE m.group_id = $1 ORDER BY m.created_at",
        )
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|(user, sa, sa_name)| {
                let subject = subject_row(user.as_deref(), sa.as_deref())?;
                Ok((subject, sa_name.or(user).unwrap_or_default()))
            })
            .collect()
    }

    async fn bind_group_role(
        &self,
        actor: &Actor,
        org: &OrgName,
        binding: &GroupBinding,
    ) -> Result<Vec<SubjectRef>, StoreError> {
        let mut tx = self.begin().await?;
        let (group_id, group) = existing(&mut tx, org, &binding.group).await?;
        let (role_id, role) = role_for_group(&mut tx, &binding.role, org).await?;
        actor.authority().over_role(&role, Action::Create)?;
        sqlx::query(
            "INSERT INTO group_role_bindings (id, role_id, group_id, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&role_id)
        .bind(&group_id)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(unique(|| {
            format!("binding of role {} to group {group}", binding.role)
        }))?;
        let members = members(&mut tx, &group_id).await?;
        let change = Change {
            action: "groupbinding.create",
            org: Some(org),
            target: group.to_string(),
            before: None,
            after: Some(binding.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(members)
    }

    async fn unbind_group_role(
        &self,
        actor: &Actor,
        org: &OrgName,
        binding: &GroupBinding,
    ) -> Result<Vec<SubjectRef>, StoreError> {
        let mut tx = self.begin().await?;
        let (group_id, group) = existing(&mut tx, org, &binding.group).await?;
        let role_id = role_id(&mut tx, &binding.role)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {}", binding.role)))?;
        let role = role_by_id(&mut tx, &role_id).await?;
        actor.authority().over_role(&role, Action::Delete)?;
        let deleted =
            sqlx::query("DELETE FROM group_role_bindings WHERE role_id = $1 AND group_id = $2")
                .bind(&role_id)
                .bind(&group_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(format!(
                "binding of role {} to group {group}",
                binding.role
            )));
        }
        let members = members(&mut tx, &group_id).await?;
        let change = Change {
            action: "groupbinding.delete",
            org: Some(org),
            target: group.to_string(),
            before: Some(binding.snapshot()),
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok(members)
    }

    async fn link_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        link: Option<&GroupLink>,
    ) -> Result<Group, StoreError> {
        let mut tx = self.begin().await?;
        let (id, before) = existing(&mut tx, org, name).await?;
        actor.authority().in_org(org, Action::Update)?;
        // A new link gives the group's roles to whoever the source says
        // belongs (as adding members does); removing one takes them away.
        let roles = group_roles(&mut tx, &id).await?;
        if link.is_some() {
            actor.authority().over_holder(&roles, Action::Create)?;
        }
        if before.link.is_some() {
            actor.authority().over_holder(&roles, Action::Delete)?;
        }
        sqlx::query("UPDATE org_groups SET link = $1 WHERE id = $2")
            .bind(link.map(ToString::to_string))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let after = Group {
            link: link.cloned(),
            ..before.clone()
        };
        let change = Change {
            action: if link.is_some() {
                "group.link"
            } else {
                "group.unlink"
            },
            org: Some(org),
            target: after.to_string(),
            before: Some(before.snapshot()),
            after: Some(after.snapshot()),
        };
        commit_audited(tx, actor, change).await?;
        Ok(after)
    }

    async fn list_group_bindings(&self, org: &OrgName) -> Result<Vec<GroupBinding>, StoreError> {
        let rows: Vec<(Option<String>, String, String)> = sqlx::query_as(
            "SELECT r.org, r.name, g.name FROM group_role_bindings b \
             JOIN roles r ON r.id = b.role_id JOIN org_groups g ON g.id = b.group_id \
             WHERE g.org = $1 ORDER BY g.name, r.name",
        )
        .bind(org.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(role_org, role, group)| {
                Ok(GroupBinding {
                    role: role_key(role_org.as_deref(), &role)?,
                    group: GroupName::parse(&group).map_err(corrupt(&group))?,
                })
            })
            .collect()
    }
}

/// A stored link, read back.
fn link_column(link: Option<&str>) -> Result<Option<GroupLink>, StoreError> {
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

async fn existing(
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
async fn member_may_join(
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
async fn role_for_group(
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
