//! The store and the `iam` service for the operator's local commands,
//! opened from the configuration.

use std::sync::Arc;

use super::StartupError;
use crate::{
    config::Config,
    iam::{Iam, NoCaches},
    store::{SqlStore, StoreLocation},
};

/// Creates or migrates the database.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    open_store(config).await?;
    Ok(())
}

/// The configured store, migrated (`export`, `import`).
pub async fn open_store(config: &Config) -> Result<SqlStore, StartupError> {
    Ok(SqlStore::open(&config.database, config.pool_size).await?)
}

/// The store for a read-only command: a SQLite file that does not exist
/// is an error naming it, never a new empty database (which would answer
/// "no such user" about a typo'd path).
pub async fn open_existing_store(config: &Config) -> Result<SqlStore, StartupError> {
    if let StoreLocation::Sqlite(path) = &config.database
        && !path.exists()
    {
        return Err(StartupError::NoDatabase(path.display().to_string()));
    }
    open_store(config).await
}

/// [`local_iam`] for read-only commands ([`open_existing_store`]).
pub async fn local_iam_read_only(config: &Config) -> Result<Iam, StartupError> {
    let store = open_existing_store(config).await?;
    let sources = config.source_names().into_iter().cloned().collect();
    Ok(Iam::new(Arc::new(store), Arc::new(NoCaches), sources))
}

/// The `iam` service on the database file, for the operator's local
/// commands: the same operations (and audit entries) as the admin API. A
/// running server sees their effect within its cache TTLs.
pub async fn local_iam(config: &Config) -> Result<Iam, StartupError> {
    let store = SqlStore::open(&config.database, config.pool_size).await?;
    let sources = config.source_names().into_iter().cloned().collect();
    Ok(Iam::new(Arc::new(store), Arc::new(NoCaches), sources))
}
