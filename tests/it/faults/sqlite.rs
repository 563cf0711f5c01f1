//! The SQLite file: locked by another process, damaged, full.

use std::time::Duration;

use sqlx::{Connection, sqlite::SqliteConnection};

use super::check_within;
use crate::common::*;

const DEADLINE: Duration = Duration::from_millis(800);

/// Fault: another process holds the database's write lock (a backup tool,
/// a `sqlite3` shell left in a transaction).
/// Expected: checks go on as before, cached or not (in WAL mode a reader
/// never waits for a writer); an admin write waits SQLite's 5 s, then fails
/// whole as UNAVAILABLE ("retry later"), and leaves nothing behind; once
/// the lock goes, writes work again.
#[tokio::test]
async fn a_locked_database_keeps_checking_and_fails_writes_whole() {
    let app = spawn_app_on(Options::default(), None).await;
    let (mut admin, _) = app.acme_with_alice().await;
    let addr = app.addr.to_string();
    let file = app.dir.path().join("users.db");
    let mut lock = SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();

    for who in ["alice", "bob"] {
        let answer = check_within(&addr, &bearer(&token(&claims(who))), DEADLINE).await;
        assert_eq!(code(&answer.unwrap()), OK, "{who}");
    }
    let write = admin
        .org("initech")
        .await
        .expect_err("a write through the lock");
    assert_eq!(write.code(), tonic::Code::Unavailable, "{write:?}");
    assert!(write.message().contains("retry later"), "{write:?}");

    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    assert!(
        admin.audit("initech").await.is_empty(),
        "the failed write left nothing"
    );
    admin.org("initech").await.unwrap();
    assert_eq!(admin.audit("initech").await.len(), 1);
}

/// Fault: the database file's bytes are damaged under the running server
/// (a disk fault, a bad restore). Running as root, file modes do not make a
/// file unreadable here; damaged contents are what an unreadable file
/// looks like to SQLite.
/// Expected: what the caches cannot answer is a 503 denial in time, and
/// `/readyz` is 503; with the bytes restored, checks are answered again.
#[tokio::test]
async fn a_damaged_database_file_fails_closed_and_recovers_when_restored() {
    let app = spawn_app_on(Options::default(), None).await;
    let (_admin, _) = app.acme_with_alice().await;
    let addr = app.addr.to_string();
    let bob = bearer(&token(&claims("bob")));
    let file = app.dir.path().join("users.db");
    // Everything into the main file, so that no read is answered from
    // the write-ahead log.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(app.store.pool())
        .await
        .unwrap();
    let original = std::fs::read(&file).unwrap();
    let garbage: Vec<u8> = (0..original.len()).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();

    let refused = check_within(&addr, &bob, DEADLINE).await;
    let refused = refused.expect("an answer, not a transport error");
    assert_eq!(code(&refused), UNAVAILABLE, "{refused:?}");
    assert_eq!(denied(&refused).http, 503);

    std::fs::write(&file, &original).unwrap();
    let allowed = check_within(&addr, &bob, DEADLINE).await.unwrap();
    assert_eq!(code(&allowed), OK, "recovered");
}
