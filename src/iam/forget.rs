//! What a write made stale, and who forgets it.
//!
//! A write names its stale entries as data rather than calling the caches
//! itself, so the same list can later travel to other replicas (PostgreSQL's
//! `NOTIFY`) and the local CLI, which has no caches, can drop it.

use async_trait::async_trait;

use crate::{
    check::{Checker, Live},
    domain::{OrgName, Principal, ServiceAccountId, ServiceAccountName, SubjectRef, UserId},
    store::{ServiceAccount, User},
};

/// A cache entry a write made stale.
#[derive(Debug, Clone)]
pub enum Stale {
    /// The user record (lookup by identity) and the user's grants.
    User(User),
    /// A subject's grants (memberships, bindings, enabled).
    Grants(SubjectRef),
    /// The account record, its grants and its verified tokens.
    Account(ServiceAccount),
    /// Whether the organization exists.
    Org(OrgName),
    /// The groups linked to identity sources, and so every subject's
    /// grants (whose identities carry a link is not known here).
    LinkedGroups,
}

#[async_trait]
pub trait Forget: Send + Sync + 'static {
    /// Returns once no later lookup can see what the entries held before.
    async fn forget(&self, stale: &[Stale]);
}

/// For writes made without a running server's caches (the CLI on the
/// database file): a server sharing the file sees them within its TTLs.
pub struct NoCaches;

#[async_trait]
impl Forget for NoCaches {
    async fn forget(&self, _: &[Stale]) {}
}

#[async_trait]
impl Forget for Checker {
    async fn forget(&self, stale: &[Stale]) {
        let directory = self.directory();
        for entry in stale {
            match entry {
                Stale::User(user) => {
                    directory.users.invalidate(user).await;
                    directory.grants.invalidate(SubjectRef::User(user.id)).await;
                }
                Stale::Grants(subject) => directory.grants.invalidate(*subject).await,
                Stale::Account(account) => {
                    forget_account(self, account.id, &account.org, &account.name).await
                }
                Stale::Org(org) => directory.orgs.invalidate(org).await,
                Stale::LinkedGroups => directory.forget_linked().await,
            }
        }
    }
}

/// Through whichever checker is in force: every checker of a process
/// shares the directory's caches.
#[async_trait]
impl Forget for Live {
    async fn forget(&self, stale: &[Stale]) {
        self.current().forget(stale).await;
    }
}

/// A user's record (by identity) and grants: for this replica's own writes
/// and, by keys alone, for another replica's (`replicas.rs`).
pub(super) async fn forget_user(checker: &Checker, id: UserId, principal: Principal) {
    let directory = checker.directory();
    directory.users.invalidate_principal(principal).await;
    directory.grants.invalidate(SubjectRef::User(id)).await;
}

/// An account's record, grants and verified tokens, by its keys.
pub(super) async fn forget_account(
    checker: &Checker,
    id: ServiceAccountId,
    org: &OrgName,
    name: &ServiceAccountName,
) {
    let directory = checker.directory();
    directory.accounts.invalidate(org, name).await;
    let subject = SubjectRef::ServiceAccount(id);
    directory.grants.invalidate(subject).await;
    checker.identity().forget_service_account(id);
}
