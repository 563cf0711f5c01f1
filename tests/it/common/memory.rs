//! An in-memory world behind the check path's store trait: the second
//! implementation of `CheckStore`, for deciding without gRPC or SQLite.
//! Grants are derived from memberships and bindings the way the SQL does.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use dispatch_authz::{
    domain::{
        GroupLink, GroupName, IssuerName, Login, OrgName, RoleName, ServiceAccountId,
        ServiceAccountName, Subject, SubjectRef, UserId,
    },
    policy::rbac::{Grants, GroupGrant, LinkedGroups, Permission, Role, Scope},
    store::{CheckStore, RoleKey, ServiceAccount, ServiceAccountKey, StoreError, User, UserRef},
};

use super::{ISSUER_NAME, fixture};

#[derive(Default)]
pub struct World {
    users: Vec<User>,
    orgs: BTreeSet<OrgName>,
    roles: Vec<Arc<Role>>,
    /// `(org, user, is_default)`.
    members: Vec<(OrgName, UserId, bool)>,
    bindings: Vec<(RoleKey, SubjectRef)>,
    accounts: Vec<ServiceAccount>,
    groups: Vec<MemoryGroup>,
}

/// `(org, name, bound roles, members, link)`.
type MemoryGroup = (
    OrgName,
    GroupName,
    Vec<RoleKey>,
    Vec<SubjectRef>,
    Option<GroupLink>,
);

fn org(name: &str) -> OrgName {
    OrgName::parse(name).unwrap()
}

/// `""` is a global role.
fn role_key(org_name: &str, name: &str) -> RoleKey {
    RoleKey {
        org: (!org_name.is_empty()).then(|| org(org_name)),
        name: RoleName::parse(name).unwrap(),
    }
}

impl World {
    /// A user of the test issuer; `subject` is also its login.
    pub fn user(&mut self, subject: &str) -> &mut Self {
        self.users.push(User {
            id: UserId::new(),
            issuer: IssuerName::parse(ISSUER_NAME).unwrap(),
            subject: Subject::parse(subject).unwrap(),
            login: Login::parse(subject).unwrap(),
            email: None,
            display_name: None,
            enabled: true,
            created_at: 0,
            updated_at: 0,
        });
        self
    }

    /// As `users disable` leaves it: known, and refused.
    pub fn disable(&mut self, subject: &str) -> &mut Self {
        let user = self
            .users
            .iter_mut()
            .find(|u| u.subject.as_str() == subject);
        user.unwrap_or_else(|| panic!("no user {subject} in the world"))
            .enabled = false;
        self
    }

    pub fn org(&mut self, name: &str) -> &mut Self {
        self.orgs.insert(org(name));
        self
    }

    /// `org` `""`: a global role.
    pub fn role(&mut self, org_name: &str, name: &str, permissions: &[&str]) -> &mut Self {
        let key = role_key(org_name, name);
        self.roles.push(Arc::new(Role {
            name: key.name,
            scope: key.org.map_or(Scope::Global, Scope::Org),
            permissions: permissions
                .iter()
                .map(|p| Permission::parse(p).unwrap())
                .collect(),
        }));
        self
    }

    pub fn member(&mut self, org_name: &str, subject: &str, is_default: bool) -> &mut Self {
        let id = self.user_id(subject);
        self.members.push((org(org_name), id, is_default));
        self
    }

    /// `subject`: a user's subject, or a service account's `ORG/NAME`.
    pub fn bind(&mut self, org_name: &str, role: &str, subject: &str) -> &mut Self {
        let subject = match subject.split_once('/') {
            Some((o, n)) => SubjectRef::ServiceAccount(self.account(o, n).id),
            None => SubjectRef::User(self.user_id(subject)),
        };
        self.bindings.push((role_key(org_name, role), subject));
        self
    }

    /// A group of `org_name` holding `roles` of that organization (`""`
    /// before a name: a global role), with `members` (users by subject).
    pub fn group(
        &mut self,
        org_name: &str,
        name: &str,
        roles: &[&str],
        members: &[&str],
    ) -> &mut Self {
        let roles = roles
            .iter()
            .map(|r| match r.strip_prefix('/') {
                Some(global) => role_key("", global),
                None => role_key(org_name, r),
            })
            .collect();
        let members = members
            .iter()
            .map(|m| SubjectRef::User(self.user_id(m)))
            .collect();
        self.groups.push((
            org(org_name),
            GroupName::parse(name).unwrap(),
            roles,
            members,
            None,
        ));
        self
    }

    /// A group linked to `link` (`SOURCE:CLAIM=VALUE`), with no members
    /// of its own.
    pub fn linked_group(
        &mut self,
        org_name: &str,
        name: &str,
        roles: &[&str],
        link: &str,
    ) -> &mut Self {
        self.group(org_name, name, roles, &[]);
        self.groups.last_mut().unwrap().4 = Some(GroupLink::parse(link).unwrap());
        self
    }

    /// Unlinks (`None`) or links a group.
    pub fn relink(&mut self, org_name: &str, name: &str, link: Option<&str>) {
        let group = self
            .groups
            .iter_mut()
            .find(|g| g.0.as_str() == org_name && g.1.as_str() == name)
            .unwrap();
        group.4 = link.map(|l| GroupLink::parse(l).unwrap());
    }

    fn group_grant(&self, org: &OrgName, name: &GroupName, roles: &[RoleKey]) -> Arc<GroupGrant> {
        Arc::new(GroupGrant {
            org: org.clone(),
            name: name.clone(),
            roles: roles
                .iter()
                .filter_map(|key| self.roles.iter().find(|r| RoleKey::of(r) == *key).cloned())
                .collect(),
        })
    }

