//! The store: users, organizations, roles, bindings, service accounts and the
//! audit log. The check path's reads sit behind a trait with no SQL in it.
//!
//! [`SqliteStore`] is the embedded default; PostgreSQL slots in as another
//! implementation of [`UserStore`] without touching the check path, which
//! only ever sees the caches ([`UserCache`], [`GrantsCache`],
//! [`ServiceAccountCache`]).

mod cache;
pub mod iam;
mod sqlite;
mod sqlite_iam;

use std::fmt;

use async_trait::async_trait;
use thiserror::Error;

pub use cache::{CacheSettings, GrantsCache, OrgCache, ServiceAccountCache, UserCache};
pub use sqlite::SqliteStore;

pub use iam::{
    Actor, AuditEntry, Membership, Organization, RoleBinding, RoleKey, ServiceAccount,
    ServiceAccountKey,
};

use crate::{
    domain::{
        DisplayName, Email, InvalidValue, IssuerName, Login, OrgName, ServiceAccountName, Subject,
        SubjectRef, UserId,
    },
    policy::rbac::Grants,
};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub issuer: IssuerName,
    pub subject: Subject,
    pub login: Login,
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
    pub enabled: bool,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an administrator supplies to add a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub issuer: IssuerName,
    pub subject: Subject,
    pub login: Login,
    pub email: Option<Email>,
    pub display_name: Option<DisplayName>,
}

/// How the CLI names a user: by id, or by `ISSUER:SUBJECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(UserId),
    Identity(IssuerName, Subject),
}

impl UserRef {
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        if let Ok(id) = UserId::parse(value) {
            return Ok(Self::Id(id));
        }
        let bad = || InvalidValue {
            what: "user reference",
            reason: format!("{value:?} is neither a user id (UUID) nor ISSUER:SUBJECT"),
        };
        let (issuer, subject) = value.split_once(':').ok_or_else(bad)?;
        Ok(Self::Identity(
            IssuerName::parse(issuer).map_err(|_| bad())?,
            Subject::parse(subject).map_err(|_| bad())?,
        ))
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Identity(issuer, subject) => write!(f, "{issuer}:{subject}"),
        }
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("a user with issuer {issuer:?} and subject {subject:?} already exists")]
    Duplicate { issuer: String, subject: String },
    #[error("no {0}")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The change is refused in the current state (a non-empty
    /// organization, a binding for a non-member).
    #[error("{0}")]
    Conflict(String),
    #[error("stored user {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The write would let its caller act beyond their own rights (checked
    /// inside the write's transaction).
    #[error(transparent)]
    Overreach(#[from] crate::policy::authority::Overreach),
    /// A cache load overtaken by an invalidation (internal: the cache
    /// reloads; never shown).
    #[error("a concurrent change superseded this read")]
    Superseded,
}

/// Storage of users. Every write is a single statement or one transaction.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// The check path's one query: the user behind a verified identity.
    async fn find_by_identity(
        &self,
        issuer: &IssuerName,
        subject: &Subject,
    ) -> Result<Option<User>, StoreError>;
    async fn get(&self, user: &UserRef) -> Result<Option<User>, StoreError>;
    async fn list(&self) -> Result<Vec<User>, StoreError>;
    /// Admin writes take the actor: each writes its audit entry in the same
    /// transaction.
    async fn add(&self, actor: &Actor, user: NewUser) -> Result<User, StoreError>;
    async fn set_enabled(
        &self,
        actor: &Actor,
        user: &UserRef,
        enabled: bool,
    ) -> Result<User, StoreError>;
    /// Records a new login (a GitHub rename) for the same identity.
    async fn update_login(&self, user: &UserRef, login: &Login) -> Result<User, StoreError>;
    async fn remove(&self, actor: &Actor, user: &UserRef) -> Result<User, StoreError>;
    /// The check path's other query: what a subject may do (memberships and
    /// bound roles). An unknown subject has no grants.
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
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
}
