//! Users, organizations and memberships.

use super::{Iam, IamError, Stale, global, in_org};
use crate::{
    domain::OrgName,
    policy::Action,
    store::{Actor, Membership, NewUser, Organization, User, UserRef},
};

impl Iam {
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User, IamError> {
        global(actor, Action::Create)?;
        if !self.sources.contains(&new.issuer) {
            return Err(IamError::Invalid(format!(
                "issuer: {} is not a configured identity source",
                new.issuer
            )));
        }
        let user = self.store.add(actor, new).await?;
        // A "no such user" answer may be cached for this identity.
        self.forget(&[Stale::User(user.clone())]).await;
        Ok(user)
    }

    pub async fn get_user(&self, actor: &Actor, user: &UserRef) -> Result<User, IamError> {
        let found = self.find_user(actor, user).await?;
        found.ok_or_else(|| IamError::not_found(format!("user {user}")))
    }

    /// The user an identity names, if registered (for `bootstrap`).
    pub async fn find_user(&self, actor: &Actor, user: &UserRef) -> Result<Option<User>, IamError> {
        global(actor, Action::Get)?;
        Ok(self.store.get(user).await?)
    }

    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<User>, IamError> {
        global(actor, Action::Get)?;
        Ok(self.store.list().await?)
    }

    pub async fn set_user_enabled(
        &self,
        actor: &Actor,
        user: &UserRef,
        enabled: bool,
    ) -> Result<User, IamError> {
        global(actor, Action::Update)?;
        let user = self.store.set_enabled(actor, user, enabled).await?;
        self.forget(&[Stale::User(user.clone())]).await;
        Ok(user)
    }

    pub async fn delete_user(&self, actor: &Actor, user: &UserRef) -> Result<User, IamError> {
        global(actor, Action::Delete)?;
        let user = self.store.remove(actor, user).await?;
        self.forget(&[Stale::User(user.clone())]).await;
        Ok(user)
    }

    pub async fn create_org(
        &self,
        actor: &Actor,
        name: &OrgName,
    ) -> Result<Organization, IamError> {
        global(actor, Action::Create)?;
        let org = self.store.create_org(actor, name).await?;
        self.forget(&[Stale::Org(name.clone())]).await;
        Ok(org)
    }

    pub async fn get_org(&self, actor: &Actor, name: &OrgName) -> Result<Organization, IamError> {
        in_org(actor, name, Action::Get)?;
        let org = self.store.get_org(name).await?;
        org.ok_or_else(|| IamError::not_found(format!("organization {name}")))
    }

    pub async fn list_orgs(&self, actor: &Actor) -> Result<Vec<Organization>, IamError> {
        global(actor, Action::Get)?;
        Ok(self.store.list_orgs().await?)
    }

    pub async fn delete_org(
        &self,
        actor: &Actor,
        name: &OrgName,
    ) -> Result<Organization, IamError> {
        global(actor, Action::Delete)?;
        let org = self.store.delete_org(actor, name).await?;
        self.forget(&[Stale::Org(name.clone())]).await;
        Ok(org)
    }

    pub async fn add_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        user: &UserRef,
        is_default: bool,
    ) -> Result<(User, Membership), IamError> {
        in_org(actor, org, Action::Create)?;
        let (user, membership) = self.store.add_member(actor, org, user, is_default).await?;
        self.forget(&[Stale::User(user.clone())]).await;
        Ok((user, membership))
    }

    pub async fn remove_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        user: &UserRef,
    ) -> Result<(User, Membership), IamError> {
        in_org(actor, org, Action::Delete)?;
        let (user, membership) = self.store.remove_member(actor, org, user).await?;
        self.forget(&[Stale::User(user.clone())]).await;
        Ok((user, membership))
    }

    pub async fn list_members(
        &self,
        actor: &Actor,
        org: &OrgName,
    ) -> Result<Vec<(User, Membership)>, IamError> {
        in_org(actor, org, Action::Get)?;
        Ok(self.store.list_members(org).await?)
    }
}
