//! Reload without a restart (issue 14): the admin API's
//! `ReloadConfiguration` (SIGHUP is tested on the binary in `cli.rs`) reads
//! the file again and swaps it in whole, without dropping a check; a file
//! that does not compile is refused and the configuration in force kept.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use jsonwebtoken::Algorithm;
use serde_json::json;
use tonic::Code;

use crate::common::{admin::Admin, *};

const OTHER: &str = r#"
[[issuers]]
name = "other"
issuer = "https://other.test"
audiences = ["dispatch"]

[[issuers.public_keys]]
pem_file = "KEY"
algorithm = "ES256"
kid = "e1"
"#;

fn config_file(app: &TestApp) -> std::path::PathBuf {
    app.dir.path().join("dispatch-authz.toml")
}

fn edit(app: &TestApp, change: impl FnOnce(String) -> String) {
    let file = config_file(app);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, change(text)).unwrap();
}

fn carol_token() -> String {
    let now = now();
    sign(
        Algorithm::ES256,
        "ec256.pem",
        Some("e1"),
        &json!({"iss": "https://other.test", "aud": AUD, "sub": "carol",
                "iat": now, "exp": now + 600}),
    )
}

#[tokio::test]
async fn a_reload_swaps_rules_and_issuers_without_dropping_a_check() {
    let app = Arc::new(spawn_app().await);
    let mut admin = app.bootstrap().await;
    app.add_user("alice", "alice").await;
    app.add_user_of("other", "carol", "carol").await;
    let alice = bearer(&token(&claims("alice")));
    let carol = bearer(&carol_token());

    // Alice calls all along; every answer must be an allow.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let caller = tokio::spawn({
        let (app, stop, answered, refused) =
            (app.clone(), stop.clone(), answered.clone(), refused.clone());
        let alice = alice.clone();
        async move {
            let mut client = app.client().await;
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .check(check_request(
                        "GET",
                        "/v1/function/f",
                        &[("authorization", &alice)],
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                answered.fetch_add(1, Ordering::Relaxed);
                if code(&r) != OK {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });

    // A public path added.
    assert_eq!(code(&app.check("/v1/open/x", &[]).await), UNAUTHENTICATED);
    edit(&app, |t| {
        t.replace(
            r#"public_paths = ["/healthz"]"#,
            r#"public_paths = ["/healthz", "/v1/open"]"#,
        )
    });
    let reloaded = admin.reload().await.unwrap();
    assert_eq!(reloaded.changed, ["check"]);
    assert!(reloaded.needs_restart.is_empty());
    assert_eq!(code(&app.check("/v1/open/x", &[]).await), OK);

    // An issuer added: its tokens verify from the reload on.
    let as_carol = [("authorization", carol.as_str())];
    assert_eq!(
        code(&app.check("/v1/function/f", &as_carol).await),
        UNAUTHENTICATED
    );
    let other = OTHER.replace("KEY", fixture("ec256.pub.pem").to_str().unwrap());
    edit(&app, |t| format!("{t}\n{other}"));
    let reloaded = admin.reload().await.unwrap();
    assert_eq!(reloaded.changed, ["issuers"]);
    let r = app.check("/v1/function/f", &as_carol).await;
    assert_eq!(code(&r), OK, "{r:?}");
    assert_eq!(
        header(&upstream_headers(&r), "x-dispatch-user"),
        Some("carol")
    );

    // A listener's setting is reported, not applied.
    edit(&app, |t| {
        t.replace("shutdown_grace_secs = 2", "shutdown_grace_secs = 3")
    });
    let reloaded = admin.reload().await.unwrap();
    assert!(reloaded.changed.is_empty());
    assert_eq!(reloaded.needs_restart, ["server"]);

    // The issuer removed: its token, settled a moment ago, is refused at once.
    edit(&app, |t| t.replace(&other, ""));
    assert_eq!(admin.reload().await.unwrap().changed, ["issuers"]);
    assert_eq!(
        code(&app.check("/v1/function/f", &as_carol).await),
        UNAUTHENTICATED
    );

    stop.store(true, Ordering::Relaxed);
    caller.await.unwrap();
    assert!(answered.load(Ordering::Relaxed) > 0);
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "a check of alice was refused"
    );
}

#[tokio::test]
async fn a_file_that_does_not_compile_is_refused_and_the_old_configuration_kept() {
    let app = spawn_app().await;
    let mut admin = app.bootstrap().await;
    let original = std::fs::read_to_string(config_file(&app)).unwrap();
    for (broken, named) in [
        ("[check]\nmax_token_bytes = 1", "check.max_token_bytes"),
        ("[check]\nbogus = 1", "bogus"),
        ("[check\n", "TOML"),
    ] {
        edit(&app, |t| t.replace("[check]", broken));
        let error = admin.reload().await.unwrap_err();
        assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
        assert!(error.message().contains(named), "{named}: {error:?}");
        std::fs::write(config_file(&app), &original).unwrap();
    }
    // Nothing changed: the public path is the old one, and a reload of the
    // same file changes nothing.
    assert_eq!(code(&app.check("/healthz", &[]).await), OK);
    let reloaded = admin.reload().await.unwrap();
    assert!(reloaded.changed.is_empty() && reloaded.needs_restart.is_empty());
}

#[tokio::test]
async fn only_a_global_iam_role_may_reload() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Default::default()
    })
    .await;
    app.acme_with_alice().await;
    let mut alice = Admin::connect(&app, &token(&claims("alice"))).await;
    let error = alice.reload().await.unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
    assert!(error.message().contains("iam:update"), "{error:?}");
}
