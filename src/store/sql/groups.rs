//! Groups of an organization: their members and the roles bound to them.
//!
//! The rule against escalation holds through groups: whoever adds or
//! removes a member, or binds or unbinds a role, needs authority over every
//! role involved (the group's roles, checked here against the rows, inside
//! the write's transaction).

use super::{
    group_rows::{
        existing, group_in, group_roles, link_column, member_may_join, members, role_for_group,
    },
    *,
};

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
