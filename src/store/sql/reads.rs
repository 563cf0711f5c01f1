//! The check path's reads: grants and service accounts.

use super::*;

impl SqlStore {
    pub(super) async fn load_grants(&self, subject: SubjectRef) -> Result<Grants, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut grants = Grants::default();
        match subject {
            SubjectRef::User(id) => {
                let (Flag(enabled),): (Flag,) =
                    match sqlx::query_as("SELECT enabled FROM users WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?
                    {
                        Some(row) => row,
                        None => return Ok(grants),
                    };
                grants.enabled = enabled;
                let orgs: Vec<(String, Flag)> =
                    sqlx::query_as("SELECT org, is_default FROM memberships WHERE user_id = $1")
                        .bind(id.to_string())
                        .fetch_all(&mut *conn)
                        .await?;
                for (org, is_default) in orgs {
                    let org = OrgName::parse(&org).map_err(corrupt(&org))?;
                    if is_default.0 {
                        grants.default_org = Some(org.clone());
                    }
                    grants.member_of.insert(org);
                }
            }
            SubjectRef::ServiceAccount(id) => {
                let row: Option<(String, Flag)> =
                    sqlx::query_as("SELECT org, enabled FROM service_accounts WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some((org, enabled)) = row else {
                    return Ok(grants);
                };
                let org = OrgName::parse(&org).map_err(corrupt(&org))?;
                grants.enabled = enabled.0;
                grants.default_org = Some(org.clone());
                grants.member_of.insert(org);
            }
        }
        let roles = bound_role_values(&mut conn, subject).await?;
        grants.roles = roles
            .into_iter()
            .map(|role| self.roles.intern(role))
            .collect();
        let mut groups = Vec::new();
        for (id, org, name) in group_rows::subject_groups(&mut conn, subject).await? {
            let roles = group_rows::group_roles(&mut conn, &id).await?;
            let roles = roles
                .into_iter()
                .map(|role| self.roles.intern(Arc::unwrap_or_clone(role)))
                .collect();
            groups.push(Arc::new(GroupGrant { org, name, roles }));
        }
        grants.groups = groups.into();
        Ok(grants)
    }

    pub(super) async fn load_linked_groups(&self) -> Result<LinkedGroups, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut groups = Vec::new();
        for (id, org, name, link) in group_rows::linked_groups(&mut conn).await? {
            let roles = group_rows::group_roles(&mut conn, &id).await?;
            let roles = roles
                .into_iter()
                .map(|role| self.roles.intern(Arc::unwrap_or_clone(role)))
                .collect();
            groups.push((link, Arc::new(GroupGrant { org, name, roles })));
        }
        Ok(LinkedGroups::new(groups))
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

#[async_trait]
impl CheckStore for SqlStore {
    async fn find_by_identity(
        &self,
        issuer: &IssuerName,
        subject: &Subject,
    ) -> Result<Option<User>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE issuer = $1 AND subject = $2"
        );
        let row: Option<UserRow> = sqlx::query_as(sql)
            .bind(issuer.as_str())
            .bind(subject.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut user) = row.map(User::try_from).transpose()? else {
            return Ok(None);
        };
        // Equal by the query: the caller's copies are shared (with the
        // principal every cached identity holds) instead of kept twice.
        user.issuer = issuer.clone();
        user.subject = subject.clone();
        Ok(Some(user))
    }

    async fn grants(&self, subject: SubjectRef) -> Result<Grants, StoreError> {
        self.load_grants(subject).await
    }

    async fn service_account(
        &self,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        self.load_service_account(org, name).await
    }

    async fn org_exists(&self, org: &OrgName) -> Result<bool, StoreError> {
        Ok(self.get_org(org).await?.is_some())
    }

    async fn update_login(&self, user: &UserRef, login: &Login) -> Result<User, StoreError> {
        self.rename(user, login).await
    }

    async fn linked_groups(&self) -> Result<LinkedGroups, StoreError> {
        self.load_linked_groups().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 FROM users LIMIT 1")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
