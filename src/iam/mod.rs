//! The `iam` service: one method per domain operation of the admin API and
//! the local CLI. Each authorizes its caller (an [`Actor`]), runs one audited
//! store transaction — which re-checks the caller's authority against the
//! rows it changes — and then names exactly the cache entries the write made
//! stale ([`Stale`]) to its [`Forget`] sink. Front ends only translate.
//!
//! Order of a call: the front end authenticates and parses (so an
//! unauthenticated caller learns nothing, a malformed request names its
//! field), then the service authorizes *before* it looks anything up (a
//! `NOT_FOUND` must not tell an unauthorized caller what exists).

mod accounts;
mod error;
mod forget;
mod groups;
mod replicas;
mod roles;
mod users;

use std::sync::Arc;

pub use accounts::PublicKey;
pub use error::IamError;
pub use forget::{Forget, NoCaches, Stale};
pub use replicas::follow;
pub use roles::SubjectName;

use crate::{
    domain::{IssuerName, OrgName},
    policy::{self, Action, authority::IAM},
    store::{Actor, IamStore, RoleKey},
};

pub struct Iam {
    store: Arc<dyn IamStore>,
    forget: Arc<dyn Forget>,
    /// Configured identity sources: a user must belong to one.
    sources: Vec<IssuerName>,
}

impl Iam {
    pub fn new(
        store: Arc<dyn IamStore>,
        forget: Arc<dyn Forget>,
        sources: Vec<IssuerName>,
    ) -> Self {
        Self {
            store,
            forget,
            sources,
        }
    }

    async fn forget(&self, stale: &[Stale]) {
        self.forget.forget(stale).await;
    }
}

impl Iam {
    /// Whether `actor` may make the server read its configuration again: an
    /// operator's act, so a global role granting `iam:update`.
    pub fn may_reload(&self, actor: &Actor) -> Result<(), IamError> {
        global(actor, Action::Update)
    }
}

/// `iam:<action>` in `org` (a global role granting it counts).
fn in_org(actor: &Actor, org: &OrgName, action: Action) -> Result<(), IamError> {
    let Some(grants) = actor.authority().grants() else {
        return Ok(());
    };
    policy::authorize(grants, Some(org), IAM, action)
        .map(|_| ())
        .map_err(|refused| {
            IamError::Denied(format!("{IAM}:{action} in {org} is needed: {refused}"))
        })
}

/// `iam:<action>` through a global role.
fn global(actor: &Actor, action: Action) -> Result<(), IamError> {
    let Some(grants) = actor.authority().grants() else {
        return Ok(());
    };
    if grants.globally_grants(IAM, action) {
        Ok(())
    } else {
        Err(IamError::Denied(format!(
            "a global role granting {IAM}:{action} is needed"
        )))
    }
}

/// `iam:<action>` in `org`, or globally when there is no organization (a
/// listing of global roles, bindings or the whole audit log).
fn in_org_or_global(actor: &Actor, org: Option<&OrgName>, action: Action) -> Result<(), IamError> {
    match org {
        Some(org) => in_org(actor, org, action),
        None => global(actor, action),
    }
}

/// Org roles need `iam` in their organization; global roles a global role
/// (Dispatch let any org's `iam` writer create global policies).
fn for_role(actor: &Actor, key: &RoleKey, action: Action) -> Result<(), IamError> {
    in_org_or_global(actor, key.org.as_ref(), action)
}
