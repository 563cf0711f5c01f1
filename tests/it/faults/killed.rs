//! Processes that stop badly: killed in the middle of admin writes, or
//! left without disk space under them. Both on a real `serve` process.

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use dispatch_authz::store::{
    Actor, AuditLog, BindingAdmin, OrgAdmin, SqlStore, StoreLocation, UserAdmin, UserRef,
};

use super::check_within;
use crate::common::{
    admin::Admin,
    serve::{Launch, ServeProcess},
    *,
};

/// A configuration and a database with `root` (a global admin) and alice,
/// in `dir`; the configuration file.
async fn prepared(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("dispatch-authz.toml");
    std::fs::write(&path, config_toml(dir, &Options::default())).unwrap();
    let store = open(dir).await;
    let actor = Actor::local("test");
    for subject in ["root", "alice"] {
        let user = new_user(ISSUER_NAME, subject, subject);
        let user = store.add(&actor, user).await.unwrap();
        if subject == "root" {
            store
                .bootstrap(&actor, &UserRef::Id(user.id))
                .await
                .unwrap();
        }
    }
    store.pool().close().await;
    path
}

async fn open(dir: &Path) -> SqlStore {
    let location = StoreLocation::Sqlite(dir.join("users.db"));
    SqlStore::open(&location, None).await.unwrap()
}

/// What the store holds: the organizations, and the targets of the
/// audit's `organization.create` entries.
async fn stored(dir: &Path) -> (BTreeSet<String>, Vec<String>) {
    let store = open(dir).await;
    let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(check.0, "ok");
    let orgs = store.list_orgs().await.unwrap();
    let audit = store.list_audit(None, 100_000).await.unwrap();
    store.pool().close().await;
    let created = audit
        .into_iter()
        .filter(|e| e.action == "organization.create")
        .map(|e| e.target)
        .collect();
    (
        orgs.into_iter().map(|o| o.name.to_string()).collect(),
        created,
    )
}

/// The audit log has exactly one creation per organization stored.
fn audit_matches(orgs: &BTreeSet<String>, mut created: Vec<String>) {
    created.sort();
    let orgs: Vec<String> = orgs.iter().cloned().collect();
    assert_eq!(created, orgs, "audit entries and organizations differ");
}

/// Fault: the process is killed (SIGKILL: no shutdown, no last checkpoint)
/// while eight callers create organizations through the admin API.
/// Expected: every write acknowledged before the kill is stored; none is
/// stored in part (each organization has its audit entry and each entry
/// its organization); the file passes SQLite's integrity check; a new
/// process serves from it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_killed_mid_write_keeps_every_acknowledged_write_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = prepared(dir.path()).await;
    let mut serve = ServeProcess::start(&config, Launch::default()).await;
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let admin = serve.admin.clone();
        let acknowledged = acknowledged.clone();
        writers.spawn(async move {
            let mut admin = Admin::connect_to(&admin, &token(&claims("root"))).await;
            for i in 0.. {
                let name = format!("w{w}-{i}");
                if admin.org(&name).await.is_err() {
                    return;
                }
                acknowledged.lock().unwrap().insert(name);
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    serve.child.start_kill().unwrap();
    serve.child.wait().await.unwrap();
    while writers.join_next().await.is_some() {}

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 8, "few writes: {}", acknowledged.len());
    let (orgs, created) = stored(dir.path()).await;
    let lost: Vec<_> = acknowledged.difference(&orgs).collect();
    assert!(lost.is_empty(), "acknowledged, then lost: {lost:?}");
    audit_matches(&orgs, created);

    let serve = ServeProcess::start(&config, Launch::default()).await;
    let alice = bearer(&token(&claims("alice")));
    let answer = check_within(&serve.addr, &alice, Duration::from_secs(2)).await;
    assert_eq!(code(&answer.unwrap()), OK);
}

/// Fault: the disk fills up under admin writes (made by a file size limit
/// on the process, RLIMIT_FSIZE, with SIGXFSZ ignored so that a write past
/// it is an error, as on a full disk).
/// Expected: the write that does not fit fails whole (UNAVAILABLE, "retry
/// later"); the process lives on and answers checks; every write
/// acknowledged is stored, nothing of a failed one is, and the audit log
/// has one entry per organization.
#[tokio::test]
async fn a_full_disk_fails_writes_whole_and_keeps_checking() {
    let dir = tempfile::tempdir().unwrap();
    let config = prepared(dir.path()).await;
    let size = std::fs::metadata(dir.path().join("users.db"))
        .unwrap()
        .len();
    // bash counts in KiB: room for the file and a few writes' log.
    let limit = size / 1024 + 48;
    let prelude = format!("trap '' XFSZ; ulimit -f {limit}");
    let mut serve = ServeProcess::start(
        &config,
        Launch {
            prelude: &prelude,
            ..Default::default()
        },
    )
    .await;
    let mut admin = Admin::connect_to(&serve.admin, &token(&claims("root"))).await;
    let mut acknowledged = BTreeSet::new();
    let failure = loop {
        let name = format!("org{}", acknowledged.len());
        match admin.org(&name).await {
            Ok(_) => acknowledged.insert(name),
            Err(e) => break e,
        };
        assert!(acknowledged.len() < 10_000, "the limit never bit");
    };
    assert!(!acknowledged.is_empty(), "no write fitted: {failure:?}");
    assert_eq!(failure.code(), tonic::Code::Unavailable, "{failure:?}");
    assert!(failure.message().contains("retry later"), "{failure:?}");
    // The next write fails the same way, and the process answers checks.
    assert!(admin.org("one-more").await.is_err());
    assert!(serve.is_alive());
    let alice = bearer(&token(&claims("alice")));
    let answer = check_within(&serve.addr, &alice, Duration::from_secs(2)).await;
    assert_eq!(code(&answer.unwrap()), OK);
    drop(admin);
    serve.child.start_kill().unwrap();
    serve.child.wait().await.unwrap();

    let (orgs, created) = stored(dir.path()).await;
    assert_eq!(orgs, acknowledged);
    audit_matches(&orgs, created);
}
