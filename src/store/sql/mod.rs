//! The SQL store, one implementation for both backends through sqlx's `Any`
//! driver: SQLite, the embedded default (one file, created and migrated at
//! start, in WAL mode so the CLI can write while the server reads), and
//! PostgreSQL, for several replicas sharing one truth. The only SQL in the
//! crate, written so that both accept it, one file per concept; each backend
//! has its own migrations. Every admin write is one transaction that ends in
//! `audit::commit_audited` (its audit entry, then the commit).

use std::{str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{
    Any, AnyConnection, AnyPool, ConnectOptions, Connection, Executor, FromRow, Transaction,
    any::{AnyConnectOptions, AnyPoolOptions},
    sqlite::SqliteConnectOptions,
};

use super::{
    AccountAdmin, AuditLog, BindingAdmin, CheckStore, GroupAdmin, NewUser, OrgAdmin, RoleAdmin,
    StoreError, StoreLocation, User, UserAdmin, UserRef,
    records::{
        Actor, AuditEntry, Group, GroupBinding, Membership, Organization, RoleBinding, RoleKey,
        ServiceAccount, ServiceAccountKey, Snapshot,
    },
};
use crate::{
    domain::{
        DisplayName, Email, GroupLink, GroupName, InvalidValue, IssuerName, Login, OrgName,
        RoleName, ServiceAccountId, ServiceAccountName, Subject, SubjectRef, UserId, unix_now,
    },
    policy::{
        Action,
        authority::Overreach,
        rbac::{Grants, GroupGrant, LinkedGroups, Permission, Role, Scope},
    },
    shared::Shared,
};

#[macro_use]
mod users;
#[macro_use]
mod roles;
mod accounts;
mod audit;
mod bindings;
mod group_rows;
mod groups;
mod orgs;
mod reads;
mod subjects;
#[cfg(test)]
pub(crate) mod test_backends;
#[cfg(test)]
mod test_world;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_iam;
#[cfg(test)]
mod tests_races;
#[cfg(test)]
mod tests_transfer;
#[cfg(test)]
mod tests_users;
mod transfer;

use accounts::service_account_in;
use audit::{Change, commit_audited, commit_audited_user, record};
use bindings::{bound_role_values, bound_roles, holders};
use orgs::org_in;
use roles::{has_global_admin, insert_role, role_by_id, role_id, role_key};
use subjects::{subject_columns, subject_exists, subject_in_org, subject_row, user_in};
use users::{SELECT_MEMBERS, SELECT_USER, UserRow, binds};

#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// Shared copies of the roles in cached grants.
    roles: Arc<Shared<Role>>,
    location: StoreLocation,
    postgres: bool,
}

/// Per-connection settings: WAL so the CLI can write while the server
/// reads; a writer waits up to 5 s for another; 256 KiB of page cache per
/// connection instead of SQLite's 2 MiB (each connection keeps its own, the
/// caches in front of the store answer the repeated reads, and the OS caches
/// the file; measured: 25 MiB less RSS with 100,000 users, the cold path
/// within noise, BENCHMARKS.md).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -256;";

impl SqlStore {
    /// Opens the store (creating a SQLite file if needed) and applies its
    /// backend's migrations. `pool_size`: connections, `None` for
    /// [`default_pool_size`].
    pub async fn open(
        location: &StoreLocation,
        pool_size: Option<u32>,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let options = AnyPoolOptions::new()
            .max_connections(pool_size.unwrap_or_else(default_pool_size))
            // A check waiting longer than this is better answered with 503.
            .acquire_timeout(Duration::from_secs(2));
        let open_error = |source| StoreError::Open {
            location: location.to_string(),
            source,
        };
        let pool = match location {
            StoreLocation::Sqlite(path) => {
                // sqlx's `Any` driver is opened by URL: the file name is
                // percent-encoded into one, and the pragmas run on every
                // new connection.
                let url = SqliteConnectOptions::from_str("sqlite:")
                    .map_err(open_error)?
                    .filename(path)
                    .create_if_missing(true)
                    .to_url_lossy();
                let connect = AnyConnectOptions::from_str(url.as_str()).map_err(open_error)?;
                let pool = options
                    .after_connect(|conn, _| {
                        Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) })
                    })
                    .connect_with(connect)
                    .await
                    .map_err(open_error)?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                pool
            }
            StoreLocation::Postgres(url) => {
                let connect = AnyConnectOptions::from_str(url).map_err(open_error)?;
                // One connection first: a pool reports any failure as a
                // timeout, this names the cause (refused, password, TLS).
                AnyConnection::connect_with(&connect)
                    .await
                    .map_err(open_error)?
                    .close()
                    .await
                    .map_err(open_error)?;
                let pool = options.connect_with(connect).await.map_err(open_error)?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                pool
            }
        };
        Ok(Self {
            pool,
            roles: Arc::default(),
            location: location.clone(),
            postgres: location.is_postgres(),
        })
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The pool, for tests that need to damage the database on purpose.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write's transaction. On PostgreSQL it is serializable: several
    /// replicas write at once, and the invariants that SQLite's single
    /// writer kept for free (one global admin from `bootstrap`, bindings
    /// only for members) must hold against concurrent writers too.
    ///
    /// On SQLite it takes the write lock at once (`IMMEDIATE`): a deferred
    /// transaction that read first and then wrote failed at once
    /// (`SQLITE_BUSY_SNAPSHOT`) when another process (the CLI, a second
    /// server on the file) had written meanwhile; now it waits its turn.
    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let statement = if self.postgres {
            "BEGIN ISOLATION LEVEL SERIALIZABLE"
        } else {
            "BEGIN IMMEDIATE"
        };
        Ok(self.pool.begin_with(statement).await?)
    }
}

/// A yes/no column. SQLite keeps it as an integer and PostgreSQL as a
/// boolean, and sqlx's `Any` hands each over as stored: this reads both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flag(pub bool);

impl sqlx::Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <bool as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        use sqlx::any::AnyTypeInfoKind::*;
        matches!(ty.kind(), Bool | SmallInt | Integer | BigInt)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <bool as sqlx::Decode<Any>>::decode(value.clone()) {
            Ok(flag) => Ok(Self(flag)),
            Err(_) => <i64 as sqlx::Decode<Any>>::decode(value).map(|n| Self(n != 0)),
        }
    }
}

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

fn now() -> i64 {
    unix_now() as i64
}

fn corrupt(id: &str) -> impl Fn(InvalidValue) -> StoreError + '_ {
    move |e| StoreError::Corrupt {
        id: id.to_owned(),
        reason: e.to_string(),
    }
}

/// Maps a unique-constraint violation to `AlreadyExists(what)`.
fn unique(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists(what()),
        other => other.into(),
    }
}

/// Connections: twice the cores, 4 to 16. A query here is short and
/// CPU-bound, so more connections than that only wait; each one has its
/// own thread, page cache and allocator arena (≈ 0.4 MiB resident; there
/// were 8 on any machine before: BENCHMARKS.md).
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2).unwrap_or(u32::MAX).clamp(4, 16)
}
