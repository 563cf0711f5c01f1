//! Groups: an organization's named sets of users and service accounts,
//! whose bound roles their members hold there (issue 15).

use super::{Iam, IamError, Stale, in_org, roles::SubjectName};
use crate::{
    domain::{GroupLink, GroupName, OrgName, SubjectRef},
    policy::Action,
    store::{Actor, Group, GroupBinding, RoleKey},
};

impl Iam {
    pub async fn create_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<Group, IamError> {
        in_org(actor, org, Action::Create)?;
        Ok(self.store.create_group(actor, org, name).await?)
    }

    pub async fn get_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<(Group, Vec<String>, Vec<RoleKey>), IamError> {
        in_org(actor, org, Action::Get)?;
        let group = self.store.get_group(org, name).await?;
        let group = group
            .ok_or_else(|| IamError::not_found(format!("group {name} in organization {org}")))?;
        let members = self.store.list_group_members(org, name).await?;
        let roles = self
            .store
            .list_group_bindings(org)
            .await?
            .into_iter()
            .filter(|b| b.group == *name)
            .map(|b| b.role)
            .collect();
        Ok((group, members.into_iter().map(|(_, n)| n).collect(), roles))
    }

    pub async fn list_groups(&self, actor: &Actor, org: &OrgName) -> Result<Vec<Group>, IamError> {
        in_org(actor, org, Action::Get)?;
        Ok(self.store.list_groups(org).await?)
    }

    /// Its members lose its roles on their next check.
    pub async fn delete_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<Group, IamError> {
        in_org(actor, org, Action::Delete)?;
        let (group, members) = self.store.delete_group(actor, org, name).await?;
        self.forget_grants(members, group.link.is_some()).await;
        Ok(group)
    }

    /// Returns the member's display name (a user's id, an account's
    /// `ORG/NAME`).
    pub async fn add_group_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        member: &SubjectName,
    ) -> Result<String, IamError> {
        in_org(actor, org, Action::Update)?;
        let (subject, display) = self.resolve(member).await?;
        self.store
            .add_group_member(actor, org, name, subject)
            .await?;
        self.forget(&[Stale::Grants(subject)]).await;
        Ok(display)
    }

    pub async fn remove_group_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        member: &SubjectName,
    ) -> Result<String, IamError> {
        in_org(actor, org, Action::Update)?;
        let (subject, display) = self.resolve(member).await?;
        self.store
            .remove_group_member(actor, org, name, subject)
            .await?;
        self.forget(&[Stale::Grants(subject)]).await;
        Ok(display)
    }

    pub async fn bind_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        binding: &GroupBinding,
    ) -> Result<(), IamError> {
        in_org(actor, org, Action::Create)?;
        let members = self.store.bind_group_role(actor, org, binding).await?;
        let linked = self.is_linked(org, &binding.group).await;
        self.forget_grants(members, linked).await;
        Ok(())
    }

    pub async fn unbind_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        binding: &GroupBinding,
    ) -> Result<(), IamError> {
        in_org(actor, org, Action::Delete)?;
        let members = self.store.unbind_group_role(actor, org, binding).await?;
        let linked = self.is_linked(org, &binding.group).await;
        self.forget_grants(members, linked).await;
        Ok(())
    }

    pub async fn list_group_bindings(
        &self,
        actor: &Actor,
        org: &OrgName,
    ) -> Result<Vec<GroupBinding>, IamError> {
        in_org(actor, org, Action::Get)?;
        Ok(self.store.list_group_bindings(org).await?)
    }

    /// Links the group to an identity source's team or claim value, or
    /// unlinks it (`None`): whoever the source names gains or loses its
    /// roles on their next check.
    pub async fn link_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        link: Option<&GroupLink>,
    ) -> Result<Group, IamError> {
        in_org(actor, org, Action::Update)?;
        let group = self.store.link_group(actor, org, name, link).await?;
        self.forget(&[Stale::LinkedGroups]).await;
        Ok(group)
    }

    /// Whether the group is linked, read after a write to it. A link made
    /// or removed since forgets the linked groups itself, so a read that
    /// misses one misses nothing.
    async fn is_linked(&self, org: &OrgName, name: &GroupName) -> bool {
        match self.store.get_group(org, name).await {
            Ok(group) => group.is_some_and(|g| g.link.is_some()),
            // Unknown: forget as if it were.
            Err(_) => true,
        }
    }

    /// Whether any group is linked, read after a write (a role deleted):
    /// as [`Iam::is_linked`], a link that went since forgot by itself.
    pub(super) async fn any_linked(&self) -> bool {
        self.store
            .linked_groups()
            .await
            .map_or(true, |linked| !linked.is_empty())
    }

    async fn forget_grants(&self, subjects: Vec<SubjectRef>, linked: bool) {
        let mut stale: Vec<Stale> = subjects.into_iter().map(Stale::Grants).collect();
        if linked {
            stale.push(Stale::LinkedGroups);
        }
        self.forget(&stale).await;
    }
}
