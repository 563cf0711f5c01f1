//! Roles and organizations: may this subject do this action on this
//! resource in this organization?
//!
//! The model keeps Dispatch's `(org, subject, resource, action)` question and
//! fixes its defects: permissions live in roles, roles are bound to subjects
//! (never to bare names), an organization has members, and a global role is
//! a separate, explicit thing. Deny by default: no org, not a member, no role
//! granting the permission, or a disabled subject all deny.

use std::sync::Arc;

use thiserror::Error;

mod linked;

pub use linked::LinkedGroups;

use super::{OrgSet, routes::Action};
use crate::domain::{GroupName, OrgName, RoleName};

/// `*` or one value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern<T> {
    Any,
    Exactly(T),
}

impl<T: PartialEq> Pattern<T> {
    pub fn matches(&self, value: &T) -> bool {
        match self {
            Self::Any => true,
            Self::Exactly(v) => v == value,
        }
    }
}

/// `(resource, action)` with wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub resource: Pattern<String>,
    pub action: Pattern<Action>,
}

impl Permission {
    /// From `resource:action`, either side `*` (`function:get`, `*:get`, `iam:*`).
    pub fn parse(value: &str) -> Option<Self> {
        let (resource, action) = value.split_once(':')?;
        let resource = match resource {
            "*" => Pattern::Any,
            r if !r.is_empty()
                && r.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }) =>
            {
                Pattern::Exactly(r.to_owned())
            }
            _ => return None,
        };
        let action = match action {
            "*" => Pattern::Any,
            a => Pattern::Exactly(Action::parse(a)?),
        };
        Some(Self { resource, action })
    }

    pub fn grants(&self, resource: &str, action: Action) -> bool {
        let resource_ok = match &self.resource {
            Pattern::Any => true,
            Pattern::Exactly(r) => r == resource,
        };
        resource_ok && self.action.matches(&action)
    }

    /// The resource side as stored (`*` or a name).
    pub fn resource_str(&self) -> &str {
        match &self.resource {
            Pattern::Any => "*",
            Pattern::Exactly(r) => r,
        }
    }

    /// The action side as stored (`*` or a name).
    pub fn action_str(&self) -> &'static str {
        match &self.action {
            Pattern::Any => "*",
            Pattern::Exactly(a) => a.as_str(),
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.resource_str(), self.action_str())
    }
}

/// Where a role is defined and may be used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Applies in every organization; only global admins may bind it.
    Global,
    Org(OrgName),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role {
    pub name: RoleName,
    pub scope: Scope,
    pub permissions: Vec<Permission>,
}

/// Everything about one subject that a decision needs, loaded (and cached)
/// by the store; deciding is then pure. It names no subject: subjects with
/// the same memberships and roles may share one (`directory`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Grants {
    pub enabled: bool,
    pub default_org: Option<OrgName>,
    pub member_of: OrgSet,
    /// The subject's role bindings. An org-scoped role applies only in its
    /// organization; a global role everywhere. A boxed slice, never a
    /// `Vec`: a `Vec` collected in place from the rows kept their buffer,
    /// 320 bytes per cached subject for one role (BENCHMARKS.md).
    pub roles: Box<[Arc<Role>]>,
    /// The groups the subject belongs to, with the roles bound to each.
    /// Belonging to a group of an organization makes one a member of it.
    pub groups: Box<[Arc<GroupGrant>]>,
}

/// A group the subject belongs to: its organization, its name, and the
/// roles bound to it (roles of that organization, or global ones).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupGrant {
    pub org: OrgName,
    pub name: GroupName,
    pub roles: Box<[Arc<Role>]>,
}

/// An allowed request: the organization it was decided in, the roles the
/// subject holds there (for `x-dispatch-org` and `x-dispatch-roles`), and
/// the groups whose roles granted it (`x-dispatch-groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub org: OrgName,
    pub roles: Vec<RoleName>,
    pub groups: Vec<GroupName>,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Refused {
    #[error("subject is disabled")]
    Disabled,
    #[error("no organization: send x-dispatch-org or set a default organization")]
    NoOrg,
    #[error("not a member of organization {0}")]
    NotAMember(OrgName),
    #[error("no role grants {action} on {resource} in organization {org}")]
    NotGranted {
        org: OrgName,
        resource: String,
        action: Action,
    },
}

