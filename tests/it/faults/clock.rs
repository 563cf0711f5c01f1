//! The system clock stepping under a running process: libfaketime preloaded
//! into a real `serve`, its offset read again from a file at every call, the
//! monotonic clock left alone (a step does not move it).

use std::{path::PathBuf, time::Duration};

use super::check_within;
use crate::common::{
    serve::{Launch, ServeProcess},
    *,
};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// `.ci/run` installs it (Debian's `libfaketime`) and sets
/// `DISPATCH_TEST_REQUIRE_FAULTS`, so that CI never skips this.
fn libfaketime() -> Option<PathBuf> {
    let path = std::env::var("DISPATCH_TEST_LIBFAKETIME").unwrap_or(LIBFAKETIME.into());
    let path = PathBuf::from(path);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("DISPATCH_TEST_REQUIRE_FAULTS").is_none(),
        "libfaketime not found at {}",
        path.display()
    );
    eprintln!("skipped: no libfaketime at {}", path.display());
    None
}

struct Clock(PathBuf);

impl Clock {
    /// Steps the process's wall clock to `offset` seconds from the truth
    /// (read again at every call: `FAKETIME_NO_CACHE`).
    async fn step(&self, offset: i64) {
        std::fs::write(&self.0, format!("{offset:+}\n")).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fault: the wall clock steps an hour forward, back, and an hour back.
/// Expected:
/// - an hour forward, past the token's `exp`: refused at once (401), never
///   allowed from the cache of checks that settled it;
/// - back to the truth: the same token is valid, and allowed;
/// - an hour back: a token verified before keeps its allow (it was valid
///   when verified and has not expired); a token issued since is refused
///   (401, `iat` in the future) until the clock is right, then allowed.
#[tokio::test]
async fn a_stepped_clock_never_resurrects_an_expired_token() {
    let Some(libfaketime) = libfaketime() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dispatch-authz.toml");
    std::fs::write(&config, config_toml(dir.path(), &Options::default())).unwrap();
    let clock = Clock(dir.path().join("faketime"));
    std::fs::write(&clock.0, "+0\n").unwrap();
    let env = vec![
        ("LD_PRELOAD", libfaketime.display().to_string()),
        ("FAKETIME_TIMESTAMP_FILE", clock.0.display().to_string()),
        ("FAKETIME_NO_CACHE", "1".into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
    ];
    let serve = ServeProcess::start(&config, Launch { prelude: "", env }).await;
    let store = dispatch_authz::store::SqlStore::open(
        &dispatch_authz::store::StoreLocation::Sqlite(dir.path().join("users.db")),
        None,
    )
    .await
    .unwrap();
    add_user(&store, "alice").await;
    let check = async |authorization: &str| {
        let answer = check_within(&serve.addr, authorization, Duration::from_secs(2)).await;
        answer.expect("an answer, not a transport error")
    };
    let before = bearer(&token(&claims("alice")));
    for _ in 0..2 {
        assert_eq!(code(&check(&before).await), OK);
    }

    clock.step(3600).await;
    let expired = check(&before).await;
    assert_eq!(code(&expired), UNAUTHENTICATED, "{expired:?}");
    assert!(denied(&expired).body.to_string().contains("expired"));

    clock.step(0).await;
    assert_eq!(code(&check(&before).await), OK);

    clock.step(-3600).await;
    assert_eq!(code(&check(&before).await), OK, "verified before the step");
    // Not the same bytes as `before`, though minted in the same second.
    let mut fresh = claims("alice");
    fresh["jti"] = "since".into();
    let since = bearer(&token(&fresh));
    let early = check(&since).await;
    assert_eq!(code(&early), UNAUTHENTICATED, "{early:?}");
    assert!(denied(&early).body.to_string().contains("iat"));

    clock.step(0).await;
    assert_eq!(code(&check(&since).await), OK);
}

async fn add_user(store: &dispatch_authz::store::SqlStore, subject: &str) {
    use dispatch_authz::store::{Actor, UserAdmin};
    let user = new_user(ISSUER_NAME, subject, subject);
    store.add(&Actor::local("test"), user).await.unwrap();
}
