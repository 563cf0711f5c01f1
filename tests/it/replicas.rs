//! Issue 12: several replicas on one PostgreSQL. What is changed through one
//! is refused by the other within a second (the other's caches forget it on
//! PostgreSQL's NOTIFY), not after the cache's lifetime.

use std::time::{Duration, Instant};

use crate::common::*;

/// Within this a change made through one replica must reach the other.
const BOUND: Duration = Duration::from_secs(1);

/// Polls `check` until it answers `want`; the time it took.
async fn until(want: i32, check: impl AsyncFn() -> i32) -> Duration {
    let started = Instant::now();
    loop {
        let got = check().await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < BOUND * 5,
            "still {got}, not {want}, after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_user_disabled_through_one_replica_is_refused_by_the_other_within_a_second() {
    let Some(database) = postgres_if_available().await else {
        return;
    };
    // A long cache lifetime: only the notification can explain a refusal.
    let opts = || Options {
        users_ttl_secs: 3600,
        ..Default::default()
    };
    let a = spawn_app_on(opts(), Some(database.clone())).await;
    let b = spawn_app_on(opts(), Some(database)).await;
    let user = a.add_user("1001", "octocat").await;
    let auth = bearer(&token(&claims("1001")));
    let check_b = async || code(&b.check("/", &[("authorization", &auth)]).await);
    // B has the user cached, and the token settled.
    assert_eq!(check_b().await, OK);
    assert_eq!(check_b().await, OK);

    a.disable_user(&user).await;
    let took = until(PERMISSION_DENIED, check_b).await;
    assert!(took < BOUND, "B refused only after {took:?}");
    // And A, whose own write it was.
    assert_eq!(
        code(&a.check("/", &[("authorization", &auth)]).await),
        PERMISSION_DENIED
    );
}

#[tokio::test]
async fn a_binding_removed_through_one_replica_is_refused_by_the_other_within_a_second() {
    let Some(database) = postgres_if_available().await else {
        return;
    };
    let opts = || Options {
        users_ttl_secs: 3600,
        authorization: r#"mode = "rbac""#.into(),
        ..Default::default()
    };
    let a = spawn_app_on(opts(), Some(database.clone())).await;
    let b = spawn_app_on(opts(), Some(database)).await;
    let user = a.add_user("1001", "octocat").await;
    let store = &a.store;
    let actor = dispatch_authz::store::Actor::local("test");
    let acme = dispatch_authz::domain::OrgName::parse("acme").unwrap();
    use dispatch_authz::store::{BindingAdmin, OrgAdmin, RoleAdmin, RoleBinding, RoleKey, UserRef};
    store.create_org(&actor, &acme).await.unwrap();
    store
        .add_member(&actor, &acme, &UserRef::Id(user.id), true)
        .await
        .unwrap();
    let role = dispatch_authz::policy::rbac::Role {
        name: dispatch_authz::domain::RoleName::parse("dev").unwrap(),
        scope: dispatch_authz::policy::rbac::Scope::Org(acme.clone()),
        permissions: vec![dispatch_authz::policy::rbac::Permission::parse("function:*").unwrap()],
    };
    store.create_role(&actor, &role).await.unwrap();
    let binding = RoleBinding {
        role: RoleKey::of(&role),
        subject: dispatch_authz::domain::SubjectRef::User(user.id),
    };
    store.bind_role(&actor, &binding).await.unwrap();
    let auth = bearer(&token(&claims("1001")));
    let check_b = async || {
        code(
            &b.check("/v1/function/hello", &[("authorization", &auth)])
                .await,
        )
    };
    // B learns of the binding the same way, then has it settled.
    until(OK, check_b).await;
    assert_eq!(check_b().await, OK);

    store.unbind_role(&actor, &binding).await.unwrap();
    let took = until(PERMISSION_DENIED, check_b).await;
    assert!(took < BOUND, "B refused only after {took:?}");
}

/// Never stale after losing the channel: a replica cannot know what changed
/// while its notification connection was down, so it forgets every cached
/// entry when the connection drops (and again once it listens anew). Here
/// the change is made with the trigger off, so that nobody is told of it:
/// B keeps serving its cached allow until the channel is cut.
#[tokio::test]
async fn a_change_nobody_was_told_of_is_not_served_after_the_feed_drops() {
    let Some(database) = postgres_if_available().await else {
        return;
    };
    let opts = || Options {
        users_ttl_secs: 3600,
        ..Default::default()
    };
    let a = spawn_app_on(opts(), Some(database.clone())).await;
    let b = spawn_app_on(opts(), Some(database)).await;
    let user = a.add_user("1001", "octocat").await;
    let auth = bearer(&token(&claims("1001")));
    let check_b = async || code(&b.check("/", &[("authorization", &auth)]).await);
    let pool = a.store.pool();
    let listening = async || -> i64 {
        sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(pool)
        .await
        .unwrap()
        .0
    };
    let started = Instant::now();
    while listening().await < 2 {
        assert!(started.elapsed() < BOUND * 5, "the replicas never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Past the follower's own forgetting on connecting: B caches afresh.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(check_b().await, OK);

    let mut tx = pool.begin().await.unwrap();
    for sql in [
        "ALTER TABLE users DISABLE TRIGGER users_notify".to_owned(),
        format!("UPDATE users SET enabled = FALSE WHERE id = '{}'", user.id),
        "ALTER TABLE users ENABLE TRIGGER users_notify".to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        check_b().await,
        OK,
        "B was told after all: the test proves nothing"
    );

    let (cut,): (i64,) = sqlx::query_as(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(cut >= 2, "{cut}");
    let took = until(PERMISSION_DENIED, check_b).await;
    assert!(took < BOUND, "B refused only after {took:?}");
}

/// A PostgreSQL of this test's own, since the test stops it
/// (`scripts/postgres.sh`); stopped when dropped.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    admin: String,
}

impl PrivatePostgres {
    fn script(&self, command: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
        let status = std::process::Command::new("bash")
            .args([script, command])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "postgres.sh {command}");
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
        let out = std::process::Command::new("bash")
            .args([script, "start"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let admin = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("export DISPATCH_TEST_POSTGRES_URL="))
            .unwrap()
            .to_owned();
        Self { dir, admin }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.script("stop");
    }
}

/// PostgreSQL stopped under two replicas: both fail closed (503 denials,
/// never the allow they had cached), and both recover by themselves once it
/// is back, without a restart.
#[tokio::test]
async fn both_replicas_fail_closed_while_postgres_is_down_and_recover_after() {
    // Only where PostgreSQL is (CI requires it); this test starts its own.
    if postgres_if_available().await.is_none() {
        return;
    }
    let pg = PrivatePostgres::start();
    let database = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&pg.admin).await.unwrap();
        sqlx::raw_sql("CREATE DATABASE outage")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&pg.admin).unwrap();
        url.set_path("outage");
        url.to_string()
    };
    let opts = || Options {
        users_ttl_secs: 3600,
        ..Default::default()
    };
    let a = spawn_app_on(opts(), Some(database.clone())).await;
    let b = spawn_app_on(opts(), Some(database)).await;
    a.add_user("1001", "octocat").await;
    let auth = bearer(&token(&claims("1001")));
    for app in [&a, &b] {
        let check = async || code(&app.check("/", &[("authorization", &auth)]).await);
        until(OK, check).await;
    }

    pg.script("stop");
    for app in [&a, &b] {
        let check = async || code(&app.check("/", &[("authorization", &auth)]).await);
        // The bound, plus the check's own budget (1 s without a
        // grpc-timeout), which a query to a stopped server waits out.
        let took = until(UNAVAILABLE, check).await;
        assert!(
            took < BOUND * 2,
            "still allowed {took:?} after the database stopped"
        );
        // And from then on, every answer is that 503 denial: the cached
        // allow is not served again while the database is down.
        for _ in 0..5 {
            let r = app.check("/", &[("authorization", &auth)]).await;
            assert_eq!(code(&r), UNAVAILABLE);
            assert_eq!(denied(&r).http, 503);
        }
    }

    pg.script("restart");
    for app in [&a, &b] {
        let check = async || code(&app.check("/", &[("authorization", &auth)]).await);
        until(OK, check).await;
    }
}
