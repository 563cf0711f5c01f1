//! Roles, role bindings and `bootstrap`.

use super::{Iam, IamError, Stale, for_role, in_org_or_global};
use crate::{
    domain::{OrgName, ServiceAccountName, SubjectRef},
    policy::{Action, rbac::Role},
    store::{Actor, RoleBinding, RoleKey, User, UserRef},
};

/// A binding's subject as a request names it: a user, or a service account
/// by `ORG/NAME`.
#[derive(Debug, Clone)]
pub enum SubjectName {
    User(UserRef),
    ServiceAccount(OrgName, ServiceAccountName),
}

impl Iam {
    pub async fn create_role(&self, actor: &Actor, role: &Role) -> Result<Role, IamError> {
        for_role(actor, &RoleKey::of(role), Action::Create)?;
        Ok(self.store.create_role(actor, role).await?)
    }

    pub async fn get_role(&self, actor: &Actor, key: &RoleKey) -> Result<Role, IamError> {
        for_role(actor, key, Action::Get)?;
        let role = self.store.get_role(key).await?;
        role.ok_or_else(|| IamError::not_found(format!("role {key}")))
    }

    /// One organization's roles, or the global ones.
    pub async fn list_roles(
        &self,
        actor: &Actor,
        org: Option<&OrgName>,
    ) -> Result<Vec<Role>, IamError> {
        in_org_or_global(actor, org, Action::Get)?;
        Ok(self.store.list_roles(org).await?)
    }

    pub async fn delete_role(&self, actor: &Actor, key: &RoleKey) -> Result<Role, IamError> {
        for_role(actor, key, Action::Delete)?;
        let (role, holders) = self.store.delete_role(actor, key).await?;
        let mut stale: Vec<Stale> = holders.into_iter().map(Stale::Grants).collect();
        if self.any_linked().await {
            stale.push(Stale::LinkedGroups);
        }
        self.forget(&stale).await;
        Ok(role)
    }

    /// Binds a role; returns the binding with its subject's display name (a
    /// user's id, a service account's `ORG/NAME`).
    pub async fn bind(
        &self,
        actor: &Actor,
        role: RoleKey,
        subject: &SubjectName,
    ) -> Result<(RoleBinding, String), IamError> {
        for_role(actor, &role, Action::Create)?;
        let (subject, name) = self.resolve(subject).await?;
        let binding = RoleBinding { role, subject };
        self.store.bind_role(actor, &binding).await?;
        self.forget(&[Stale::Grants(subject)]).await;
        Ok((binding, name))
    }

    pub async fn unbind(
        &self,
        actor: &Actor,
        role: RoleKey,
        subject: &SubjectName,
    ) -> Result<(RoleBinding, String), IamError> {
        for_role(actor, &role, Action::Delete)?;
        let (subject, name) = self.resolve(subject).await?;
        let binding = RoleBinding { role, subject };
        self.store.unbind_role(actor, &binding).await?;
        self.forget(&[Stale::Grants(subject)]).await;
        Ok((binding, name))
    }

    /// Bindings of one organization's roles, or of the global roles.
    pub async fn list_bindings(
        &self,
        actor: &Actor,
        org: Option<&OrgName>,
    ) -> Result<Vec<(RoleBinding, String)>, IamError> {
        in_org_or_global(actor, org, Action::Get)?;
        Ok(self.store.list_bindings(org).await?)
    }

    /// Makes `user` the first global admin; refused once one exists.
    pub async fn bootstrap(&self, actor: &Actor, user: &User) -> Result<Role, IamError> {
        let role = self.store.bootstrap(actor, &UserRef::Id(user.id)).await?;
        self.forget(&[Stale::User(user.clone())]).await;
        Ok(role)
    }

    /// Whether a global admin exists (then `bootstrap` is refused).
    pub async fn has_global_admin(&self) -> Result<bool, IamError> {
        Ok(self.store.has_global_admin().await?)
    }

    /// Called only after the caller is authorized on the role, so a
    /// `NOT_FOUND` tells nothing to a caller who may not bind it.
    pub(super) async fn resolve(
        &self,
        subject: &SubjectName,
    ) -> Result<(SubjectRef, String), IamError> {
        match subject {
            SubjectName::User(r) => {
                let user = self.store.get(r).await?;
                let user = user.ok_or_else(|| IamError::not_found(format!("user {r}")))?;
                Ok((SubjectRef::User(user.id), user.id.to_string()))
            }
            SubjectName::ServiceAccount(org, name) => {
                let account = self.store.service_account(org, name).await?;
                let account = account
                    .ok_or_else(|| IamError::not_found(format!("service account {org}/{name}")))?;
                Ok((SubjectRef::ServiceAccount(account.id), account.issuer()))
            }
        }
    }
}
