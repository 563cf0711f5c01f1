//! Organizations and their members.

use super::*;

#[async_trait]
impl OrgAdmin for SqlStore {
    async fn create_org(&self, actor: &Actor, name: &OrgName) -> Result<Organization, StoreError> {
        let mut tx = self.begin().await?;
        let org = Organization {
            name: name.clone(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO organizations (name, created_at) VALUES ($1, $2)")
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

    async fn get_org(&self, name: &OrgName) -> Result<Option<Organization>, StoreError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT name, created_at FROM organizations WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(n, at)| org_row(&n, at)).transpose()
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, created_at FROM organizations ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|(n, at)| org_row(n, *at)).collect()
    }

    /// Refuses while the organization still has members, roles or service
    /// accounts: deleting them is a decision of its own, made one by one.
    async fn delete_org(&self, actor: &Actor, name: &OrgName) -> Result<Organization, StoreError> {
        let mut tx = self.begin().await?;
        let org = org_in(&mut tx, name).await?;
        let (members, roles, accounts, groups): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM memberships WHERE org = $1), \
                    (SELECT COUNT(*) FROM roles WHERE org = $1), \
                    (SELECT COUNT(*) FROM service_accounts WHERE org = $1), \
                    (SELECT COUNT(*) FROM org_groups WHERE org = $1)",
        )
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if members + roles + accounts + groups > 0 {
            return Err(StoreError::Conflict(format!(
                "organization {name} still has {members} member(s), {roles} role(s), \
                 {accounts} service account(s) and {groups} group(s); remove them first"
            )));
        }
        sqlx::query("DELETE FROM organizations WHERE name = $1")
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
    async fn add_member(
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
            "INSERT INTO memberships (org, user_id, is_default, created_at) VALUES ($1, $2, $3, $4) \
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
    async fn remove_member(
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
        // The user's bindings in this organization go with the membership,
        // and so do the user's places in its groups: a group of an
        // organization makes one a member, so leaving it would otherwise
        // leave the user in (a linked group's membership is the source's).
        let subject = SubjectRef::User(user.id);
        let mut unbound: Vec<_> = bound_roles(&mut tx, subject)
            .await?
            .into_iter()
            .filter(|r| r.scope == Scope::Org(org.clone()))
            .collect();
        let mut left = Vec::new();
        for (group_id, group_org, name) in group_rows::subject_groups(&mut tx, subject).await? {
            if group_org == *org {
                unbound.extend(group_rows::group_roles(&mut tx, &group_id).await?);
                left.push(name.to_string());
            }
        }
        actor.authority().over_holder(&unbound, Action::Delete)?;
        sqlx::query(
            "DELETE FROM group_members WHERE user_id = $2 \
             AND group_id IN (SELECT id FROM org_groups WHERE org = $1)",
        )
        .bind(org.as_str())
        .bind(user.id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM memberships WHERE org = $1 AND user_id = $2")
            .bind(org.as_str())
            .bind(user.id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM role_bindings WHERE user_id = $2 \
             AND role_id IN (SELECT id FROM roles WHERE org = $1)",
        )
        .bind(org.as_str())
        .bind(user.id.to_string())
        .execute(&mut *tx)
        .await?;
        let mut before = membership.snapshot();
        before["groups"] = serde_json::json!(left);
        let change = Change {
            action: "member.remove",
            org: Some(org),
            target: subject.to_string(),
            before: Some(before),
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok((user, membership))
    }

    async fn list_members(&self, org: &OrgName) -> Result<Vec<(User, Membership)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct MemberRow {
            #[sqlx(flatten)]
            user: UserRow,
            #[sqlx(try_from = "Flag")]
            is_default: bool,
        }
        let rows: Vec<MemberRow> = sqlx::query_as(SELECT_MEMBERS)
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
}

pub(super) fn org_row(name: &str, created_at: i64) -> Result<Organization, StoreError> {
    Ok(Organization {
        name: OrgName::parse(name).map_err(corrupt(name))?,
        created_at,
    })
}

pub(super) async fn org_in(
    conn: &mut AnyConnection,
    name: &OrgName,
) -> Result<Organization, StoreError> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT name, created_at FROM organizations WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(conn)
            .await?;
    let (n, at) = row.ok_or_else(|| StoreError::NotFound(format!("organization {name}")))?;
    org_row(&n, at)
}

/// A user has one default organization: making `org` the default clears it
/// in the other one, a row of another organization. That needs `iam:update`
/// there too (an org admin must not redirect a user's org-less requests
/// into their own organization), and gets its own audit entry there.
pub(super) async fn clear_default_elsewhere(
    tx: &mut AnyConnection,
    actor: &Actor,
    org: &OrgName,
    user: UserId,
) -> Result<(), StoreError> {
    let others: Vec<(String,)> = sqlx::query_as(
        "SELECT org FROM memberships WHERE user_id = $1 AND is_default = TRUE AND org != $2",
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
        sqlx::query("UPDATE memberships SET is_default = FALSE WHERE org = $1 AND user_id = $2")
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
        record(tx, actor, change).await?;
    }
    Ok(())
}

pub(super) async fn membership_in(
    conn: &mut AnyConnection,
    org: &OrgName,
    user: UserId,
) -> Result<Option<Membership>, StoreError> {
    let row: Option<(Flag,)> =
        sqlx::query_as("SELECT is_default FROM memberships WHERE org = $1 AND user_id = $2")
            .bind(org.as_str())
            .bind(user.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(is_default,)| Membership {
        org: org.clone(),
        user_id: user,
        is_default: is_default.into(),
    }))
}
