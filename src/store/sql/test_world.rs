//! What the store's tests build their worlds from: the local actor, a user
//! of issuer `dex`, an organization, a role.

use super::*;
use crate::{
    domain::{IssuerName, Login, Subject},
    store::NewUser,
};

pub(super) fn actor() -> Actor {
    Actor::local("test")
}

/// A user of issuer `dex`, whose subject is also its login.
pub(super) async fn user(store: &SqlStore, subject: &str) -> User {
    let new = NewUser {
        issuer: IssuerName::parse("dex").unwrap(),
        subject: Subject::parse(subject).unwrap(),
        login: Login::parse(subject).unwrap(),
        email: None,
        display_name: None,
    };
    store.add(&actor(), new).await.unwrap()
}

pub(super) fn org(name: &str) -> OrgName {
    OrgName::parse(name).unwrap()
}

/// `org` `None`: a global role.
pub(super) fn role(org: Option<&str>, name: &str, permissions: &[&str]) -> Role {
    Role {
        name: RoleName::parse(name).unwrap(),
        scope: org.map_or(Scope::Global, |o| Scope::Org(self::org(o))),
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect(),
    }
}
