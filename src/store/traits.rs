//! What a database must do, in two sides: the check path's narrow reads
//! ([`CheckStore`]) and the admin writes ([`IamStore`], one trait per
//! concept). SQLite implements them in `sqlite/`; PostgreSQL will be a second
//! implementation, and nothing above `store` names either.
//!
//! Every write takes the [`Actor`]: it checks the actor's authority against
//! the rows it changes and writes its audit entry, both inside the write's
//! own transaction.

use async_trait::async_trait;

use super::{
    NewUser, StoreError, User, UserRef,
    records::{
        Actor, AuditEntry, Group, GroupBinding, Membership, Organization, RoleBinding, RoleKey,
        ServiceAccount,
    },
};
use crate::{
    domain::{
        GroupLink, GroupName, IssuerName, Login, OrgName, ServiceAccountName, Subject, SubjectRef,
    },
    policy::rbac::{Grants, LinkedGroups, Role},
};

/// The check path's reads, each behind a cache in `directory`.
#[async_trait]
pub trait CheckStore: Send + Sync + 'static {
    /// The user behind a verified identity.
    async fn find_by_identity(
        &self,
        issuer: &IssuerName,
        subject: &Subject,
    ) -> Result<Option<User>, StoreError>;
    /// What a subject may do (memberships and bound roles). An unknown
    /// subject has no grants.
    async fn grants(&self, subject: SubjectRef) -> Result<Grants, StoreError>;
    /// A service account with its keys, by its token issuer `<org>/<name>`.
    async fn service_account(
        &self,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<Option<ServiceAccount>, StoreError>;
    /// Whether an organization exists: a global role reaches every
    /// organization, but only existing ones.
    async fn org_exists(&self, org: &OrgName) -> Result<bool, StoreError>;
    /// The check path's one write: a new login (a GitHub rename) for the
    /// same identity.
    async fn update_login(&self, user: &UserRef, login: &Login) -> Result<User, StoreError>;
    /// Every group linked to an identity source, with its roles: whose
    /// membership only identities prove, so the check matches them itself.
    async fn linked_groups(&self) -> Result<LinkedGroups, StoreError>;
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything the `iam` service needs.
pub trait IamStore:
    CheckStore + UserAdmin + OrgAdmin + RoleAdmin + BindingAdmin + GroupAdmin + AccountAdmin + AuditLog
{
}

impl<T> IamStore for T where
    T: CheckStore
        + UserAdmin
        + OrgAdmin
        + RoleAdmin
        + BindingAdmin
        + GroupAdmin
        + AccountAdmin
        + AuditLog
{
}

/// Groups of an organization, their members and their roles. Every write
/// that changes who holds what returns the subjects whose grants it
/// changed, for the caller to forget.
#[async_trait]
pub trait GroupAdmin: Send + Sync + 'static {
    async fn create_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<Group, StoreError>;
    async fn get_group(&self, org: &OrgName, name: &GroupName)
    -> Result<Option<Group>, StoreError>;
    async fn list_groups(&self, org: &OrgName) -> Result<Vec<Group>, StoreError>;
    /// Its members and bindings go with it.
    async fn delete_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<(Group, Vec<SubjectRef>), StoreError>;
    /// Needs authority over every role bound to the group.
    async fn add_group_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        subject: SubjectRef,
    ) -> Result<(), StoreError>;
    /// Needs authority over every role bound to the group.
    async fn remove_group_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        subject: SubjectRef,
    ) -> Result<(), StoreError>;
    /// The members, each with its name (a user's id, an account's `ORG/NAME`).
    async fn list_group_members(
        &self,
        org: &OrgName,
        name: &GroupName,
    ) -> Result<Vec<(SubjectRef, String)>, StoreError>;
    /// A role of the group's organization, or a global one (which needs a
    /// global `iam` role); never another organization's.
    async fn bind_group_role(
        &self,
        actor: &Actor,
        org: &OrgName,
        binding: &GroupBinding,
    ) -> Result<Vec<SubjectRef>, StoreError>;
    async fn unbind_group_role(
        &self,
        actor: &Actor,
        org: &OrgName,
        binding: &GroupBinding,
    ) -> Result<Vec<SubjectRef>, StoreError>;
    /// Links the group to an identity source's teams or claim values
    /// (`None`: unlinks it). Needs authority over every role bound to the
    /// group: a link hands them to whoever the source names.
    async fn link_group(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &GroupName,
        link: Option<&GroupLink>,
    ) -> Result<Group, StoreError>;
    /// The bindings to the organization's groups.
    async fn list_group_bindings(&self, org: &OrgName) -> Result<Vec<GroupBinding>, StoreError>;
}

