//! The store's tests run on both backends: SQLite in a temporary file, and
//! PostgreSQL in a fresh database of the server that
//! `DISPATCH_TEST_POSTGRES_URL` names (`.ci/run` starts one). Without it the
//! PostgreSQL half says it skipped, or fails when
//! `DISPATCH_TEST_REQUIRE_POSTGRES=1` (as in CI).

use sqlx::Connection;

use super::SqlStore;
use crate::store::StoreLocation;

/// What keeps a test's database alive.
pub(crate) enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres,
}

pub(crate) async fn sqlite() -> (Keep, SqlStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open(&StoreLocation::sqlite(dir.path().join("test.db")), None)
        .await
        .unwrap();
    (Keep::Dir(dir), store)
}

/// `None` when no server is configured (and that is allowed).
pub(crate) async fn postgres() -> Option<(Keep, SqlStore)> {
    let url = fresh_postgres_database().await?;
    let store = SqlStore::open(&StoreLocation::Postgres(url), None)
        .await
        .unwrap();
    Some((Keep::Postgres, store))
}

/// A URL to a new, empty database of the test server.
pub async fn fresh_postgres_database() -> Option<String> {
    let Some(admin) = std::env::var("DISPATCH_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("DISPATCH_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "DISPATCH_TEST_REQUIRE_POSTGRES=1 but DISPATCH_TEST_POSTGRES_URL is not set"
        );
        eprintln!("SKIPPED: PostgreSQL half (set DISPATCH_TEST_POSTGRES_URL)");
        return None;
    };
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("DISPATCH_TEST_POSTGRES_URL: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

/// Each named test, an `async fn(store: SqlStore)` in scope, once per
/// backend: `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let (_keep, store) = $crate::store::sql::test_backends::sqlite().await;
                    super::$name(store).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some((_keep, store)) =
                        $crate::store::sql::test_backends::postgres().await
                    {
                        super::$name(store).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;

/// Two stores on one database, as two replicas would have: each with its
/// own pool. SQLite shares a file; PostgreSQL a fresh database.
pub(crate) async fn two_sqlite() -> (Keep, SqlStore, SqlStore) {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::sqlite(dir.path().join("test.db"));
    let a = SqlStore::open(&location, None).await.unwrap();
    let b = SqlStore::open(&location, None).await.unwrap();
    (Keep::Dir(dir), a, b)
}

pub(crate) async fn two_postgres() -> Option<(Keep, SqlStore, SqlStore)> {
    let location = StoreLocation::Postgres(fresh_postgres_database().await?);
    let a = SqlStore::open(&location, None).await.unwrap();
    let b = SqlStore::open(&location, None).await.unwrap();
    Some((Keep::Postgres, a, b))
}

/// Like [`on_both_backends`], for `async fn(a: SqlStore, b: SqlStore)`.
macro_rules! on_both_backends_twice {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let (_keep, a, b) = $crate::store::sql::test_backends::two_sqlite().await;
                    super::$name(a, b).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if let Some((_keep, a, b)) =
                        $crate::store::sql::test_backends::two_postgres().await
                    {
                        super::$name(a, b).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both_backends_twice;
