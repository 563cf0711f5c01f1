//! The admin API's rule against escalation: **no write lets its caller act
//! with permissions the caller does not hold.**
//!
//! Whoever can change who acts as a subject — bind or unbind its roles, add
//! or remove its keys, enable, disable or delete it — could act with that
//! subject's permissions (a key they registered on a service account with a
//! global role makes them that account). So such a write needs *authority
//! over every role the subject holds*: `iam:<action>` in the role's scope (a
//! global role: a global role granting it) and every permission of the
//! role, held there by the caller. Kubernetes' RBAC has the same rule
//! (no `bind` or `escalate` beyond one's own permissions).
//!
//! An org admin also changes nothing outside their organization: a write
//! that touches another organization's rows needs `iam` there.

use std::sync::Arc;

use thiserror::Error;

use super::{
    Action,
    rbac::{Grants, Pattern, Permission, Role, Scope},
};
use crate::domain::OrgName;

/// The resource admin permissions are about (Dispatch's `/v1/iam`).
pub const IAM: &str = "iam";

/// What the author of a write may do.
#[derive(Debug, Clone)]
pub enum Authority {
    /// Direct access to the database (the local CLI, `bootstrap`): the
    /// operator owns the data.
    Local,
    /// An admin API caller, with their grants.
    Caller(Arc<Grants>),
}

/// Why a write would let its caller go beyond their own rights. Shown to
/// the caller (it names only what they asked to change).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Overreach {
    #[error("iam:{action} in organization {org} is needed")]
    NoIamInOrg { org: OrgName, action: Action },
    #[error("a global role granting iam:{action} is needed for global role {role}")]
    NoGlobalIam { role: String, action: Action },
    #[error("the user's default organization is another one; changing it needs iam:update there")]
    DefaultElsewhere,
    #[error("role {role} grants {permission} {scope}, which you do not hold there")]
    NotHeld {
        role: String,
        permission: String,
        scope: String,
    },
}

impl Authority {
    /// The caller's grants; `None` for local access, which may do anything.
    pub fn grants(&self) -> Option<&Grants> {
        match self {
            Self::Local => None,
            Self::Caller(grants) => Some(grants),
        }
    }

    /// `iam:<action>` on rows of `org`.
    pub fn in_org(&self, org: &OrgName, action: Action) -> Result<(), Overreach> {
        let Self::Caller(grants) = self else {
            return Ok(());
        };
        grants
            .decide(Some(org), IAM, action)
            .map(|_| ())
            .map_err(|_| Overreach::NoIamInOrg {
                org: org.clone(),
                action,
            })
    }

    /// Authority over one role: `iam:<action>` in its scope, and every one of
    /// its permissions held there.
    pub fn over_role(&self, role: &Role, action: Action) -> Result<(), Overreach> {
        let Self::Caller(grants) = self else {
            return Ok(());
        };
        match &role.scope {
            Scope::Org(org) => self.in_org(org, action)?,
            Scope::Global if !grants.globally_grants(IAM, action) => {
                return Err(Overreach::NoGlobalIam {
                    role: role.name.to_string(),
                    action,
                });
            }
            Scope::Global => {}
        }
        match role
            .permissions
            .iter()
            .find(|p| !holds(grants, &role.scope, p))
        {
            None => Ok(()),
            Some(p) => Err(Overreach::NotHeld {
                role: role.name.to_string(),
                permission: p.to_string(),
                scope: match &role.scope {
                    Scope::Global => "globally".into(),
                    Scope::Org(org) => format!("in organization {org}"),
                },
            }),
        }
    }

    /// Authority over every role a subject holds: what changing who can act
    /// as that subject needs.
    pub fn over_holder(&self, roles: &[Arc<Role>], action: Action) -> Result<(), Overreach> {
        roles.iter().try_for_each(|r| self.over_role(r, action))
    }
}

const ACTIONS: [Action; 4] = [Action::Get, Action::Create, Action::Update, Action::Delete];

/// Whether the caller's roles that apply in `scope` grant all of `p` (an
/// org scope: the caller's roles there, global ones included, and the
/// caller a member or a global role holder; the global scope: global roles
/// only, since a global role applies everywhere).
fn holds(grants: &Grants, scope: &Scope, p: &Permission) -> bool {
    if !grants.enabled {
        return false;
    }
    let applying: Vec<&Arc<Role>> = match scope {
        Scope::Global => grants
            .roles
            .iter()
            .filter(|r| r.scope == Scope::Global)
            .collect(),
        Scope::Org(org) => {
            let global = grants.roles.iter().any(|r| r.scope == Scope::Global);
            if !grants.belongs_to(org) && !global {
                return false;
            }
            // As a check decides: one's own roles there and one's groups'.
            grants.roles_in(org).collect()
        }
    };
    let actions: &[Action] = match &p.action {
        Pattern::Any => &ACTIONS,
        Pattern::Exactly(a) => std::slice::from_ref(a),
    };
    actions.iter().all(|&action| {
        applying.iter().any(|r| {
            r.permissions.iter().any(|q| {
                let resource = match (&q.resource, &p.resource) {
                    (Pattern::Any, _) => true,
                    (Pattern::Exactly(mine), Pattern::Exactly(theirs)) => mine == theirs,
                    (Pattern::Exactly(_), Pattern::Any) => false,
                };
                resource && q.action.matches(&action)
            })
        })
    })
}

#[cfg(test)]
mod tests;