#[async_trait]
pub trait UserAdmin: Send + Sync + 'static {
    async fn get(&self, user: &UserRef) -> Result<Option<User>, StoreError>;
    async fn list(&self) -> Result<Vec<User>, StoreError>;
    async fn add(&self, actor: &Actor, user: NewUser) -> Result<User, StoreError>;
    async fn set_enabled(
        &self,
        actor: &Actor,
        user: &UserRef,
        enabled: bool,
    ) -> Result<User, StoreError>;
    async fn remove(&self, actor: &Actor, user: &UserRef) -> Result<User, StoreError>;
}

#[async_trait]
pub trait OrgAdmin: Send + Sync + 'static {
    async fn create_org(&self, actor: &Actor, name: &OrgName) -> Result<Organization, StoreError>;
    async fn get_org(&self, name: &OrgName) -> Result<Option<Organization>, StoreError>;
    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError>;
    /// Refuses while the organization still has members, roles or service
    /// accounts: deleting them is a decision of its own, made one by one.
    async fn delete_org(&self, actor: &Actor, name: &OrgName) -> Result<Organization, StoreError>;
    /// Adds (or updates, e.g. to make it the default) a membership.
    async fn add_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        user: &UserRef,
        is_default: bool,
    ) -> Result<(User, Membership), StoreError>;
    /// Removes a membership and the user's bindings to roles of that
    /// organization (they could not apply any more).
    async fn remove_member(
        &self,
        actor: &Actor,
        org: &OrgName,
        user: &UserRef,
    ) -> Result<(User, Membership), StoreError>;
    async fn list_members(&self, org: &OrgName) -> Result<Vec<(User, Membership)>, StoreError>;
}

#[async_trait]
pub trait RoleAdmin: Send + Sync + 'static {
    async fn create_role(&self, actor: &Actor, role: &Role) -> Result<Role, StoreError>;
    async fn get_role(&self, key: &RoleKey) -> Result<Option<Role>, StoreError>;
    /// Roles of one organization, or the global ones.
    async fn list_roles(&self, org: Option<&OrgName>) -> Result<Vec<Role>, StoreError>;
    /// Deletes a role and its bindings; returns the subjects that held it,
    /// whose cached grants are now stale.
    async fn delete_role(
        &self,
        actor: &Actor,
        key: &RoleKey,
    ) -> Result<(Role, Vec<SubjectRef>), StoreError>;
}

#[async_trait]
pub trait BindingAdmin: Send + Sync + 'static {
    /// Binds a role. A user must be a member of an org role's organization;
    /// a service account must belong to it.
    async fn bind_role(
        &self,
        actor: &Actor,
        binding: &RoleBinding,
    ) -> Result<RoleBinding, StoreError>;
    async fn unbind_role(
        &self,
        actor: &Actor,
        binding: &RoleBinding,
    ) -> Result<RoleBinding, StoreError>;
    /// Bindings of one organization's roles, or of the global roles, each
    /// with its subject's name: a user's id, a service account's `ORG/NAME`.
    async fn list_bindings(
        &self,
        org: Option<&OrgName>,
    ) -> Result<Vec<(RoleBinding, String)>, StoreError>;
    /// Whether any subject holds every `iam` action through global roles
    /// (an auditor's `*:get` alone does not make a global admin).
    async fn has_global_admin(&self) -> Result<bool, StoreError>;
    /// Makes `user` the first global admin: the global role `admin` (`*:*`)
    /// is created if missing and bound to the user, in one transaction that
    /// first re-checks that no global admin exists.
    async fn bootstrap(&self, actor: &Actor, user: &UserRef) -> Result<Role, StoreError>;
}

#[async_trait]
pub trait AccountAdmin: Send + Sync + 'static {
    /// Creates an account with its first keys (each already checked by the
    /// caller to parse for its algorithm), in one transaction.
    async fn create_service_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        keys: &[(String, String)],
    ) -> Result<ServiceAccount, StoreError>;
    async fn list_service_accounts(&self, org: &OrgName)
    -> Result<Vec<ServiceAccount>, StoreError>;
    async fn delete_service_account(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<ServiceAccount, StoreError>;
    async fn set_service_account_enabled(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        enabled: bool,
    ) -> Result<ServiceAccount, StoreError>;
    /// Registers a public key (already checked by the caller to parse for
    /// `algorithm`); its id is the `kid` tokens may name.
    async fn add_service_account_key(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        algorithm: &str,
        public_key_pem: &str,
    ) -> Result<ServiceAccount, StoreError>;
    async fn remove_service_account_key(
        &self,
        actor: &Actor,
        org: &OrgName,
        name: &ServiceAccountName,
        key_id: &str,
    ) -> Result<ServiceAccount, StoreError>;
}

#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Newest first; one organization's entries, or all.
    async fn list_audit(
        &self,
        org: Option<&OrgName>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
