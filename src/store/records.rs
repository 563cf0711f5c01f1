//! Organizations, memberships, roles, role bindings, service accounts and
//! the audit log: the records the admin API manages and the check path reads
//! (through the caches of `directory`).

use std::{fmt, sync::Arc};

use serde_json::{Value, json};

use crate::{
    domain::{
        GroupLink, GroupName, OrgName, RoleName, ServiceAccountId, ServiceAccountName, SubjectRef,
        UserId,
    },
    policy::{
        authority::Authority,
        rbac::{Grants, Role, Scope},
    },
};

/// Who makes an admin change (as written to the audit log) and what they
/// may do: every write checks the caller's [`Authority`] inside its
/// transaction, against the rows it changes.
#[derive(Debug, Clone)]
pub struct Actor {
    name: String,
    authority: Authority,
}

impl Actor {
    /// An authenticated caller of the admin API, with their grants.
    pub fn caller(subject: SubjectRef, grants: Arc<Grants>) -> Self {
        Self {
            name: subject.to_string(),
            authority: Authority::Caller(grants),
        }
    }

    /// Someone with direct access to the database file (the local CLI).
    pub fn local(os_user: &str) -> Self {
        Self {
            name: format!("local:{os_user}"),
            authority: Authority::Local,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub name: OrgName,
    pub created_at: i64,
}

/// A group of an organization (its members and role bindings are rows of
/// their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub org: OrgName,
    pub name: GroupName,
    /// Set: membership comes from the identity source, as well as from
    /// member rows.
    pub link: Option<GroupLink>,
    pub created_at: i64,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.org, self.name)
    }
}

/// A role bound to a group: held by its members in the group's
/// organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBinding {
    pub role: RoleKey,
    pub group: GroupName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org: OrgName,
    pub user_id: UserId,
    /// The organization used when a request names none.
    pub is_default: bool,
}

/// A role is named by its scope and its name: `admin` in `acme` and the
/// global `admin` are different roles.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleKey {
    pub org: Option<OrgName>,
    pub name: RoleName,
}

impl RoleKey {
    pub fn of(role: &Role) -> Self {
        Self {
            org: match &role.scope {
                Scope::Global => None,
                Scope::Org(org) => Some(org.clone()),
            },
            name: role.name.clone(),
        }
    }
}

impl fmt::Display for RoleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.org {
            Some(org) => write!(f, "{org}/{}", self.name),
            // `*` is never part of an organization's name: a global role
            // cannot be mistaken for a role of an organization "global".
            None => write!(f, "*/{}", self.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    pub role: RoleKey,
    pub subject: SubjectRef,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountKey {
    /// Assigned by us; tokens may name it as `kid`.
    pub id: String,
    pub algorithm: String,
    pub public_key_pem: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: ServiceAccountId,
    pub org: OrgName,
    pub name: ServiceAccountName,
    pub enabled: bool,
    pub keys: Vec<ServiceAccountKey>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ServiceAccount {
    /// `"<org>/<name>"`: the `iss` of its tokens and its `x-dispatch-user`.
    pub fn issuer(&self) -> String {
        format!("{}/{}", self.org, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub org: Option<String>,
    pub target: String,
    /// JSON snapshots of the record before and after the change.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Snapshots for the audit log. Public keys are public; no secret is ever
/// part of a record, so snapshots are whole.
pub(super) trait Snapshot {
    fn snapshot(&self) -> Value;
}

impl Snapshot for Organization {
    fn snapshot(&self) -> Value {
        json!({ "name": self.name.as_str() })
    }
}

impl Snapshot for Membership {
    fn snapshot(&self) -> Value {
        json!({
            "org": self.org.as_str(),
            "user_id": self.user_id.to_string(),
            "default": self.is_default,
        })
    }
}

impl Snapshot for Role {
    fn snapshot(&self) -> Value {
        let key = RoleKey::of(self);
        json!({
            "org": key.org.as_ref().map(OrgName::as_str),
            "name": self.name.as_str(),
            "permissions": self.permissions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }
}

impl Snapshot for Group {
    fn snapshot(&self) -> Value {
        json!({
            "org": self.org.as_str(),
            "name": self.name.as_str(),
            "link": self.link.as_ref().map(ToString::to_string),
        })
    }
}

impl Snapshot for GroupBinding {
    fn snapshot(&self) -> Value {
        json!({ "role": self.role.to_string(), "group": self.group.as_str() })
    }
}

impl Snapshot for RoleBinding {
    fn snapshot(&self) -> Value {
        json!({ "role": self.role.to_string(), "subject": self.subject.to_string() })
    }
}

impl Snapshot for ServiceAccount {
    fn snapshot(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "org": self.org.as_str(),
            "name": self.name.as_str(),
            "enabled": self.enabled,
            "keys": self.keys.iter().map(|k| json!({ "id": k.id, "algorithm": k.algorithm })).collect::<Vec<_>>(),
        })
    }
}

impl Snapshot for super::User {
    fn snapshot(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "issuer": self.issuer.as_str(),
            "subject": self.subject.as_str(),
            "login": self.login.as_str(),
            "email": self.email.as_ref().map(|e| e.as_str()),
            "enabled": self.enabled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 9, item 14): `global/admin` named both the global
    /// role admin and the role admin of an organization called "global".
    #[test]
    fn a_global_role_is_never_named_like_an_org_role() {
        let name = RoleName::parse("admin").unwrap();
        let global = RoleKey {
            org: None,
            name: name.clone(),
        };
        let org = RoleKey {
            org: Some(OrgName::parse("global").unwrap()),
            name,
        };
        assert_ne!(global.to_string(), org.to_string());
        assert_eq!(global.to_string(), "*/admin");
        assert!(OrgName::parse("*").is_err());
    }
}
