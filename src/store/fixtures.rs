//! Records for unit tests, so that a test names only what it is about and
//! a new field is given its default in one place.

use super::{ServiceAccount, User};
use crate::domain::{
    IssuerName, Login, OrgName, ServiceAccountId, ServiceAccountName, Subject, UserId,
};

/// An enabled user with no e-mail or display name.
pub fn user(issuer: &str, subject: &str, login: &str) -> User {
    User {
        id: UserId::new(),
        issuer: IssuerName::parse(issuer).unwrap(),
        subject: Subject::parse(subject).unwrap(),
        login: Login::parse(login).unwrap(),
        email: None,
        display_name: None,
        enabled: true,
        created_at: 0,
        updated_at: 0,
    }
}

/// An enabled service account with no keys.
pub fn account(org: &str, name: &str) -> ServiceAccount {
    ServiceAccount {
        id: ServiceAccountId::new(),
        org: OrgName::parse(org).unwrap(),
        name: ServiceAccountName::parse(name).unwrap(),
        enabled: true,
        keys: Vec::new(),
        created_at: 0,
        updated_at: 0,
    }
}