/// Whether `role` applies in `org`: a global role, or one of `org`.
fn applies(role: &Role, org: &OrgName) -> bool {
    match &role.scope {
        Scope::Global => true,
        Scope::Org(o) => o == org,
    }
}

/// One role's part in a decision, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleVerdict {
    pub role: Arc<Role>,
    /// The group the role is bound to, when not to the subject itself.
    pub via: Option<GroupName>,
    /// Whether the role applies in the organization asked about (a global
    /// role, or one of that organization).
    pub applies: bool,
    /// The first of its permissions granting the request, if any.
    pub granting: Option<Permission>,
}

impl Grants {
    /// Every bound role's part in deciding `(org, resource, action)`: the
    /// same rule as [`Grants::decide`], written out role by role.
    pub fn verdicts(&self, org: &OrgName, resource: &str, action: Action) -> Vec<RoleVerdict> {
        let own = self.roles.iter().map(|role| (role, None));
        let grouped = self
            .groups
            .iter()
            .flat_map(|g| g.roles.iter().map(move |role| (role, Some(g))));
        own.chain(grouped)
            .map(|(role, group)| RoleVerdict {
                role: role.clone(),
                via: group.map(|g| g.name.clone()),
                // A group's roles apply only in the group's organization.
                applies: applies(role, org) && group.is_none_or(|g| g.org == *org),
                granting: role
                    .permissions
                    .iter()
                    .find(|p| p.grants(resource, action))
                    .cloned(),
            })
            .collect()
    }

    /// The roles that apply in `org`: the subject's own, and those of its
    /// groups there.
    pub(super) fn roles_in<'g>(
        &'g self,
        org: &'g OrgName,
    ) -> impl Iterator<Item = &'g Arc<Role>> + 'g {
        let own = self.roles.iter();
        let grouped = self.groups_in(org).flat_map(|g| g.roles.iter());
        own.chain(grouped).filter(move |r| applies(r, org))
    }

    /// The subject's groups of `org`.
    fn groups_in<'g>(&'g self, org: &'g OrgName) -> impl Iterator<Item = &'g Arc<GroupGrant>> + 'g {
        self.groups.iter().filter(move |g| g.org == *org)
    }

    /// A member of `org`: through a membership, or a group of it.
    pub fn belongs_to(&self, org: &OrgName) -> bool {
        self.member_of.contains(org) || self.groups_in(org).next().is_some()
    }

    fn holds_global_role(&self) -> bool {
        self.roles.iter().any(|r| r.scope == Scope::Global)
    }

    /// Whether a global role grants `(resource, action)`: what the admin
    /// API asks before a write that is not confined to one organization
    /// (users, organizations, global roles).
    pub fn globally_grants(&self, resource: &str, action: Action) -> bool {
        self.enabled
            && self.roles.iter().any(|r| {
                r.scope == Scope::Global && r.permissions.iter().any(|p| p.grants(resource, action))
            })
    }

    /// Decides `(org, resource, action)`; `org` is the requested one (the
    /// `x-dispatch-org` header), else the subject's default.
    pub fn decide(
        &self,
        org: Option<&OrgName>,
        resource: &str,
        action: Action,
    ) -> Result<Allowed, Refused> {
        if !self.enabled {
            return Err(Refused::Disabled);
        }
        let org = org.or(self.default_org.as_ref()).ok_or(Refused::NoOrg)?;
        if !self.belongs_to(org) && !self.holds_global_role() {
            return Err(Refused::NotAMember(org.clone()));
        }
        let grants = |r: &Arc<Role>| r.permissions.iter().any(|p| p.grants(resource, action));
        if !self.roles_in(org).any(grants) {
            return Err(Refused::NotGranted {
                org: org.clone(),
                resource: resource.to_owned(),
                action,
            });
        }
        let mut names: Vec<RoleName> = self.roles_in(org).map(|r| r.name.clone()).collect();
        names.sort();
        names.dedup();
        // The groups that mattered: those holding a role that grants it.
        // (Most subjects are in none: then nothing to walk.)
        let groups = if self.groups.is_empty() {
            Vec::new()
        } else {
            self.groups_in(org)
                .filter(|g| g.roles.iter().any(|r| applies(r, org) && grants(r)))
                .map(|g| g.name.clone())
                .collect()
        };
        Ok(Allowed {
            org: org.clone(),
            roles: names,
            groups,
        })
    }
}

#[cfg(test)]
mod tests;