    fn linked_groups(&self) -> LinkedGroups {
        LinkedGroups::new(
            self.groups
                .iter()
                .filter_map(|(org, name, roles, _, link)| {
                    Some((link.clone()?, self.group_grant(org, name, roles)))
                }),
        )
    }

    /// A service account with one key from the fixtures.
    pub fn service_account(
        &mut self,
        org_name: &str,
        name: &str,
        algorithm: &str,
        pem: &str,
    ) -> &mut Self {
        self.accounts.push(ServiceAccount {
            id: ServiceAccountId::new(),
            org: org(org_name),
            name: ServiceAccountName::parse(name).unwrap(),
            enabled: true,
            keys: vec![ServiceAccountKey {
                id: format!("{name}-key"),
                algorithm: algorithm.into(),
                public_key_pem: std::fs::read_to_string(fixture(pem)).unwrap(),
                created_at: 0,
            }],
            created_at: 0,
            updated_at: 0,
        });
        self
    }

    /// Removes every key of a service account, as another process writing
    /// the database would (no cache is told).
    pub fn remove_keys(&mut self, org_name: &str, name: &str) {
        let account = self
            .accounts
            .iter_mut()
            .find(|a| a.org.as_str() == org_name && a.name.as_str() == name)
            .unwrap_or_else(|| panic!("no service account {org_name}/{name} in the world"));
        account.keys.clear();
    }

    fn user_id(&self, subject: &str) -> UserId {
        self.users
            .iter()
            .find(|u| u.subject.as_str() == subject)
            .unwrap_or_else(|| panic!("no user {subject} in the world"))
            .id
    }

    fn account(&self, org_name: &str, name: &str) -> &ServiceAccount {
        self.accounts
            .iter()
            .find(|a| a.org.as_str() == org_name && a.name.as_str() == name)
            .unwrap_or_else(|| panic!("no service account {org_name}/{name} in the world"))
    }

    fn grants(&self, subject: SubjectRef) -> Grants {
        let mut grants = Grants::default();
        match subject {
            SubjectRef::User(id) => {
                let Some(user) = self.users.iter().find(|u| u.id == id) else {
                    return grants;
                };
                grants.enabled = user.enabled;
                for (org, _, is_default) in self.members.iter().filter(|m| m.1 == id) {
                    if *is_default {
                        grants.default_org = Some(org.clone());
                    }
                    grants.member_of.insert(org.clone());
                }
            }
            SubjectRef::ServiceAccount(id) => {
                let Some(account) = self.accounts.iter().find(|a| a.id == id) else {
                    return grants;
                };
                grants.enabled = account.enabled;
                grants.default_org = Some(account.org.clone());
                grants.member_of.insert(account.org.clone());
            }
        }
        grants.roles = self
            .bindings
            .iter()
            .filter(|(_, s)| *s == subject)
            .filter_map(|(key, _)| self.roles.iter().find(|r| RoleKey::of(r) == *key).cloned())
            .collect();
        grants.groups = self
            .groups
            .iter()
            .filter(|(_, _, _, members, _)| members.contains(&subject))
            .map(|(org, name, roles, _, _)| self.group_grant(org, name, roles))
            .collect();
        grants
    }
}

pub struct MemoryStore(Mutex<World>, Arc<std::sync::atomic::AtomicUsize>);

impl MemoryStore {
    pub fn new(world: World) -> Self {
        Self(Mutex::new(world), Arc::default())
    }

    /// Changes the world behind the caches' back.
    pub fn change(&self, f: impl FnOnce(&mut World)) {
        f(&mut self.0.lock().unwrap());
    }

    /// Counts the user and grants lookups from now on.
    pub fn lookups(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.1.clone()
    }

    fn count(&self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl CheckStore for MemoryStore {
    async fn find_by_identity(
        &self,
        issuer: &IssuerName,
        subject: &Subject,
    ) -> Result<Option<User>, StoreError> {
        self.count();
        let world = self.0.lock().unwrap();
        let found = world
            .users
            .iter()
            .find(|u| u.issuer == *issuer && u.subject == *subject);
        Ok(found.cloned())
    }

    async fn grants(&self, subject: SubjectRef) -> Result<Grants, StoreError> {
        self.count();
        Ok(self.0.lock().unwrap().grants(subject))
    }

    async fn service_account(
        &self,
        org: &OrgName,
        name: &ServiceAccountName,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let world = self.0.lock().unwrap();
        let found = world
            .accounts
            .iter()
            .find(|a| a.org == *org && a.name == *name);
        Ok(found.cloned())
    }

    async fn org_exists(&self, org: &OrgName) -> Result<bool, StoreError> {
        Ok(self.0.lock().unwrap().orgs.contains(org))
    }

    async fn update_login(&self, user: &UserRef, login: &Login) -> Result<User, StoreError> {
        let mut world = self.0.lock().unwrap();
        let found = world.users.iter_mut().find(|u| match user {
            UserRef::Id(id) => u.id == *id,
            UserRef::Identity(issuer, subject) => u.issuer == *issuer && u.subject == *subject,
        });
        let user = found.ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        user.login = login.clone();
        Ok(user.clone())
    }

    async fn linked_groups(&self) -> Result<LinkedGroups, StoreError> {
        self.count();
        Ok(self.0.lock().unwrap().linked_groups())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
