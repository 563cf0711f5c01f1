//! The store: users, organizations, roles, bindings, service accounts and the
//! audit log, behind two traits with no SQL in them (`traits.rs`): the
//! check path's reads ([`CheckStore`]) and the admin writes ([`IamStore`]).
//!
//! [`SqlStore`] implements them for both backends ([`StoreLocation`]: a
//! SQLite file by default, or PostgreSQL); neither the check path, which
//! only ever sees the caches of `directory`, nor the admin API, which only
//! sees the `iam` service, knows which. On PostgreSQL, `changes.rs` reads
//! what other replicas wrote.

pub mod changes;
#[cfg(test)]
pub(crate) mod fixtures;
mod location;
pub mod records;
mod sql;
mod traits;

use std::fmt;

use thiserror::Error;

pub use location::StoreLocation;
pub use records::{
    Actor, AuditEntry, Group, GroupBinding, Membership, Organization, RoleBinding, RoleKey,
    ServiceAccount, ServiceAccountKey,
};
pub use sql::{SqlStore, default_pool_size};
pub use traits::{
    AccountAdmin, AuditLog, BindingAdmin, CheckStore, GroupAdmin, IamStore, OrgAdmin, RoleAdmin,
    UserAdmin,
};

use crate::domain::{DisplayName, Email, InvalidValue, IssuerName, Login, Subject, UserId};

/// PostgreSQL's serialization failure and deadlock, SQLite's busy snapshot
/// (a reader that turned writer after another writer committed): the losing
/// side of a race between writers.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let contended = match &e {
            sqlx::Error::Database(d) => {
                matches!(d.code().as_deref(), Some("40001" | "40P01" | "517"))
            }
            _ => false,
        };
        if contended {
            Self::Contended(e)
        } else {
            Self::Database(e)
        }
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub issuer: IssuerName,
    pub subject: Subject,
    pub login: Login,
    pub email: Option<Email>,
    /// Boxed: rarely set and never read by a check, and 8 bytes instead of
    /// 16 put a cached user in a smaller size class (BENCHMARKS.md).
    pub display_name: Option<Box<DisplayName>>,
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
    #[error("cannot open database {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A concurrent write (another replica's) won: nothing was written, and
    /// the same request may simply be sent again.
    #[error("a concurrent change conflicted with this one; nothing was written, retry")]
    Contended(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// An export that could not be written, or an import line that could
    /// not be read (named by its number).
    #[error("{0}")]
    Transfer(String),
    /// The write would let its caller act beyond their own rights (checked
    /// inside the write's transaction).
    #[error(transparent)]
    Overreach(#[from] crate::policy::authority::Overreach),
    /// A cache load overtaken by an invalidation (internal: the cache
    /// reloads; never shown).
    #[error("a concurrent change superseded this read")]
    Superseded,
}
